//! An independent reference for the timeline, written from the contract's
//! words and nothing of the engine's sweep: every start and stop of every
//! period, on every day of a wide window, resolved to instants on their own
//! (earliest instant whose local time is not before the written time), then
//! "taken in time order, whatever day they belong to". The engine must agree
//! with it every 5 minutes over weeks crossing DST, for random schedules with
//! closed, overnight, begin-only and end-only periods and skip dates.

use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;

use super::tests::{clock, schedule};
use super::*;

/// The contract's DST rule, found by search rather than by offsets: the first
/// instant whose local time is at or after `local` (a gap → the first instant
/// after it; a fold → its first occurrence).
fn first_instant_at_or_after(s: &Schedule, local: DateTime) -> Timestamp {
    let local_of = |t: Timestamp| t.to_zoned_datetime(s.timezone.clone()).datetime();
    let guess = jiff::tz::Offset::UTC.to_timestamp(local).expect("in range");
    let mut t = guess - SignedDuration::from_hours(16);
    let step = SignedDuration::from_mins(15);
    while local_of(t + step) < local {
        t += step;
    }
    while local_of(t) < local {
        t += SignedDuration::from_mins(1);
    }
    t
}

struct Reference {
    spans: Vec<(Timestamp, Timestamp)>,
    skips: Vec<(Timestamp, Timestamp)>,
    opens: Vec<Timestamp>,
    /// Ends of spans, end-only stops, starts of skip dates.
    stops: Vec<Timestamp>,
}

impl Reference {
    fn build(s: &Schedule, from: Date, to: Date) -> Self {
        let at = |d: Date, t: Time| first_instant_at_or_after(s, d.to_datetime(t));
        let mut r = Reference {
            spans: Vec::new(),
            skips: Vec::new(),
            opens: Vec::new(),
            stops: Vec::new(),
        };
        let mut d = from;
        while d <= to {
            let next = d.checked_add(1.day()).expect("date");
            if s.skip_dates.iter().any(|k| k.matches(d)) {
                r.skips
                    .push((at(d, Time::midnight()), at(next, Time::midnight())));
                r.stops.push(at(d, Time::midnight()));
            } else {
                for p in s.periods.iter().filter(|p| p.matches_day(d)) {
                    match (p.begin, p.end) {
                        (Some(b), Some(e)) => {
                            let end_day = if e < b { next } else { d };
                            let span = (at(d, b.to_time()), at(end_day, e.to_time()));
                            r.stops.push(span.1);
                            r.spans.push(span);
                        }
                        (None, None) => {
                            let span = (at(d, Time::midnight()), at(next, Time::midnight()));
                            r.stops.push(span.1);
                            r.spans.push(span);
                        }
                        (Some(b), None) => r.opens.push(at(d, b.to_time())),
                        (None, Some(e)) => r.stops.push(at(d, e.to_time())),
                    }
                }
            }
            d = next;
        }
        r
    }

