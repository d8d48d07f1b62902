//! The tick's cost follows the changes, not the fleet (issue 14): on a
//! settled fleet only the small reads run, and a change on one instance is
//! still found and applied. Bytes are the emulator's response bytes.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{InstanceMarketOptionsRequest, MarketType, Tag};
use serde_json::Value;

use crate::scheduler::{ids, reasons, tick_at, Fleet};

const SCHEDULES: &str = r#"{"schedules": {
  "office": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]},
  "office-enforced": {"timezone": "UTC", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}], "enforced": true},
  "late": {"timezone": "UTC", "periods": [{"begin": "12:00", "end": "20:00"}]}
}}"#;

fn total(bytes: &BTreeMap<String, u64>) -> u64 {
    bytes.values().sum()
}

fn nothing_done(output: &Value) -> bool {
    ids(output, "started").is_empty()
        && ids(output, "stopped").is_empty()
        && output["failed"].as_array().is_some_and(Vec::is_empty)
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_settled_2000_fleet_then_a_tick_reads_a_tenth_of_the_bytes_and_still_finds_one_change(
) {
    let fleet = Fleet::new().await;
    fleet.put_schedules(SCHEDULES).await;
    let office = fleet.launch_many("office", 1000).await;
    let enforced = fleet.launch_many("office-enforced", 997).await;
    // Never acted on, reported at every tick.
    let asg = fleet
        .launch(&[("Schedule", "office"), ("aws:autoscaling:groupName", "web")])
        .await;
    let unknown = fleet.launch(&[("Schedule", "no-such-schedule")]).await;
    let spot = fleet
        .launch_in(&fleet.ec2, &[("Schedule", "office")], |r| {
            r.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .build(),
            )
        })
        .await;
    let function = fleet.start_function(&[]);
    let skipped_every_tick = |output: &Value| {
        let skipped = reasons(output, "skipped", "reason");
        skipped
            .get(&asg)
            .is_some_and(|r| r.contains("Auto Scaling"))
            && skipped
                .get(&unknown)
                .is_some_and(|r| r.contains("unknown schedule"))
            && skipped.get(&spot).is_some_and(|r| r.contains("spot"))
    };

    // The evening stop: every instance changes, all are read in full.
    fleet.emulator.reset_calls();
    let full = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&full, "stopped").len(), 1997, "{full}");
    assert!(skipped_every_tick(&full), "{full}");
    let full_bytes = fleet.emulator.bytes();
    let full_calls = fleet.emulator.calls();
    // 1000 ids per stop call.
    assert_eq!(
        full_calls.get("ec2:StopInstances"),
        Some(&2),
        "{full_calls:?}"
    );

    // Nothing to change: the full reads return only the three skipped ones.
    fleet.emulator.reset_calls();
    let quiet = function
        .invoke(&tick_at("2026-11-26T18:10:00Z"))
        .output()
        .clone();
    assert!(nothing_done(&quiet), "{quiet}");
    assert!(skipped_every_tick(&quiet), "{quiet}");
    let quiet_bytes = fleet.emulator.bytes();
    assert!(
        total(&quiet_bytes) * 10 <= total(&full_bytes),
        "steady state read {} bytes, the full tick {}: {quiet_bytes:?} vs {full_bytes:?}",
        total(&quiet_bytes),
        total(&full_bytes)
    );
    let described = quiet_bytes
        .get("ec2:DescribeInstances")
        .copied()
        .unwrap_or(0);
    // About 3.4 KB per instance: the three skipped ones (the spot one twice:
    // by state and as spot), never the fleet.
    assert!(
        described < 8 * 4000,
        "DescribeInstances returned more than the skipped instances: {described} bytes"
    );
    let calls = fleet.emulator.calls();
    assert!(
        !calls.contains_key("ec2:StopInstances") && !calls.contains_key("ec2:CreateTags"),
        "{calls:?}"
    );

    // One instance started by hand under an enforced schedule, one re-tagged
    // to a schedule that wants it running: both found, both applied.
    fleet.set_state(&enforced[17], "running");
    fleet
        .ec2
        .create_tags()
        .resources(&office[42])
        .tags(Tag::builder().key("Schedule").value("late").build())
        .send()
        .await
        .expect("re-tag");
    fleet.emulator.reset_calls();
    let changed = function
        .invoke(&tick_at("2026-11-26T18:15:00Z"))
        .output()
        .clone();
    assert_eq!(
        ids(&changed, "stopped"),
        [enforced[17].clone()],
        "{changed}"
    );
    assert_eq!(ids(&changed, "started"), [office[42].clone()], "{changed}");
    let described = fleet
        .emulator
        .bytes()
        .get("ec2:DescribeInstances")
        .copied()
        .unwrap_or(0);
    assert!(
        described < 10 * 4000,
        "{described} bytes of DescribeInstances for two changes"
    );
    let states = fleet.states().await;
    assert_eq!(states[&enforced[17]], "stopped");
    assert_eq!(states[&office[42]], "running");
    let stopped = office
        .iter()
        .chain(&enforced)
        .filter(|id| states[*id] == "stopped")
        .count();
    assert_eq!(stopped, 1996);
}
