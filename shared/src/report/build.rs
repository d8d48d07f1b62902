//! The report itself: a pure function of the snapshot, the previous summary
//! and "now".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::snapshot::{DataGap, FleetSnapshot, PatchState, SOURCE_INSTANCE_INFORMATION};

/// The group name used for instances without a patch group.
pub const NO_GROUP: &str = "(no patch group)";

/// The compact summary kept between reports (in an SSM parameter, < 4 KB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// When that report was built (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Fleet-wide counts by metric name.
    #[serde(default)]
    pub totals: BTreeMap<String, u64>,
    /// Non-compliant instances per patch group.
    #[serde(default)]
    pub groups: BTreeMap<String, u64>,
    /// Ids of non-compliant instances, when they fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncompliant: Option<Vec<String>>,
}

/// What one instance is, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Compliant,
    NonCompliant,
    /// Scanned longer ago than `stale_after`.
    Stale,
    /// Managed but never scanned.
    NotScanned,
    /// Not managed by SSM.
    Unmanaged,
    /// Its data could not be read.
    Unknown,
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLine {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub patch_group: String,
    pub standing: Standing,
    /// `Online`, `ConnectionLost`... or none when unmanaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_status: Option<String>,
    pub missing: u32,
    pub critical: u32,
    pub security: u32,
    pub failed: u32,
    pub pending_reboot: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scan: Option<String>,
    /// Short problem words, worst first (`critical`, `failed`...).
    pub problems: Vec<String>,
    #[serde(skip)]
    pub score: u64,
}

/// Counts, fleet-wide or per patch group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Running (or pending) instances: the ones assessed.
    pub running: u64,
    pub compliant: u64,
    pub noncompliant: u64,
    pub missing_critical: u64,
    pub missing_security: u64,
    pub failed: u64,
    pub pending_reboot: u64,
    pub stale: u64,
    pub not_scanned: u64,
    pub unknown: u64,
    pub stopped: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetTotals {
    /// All instances that are not terminated.
    pub instances: u64,
    pub managed: u64,
    pub online: u64,
    pub connection_lost: u64,
    pub unmanaged: u64,
    pub association_compliant: u64,
    pub association_noncompliant: u64,
    /// Running/stopped and the patch standing (flattened: `totals.running`,
    /// `totals.noncompliant`, ...).
    #[serde(flatten)]
    pub patch: Counts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    pub patch_group: String,
    /// The baseline registered to the group; none: the OS default baseline.
    pub baseline_id: Option<String>,
    /// Every running instance of the group is compliant.
    pub group_compliant: bool,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRef {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub metric: String,
    pub before: u64,
    pub after: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// When the previous report was built; none: this is the first report.
    pub since: Option<String>,
    pub metrics: Vec<Change>,
    /// Non-compliant now, not in the previous report.
    pub newly_noncompliant: Vec<String>,
    /// Non-compliant in the previous report, not any more.
    pub fixed: Vec<String>,
}

/// The whole report. Lists are complete here; rendering may summarise them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceReport {
    pub generated_at: String,
    pub region: String,
    pub stale_after_days: u32,
    /// False when some data could not be read (see `gaps`).
    pub complete: bool,
    pub totals: FleetTotals,
    pub groups: Vec<GroupReport>,
    /// Instances with a problem, worst first.
    pub worst_instances: Vec<InstanceLine>,
    pub unmanaged: Vec<InstanceRef>,
    pub connection_lost: Vec<InstanceRef>,
    pub stopped: Vec<InstanceRef>,
    pub association_noncompliant: Vec<InstanceRef>,
    pub changes: Changes,
    pub gaps: Vec<DataGap>,
    /// Items left out of each list by rendering (list name → count).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub omitted: BTreeMap<String, usize>,
}

fn is_stopped(state: &str) -> bool {
    matches!(state, "stopped" | "stopping")
}

fn is_gone(state: &str) -> bool {
    matches!(state, "terminated" | "shutting-down")
}

