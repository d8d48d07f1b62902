//! The patch dispatcher's environment, read and validated once at start-up.

use std::time::Duration;

use crate::input::{parse_flag, EnvError};

/// What to do with the lifecycle action when patching failed, timed out or the
/// agent never came online (`ON_PATCH_FAILURE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    Abandon,
    Continue,
}

impl OnFailure {
    pub fn result(self) -> LifecycleResult {
        match self {
            OnFailure::Abandon => LifecycleResult::Abandon,
            OnFailure::Continue => LifecycleResult::Continue,
        }
    }
}

/// The result a lifecycle action is completed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LifecycleResult {
    Continue,
    Abandon,
}

impl LifecycleResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleResult::Continue => "CONTINUE",
            LifecycleResult::Abandon => "ABANDON",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchSettings {
    /// `ON_PATCH_FAILURE`: `abandon` (default) or `continue`.
    pub on_failure: OnFailure,
    /// `LIFECYCLE_HOOK_NAME`, default `fleetops-patch-on-launch`.
    pub hook_name: String,
    /// `STATE_TABLE` (required): the DynamoDB table of the dispatcher's records.
    pub state_table: String,
    /// `GROUP_OPT_IN_TAG`, default `fleetops:patch-on-launch`: the tag key an
    /// Auto Scaling group must carry (any value) to be patched on launch.
    /// Set but empty: every group with fleetops' hook (`None`).
    pub group_opt_in_tag: Option<String>,
    /// `DRY_RUN`, default false.
    pub dry_run: bool,
    /// `AGENT_REGISTRATION_TIMEOUT_SECONDS`, default 600: how long after the
    /// launch event an instance's SSM agent may take to come online.
    pub agent_registration_timeout: Duration,
    /// `AGENT_POLL_INTERVAL_SECONDS`, default 10: pause between agent checks.
    pub agent_poll_interval: Duration,
    /// `SCHEDULE_TAG`, default `Schedule` (as the scheduler): a patch window
    /// wakes only stopped instances that carry it.
    pub schedule_tag: String,
    /// `SCHEDULES_PARAMETER`, default `/fleetops/schedules` (as the
    /// scheduler): read before a woken instance is stopped again, so one its
    /// schedule wants running by then keeps running.
    pub schedules_parameter: String,
}

impl PatchSettings {
    /// `env` looks a variable up (`std::env::var(..).ok()` in production).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let non_empty = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let on_failure = match non_empty("ON_PATCH_FAILURE")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("abandon") => OnFailure::Abandon,
            Some("continue") => OnFailure::Continue,
            Some(other) => {
                return Err(EnvError {
                    name: "ON_PATCH_FAILURE",
                    problem: format!("\"{other}\" is not abandon or continue"),
                })
            }
        };
        let state_table = non_empty("STATE_TABLE").ok_or(EnvError {
            name: "STATE_TABLE",
            problem: "missing; the name of the dispatcher's DynamoDB table".into(),
        })?;
        if !valid_table_name(&state_table) {
            return Err(EnvError {
                name: "STATE_TABLE",
                problem: format!(
                    "\"{state_table}\" is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)"
                ),
            });
        }
        let group_opt_in_tag = match env("GROUP_OPT_IN_TAG") {
            None => Some("fleetops:patch-on-launch".to_string()),
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(v.trim().to_string()),
        };
        Ok(Self {
            on_failure,
            hook_name: non_empty("LIFECYCLE_HOOK_NAME")
                .unwrap_or_else(|| "fleetops-patch-on-launch".into()),
            state_table,
            group_opt_in_tag,
            dry_run: parse_flag("DRY_RUN", non_empty("DRY_RUN").as_deref())?,
            agent_registration_timeout: seconds(
                "AGENT_REGISTRATION_TIMEOUT_SECONDS",
                non_empty("AGENT_REGISTRATION_TIMEOUT_SECONDS"),
                600,
            )?,
            agent_poll_interval: seconds(
                "AGENT_POLL_INTERVAL_SECONDS",
                non_empty("AGENT_POLL_INTERVAL_SECONDS"),
                10,
            )?,
            schedule_tag: non_empty("SCHEDULE_TAG").unwrap_or_else(|| "Schedule".into()),
            schedules_parameter: non_empty("SCHEDULES_PARAMETER")
                .unwrap_or_else(|| "/fleetops/schedules".into()),
        })
    }
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn seconds(name: &'static str, value: Option<String>, default: u64) -> Result<Duration, EnvError> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n > 0 && n <= 48 * 3600 => Ok(Duration::from_secs(n)),
            _ => Err(EnvError {
                name,
                problem: format!("\"{text}\" is not a number of seconds between 1 and 172800"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::input::test_env as env;

    #[test]
    fn defaults() {
        let s =
            PatchSettings::from_env(env(&[("STATE_TABLE", "fleetops-state")])).expect("defaults");
        assert_eq!(s.on_failure, OnFailure::Abandon);
        assert_eq!(s.hook_name, "fleetops-patch-on-launch");
        assert_eq!(s.state_table, "fleetops-state");
        assert_eq!(
            s.group_opt_in_tag.as_deref(),
            Some("fleetops:patch-on-launch")
        );
        let every =
            PatchSettings::from_env(env(&[("STATE_TABLE", "t-1"), ("GROUP_OPT_IN_TAG", "")]))
                .expect("empty opt-in tag");
        assert_eq!(every.group_opt_in_tag, None);
        assert_eq!(s.agent_registration_timeout, Duration::from_secs(600));
        assert!(!s.dry_run);
        assert_eq!(
            (s.schedule_tag.as_str(), s.schedules_parameter.as_str()),
            ("Schedule", "/fleetops/schedules")
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = PatchSettings::from_env(env(&[
            ("STATE_TABLE", "t-1"),
            ("ON_PATCH_FAILURE", "retry"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "ON_PATCH_FAILURE");
        let e = PatchSettings::from_env(env(&[
            ("STATE_TABLE", "t-1"),
            ("AGENT_REGISTRATION_TIMEOUT_SECONDS", "soon"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "AGENT_REGISTRATION_TIMEOUT_SECONDS");
        let e = PatchSettings::from_env(env(&[])).unwrap_err();
        assert_eq!(e.name, "STATE_TABLE");
        let e = PatchSettings::from_env(env(&[("STATE_TABLE", "no/slash")])).unwrap_err();
        assert_eq!(e.name, "STATE_TABLE");
        let s = PatchSettings::from_env(env(&[
            ("STATE_TABLE", "t-1"),
            ("ON_PATCH_FAILURE", "Continue"),
        ]))
        .unwrap();
        assert_eq!(s.on_failure, OnFailure::Continue);
    }
}
