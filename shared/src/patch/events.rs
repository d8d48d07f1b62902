//! The four triggers of the patch dispatcher, parsed from the raw event.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::decide::{validate_max_concurrency, validate_max_errors};
pub use crate::input::EventError;

pub const LAUNCH_DETAIL_TYPE: &str = "EC2 Instance-launch Lifecycle Action";
pub const COMMAND_STATUS_DETAIL_TYPE: &str = "EC2 Command Invocation Status-change Notification";
/// The command-level event: one per command, however many instances it ran on.
pub const COMMAND_FINISHED_DETAIL_TYPE: &str = "EC2 Command Status-change Notification";
pub const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
pub const PATCH_DOCUMENT: &str = "AWS-RunPatchBaseline";

/// `detail` of `aws.autoscaling` / `EC2 Instance-launch Lifecycle Action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchDetail {
    #[serde(rename = "LifecycleActionToken")]
    pub token: String,
    #[serde(rename = "AutoScalingGroupName")]
    pub group: String,
    #[serde(rename = "LifecycleHookName")]
    pub hook: String,
    #[serde(rename = "EC2InstanceId")]
    pub instance_id: String,
    #[serde(rename = "LifecycleTransition")]
    pub transition: String,
    #[serde(rename = "NotificationMetadata", default)]
    pub metadata: Option<String>,
    #[serde(rename = "Origin", default)]
    pub origin: Option<String>,
    #[serde(rename = "Destination", default)]
    pub destination: Option<String>,
}

impl LaunchDetail {
    /// An instance moving from the warm pool into service (patched when it was warmed).
    pub fn from_warm_pool(&self) -> bool {
        self.origin.as_deref() == Some("WarmPool")
    }
}

/// `detail` of `aws.ssm` / `EC2 Command Invocation Status-change Notification`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandStatusDetail {
    pub command_id: String,
    pub document_name: String,
    pub instance_id: String,
    #[serde(default)]
    pub requested_date_time: Option<String>,
    pub status: String,
    #[serde(default)]
    pub status_details: Option<String>,
}

/// `detail` of `aws.ssm` / `EC2 Command Status-change Notification` (the
/// command as a whole; `parameters` and `expire-after` are not needed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandFinishedDetail {
    pub command_id: String,
    pub document_name: String,
    pub status: String,
    #[serde(default)]
    pub requested_date_time: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Operation {
    Scan,
    Install,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Scan => "Scan",
            Operation::Install => "Install",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RebootOption {
    RebootIfNeeded,
    NoReboot,
}

impl RebootOption {
    pub fn as_str(self) -> &'static str {
        match self {
            RebootOption::RebootIfNeeded => "RebootIfNeeded",
            RebootOption::NoReboot => "NoReboot",
        }
    }
}

/// The constant input of a patch schedule rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledPatch {
    pub patch_group: String,
    pub operation: Operation,
    pub max_concurrency: String,
    pub max_errors: String,
    pub reboot: RebootOption,
    /// What identifies the run with the group and operation: the scheduled
    /// event's `time` (passed in by the rule's input transformer), or the UTC
    /// day of the delivery when the input has none.
    pub time: Option<jiff::Timestamp>,
    /// `wake_stopped: true`: how long the patch window lasts
    /// (`window_minutes`, default 120). `None`: only running instances.
    pub wake_window: Option<jiff::SignedDuration>,
}

/// `window_minutes` when `wake_stopped` is true and it is not given.
pub const DEFAULT_WINDOW_MINUTES: u64 = 120;

/// The keys a schedule's input may have; any other is refused by name.
const SCHEDULED_KEYS: &[&str] = &[
    "patch_group",
    "operation",
    "max_concurrency",
    "max_errors",
    "reboot",
    "time",
    "wake_stopped",
    "window_minutes",
    "dry_run",
];

#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    Launch(LaunchDetail),
    CommandStatus(CommandStatusDetail),
    CommandFinished(CommandFinishedDetail),
    Scheduled(ScheduledPatch),
    Sweep,
}

/// One invocation's request: what triggered it and whether to hold back.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchRequest {
    pub trigger: Trigger,
    pub dry_run: bool,
}

fn err(field: &'static str, problem: impl Into<String>) -> EventError {
    EventError {
        field,
        problem: problem.into(),
    }
}

