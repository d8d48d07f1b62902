//! The reporter's environment, read and validated once at start-up.

use crate::input::{parse_flag, EnvError};

/// Default parameter for the previous summary.
pub const DEFAULT_STATE_PARAMETER: &str = "/fleetops/compliance-reporter/previous";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReporterSettings {
    /// `REPORT_TOPIC_ARN` (required, an SNS topic ARN).
    pub topic_arn: String,
    /// `STALE_AFTER_DAYS`, a positive integer, default 7.
    pub stale_after_days: u32,
    /// `REPORT_BUCKET`, optional.
    pub bucket: Option<String>,
    /// `REPORT_STATE_PARAMETER`.
    pub state_parameter: String,
    /// `DRY_RUN`.
    pub dry_run: bool,
}

impl ReporterSettings {
    /// `env` looks a variable up (`std::env::var(..).ok()` in production).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let non_empty = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let topic_arn = non_empty("REPORT_TOPIC_ARN").ok_or_else(|| EnvError {
            name: "REPORT_TOPIC_ARN",
            problem:
                "missing; set it to the report topic's ARN (arn:aws:sns:<region>:<account>:<name>)"
                    .into(),
        })?;
        if let Err(problem) = check_topic_arn(&topic_arn) {
            return Err(EnvError {
                name: "REPORT_TOPIC_ARN",
                problem: format!("\"{topic_arn}\" is not an SNS topic ARN: {problem}"),
            });
        }
        let stale_after_days = match non_empty("STALE_AFTER_DAYS") {
            None => 7,
            Some(text) => match text.parse::<u32>() {
                Ok(days) if days > 0 => days,
                _ => {
                    return Err(EnvError {
                        name: "STALE_AFTER_DAYS",
                        problem: format!("\"{text}\" is not a positive whole number of days"),
                    })
                }
            },
        };
        let bucket = non_empty("REPORT_BUCKET");
        if let Some(name) = &bucket {
            let valid = (3..=63).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid {
                return Err(EnvError {
                    name: "REPORT_BUCKET",
                    problem: format!("\"{name}\" is not an S3 bucket name"),
                });
            }
        }
        let state_parameter =
            non_empty("REPORT_STATE_PARAMETER").unwrap_or_else(|| DEFAULT_STATE_PARAMETER.into());
        Ok(Self {
            topic_arn,
            stale_after_days,
            bucket,
            state_parameter,
            dry_run: parse_flag("DRY_RUN", non_empty("DRY_RUN").as_deref())?,
        })
    }
}

/// `arn:<partition>:sns:<region>:<12-digit account>:<topic name>`.
pub fn check_topic_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 6 {
        return Err("expected 6 colon-separated parts".into());
    }
    if parts[0] != "arn" || !parts[1].starts_with("aws") {
        return Err("expected it to start with arn:aws".into());
    }
    if parts[2] != "sns" {
        return Err(format!("service is \"{}\", expected sns", parts[2]));
    }
    let region = parts[3];
    if region.split('-').count() < 3
        || !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!("\"{region}\" is not a region"));
    }
    if parts[4].len() != 12 || !parts[4].chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("\"{}\" is not a 12-digit account id", parts[4]));
    }
    let name = parts[5].strip_suffix(".fifo").unwrap_or(parts[5]);
    if name.is_empty()
        || name.len() > 256
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("\"{}\" is not a topic name", parts[5]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const ARN: &str = "arn:aws:sns:us-east-1:123456789012:fleetops-report";

    #[test]
    fn given_only_the_topic_then_defaults_apply() {
        let s = ReporterSettings::from_env(env(&[("REPORT_TOPIC_ARN", ARN)])).expect("valid");
        assert_eq!(s.stale_after_days, 7);
        assert_eq!(s.bucket, None);
        assert_eq!(s.state_parameter, DEFAULT_STATE_PARAMETER);
        assert!(!s.dry_run);
    }

    #[test]
    fn given_no_or_a_bad_topic_then_the_error_names_the_variable() {
        for bad in [
            None,
            Some("fleetops-report"),
            Some("arn:aws:sqs:us-east-1:123456789012:q"),
            Some("arn:aws:sns:us-east-1:1234:t"),
        ] {
            let pairs: Vec<(&str, &str)> = bad
                .map(|b| vec![("REPORT_TOPIC_ARN", b)])
                .unwrap_or_default();
            let error = ReporterSettings::from_env(env(&pairs)).expect_err("invalid");
            assert_eq!(error.name, "REPORT_TOPIC_ARN", "{error}");
        }
    }

    #[test]
    fn given_a_non_positive_stale_after_then_it_is_rejected() {
        for bad in ["0", "-1", "seven", "1.5"] {
            let error = ReporterSettings::from_env(env(&[
                ("REPORT_TOPIC_ARN", ARN),
                ("STALE_AFTER_DAYS", bad),
            ]))
            .expect_err("invalid");
            assert_eq!(error.name, "STALE_AFTER_DAYS");
        }
    }
}
