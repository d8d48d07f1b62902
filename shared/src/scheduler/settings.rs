//! The scheduler's environment and its event, read and validated once.

pub use crate::input::{parse_flag, parse_tick_event, EnvError, EventError, TickRequest};

/// The scheduler's settings from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// `SCHEDULE_TAG`, default `Schedule`.
    pub schedule_tag: String,
    /// `SCHEDULES_PARAMETER`, default `/fleetops/schedules`.
    pub schedules_parameter: String,
    /// `DRY_RUN`, default false.
    pub dry_run: bool,
    /// `REGIONS`, default the function's own region.
    pub regions: Vec<String>,
}

impl SchedulerSettings {
    /// `env` looks a variable up (`std::env::var(..).ok()` in production).
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        own_region: Option<&str>,
    ) -> Result<Self, EnvError> {
        let non_empty = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let regions = crate::input::parse_regions(non_empty("REGIONS").as_deref(), own_region)?;
        Ok(Self {
            schedule_tag: non_empty("SCHEDULE_TAG").unwrap_or_else(|| "Schedule".into()),
            schedules_parameter: non_empty("SCHEDULES_PARAMETER")
                .unwrap_or_else(|| "/fleetops/schedules".into()),
            dry_run: parse_flag("DRY_RUN", non_empty("DRY_RUN").as_deref())?,
            regions,
        })
    }
}
