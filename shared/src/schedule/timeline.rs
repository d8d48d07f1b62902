//! When a schedule wants instances running: a sweep over the instants at which
//! its periods begin and end, in the schedule's own time zone.
//!
//! Model. On each local date a period matches, it contributes:
//! - begin and end: a span `[begin, end)`, overnight to the next day when
//!   `begin > end`; neither: the whole day;
//! - only begin: an *open* start that holds until some stop (a span's end, an
//!   end-only period, a skip date);
//! - only end: a stop.
//!
//! The schedule wants instances running when inside a span, or after an open
//! start with no stop since; never on a skip date. Local times resolve per the
//! contract: a time in a DST gap takes effect at the first instant after the
//! gap, an ambiguous time at its first occurrence.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

use super::config::Schedule;

/// The furthest back a transition is looked for. Eight years covers a leap-day
/// period (`months: feb, monthdays: 29`) whatever the weekday rules.
const LOOKBACK_DAYS: i32 = 8 * 366;
/// Dates swept per step when searching backwards for a transition.
const WINDOW_DAYS: i32 = 7;

/// A change of the wanted state: from `at` on, instances should be `running`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: Timestamp,
    pub running: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mark {
    // Order matters at equal instants: stops first, so a start at the same
    // instant wins, and spans end before the next begins.
    SkipEnd,
    SpanEnd,
    Stop,
    SkipStart,
    SpanStart,
    OpenStart,
}

/// Resolves a local date and time to an instant with the contract's DST rule.
pub fn resolve_local(tz: &TimeZone, datetime: DateTime) -> Timestamp {
    let ambiguous = tz.to_ambiguous_timestamp(datetime);
    let resolved = match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(datetime),
        // First occurrence: the offset in force before the fold.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(datetime),
        // Read with the later offset, the time lands before the gap; the
        // first transition after that instant is the end of the gap.
        AmbiguousOffset::Gap { after, .. } => after.to_timestamp(datetime).map(|before_gap| {
            tz.following(before_gap)
                .next()
                .map(|t| t.timestamp())
                .unwrap_or(before_gap)
        }),
    };
    // Only dates near the ends of jiff's range (years -9999/9999) fail.
    resolved.unwrap_or(Timestamp::MAX)
}

impl Schedule {
    fn is_skip_date(&self, date: Date) -> bool {
        self.skip_dates.iter().any(|s| s.matches(date))
    }

    fn at(&self, date: Date, time: Time) -> Timestamp {
        resolve_local(&self.timezone, date.to_datetime(time))
    }

    /// All marks anchored on one local date. A span or skip date that starts
    /// before `not_before` gives only what still matters after it: a span's
    /// end, as a stop (it ends an open start; it has no start to count down).
    fn marks_on(&self, date: Date, not_before: Timestamp, out: &mut Vec<(Timestamp, Mark)>) {
        let span = |start: Timestamp, end: Timestamp, out: &mut Vec<(Timestamp, Mark)>| {
            if start >= not_before {
                out.push((start, Mark::SpanStart));
                out.push((end, Mark::SpanEnd));
            } else if end >= not_before {
                out.push((end, Mark::Stop));
            }
        };
        let Some(next_day) = date.checked_add(1.day()).ok() else {
            return;
        };
        if self.is_skip_date(date) {
            let start = self.at(date, Time::midnight());
            if start >= not_before {
                out.push((start, Mark::SkipStart));
                out.push((self.at(next_day, Time::midnight()), Mark::SkipEnd));
            }
            return;
        }
        for period in self.periods.iter().filter(|p| p.matches_day(date)) {
            match (period.begin, period.end) {
                (Some(b), Some(e)) => {
                    let end_date = if e < b { next_day } else { date };
                    span(
                        self.at(date, b.to_time()),
                        self.at(end_date, e.to_time()),
                        out,
                    );
                }
                (None, None) => {
                    span(
                        self.at(date, Time::midnight()),
                        self.at(next_day, Time::midnight()),
                        out,
                    );
                }
                (Some(b), None) => out.push((self.at(date, b.to_time()), Mark::OpenStart)),
                (None, Some(e)) => out.push((self.at(date, e.to_time()), Mark::Stop)),
            }
        }
    }

    fn has_open_starts(&self) -> bool {
        self.periods
            .iter()
            .any(|p| p.begin.is_some() && p.end.is_none())
    }

