//! What schedules do over a window of time, explained for the people who
//! write them (`fleetops preview`): each transition from the engine's own
//! timeline, the written local times it comes from, and whether daylight
//! saving time moved one of them. Nothing here decides a transition: the
//! transitions are `Schedule::transitions_between`'s, the explanation only
//! looks up which written times resolve (with `resolve_local`) to them.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan, ZonedDateTime};

use super::config::Schedule;
use super::timeline::{resolve_local, Transition};

/// How a written local time maps to instants on its day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalTimeFit {
    /// It happens exactly once.
    Exact,
    /// It does not exist that day (the clocks jump over it, from offset
    /// `before` to `after`): it takes effect at the first instant after the gap.
    Gap { before: Offset, after: Offset },
    /// It happens twice (the clocks go back from `before` to `after`): its
    /// first occurrence, at offset `before`, counts.
    Fold { before: Offset, after: Offset },
}

/// How `datetime` maps to instants in `tz`.
pub fn local_time_fit(tz: &TimeZone, datetime: DateTime) -> LocalTimeFit {
    match tz.to_ambiguous_timestamp(datetime).offset() {
        AmbiguousOffset::Unambiguous { .. } => LocalTimeFit::Exact,
        AmbiguousOffset::Gap { before, after } => LocalTimeFit::Gap { before, after },
        AmbiguousOffset::Fold { before, after } => LocalTimeFit::Fold { before, after },
    }
}

/// Which part of a schedule wrote a local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// `periods[i].begin`.
    Begin,
    /// `periods[i].end` (on the next day for an overnight period).
    End,
    /// The start of the day of a period with neither `begin` nor `end`.
    DayStart,
    /// The end of the day (next midnight) of a period with neither.
    DayEnd,
    /// The start (midnight) of a skip date: instances are kept stopped.
    SkipDateStart,
    /// The end (next midnight) of a skip date.
    SkipDateEnd,
}

impl SourceKind {
    /// Whether a time of this kind starts (true) or stops instances.
    pub fn starts(self) -> bool {
        matches!(
            self,
            SourceKind::Begin | SourceKind::DayStart | SourceKind::SkipDateEnd
        )
    }
}

/// A written local time that a transition comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub kind: SourceKind,
    /// Index into `periods`, or into `skip_dates` for the skip-date kinds.
    pub index: usize,
    /// The local date and time as written, on the day it applies.
    pub written: DateTime,
    pub fit: LocalTimeFit,
}

impl Source {
    /// The field path in the document: `periods[0].begin`, `periods[1]`,
    /// `skip_dates[2]`.
    pub fn field(&self) -> String {
        let i = self.index;
        match self.kind {
            SourceKind::Begin => format!("periods[{i}].begin"),
            SourceKind::End => format!("periods[{i}].end"),
            SourceKind::DayStart | SourceKind::DayEnd => format!("periods[{i}]"),
            SourceKind::SkipDateStart | SourceKind::SkipDateEnd => format!("skip_dates[{i}]"),
        }
    }
}

/// One transition of one schedule, with its local time and its sources.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewTransition {
    pub schedule: String,
    pub transition: Transition,
    /// The transition's instant in the schedule's zone.
    pub local: ZonedDateTime,
    /// The written times that resolve to this instant and act in its
    /// direction (starts for a start, stops for a stop).
    pub sources: Vec<Source>,
}

impl PreviewTransition {
    /// The written times among the sources that do not exist that day.
    pub fn moved_by_gap(&self) -> impl Iterator<Item = &Source> {
        self.sources
            .iter()
            .filter(|s| matches!(s.fit, LocalTimeFit::Gap { .. }))
    }

    /// The written times among the sources that happen twice that day.
    pub fn in_fold(&self) -> impl Iterator<Item = &Source> {
        self.sources
            .iter()
            .filter(|s| matches!(s.fit, LocalTimeFit::Fold { .. }))
    }
}

/// The transitions of `schedules` at instants in `[from, until)`, sorted by
/// instant, then by schedule name.
pub fn preview(
    schedules: &[&Schedule],
    from: Timestamp,
    until: Timestamp,
) -> Vec<PreviewTransition> {
    let after = from - SignedDuration::from_nanos(1);
    let mut all: Vec<PreviewTransition> = schedules
        .iter()
        .flat_map(|schedule| {
            schedule
                .transitions_between(after, until)
                .into_iter()
                .filter(|t| t.at >= from && t.at < until)
                .map(|transition| PreviewTransition {
                    schedule: schedule.name.clone(),
                    transition,
                    local: transition.at.to_zoned_datetime(schedule.timezone.clone()),
                    sources: schedule.sources_of(transition),
                })
        })
        .collect();
    all.sort_by(|a, b| (a.transition.at, &a.schedule).cmp(&(b.transition.at, &b.schedule)));
    all
}

impl Schedule {
    /// The written local times that resolve to `transition.at` and act in
    /// its direction: which `begin`, `end` or skip date a transition comes
    /// from, for explaining it (the transition itself is the timeline's).
    pub fn sources_of(&self, transition: Transition) -> Vec<Source> {
        let mut found = Vec::new();
        let local_date = transition
            .at
            .to_zoned_datetime(self.timezone.clone())
            .date();
        // A written time resolves on its own date (or just after a gap), and
        // an end lies at most a day after the date it belongs to.
        for back in (0..=2).rev() {
            let Ok(date) = local_date.checked_sub(back.days()) else {
                continue;
            };
            self.written_on(date, &mut found);
        }
        found.retain(|source| {
            source.kind.starts() == transition.running
                && resolve_local(&self.timezone, source.written) == transition.at
        });
        found.dedup();
        found
    }

    /// Every local time written for `date` (ends may fall on the next day).
    fn written_on(&self, date: Date, out: &mut Vec<Source>) {
        let Ok(next_day) = date.checked_add(1.day()) else {
            return;
        };
        let source = |kind, index, written: DateTime| Source {
            kind,
            index,
            written,
            fit: local_time_fit(&self.timezone, written),
        };
        let midnight = date.to_datetime(Time::midnight());
        let next_midnight = next_day.to_datetime(Time::midnight());
        if let Some(index) = self.skip_dates.iter().position(|s| s.matches(date)) {
            out.push(source(SourceKind::SkipDateStart, index, midnight));
            out.push(source(SourceKind::SkipDateEnd, index, next_midnight));
            return;
        }
        for (index, period) in self.periods.iter().enumerate() {
            if !period.matches_day(date) {
                continue;
            }
            match (period.begin, period.end) {
                (None, None) => {
                    out.push(source(SourceKind::DayStart, index, midnight));
                    out.push(source(SourceKind::DayEnd, index, next_midnight));
                }
                (begin, end) => {
                    if let Some(b) = begin {
                        out.push(source(
                            SourceKind::Begin,
                            index,
                            date.to_datetime(b.to_time()),
                        ));
                    }
                    if let Some(e) = end {
                        let end_date = match begin {
                            Some(b) if e < b => next_day,
                            _ => date,
                        };
                        out.push(source(
                            SourceKind::End,
                            index,
                            end_date.to_datetime(e.to_time()),
                        ));
                    }
                }
            }
        }
    }
}