/// Reads any of the dispatcher's events: the two EventBridge envelopes, a
/// schedule's constant input, or `{"sweep": true}`; `"dry_run": true` anywhere
/// at the top level.
pub fn parse_event(event: &Value) -> Result<PatchRequest, EventError> {
    let Value::Object(object) = event else {
        return Err(err("(event)", "expected a JSON object"));
    };
    let dry_run = match object.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(err(
                "dry_run",
                format!("expected true or false, found {other}"),
            ))
        }
    };
    let trigger = if let Some(detail_type) = object.get("detail-type") {
        let detail_type = detail_type.as_str().ok_or_else(|| {
            err(
                "detail-type",
                format!("expected a string, found {detail_type}"),
            )
        })?;
        match detail_type {
            LAUNCH_DETAIL_TYPE => {
                require_source(object, "aws.autoscaling")?;
                Trigger::Launch(typed_detail(object, LAUNCH_FIELDS)?)
            }
            COMMAND_STATUS_DETAIL_TYPE => {
                require_source(object, "aws.ssm")?;
                Trigger::CommandStatus(typed_detail(object, COMMAND_STATUS_FIELDS)?)
            }
            COMMAND_FINISHED_DETAIL_TYPE => {
                require_source(object, "aws.ssm")?;
                Trigger::CommandFinished(typed_detail(object, COMMAND_FINISHED_FIELDS)?)
            }
            other => {
                return Err(err(
                    "detail-type",
                    format!("\"{other}\" is not \"{LAUNCH_DETAIL_TYPE}\", \"{COMMAND_STATUS_DETAIL_TYPE}\" or \"{COMMAND_FINISHED_DETAIL_TYPE}\""),
                ))
            }
        }
    } else if object.contains_key("patch_group") {
        Trigger::Scheduled(parse_scheduled(object)?)
    } else if let Some(sweep) = object.get("sweep") {
        match sweep {
            Value::Bool(true) => Trigger::Sweep,
            other => return Err(err("sweep", format!("expected true, found {other}"))),
        }
    } else {
        return Err(err(
            "(event)",
            "unknown shape: expected an EventBridge lifecycle or command-status event, a schedule input with \"patch_group\", or {\"sweep\": true}",
        ));
    };
    Ok(PatchRequest { trigger, dry_run })
}

fn require_source(
    object: &serde_json::Map<String, Value>,
    expected: &str,
) -> Result<(), EventError> {
    match object.get("source") {
        Some(Value::String(source)) if source == expected => Ok(()),
        Some(Value::String(source)) => {
            Err(err("source", format!("\"{source}\" is not {expected}")))
        }
        None => Err(err("source", "missing")),
        Some(other) => Err(err(
            "source",
            format!("expected \"{expected}\", found {other}"),
        )),
    }
}

/// A detail field: its key, the name errors give it, and whether it is required.
type DetailField = (&'static str, &'static str, bool);

const LAUNCH_FIELDS: &[DetailField] = &[
    ("LifecycleActionToken", "detail.LifecycleActionToken", true),
    ("AutoScalingGroupName", "detail.AutoScalingGroupName", true),
    ("LifecycleHookName", "detail.LifecycleHookName", true),
    ("EC2InstanceId", "detail.EC2InstanceId", true),
    ("LifecycleTransition", "detail.LifecycleTransition", true),
    ("NotificationMetadata", "detail.NotificationMetadata", false),
    ("Origin", "detail.Origin", false),
    ("Destination", "detail.Destination", false),
];

const COMMAND_STATUS_FIELDS: &[DetailField] = &[
    ("command-id", "detail.command-id", true),
    ("document-name", "detail.document-name", true),
    ("instance-id", "detail.instance-id", true),
    ("status", "detail.status", true),
    ("requested-date-time", "detail.requested-date-time", false),
    ("status-details", "detail.status-details", false),
];

const COMMAND_FINISHED_FIELDS: &[DetailField] = &[
    ("command-id", "detail.command-id", true),
    ("document-name", "detail.document-name", true),
    ("status", "detail.status", true),
    ("requested-date-time", "detail.requested-date-time", false),
    ("expire-after", "detail.expire-after", false),
];