fn score(line: &InstanceLine) -> u64 {
    let base = match line.standing {
        Standing::NonCompliant => 0,
        Standing::Unmanaged => 5_000,
        Standing::Stale | Standing::NotScanned => 2_000,
        Standing::Unknown => 1_000,
        Standing::Compliant | Standing::Stopped => 0,
    };
    let offline = if line.ping_status.as_deref() == Some("ConnectionLost") {
        3_000
    } else {
        0
    };
    base + offline
        + u64::from(line.critical) * 10_000
        + u64::from(line.security) * 1_000
        + u64::from(line.failed) * 500
        + u64::from(line.missing) * 100
        + u64::from(line.pending_reboot) * 50
}

/// Builds the report. `stale_after` is how old a scan may be.
pub fn build_report(
    snapshot: &FleetSnapshot,
    previous: &Previous,
    now: Timestamp,
    stale_after_days: u32,
) -> ComplianceReport {
    let stale_after = SignedDuration::from_hours(i64::from(stale_after_days) * 24);
    let managed: HashMap<&str, &str> = snapshot
        .managed
        .iter()
        .map(|m| (m.instance_id.as_str(), m.ping_status.as_str()))
        .collect();
    let states: HashMap<&str, &PatchState> = snapshot
        .patch_states
        .iter()
        .map(|p| (p.instance_id.as_str(), p))
        .collect();
    let baselines: BTreeMap<&str, &str> = snapshot
        .patch_groups
        .iter()
        .map(|g| (g.patch_group.as_str(), g.baseline_id.as_str()))
        .collect();
    let unreadable: BTreeSet<&str> = snapshot
        .gaps
        .iter()
        .flat_map(|g| g.instance_ids.iter().map(String::as_str))
        .collect();
    // Without the agent list, nobody can be called unmanaged.
    let management_known = !snapshot
        .gaps
        .iter()
        .any(|g| g.source == SOURCE_INSTANCE_INFORMATION);
    let associations: HashMap<&str, bool> = snapshot
        .associations
        .iter()
        .map(|a| (a.resource_id.as_str(), a.compliant))
        .collect();

    let mut totals = FleetTotals::default();
    let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
    for group in baselines.keys() {
        groups.entry((*group).to_string()).or_default();
    }
    let mut lines = Vec::new();
    let mut unmanaged = Vec::new();
    let mut connection_lost = Vec::new();
    let mut stopped = Vec::new();
    let mut association_noncompliant = Vec::new();

    let mut instances: Vec<_> = snapshot
        .instances
        .iter()
        .filter(|i| !is_gone(&i.state))
        .collect();
    instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    for instance in instances {
        let id = instance.instance_id.as_str();
        let reference = InstanceRef {
            instance_id: id.to_string(),
            name: instance.name.clone(),
        };
        let state = states.get(id).copied();
        let group_name = state
            .and_then(|s| s.patch_group.clone())
            .or_else(|| instance.patch_group.clone())
            .unwrap_or_else(|| NO_GROUP.to_string());
        let counts = groups.entry(group_name.clone()).or_default();
        totals.instances += 1;
        if is_stopped(&instance.state) {
            totals.patch.stopped += 1;
            counts.stopped += 1;
            stopped.push(reference);
            continue;
        }
        let ping = managed.get(id).map(|p| (*p).to_string());
        match ping.as_deref() {
            Some(status) => {
                totals.managed += 1;
                if status == "ConnectionLost" {
                    totals.connection_lost += 1;
                    connection_lost.push(reference.clone());
                } else if status == "Online" {
                    totals.online += 1;
                }
            }
            None if management_known => {
                totals.unmanaged += 1;
                unmanaged.push(reference.clone());
            }
            None => {}
        }
        match associations.get(id) {
            Some(true) => totals.association_compliant += 1,
            Some(false) => {
                totals.association_noncompliant += 1;
                association_noncompliant.push(reference.clone());
            }
            None => {}
        }

        let mut line = InstanceLine {
            instance_id: id.to_string(),
            name: instance.name.clone(),
            patch_group: group_name.clone(),
            standing: Standing::Compliant,
            ping_status: ping.clone(),
            missing: 0,
            critical: 0,
            security: 0,
            failed: 0,
            pending_reboot: 0,
            last_scan: None,
            problems: Vec::new(),
            score: 0,
        };
        if let Some(state) = state {
            line.missing = state.missing;
            line.critical = state.critical_noncompliant;
            line.security = state.security_noncompliant;
            line.failed = state.failed;
            line.pending_reboot = state.installed_pending_reboot;
            line.last_scan = state.operation_end_time.map(|t| t.to_string());
        }
        let scanned_recently = state
            .and_then(|s| s.operation_end_time)
            .map(|end| now.duration_since(end) <= stale_after);
        let patch_problem = state.is_some_and(|s| {
            s.missing > 0
                || s.failed > 0
                || s.installed_pending_reboot > 0
                || s.installed_rejected > 0
                || s.critical_noncompliant > 0
                || s.security_noncompliant > 0
        });
        line.standing = if unreadable.contains(id) || (ping.is_none() && !management_known) {
            Standing::Unknown
        } else if patch_problem {
            Standing::NonCompliant
        } else if ping.is_none() {
            Standing::Unmanaged
        } else {
            match scanned_recently {
                None => Standing::NotScanned,
                Some(false) => Standing::Stale,
                Some(true) => Standing::Compliant,
            }
        };
        counts.running += 1;
        totals.patch.running += 1;
        let mut add = |f: fn(&mut Counts)| {
            f(counts);
            f(&mut totals.patch);
        };
        match line.standing {
            Standing::Compliant => add(|c| c.compliant += 1),
            Standing::NonCompliant => add(|c| c.noncompliant += 1),
            Standing::Stale => add(|c| c.stale += 1),
            Standing::NotScanned => add(|c| c.not_scanned += 1),
            Standing::Unknown | Standing::Unmanaged => add(|c| c.unknown += 1),
            Standing::Stopped => {}
        }
        if line.standing != Standing::Unknown {
            if line.critical > 0 {
                add(|c| c.missing_critical += 1);
                line.problems.push(format!("{} critical", line.critical));
            }
            if line.security > 0 {
                add(|c| c.missing_security += 1);
                line.problems.push(format!("{} security", line.security));
            }
            if line.failed > 0 {
                add(|c| c.failed += 1);
                line.problems.push(format!("{} failed", line.failed));
            }
            if line.missing > 0 {
                line.problems.push(format!("{} missing", line.missing));
            }
            if line.pending_reboot > 0 {
                add(|c| c.pending_reboot += 1);
                line.problems.push("reboot pending".to_string());
            }
            if state.is_some_and(|s| s.installed_rejected > 0) {
                line.problems.push("rejected installed".to_string());
            }
        }
        match line.standing {
            Standing::Stale => line
                .problems
                .push(format!("scan older than {stale_after_days} d")),
            Standing::NotScanned => line.problems.push("never scanned".to_string()),
            Standing::Unmanaged => line.problems.push("not managed by SSM".to_string()),
            Standing::Unknown => line.problems.push("data missing".to_string()),
            _ => {}
        }
        if line.ping_status.as_deref() == Some("ConnectionLost") {
            line.problems.push("connection lost".to_string());
        }
        if !line.problems.is_empty() {
            line.score = score(&line);
            lines.push(line);
        }
    }
    lines.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.instance_id.cmp(&b.instance_id))
    });

    let groups: Vec<GroupReport> = groups
        .into_iter()
        .map(|(name, counts)| GroupReport {
            baseline_id: baselines.get(name.as_str()).map(|b| (*b).to_string()),
            group_compliant: counts.running == counts.compliant,
            patch_group: name,
            counts,
        })
        .collect();

    let noncompliant_ids: Vec<String> = lines
        .iter()
        .filter(|l| l.standing == Standing::NonCompliant)
        .map(|l| l.instance_id.clone())
        .collect();
    let current_totals = metric_totals(&totals);
    let changes = changes_since(previous, &current_totals, &noncompliant_ids);

    ComplianceReport {
        generated_at: now.to_string(),
        region: snapshot.region.clone(),
        stale_after_days,
        complete: snapshot.gaps.is_empty(),
        totals,
        groups,
        worst_instances: lines,
        unmanaged,
        connection_lost,
        stopped,
        association_noncompliant,
        changes,
        gaps: snapshot.gaps.clone(),
        omitted: BTreeMap::new(),
    }
}

