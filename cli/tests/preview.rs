//! `fleetops preview --json` against the independent minute-by-minute
//! reference (tests/reference.rs), over weeks that cross both DST changes in
//! New York and in Berlin, and the text form's DST marks.

use fleetops::schedule::{parse_schedules, Schedule};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::Value;

use crate::reference::transitions;
use crate::{fleetops, scratch};

/// Schedules whose written times fall in the 2026 gaps and folds: New York
/// springs forward on 03-08 (02:00 → 03:00) and falls back on 11-01
/// (02:00 → 01:00); Berlin on 03-29 (02:00 → 03:00) and 10-25 (03:00 → 02:00).
const DST_DOCUMENT: &str = r#"{"schedules": {
  "ny-overnight": {"timezone": "America/New_York", "periods": [{"begin": "22:00", "end": "02:30"}]},
  "ny-fold": {"timezone": "America/New_York", "enforced": true, "periods": [{"weekdays": "sun", "begin": "01:30", "end": "03:00"}, {"weekdays": "sat", "begin": "23:00", "end": "01:15"}]},
  "ny-in-the-gap": {"timezone": "America/New_York", "periods": [{"begin": "02:10", "end": "02:50"}, {"weekdays": "sun", "begin": "02:55", "end": "06:00"}]},
  "ny-open": {"timezone": "America/New_York", "periods": [{"weekdays": "mon", "begin": "07:00"}, {"weekdays": "fri", "end": "19:00"}, {"weekdays": "sun", "begin": "02:30"}], "skip_dates": ["2026-03-09", "11-02"]},
  "ny-weekend": {"timezone": "America/New_York", "periods": [{"weekdays": "sat,sun"}], "skip_dates": ["11-01"]},
  "berlin-night": {"timezone": "Europe/Berlin", "hibernate": true, "periods": [{"weekdays": "fri-mon", "begin": "23:00", "end": "02:30"}]},
  "berlin-fold": {"timezone": "Europe/Berlin", "periods": [{"begin": "02:30", "end": "04:00"}]},
  "berlin-open": {"timezone": "Europe/Berlin", "periods": [{"weekdays": "sun", "begin": "02:15"}, {"weekdays": "wed", "end": "12:00"}, {"weekdays": "sat", "begin": "02:45", "end": "03:15"}], "skip_dates": ["10-25"]},
  "berlin-month-end": {"timezone": "Europe/Berlin", "enforced": true, "periods": [{"months": "mar,oct", "monthdays": "25-L", "begin": "00:00", "end": "12:00"}, {"weekdays": "friL", "begin": "18:00", "end": "02:00"}]}
}}"#;

/// `(schedule, instant, running)`, sorted by instant then schedule.
type Timeline = Vec<(String, Timestamp, bool)>;

