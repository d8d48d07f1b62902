//! Rendering: the subject, the e-mail text, the machine JSON, the HTML page,
//! and fitting all of it into one SNS message.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::build::{ComplianceReport, GroupReport, InstanceLine, InstanceRef};

/// SNS's limit for a whole Publish payload, in bytes of UTF-8.
pub const SNS_MAX_BYTES: usize = 262_144;
/// Subjects must be under 100 characters.
pub const SUBJECT_MAX_CHARS: usize = 99;
/// Room kept for the subject and the request's other parameters.
const SNS_HEADROOM: usize = 2_048;

/// The lists that fitting may shorten, in the order they are rendered.
pub const LISTS: [&str; 9] = [
    "groups",
    "worst_instances",
    "unmanaged",
    "connection_lost",
    "stopped",
    "association_noncompliant",
    "newly_noncompliant",
    "fixed",
    "gaps",
];

/// One line, ASCII, under 100 characters, e.g.
/// `fleetops us-east-1: 3 non-compliant, 2 critical, 1 unmanaged, 1 offline / 12`.
pub fn subject(report: &ComplianceReport) -> String {
    let t = &report.totals;
    let mut parts = vec![
        format!("{} non-compliant", t.patch.noncompliant),
        format!("{} critical", t.patch.missing_critical),
    ];
    for (count, what) in [
        (t.unmanaged, "unmanaged"),
        (t.connection_lost, "offline"),
        (t.patch.stale + t.patch.not_scanned, "unscanned"),
    ] {
        if count > 0 {
            parts.push(format!("{count} {what}"));
        }
    }
    let prefix = if report.complete { "" } else { "INCOMPLETE " };
    let head = format!("{prefix}fleetops {}: ", ascii(&report.region));
    let tail = format!(" of {} running", t.patch.running);
    let mut text = head.clone() + &parts.join(", ") + &tail;
    while text.chars().count() > SUBJECT_MAX_CHARS && parts.len() > 1 {
        parts.pop();
        text = head.clone() + &parts.join(", ") + &tail;
    }
    if text.chars().count() > SUBJECT_MAX_CHARS {
        text = text.chars().take(SUBJECT_MAX_CHARS).collect();
    }
    text
}

/// Printable ASCII only (for the subject).
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// One line (no control characters), at most `width` characters, padded.
fn cell(text: &str, width: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let count = clean.chars().count();
    if count > width {
        let mut cut: String = clean.chars().take(width.saturating_sub(1)).collect();
        cut.push('~');
        cut
    } else {
        format!("{clean}{}", " ".repeat(width - count))
    }
}

fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn reference(r: &InstanceRef) -> String {
    match &r.name {
        Some(name) => format!("  {} {}", cell(name, 32), r.instance_id),
        None => format!("  {} {}", cell("-", 32), r.instance_id),
    }
}

/// The summary line for items left out.
pub fn more_line(count: usize) -> String {
    format!("  ... and {count} more")
}

fn push_more(out: &mut String, report: &ComplianceReport, list: &str) {
    if let Some(count) = report.omitted.get(list).filter(|c| **c > 0) {
        out.push_str(&more_line(*count));
        out.push('\n');
    }
}

fn total_of(report: &ComplianceReport, list: &str, shown: usize) -> usize {
    shown + report.omitted.get(list).copied().unwrap_or(0)
}

/// A group without running instances has nothing to assess.
fn group_status(g: &GroupReport) -> &'static str {
    if g.counts.running == 0 {
        "not assessed"
    } else if g.group_compliant {
        "compliant"
    } else {
        "non-compliant"
    }
}

fn group_row(g: &GroupReport) -> String {
    let c = &g.counts;
    format!(
        "  {} {} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>5} {:>6} {:>4} {:>4}  {}",
        cell(&g.patch_group, 24),
        cell(g.baseline_id.as_deref().unwrap_or("(default)"), 22),
        c.running,
        c.compliant,
        c.noncompliant,
        c.missing_critical,
        c.missing_security,
        c.failed,
        c.pending_reboot,
        c.stale,
        c.not_scanned,
        c.unknown,
        c.stopped,
        group_status(g).to_ascii_uppercase(),
    )
}

fn instance_row(l: &InstanceLine) -> String {
    format!(
        "  {} {} {} {}",
        cell(l.name.as_deref().unwrap_or("-"), 32),
        cell(&l.instance_id, 19),
        cell(&l.patch_group, 20),
        single_line(&l.problems.join(", "))
    )
}

