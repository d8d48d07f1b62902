//! An independent timeline for checking `fleetops preview`: written from the
//! contract's words, sharing nothing with the engine's sweep (only the
//! library's parser, for the periods, and the day rules `matches_day` /
//! `SkipDate::matches`, which say which days a period applies on).
//!
//! Every start and stop of every period on every day of a wide window is
//! resolved to an instant on its own, by search: the first instant whose local
//! time is at or after the written one (so a time in a DST gap takes effect
//! when the gap ends, and an ambiguous one at its first occurrence). The state
//! is then evaluated minute by minute: inside a span (never on a skip date),
//! or after a begin-only start with no stop since ("starts and stops of all
//! periods taken in time order, whatever day they belong to"); a transition is
//! a minute whose state differs from the minute before.

use fleetops::schedule::Schedule;
use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Timestamp, ToSpan};

const MINUTE: SignedDuration = SignedDuration::from_mins(1);

/// The first instant whose local time in the schedule's zone is at or after
/// `local`, found by walking the clock rather than by reading offsets.
fn first_instant_at_or_after(s: &Schedule, local: DateTime) -> Timestamp {
    let local_of = |t: Timestamp| t.to_zoned_datetime(s.timezone.clone()).datetime();
    let guess = jiff::tz::Offset::UTC.to_timestamp(local).expect("in range");
    let mut t = guess - SignedDuration::from_hours(16);
    let step = SignedDuration::from_mins(15);
    while local_of(t + step) < local {
        t += step;
    }
    while local_of(t) < local {
        t += MINUTE;
    }
    t
}

pub struct Reference {
    spans: Vec<(Timestamp, Timestamp)>,
    skips: Vec<(Timestamp, Timestamp)>,
    opens: Vec<Timestamp>,
    /// Ends of spans, end-only stops, starts of skip dates.
    stops: Vec<Timestamp>,
}

impl Reference {
    /// Everything anchored on the local dates `from..=to`.
    pub fn build(s: &Schedule, from: Date, to: Date) -> Self {
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

    pub fn wants_running(&self, t: Timestamp) -> bool {
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

/// The transitions of `s` at whole minutes in `[from, until)` (`from` on a
/// whole minute): `(instant, running after it)`.
pub fn transitions(s: &Schedule, from: Timestamp, until: Timestamp) -> Vec<(Timestamp, bool)> {
    let zone_date = |t: Timestamp| t.to_zoned_datetime(s.timezone.clone()).date();
    // Five weeks back: the weekly begin-only starts of the tests are seen.
    let reference = Reference::build(
        s,
        zone_date(from).checked_sub(35.days()).expect("date"),
        zone_date(until).checked_add(2.days()).expect("date"),
    );
    let mut found = Vec::new();
    let mut before = reference.wants_running(from - MINUTE);
    let mut t = from;
    while t < until {
        let now = reference.wants_running(t);
        if now != before {
            found.push((t, now));
        }
        before = now;
        t += MINUTE;
    }
    found
}
