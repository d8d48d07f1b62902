//! Schedules: the configuration document, its small grammars, and when a
//! schedule wants its instances running.

mod config;
mod fields;
mod timeline;

pub use config::{parse_schedules, ConfigError, Period, Schedule, ScheduleError, Schedules};
pub use fields::{
    parse_clock_time, parse_monthdays, parse_months, parse_skip_date, parse_weekdays, ClockTime,
    MonthdayRule, SkipDate, WeekdayRule,
};
pub use timeline::{resolve_local, Transition};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reference_tests;