/// Checks every field of `detail` by name (so an error says which one), then
/// reads it into its type.
fn typed_detail<T: serde::de::DeserializeOwned>(
    object: &serde_json::Map<String, Value>,
    fields: &[DetailField],
) -> Result<T, EventError> {
    let detail = match object.get("detail") {
        Some(Value::Object(detail)) => detail,
        None => return Err(err("detail", "missing")),
        Some(other) => return Err(err("detail", format!("expected an object, found {other}"))),
    };
    for &(key, field, required) in fields {
        match detail.get(key) {
            None | Some(Value::Null) if required => return Err(err(field, "missing")),
            None | Some(Value::Null) => {}
            Some(Value::String(text)) if required && text.trim().is_empty() => {
                return Err(err(field, "empty"))
            }
            Some(Value::String(_)) => {}
            Some(other) => return Err(err(field, format!("expected a string, found {other}"))),
        }
    }
    serde_json::from_value(Value::Object(detail.clone())).map_err(|e| err("detail", e.to_string()))
}

fn string_field<'a>(
    object: &'a serde_json::Map<String, Value>,
    field: &'static str,
    default: Option<&'a str>,
) -> Result<&'a str, EventError> {
    match object.get(field) {
        None | Some(Value::Null) => default.ok_or_else(|| err(field, "missing")),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        Some(other) => Err(err(
            field,
            format!("expected a non-empty string, found {other}"),
        )),
    }
}

fn parse_scheduled(object: &serde_json::Map<String, Value>) -> Result<ScheduledPatch, EventError> {
    if let Some(unknown) = object
        .keys()
        .find(|k| !SCHEDULED_KEYS.contains(&k.as_str()))
    {
        return Err(EventError {
            field: "(input)",
            problem: format!(
                "unknown key \"{unknown}\"; expected one of {}",
                SCHEDULED_KEYS.join(", ")
            ),
        });
    }
    let wake_stopped = match object.get("wake_stopped") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(wake)) => *wake,
        Some(other) => {
            return Err(err(
                "wake_stopped",
                format!("expected true or false, found {other}"),
            ))
        }
    };
    let window_minutes = match object.get("window_minutes") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|m| (1..=1440).contains(&m)) => n.as_u64(),
        Some(other) => {
            return Err(err(
                "window_minutes",
                format!("expected a number of minutes from 1 to 1440, found {other}"),
            ))
        }
    };
    // A window with no word on waking would be silently ignored: refuse it
    // (an explicit `"wake_stopped": false` switches a rule's window off).
    let wake_given = matches!(object.get("wake_stopped"), Some(Value::Bool(_)));
    if window_minutes.is_some() && !wake_given {
        return Err(err(
            "window_minutes",
            "only meaningful with \"wake_stopped\": true (running instances are patched without a window)",
        ));
    }
    let wake_window = wake_stopped.then(|| {
        let minutes = window_minutes.unwrap_or(DEFAULT_WINDOW_MINUTES);
        jiff::SignedDuration::from_mins(i64::try_from(minutes).unwrap_or(i64::MAX))
    });
    let time = match object.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.trim().parse::<jiff::Timestamp>().map_err(|e| {
            err(
                "time",
                format!("\"{text}\" is not an RFC 3339 instant: {e}"),
            )
        })?),
        Some(other) => {
            return Err(err(
                "time",
                format!("expected an RFC 3339 string, found {other}"),
            ))
        }
    };
    let patch_group = string_field(object, "patch_group", None)?.to_string();
    if patch_group.len() > 256 {
        return Err(err("patch_group", "longer than 256 characters"));
    }
    let operation = match string_field(object, "operation", None)? {
        "Scan" => Operation::Scan,
        "Install" => Operation::Install,
        other => {
            return Err(err(
                "operation",
                format!("\"{other}\" is not Scan or Install"),
            ))
        }
    };
    let max_concurrency = rate_field(object, "max_concurrency", "10%", validate_max_concurrency)?;
    let max_errors = rate_field(object, "max_errors", "1", validate_max_errors)?;
    let reboot = match string_field(object, "reboot", Some("RebootIfNeeded"))? {
        "RebootIfNeeded" => RebootOption::RebootIfNeeded,
        "NoReboot" => RebootOption::NoReboot,
        other => {
            return Err(err(
                "reboot",
                format!("\"{other}\" is not RebootIfNeeded or NoReboot"),
            ))
        }
    };
    Ok(ScheduledPatch {
        patch_group,
        operation,
        max_concurrency,
        max_errors,
        reboot,
        time,
        wake_window,
    })
}

