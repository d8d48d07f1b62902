//! The compliance report over many accounts: totals, a row per account, and
//! SNS's size rules for any number of accounts.

use fleetops::accounts::Unhandled;
use fleetops::report::org::{build_fleet_report, UnitSnapshot};
use fleetops::report::render::{more_line, SUBJECT_MAX_CHARS};
use fleetops::report::snapshot::{Ec2Instance, FleetSnapshot, ManagedInstance, PatchState};
use fleetops::report::{fit_message, render_text, Previous, SNS_MAX_BYTES};
use jiff::{SignedDuration, Timestamp};

fn now() -> Timestamp {
    "2026-12-02T02:00:00Z".parse().expect("time")
}

/// An account-region with `n` running managed instances, the first missing a
/// critical patch.
fn unit(account: &str, region: &str, n: usize) -> UnitSnapshot {
    let id = |i: usize| format!("i-{account}{i:05}");
    UnitSnapshot {
        account: account.into(),
        region: region.into(),
        snapshot: FleetSnapshot {
            region: region.into(),
            instances: (0..n)
                .map(|i| Ec2Instance {
                    instance_id: id(i),
                    name: Some(format!("app-{account}-{i}")),
                    state: "running".into(),
                    patch_group: Some("web".into()),
                })
                .collect(),
            managed: (0..n)
                .map(|i| ManagedInstance {
                    instance_id: id(i),
                    ping_status: "Online".into(),
                    platform: Some("Amazon Linux".into()),
                })
                .collect(),
            patch_states: (0..n)
                .map(|i| PatchState {
                    instance_id: id(i),
                    patch_group: Some("web".into()),
                    baseline_id: Some("pb-0123456789abcdef0".into()),
                    operation: "Scan".into(),
                    operation_end_time: Some(now() - SignedDuration::from_hours(3)),
                    installed: 40,
                    missing: u32::from(i == 0),
                    critical_noncompliant: u32::from(i == 0),
                    ..PatchState::default()
                })
                .collect(),
            ..FleetSnapshot::default()
        },
    }
}

#[test]
fn given_500_accounts_then_the_message_fits_sns_keeps_whole_lines_and_counts_the_rest() {
    let units: Vec<UnitSnapshot> = (0..500)
        .map(|a| unit(&format!("{:012}", 100_000_000_000_u64 + a), "eu-west-1", 4))
        .collect();
    let unhandled = [Unhandled {
        account: "999999999999".into(),
        region: "eu-west-1".into(),
        reason:
            "role arn:aws:iam::999999999999:role/fleetops-spoke cannot be assumed: AccessDenied"
                .into(),
    }];
    let report = build_fleet_report(&units, &unhandled, &Previous::default(), now(), 7);
    assert_eq!(report.accounts.len(), 501);
    assert_eq!(report.totals.patch.running, Some(2_000));
    assert_eq!(report.totals.patch.noncompliant, Some(500));
    let message = fit_message(&report, &[], SNS_MAX_BYTES);
    assert!(message.bytes() <= SNS_MAX_BYTES, "{}", message.bytes());
    assert!(message.subject.chars().count() < SUBJECT_MAX_CHARS + 1);
    assert!(message.subject.is_ascii() && !message.subject.contains('\n'));
    assert!(
        message
            .subject
            .starts_with("INCOMPLETE fleetops 501 accounts"),
        "{}",
        message.subject
    );
    // Every line is one of the full rendering's, or says how many were left out.
    let full = render_text(&report, &[]);
    let full_lines: std::collections::HashSet<&str> = full.lines().collect();
    for line in message.text.lines() {
        let summary = line.trim_start().starts_with("... and ") && line.ends_with(" more");
        assert!(full_lines.contains(line) || summary, "{line:?}");
    }
    assert!(message.text.contains("Accounts (501)"));
    // The locked account comes first (unknown), whatever is cut.
    assert!(message.text.contains("999999999999"));
    if let Some(kept) = message.kept_per_list {
        if kept < 501 {
            assert!(message.text.contains(&more_line(501 - kept)));
        }
    }
    let machine: serde_json::Value = serde_json::from_str(&message.json).expect("JSON");
    assert_eq!(machine["accounts"][0]["account"], "999999999999");
    println!(
        "500 accounts: message {} bytes, {:?} per list",
        message.bytes(),
        message.kept_per_list
    );
}

#[test]
fn given_5000_accounts_then_the_account_table_is_cut_and_counted() {
    let units: Vec<UnitSnapshot> = (0..5_000)
        .map(|a| unit(&format!("{:012}", 200_000_000_000_u64 + a), "us-east-1", 1))
        .collect();
    let report = build_fleet_report(&units, &[], &Previous::default(), now(), 7);
    let message = fit_message(&report, &[], SNS_MAX_BYTES);
    assert!(message.bytes() <= SNS_MAX_BYTES, "{}", message.bytes());
    let kept = message.kept_per_list.expect("cut");
    assert!(kept < 5_000);
    assert!(message.text.contains(&more_line(5_000 - kept)), "counted");
}
