//! Pure decisions: rate controls as SSM accepts them, the day's snapshot id,
//! what to do with a launch, and whether a patch run really succeeded.

use jiff::Timestamp;

use super::events::LaunchDetail;
use super::settings::LifecycleResult;

/// SSM's pattern for `MaxConcurrency`: `^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`.
pub fn validate_max_concurrency(value: &str) -> Result<(), String> {
    validate_rate(value, false).map_err(|p| {
        format!("\"{value}\" {p}; expected a count of 1 or more or a percentage 1%..100%")
    })
}

/// SSM's pattern for `MaxErrors`: `^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$`.
pub fn validate_max_errors(value: &str) -> Result<(), String> {
    validate_rate(value, true).map_err(|p| {
        format!("\"{value}\" {p}; expected a count of 0 or more or a percentage 0%..100%")
    })
}

fn validate_rate(value: &str, zero_ok: bool) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > 7 {
        return Err("has the wrong length");
    }
    let (digits, percent) = match value.strip_suffix('%') {
        Some(d) => (d, true),
        None => (value, false),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not a number");
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err("has a leading zero");
    }
    let n: u64 = digits.parse().map_err(|_| "is not a number")?;
    if n == 0 && !zero_ok {
        return Err("is zero");
    }
    if percent && n > 100 {
        return Err("is over 100%");
    }
    Ok(())
}

/// Fixed namespace for fleetops' snapshot ids (a v4 UUID chosen once).
const SNAPSHOT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6b1f_0c55_2a3e_4d8e_9f0a_5e2d_7c41_b3a9);

/// One `SnapshotId` per patch group and UTC day: a UUID v5 of `"<group>/<YYYY-MM-DD>"`,
/// so every Install of the group that day installs the same patch set.
pub fn snapshot_id(patch_group: &str, now: Timestamp) -> String {
    let day = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    uuid_v5(
        &SNAPSHOT_NAMESPACE,
        format!("{patch_group}/{day}").as_bytes(),
    )
    .to_string()
}

/// RFC 9562 version 5 (SHA-1 of namespace and name).
fn uuid_v5(namespace: &uuid::Uuid, name: &[u8]) -> uuid::Uuid {
    use sha1::Digest;
    let digest = sha1::Sha1::new()
        .chain_update(namespace.as_bytes())
        .chain_update(name)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The patch group of an instance from its tags (`Patch Group`, else
/// `PatchGroup`, blank values ignored): the one lookup the reporter uses too.
pub use crate::tags::patch_group;

/// What a launch event asks for, before looking at the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaunchDecision {
    /// Not our hook or not a launch: leave it alone.
    Ignore(String),
    /// Complete at once with this result and reason.
    Complete(LifecycleResult, String),
    /// Patch it (scale-out or launch into the warm pool).
    Patch,
}

pub fn decide_launch(detail: &LaunchDetail, hook_name: &str) -> LaunchDecision {
    if detail.hook != hook_name {
        return LaunchDecision::Ignore(format!("hook {} is not {hook_name}", detail.hook));
    }
    if detail.transition != super::events::LAUNCHING {
        return LaunchDecision::Ignore(format!("transition {} is not a launch", detail.transition));
    }
    if detail.from_warm_pool() {
        return LaunchDecision::Complete(
            LifecycleResult::Continue,
            "from the warm pool into service: patched when it was warmed".into(),
        );
    }
    LaunchDecision::Patch
}

/// An instance's patch state, as far as the verdict needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchStateView {
    pub operation: Option<String>,
    pub operation_end: Option<Timestamp>,
    pub failed_count: i32,
    pub missing_count: i32,
}

/// Whether a command's final status means the lifecycle action may continue:
/// `Ok(reason)` to CONTINUE, `Err(reason)` for a failure.
pub fn verdict(
    status: &str,
    sent_at: Timestamp,
    state: Option<&PatchStateView>,
) -> Result<String, String> {
    if status != "Success" {
        return Err(format!("patch command ended {status}"));
    }
    let Some(state) = state else {
        return Err("command succeeded but the instance has no patch state".into());
    };
    if state.operation.as_deref() != Some("Install") {
        return Err(format!(
            "patch state shows operation {}, not Install",
            state.operation.as_deref().unwrap_or("(none)")
        ));
    }
    match state.operation_end {
        Some(end) if end >= sent_at => {}
        Some(end) => {
            return Err(format!(
                "last Install ended {end}, before the command was sent at {sent_at}"
            ))
        }
        None => return Err("patch state has no operation end time".into()),
    }
    if state.failed_count > 0 || state.missing_count > 0 {
        return Err(format!(
            "patch state shows {} failed and {} missing patches",
            state.failed_count, state.missing_count
        ));
    }
    Ok("patched: Install succeeded with no failed or missing patches".into())
}