    /// Whether an open start is still in force at the start of `first`: the
    /// latest (by instant, not by the day it belongs to) open start, stop, span
    /// end or skip before it decides. An overnight end anchored on the day
    /// before can come after a begin-only start of the next morning.
    fn open_before(&self, first: Date) -> bool {
        if !self.has_open_starts() {
            return false;
        }
        let limit = self.at(first, Time::midnight());
        let deciding = |m: &Mark| !matches!(m, Mark::SpanStart | Mark::SkipEnd);
        let latest = |marks: &[(Timestamp, Mark)]| {
            marks
                .iter()
                .filter(|(t, m)| *t < limit && deciding(m))
                .max()
                .copied()
        };
        let mut marks = Vec::new();
        let mut date = first;
        for _ in 0..LOOKBACK_DAYS {
            let Ok(previous) = date.checked_sub(1.day()) else {
                break;
            };
            date = previous;
            self.marks_on(date, Timestamp::MIN, &mut marks);
            // Marks anchored before `date` all lie before the day after it: a
            // later mark found so far cannot be overtaken by an earlier anchor.
            let settled = self.at(
                first.min(date.checked_add(1.day()).unwrap_or(date)),
                Time::midnight(),
            );
            if let Some((t, mark)) = latest(&marks) {
                if t >= settled {
                    return mark == Mark::OpenStart;
                }
            }
        }
        latest(&marks).is_some_and(|(_, mark)| mark == Mark::OpenStart)
    }

    /// The wanted state after every instant in `from..=to` (local dates) at
    /// which it changes, up to and including `until`. Returns the state in
    /// force at the start of `from` and the changes.
    fn sweep(&self, from: Date, to: Date, until: Timestamp) -> (bool, Vec<Transition>) {
        // Spans last at most into the next day, so marks anchored two days
        // earlier are enough to know the state at the start of `from`.
        let first = from.checked_sub(2.days()).unwrap_or(from);
        let trusted_from = self.at(from, Time::midnight());
        let first_instant = self.at(first, Time::midnight());
        let mut marks = Vec::new();
        // The day before `first` too: its overnight ends land on `first` and
        // end what an open start of that morning began.
        let mut date = first.checked_sub(1.day()).unwrap_or(first);
        while date <= to {
            self.marks_on(date, first_instant, &mut marks);
            match date.checked_add(1.day()) {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        // Marks anchored on `to` may fall after it (an overnight end) while the
        // next day's marks are not gathered: only instants before the day after
        // `to` are known.
        let window_end = to
            .checked_add(1.day())
            .map_or(Timestamp::MAX, |next| self.at(next, Time::midnight()));
        // Marks before `first` are `open_before`'s.
        marks.retain(|(t, _)| *t >= first_instant && *t <= until && *t < window_end);
        marks.sort();

        let (mut spans, mut skips, mut open) = (0i32, 0i32, self.open_before(first));
        let wanted = |spans: i32, skips: i32, open: bool| skips <= 0 && (spans > 0 || open);
        let mut state_at_from = None;
        let mut changes = Vec::new();
        let mut i = 0;
        while i < marks.len() {
            let instant = marks[i].0;
            if instant >= trusted_from && state_at_from.is_none() {
                state_at_from = Some(wanted(spans, skips, open));
            }
            let before = wanted(spans, skips, open);
            while i < marks.len() && marks[i].0 == instant {
                match marks[i].1 {
                    Mark::SpanStart => spans += 1,
                    Mark::SpanEnd => {
                        spans -= 1;
                        open = false;
                    }
                    Mark::OpenStart => open = true,
                    Mark::Stop => open = false,
                    Mark::SkipStart => {
                        skips += 1;
                        open = false;
                    }
                    Mark::SkipEnd => skips -= 1,
                }
                i += 1;
            }
            let after = wanted(spans, skips, open);
            if instant >= trusted_from && after != before {
                changes.push(Transition {
                    at: instant,
                    running: after,
                });
            }
        }
        let initial = state_at_from.unwrap_or_else(|| wanted(spans, skips, open));
        (initial, changes)
    }

    fn local_date(&self, at: Timestamp) -> Date {
        at.to_zoned_datetime(self.timezone.clone()).date()
    }

    /// Whether the schedule wants instances running at `at`.
    pub fn wants_running(&self, at: Timestamp) -> bool {
        let date = self.local_date(at);
        let (initial, changes) = self.sweep(date, date, at);
        changes.last().map_or(initial, |t| t.running)
    }

    /// The latest change of the wanted state at or before `at`, if one happened
    /// within the lookback. Transition-only schedules act on this.
    pub fn last_transition(&self, at: Timestamp) -> Option<Transition> {
        let mut to = self.local_date(at);
        let mut searched = 0;
        while searched < LOOKBACK_DAYS {
            let from = to.checked_sub((WINDOW_DAYS - 1).days()).ok()?;
            if let Some(last) = self.sweep(from, to, at).1.last() {
                return Some(*last);
            }
            to = from.checked_sub(1.day()).ok()?;
            searched += WINDOW_DAYS;
        }
        None
    }

    /// Every change of the wanted state in `(after, until]`, oldest first.
    pub fn transitions_between(&self, after: Timestamp, until: Timestamp) -> Vec<Transition> {
        let (from, to) = (self.local_date(after), self.local_date(until));
        self.sweep(from, to, until)
            .1
            .into_iter()
            .filter(|t| t.at > after)
            .collect()
    }
}
