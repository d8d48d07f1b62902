//! The scheduler's environment and its event, read and validated once.

use jiff::Timestamp;
use serde_json::Value;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct EnvError {
    pub name: &'static str,
    pub problem: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: field \"{field}\": {problem}")]
pub struct EventError {
    pub field: &'static str,
    pub problem: String,
}

/// The scheduler's settings from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// `SCHEDULE_TAG`, default `Schedule`.
    pub schedule_tag: String,
    /// `SCHEDULES_PARAMETER`, default `/fleetops/schedules`.
    pub schedules_parameter: String,
    /// `DRY_RUN`, default false.
    pub dry_run: bool,
    /// `REGIONS`, default the function's own region.
    pub regions: Vec<String>,
}

impl SchedulerSettings {
    /// `env` looks a variable up (`std::env::var(..).ok()` in production).
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        own_region: Option<&str>,
    ) -> Result<Self, EnvError> {
        let non_empty = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let regions: Vec<String> = match non_empty("REGIONS") {
            Some(list) => list
                .split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect(),
            None => own_region.map(|r| vec![r.to_string()]).unwrap_or_default(),
        };
        if regions.is_empty() {
            return Err(EnvError {
                name: "REGIONS",
                problem: "no region: set REGIONS (comma list) or AWS_REGION".into(),
            });
        }
        if let Some(bad) = regions.iter().find(|r| !is_region_name(r)) {
            return Err(EnvError {
                name: "REGIONS",
                problem: format!("\"{bad}\" is not a region name such as eu-west-1"),
            });
        }
        Ok(Self {
            schedule_tag: non_empty("SCHEDULE_TAG").unwrap_or_else(|| "Schedule".into()),
            schedules_parameter: non_empty("SCHEDULES_PARAMETER")
                .unwrap_or_else(|| "/fleetops/schedules".into()),
            dry_run: parse_flag("DRY_RUN", non_empty("DRY_RUN").as_deref())?,
            regions,
        })
    }
}

fn is_region_name(name: &str) -> bool {
    name.split('-').count() >= 3
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `true`/`false` (any case), `1`/`0`, `yes`/`no`; unset is false.
pub fn parse_flag(name: &'static str, value: Option<&str>) -> Result<bool, EnvError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(EnvError {
            name,
            problem: format!("\"{other}\" is not a flag; expected true or false"),
        }),
    }
}

/// What one invocation asks for: the instant to evaluate and whether to hold back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickRequest {
    pub now: Timestamp,
    pub dry_run: bool,
}

/// Reads an EventBridge "Scheduled Event" (or a manual `{"time", "dry_run"}`
/// event): "now" is its `time` when present, else `clock`.
pub fn parse_tick_event(event: &Value, clock: Timestamp) -> Result<TickRequest, EventError> {
    let object = match event {
        Value::Object(o) => o,
        Value::Null => {
            return Ok(TickRequest {
                now: clock,
                dry_run: false,
            })
        }
        _ => {
            return Err(EventError {
                field: "(event)",
                problem: "expected a JSON object".into(),
            })
        }
    };
    let now = match object.get("time") {
        None | Some(Value::Null) => clock,
        Some(Value::String(text)) => text.parse::<Timestamp>().map_err(|e| EventError {
            field: "time",
            problem: format!("\"{text}\" is not an RFC 3339 timestamp ({e})"),
        })?,
        Some(other) => {
            return Err(EventError {
                field: "time",
                problem: format!("expected an RFC 3339 string, found {other}"),
            })
        }
    };
    let dry_run = match object.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(EventError {
                field: "dry_run",
                problem: format!("expected true or false, found {other}"),
            })
        }
    };
    Ok(TickRequest { now, dry_run })
}
