//! Schedule logic without any AWS: table tests for every period form, DST in
//! two zones, calendar edges; property tests against a naive reference.

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;

pub(super) fn schedule(json: &str) -> Schedule {
    let doc = format!(r#"{{"schedules": {{"s": {json}}}}}"#);
    match parse_schedules(&doc)
        .expect("document parses")
        .by_name
        .remove("s")
    {
        Some(Ok(s)) => s,
        other => panic!("schedule did not parse: {other:?}"),
    }
}

fn schedule_error(json: &str) -> ScheduleError {
    let doc = format!(r#"{{"schedules": {{"s": {json}}}}}"#);
    match parse_schedules(&doc)
        .expect("document parses")
        .by_name
        .remove("s")
    {
        Some(Err(e)) => e,
        other => panic!("schedule unexpectedly parsed: {other:?}"),
    }
}

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

/// Given a schedule, when evaluated at each instant, then it wants the listed state.
fn assert_states(s: &Schedule, cases: &[(&str, bool)]) {
    for (at, want) in cases {
        assert_eq!(s.wants_running(ts(at)), *want, "at {at}");
    }
}

#[test]
fn office_hours_in_seoul_run_weekdays_nine_to_six_local() {
    let s = schedule(
        r#"{"timezone": "Asia/Seoul", "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]}"#,
    );
    assert_states(
        &s,
        &[
            ("2026-11-23T23:59:00Z", false), // Tue 08:59 KST
            ("2026-11-24T00:00:00Z", true),  // Tue 09:00 KST
            ("2026-11-24T08:59:00Z", true),  // Tue 17:59 KST
            ("2026-11-24T09:00:00Z", false), // Tue 18:00 KST
            ("2026-11-28T03:00:00Z", false), // Sat 12:00 KST
        ],
    );
}

#[test]
fn weekday_names_are_case_insensitive_and_lists_and_wrapping_ranges_work() {
    let s = schedule(r#"{"periods": [{"weekdays": "Fri-Mon"}]}"#);
    assert_states(
        &s,
        &[
            ("2026-11-27T12:00:00Z", true),  // Fri
            ("2026-11-29T12:00:00Z", true),  // Sun
            ("2026-11-30T12:00:00Z", true),  // Mon
            ("2026-12-01T12:00:00Z", false), // Tue
        ],
    );
    let s = schedule(r#"{"periods": [{"weekdays": "sat,sun"}]}"#);
    assert_states(
        &s,
        &[
            ("2026-11-28T00:00:00Z", true),
            ("2026-11-27T23:59:00Z", false),
        ],
    );
}

#[test]
fn nth_and_last_weekday_of_the_month() {
    let first_monday =
        schedule(r#"{"periods": [{"weekdays": "mon#1", "begin": "08:00", "end": "10:00"}]}"#);
    assert_states(
        &first_monday,
        &[
            ("2026-12-07T09:00:00Z", true),  // first Monday of December
            ("2026-12-14T09:00:00Z", false), // second Monday
            ("2026-11-30T09:00:00Z", false), // fifth Monday of November
        ],
    );
    let last_friday = schedule(r#"{"periods": [{"weekdays": "friL"}]}"#);
    assert_states(
        &last_friday,
        &[
            ("2026-11-27T09:00:00Z", true),  // last Friday of November
            ("2026-11-20T09:00:00Z", false), // not the last
            ("2027-01-29T09:00:00Z", true),
        ],
    );
}

#[test]
fn monthdays_ranges_lists_and_last_day() {
    let s = schedule(r#"{"periods": [{"monthdays": "1,15"}]}"#);
    assert_states(
        &s,
        &[
            ("2026-12-01T10:00:00Z", true),
            ("2026-12-15T10:00:00Z", true),
            ("2026-12-02T10:00:00Z", false),
        ],
    );
    let s = schedule(r#"{"periods": [{"monthdays": "1-15"}]}"#);
    assert_states(
        &s,
        &[
            ("2026-12-10T10:00:00Z", true),
            ("2026-12-16T10:00:00Z", false),
        ],
    );
    let s = schedule(r#"{"periods": [{"monthdays": "L"}]}"#);
    assert_states(
        &s,
        &[
            ("2026-11-30T10:00:00Z", true),
            ("2026-11-29T10:00:00Z", false),
            ("2028-02-29T10:00:00Z", true), // leap day is February's last
            ("2028-02-28T10:00:00Z", false),
            ("2027-02-28T10:00:00Z", true),
        ],
    );
}

#[test]
fn leap_day_period_finds_its_transition_years_back() {
    let s = schedule(
        r#"{"periods": [{"months": "feb", "monthdays": "29", "begin": "10:00", "end": "12:00"}]}"#,
    );
    assert_states(
        &s,
        &[
            ("2028-02-29T11:00:00Z", true),
            ("2027-03-01T11:00:00Z", false),
        ],
    );
    let last = s
        .last_transition(ts("2027-06-01T00:00:00Z"))
        .expect("a transition within the lookback");
    assert_eq!(
        last,
        Transition {
            at: ts("2024-02-29T12:00:00Z"),
            running: false
        }
    );
}

#[test]
fn months_by_name_number_and_wrapping_range() {
    let s = schedule(r#"{"periods": [{"months": "nov-feb"}]}"#);
    assert_states(
        &s,
        &[
            ("2026-12-10T10:00:00Z", true),
            ("2027-02-10T10:00:00Z", true),
            ("2027-03-10T10:00:00Z", false),
        ],
    );
    let s = schedule(r#"{"periods": [{"months": "1-6"}]}"#);
    assert_states(
        &s,
        &[
            ("2027-06-30T10:00:00Z", true),
            ("2027-07-01T10:00:00Z", false),
        ],
    );
}

#[test]
fn overnight_period_runs_into_the_next_day_across_month_and_year_ends() {
    let s = schedule(r#"{"periods": [{"monthdays": "L", "begin": "22:00", "end": "06:00"}]}"#);
    assert_states(
        &s,
        &[
            ("2026-11-30T21:59:00Z", false),
            ("2026-11-30T22:00:00Z", true),
            ("2026-12-01T05:59:00Z", true), // the next month
            ("2026-12-01T06:00:00Z", false),
            ("2026-12-31T23:00:00Z", true),
            ("2027-01-01T05:00:00Z", true), // the next year
            ("2027-01-01T22:30:00Z", false),
        ],
    );
}

#[test]
fn begin_only_starts_and_never_stops_end_only_stops_and_never_starts() {
    let s = schedule(
        r#"{"periods": [{"weekdays": "mon", "begin": "08:00"}, {"weekdays": "fri", "end": "20:00"}]}"#,
    );
    assert_states(
        &s,
        &[
            ("2026-11-23T07:59:00Z", false), // Mon before the start
            ("2026-11-23T08:00:00Z", true),
            ("2026-11-25T03:00:00Z", true), // Wed: still running
            ("2026-11-27T19:59:00Z", true), // Fri before the stop
            ("2026-11-27T20:00:00Z", false),
            ("2026-11-29T12:00:00Z", false), // Sun
        ],
    );
}

#[test]
fn skip_dates_keep_instances_stopped_in_the_schedules_zone() {
    let s = schedule(
        r#"{"timezone": "Europe/Berlin", "periods": [{"weekdays": "mon-fri", "begin": "08:00", "end": "18:00"}],
            "skip_dates": ["2026-12-24", "12-25"]}"#,
    );
    assert_states(
        &s,
        &[
            ("2026-12-23T08:00:00Z", true),  // Wed 09:00 CET
            ("2026-12-24T08:00:00Z", false), // once
            ("2026-12-25T08:00:00Z", false), // yearly
            ("2027-12-24T08:00:00Z", true),  // the one-off date does not repeat
            ("2027-12-24T08:00:00Z", true),
        ],
    );
    assert!(!schedule(r#"{"periods": [{}], "skip_dates": ["12-25"]}"#)
        .wants_running(ts("2030-12-25T12:00:00Z")));
}

#[test]
fn new_york_spring_forward_gap_takes_effect_at_the_first_instant_after_it() {
    // 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT (07:00Z).
    let s = schedule(
        r#"{"timezone": "America/New_York", "periods": [{"begin": "02:30", "end": "05:00"}]}"#,
    );
    assert_states(
        &s,
        &[
            ("2026-03-08T06:59:00Z", false),
            ("2026-03-08T07:00:00Z", true),
            ("2026-03-08T08:59:00Z", true),
            ("2026-03-08T09:00:00Z", false),
        ],
    );
    let t = s.transitions_between(ts("2026-03-08T05:00:00Z"), ts("2026-03-08T12:00:00Z"));
    assert_eq!(
        t[0],
        Transition {
            at: ts("2026-03-08T07:00:00Z"),
            running: true
        }
    );
}

#[test]
fn new_york_fall_back_ambiguous_time_takes_its_first_occurrence() {
    // 2026-11-01: 01:00-02:00 happens twice (EDT, then EST from 06:00Z).
    let s = schedule(
        r#"{"timezone": "America/New_York", "periods": [{"begin": "01:30", "end": "04:00"}]}"#,
    );
    assert_states(
        &s,
        &[
            ("2026-11-01T05:29:00Z", false),
            ("2026-11-01T05:30:00Z", true),
            ("2026-11-01T06:30:00Z", true),
            ("2026-11-01T09:00:00Z", false),
        ],
    );
}

#[test]
fn berlin_dst_gap_and_fold() {
    // 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00Z. 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00Z.
    let s = schedule(
        r#"{"timezone": "Europe/Berlin", "periods": [{"begin": "02:15", "end": "07:00"}]}"#,
    );
    assert_states(
        &s,
        &[
            ("2026-03-29T00:59:00Z", false),
            ("2026-03-29T01:00:00Z", true),
            ("2026-03-29T05:00:00Z", false),
        ],
    );
    assert_states(
        &s,
        &[
            ("2026-10-25T00:14:00Z", false),
            ("2026-10-25T00:15:00Z", true),
            ("2026-10-25T05:59:00Z", true),
            ("2026-10-25T06:00:00Z", false),
        ],
    );
}

#[test]
fn overnight_period_across_a_dst_change_ends_at_local_time() {
    let s = schedule(
        r#"{"timezone": "Europe/Berlin", "periods": [{"weekdays": "sat", "begin": "22:00", "end": "06:00"}]}"#,
    );
    // Sat 2026-03-28 22:00 CET = 21:00Z; Sun 06:00 CEST = 04:00Z.
    assert_states(
        &s,
        &[
            ("2026-03-28T21:00:00Z", true),
            ("2026-03-29T03:59:00Z", true),
            ("2026-03-29T04:00:00Z", false),
        ],
    );
}

#[test]
fn last_transition_finds_a_missed_stop() {
    let s = schedule(r#"{"periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}]}"#);
    // Saturday noon: the last change was Friday's stop.
    let last = s
        .last_transition(ts("2026-11-28T12:00:00Z"))
        .expect("transition");
    assert_eq!(
        last,
        Transition {
            at: ts("2026-11-27T18:00:00Z"),
            running: false
        }
    );
    let during = s
        .last_transition(ts("2026-11-30T09:00:00Z"))
        .expect("transition");
    assert_eq!(
        during,
        Transition {
            at: ts("2026-11-30T09:00:00Z"),
            running: true
        }
    );
}

#[test]
fn back_to_back_periods_do_not_produce_a_transition() {
    let s = schedule(
        r#"{"periods": [{"begin": "09:00", "end": "12:00"}, {"begin": "12:00", "end": "18:00"}]}"#,
    );
    let t = s.transitions_between(ts("2026-11-26T00:00:00Z"), ts("2026-11-26T23:59:00Z"));
    assert_eq!(
        t,
        vec![
            Transition {
                at: ts("2026-11-26T09:00:00Z"),
                running: true
            },
            Transition {
                at: ts("2026-11-26T18:00:00Z"),
                running: false
            }
        ]
    );
}

// ---- configuration mistakes users make -------------------------------------

#[test]
fn real_mistakes_are_refused_with_the_field_named() {
    let cases = [
        (
            r#"{"periods": [{"begin": "9:00"}]}"#,
            "periods[0].begin",
            "HH:MM",
        ),
        (
            r#"{"periods": [{"end": "24:00"}]}"#,
            "periods[0].end",
            "00-23",
        ),
        (
            r#"{"timezone": "KST", "periods": [{}]}"#,
            "timezone",
            "IANA",
        ),
        (r#"{"periods": []}"#, "periods", "empty"),
        (
            r#"{"periods": [{"weekdays": "mon-fry"}]}"#,
            "periods[0].weekdays",
            "fry",
        ),
        (
            r#"{"periods": [{"weekday": "mon"}]}"#,
            "periods[0].weekday",
            "unknown field",
        ),
        (
            r#"{"periods": [{"monthdays": "0"}]}"#,
            "periods[0].monthdays",
            "1-31",
        ),
        (
            r#"{"periods": [{"months": "sept"}]}"#,
            "periods[0].months",
            "jan-dec",
        ),
        (
            r#"{"periods": [{"begin": "10:00", "end": "10:00"}]}"#,
            "periods[0].end",
            "equals begin",
        ),
        (
            r#"{"periods": [{}], "enforced": "yes"}"#,
            "enforced",
            "true or false",
        ),
        (
            r#"{"periods": [{}], "skip_dates": ["2026-13-01"]}"#,
            "skip_dates[0]",
            "YYYY-MM-DD",
        ),
        (
            r#"{"periods": [{"weekdays": "mon#6"}]}"#,
            "periods[0].weekdays",
            "1-5",
        ),
    ];
    for (json, field, hint) in cases {
        let error = schedule_error(json);
        assert_eq!(error.field, field, "{json}");
        assert!(error.to_string().contains(hint), "{json}: {error}");
        assert!(error.to_string().contains("schedule \"s\""), "{error}");
    }
}

#[test]
fn a_broken_document_fails_as_a_whole() {
    let trailing_comma = r#"{"schedules": {"a": {"periods": [{}]},}}"#;
    assert!(matches!(
        parse_schedules(trailing_comma),
        Err(ConfigError::NotJson { line: 1, .. })
    ));
    assert!(matches!(
        parse_schedules(r#"{"schedule": {}}"#),
        Err(ConfigError::Shape { .. })
    ));
    assert!(matches!(
        parse_schedules("[]"),
        Err(ConfigError::Shape { .. })
    ));
}

#[test]
fn one_bad_schedule_leaves_the_others_usable() {
    let parsed = parse_schedules(
        r#"{"schedules": {"good": {"periods": [{}]}, "bad": {"periods": [{"begin": "25:00"}]}}}"#,
    )
    .expect("parses");
    assert!(matches!(parsed.get("good"), Some(Ok(_))));
    assert!(matches!(parsed.get("bad"), Some(Err(_))));
    assert_eq!(parsed.errors().count(), 1);
}

// ---- properties -------------------------------------------------------------

pub(super) fn clock() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        (0u8..24, prop_oneof![Just(0u8), Just(30u8), 0u8..60])
            .prop_map(|(h, m)| Some(format!("{h:02}:{m:02}")))
    ]
}

fn period_json() -> impl Strategy<Value = String> {
    let weekdays = prop_oneof![
        Just(None),
        Just(Some("mon-fri")),
        Just(Some("sat,sun")),
        Just(Some("wed")),
        Just(Some("fri-mon")),
        Just(Some("mon#1")),
        Just(Some("friL"))
    ];
    let monthdays = prop_oneof![
        Just(None),
        Just(Some("1-15")),
        Just(Some("L")),
        Just(Some("1,28"))
    ];
    (clock(), clock(), weekdays, monthdays)
        .prop_filter("begin must differ from end", |(b, e, _, _)| {
            b.is_none() || b != e
        })
        .prop_map(|(b, e, w, m)| {
            let mut fields = Vec::new();
            if let Some(b) = b {
                fields.push(format!(r#""begin": "{b}""#));
            }
            if let Some(e) = e {
                fields.push(format!(r#""end": "{e}""#));
            }
            if let Some(w) = w {
                fields.push(format!(r#""weekdays": "{w}""#));
            }
            if let Some(m) = m {
                fields.push(format!(r#""monthdays": "{m}""#));
            }
            format!("{{{}}}", fields.join(", "))
        })
}

fn zone() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("UTC"),
        Just("America/New_York"),
        Just("Europe/Berlin"),
        Just("Asia/Seoul"),
        Just("Australia/Lord_Howe")
    ]
}

/// The contract's words, directly: running when inside a span of a period on a
/// matching day; open starts and stops are left to the table tests.
fn naive_wants_running(s: &Schedule, at: Timestamp) -> bool {
    let date = at.to_zoned_datetime(s.timezone.clone()).date();
    [date.yesterday().expect("date"), date]
        .into_iter()
        .any(|d| {
            s.periods.iter().filter(|p| p.matches_day(d)).any(|p| {
                let (begin, end) = match (p.begin, p.end) {
                    (Some(b), Some(e)) => {
                        let end_date = if e < b {
                            d.tomorrow().expect("date")
                        } else {
                            d
                        };
                        (
                            d.to_datetime(b.to_time()),
                            end_date.to_datetime(e.to_time()),
                        )
                    }
                    (None, None) => (
                        d.to_datetime(jiff::civil::Time::midnight()),
                        d.tomorrow()
                            .expect("date")
                            .to_datetime(jiff::civil::Time::midnight()),
                    ),
                    _ => return false,
                };
                resolve_local(&s.timezone, begin) <= at && at < resolve_local(&s.timezone, end)
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A schedule of closed periods runs exactly on the union of its days' spans,
    /// checked at every 15 minutes of a week around a DST change.
    #[test]
    fn closed_periods_agree_with_the_naive_reference(
        periods in prop::collection::vec(period_json(), 1..4),
        zone in zone(),
        start_day in 0i64..7,
        week in prop_oneof![Just("2026-03-05T00:00:00Z"), Just("2026-10-22T00:00:00Z"), Just("2026-03-26T00:00:00Z"), Just("2026-12-28T00:00:00Z")],
    ) {
        let closed: Vec<&String> = periods.iter().filter(|p| p.matches("begin").count() == p.matches("end").count()).collect();
        prop_assume!(!closed.is_empty());
        let json = format!(r#"{{"timezone": "{zone}", "periods": [{}]}}"#, closed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
        let s = schedule(&json);
        let start = ts(week).checked_add(jiff::SignedDuration::from_hours(24 * start_day)).expect("ts");
        for step in 0..(7 * 24 * 4) {
            let at = start.checked_add(jiff::SignedDuration::from_mins(15 * step)).expect("ts");
            prop_assert_eq!(s.wants_running(at), naive_wants_running(&s, at), "at {} for {}", at, json);
        }
    }

    /// Transitions are exactly the instants where the wanted state flips, and the
    /// last transition before any instant agrees with them.
    #[test]
    fn transitions_match_the_state_minute_by_minute(
        periods in prop::collection::vec(period_json(), 1..4),
        zone in zone(),
    ) {
        let json = format!(r#"{{"timezone": "{zone}", "periods": [{}]}}"#, periods.join(", "));
        let s = schedule(&json);
        let (from, until) = (ts("2026-03-06T00:00:00Z"), ts("2026-03-10T00:00:00Z"));
        let transitions = s.transitions_between(from, until);
        let mut state = s.wants_running(from);
        let mut expected = Vec::new();
        let mut at = from;
        while at < until {
            at = at.checked_add(jiff::SignedDuration::from_mins(1)).expect("ts");
            let now = s.wants_running(at);
            if now != state {
                expected.push(Transition { at, running: now });
                state = now;
            }
        }
        prop_assert_eq!(&transitions, &expected, "{}", json);
        if let Some(last) = expected.last() {
            prop_assert_eq!(s.last_transition(until), Some(*last));
        }
        // Weeks later, with the same days repeating, the latest transition is
        // still a real change of state (or there is none).
        let later = ts("2026-04-02T12:00:00Z");
        if let Some(t) = s.last_transition(later) {
            let just_before = t.at.checked_sub(jiff::SignedDuration::from_secs(1)).expect("ts");
            prop_assert_eq!(s.wants_running(t.at), t.running, "{}", json);
            prop_assert_ne!(s.wants_running(just_before), t.running, "{}", json);
        }
    }

    /// No input makes the parser panic, and every rejection names a field.
    #[test]
    fn parser_never_panics_and_names_the_field(text in "\\PC{0,12}", field in prop_oneof![Just("begin"), Just("end"), Just("weekdays"), Just("monthdays"), Just("months")]) {
        let json = serde_json::json!({"schedules": {"s": {"periods": [{field: text}]}}}).to_string();
        if let Some(Err(error)) = parse_schedules(&json).expect("valid JSON").by_name.remove("s") {
            prop_assert_eq!(error.field, format!("periods[0].{field}"));
        }
    }
}
