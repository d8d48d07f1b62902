//! One report over several account-regions (`ACCOUNTS`, `REGIONS`): every
//! unit's snapshot merged for the fleet-wide totals and the per-group detail,
//! and one row of totals per account. An account-region that could not be
//! read is a gap of the report (it is incomplete, and says which), and its
//! account's row is unknown, never 0.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::build::{build_report, ComplianceReport, FleetTotals, Previous};
use super::snapshot::{DataGap, FleetSnapshot};
use crate::accounts::Unhandled;

/// What one account-region's read gave.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitSnapshot {
    pub account: String,
    pub region: String,
    pub snapshot: FleetSnapshot,
}

/// One account's line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    pub account: String,
    /// The regions read.
    pub regions: Vec<String>,
    /// The regions that could not be read (then `totals` is a lower bound,
    /// or unknown when none was read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions_not_read: Vec<String>,
    pub complete: bool,
    pub totals: FleetTotals,
}

/// Source name of an account-region that could not be read at all.
pub const SOURCE_UNIT: &str = "account-region";

fn merge<'a>(parts: impl Iterator<Item = &'a UnitSnapshot>, label: &str) -> FleetSnapshot {
    let mut merged = FleetSnapshot {
        region: label.to_string(),
        ..FleetSnapshot::default()
    };
    for part in parts {
        let s = &part.snapshot;
        merged.instances.extend(s.instances.iter().cloned());
        merged.managed.extend(s.managed.iter().cloned());
        merged.patch_states.extend(s.patch_states.iter().cloned());
        merged.patch_groups.extend(s.patch_groups.iter().cloned());
        merged.associations.extend(s.associations.iter().cloned());
        merged.gaps.extend(s.gaps.iter().map(|g| DataGap {
            // The source name is kept first: the report still knows which
            // section it touches; where it was read follows.
            source: format!("{} ({} {})", g.source, part.account, part.region),
            ..g.clone()
        }));
    }
    merged
        .patch_groups
        .sort_by(|a, b| a.patch_group.cmp(&b.patch_group));
    merged
        .patch_groups
        .dedup_by(|a, b| a.patch_group == b.patch_group && a.baseline_id == b.baseline_id);
    merged
}

/// What the report is about: one account ("111111111111, 2 regions") or
/// many ("3 accounts, 2 regions").
fn scope_label(units: &[UnitSnapshot], unhandled: &[Unhandled]) -> String {
    let accounts = distinct(units, unhandled, |a| a.0);
    let regions = distinct(units, unhandled, |a| a.1);
    let regions_text = match regions.as_slice() {
        [one] => (*one).to_string(),
        many => format!("{} regions", many.len()),
    };
    match accounts.as_slice() {
        [one] => format!("{one} {regions_text}"),
        many => format!("{} accounts, {regions_text}", many.len()),
    }
}

/// The distinct accounts (`pick` `.0`) or regions (`.1`) of read and unread units, sorted.
fn distinct<'a>(
    units: &'a [UnitSnapshot],
    unhandled: &'a [Unhandled],
    pick: impl Fn((&'a str, &'a str)) -> &'a str,
) -> Vec<&'a str> {
    let mut values: Vec<&str> = units
        .iter()
        .map(|u| pick((&u.account, &u.region)))
        .chain(unhandled.iter().map(|u| pick((&u.account, &u.region))))
        .collect();
    values.sort();
    values.dedup();
    values
}

