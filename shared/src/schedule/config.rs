//! The schedules document kept in Parameter Store, read into typed, validated
//! schedules. A broken schedule is kept as an error next to its name so that
//! only its own instances are skipped; a broken document fails as a whole.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use super::fields::{
    parse_clock_time, parse_monthdays, parse_months, parse_skip_date, parse_weekdays, ClockTime,
    MonthdayRule, SkipDate, WeekdayRule,
};

/// The whole document could not be used: nothing may change on this tick.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("schedules document is not valid JSON (line {line}, column {column}): {source}")]
    NotJson {
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("schedules document: expected a JSON object with a \"schedules\" object, {found}")]
    Shape { found: String },
}

/// One schedule is invalid; its instances are skipped with this as the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("schedule \"{schedule}\": {field}: {problem}")]
pub struct ScheduleError {
    pub schedule: String,
    pub field: String,
    pub problem: String,
}

/// A period: when all of its day conditions hold, the schedule runs between
/// `begin` and `end` (local times in the schedule's zone).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Period {
    pub begin: Option<ClockTime>,
    pub end: Option<ClockTime>,
    pub weekdays: Option<Vec<WeekdayRule>>,
    pub monthdays: Option<Vec<MonthdayRule>>,
    /// Bit 0 = January.
    pub months: Option<u16>,
}

impl Period {
    /// Whether the period applies on this local date (all conditions hold).
    pub fn matches_day(&self, date: jiff::civil::Date) -> bool {
        self.weekdays
            .as_ref()
            .is_none_or(|rules| rules.iter().any(|r| r.matches(date)))
            && self
                .monthdays
                .as_ref()
                .is_none_or(|rules| rules.iter().any(|r| r.matches(date)))
            && self
                .months
                .is_none_or(|mask| mask & (1 << (date.month() - 1)) != 0)
    }
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub name: String,
    /// Identity of the schedule as now written: 12 hex digits of SHA-1 over its
    /// name and its definition (canonical JSON, keys sorted). The transition
    /// marker carries it, so a re-tag or an edit is "not applied yet".
    pub digest: String,
    pub timezone: TimeZone,
    pub periods: Vec<Period>,
    pub enforced: bool,
    pub hibernate: bool,
    pub skip_dates: Vec<SkipDate>,
}

/// Every schedule of the document by name, valid or not.
#[derive(Clone, Debug, Default)]
pub struct Schedules {
    pub by_name: BTreeMap<String, Result<Schedule, ScheduleError>>,
}

impl Schedules {
    pub fn get(&self, name: &str) -> Option<&Result<Schedule, ScheduleError>> {
        self.by_name.get(name)
    }

    pub fn errors(&self) -> impl Iterator<Item = &ScheduleError> {
        self.by_name.values().filter_map(|s| s.as_ref().err())
    }
}

/// Reads the schedules document. Each schedule keeps its first problem (in
/// field order); [`validate_schedules`] lists all of them.
pub fn parse_schedules(document: &str) -> Result<Schedules, ConfigError> {
    let root = read_document(document)?;
    let by_name = schedules_of(&root)?
        .iter()
        .map(|(name, value)| {
            let schedule = read_schedule(name, value).map_err(|mut errors| errors.swap_remove(0));
            (name.clone(), schedule)
        })
        .collect();
    Ok(Schedules { by_name })
}

/// Every problem of every schedule of the document, schedules in name order,
/// each schedule's problems in field order (its first one is the one
/// [`parse_schedules`] keeps). Empty when every schedule is valid.
pub fn validate_schedules(document: &str) -> Result<Vec<ScheduleError>, ConfigError> {
    let root = read_document(document)?;
    let mut schedules: Vec<(&String, &Value)> = schedules_of(&root)?.iter().collect();
    schedules.sort_by(|a, b| a.0.cmp(b.0));
    Ok(schedules
        .into_iter()
        .filter_map(|(name, value)| read_schedule(name, value).err())
        .flatten()
        .collect())
}