    fn wants_running(&self, t: Timestamp) -> bool {
        if self.skips.iter().any(|(a, b)| *a <= t && t < *b) {
            return false;
        }
        if self.spans.iter().any(|(a, b)| *a <= t && t < *b) {
            return true;
        }
        let last_open = self.opens.iter().filter(|o| **o <= t).max();
        let last_stop = self.stops.iter().filter(|o| **o <= t).max();
        match (last_open, last_stop) {
            (Some(open), Some(stop)) => open >= stop,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

fn period() -> impl Strategy<Value = String> {
    let weekdays = prop_oneof![
        Just(None),
        Just(Some("mon-fri")),
        Just(Some("sat,sun")),
        Just(Some("mon")),
        Just(Some("sun")),
        Just(Some("fri-mon")),
    ];
    (clock(), clock(), weekdays)
        .prop_filter("begin must differ from end", |(b, e, _)| {
            b.is_none() || b != e
        })
        .prop_map(|(b, e, w)| {
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
            format!("{{{}}}", fields.join(", "))
        })
}

/// The shape the engine once got wrong: a begin-only start on a day, and an
/// overnight period from the day before that ends later that morning.
fn start_then_overnight_end() -> impl Strategy<Value = String> {
    let days = prop_oneof![
        Just(("mon", "sun")),
        Just(("wed", "tue")),
        Just(("sat", "fri"))
    ];
    (days, 0u8..10, 0u8..12, 13u8..24).prop_map(|((day, before), start, end_offset, begin)| {
        let end = start + 1 + end_offset % 3;
        format!(
            r#"{{"weekdays": "{day}", "begin": "{start:02}:15"}}, {{"weekdays": "{before}", "begin": "{begin:02}:00", "end": "{end:02}:00"}}"#
        )
    })
}

fn compare(json: &str, start: &str, days: i64) -> Result<(), TestCaseError> {
    let s = schedule(json);
    let start: Timestamp = start.parse().expect("ts");
    let first = start.to_zoned_datetime(s.timezone.clone()).date();
    let reference = Reference::build(
        &s,
        first.checked_sub(21.days()).expect("date"),
        first.checked_add((days + 2).days()).expect("date"),
    );
    for step in 0..(days * 24 * 12) {
        let at = start + SignedDuration::from_mins(5 * step);
        prop_assert_eq!(
            s.wants_running(at),
            reference.wants_running(at),
            "at {} for {}",
            at,
            json
        );
    }
    Ok(())
}

#[test]
fn an_overnight_end_after_a_begin_only_start_stops_the_week() {
    // Monday 08:00 start, Sunday 22:00 - Monday 09:00: stopped from Monday
    // 09:00 until Sunday 22:00 (the engine used to start it again Wednesday).
    let json = r#"{"periods": [{"weekdays": "mon", "begin": "08:00"}, {"weekdays": "sun", "begin": "22:00", "end": "09:00"}], "enforced": true}"#;
    let s = schedule(json);
    for (at, want) in [
        ("2026-11-30T08:30:00Z", true),
        ("2026-11-30T09:00:00Z", false),
        ("2026-12-01T12:00:00Z", false),
        ("2026-12-02T12:00:00Z", false),
        ("2026-12-03T12:00:00Z", false),
        ("2026-12-05T12:00:00Z", false),
        ("2026-12-06T21:59:00Z", false),
        ("2026-12-06T22:00:00Z", true),
    ] {
        assert_eq!(s.wants_running(at.parse().expect("ts")), want, "at {at}");
    }
    compare(json, "2026-11-23T00:00:00Z", 21).expect("agrees with the reference");
}

#[test]
fn skip_dates_apply_on_the_local_date_when_the_utc_date_differs() {
    // 2026-12-25 in Seoul starts at 2026-12-24T15:00Z and ends at 2026-12-25T15:00Z.
    let json = r#"{"timezone": "Asia/Seoul", "periods": [{"begin": "00:00", "end": "23:59"}], "skip_dates": ["12-25"]}"#;
    let s = schedule(json);
    for (at, want) in [
        ("2026-12-24T14:30:00Z", true),  // 23:30 on the 24th in Seoul
        ("2026-12-24T15:30:00Z", false), // 00:30 on the 25th in Seoul (UTC: the 24th)
        ("2026-12-25T14:30:00Z", false), // 23:30 on the 25th in Seoul
        ("2026-12-25T15:30:00Z", true),  // 00:30 on the 26th in Seoul (UTC: the 25th)
    ] {
        assert_eq!(s.wants_running(at.parse().expect("ts")), want, "at {at}");
    }
    compare(json, "2026-12-20T00:00:00Z", 10).expect("agrees with the reference");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random schedules (open periods included) in random zones, every 5
    /// minutes over two weeks around each DST change and a skip date.
    #[test]
    fn the_engine_agrees_with_the_independent_reference(
        periods in prop::collection::vec(prop_oneof![3 => period(), 1 => start_then_overnight_end()], 1..4),
        zone in prop_oneof![Just("UTC"), Just("America/New_York"), Just("Europe/Berlin"), Just("Asia/Seoul"), Just("Australia/Lord_Howe")],
        skip in prop_oneof![Just(""), Just(r#", "skip_dates": ["2026-03-09"]"#), Just(r#", "skip_dates": ["03-29", "11-02"]"#)],
        enforced in any::<bool>(),
        start in prop_oneof![Just("2026-03-02T00:00:00Z"), Just("2026-03-23T00:00:00Z"), Just("2026-10-19T00:00:00Z"), Just("2026-10-26T00:00:00Z")],
    ) {
        let json = format!(r#"{{"timezone": "{zone}", "enforced": {enforced}, "periods": [{}]{skip}}}"#, periods.join(", "));
        compare(&json, start, 14)?;
    }
}
