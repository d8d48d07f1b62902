//! The HTML page stored next to the JSON in S3: the summary and one inline
//! SVG chart per patch group, no external assets.

use std::fmt::Write as _;

use super::build::{section, ComplianceReport, GroupReport};
use super::render::{baseline_name, count, gap_note, group_status, render_text, subject};

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
    // Unknown counts (data missing) draw nothing; their instances are in
    // "unknown / unmanaged".
    let segments = [
        ("compliant", c.compliant, "#2e7d32"),
        ("non-compliant", c.noncompliant, "#c62828"),
        ("stale scan", c.stale, "#ef6c00"),
        ("never scanned", c.not_scanned, "#757575"),
        ("unknown / unmanaged", c.unknown, "#6a1b9a"),
        ("stopped", c.stopped, "#1565c0"),
    ]
    .map(|(label, n, colour)| (label, n.unwrap_or(0), colour));
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
    let note = |name: &str| {
        report.section_gap(name).map_or_else(String::new, |gap| {
            format!(
                "<p class=\"missing\"><strong>{}</strong></p>\n",
                html_escape(&gap_note(gap))
            )
        })
    };
    let _ = write!(out, "<h2>Patch groups</h2>\n{}", note(section::GROUPS));
    for g in &report.groups {
        let debt = match g.counts.stopped_stale {
            Some(0) => String::new(),
            stale => format!(", {} stopped with a stale scan", count(stale)),
        };
        let _ = writeln!(
            out,
            "<h3>{} <small>({}, baseline {}{})</small></h3>\n{}",
            html_escape(&g.patch_group),
            group_status(g),
            html_escape(&baseline_name(report, g)),
            html_escape(&debt),
            group_chart(g)
        );
    }
    let _ = write!(
        out,
        "<h2>Instances with problems</h2>\n{}",
        note(section::WORST_INSTANCES)
    );
    let _ = writeln!(
        out,
        "<table><tr><th>Name</th><th>Instance</th><th>Group</th><th>Problems</th></tr>"
    );
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
