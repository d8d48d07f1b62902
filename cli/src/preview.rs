//! `fleetops preview FILE`: the transitions of the scheduler's timeline over
//! a window, as text (grouped by schedule, DST marked) or as JSON.

use std::path::Path;

use fleetops::schedule::{
    preview, LocalTimeFit, PreviewTransition, Schedule, Schedules, Source, SourceKind,
};
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::output::{judge, plural, print, read_document, report, Verdict};
use crate::{Failure, EXIT_OK, EXIT_PROBLEM};

/// One element of `--json`'s array, exactly as the contract spells it.
#[derive(Serialize)]
struct JsonTransition<'a> {
    schedule: &'a str,
    action: &'static str,
    at: String,
    local: String,
}

pub fn run(
    file: &Path,
    names: &[String],
    from: Option<Timestamp>,
    days: u16,
    json: bool,
) -> Result<u8, Failure> {
    let document = read_document(file)?;
    let verdict = judge(&document);
    let (schedules, errors) = match &verdict {
        Verdict::Valid(schedules) => (schedules, &[][..]),
        Verdict::Invalid { schedules, errors } => (schedules, errors.as_slice()),
        Verdict::Broken(_) => {
            eprint!("{}", report(&document, &verdict));
            return Ok(EXIT_PROBLEM);
        }
    };
    let (selected, mut code) = select(schedules, names, &document.label);
    for name in problem_names(schedules, names) {
        for error in errors.iter().filter(|e| e.schedule == name) {
            eprintln!("fleetops: {}: {error} (not previewed)", document.label);
        }
        code = EXIT_PROBLEM;
    }

    // Whole seconds: `now` with nanoseconds would print as noise.
    let from = from.unwrap_or_else(|| {
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH)
    });
    let until = from + SignedDuration::from_hours(24 * i64::from(days));
    let transitions = preview(&selected, from, until);
    let text = if json {
        json_array(&transitions)?
    } else {
        text_report(&selected, &transitions, from, until)
    };
    print(&text)?;
    Ok(code)
}

/// The schedules to preview, in the order named (all, in name order, when
/// none is named); an unknown name makes the exit code 1.
fn select<'a>(schedules: &'a Schedules, names: &[String], label: &str) -> (Vec<&'a Schedule>, u8) {
    let mut code = EXIT_OK;
    if names.is_empty() {
        let valid = schedules.by_name.values().filter_map(|s| s.as_ref().ok());
        return (valid.collect(), code);
    }
    let mut selected: Vec<&Schedule> = Vec::new();
    for name in names {
        match schedules.get(name) {
            Some(Ok(schedule)) => {
                if !selected.iter().any(|s| s.name == schedule.name) {
                    selected.push(schedule);
                }
            }
            Some(Err(_)) => {}
            None => {
                let known: Vec<&str> = schedules.by_name.keys().map(String::as_str).collect();
                eprintln!(
                    "fleetops: {label}: no schedule \"{name}\" (the document has: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
                code = EXIT_PROBLEM;
            }
        }
    }
    (selected, code)
}

/// The invalid schedules among those asked for.
fn problem_names<'a>(schedules: &'a Schedules, names: &'a [String]) -> Vec<&'a str> {
    let mut invalid: Vec<&str> = schedules
        .errors()
        .map(|e| e.schedule.as_str())
        .filter(|name| names.is_empty() || names.iter().any(|n| n == name))
        .collect();
    invalid.dedup();
    invalid
}

fn json_array(transitions: &[PreviewTransition]) -> Result<String, Failure> {
    let items: Vec<JsonTransition> = transitions
        .iter()
        .map(|t| JsonTransition {
            schedule: &t.schedule,
            action: if t.transition.running {
                "start"
            } else {
                "stop"
            },
            at: t.transition.at.to_string(),
            local: t
                .transition
                .at
                .display_with_offset(t.local.offset())
                .to_string(),
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&items)
        .map_err(|e| Failure::problem(format!("cannot write JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}

fn text_report(
    selected: &[&Schedule],
    transitions: &[PreviewTransition],
    from: Timestamp,
    until: Timestamp,
) -> String {
    let mut out = String::new();
    for (i, schedule) in selected.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mine: Vec<&PreviewTransition> = transitions
            .iter()
            .filter(|t| t.schedule == schedule.name)
            .collect();
        let zone = schedule.timezone.iana_name().unwrap_or("UTC");
        let mode = match (schedule.enforced, schedule.hibernate) {
            (true, false) => "enforced",
            (true, true) => "enforced, hibernates",
            (false, false) => "transitions only",
            (false, true) => "transitions only, hibernates",
        };
        let state = if schedule.wants_running(from) {
            "running"
        } else {
            "stopped"
        };
        out.push_str(&format!(
            "{} ({zone}, {mode}): wants instances {state} at {from}; {} until {until}\n",
            schedule.name,
            plural(mine.len(), "transition", "transitions"),
        ));
        let rows: Vec<(String, String, String)> = mine
            .iter()
            .map(|t| {
                (
                    t.local.strftime("%a %Y-%m-%d %H:%M %Z (%:z)").to_string(),
                    t.transition.at.to_string(),
                    explain(schedule, t),
                )
            })
            .collect();
        let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        for ((local, utc, why), t) in rows.iter().zip(&mine) {
            let action = if t.transition.running {
                "start"
            } else {
                "stop"
            };
            let line = format!("  {action:<5}  {local:<width$}  {utc}  {why}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// Where a transition comes from, and what daylight saving time did to it.
fn explain(schedule: &Schedule, t: &PreviewTransition) -> String {
    let fields: Vec<String> = t.sources.iter().map(|s| describe(schedule, s)).collect();
    let mut notes: Vec<String> = Vec::new();
    for source in t.moved_by_gap() {
        if let LocalTimeFit::Gap { before, after: _ } = source.fit {
            let jumped_from = before.to_datetime(t.transition.at).time();
            let note = format!(
                "<- DST gap: {} does not exist on {} (clocks jump from {} to {}), moved to {}",
                source.written.time().strftime("%H:%M"),
                source.written.date(),
                jumped_from.strftime("%H:%M"),
                t.local.time().strftime("%H:%M"),
                t.local.time().strftime("%H:%M"),
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    for source in t.in_fold() {
        if let LocalTimeFit::Fold { before, after } = source.fit {
            let note = format!(
                "<- DST fold: {} happens twice on {} (at {}, then at {}), the first counts",
                source.written.time().strftime("%H:%M"),
                source.written.date(),
                offset_text(before),
                offset_text(after),
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    let mut text = fields.join(", ");
    for note in notes {
        text.push_str("  ");
        text.push_str(&note);
    }
    text
}

fn describe(schedule: &Schedule, source: &Source) -> String {
    let field = source.field();
    let period = schedule.periods.get(source.index);
    match source.kind {
        SourceKind::Begin if period.is_some_and(|p| p.end.is_none()) => {
            format!("{field} (begin only: runs until the next stop)")
        }
        SourceKind::End if period.is_some_and(|p| p.begin.is_none()) => {
            format!("{field} (end only)")
        }
        SourceKind::Begin | SourceKind::End => field,
        SourceKind::DayStart | SourceKind::DayEnd => format!("{field} (all day)"),
        SourceKind::SkipDateStart => {
            format!(
                "{field} (skip date {}: kept stopped)",
                source.written.date()
            )
        }
        SourceKind::SkipDateEnd => format!("{field} (skip date ends)"),
    }
}

/// `+09:00`, `-04:00`, `+05:45`.
fn offset_text(offset: Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}