/// The e-mail text of `report` (which may already be shortened by fitting).
pub fn render_text(report: &ComplianceReport, links: &[String]) -> String {
    let t = &report.totals;
    let p = &t.patch;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleetops compliance report for {} at {}",
        single_line(&report.region),
        report.generated_at
    );
    if !report.complete {
        let _ =
            writeln!(out, "INCOMPLETE: some data could not be read; counts below leave it out (see \"Missing data\").");
    }
    out.push('\n');
    let _ = writeln!(out, "Summary");
    let _ = writeln!(
        out,
        "  {} instances: {} running, {} stopped",
        t.instances, t.patch.running, t.patch.stopped
    );
    let _ = writeln!(
        out,
        "  SSM: {} managed ({} online, {} connection lost), {} not managed",
        t.managed, t.online, t.connection_lost, t.unmanaged
    );
    let _ = writeln!(
        out,
        "  Patching: {} compliant, {} non-compliant, {} scan older than {} days, {} never scanned, {} unknown",
        p.compliant, p.noncompliant, p.stale, report.stale_after_days, p.not_scanned, p.unknown
    );
    let _ = writeln!(
        out,
        "  Missing critical: {}, missing security: {}, failed: {}, reboot pending: {}",
        p.missing_critical, p.missing_security, p.failed, p.pending_reboot
    );
    let _ = writeln!(
        out,
        "  Associations: {} compliant, {} non-compliant",
        t.association_compliant, t.association_noncompliant
    );
    out.push('\n');

    let changes = &report.changes;
    match &changes.since {
        None => {
            let _ = writeln!(out, "Changes: first report, nothing to compare with.");
        }
        Some(since) => {
            let _ = writeln!(out, "Changes since {since}");
            if changes.metrics.is_empty()
                && changes.newly_noncompliant.is_empty()
                && changes.fixed.is_empty()
            {
                let _ = writeln!(out, "  no change");
            }
            for c in &changes.metrics {
                let delta = i128::from(c.after) - i128::from(c.before);
                let _ = writeln!(
                    out,
                    "  {}: {} -> {} ({delta:+})",
                    c.metric, c.before, c.after
                );
            }
            for (list, label, ids) in [
                (
                    "newly_noncompliant",
                    "newly non-compliant",
                    &changes.newly_noncompliant,
                ),
                ("fixed", "fixed", &changes.fixed),
            ] {
                if total_of(report, list, ids.len()) > 0 {
                    let _ = writeln!(out, "  {label} ({}):", total_of(report, list, ids.len()));
                    for id in ids {
                        let _ = writeln!(out, "    {}", single_line(id));
                    }
                    push_more(&mut out, report, list);
                }
            }
        }
    }
    out.push('\n');

    let _ = writeln!(
        out,
        "Patch groups ({})",
        total_of(report, "groups", report.groups.len())
    );
    let _ = writeln!(
        out,
        "  {} {} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>5} {:>6} {:>4} {:>4}  STATUS",
        cell("GROUP", 24),
        cell("BASELINE", 22),
        "RUN",
        "OK",
        "NC",
        "CRIT",
        "SEC",
        "FAIL",
        "BOOT",
        "STALE",
        "NOSCAN",
        "UNK",
        "STOP"
    );
    for g in &report.groups {
        let _ = writeln!(out, "{}", group_row(g));
    }
    push_more(&mut out, report, "groups");
    let _ = writeln!(
        out,
        "  (RUN running, OK compliant, NC non-compliant, CRIT/SEC missing critical/security, FAIL failed, BOOT reboot pending, STALE scan older than {} d, NOSCAN never scanned, UNK not managed or data missing, STOP stopped)",
        report.stale_after_days
    );
    out.push('\n');

    let worst = total_of(report, "worst_instances", report.worst_instances.len());
    let _ = writeln!(out, "Worst instances ({worst})");
    if worst == 0 {
        let _ = writeln!(out, "  none");
    } else {
        let _ = writeln!(
            out,
            "  {} {} {} PROBLEMS",
            cell("NAME", 32),
            cell("INSTANCE", 19),
            cell("GROUP", 20)
        );
    }
    for l in &report.worst_instances {
        let _ = writeln!(out, "{}", instance_row(l));
    }
    push_more(&mut out, report, "worst_instances");

    for (list, title, items) in [
        ("unmanaged", "Not managed by SSM", &report.unmanaged),
        (
            "connection_lost",
            "SSM connection lost",
            &report.connection_lost,
        ),
        ("stopped", "Stopped (not assessed)", &report.stopped),
        (
            "association_noncompliant",
            "Association non-compliant",
            &report.association_noncompliant,
        ),
    ] {
        let total = total_of(report, list, items.len());
        if total == 0 {
            continue;
        }
        out.push('\n');
        let _ = writeln!(out, "{title} ({total})");
        for r in items {
            let _ = writeln!(out, "{}", reference(r));
        }
        push_more(&mut out, report, list);
    }

    if total_of(report, "gaps", report.gaps.len()) > 0 {
        out.push('\n');
        let _ = writeln!(out, "Missing data");
        for gap in &report.gaps {
            let scope = if gap.instance_ids.is_empty() {
                String::new()
            } else {
                format!(" ({} instances)", gap.instance_ids.len())
            };
            let _ = writeln!(out, "  {}{scope}: {}", gap.source, single_line(&gap.error));
        }
        push_more(&mut out, report, "gaps");
    }

    if !links.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "Full report");
        for link in links {
            let _ = writeln!(out, "  {}", single_line(link));
        }
    }
    out
}

