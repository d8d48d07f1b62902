//! Fitting the report into one SNS message: every list cut to the same
//! largest length that fits, whole lines only, the rest counted.

use serde_json::json;

use super::build::ComplianceReport;
use super::render::{render_json, render_text, subject};

/// SNS's limit for a whole Publish payload, in bytes of UTF-8.
pub const SNS_MAX_BYTES: usize = 262_144;
/// Room kept for the subject and the request's other parameters.
const SNS_HEADROOM: usize = 2_048;

/// A copy of `report` with every list cut to at most `keep` items, the rest
/// counted in `omitted`.
pub fn shortened(report: &ComplianceReport, keep: usize) -> ComplianceReport {
    fn cut<T>(
        list: &mut Vec<T>,
        keep: usize,
        name: &str,
        omitted: &mut std::collections::BTreeMap<String, usize>,
    ) {
        if list.len() > keep {
            *omitted.entry(name.to_string()).or_default() += list.len() - keep;
            list.truncate(keep);
        }
    }
    let mut r = report.clone();
    let mut omitted = std::mem::take(&mut r.omitted);
    cut(&mut r.groups, keep, "groups", &mut omitted);
    cut(
        &mut r.worst_instances,
        keep,
        "worst_instances",
        &mut omitted,
    );
    cut(&mut r.unmanaged, keep, "unmanaged", &mut omitted);
    cut(
        &mut r.connection_lost,
        keep,
        "connection_lost",
        &mut omitted,
    );
    cut(&mut r.stopped, keep, "stopped", &mut omitted);
    cut(
        &mut r.association_noncompliant,
        keep,
        "association_noncompliant",
        &mut omitted,
    );
    cut(
        &mut r.changes.newly_noncompliant,
        keep,
        "newly_noncompliant",
        &mut omitted,
    );
    cut(&mut r.changes.fixed, keep, "fixed", &mut omitted);
    cut(&mut r.gaps, keep, "gaps", &mut omitted);
    cut(&mut r.accounts, keep, "accounts", &mut omitted);
    r.omitted = omitted;
    r
}

fn longest_list(report: &ComplianceReport) -> usize {
    [
        report.groups.len(),
        report.worst_instances.len(),
        report.unmanaged.len(),
        report.connection_lost.len(),
        report.stopped.len(),
        report.association_noncompliant.len(),
        report.changes.newly_noncompliant.len(),
        report.changes.fixed.len(),
        report.gaps.len(),
        report.accounts.len(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

/// One SNS message, ready for `Publish` with `MessageStructure: json`.
#[derive(Clone, Debug)]
pub struct FittedMessage {
    pub subject: String,
    /// The `MessageStructure: json` payload.
    pub message: String,
    /// The e-mail text inside it.
    pub text: String,
    /// The machine JSON inside it.
    pub json: String,
    /// Items kept per list (`None`: nothing left out).
    pub kept_per_list: Option<usize>,
}

impl FittedMessage {
    /// Bytes of the payload as sent: both renderings, JSON-escaped, in the
    /// envelope. This is what fitting keeps within the limit.
    pub fn bytes(&self) -> usize {
        self.message.len()
    }
}

/// The `MessageStructure: json` payload, with one copy of each rendering:
/// `default` (every protocol without its own key: SQS, Lambda, HTTP/S,
/// e-mail-JSON, Firehose) gets the JSON, `email` the text. A key per machine
/// protocol would repeat the JSON three times within the same 256 KiB. SMS
/// gets the subject line only.
fn envelope(subject: &str, text: &str, machine: &str) -> String {
    json!({
        "default": machine,
        "email": text,
        "sms": subject,
    })
    .to_string()
}

fn compose(
    report: &ComplianceReport,
    subject: &str,
    links: &[String],
    keep: Option<usize>,
) -> FittedMessage {
    let view = match keep {
        Some(k) => shortened(report, k),
        None => report.clone(),
    };
    let text = render_text(&view, links);
    let machine = render_json(&view, subject, links).to_string();
    FittedMessage {
        subject: subject.to_string(),
        message: envelope(subject, &text, &machine),
        text,
        json: machine,
        kept_per_list: keep,
    }
}

/// The SNS message for `report`, within `limit` bytes (use [`SNS_MAX_BYTES`]):
/// when the whole report does not fit, every list keeps as many items as fit
/// (the same number for each) and says how many it left out.
pub fn fit_message(report: &ComplianceReport, links: &[String], limit: usize) -> FittedMessage {
    let subject = subject(report);
    let budget = limit.saturating_sub(SNS_HEADROOM + subject.len());
    let full = compose(report, &subject, links, None);
    if full.bytes() <= budget {
        return full;
    }
    // Largest `keep` that fits; size grows with `keep`.
    let (mut low, mut high) = (0usize, longest_list(report));
    while low < high {
        let mid = (low + high).div_ceil(2);
        if compose(report, &subject, links, Some(mid)).bytes() <= budget {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    compose(report, &subject, links, Some(low))
}