fn read_document(document: &str) -> Result<Value, ConfigError> {
    serde_json::from_str(document).map_err(|source| ConfigError::NotJson {
        line: source.line(),
        column: source.column(),
        source,
    })
}

fn schedules_of(root: &Value) -> Result<&Map<String, Value>, ConfigError> {
    root.as_object()
        .and_then(|o| o.get("schedules"))
        .ok_or_else(|| ConfigError::Shape {
            found: "found no \"schedules\" key".into(),
        })?
        .as_object()
        .ok_or_else(|| ConfigError::Shape {
            found: "found \"schedules\" that is not an object".into(),
        })
}

const SCHEDULE_FIELDS: &[&str] = &[
    "timezone",
    "periods",
    "enforced",
    "hibernate",
    "skip_dates",
    "description",
];
const PERIOD_FIELDS: &[&str] = &[
    "begin",
    "end",
    "weekdays",
    "monthdays",
    "months",
    "description",
];

/// The value of a field that could be read; its problem goes to `errors`.
fn keep<T, E>(result: Result<T, E>, errors: &mut Vec<E>) -> Option<T> {
    result.map_err(|error| errors.push(error)).ok()
}

/// Field-by-field reading so every error names its exact path
/// (`periods[1].weekdays`), which serde's messages do not. Every problem is
/// collected, in field order; `Err` is never empty.
fn read_schedule(name: &str, value: &Value) -> Result<Schedule, Vec<ScheduleError>> {
    let fail = |field: &str, problem: String| ScheduleError {
        schedule: name.to_string(),
        field: field.to_string(),
        problem,
    };
    let Some(object) = value.as_object() else {
        return Err(vec![fail(
            "(schedule)",
            format!("expected an object, found {}", kind(value)),
        )]);
    };
    let mut errors: Vec<ScheduleError> = unknown_fields(object, SCHEDULE_FIELDS)
        .into_iter()
        .map(|(f, p)| fail(&f, p))
        .collect();

    let timezone = match object.get("timezone") {
        None | Some(Value::Null) => Ok(TimeZone::UTC),
        Some(Value::String(tz)) => TimeZone::get(tz).map_err(|_| {
            fail(
                "timezone",
                format!("unknown time zone \"{tz}\"; expected an IANA name such as \"Asia/Seoul\" or \"Europe/Berlin\""),
            )
        }),
        Some(other) => Err(fail("timezone", format!("expected a string, found {}", kind(other)))),
    };
    let timezone = keep(timezone, &mut errors);
    let enforced = keep(
        optional_bool(object, "enforced").map_err(|p| fail("enforced", p)),
        &mut errors,
    );
    let hibernate = keep(
        optional_bool(object, "hibernate").map_err(|p| fail("hibernate", p)),
        &mut errors,
    );

    let periods = match object.get("periods") {
        None => {
            errors.push(fail(
                "periods",
                "is missing; expected a list of periods".into(),
            ));
            None
        }
        Some(Value::Array(list)) if list.is_empty() => {
            errors.push(fail(
                "periods",
                "is empty; a schedule needs at least one period (to keep instances stopped, use the ScheduleOverride tag)".into(),
            ));
            None
        }
        Some(Value::Array(list)) => {
            let before = errors.len();
            let periods: Vec<Period> = list
                .iter()
                .enumerate()
                .filter_map(|(i, p)| match parse_period(p) {
                    Ok(period) => Some(period),
                    Err(found) => {
                        errors.extend(
                            found
                                .into_iter()
                                .map(|(f, problem)| fail(&format!("periods[{i}].{f}"), problem)),
                        );
                        None
                    }
                })
                .collect();
            (errors.len() == before).then_some(periods)
        }
        Some(other) => {
            errors.push(fail(
                "periods",
                format!("expected a list, found {}", kind(other)),
            ));
            None
        }
    };

    let skip_dates = match object.get("skip_dates") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let before = errors.len();
            let dates: Vec<SkipDate> = items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let field = format!("skip_dates[{i}]");
                    let date = item
                        .as_str()
                        .ok_or_else(|| {
                            fail(&field, format!("expected a string, found {}", kind(item)))
                        })
                        .and_then(|s| parse_skip_date(s).map_err(|p| fail(&field, p)));
                    keep(date, &mut errors)
                })
                .collect();
            (errors.len() == before).then_some(dates)
        }
        Some(other) => {
            errors.push(fail(
                "skip_dates",
                format!("expected a list, found {}", kind(other)),
            ));
            None
        }
    };

    match (timezone, enforced, hibernate, periods, skip_dates) {
        (Some(timezone), Some(enforced), Some(hibernate), Some(periods), Some(skip_dates))
            if errors.is_empty() =>
        {
            Ok(Schedule {
                name: name.to_string(),
                digest: definition_digest(name, value),
                timezone,
                periods,
                enforced,
                hibernate,
                skip_dates,
            })
        }
        _ => Err(errors),
    }
}