/// The report over `units`, with `unhandled` account-regions as gaps.
pub fn build_fleet_report(
    units: &[UnitSnapshot],
    unhandled: &[Unhandled],
    previous: &Previous,
    now: Timestamp,
    stale_after_days: u32,
) -> ComplianceReport {
    let label = scope_label(units, unhandled);
    let mut merged = merge(units.iter(), &label);
    merged.gaps.extend(unhandled.iter().map(|u| DataGap {
        source: format!("{SOURCE_UNIT} {} {}", u.account, u.region),
        instance_ids: Vec::new(),
        error: u.reason.clone(),
    }));
    let mut report = build_report(&merged, previous, now, stale_after_days);

    let accounts = distinct(units, unhandled, |a| a.0);
    let mut rows: Vec<AccountRow> = accounts
        .into_iter()
        .map(|account| {
            let read: Vec<&UnitSnapshot> = units.iter().filter(|u| u.account == account).collect();
            let not_read: Vec<String> = unhandled
                .iter()
                .filter(|u| u.account == account)
                .map(|u| u.region.clone())
                .collect();
            let totals = if read.is_empty() {
                FleetTotals::default()
            } else {
                let snapshot = merge(read.iter().copied(), account);
                build_report(&snapshot, &Previous::default(), now, stale_after_days).totals
            };
            AccountRow {
                account: account.to_string(),
                regions: read.iter().map(|u| u.region.clone()).collect(),
                complete: not_read.is_empty() && read.iter().all(|u| u.snapshot.gaps.is_empty()),
                regions_not_read: not_read,
                totals,
            }
        })
        .collect();
    // Worst first: unknown, then most non-compliant, then most unmanaged.
    rows.sort_by_key(|r| {
        (
            r.totals.patch.noncompliant.is_some(),
            std::cmp::Reverse(r.totals.patch.noncompliant.unwrap_or(0)),
            std::cmp::Reverse(r.totals.unmanaged.unwrap_or(0)),
            r.account.clone(),
        )
    });
    report.accounts = rows;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::snapshot::Ec2Instance;

    fn unit(account: &str, region: &str, running: usize) -> UnitSnapshot {
        UnitSnapshot {
            account: account.into(),
            region: region.into(),
            snapshot: FleetSnapshot {
                region: region.into(),
                instances: (0..running)
                    .map(|i| Ec2Instance {
                        instance_id: format!("i-{account}-{region}-{i}"),
                        name: None,
                        state: "running".into(),
                        patch_group: None,
                    })
                    .collect(),
                ..FleetSnapshot::default()
            },
        }
    }

    #[test]
    fn fleet_totals_add_up_and_each_account_has_its_row() {
        let units = [
            unit("111111111111", "eu-west-1", 2),
            unit("111111111111", "us-east-1", 1),
            unit("222222222222", "eu-west-1", 4),
        ];
        let now = "2026-12-02T02:00:00Z".parse().unwrap();
        let r = build_fleet_report(&units, &[], &Previous::default(), now, 7);
        assert_eq!(r.region, "2 accounts, 2 regions");
        assert_eq!(r.totals.patch.running, Some(7));
        assert_eq!(r.accounts.len(), 2);
        let first = r
            .accounts
            .iter()
            .find(|a| a.account == "111111111111")
            .unwrap();
        assert_eq!(first.totals.patch.running, Some(3));
        assert_eq!(first.regions, ["eu-west-1", "us-east-1"]);
        assert!(r.complete);
    }

    #[test]
    fn an_account_that_could_not_be_read_is_unknown_not_zero_and_the_report_incomplete() {
        let units = [unit("111111111111", "eu-west-1", 2)];
        let unhandled = [Unhandled {
            account: "333333333333".into(),
            region: "eu-west-1".into(),
            reason: "role cannot be assumed: AccessDenied".into(),
        }];
        let now = "2026-12-02T02:00:00Z".parse().unwrap();
        let r = build_fleet_report(&units, &unhandled, &Previous::default(), now, 7);
        assert!(!r.complete);
        let locked = &r.accounts[0];
        assert_eq!(locked.account, "333333333333", "unknown rows come first");
        assert_eq!(locked.totals.patch.running, None);
        assert_eq!(locked.regions_not_read, ["eu-west-1"]);
        assert!(r.gaps.iter().any(|g| g.error.contains("AccessDenied")));
    }
}