/// Runs `fleetops preview --json` on `document` and checks the shape of every
/// element; returns the transitions.
fn preview_json(document: &str, from: &str, days: u32) -> Timeline {
    let dir = scratch("preview");
    let file = dir.join(format!("doc-{}.json", unique()));
    std::fs::write(&file, document).expect("writing the document");
    let run = fleetops(
        &dir,
        &[
            "preview",
            file.to_str().expect("path"),
            "--from",
            from,
            "--days",
            &days.to_string(),
            "--json",
        ],
    );
    std::fs::remove_file(&file).ok();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let schedules = parse_schedules(document).expect("document");
    let array: Value = serde_json::from_str(&run.stdout).expect("one JSON value");
    let items = array.as_array().expect("a JSON array");
    let mut timeline = Vec::new();
    for item in items {
        let object = item.as_object().expect("an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["action", "at", "local", "schedule"], "{item}");
        let name = item["schedule"].as_str().expect("schedule").to_string();
        let at_text = item["at"].as_str().expect("at");
        assert!(at_text.ends_with('Z'), "at is UTC with Z: {item}");
        let at: Timestamp = at_text.parse().expect("at is RFC 3339");
        let local = item["local"].as_str().expect("local");
        // The same instant, written with the zone's offset at that instant.
        let Some(Ok(schedule)) = schedules.get(&name) else {
            panic!("{name} is a valid schedule of the document")
        };
        let offset = schedule.timezone.to_offset(at);
        assert_eq!(local, at.display_with_offset(offset).to_string(), "{item}");
        let running = match item["action"].as_str() {
            Some("start") => true,
            Some("stop") => false,
            other => panic!("action {other:?}"),
        };
        timeline.push((name, at, running));
    }
    let mut sorted = timeline.clone();
    sorted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    assert_eq!(timeline, sorted, "the array is sorted by instant");
    timeline
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The reference's timeline of every schedule of `document`.
fn reference_timeline(document: &str, from: &str, days: u32) -> Timeline {
    let from: Timestamp = from.parse().expect("from");
    let until = from + SignedDuration::from_hours(24 * i64::from(days));
    let schedules = parse_schedules(document).expect("document");
    let mut timeline: Timeline = schedules
        .by_name
        .values()
        .map(|s| s.as_ref().expect("valid schedule"))
        .flat_map(|s: &Schedule| {
            transitions(s, from, until)
                .into_iter()
                .map(|(at, running)| (s.name.clone(), at, running))
        })
        .collect();
    timeline.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    timeline
}

fn assert_agrees(document: &str, from: &str, days: u32) -> Result<(), TestCaseError> {
    let got = preview_json(document, from, days);
    let want = reference_timeline(document, from, days);
    if got != want {
        let first = got
            .iter()
            .zip(&want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        return Err(TestCaseError::fail(format!(
            "preview and reference differ from entry {first}:\n  preview:   {:?}\n  reference: {:?}\nfor {document}",
            got.get(first..(first + 3).min(got.len())),
            want.get(first..(first + 3).min(want.len())),
        )));
    }
    Ok(())
}

#[test]
fn preview_agrees_with_the_reference_over_the_spring_changes_in_new_york_and_berlin() {
    // 2026-03-01 to 2026-04-05: New York on 03-08, Berlin on 03-29.
    assert_agrees(DST_DOCUMENT, "2026-03-01T00:00:00Z", 35).expect("agrees");
}

#[test]
fn preview_agrees_with_the_reference_over_the_autumn_changes_in_berlin_and_new_york() {
    // 2026-10-18 to 2026-11-08: Berlin on 10-25, New York on 11-01.
    assert_agrees(DST_DOCUMENT, "2026-10-18T00:00:00Z", 21).expect("agrees");
}

#[test]
fn the_dst_nights_are_right_in_json() {
    let got = preview_json(DST_DOCUMENT, "2026-03-07T12:00:00Z", 1);
    // The overnight period that stops at 02:30 stops at 03:00 EDT on the
    // spring-forward night (02:30 does not exist), not at 02:30 EST.
    assert!(
        got.contains(&(
            "ny-overnight".into(),
            "2026-03-08T07:00:00Z".parse().unwrap(),
            false
        )),
        "{got:?}"
    );
    // Both ends of 02:10-02:50 fall in the gap: no run that night; the
    // Sunday period written 02:55 starts when the gap ends, at 03:00 EDT.
    let gap: Vec<_> = got
        .iter()
        .filter(|(s, _, _)| s == "ny-in-the-gap")
        .collect();
    assert_eq!(
        gap,
        [
            &(
                "ny-in-the-gap".to_string(),
                "2026-03-08T07:00:00Z".parse().unwrap(),
                true
            ),
            &(
                "ny-in-the-gap".to_string(),
                "2026-03-08T10:00:00Z".parse().unwrap(),
                false
            ),
        ],
        "{got:?}"
    );
    // Berlin's 02:30 on the autumn night is the first of the two: 00:30 UTC.
    let autumn = preview_json(DST_DOCUMENT, "2026-10-24T12:00:00Z", 1);
    assert!(
        autumn.contains(&(
            "berlin-fold".into(),
            "2026-10-25T00:30:00Z".parse().unwrap(),
            true
        )),
        "{autumn:?}"
    );
}

#[test]
fn the_text_form_marks_the_transitions_dst_moved() {
    let dir = scratch("text");
    let file = dir.join("dst.json");
    std::fs::write(&file, DST_DOCUMENT).expect("document");
    let path = file.to_str().expect("path");
    let spring = fleetops(
        &dir,
        &[
            "preview",
            path,
            "--schedule",
            "ny-overnight",
            "--from",
            "2026-03-07T12:00:00Z",
            "--days",
            "1",
        ],
    );
    assert_eq!(spring.code, 0, "{}", spring.stderr);
    let lines: Vec<&str> = spring.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ny-overnight (America/New_York, transitions only):"),
        "{}",
        spring.stdout
    );
    let moved: Vec<&&str> = lines.iter().filter(|l| l.contains("DST gap")).collect();
    assert_eq!(moved.len(), 1, "{}", spring.stdout);
    assert!(
        moved[0].starts_with(
            "  stop   Sun 2026-03-08 03:00 EDT (-04:00)  2026-03-08T07:00:00Z  periods[0].end"
        ) && moved[0].contains("02:30 does not exist on 2026-03-08"),
        "{}",
        moved[0]
    );
    // The evening's start, in standard time, is not marked.
    assert!(
        lines.iter().any(|l| l.starts_with(
            "  start  Sat 2026-03-07 22:00 EST (-05:00)  2026-03-08T03:00:00Z  periods[0].begin"
        ) && !l.contains("DST")),
        "{}",
        spring.stdout
    );

    let autumn = fleetops(
        &dir,
        &[
            "preview",
            path,
            "--schedule",
            "berlin-fold",
            "--schedule",
            "ny-open",
            "--from",
            "2026-10-24T12:00:00Z",
            "--days",
            "9",
        ],
    );
    assert_eq!(autumn.code, 0, "{}", autumn.stderr);
    let fold: Vec<&str> = autumn
        .stdout
        .lines()
        .filter(|l| l.contains("DST fold"))
        .collect();
    assert!(
        fold.iter().any(|l| l
            .starts_with("  start  Sun 2026-10-25 02:30 CEST (+02:00)  2026-10-25T00:30:00Z")
            && l.contains(
                "02:30 happens twice on 2026-10-25 (at +02:00, then at +01:00), the first counts"
            )),
        "{}",
        autumn.stdout
    );
    // Begin-only and end-only periods and skip dates say what they are.
    assert!(
        autumn
            .stdout
            .contains("periods[2].begin (begin only: runs until the next stop)"),
        "{}",
        autumn.stdout
    );
    assert!(
        autumn.stdout.contains("periods[1].end (end only)"),
        "{}",
        autumn.stdout
    );
    assert!(
        autumn
            .stdout
            .contains("skip_dates[1] (skip date 2026-11-02: kept stopped)"),
        "{}",
        autumn.stdout
    );
    // Schedules are grouped in the order asked for.
    let berlin = autumn.stdout.find("berlin-fold (").expect("berlin-fold");
    let ny = autumn.stdout.find("ny-open (").expect("ny-open");
    assert!(berlin < ny, "{}", autumn.stdout);
}

fn clock() -> impl Strategy<Value = Option<String>> {
    // Half the times near the small hours, where the DST changes are.
    prop_oneof![
        1 => Just(None),
        2 => (0u8..4, prop_oneof![Just(0u8), Just(30u8), 0u8..60])
            .prop_map(|(h, m)| Some(format!("{h:02}:{m:02}"))),
        2 => (0u8..24, prop_oneof![Just(0u8), Just(15u8), 0u8..60])
            .prop_map(|(h, m)| Some(format!("{h:02}:{m:02}"))),
    ]
}

fn period() -> impl Strategy<Value = String> {
    let weekdays = prop_oneof![
        Just(None),
        Just(Some("mon-fri")),
        Just(Some("sat,sun")),
        Just(Some("sun")),
        Just(Some("sat")),
        Just(Some("fri-mon")),
    ];
    (clock(), clock(), weekdays)
        .prop_filter("begin must differ from end", |(b, e, _)| {
            b.is_none() || b != e
        })
        .prop_map(|(b, e, w)| {
            let fields: Vec<String> = [
                b.map(|b| format!(r#""begin": "{b}""#)),
                e.map(|e| format!(r#""end": "{e}""#)),
                w.map(|w| format!(r#""weekdays": "{w}""#)),
            ]
            .into_iter()
            .flatten()
            .collect();
            format!("{{{}}}", fields.join(", "))
        })
}

fn schedule() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(period(), 1..4),
        prop_oneof![Just("America/New_York"), Just("Europe/Berlin")],
        prop_oneof![
            Just(""),
            Just(r#", "skip_dates": ["03-08", "10-25"]"#),
            Just(r#", "skip_dates": ["2026-03-29", "11-01"]"#),
            Just(r#", "skip_dates": ["03-09", "10-26"]"#),
        ],
        any::<bool>(),
    )
        .prop_map(|(periods, zone, skip, enforced)| {
            format!(
                r#"{{"timezone": "{zone}", "enforced": {enforced}, "periods": [{}]{skip}}}"#,
                periods.join(", ")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random documents of New York and Berlin schedules, over three weeks
    /// around each DST change: the CLI's JSON is the reference's timeline.
    #[test]
    fn preview_json_agrees_with_the_reference_for_random_documents(
        schedules in prop::collection::vec(schedule(), 1..4),
        from in prop_oneof![
            Just("2026-03-01T00:00:00Z"),
            Just("2026-03-20T00:00:00Z"),
            Just("2026-10-17T00:00:00Z"),
            Just("2026-10-24T00:00:00Z"),
        ],
    ) {
        let entries: Vec<String> = schedules
            .iter()
            .enumerate()
            .map(|(i, s)| format!(r#""s{i}": {s}"#))
            .collect();
        let document = format!(r#"{{"schedules": {{{}}}}}"#, entries.join(", "));
        assert_agrees(&document, from, 21)?;
    }
}