/// The same definition always gives the same digest, whatever its layout or
/// key order in the document (keys are sorted here: `serde_json` may keep the
/// document's order when another crate enables its `preserve_order`).
fn definition_digest(name: &str, value: &Value) -> String {
    use sha1::Digest;
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let digest = sha1::Sha1::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update(canonical.as_bytes())
        .finalize();
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Every problem of one period, in field order (`Err` is never empty).
fn parse_period(value: &Value) -> Result<Period, Vec<(String, String)>> {
    let Some(object) = value.as_object() else {
        return Err(vec![(
            String::new(),
            format!("expected an object, found {}", kind(value)),
        )]);
    };
    let mut errors = unknown_fields(object, PERIOD_FIELDS);
    let text = |field: &str| -> Result<Option<&str>, (String, String)> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err((
                field.into(),
                format!("expected a string, found {}", kind(other)),
            )),
        }
    };
    let begin = keep(
        text("begin").and_then(|t| t.map(parse_clock_time).transpose().map_err(at("begin"))),
        &mut errors,
    );
    let end = keep(
        text("end").and_then(|t| t.map(parse_clock_time).transpose().map_err(at("end"))),
        &mut errors,
    );
    if let (Some(Some(b)), Some(Some(e))) = (begin, end) {
        if b == e {
            errors.push((
                "end".into(),
                format!("equals begin ({b}); a period must have a length"),
            ));
        }
    }
    let weekdays = keep(
        text("weekdays").and_then(|t| t.map(parse_weekdays).transpose().map_err(at("weekdays"))),
        &mut errors,
    );
    let monthdays = keep(
        text("monthdays").and_then(|t| t.map(parse_monthdays).transpose().map_err(at("monthdays"))),
        &mut errors,
    );
    let months = keep(
        text("months").and_then(|t| t.map(parse_months).transpose().map_err(at("months"))),
        &mut errors,
    );
    match (begin, end, weekdays, monthdays, months) {
        (Some(begin), Some(end), Some(weekdays), Some(monthdays), Some(months))
            if errors.is_empty() =>
        {
            Ok(Period {
                begin,
                end,
                weekdays,
                monthdays,
                months,
            })
        }
        _ => Err(errors),
    }
}

/// Attaches a field name to a problem.
fn at(field: &'static str) -> impl Fn(String) -> (String, String) {
    move |problem| (field.to_string(), problem)
}

/// Every key of `object` that is not one of `known`, as (field, problem).
fn unknown_fields(object: &Map<String, Value>, known: &[&str]) -> Vec<(String, String)> {
    object
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|unknown| {
            (
                unknown.clone(),
                format!("unknown field; expected one of {}", known.join(", ")),
            )
        })
        .collect()
}

fn optional_bool(object: &Map<String, Value>, field: &str) -> Result<bool, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("expected true or false, found {}", kind(other))),
    }
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}