/// Final statuses of a command invocation.
pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        "Success"
            | "Failed"
            | "TimedOut"
            | "Cancelled"
            | "DeliveryTimedOut"
            | "ExecutionTimedOut"
            | "Undeliverable"
            | "Terminated"
            | "InvalidPlatform"
            | "AccessDenied"
    )
}

/// Timestamps as RFC 3339 strings in the records.
pub(crate) mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }

    pub mod option {
        use jiff::Timestamp;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&t.to_string()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
                None => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_controls_follow_the_ssm_patterns() {
        for ok in ["1", "10", "250", "1%", "10%", "99%", "100%"] {
            assert!(validate_max_concurrency(ok).is_ok(), "{ok}");
            assert!(validate_max_errors(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0", "0%", "", "01", "101%", "10 %", "-1", "%", "1.5", "ten", "12345678",
        ] {
            assert!(validate_max_concurrency(bad).is_err(), "{bad}");
        }
        for ok in ["0", "0%", "5%"] {
            assert!(validate_max_errors(ok).is_ok(), "{ok}");
        }
        for bad in ["00", "101%", "-1", "x"] {
            assert!(validate_max_errors(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_snapshot_id_is_one_per_group_and_day() {
        let morning: Timestamp = "2026-11-26T01:00:00Z".parse().unwrap();
        let evening: Timestamp = "2026-11-26T23:59:00Z".parse().unwrap();
        let next_day: Timestamp = "2026-11-27T00:00:01Z".parse().unwrap();
        let id = snapshot_id("web", morning);
        assert_eq!(id, snapshot_id("web", evening));
        assert_ne!(id, snapshot_id("web", next_day));
        assert_ne!(id, snapshot_id("db", morning));
        assert_eq!(id.len(), 36);
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 5);
        // Python: uuid.uuid5(UUID("6b1f0c55-2a3e-4d8e-9f0a-5e2d7c41b3a9"), "web/2026-11-26")
        assert_eq!(id, "304a5f52-da12-5e06-9bdc-866d5b5c8fae");
    }

    #[test]
    fn patch_group_prefers_the_patch_manager_tag() {
        assert_eq!(
            patch_group([("PatchGroup", "b"), ("Patch Group", "a")]),
            Some("a".into())
        );
        assert_eq!(patch_group([("PatchGroup", "b")]), Some("b".into()));
        assert_eq!(patch_group([("patch group", "a")]), None);
        assert_eq!(patch_group([("Patch Group", " ")]), None);
        assert_eq!(
            patch_group([("Patch Group", ""), ("PatchGroup", "web")]),
            Some("web".into()),
            "a blank Patch Group falls back, as in the reporter"
        );
    }

    fn launch(hook: &str, origin: &str, destination: &str) -> LaunchDetail {
        LaunchDetail {
            token: "t".into(),
            group: "web".into(),
            hook: hook.into(),
            instance_id: "i-1".into(),
            transition: super::super::events::LAUNCHING.into(),
            metadata: None,
            origin: Some(origin.into()),
            destination: Some(destination.into()),
        }
    }

    #[test]
    fn launch_decisions() {
        assert_eq!(
            decide_launch(&launch("h", "EC2", "AutoScalingGroup"), "h"),
            LaunchDecision::Patch
        );
        assert_eq!(
            decide_launch(&launch("h", "EC2", "WarmPool"), "h"),
            LaunchDecision::Patch
        );
        assert!(matches!(
            decide_launch(&launch("h", "WarmPool", "AutoScalingGroup"), "h"),
            LaunchDecision::Complete(LifecycleResult::Continue, _)
        ));
        assert!(matches!(
            decide_launch(&launch("other", "EC2", "AutoScalingGroup"), "h"),
            LaunchDecision::Ignore(_)
        ));
    }

    #[test]
    fn the_verdict_checks_the_patch_state() {
        let sent: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let good = PatchStateView {
            operation: Some("Install".into()),
            operation_end: Some("2026-11-26T10:05:00Z".parse().unwrap()),
            failed_count: 0,
            missing_count: 0,
        };
        assert!(verdict("Success", sent, Some(&good)).is_ok());
        assert!(verdict("Failed", sent, Some(&good)).is_err());
        assert!(verdict("Success", sent, None).is_err());
        let stale = PatchStateView {
            operation_end: Some("2026-11-26T09:00:00Z".parse().unwrap()),
            ..good.clone()
        };
        assert!(verdict("Success", sent, Some(&stale))
            .unwrap_err()
            .contains("before"));
        let scan = PatchStateView {
            operation: Some("Scan".into()),
            ..good.clone()
        };
        assert!(verdict("Success", sent, Some(&scan)).is_err());
        let missing = PatchStateView {
            missing_count: 2,
            ..good
        };
        assert!(verdict("Success", sent, Some(&missing))
            .unwrap_err()
            .contains("2 missing"));
    }
}
