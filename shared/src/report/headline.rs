//! The report's headline: the five numbers a reader forwards. The page, the
//! e-mail's first lines and the metrics all take them from here.

use serde::{Deserialize, Serialize};

use super::build::ComplianceReport;

/// `None` is unknown: some data the number is counted from could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headline {
    /// Running instances: the ones assessed.
    pub running: Option<u64>,
    pub compliant: Option<u64>,
    /// Compliant share of running instances in whole percent, rounded down
    /// (99.6 % is 99: never "100 %" while one instance is not compliant);
    /// none when unknown or when nothing runs.
    pub compliant_percent: Option<u64>,
    pub noncompliant: Option<u64>,
    /// Running instances missing critical patches.
    pub critical: Option<u64>,
    /// Instances not managed by SSM.
    pub unmanaged: Option<u64>,
    /// Running instances whose last scan is older than `stale_after_days`.
    pub stale: Option<u64>,
    /// Patch debt: stopped instances with no scan or a stale one.
    pub stopped_stale: Option<u64>,
}

/// Whole percent of `part` in `whole`, rounded down; none when `whole` is 0.
pub fn percent_floor(part: u64, whole: u64) -> Option<u64> {
    (whole > 0).then(|| (u128::from(part.min(whole)) * 100 / u128::from(whole)) as u64)
}

impl Headline {
    pub fn of(report: &ComplianceReport) -> Self {
        let t = &report.totals;
        let p = &t.patch;
        Self {
            running: p.running,
            compliant: p.compliant,
            compliant_percent: p
                .compliant
                .zip(p.running)
                .and_then(|(ok, running)| percent_floor(ok, running)),
            noncompliant: p.noncompliant,
            critical: p.missing_critical,
            unmanaged: t.unmanaged,
            stale: p.stale,
            stopped_stale: p.stopped_stale,
        }
    }

    /// The compliance share as words: `62% of running instances compliant (5 of 8)`.
    pub fn compliance_words(&self) -> String {
        match (self.compliant_percent, self.compliant, self.running) {
            (Some(pct), Some(ok), Some(running)) => {
                format!("{pct}% of running instances compliant ({ok} of {running})")
            }
            (_, _, Some(0)) => "no running instance to assess".to_string(),
            (_, _, Some(running)) => {
                format!("compliance of the {running} running instances unknown (data missing)")
            }
            _ => "compliance unknown (the fleet could not be read)".to_string(),
        }
    }

    /// The e-mail's headline lines (two, plain ASCII).
    pub fn text_lines(&self) -> [String; 2] {
        let n = |v: Option<u64>| v.map_or_else(|| "unknown".to_string(), |n| n.to_string());
        [
            format!("Headline: {}", self.compliance_words()),
            format!(
                "  {} non-compliant, {} missing critical patches, {} not managed by SSM, {} stopped with patch debt",
                n(self.noncompliant),
                n(self.critical),
                n(self.unmanaged),
                n(self.stopped_stale)
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_counts_then_the_percentage_is_rounded_down_and_none_without_running_instances() {
        assert_eq!(percent_floor(5, 8), Some(62));
        assert_eq!(percent_floor(999, 1000), Some(99));
        assert_eq!(percent_floor(3, 3), Some(100));
        assert_eq!(percent_floor(0, 0), None);
        assert_eq!(percent_floor(u64::MAX, u64::MAX), Some(100));
    }

    #[test]
    fn given_unknown_compliance_then_the_words_say_unknown_not_0() {
        let h = Headline {
            running: Some(8),
            ..Headline::default()
        };
        assert!(
            h.compliance_words().contains("unknown"),
            "{}",
            h.compliance_words()
        );
        assert!(h.text_lines()[1].contains("unknown non-compliant"));
    }
}
