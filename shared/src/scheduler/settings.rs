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
        let regions: Vec<String> = match non_empty("REGIONS") {
            Some(list) => list
                .split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect(),
            None => own_region.map(|r| vec![r.to_string()]).unwrap_or_default(),
        };
        if regions.is_empty() {
            return Err(EnvError {
                name: "REGIONS",
                problem: "no region: set REGIONS (comma list) or AWS_REGION".into(),
            });
        }
        if let Some(bad) = regions.iter().find(|r| !is_region_name(r)) {
            return Err(EnvError {
                name: "REGIONS",
                problem: format!("\"{bad}\" is not a region name such as eu-west-1"),
            });
        }
        Ok(Self {
            schedule_tag: non_empty("SCHEDULE_TAG").unwrap_or_else(|| "Schedule".into()),
            schedules_parameter: non_empty("SCHEDULES_PARAMETER")
                .unwrap_or_else(|| "/fleetops/schedules".into()),
            dry_run: parse_flag("DRY_RUN", non_empty("DRY_RUN").as_deref())?,
            regions,
        })
    }
}

fn is_region_name(name: &str) -> bool {
    name.split('-').count() >= 3
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
