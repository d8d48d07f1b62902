//! instance-scheduler end to end when things change under it: an instance
//! re-tagged to another schedule, a schedule edited, the overnight end after a
//! begin-only start, expiring overrides, and a marker that cannot be written.

use serde_json::json;

use crate::scheduler::{ids, reasons, tick_at, Fleet};

const OFFICE_AND_LATE: &str = r#"{"schedules": {
  "office": {"periods": [{"begin": "09:00", "end": "18:00"}]},
  "late": {"periods": [{"begin": "17:00", "end": "23:00"}]}
}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn given_an_instance_re_tagged_to_another_schedule_then_it_gets_that_schedules_transition() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(OFFICE_AND_LATE).await;
    let id = fleet.launch(&[("Schedule", "office")]).await;
    let function = fleet.start_function(&[]);
    let evening = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&evening, "stopped"), vec![id.clone()]);
    fleet
        .ec2
        .create_tags()
        .resources(&id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("Schedule")
                .value("late")
                .build(),
        )
        .send()
        .await
        .expect("re-tag");
    let later = function
        .invoke(&tick_at("2026-11-26T19:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&later, "started"), vec![id.clone()], "{later}");
    assert_eq!(fleet.states().await[&id], "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_edited_schedule_then_the_instance_follows_it_as_now_written() {
    let fleet = Fleet::new().await;
    fleet
        .put_schedules(
            r#"{"schedules": {"office": {"periods": [{"begin": "09:00", "end": "17:00"}]}}}"#,
        )
        .await;
    let id = fleet.launch(&[("Schedule", "office")]).await;
    fleet.set_state(&id, "stopped");
    let function = fleet.start_function(&[]);
    let morning = function
        .invoke(&tick_at("2026-11-26T09:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&morning, "started"), vec![id.clone()]);
    fleet
        .put_schedules(
            r#"{"schedules": {"office": {"periods": [{"begin": "12:00", "end": "20:00"}]}}}"#,
        )
        .await;
    let edited = function
        .invoke(&tick_at("2026-11-26T10:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&edited, "stopped"), vec![id.clone()], "{edited}");
    let noon = function
        .invoke(&tick_at("2026-11-26T12:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&noon, "started"), vec![id.clone()], "{noon}");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_begin_only_start_and_an_overnight_end_then_no_phantom_running_days() {
    let fleet = Fleet::new().await;
    fleet
        .put_schedules(r#"{"schedules": {"weekly": {"enforced": true, "periods": [{"weekdays": "mon", "begin": "08:00"}, {"weekdays": "sun", "begin": "22:00", "end": "09:00"}]}}}"#)
        .await;
    let id = fleet.launch(&[("Schedule", "weekly")]).await;
    let function = fleet.start_function(&[]);
    // Monday 2026-11-30 10:00 through Sunday 21:00: stopped every day.
    for (at, running) in [
        ("2026-11-30T08:30:00Z", true),
        ("2026-11-30T10:00:00Z", false),
        ("2026-12-02T12:00:00Z", false),
        ("2026-12-04T12:00:00Z", false),
        ("2026-12-06T21:00:00Z", false),
        ("2026-12-06T22:05:00Z", true),
    ] {
        let output = function.invoke(&tick_at(at)).output().clone();
        let state = fleet.states().await[&id].clone();
        let want = if running { "running" } else { "stopped" };
        assert_eq!(state, want, "at {at}: {output}");
        if !running {
            assert!(ids(&output, "started").is_empty(), "at {at}: {output}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_expiring_overrides_then_they_hold_before_hand_back_after_and_bad_ones_are_skipped() {
    let fleet = Fleet::new().await;
    fleet
        .put_schedules(
            r#"{"schedules": {"office": {"periods": [{"begin": "09:00", "end": "18:00"}]}}}"#,
        )
        .await;
    // Seoul is UTC+9: 05:00 on the 27th there is 20:00 on the 26th in UTC.
    let held = fleet
        .launch(&[
            ("Schedule", "office"),
            (
                "ScheduleOverride",
                "running until 2026-11-27T18:00:00+09:00",
            ),
        ])
        .await;
    let expired = fleet
        .launch(&[
            ("Schedule", "office"),
            (
                "ScheduleOverride",
                "running until 2026-11-27T05:00:00+09:00",
            ),
        ])
        .await;
    let offsetless = fleet
        .launch(&[
            ("Schedule", "office"),
            ("ScheduleOverride", "running until 2026-11-27T05:00:00"),
        ])
        .await;
    let pinned_stopped = fleet
        .launch(&[
            ("Schedule", "office"),
            (
                "ScheduleOverride",
                "stopped until 2026-11-26T23:00:00-05:00",
            ),
        ])
        .await;
    let function = fleet.start_function(&[]);
    let before = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    assert_eq!(
        ids(&before, "stopped"),
        vec![pinned_stopped.clone()],
        "{before}"
    );
    assert!(ids(&before, "expired_overrides").is_empty(), "{before}");
    let skipped = reasons(&before, "skipped", "reason");
    assert!(skipped[&offsetless].contains("no UTC offset"), "{before}");

    let after = function
        .invoke(&tick_at("2026-11-26T20:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&after, "stopped"), vec![expired.clone()], "{after}");
    assert_eq!(
        ids(&after, "expired_overrides"),
        vec![expired.clone()],
        "{after}"
    );
    let states = fleet.states().await;
    assert_eq!(states[&held], "running");
    assert_eq!(states[&expired], "stopped");
    assert_eq!(states[&offsetless], "running");
    // Transition-only again: a hand start after the hand-back keeps running.
    fleet.set_state(&expired, "running");
    let night = function
        .invoke(&tick_at("2026-11-26T21:05:00Z"))
        .output()
        .clone();
    assert!(ids(&night, "stopped").is_empty(), "{night}");
    // The stopped pin (04:00 UTC on the 27th) ends: office wants it stopped
    // then anyway; at 09:00 it starts with everyone.
    let morning = function
        .invoke(&tick_at("2026-11-27T09:05:00Z"))
        .output()
        .clone();
    assert!(
        ids(&morning, "started").contains(&pinned_stopped),
        "{morning}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_marker_that_cannot_be_written_then_the_output_says_so() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(OFFICE_AND_LATE).await;
    let id = fleet.launch(&[("Schedule", "office")]).await;
    fleet.emulator.control(
        "POST",
        "/_fleetops/faults",
        Some(&json!({"rules": [{"service": "ec2", "operation": "CreateTags", "error": "RequestLimitExceeded", "max_count": 8}]})),
    );
    let function = fleet.start_function(&[]);
    let output = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&output, "stopped"), vec![id.clone()]);
    let warnings = reasons(&output, "warnings", "reason");
    assert!(
        warnings
            .get(&id)
            .is_some_and(|r| r.contains("could not be written")),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_late_tick_after_a_newer_one_then_it_never_undoes_the_newer_decision() {
    let fleet = Fleet::new().await;
    fleet
        .put_schedules(r#"{"schedules": {"office": {"enforced": true, "periods": [{"begin": "09:00", "end": "18:00"}]}}}"#)
        .await;
    let id = fleet.launch(&[("Schedule", "office")]).await;
    fleet.set_state(&id, "stopped");
    let function = fleet.start_function(&[]);
    let current = function
        .invoke(&tick_at("2026-11-26T09:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&current, "started"), vec![id.clone()]);
    // The 08:55 tick, retried by EventBridge, arrives after the 09:05 one.
    let late = function
        .invoke(&tick_at("2026-11-26T08:55:00Z"))
        .output()
        .clone();
    assert!(ids(&late, "stopped").is_empty(), "{late}");
    assert!(
        reasons(&late, "skipped", "reason")[&id].starts_with("late tick"),
        "{late}"
    );
    assert_eq!(fleet.states().await[&id], "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_instance_that_shuts_itself_down_at_boot_then_it_is_reported_not_restarted_every_tick(
) {
    let fleet = Fleet::new().await;
    fleet
        .put_schedules(r#"{"schedules": {"office": {"enforced": true, "periods": [{"begin": "09:00", "end": "18:00"}]}}}"#)
        .await;
    let id = fleet.launch(&[("Schedule", "office")]).await;
    fleet.set_state(&id, "stopped");
    fleet.emulator.control(
        "POST",
        "/_fleetops/ec2/start-fails",
        Some(&json!({"instance_id": id, "code": "Client.InstanceInitiatedShutdown", "message": "Client.InstanceInitiatedShutdown: Instance initiated shutdown"})),
    );
    let function = fleet.start_function(&[]);
    let first = function
        .invoke(&tick_at("2026-11-26T09:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&first, "started"), vec![id.clone()]);
    for at in [
        "2026-11-26T09:10:00Z",
        "2026-11-26T09:15:00Z",
        "2026-11-26T12:00:00Z",
    ] {
        let output = function.invoke(&tick_at(at)).output().clone();
        assert!(ids(&output, "started").is_empty(), "at {at}: {output}");
        assert!(
            reasons(&output, "failed", "error")[&id].contains("InstanceInitiatedShutdown"),
            "at {at}: {output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_stop_that_fails_past_the_sdk_retries_then_the_instance_is_reported_failed() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(OFFICE_AND_LATE).await;
    let id = fleet.launch(&[("Schedule", "office")]).await;
    fleet.emulator.control(
        "POST",
        "/_fleetops/faults",
        Some(&json!({"rules": [{"service": "ec2", "operation": "StopInstances", "error": "RequestLimitExceeded", "max_count": 8}]})),
    );
    let function = fleet.start_function(&[]);
    let output = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    assert!(ids(&output, "stopped").is_empty(), "{output}");
    assert!(
        reasons(&output, "failed", "error")[&id].contains("RequestLimitExceeded"),
        "{output}"
    );
    assert_eq!(fleet.states().await[&id], "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_instance_being_patched_then_the_evening_tick_waits_for_the_patch_to_end() {
    let fleet = Fleet::new().await;
    fleet.put_schedules(OFFICE_AND_LATE).await;
    let patching = fleet.launch(&[("Schedule", "office")]).await;
    let idle = fleet.launch(&[("Schedule", "office")]).await;
    // Someone else's patch run (a maintenance window, say), an hour long.
    fleet.emulator.control(
        "POST",
        "/_fleetops/ssm/agent",
        Some(&json!({"instance_id": patching, "online_after_seconds": 0})),
    );
    fleet.emulator.control(
        "POST",
        "/_fleetops/ssm/command-outcome",
        Some(&json!({"instance_id": patching, "status": "Success", "after_seconds": 3600})),
    );
    let config = fleet.emulator.sdk_config("us-east-1").await;
    aws_sdk_ssm::Client::new(&config)
        .send_command()
        .document_name("AWS-RunPatchBaseline")
        .instance_ids(&patching)
        .parameters("Operation", vec!["Install".to_string()])
        .send()
        .await
        .expect("patch command");
    let function = fleet.start_function(&[]);
    let evening = function
        .invoke(&tick_at("2026-11-26T18:05:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&evening, "stopped"), vec![idle.clone()], "{evening}");
    assert!(
        reasons(&evening, "skipped", "reason")[&patching].contains("patching"),
        "{evening}"
    );
    assert_eq!(fleet.states().await[&patching], "running");
    // The patch run ends; the next tick stops it (the 18:00 stop is not lost).
    fleet.emulator.control(
        "POST",
        "/_fleetops/clock/advance",
        Some(&json!({"seconds": 3700})),
    );
    let later = function
        .invoke(&tick_at("2026-11-26T18:10:00Z"))
        .output()
        .clone();
    assert_eq!(ids(&later, "stopped"), vec![patching.clone()], "{later}");
}