/// Rate controls may be given as a string (`"10%"`, `"5"`) or a JSON number.
fn rate_field(
    object: &serde_json::Map<String, Value>,
    field: &'static str,
    default: &str,
    validate: fn(&str) -> Result<(), String>,
) -> Result<String, EventError> {
    let text = match object.get(field) {
        None | Some(Value::Null) => default.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(err(
                field,
                format!("expected a count or a percentage, found {other}"),
            ))
        }
    };
    validate(&text).map_err(|problem| err(field, problem))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn sample(name: &str) -> Value {
        let text = match name {
            "launch" => include_str!("../../../events/patch-dispatcher-lifecycle-launch.json"),
            "warm" => include_str!("../../../events/patch-dispatcher-warm-pool-launch.json"),
            "status" => include_str!("../../../events/patch-dispatcher-command-status.json"),
            "scheduled" => include_str!("../../../events/patch-dispatcher-scheduled-install.json"),
            "finished" => include_str!("../../../events/patch-dispatcher-command-finished.json"),
            _ => include_str!("../../../events/patch-dispatcher-sweep.json"),
        };
        serde_json::from_str(text).expect("sample is JSON")
    }

    #[test]
    fn the_sample_events_parse() {
        let PatchRequest {
            trigger: Trigger::Launch(launch),
            dry_run: false,
        } = parse_event(&sample("launch")).expect("launch")
        else {
            panic!("not a launch")
        };
        assert_eq!(launch.transition, LAUNCHING);
        assert!(!launch.from_warm_pool());
        let Trigger::Launch(warm) = parse_event(&sample("warm")).expect("warm").trigger else {
            panic!("not a launch")
        };
        assert_eq!(warm.destination.as_deref(), Some("WarmPool"));
        let Trigger::CommandStatus(status) =
            parse_event(&sample("status")).expect("status").trigger
        else {
            panic!("not a status")
        };
        assert_eq!(status.document_name, PATCH_DOCUMENT);
        let Trigger::Scheduled(s) = parse_event(&sample("scheduled"))
            .expect("scheduled")
            .trigger
        else {
            panic!("not scheduled")
        };
        assert_eq!(
            (
                s.patch_group.as_str(),
                s.operation,
                s.max_concurrency.as_str()
            ),
            ("web", Operation::Install, "10%")
        );
        assert_eq!(
            parse_event(&sample("sweep")).expect("sweep").trigger,
            Trigger::Sweep
        );
    }

    #[test]
    fn the_command_level_event_and_the_run_time_parse() {
        let Trigger::CommandFinished(done) =
            parse_event(&sample("finished")).expect("finished").trigger
        else {
            panic!("not a command-level event")
        };
        assert_eq!(
            (done.document_name.as_str(), done.status.as_str()),
            (PATCH_DOCUMENT, "Success")
        );
        let Trigger::Scheduled(s) = parse_event(&sample("scheduled"))
            .expect("scheduled")
            .trigger
        else {
            panic!("not scheduled")
        };
        assert_eq!(s.time, Some("2026-11-29T02:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_schedule_input_with_an_unknown_or_unsupported_key_is_refused_by_name() {
        let mut typo = sample("scheduled");
        typo["wake_stoped"] = json!(true);
        let e = parse_event(&typo).unwrap_err();
        assert!(e.problem.contains("\"wake_stoped\""), "{e}");
        let mut wake = sample("scheduled");
        wake["wake_stopped"] = json!("yes");
        assert_eq!(parse_event(&wake).unwrap_err().field, "wake_stopped");
        let mut lonely = sample("scheduled");
        lonely["window_minutes"] = json!(60);
        assert_eq!(parse_event(&lonely).unwrap_err().field, "window_minutes");
        let mut time = sample("scheduled");
        time["time"] = json!("2026-11-29 02:00");
        assert_eq!(parse_event(&time).unwrap_err().field, "time");
        let mut minutes = sample("scheduled");
        minutes["window_minutes"] = json!(0);
        assert_eq!(parse_event(&minutes).unwrap_err().field, "window_minutes");
    }

    #[test]
    fn wake_stopped_opens_a_window_of_window_minutes_default_120() {
        let scheduled = |input: Value| match parse_event(&input).expect("valid").trigger {
            Trigger::Scheduled(s) => s,
            other => panic!("not scheduled: {other:?}"),
        };
        assert_eq!(scheduled(sample("scheduled")).wake_window, None);
        let mut wake = sample("scheduled");
        wake["wake_stopped"] = json!(true);
        assert_eq!(
            scheduled(wake.clone()).wake_window,
            Some(jiff::SignedDuration::from_mins(120))
        );
        wake["window_minutes"] = json!(45);
        assert_eq!(
            scheduled(wake).wake_window,
            Some(jiff::SignedDuration::from_mins(45))
        );
    }

    #[test]
    fn a_launch_without_the_instance_id_names_the_field() {
        let mut e = sample("launch");
        e["detail"]
            .as_object_mut()
            .expect("detail")
            .remove("EC2InstanceId");
        let error = parse_event(&e).unwrap_err();
        assert_eq!(error.field, "detail.EC2InstanceId");
        let mut e = sample("status");
        e["detail"]["status"] = json!(3);
        assert_eq!(parse_event(&e).unwrap_err().field, "detail.status");
    }

    #[test]
    fn wrong_detail_type_and_unknown_shapes_are_rejected() {
        let mut e = sample("status");
        e["detail-type"] = json!("EC2 Instance State-change Notification");
        assert_eq!(parse_event(&e).unwrap_err().field, "detail-type");
        let mut e = sample("status");
        e["source"] = json!("aws.ec2");
        assert_eq!(parse_event(&e).unwrap_err().field, "source");
        assert_eq!(
            parse_event(&json!({"hello": 1})).unwrap_err().field,
            "(event)"
        );
        assert_eq!(parse_event(&json!([1])).unwrap_err().field, "(event)");
        assert_eq!(
            parse_event(&json!({"sweep": true, "dry_run": "yes"}))
                .unwrap_err()
                .field,
            "dry_run"
        );
    }

    #[test]
    fn scheduled_input_is_validated_field_by_field() {
        let base = json!({"patch_group": "web", "operation": "Install", "max_concurrency": "10%", "max_errors": "1", "reboot": "NoReboot"});
        assert!(parse_event(&base).is_ok());
        for (field, value) in [
            ("operation", json!("Patch")),
            ("max_concurrency", json!("0")),
            ("max_concurrency", json!("101%")),
            ("max_errors", json!("-1")),
            ("reboot", json!("Always")),
            ("patch_group", json!("")),
        ] {
            let mut e = base.clone();
            e[field] = value;
            assert_eq!(parse_event(&e).unwrap_err().field, field);
        }
        let mut e = base.clone();
        e["max_concurrency"] = json!(5);
        let Trigger::Scheduled(s) = parse_event(&e).expect("number").trigger else {
            panic!()
        };
        assert_eq!(s.max_concurrency, "5");
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,12}".prop_map(Value::String),
            Just(json!("10%")),
            Just(json!("Install")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("\\PC{0,10}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const SAMPLES: [&str; 5] = ["launch", "warm", "status", "scheduled", "sweep"];

    proptest::proptest! {
        /// Any JSON at all: parsed or rejected, never a panic, and the
        /// rejection names a field.
        #[test]
        fn any_json_is_parsed_or_rejected_with_a_field(event in any_json()) {
            if let Err(error) = parse_event(&event) {
                proptest::prop_assert!(!error.field.is_empty() && !error.problem.is_empty());
            }
        }

        /// A real sample with one field removed or replaced by anything: the
        /// rejection names that field (or the field it made the event into).
        #[test]
        fn a_broken_sample_names_the_broken_field(
            sample_index in 0..SAMPLES.len(),
            pick in any::<proptest::sample::Index>(),
            replacement in proptest::option::of(any_json()),
        ) {
            let mut event = sample(SAMPLES[sample_index]);
            let in_detail = event.get("detail").is_some_and(Value::is_object);
            let target = if in_detail { &mut event["detail"] } else { &mut event };
            let object = target.as_object_mut().expect("object");
            let keys: Vec<String> = object.keys().cloned().collect();
            let key = keys[pick.index(keys.len())].clone();
            match &replacement {
                Some(value) => { object.insert(key.clone(), value.clone()); }
                None => { object.remove(&key); }
            }
            if let Err(error) = parse_event(&event) {
                let named = if in_detail { format!("detail.{key}") } else { key.clone() };
                proptest::prop_assert!(
                    error.field == named
                        || error.field == "(event)"
                        || !in_detail && ["patch_group", "sweep"].contains(&error.field),
                    "{key} broken, error {error}"
                );
            }
        }
    }
}
