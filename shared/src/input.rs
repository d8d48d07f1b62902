//! What every function reads from its environment and its event, and the
//! errors that name the variable or field that was wrong.

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

/// One run of a function on an EventBridge schedule (a "tick"): the instant
/// to evaluate and whether to hold back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickRequest {
    pub now: Timestamp,
    pub dry_run: bool,
    /// When to stop sending stops and starts: the invocation's deadline less
    /// the time to record and answer (set by the function; `None`: no limit).
    pub act_until: Option<std::time::Instant>,
    /// What this process remembers of its last reads (set by the scheduler's
    /// function for warm invocations; `None`: every read starts cold).
    pub memory: Option<&'static crate::scheduler::read::ReadMemory>,
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
                act_until: None,
                memory: None,
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
    Ok(TickRequest {
        now,
        dry_run,
        act_until: None,
        memory: None,
    })
}

/// `REGIONS`: a comma list of region names, default `own_region`. Both the
/// scheduler and the reporter read it with this.
pub fn parse_regions(
    value: Option<&str>,
    own_region: Option<&str>,
) -> Result<Vec<String>, EnvError> {
    let regions: Vec<String> = match value.map(str::trim).filter(|v| !v.is_empty()) {
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
    Ok(regions)
}

fn is_region_name(name: &str) -> bool {
    name.split('-').count() >= 3
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An environment of fixed pairs, for settings tests.
#[cfg(test)]
pub(crate) fn test_env(
    pairs: &'static [(&'static str, &'static str)],
) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}
