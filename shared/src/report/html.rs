//! The HTML page stored next to the JSON in S3, the one people forward: a
//! headline, the trend of the last nights, one bar per patch group drawn to
//! one scale, the instances with problems linked to their EC2 console pages,
//! and the text report. Inline CSS and SVG, no scripts, no external assets;
//! readable on a phone.

use std::fmt::Write as _;

use super::build::{section, ComplianceReport, GroupReport};
use super::headline::Headline;
use super::render::{baseline_name, count, gap_note, group_status, render_text, subject};
use super::trend::Trend;

/// Length, in SVG units, of the bar of the group with the most running instances.
pub const BAR_FULL: f64 = 480.0;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;padding:1em;max-width:60em;line-height:1.4;color:#222}\
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1em;margin:.9em 0 .2em}\
.when{color:#666;margin:0}.incomplete,.missing,.skipped{color:#8a4b00;background:#fff4e5;padding:.4em .6em;border-radius:4px}\
.headline{display:flex;flex-wrap:wrap;gap:.6em;margin:1em 0}.tile{flex:1 1 8em;border:1px solid #ddd;border-radius:6px;padding:.5em .7em}\
.tile .value{display:block;font-size:1.8em;font-weight:700}.tile .label{color:#555;font-size:.9em}.tile.main{flex-basis:100%}\
.tile.bad .value{color:#c62828}.tile.good .value{color:#2e7d32}\
svg{width:100%;height:auto;display:block}.legend{list-style:none;padding:0;margin:.2em 0;display:flex;flex-wrap:wrap;gap:.2em 1em;font-size:.85em}\
.legend i{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-.05em}\
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;white-space:nowrap}\
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.8em}@media (max-width:30em){body{padding:.6em}.tile .value{font-size:1.5em}}";

pub(super) fn html_escape(text: &str) -> String {
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

/// The EC2 console page of an instance, in the console of the region's partition.
pub fn console_url(region: &str, instance_id: &str) -> String {
    let host = if region.starts_with("cn-") {
        format!("{region}.console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        format!("{region}.console.amazonaws-us-gov.com")
    } else {
        format!("{region}.console.aws.amazon.com")
    };
    let encode = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect()
    };
    format!(
        "https://{host}/ec2/home?region={}#InstanceDetails:instanceId={}",
        encode(region),
        encode(instance_id)
    )
}

/// The length of a group's bar: proportional to its running instances, the
/// biggest group's bar [`BAR_FULL`] long (one scale for every group).
pub fn bar_length(running: u64, most_running: u64) -> f64 {
    if most_running == 0 {
        0.0
    } else {
        BAR_FULL * running as f64 / most_running as f64
    }
}

fn fmt_count(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_string(), |n| n.to_string())
}

/// One group's running instances as a stacked bar on the page's one scale,
/// with its legend (stopped instances and patch debt in the legend only).
fn group_chart(g: &GroupReport, most_running: u64) -> String {
    let c = &g.counts;
    let running = c.running.unwrap_or(0);
    let mut segments: Vec<(&str, u64, &str)> = [
        ("compliant", c.compliant, "#2e7d32"),
        ("non-compliant", c.noncompliant, "#c62828"),
        ("stale scan", c.stale, "#ef6c00"),
        ("never scanned", c.not_scanned, "#757575"),
        ("unknown / unmanaged", c.unknown, "#6a1b9a"),
    ]
    .into_iter()
    .filter_map(|(label, n, colour)| n.map(|n| (label, n, colour)))
    .collect();
    let known: u64 = segments.iter().map(|s| s.1).sum();
    // Counts that could not be read still take their place in the bar.
    if known < running {
        segments.push(("not read", running - known, "#cfcfcf"));
    }
    let drawn: u64 = segments.iter().map(|s| s.1).sum::<u64>().max(running);
    let length = bar_length(running, most_running);
    let mut svg = format!(
        r#"<svg class="group-bar" data-running="{running}" viewBox="0 0 {} 22" role="img" aria-label="{}: {running} running">"#,
        BAR_FULL + 2.0,
        html_escape(&g.patch_group)
    );
    let mut x = 0.0_f64;
    for (label, n, colour) in &segments {
        if *n == 0 || drawn == 0 {
            continue;
        }
        let w = length * *n as f64 / drawn as f64;
        let _ = write!(
            svg,
            r#"<rect class="seg" x="{x:.3}" y="1" width="{w:.3}" height="20" fill="{colour}"><title>{label}: {n}</title></rect>"#
        );
        x += w;
    }
    if running == 0 {
        svg.push_str(
            r##"<text x="0" y="15" font-size="12" fill="#555">no running instance</text>"##,
        );
    }
    svg.push_str("</svg>");
    let mut legend = String::from("<ul class=\"legend\">");
    for (label, n, colour) in segments.iter().filter(|s| s.1 > 0) {
        let _ = write!(
            legend,
            "<li><i style=\"background:{colour}\"></i>{label} {n}</li>"
        );
    }
    let _ = write!(
        legend,
        "<li>stopped {} (patch debt {})</li></ul>",
        fmt_count(c.stopped),
        fmt_count(c.stopped_stale)
    );
    svg + &legend
}

fn tile(class: &str, value: &str, label: &str) -> String {
    format!(
        "<div class=\"tile {class}\"><span class=\"value\">{}</span><span class=\"label\">{}</span></div>",
        html_escape(value),
        html_escape(label)
    )
}

fn headline_section(report: &ComplianceReport) -> String {
    let h = Headline::of(report);
    let good_or_bad = |n: Option<u64>| match n {
        Some(0) => "good",
        Some(_) => "bad",
        None => "",
    };
    let main_value = h
        .compliant_percent
        .map_or_else(|| "?".to_string(), |p| format!("{p}%"));
    let mut out = String::from("<section id=\"headline\" class=\"headline\">");
    out.push_str(&tile("main", &main_value, &h.compliance_words()));
    for (n, label) in [
        (h.noncompliant, "non-compliant"),
        (h.critical, "missing critical patches"),
        (h.unmanaged, "not managed by SSM"),
        (
            h.stopped_stale,
            "patch debt: stopped, scan missing or stale",
        ),
    ] {
        out.push_str(&tile(good_or_bad(n), &fmt_count(n), label));
    }
    out.push_str("</section>\n");
    out
}

fn trend_section(trend: &Trend) -> String {
    let mut out = String::from("<section id=\"trend\"><h2>Compliance, last nights</h2>\n");
    if let Some(error) = &trend.listing_error {
        let _ = writeln!(
            out,
            "<p class=\"skipped\">The previous reports could not be listed ({}); the trend shows tonight only.</p>",
            html_escape(error)
        );
    } else if trend.previous_nights() == 0 && trend.skipped.is_empty() {
        out.push_str("<p>No previous report in the bucket yet: the trend starts tonight.</p>\n");
    }
    if !trend.skipped.is_empty() {
        let _ = write!(
            out,
            "<p class=\"skipped\">{} previous report(s) could not be read and are left out of the trend:</p><ul class=\"skipped-list\">",
            trend.skipped.len()
        );
        for s in &trend.skipped {
            let _ = write!(
                out,
                "<li>{}: {}</li>",
                html_escape(&s.key),
                html_escape(&s.reason)
            );
        }
        out.push_str("</ul>\n");
    }
    // One column per night, its height the compliant share of running instances.
    let slots = trend.points.len().max(1) as f64;
    let slot = 584.0 / slots;
    let mut svg = String::from(
        r##"<svg class="trend" viewBox="0 0 640 156" role="img" aria-label="compliant share of running instances per night"><line x1="46" y1="10" x2="630" y2="10" stroke="#eee"/><line x1="46" y1="130" x2="630" y2="130" stroke="#999"/><text x="0" y="16" font-size="16">100%</text><text x="12" y="134" font-size="16">0%</text>"##,
    );
    for (i, p) in trend.points.iter().enumerate() {
        let x = 46.0 + i as f64 * slot + slot * 0.15;
        let w = slot * 0.7;
        let title = format!(
            "{}: {}, {} non-compliant, {} critical, {} unmanaged, patch debt {}{}",
            p.night,
            p.headline.compliant_percent.map_or_else(
                || "compliance unknown".into(),
                |c| format!("{c}% compliant")
            ),
            fmt_count(p.headline.noncompliant),
            fmt_count(p.headline.critical),
            fmt_count(p.headline.unmanaged),
            fmt_count(p.headline.stopped_stale),
            if p.complete { "" } else { " (incomplete)" }
        );
        match p.headline.compliant_percent {
            Some(pct) => {
                let h = 120.0 * pct as f64 / 100.0;
                let colour = if p.complete { "#2e7d32" } else { "#9ccc65" };
                let _ = write!(
                    svg,
                    r#"<rect class="night" data-night="{}" x="{x:.2}" y="{:.2}" width="{w:.2}" height="{h:.2}" fill="{colour}"><title>{}</title></rect>"#,
                    p.night,
                    130.0 - h,
                    html_escape(&title)
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r##"<rect class="night unknown" data-night="{}" x="{x:.2}" y="126" width="{w:.2}" height="4" fill="#bbb"><title>{}</title></rect>"##,
                    p.night,
                    html_escape(&title)
                );
            }
        }
    }
    if let (Some(first), Some(last)) = (trend.points.first(), trend.points.last()) {
        let _ = write!(
            svg,
            r#"<text x="46" y="152" font-size="16">{}</text><text x="630" y="152" font-size="16" text-anchor="end">{}</text>"#,
            first.night, last.night
        );
    }
    svg.push_str("</svg>");
    out.push_str(&svg);
    let _ = write!(
        out,
        "\n<details><summary>{} night(s) as a table</summary><div class=\"scroll\"><table><tr><th>Night</th><th>Compliant</th><th>Non-compliant</th><th>Critical</th><th>Unmanaged</th><th>Patch debt</th></tr>",
        trend.points.len()
    );
    for p in trend.points.iter().rev() {
        let _ = write!(
            out,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.night,
            if p.complete { "" } else { " (incomplete)" },
            p.headline
                .compliant_percent
                .map_or_else(|| "?".into(), |c| format!("{c}%")),
            fmt_count(p.headline.noncompliant),
            fmt_count(p.headline.critical),
            fmt_count(p.headline.unmanaged),
            fmt_count(p.headline.stopped_stale)
        );
    }
    out.push_str("</table></div></details></section>\n");
    out
}

/// The full report as one HTML page, with the trend of the previous nights.
/// Over several accounts: one row per account, worst first.
fn accounts_section(report: &ComplianceReport) -> String {
    if report.accounts.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section id=\"accounts\"><h2>Accounts</h2>\n<div class=\"scroll\"><table><tr><th>Account</th><th>Running</th><th>Compliant</th><th>Non-compliant</th><th>Unmanaged</th><th>Patch debt</th><th>Regions</th></tr>\n",
    );
    for a in &report.accounts {
        let t = &a.totals;
        let mut regions = html_escape(&a.regions.join(", "));
        if !a.regions_not_read.is_empty() {
            regions.push_str(&format!(
                " <strong>(not read: {})</strong>",
                html_escape(&a.regions_not_read.join(", "))
            ));
        }
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&a.account),
            count(t.patch.running),
            count(t.patch.compliant),
            count(t.patch.noncompliant),
            count(t.unmanaged),
            count(t.patch.stopped_stale),
            regions
        );
    }
    out.push_str("</table></div></section>\n");
    out
}

