//! Schedules: the configuration document, its small grammars, and when a
//! schedule wants its instances running.

mod changes;
mod config;
mod fields;
mod preview;
mod timeline;

pub use changes::ScheduleChanges;
pub use config::{
    parse_schedules, validate_schedules, ConfigError, Period, Schedule, ScheduleError, Schedules,
};
pub use fields::{
    parse_clock_time, parse_monthdays, parse_months, parse_skip_date, parse_weekdays, ClockTime,
    MonthdayRule, SkipDate, WeekdayRule,
};
pub use preview::{local_time_fit, preview, LocalTimeFit, PreviewTransition, Source, SourceKind};
pub use timeline::{resolve_local, Transition};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reference_tests;

#[cfg(test)]
mod preview_tests;
