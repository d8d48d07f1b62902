//! Rendering: the subject, the e-mail text and the machine JSON (the HTML
//! page is in `html.rs`, fitting into one SNS message in `fit.rs`).

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::build::{
    section, ComplianceReport, Coverage, GroupReport, InstanceLine, InstanceRef, SectionGap,
    Standing,
};
use super::headline::Headline;
use super::snapshot::SOURCE_PATCH_GROUPS;

/// Subjects must be under 100 characters.
pub const SUBJECT_MAX_CHARS: usize = 99;

/// One line, ASCII, under 100 characters, e.g.
/// `fleetops us-east-1: 3 non-compliant, 2 critical, 1 unmanaged, 1 offline / 12`.
pub fn subject(report: &ComplianceReport) -> String {
    let t = &report.totals;
    // Unknown in total, but the instances read and found non-compliant are
    // a lower bound worth the headline.
    let known_noncompliant = report
        .worst_instances
        .iter()
        .filter(|l| l.standing == Standing::NonCompliant)
        .count();
    let mut parts = vec![match t.patch.noncompliant {
        Some(n) => format!("{n} non-compliant"),
        None if known_noncompliant > 0 => format!("at least {known_noncompliant} non-compliant"),
        None => "non-compliant unknown".to_string(),
    }];
    if let Some(critical) = t.patch.missing_critical {
        parts.push(format!("{critical} critical"));
    }
    let unscanned = t.patch.stale.zip(t.patch.not_scanned).map(|(a, b)| a + b);
    for (count, what) in [
        (t.unmanaged, "unmanaged"),
        (t.connection_lost, "offline"),
        (unscanned, "unscanned"),
    ] {
        if let Some(count) = count.filter(|c| *c > 0) {
            parts.push(format!("{count} {what}"));
        }
    }
    let prefix = if report.complete { "" } else { "INCOMPLETE " };
    let head = format!("{prefix}fleetops {}: ", ascii(&report.region));
    let tail = t
        .patch
        .running
        .map(|r| format!(" of {r} running"))
        .unwrap_or_default();
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

/// A count for a sentence: the number, or `unknown`.
pub(super) fn count(value: Option<u64>) -> String {
    value.map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

/// A count for a table cell: the number, or `?`.
fn count_cell(value: Option<u64>) -> String {
    value.map_or_else(|| "?".to_string(), |n| n.to_string())
}

/// What the report says about a section whose data could not all be read.
pub(super) fn gap_note(gap: &SectionGap) -> String {
    let sources = gap.sources.join(", ");
    match (gap.status, gap.instances) {
        (Coverage::Unknown, _) => format!("unknown: could not read {sources}"),
        (Coverage::Partial, Some(n)) => {
            format!("incomplete: could not read {sources} (the data of {n} instances is missing)")
        }
        (Coverage::Partial, None) => format!("incomplete: could not read {sources}"),
    }
}

/// Writes the note of section `name`, if it is incomplete.
fn push_note(out: &mut String, report: &ComplianceReport, name: &str) {
    if let Some(gap) = report.section_gap(name) {
        let _ = writeln!(out, "  {}", single_line(&gap_note(gap)));
    }
}

/// Baselines could not be read: a group without one is not known to use the default.
pub(super) fn baselines_unknown(report: &ComplianceReport) -> bool {
    report
        .section_gap(section::GROUPS)
        .is_some_and(|g| g.sources.iter().any(|s| s == SOURCE_PATCH_GROUPS))
}

/// A group without running instances has nothing to assess.
pub(super) fn group_status(g: &GroupReport) -> &'static str {
    if g.counts.running == Some(0) {
        "not assessed"
    } else {
        match g.group_compliant {
            Some(true) => "compliant",
            Some(false) => "non-compliant",
            None => "unknown",
        }
    }
}

/// The baseline column of a group.
pub(super) fn baseline_name(report: &ComplianceReport, g: &GroupReport) -> String {
    match &g.baseline_id {
        Some(id) => id.clone(),
        None if baselines_unknown(report) => "unknown".to_string(),
        None => "(default)".to_string(),
    }
}

fn group_row(report: &ComplianceReport, g: &GroupReport) -> String {
    let c = &g.counts;
    format!(
        "  {} {} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>5} {:>6} {:>4} {:>4} {:>10}  {}",
        cell(&g.patch_group, 24),
        cell(&baseline_name(report, g), 22),
        count_cell(c.running),
        count_cell(c.compliant),
        count_cell(c.noncompliant),
        count_cell(c.missing_critical),
        count_cell(c.missing_security),
        count_cell(c.failed),
        count_cell(c.pending_reboot),
        count_cell(c.stale),
        count_cell(c.not_scanned),
        count_cell(c.unknown),
        count_cell(c.stopped),
        count_cell(c.stopped_stale),
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
    let days = report.stale_after_days;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleetops compliance report for {} at {}",
        single_line(&report.region),
        report.generated_at
    );
    if !report.complete {
        let _ =
            writeln!(out, "INCOMPLETE: some data could not be read; what depends on it is unknown (see \"Missing data\").");
    }
    for line in Headline::of(report).text_lines() {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let _ = writeln!(out, "Summary");
    push_note(&mut out, report, section::TOTALS);
    match t.instances {
        Some(n) => {
            let _ = writeln!(
                out,
                "  {n} instances: {} running, {} stopped",
                count(p.running),
                count(p.stopped)
            );
        }
        None => {
            let _ = writeln!(out, "  Instances: unknown");
        }
    }
    match (t.managed, t.online, t.connection_lost, t.unmanaged) {
        (Some(managed), Some(online), Some(lost), Some(unmanaged)) => {
            let _ = writeln!(
                out,
                "  SSM: {managed} managed ({online} online, {lost} connection lost), {unmanaged} not managed"
            );
        }
        _ => {
            let _ = writeln!(out, "  SSM: unknown");
        }
    }
    match (
        p.compliant,
        p.noncompliant,
        p.stale,
        p.not_scanned,
        p.unknown,
    ) {
        (Some(ok), Some(nc), Some(stale), Some(never), Some(unknown)) => {
            let _ = writeln!(
                out,
                "  Patching: {ok} compliant, {nc} non-compliant, {stale} scan older than {days} days, {never} never scanned, {unknown} unknown"
            );
        }
        (.., Some(unknown)) => {
            let _ = writeln!(
                out,
                "  Patching: unknown ({unknown} running instances not managed or with data missing)"
            );
        }
        _ => {
            let _ = writeln!(out, "  Patching: unknown");
        }
    }
    let _ = writeln!(
        out,
        "  Missing critical: {}, missing security: {}, failed: {}, reboot pending: {}",
        count(p.missing_critical),
        count(p.missing_security),
        count(p.failed),
        count(p.pending_reboot)
    );
    match p.stopped_stale {
        Some(n) => {
            // What fixes it: a patch window that wakes them.
            let hint = if n > 0 {
                "; a patch schedule with \"wake_stopped\": true patches them"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  Patch debt: {n} stopped with no scan or a scan older than {days} days (never counted as non-compliant){hint}"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  Patch debt: unknown (the last scans of stopped instances could not all be read)"
            );
        }
    }
    match (t.association_compliant, t.association_noncompliant) {
        (Some(ok), Some(nc)) => {
            let _ = writeln!(out, "  Associations: {ok} compliant, {nc} non-compliant");
        }
        _ => {
            let _ = writeln!(out, "  Associations: unknown");
        }
    }
    out.push('\n');

    let changes = &report.changes;
    match &changes.since {
        None => match report.section_gap(section::CHANGES) {
            Some(gap) => {
                let _ = writeln!(out, "Changes: {}", single_line(&gap_note(gap)));
            }
            None => {
                let _ = writeln!(out, "Changes: first report, nothing to compare with.");
            }
        },
        Some(since) => {
            let _ = writeln!(out, "Changes since {since}");
            if let Some(gap) = report.section_gap(section::CHANGES) {
                let _ = writeln!(out, "  {}", single_line(&gap_note(gap)));
                let _ = writeln!(
                    out,
                    "  only data read this time is compared: an instance whose data is missing is neither fixed nor newly non-compliant"
                );
            }
            if changes.metrics.is_empty()
                && changes.newly_noncompliant.is_empty()
                && changes.fixed.is_empty()
            {
                let _ = writeln!(out, "  no change");
            }
            for c in &changes.metrics {
                match c.after {
                    Some(after) => {
                        let delta = i128::from(after) - i128::from(c.before);
                        let _ =
                            writeln!(out, "  {}: {} -> {after} ({delta:+})", c.metric, c.before);
                    }
                    None => {
                        let _ = writeln!(out, "  {}: {} -> unknown", c.metric, c.before);
                    }
                }
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

    if !report.accounts.is_empty() {
        let _ = writeln!(
            out,
            "Accounts ({})",
            total_of(report, "accounts", report.accounts.len())
        );
        let _ = writeln!(
            out,
            "  {} {} {} {} {} regions",
            cell("account", 12),
            cell("running", 8),
            cell("compliant", 9),
            cell("non-compl.", 10),
            cell("unmanaged", 9),
        );
        for a in &report.accounts {
            let t = &a.totals;
            let mut regions = a.regions.join(",");
            if !a.regions_not_read.is_empty() {
                regions.push_str(&format!(" (not read: {})", a.regions_not_read.join(",")));
            }
            let _ = writeln!(
                out,
                "  {} {} {} {} {} {}",
                cell(&a.account, 12),
                cell(&count_cell(t.patch.running), 8),
                cell(&count_cell(t.patch.compliant), 9),
                cell(&count_cell(t.patch.noncompliant), 10),
                cell(&count_cell(t.unmanaged), 9),
                single_line(&regions)
            );
        }
        push_more(&mut out, report, "accounts");
        out.push('\n');
    }

    let _ = writeln!(
        out,
        "Patch groups ({})",
        total_of(report, "groups", report.groups.len())
    );
    push_note(&mut out, report, section::GROUPS);
    if !report.section_unknown(section::GROUPS) {
        let _ = writeln!(
            out,
            "  {} {} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>5} {:>6} {:>4} {:>4} {:>10}  STATUS",
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
            "STOP",
            "STOP-STALE"
        );
        for g in &report.groups {
            let _ = writeln!(out, "{}", group_row(report, g));
        }
        push_more(&mut out, report, "groups");
        let _ = writeln!(
            out,
            "  (RUN running, OK compliant, NC non-compliant, CRIT/SEC missing critical/security, FAIL failed, BOOT reboot pending, STALE scan older than {days} d, NOSCAN never scanned, UNK not managed or data missing, STOP stopped, STOP-STALE stopped with no scan or one older than {days} d (not non-compliant), ? unknown: data could not be read)"
        );
    }
    out.push('\n');

    let worst = total_of(report, "worst_instances", report.worst_instances.len());
    let _ = writeln!(out, "Worst instances ({worst})");
    push_note(&mut out, report, section::WORST_INSTANCES);
    if report.section_unknown(section::WORST_INSTANCES) {
        // Nothing is known, not "none".
    } else if worst == 0 {
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
        (section::UNMANAGED, "Not managed by SSM", &report.unmanaged),
        (
            section::CONNECTION_LOST,
            "SSM connection lost",
            &report.connection_lost,
        ),
        (section::STOPPED, "Stopped (not assessed)", &report.stopped),
        (
            section::ASSOCIATION_NONCOMPLIANT,
            "Association non-compliant",
            &report.association_noncompliant,
        ),
    ] {
        let total = total_of(report, list, items.len());
        let gap = report.section_gap(list);
        if total == 0 && gap.is_none() {
            continue;
        }
        out.push('\n');
        if report.section_unknown(list) {
            let _ = writeln!(out, "{title}");
        } else {
            let _ = writeln!(out, "{title} ({total})");
        }
        push_note(&mut out, report, list);
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