pub fn render_html(report: &ComplianceReport, trend: &Trend) -> String {
    let subject = subject(report);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        html_escape(&subject)
    );
    let _ = writeln!(
        out,
        "<header><h1>fleetops compliance, {}</h1><p class=\"when\">{}</p></header>",
        html_escape(&report.region),
        html_escape(&report.generated_at)
    );
    if !report.complete {
        out.push_str("<p class=\"incomplete\">INCOMPLETE: some data could not be read; what depends on it is unknown (see Missing data in the text report).</p>\n");
    }
    out.push_str(&headline_section(report));
    out.push_str(&trend_section(trend));
    let note = |name: &str| {
        report.section_gap(name).map_or_else(String::new, |gap| {
            format!(
                "<p class=\"missing\"><strong>{}</strong></p>\n",
                html_escape(&gap_note(gap))
            )
        })
    };
    out.push_str(&accounts_section(report));
    let _ = write!(
        out,
        "<section id=\"groups\"><h2>Patch groups</h2>\n<p class=\"when\">Bars share one scale: length is the group's running instances.</p>\n{}",
        note(section::GROUPS)
    );
    let most_running = report
        .groups
        .iter()
        .filter_map(|g| g.counts.running)
        .max()
        .unwrap_or(0);
    for g in &report.groups {
        let _ = writeln!(
            out,
            "<div class=\"group\"><h3>{} <small>({}, {} running, baseline {})</small></h3>\n{}</div>",
            html_escape(&g.patch_group),
            group_status(g),
            count(g.counts.running),
            html_escape(&baseline_name(report, g)),
            group_chart(g, most_running)
        );
    }
    out.push_str("</section>\n");
    let _ = write!(
        out,
        "<section id=\"instances\"><h2>Instances with problems</h2>\n{}",
        note(section::WORST_INSTANCES)
    );
    out.push_str(
        "<div class=\"scroll\"><table><tr><th>Name</th><th>Instance</th><th>Group</th><th>Problems</th></tr>\n",
    );
    for l in &report.worst_instances {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            html_escape(l.name.as_deref().unwrap_or("-")),
            html_escape(&console_url(&report.region, &l.instance_id)),
            html_escape(&l.instance_id),
            html_escape(&l.patch_group),
            html_escape(&l.problems.join(", "))
        );
    }
    out.push_str("</table></div></section>\n");
    let _ = writeln!(
        out,
        "<section id=\"text\"><h2>Text report</h2>\n<details><summary>The e-mail's text</summary><pre>{}</pre></details></section>",
        html_escape(&render_text(report, &[]))
    );
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_regions_of_each_partition_then_the_console_link_goes_to_its_console() {
        assert_eq!(
            console_url("us-east-1", "i-0abc"),
            "https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#InstanceDetails:instanceId=i-0abc"
        );
        assert!(console_url("cn-north-1", "i-1").contains(".console.amazonaws.cn/"));
        assert!(console_url("us-gov-west-1", "i-1").contains("amazonaws-us-gov.com/"));
        assert!(!console_url("us-east-1", "i-1\"><script>").contains('"'));
    }

    #[test]
    fn given_group_sizes_then_bars_share_one_scale() {
        assert_eq!(bar_length(300, 300), BAR_FULL);
        assert_eq!(bar_length(1, 300), BAR_FULL / 300.0);
        assert_eq!(bar_length(0, 0), 0.0);
    }
}
