//! What the command line builds on: every error of a document at once (the
//! first of each schedule being the one the scheduler reports), the sources
//! and DST fits of transitions, and the changes between two documents.

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn document(schedules: &[(&str, &str)]) -> String {
    let entries: Vec<String> = schedules
        .iter()
        .map(|(name, json)| format!(r#""{name}": {json}"#))
        .collect();
    format!(r#"{{"schedules": {{{}}}}}"#, entries.join(", "))
}

#[test]
fn given_a_schedule_with_several_mistakes_then_every_one_is_listed_in_field_order() {
    let doc = document(&[
        (
            "typo",
            r#"{"timezone": "KST", "enforced": "yes", "periods": [{"weekday": "mon-fri", "begin": "9:00"}, {"end": "24:00"}], "skip_dates": ["12/25"]}"#,
        ),
        ("fine", r#"{"periods": [{}]}"#),
        ("empty", r#"{"periods": []}"#),
    ]);
    let errors = validate_schedules(&doc).expect("document");
    let listed: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.schedule.as_str(), e.field.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("empty", "periods"),
            ("typo", "timezone"),
            ("typo", "enforced"),
            ("typo", "periods[0].weekday"),
            ("typo", "periods[0].begin"),
            ("typo", "periods[1].end"),
            ("typo", "skip_dates[0]"),
        ]
    );
    // The scheduler keeps the first of each: the same as before.
    let schedules = parse_schedules(&doc).expect("document");
    for name in ["typo", "empty"] {
        let first = errors
            .iter()
            .find(|e| e.schedule == name)
            .expect("an error");
        match schedules.get(name) {
            Some(Err(kept)) => assert_eq!(kept, first),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(schedules.get("fine"), Some(Ok(_))));
    assert!(validate_schedules(r#"{"schedules": {"a": {"periods": [{}]},}}"#).is_err());
}

fn period_field() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("09:00"),
        Just("9:00"),
        Just("24:00"),
        Just("mon-fri"),
        Just("mon-fry"),
        Just("L"),
        Just("sept"),
        Just("1-15"),
        Just(""),
    ];
    let key = prop_oneof![
        Just("begin"),
        Just("end"),
        Just("weekdays"),
        Just("weekday"),
        Just("monthdays"),
        Just("months"),
    ];
    (key, value).prop_map(|(k, v)| format!(r#""{k}": "{v}""#))
}

proptest! {
    /// Whatever the mistakes, the first problem `validate_schedules` lists for
    /// a schedule is exactly the error `parse_schedules` keeps for it, and a
    /// schedule has problems listed if and only if it does not parse.
    #[test]
    fn the_first_listed_problem_is_the_error_the_scheduler_reports(
        periods in prop::collection::vec(prop::collection::vec(period_field(), 0..4), 0..3),
        timezone in prop_oneof![Just(r#""UTC""#), Just(r#""KST""#), Just("3")],
        skip in prop_oneof![Just(r#"[]"#), Just(r#"["12-25"]"#), Just(r#"["12/25", 7]"#), Just(r#""12-25""#)],
    ) {
        let periods: Vec<String> = periods.iter().map(|p| format!("{{{}}}", p.join(", "))).collect();
        let json = format!(r#"{{"timezone": {timezone}, "periods": [{}], "skip_dates": {skip}}}"#, periods.join(", "));
        let doc = document(&[("s", &json)]);
        let errors = validate_schedules(&doc).expect("document");
        match parse_schedules(&doc).expect("document").get("s") {
            Some(Ok(_)) => prop_assert!(errors.is_empty(), "{:?}", errors),
            Some(Err(first)) => prop_assert_eq!(errors.first(), Some(first)),
            None => prop_assert!(false, "no schedule s"),
        }
    }
}

fn schedule(json: &str) -> Schedule {
    match parse_schedules(&document(&[("s", json)]))
        .expect("document")
        .by_name
        .remove("s")
    {
        Some(Ok(s)) => s,
        other => panic!("schedule did not parse: {other:?}"),
    }
}

#[test]
fn given_an_end_in_the_spring_gap_then_its_transition_is_marked_as_moved() {
    let s = schedule(
        r#"{"timezone": "America/New_York", "periods": [{"begin": "22:00", "end": "02:30"}]}"#,
    );
    let all = preview(
        &[&s],
        ts("2026-03-07T12:00:00Z"),
        ts("2026-03-09T12:00:00Z"),
    );
    let stop = all
        .iter()
        .find(|t| t.transition.at == ts("2026-03-08T07:00:00Z"))
        .expect("the stop at 03:00 EDT");
    assert!(!stop.transition.running);
    assert_eq!(
        stop.local.to_string(),
        "2026-03-08T03:00:00-04:00[America/New_York]"
    );
    assert_eq!(stop.sources.len(), 1);
    assert_eq!(stop.sources[0].field(), "periods[0].end");
    assert_eq!(stop.sources[0].written.to_string(), "2026-03-08T02:30:00");
    assert_eq!(stop.moved_by_gap().count(), 1);
    // The other nights' transitions are exact.
    for t in all.iter().filter(|t| t.transition.at != stop.transition.at) {
        assert!(
            t.sources.iter().all(|s| s.fit == LocalTimeFit::Exact),
            "{t:?}"
        );
        assert_eq!(t.sources.len(), 1, "{t:?}");
    }
}

#[test]
fn given_a_begin_in_the_autumn_fold_then_its_first_occurrence_is_marked() {
    let s = schedule(
        r#"{"timezone": "Europe/Berlin", "periods": [{"weekdays": "sun", "begin": "02:30"}, {"weekdays": "mon", "end": "12:00"}], "skip_dates": ["10-26"]}"#,
    );
    let all = preview(
        &[&s],
        ts("2026-10-24T00:00:00Z"),
        ts("2026-11-02T00:00:00Z"),
    );
    let at: Vec<(String, bool)> = all
        .iter()
        .map(|t| (t.transition.at.to_string(), t.transition.running))
        .collect();
    assert_eq!(
        at,
        [
            ("2026-10-25T00:30:00Z".to_string(), true),
            ("2026-10-25T23:00:00Z".to_string(), false),
            ("2026-11-01T01:30:00Z".to_string(), true),
        ]
    );
    assert_eq!(all[0].in_fold().count(), 1);
    assert_eq!(all[0].sources[0].kind, SourceKind::Begin);
    assert_eq!(all[1].sources[0].kind, SourceKind::SkipDateStart);
    assert_eq!(all[1].sources[0].field(), "skip_dates[0]");
    // A week later the clocks are back to standard time: exact, not a fold.
    assert_eq!(all[2].in_fold().count(), 0);
}

#[test]
fn preview_is_sorted_by_instant_then_schedule_and_spans_from_inclusive_until_exclusive() {
    let a = schedule(r#"{"periods": [{"begin": "09:00", "end": "18:00"}]}"#);
    let mut b = a.clone();
    b.name = "b".into();
    let mut a = a;
    a.name = "a".into();
    let all = preview(
        &[&b, &a],
        ts("2026-11-23T09:00:00Z"),
        ts("2026-11-24T09:00:00Z"),
    );
    let listed: Vec<(String, &str)> = all
        .iter()
        .map(|t| (t.transition.at.to_string(), t.schedule.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("2026-11-23T09:00:00Z".to_string(), "a"),
            ("2026-11-23T09:00:00Z".to_string(), "b"),
            ("2026-11-23T18:00:00Z".to_string(), "a"),
            ("2026-11-23T18:00:00Z".to_string(), "b"),
        ]
    );
}

#[test]
fn changes_name_the_schedules_added_removed_and_edited_whatever_the_layout() {
    let before = parse_schedules(&document(&[
        (
            "kept",
            r#"{"timezone": "UTC", "periods": [{"begin": "09:00", "end": "18:00"}]}"#,
        ),
        ("edited", r#"{"periods": [{"begin": "09:00"}]}"#),
        ("gone", r#"{"periods": [{}]}"#),
        ("was-broken", r#"{"timezone": "KST", "periods": [{}]}"#),
    ]))
    .expect("document");
    let after = parse_schedules(&document(&[
        // Same definition, other key order and spacing: unchanged.
        (
            "kept",
            r#"{ "periods": [ {"end": "18:00", "begin": "09:00"} ], "timezone": "UTC" }"#,
        ),
        ("edited", r#"{"periods": [{"begin": "10:00"}]}"#),
        ("new", r#"{"periods": [{}]}"#),
        (
            "was-broken",
            r#"{"timezone": "Asia/Seoul", "periods": [{}]}"#,
        ),
    ]))
    .expect("document");
    let changes = before.changes_to(&after);
    assert_eq!(changes.added, ["new"]);
    assert_eq!(changes.removed, ["gone"]);
    assert_eq!(changes.edited, ["edited", "was-broken"]);
    assert_eq!(changes.unchanged, ["kept"]);
    assert!(!changes.is_empty());
    assert!(after.changes_to(&after).is_empty());
}
