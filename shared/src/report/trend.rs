//! The trend of the last nights, from the full JSON reports already in the
//! bucket (pure: which keys to read, what each one says). `history.rs` does
//! the S3 calls.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::build::ComplianceReport;
use super::headline::{percent_floor, Headline};
use super::publish::KEY_PREFIX;

/// Previous nights shown besides tonight.
pub const TREND_NIGHTS: usize = 30;
/// A previous report bigger than this is not read (a 20,000-instance
/// fleet's full report is about 12 MB).
pub const MAX_PREVIOUS_BYTES: i64 = 32 * 1024 * 1024;

/// One night of the trend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The UTC date of the report's key (`YYYY-MM-DD`).
    pub night: String,
    pub generated_at: String,
    /// False when that report said some data was missing.
    pub complete: bool,
    #[serde(flatten)]
    pub headline: Headline,
}

impl TrendPoint {
    pub fn of(report: &ComplianceReport, night: &str) -> Self {
        Self {
            night: night.to_string(),
            generated_at: report.generated_at.clone(),
            complete: report.complete,
            headline: Headline::of(report),
        }
    }
}

/// A previous report left out of the trend, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedReport {
    pub key: String,
    pub reason: String,
}

/// What the page draws: tonight last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Trend {
    /// Oldest first; tonight's report is the last point.
    pub points: Vec<TrendPoint>,
    pub skipped: Vec<SkippedReport>,
    /// The previous reports could not be listed: the trend is tonight only.
    pub listing_error: Option<String>,
}

impl Trend {
    /// Previous nights in the trend (tonight not counted).
    pub fn previous_nights(&self) -> usize {
        self.points.len().saturating_sub(1)
    }
}

/// An object of the listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: Option<i64>,
}

/// A previous report to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick {
    pub night: String,
    pub key: String,
    pub size: Option<i64>,
}

/// The UTC night (`YYYY-MM-DD`) of a report made at `at`.
pub fn night_of(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d").to_string()
}

/// `StartAfter` for the one `ListObjectsV2` page: keys sort by date, so the
/// page starts 31 nights back instead of at the bucket's oldest report.
pub fn list_start_after(now: Timestamp) -> String {
    let start = now - SignedDuration::from_hours(24 * (TREND_NIGHTS as i64 + 1));
    format!("{KEY_PREFIX}/{}/", night_of(start))
}

/// The night of a full JSON report's key
/// (`fleetops/reports/<YYYY-MM-DD>/compliance-<HHMMSS>Z.json`), if it is one.
fn night_of_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?.strip_prefix('/')?;
    let (night, file) = rest.split_once('/')?;
    let valid = night.parse::<jiff::civil::Date>().is_ok()
        && file.starts_with("compliance-")
        && file.ends_with(".json")
        && !file.contains('/');
    valid.then_some(night)
}

/// The last report of each night before `tonight`, the latest `nights` of them, oldest first.
pub fn pick_previous(listed: &[Listed], tonight: &str, nights: usize) -> Vec<Pick> {
    let mut by_night: BTreeMap<&str, &Listed> = BTreeMap::new();
    for object in listed {
        let Some(night) = night_of_key(&object.key) else {
            continue;
        };
        if night >= tonight {
            continue;
        }
        let entry = by_night.entry(night).or_insert(object);
        if object.key > entry.key {
            *entry = object;
        }
    }
    let skip = by_night.len().saturating_sub(nights);
    by_night
        .into_iter()
        .skip(skip)
        .map(|(night, object)| Pick {
            night: night.to_string(),
            key: object.key.clone(),
            size: object.size,
        })
        .collect()
}

#[derive(Deserialize)]
struct StoredTotals {
    running: Option<u64>,
    compliant: Option<u64>,
    noncompliant: Option<u64>,
    missing_critical: Option<u64>,
    unmanaged: Option<u64>,
    stale: Option<u64>,
    stopped_stale: Option<u64>,
}

#[derive(Deserialize)]
struct StoredReport {
    #[serde(rename = "type")]
    kind: Option<String>,
    generated_at: String,
    complete: Option<bool>,
    totals: StoredTotals,
}

/// The trend point of a stored full report (only `generated_at`, `complete`
/// and `totals` are read); an error names what is wrong with it.
pub fn point_from_json(night: &str, text: &str) -> Result<TrendPoint, String> {
    let stored: StoredReport =
        serde_json::from_str(text).map_err(|e| format!("not a fleetops report: {e}"))?;
    if let Some(kind) = stored.kind.filter(|k| k != "fleetops.compliance-report") {
        return Err(format!(
            "type is \"{kind}\", not fleetops.compliance-report"
        ));
    }
    let t = stored.totals;
    Ok(TrendPoint {
        night: night.to_string(),
        generated_at: stored.generated_at,
        complete: stored.complete.unwrap_or(false),
        headline: Headline {
            running: t.running,
            compliant: t.compliant,
            compliant_percent: t
                .compliant
                .zip(t.running)
                .and_then(|(ok, running)| percent_floor(ok, running)),
            noncompliant: t.noncompliant,
            critical: t.missing_critical,
            unmanaged: t.unmanaged,
            stale: t.stale,
            stopped_stale: t.stopped_stale,
        },
    })
}