/// The report as JSON for machine subscribers (SQS, Lambda, HTTPS).
pub fn render_json(report: &ComplianceReport, subject: &str, links: &[String]) -> Value {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("type".into(), json!("fleetops.compliance-report"));
        map.insert("version".into(), json!(1));
        map.insert("subject".into(), json!(subject));
        map.insert("links".into(), json!(links));
    }
    value
}

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
    pub fn bytes(&self) -> usize {
        self.message.len()
    }
}

fn envelope(text: &str, machine: &str) -> String {
    json!({
        "default": text,
        "email": text,
        "sqs": machine,
        "lambda": machine,
        "https": machine,
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
        message: envelope(&text, &machine),
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

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A stacked bar of one group's standing, as inline SVG.
fn group_chart(g: &GroupReport) -> String {
    let c = &g.counts;
    let segments = [
        ("compliant", c.compliant, "#2e7d32"),
        ("non-compliant", c.noncompliant, "#c62828"),
        ("stale scan", c.stale, "#ef6c00"),
        ("never scanned", c.not_scanned, "#757575"),
        ("unknown / unmanaged", c.unknown, "#6a1b9a"),
        ("stopped", c.stopped, "#1565c0"),
    ];
    let total: u64 = segments.iter().map(|s| s.1).sum();
    let width = 480.0_f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="44" role="img" aria-label="{}">"#,
        width + 20.0,
        html_escape(&g.patch_group)
    );
    let mut x = 0.0_f64;
    let mut legend_x = 0.0_f64;
    for (label, count, colour) in segments {
        if total > 0 && count > 0 {
            let w = width * count as f64 / total as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="0" width="{w:.1}" height="20" fill="{colour}"><title>{label}: {count}</title></rect>"#
            );
            x += w;
        }
        if count > 0 {
            let _ = write!(
                svg,
                r#"<rect x="{legend_x:.0}" y="28" width="10" height="10" fill="{colour}"/><text x="{:.0}" y="37" font-size="11">{label} {count}</text>"#,
                legend_x + 13.0
            );
            legend_x += 14.0 + 7.0 * (label.len() + count.to_string().len() + 2) as f64;
        }
    }
    if total == 0 {
        svg.push_str(r#"<text x="0" y="15" font-size="12">no instances</text>"#);
    }
    svg.push_str("</svg>");
    svg
}

/// The full report as one HTML page (inline CSS and SVG, no external assets).
pub fn render_html(report: &ComplianceReport) -> String {
    let subject = subject(report);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}pre{{background:#f6f6f6;padding:1em}}</style></head><body>\n",
        html_escape(&subject)
    );
    let _ = writeln!(out, "<h1>{}</h1>", html_escape(&subject));
    let _ = writeln!(out, "<h2>Patch groups</h2>");
    for g in &report.groups {
        let _ = writeln!(
            out,
            "<h3>{} <small>({}, baseline {})</small></h3>\n{}",
            html_escape(&g.patch_group),
            group_status(g),
            html_escape(g.baseline_id.as_deref().unwrap_or("default")),
            group_chart(g)
        );
    }
    let _ = writeln!(out, "<h2>Instances with problems</h2>\n<table><tr><th>Name</th><th>Instance</th><th>Group</th><th>Problems</th></tr>");
    for l in &report.worst_instances {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(l.name.as_deref().unwrap_or("-")),
            html_escape(&l.instance_id),
            html_escape(&l.patch_group),
            html_escape(&l.problems.join(", "))
        );
    }
    let _ = writeln!(out, "</table>");
    let _ = writeln!(
        out,
        "<h2>Text report</h2>\n<pre>{}</pre>",
        html_escape(&render_text(report, &[]))
    );
    out.push_str("</body></html>\n");
    out
}