/// The metrics compared between reports, in display order.
pub fn metric_totals(totals: &FleetTotals) -> Vec<(&'static str, u64)> {
    vec![
        ("running", totals.patch.running),
        ("stopped", totals.patch.stopped),
        ("unmanaged", totals.unmanaged),
        ("connection_lost", totals.connection_lost),
        ("compliant", totals.patch.compliant),
        ("noncompliant", totals.patch.noncompliant),
        ("missing_critical", totals.patch.missing_critical),
        ("missing_security", totals.patch.missing_security),
        ("failed", totals.patch.failed),
        ("pending_reboot", totals.patch.pending_reboot),
        ("stale", totals.patch.stale),
        ("not_scanned", totals.patch.not_scanned),
        ("association_noncompliant", totals.association_noncompliant),
    ]
}

fn changes_since(
    previous: &Previous,
    current: &[(&'static str, u64)],
    noncompliant: &[String],
) -> Changes {
    let Some(since) = previous.at.clone() else {
        return Changes::default();
    };
    let metrics = current
        .iter()
        .filter_map(|(name, after)| {
            let before = previous.totals.get(*name).copied().unwrap_or(0);
            (before != *after).then(|| Change {
                metric: (*name).to_string(),
                before,
                after: *after,
            })
        })
        .collect();
    let (newly_noncompliant, fixed) = match &previous.noncompliant {
        Some(before) => {
            let before: BTreeSet<&str> = before.iter().map(String::as_str).collect();
            let now: BTreeSet<&str> = noncompliant.iter().map(String::as_str).collect();
            (
                now.difference(&before).map(|s| (*s).to_string()).collect(),
                before.difference(&now).map(|s| (*s).to_string()).collect(),
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    Changes {
        since: Some(since),
        metrics,
        newly_noncompliant,
        fixed,
    }
}

/// Largest previous-summary document kept in the parameter (standard tier: 4 KB).
pub const PREVIOUS_MAX_BYTES: usize = 4000;

impl Previous {
    /// The compact summary of `report`, as JSON of at most
    /// [`PREVIOUS_MAX_BYTES`]: instance ids and then groups are dropped
    /// when they do not fit.
    pub fn from_report(report: &ComplianceReport) -> String {
        let mut previous = Previous {
            at: Some(report.generated_at.clone()),
            totals: metric_totals(&report.totals)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            groups: report
                .groups
                .iter()
                .map(|g| (g.patch_group.clone(), g.counts.noncompliant))
                .collect(),
            noncompliant: Some(
                report
                    .worst_instances
                    .iter()
                    .filter(|l| l.standing == Standing::NonCompliant)
                    .map(|l| l.instance_id.clone())
                    .collect(),
            ),
        };
        let encode = |p: &Previous| serde_json::to_string(p).unwrap_or_default();
        let mut text = encode(&previous);
        if text.len() > PREVIOUS_MAX_BYTES {
            previous.noncompliant = None;
            text = encode(&previous);
        }
        while text.len() > PREVIOUS_MAX_BYTES && !previous.groups.is_empty() {
            previous.groups.pop_last();
            text = encode(&previous);
        }
        text
    }
}