/// The trend from tonight's point and what each previous report's read
/// gave (its text, or why it could not be read).
pub fn assemble(
    tonight: TrendPoint,
    previous: Vec<(Pick, Result<String, String>)>,
    listing_error: Option<String>,
) -> Trend {
    let mut trend = Trend {
        listing_error,
        ..Trend::default()
    };
    for (pick, read) in previous {
        match read.and_then(|text| point_from_json(&pick.night, &text)) {
            Ok(point) => trend.points.push(point),
            Err(reason) => trend.skipped.push(SkippedReport {
                key: pick.key,
                reason,
            }),
        }
    }
    trend.points.sort_by(|a, b| a.night.cmp(&b.night));
    trend.points.push(tonight);
    trend
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(night: &str, time: &str) -> Listed {
        Listed {
            key: format!("{KEY_PREFIX}/{night}/compliance-{time}Z.json"),
            size: Some(2_000),
        }
    }

    fn stored(running: u64, compliant: u64) -> String {
        serde_json::json!({
            "type": "fleetops.compliance-report", "generated_at": "2026-11-01T02:00:00Z",
            "complete": true,
            "totals": {"running": running, "compliant": compliant, "noncompliant": running - compliant,
                        "missing_critical": 1, "unmanaged": 2, "stale": 0, "stopped_stale": 3},
            "groups": []
        })
        .to_string()
    }

    #[test]
    fn given_the_listing_then_the_last_report_of_each_earlier_night_is_picked_and_html_and_tonight_are_not(
    ) {
        let listed = vec![
            key("2026-11-24", "020000"),
            key("2026-11-24", "031500"),
            Listed {
                key: format!("{KEY_PREFIX}/2026-11-24/compliance-031500Z.html"),
                size: Some(1),
            },
            key("2026-11-25", "020000"),
            key("2026-11-26", "020000"),
            Listed {
                key: format!("{KEY_PREFIX}/not-a-date/compliance-020000Z.json"),
                size: Some(1),
            },
        ];
        let picks = pick_previous(&listed, "2026-11-26", TREND_NIGHTS);
        let keys: Vec<&str> = picks.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                format!("{KEY_PREFIX}/2026-11-24/compliance-031500Z.json"),
                format!("{KEY_PREFIX}/2026-11-25/compliance-020000Z.json")
            ]
        );
    }

    #[test]
    fn given_40_nights_then_only_the_latest_30_are_picked() {
        let start: jiff::civil::Date = "2026-10-01".parse().expect("date");
        let listed: Vec<Listed> = (0..40)
            .map(|d| key(&(start + jiff::Span::new().days(d)).to_string(), "020000"))
            .collect();
        let picks = pick_previous(&listed, "2026-12-31", TREND_NIGHTS);
        assert_eq!(picks.len(), 30);
        assert_eq!(picks[0].night, "2026-10-11");
        assert_eq!(picks[29].night, "2026-11-09");
    }

    #[test]
    fn given_now_then_the_listing_starts_31_nights_back_under_the_prefix() {
        let now: Timestamp = "2026-11-26T02:00:00Z".parse().expect("time");
        assert_eq!(list_start_after(now), format!("{KEY_PREFIX}/2026-10-26/"));
    }

    #[test]
    fn given_a_stored_report_then_its_point_has_its_totals_and_an_unknown_count_stays_unknown() {
        let point = point_from_json("2026-11-01", &stored(8, 6)).expect("point");
        assert_eq!(point.headline.compliant_percent, Some(75));
        assert_eq!(point.headline.stopped_stale, Some(3));
        let unknown = r#"{"generated_at": "x", "complete": false, "totals": {"running": 4, "compliant": null}}"#;
        let point = point_from_json("2026-11-01", unknown).expect("point");
        assert_eq!(point.headline.compliant_percent, None);
        assert!(!point.complete);
    }

    #[test]
    fn given_text_that_is_not_a_report_then_the_reason_says_so() {
        for text in [
            "<html>",
            "{}",
            r#"{"type": "other", "generated_at": "x", "totals": {}}"#,
        ] {
            let error = point_from_json("2026-11-01", text).expect_err(text);
            assert!(error.contains("not") || error.contains("type"), "{error}");
        }
    }

    #[test]
    fn given_reads_then_the_trend_is_oldest_first_with_tonight_last_and_failures_skipped() {
        let pick = |night: &str| Pick {
            night: night.into(),
            key: format!("{KEY_PREFIX}/{night}/compliance-020000Z.json"),
            size: None,
        };
        let tonight = point_from_json("2026-11-26", &stored(10, 10)).expect("tonight");
        let trend = assemble(
            tonight,
            vec![
                (pick("2026-11-25"), Ok(stored(8, 4))),
                (pick("2026-11-23"), Ok(stored(8, 2))),
                (pick("2026-11-24"), Err("AccessDenied".into())),
                (pick("2026-11-22"), Ok("not json".into())),
            ],
            None,
        );
        let nights: Vec<&str> = trend.points.iter().map(|p| p.night.as_str()).collect();
        assert_eq!(nights, ["2026-11-23", "2026-11-25", "2026-11-26"]);
        assert_eq!(trend.previous_nights(), 2);
        assert_eq!(trend.skipped.len(), 2);
        assert!(trend.skipped.iter().any(|s| s.reason == "AccessDenied"));
    }
}
