//! Rendering: the subject, the e-mail text and the machine JSON (the HTML
//! page is in `html.rs`, fitting into one SNS message in `fit.rs`).

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::build::{ComplianceReport, GroupReport, InstanceLine, InstanceRef};

/// Subjects must be under 100 characters.
pub const SUBJECT_MAX_CHARS: usize = 99;

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
pub(super) fn ascii(text: &str) -> String {
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
pub(super) fn group_status(g: &GroupReport) -> &'static str {
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
