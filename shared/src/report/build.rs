//! The report itself: a pure function of the snapshot, the previous summary
//! and "now". Data that could not be read is never counted as something it
//! is not: counts built from it are unknown (`None`), the sections built from
//! it say so (`incomplete_sections`), and changes only compare what was read.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::snapshot::{
    DataGap, FleetSnapshot, PatchState, SOURCE_ASSOCIATIONS, SOURCE_INSTANCES,
    SOURCE_INSTANCE_INFORMATION, SOURCE_PATCH_GROUPS, SOURCE_PREVIOUS,
};

/// The group name used for instances without a patch group.
pub const NO_GROUP: &str = "(no patch group)";

/// The compact summary kept between reports (in an SSM parameter, < 4 KB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// When that report was built (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Fleet-wide counts by metric name.
    #[serde(default)]
    pub totals: BTreeMap<String, u64>,
    /// Non-compliant instances per patch group.
    #[serde(default)]
    pub groups: BTreeMap<String, u64>,
    /// Ids of non-compliant instances, when they fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncompliant: Option<Vec<String>>,
}

/// What one instance is, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Compliant,
    NonCompliant,
    /// Scanned longer ago than `stale_after`.
    Stale,
    /// Managed but never scanned.
    NotScanned,
    /// Not managed by SSM.
    Unmanaged,
    /// Its data could not be read.
    Unknown,
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLine {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub patch_group: String,
    pub standing: Standing,
    /// `Online`, `ConnectionLost`... or none when unmanaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_status: Option<String>,
    pub missing: u32,
    pub critical: u32,
    pub security: u32,
    pub failed: u32,
    pub pending_reboot: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scan: Option<String>,
    /// Short problem words, worst first (`critical`, `failed`...).
    pub problems: Vec<String>,
    #[serde(skip)]
    pub score: u64,
}

/// Counts, fleet-wide or per patch group. `None` (JSON `null`) is unknown:
/// some of the data it is counted from could not be read this time. It is
/// never replaced by a count of what happened to be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Running (or pending) instances: the ones assessed.
    pub running: Option<u64>,
    pub compliant: Option<u64>,
    pub noncompliant: Option<u64>,
    pub missing_critical: Option<u64>,
    pub missing_security: Option<u64>,
    pub failed: Option<u64>,
    pub pending_reboot: Option<u64>,
    pub stale: Option<u64>,
    pub not_scanned: Option<u64>,
    /// Running instances that could not be assessed: not managed by SSM, or
    /// their data could not be read.
    pub unknown: Option<u64>,
    pub stopped: Option<u64>,
    /// Stopped instances whose last patch scan is missing or older than
    /// `stale_after_days`: patch debt, never counted as non-compliant.
    pub stopped_stale: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetTotals {
    /// All instances that are not terminated.
    pub instances: Option<u64>,
    pub managed: Option<u64>,
    pub online: Option<u64>,
    pub connection_lost: Option<u64>,
    pub unmanaged: Option<u64>,
    pub association_compliant: Option<u64>,
    pub association_noncompliant: Option<u64>,
    /// Running/stopped and the patch standing (flattened: `totals.running`,
    /// `totals.noncompliant`, ...).
    #[serde(flatten)]
    pub patch: Counts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    pub patch_group: String,
    /// The baseline registered to the group; none: the OS default baseline
    /// (or unknown, when the `groups` section says baselines could not be read).
    pub baseline_id: Option<String>,
    /// Every running instance of the group is compliant; none: unknown (no
    /// instance is known to be a problem, but some could not be assessed).
    pub group_compliant: Option<bool>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRef {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub metric: String,
    pub before: u64,
    /// None: unknown this time (its source could not be read), not a drop.
    pub after: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// When the previous report was built; none: this is the first report
    /// (or the previous one could not be read: see `incomplete_sections`).
    pub since: Option<String>,
    pub metrics: Vec<Change>,
    /// Non-compliant now, not in the previous report.
    pub newly_noncompliant: Vec<String>,
    /// Non-compliant in the previous report, and now read and compliant (or
    /// terminated). An instance whose data is missing is never fixed.
    pub fixed: Vec<String>,
}

/// How much of a report section could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// Nothing: the section's source could not be read.
    Unknown,
    /// Part of it (see `SectionGap::instances`).
    Partial,
}

/// A report section whose data could not all be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionGap {
    pub status: Coverage,
    /// What could not be read (`DataGap::source`s).
    pub sources: Vec<String>,
    /// Instances whose data is missing from the section, when it is per instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u64>,
}

/// Names of the sections in `ComplianceReport::incomplete_sections` (the
/// report's JSON keys).
pub mod section {
    pub const TOTALS: &str = "totals";
    pub const GROUPS: &str = "groups";
    pub const WORST_INSTANCES: &str = "worst_instances";
    pub const UNMANAGED: &str = "unmanaged";
    pub const CONNECTION_LOST: &str = "connection_lost";
    pub const STOPPED: &str = "stopped";
    pub const ASSOCIATION_NONCOMPLIANT: &str = "association_noncompliant";
    pub const CHANGES: &str = "changes";
}

/// The whole report. Lists are complete here; rendering may summarise them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceReport {
    pub generated_at: String,
    pub region: String,
    pub stale_after_days: u32,
    /// False when some data could not be read (see `gaps`).
    pub complete: bool,
    pub totals: FleetTotals,
    pub groups: Vec<GroupReport>,
    /// Instances with a problem, worst first.
    pub worst_instances: Vec<InstanceLine>,
    pub unmanaged: Vec<InstanceRef>,
    pub connection_lost: Vec<InstanceRef>,
    pub stopped: Vec<InstanceRef>,
    pub association_noncompliant: Vec<InstanceRef>,
    pub changes: Changes,
    pub gaps: Vec<DataGap>,
    /// The sections (by JSON key, see [`section`]) whose source could not be
    /// read, wholly or in part; a section not listed is complete.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub incomplete_sections: BTreeMap<String, SectionGap>,
    /// Items left out of each list by rendering (list name → count).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub omitted: BTreeMap<String, usize>,
    /// Over several account-regions: one row per account, worst first
    /// (empty for a report of the function's own account and region).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<super::org::AccountRow>,
}

impl ComplianceReport {
    /// What the report says about `name` (a [`section`]), when incomplete.
    pub fn section_gap(&self, name: &str) -> Option<&SectionGap> {
        self.incomplete_sections.get(name)
    }

    /// True when nothing of section `name` could be read.
    pub fn section_unknown(&self, name: &str) -> bool {
        self.section_gap(name)
            .is_some_and(|g| g.status == Coverage::Unknown)
    }
}

/// Counting while the report is built; [`Tally::counts`] turns it into
/// [`Counts`], unknown where instances could not be read.
#[derive(Clone, Debug, Default)]
struct Tally {
    running: u64,
    compliant: u64,
    noncompliant: u64,
    missing_critical: u64,
    missing_security: u64,
    failed: u64,
    pending_reboot: u64,
    stale: u64,
    not_scanned: u64,
    unknown: u64,
    stopped: u64,
    stopped_stale: u64,
    /// Running instances whose data could not be read.
    running_unread: u64,
    /// Stopped instances whose patch state could not be read.
    stopped_unread: u64,
}

impl Tally {
    fn counts(&self) -> Counts {
        let patch = |n: u64| (self.running_unread == 0).then_some(n);
        Counts {
            running: Some(self.running),
            compliant: patch(self.compliant),
            noncompliant: patch(self.noncompliant),
            missing_critical: patch(self.missing_critical),
            missing_security: patch(self.missing_security),
            failed: patch(self.failed),
            pending_reboot: patch(self.pending_reboot),
            stale: patch(self.stale),
            not_scanned: patch(self.not_scanned),
            unknown: Some(self.unknown),
            stopped: Some(self.stopped),
            stopped_stale: (self.stopped_unread == 0).then_some(self.stopped_stale),
        }
    }

    /// Known false as soon as one assessed instance is not compliant; known
    /// true only when every running instance was read and is compliant.
    fn all_compliant(&self) -> Option<bool> {
        let assessed = self.running.saturating_sub(self.running_unread);
        if assessed > self.compliant {
            Some(false)
        } else if self.running_unread > 0 {
            None
        } else {
            Some(true)
        }
    }
}

/// Fleet-wide counts that are not per group.
#[derive(Clone, Debug, Default)]
struct FleetTally {
    instances: u64,
    managed: u64,
    online: u64,
    connection_lost: u64,
    unmanaged: u64,
    association_compliant: u64,
    association_noncompliant: u64,
}

/// Records that `name` misses `sources` (merging with what is there).
fn mark(
    sections: &mut BTreeMap<String, SectionGap>,
    name: &str,
    status: Coverage,
    sources: &[String],
    instances: Option<u64>,
) {
    let entry = sections.entry(name.to_string()).or_insert(SectionGap {
        status,
        sources: Vec::new(),
        instances: None,
    });
    if status == Coverage::Unknown {
        entry.status = Coverage::Unknown;
    }
    for source in sources {
        if !entry.sources.contains(source) {
            entry.sources.push(source.clone());
        }
    }
    entry.instances = entry.instances.max(instances);
}

fn is_stopped(state: &str) -> bool {
    matches!(state, "stopped" | "stopping")
}

fn is_gone(state: &str) -> bool {
    matches!(state, "terminated" | "shutting-down")
}

fn score(line: &InstanceLine) -> u64 {
    let base = match line.standing {
        Standing::NonCompliant => 0,
        Standing::Unmanaged => 5_000,
        Standing::Stale | Standing::NotScanned => 2_000,
        Standing::Unknown => 1_000,
        Standing::Compliant | Standing::Stopped => 0,
    };
    let offline = if line.ping_status.as_deref() == Some("ConnectionLost") {
        3_000
    } else {
        0
    };
    base + offline
        + u64::from(line.critical) * 10_000
        + u64::from(line.security) * 1_000
        + u64::from(line.failed) * 500
        + u64::from(line.missing) * 100
        + u64::from(line.pending_reboot) * 50
}

/// Builds the report. `stale_after_days` is how old a scan may be.
pub fn build_report(
    snapshot: &FleetSnapshot,
    previous: &Previous,
    now: Timestamp,
    stale_after_days: u32,
) -> ComplianceReport {
    let stale_after = SignedDuration::from_hours(i64::from(stale_after_days) * 24);
    let sources_of = |source: &str| -> Vec<String> {
        let mut names: Vec<String> = snapshot
            .gaps
            .iter()
            .filter(|g| g.is(source))
            .map(|g| g.source.clone())
            .collect();
        names.dedup();
        names
    };
    let failed = |source: &str| snapshot.gaps.iter().any(|g| g.is(source));
    let instances_known = !failed(SOURCE_INSTANCES);
    // Without the agent list, nobody can be called unmanaged.
    let management_known = !failed(SOURCE_INSTANCE_INFORMATION);
    let associations_known = !failed(SOURCE_ASSOCIATIONS);
    let baselines_known = !failed(SOURCE_PATCH_GROUPS);
    let previous_known = !failed(SOURCE_PREVIOUS);

    let managed: HashMap<&str, &str> = snapshot
        .managed
        .iter()
        .map(|m| (m.instance_id.as_str(), m.ping_status.as_str()))
        .collect();
    let states: HashMap<&str, &PatchState> = snapshot
        .patch_states
        .iter()
        .map(|p| (p.instance_id.as_str(), p))
        .collect();
    let baselines: BTreeMap<&str, &str> = snapshot
        .patch_groups
        .iter()
        .map(|g| (g.patch_group.as_str(), g.baseline_id.as_str()))
        .collect();
    let unreadable: BTreeSet<&str> = snapshot
        .gaps
        .iter()
        .flat_map(|g| g.instance_ids.iter().map(String::as_str))
        .collect();
    let associations: HashMap<&str, bool> = snapshot
        .associations
        .iter()
        .map(|a| (a.resource_id.as_str(), a.compliant))
        .collect();

    let mut fleet = FleetTally::default();
    let mut totals = Tally::default();
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    if instances_known {
        for group in baselines.keys() {
            groups.entry((*group).to_string()).or_default();
        }
    }
    let mut lines = Vec::new();
    let mut unmanaged = Vec::new();
    let mut connection_lost = Vec::new();
    let mut stopped = Vec::new();
    let mut association_noncompliant = Vec::new();
    // For the changes: instances listed now, and those read and compliant.
    let mut present: BTreeSet<&str> = BTreeSet::new();
    let mut compliant_now: BTreeSet<&str> = BTreeSet::new();

    let mut instances: Vec<_> = snapshot
        .instances
        .iter()
        .filter(|i| !is_gone(&i.state))
        .collect();
    instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    for instance in instances {
        let id = instance.instance_id.as_str();
        present.insert(id);
        let reference = InstanceRef {
            instance_id: id.to_string(),
            name: instance.name.clone(),
        };
        let state = states.get(id).copied();
        // The tags decide, as for the dispatcher; the group SSM recorded with
        // the last scan only when the instance has no patch-group tag.
        let group_name = instance
            .patch_group
            .clone()
            .or_else(|| state.and_then(|s| s.patch_group.clone()))
            .unwrap_or_else(|| NO_GROUP.to_string());
        let counts = groups.entry(group_name.clone()).or_default();
        let mut add = |f: fn(&mut Tally)| {
            f(counts);
            f(&mut totals);
        };
        fleet.instances += 1;
        if is_stopped(&instance.state) {
            add(|c| c.stopped += 1);
            // Patch states were not asked for when the agent list is unknown.
            if unreadable.contains(id) || !management_known {
                add(|c| c.stopped_unread += 1);
            } else if state
                .and_then(|s| s.operation_end_time)
                .is_none_or(|end| now.duration_since(end) > stale_after)
            {
                add(|c| c.stopped_stale += 1);
            }
            stopped.push(reference);
            continue;
        }
        let ping = managed.get(id).map(|p| (*p).to_string());
        match ping.as_deref() {
            Some(status) => {
                fleet.managed += 1;
                if status == "ConnectionLost" {
                    fleet.connection_lost += 1;
                    connection_lost.push(reference.clone());
                } else if status == "Online" {
                    fleet.online += 1;
                }
            }
            None if management_known => {
                fleet.unmanaged += 1;
                unmanaged.push(reference.clone());
            }
            None => {}
        }
        match associations.get(id) {
            Some(true) => fleet.association_compliant += 1,
            Some(false) => {
                fleet.association_noncompliant += 1;
                association_noncompliant.push(reference.clone());
            }
            None => {}
        }

        let mut line = InstanceLine {
            instance_id: id.to_string(),
            name: instance.name.clone(),
            patch_group: group_name.clone(),
            standing: Standing::Compliant,
            ping_status: ping.clone(),
            missing: 0,
            critical: 0,
            security: 0,
            failed: 0,
            pending_reboot: 0,
            last_scan: None,
            problems: Vec::new(),
            score: 0,
        };
        if let Some(state) = state {
            line.missing = state.missing;
            line.critical = state.critical_noncompliant;
            line.security = state.security_noncompliant;
            line.failed = state.failed;
            line.pending_reboot = state.installed_pending_reboot;
            line.last_scan = state.operation_end_time.map(|t| t.to_string());
        }
        let scanned_recently = state
            .and_then(|s| s.operation_end_time)
            .map(|end| now.duration_since(end) <= stale_after);
        let patch_problem = state.is_some_and(|s| {
            s.missing > 0
                || s.failed > 0
                || s.installed_pending_reboot > 0
                || s.installed_rejected > 0
                || s.critical_noncompliant > 0
                || s.security_noncompliant > 0
        });
        line.standing = if unreadable.contains(id) || (ping.is_none() && !management_known) {
            Standing::Unknown
        } else if patch_problem {
            Standing::NonCompliant
        } else if ping.is_none() {
            Standing::Unmanaged
        } else {
            match scanned_recently {
                None => Standing::NotScanned,
                Some(false) => Standing::Stale,
                Some(true) => Standing::Compliant,
            }
        };
        add(|c| c.running += 1);
        match line.standing {
            Standing::Compliant => {
                add(|c| c.compliant += 1);
                compliant_now.insert(id);
            }
            Standing::NonCompliant => add(|c| c.noncompliant += 1),
            Standing::Stale => add(|c| c.stale += 1),
            Standing::NotScanned => add(|c| c.not_scanned += 1),
            Standing::Unmanaged => add(|c| c.unknown += 1),
            Standing::Unknown => add(|c| {
                c.unknown += 1;
                c.running_unread += 1;
            }),
            Standing::Stopped => {}
        }
        if line.standing != Standing::Unknown {
            if line.critical > 0 {
                add(|c| c.missing_critical += 1);
                line.problems.push(format!("{} critical", line.critical));
            }
            if line.security > 0 {
                add(|c| c.missing_security += 1);
                line.problems.push(format!("{} security", line.security));
            }
            if line.failed > 0 {
                add(|c| c.failed += 1);
                line.problems.push(format!("{} failed", line.failed));
            }
            if line.missing > 0 {
                line.problems.push(format!("{} missing", line.missing));
            }
            if line.pending_reboot > 0 {
                add(|c| c.pending_reboot += 1);
                line.problems.push("reboot pending".to_string());
            }
            if state.is_some_and(|s| s.installed_rejected > 0) {
                line.problems.push("rejected installed".to_string());
            }
        }
        match line.standing {
            Standing::Stale => line
                .problems
                .push(format!("scan older than {stale_after_days} d")),
            Standing::NotScanned => line.problems.push("never scanned".to_string()),
            Standing::Unmanaged => line.problems.push("not managed by SSM".to_string()),
            Standing::Unknown => line.problems.push("data missing".to_string()),
            _ => {}
        }
        if line.ping_status.as_deref() == Some("ConnectionLost") {
            line.problems.push("connection lost".to_string());
        }
        if !line.problems.is_empty() {
            line.score = score(&line);
            lines.push(line);
        }
    }
    lines.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.instance_id.cmp(&b.instance_id))
    });

    let known = |ok: bool, n: u64| (instances_known && ok).then_some(n);
    let fleet_totals = FleetTotals {
        instances: known(true, fleet.instances),
        managed: known(management_known, fleet.managed),
        online: known(management_known, fleet.online),
        connection_lost: known(management_known, fleet.connection_lost),
        unmanaged: known(management_known, fleet.unmanaged),
        association_compliant: known(associations_known, fleet.association_compliant),
        association_noncompliant: known(associations_known, fleet.association_noncompliant),
        patch: if instances_known {
            totals.counts()
        } else {
            Counts::default()
        },
    };
    let groups: Vec<GroupReport> = groups
        .into_iter()
        .map(|(name, tally)| GroupReport {
            baseline_id: baselines.get(name.as_str()).map(|b| (*b).to_string()),
            group_compliant: tally.all_compliant(),
            patch_group: name,
            counts: tally.counts(),
        })
        .collect();

    // Which sections lack data, and why.
    let mut sections = BTreeMap::new();
    let comparing = previous.at.is_some();
    if !instances_known {
        let sources = sources_of(SOURCE_INSTANCES);
        for name in [
            section::TOTALS,
            section::GROUPS,
            section::WORST_INSTANCES,
            section::UNMANAGED,
            section::CONNECTION_LOST,
            section::STOPPED,
            section::ASSOCIATION_NONCOMPLIANT,
        ] {
            mark(&mut sections, name, Coverage::Unknown, &sources, None);
        }
        if comparing {
            mark(
                &mut sections,
                section::CHANGES,
                Coverage::Unknown,
                &sources,
                None,
            );
        }
    } else {
        let mut partial = |names: &[&str], sources: &[String], instances: Option<u64>| {
            for name in names {
                mark(&mut sections, name, Coverage::Partial, sources, instances);
            }
        };
        let unread = totals.running_unread + totals.stopped_unread;
        if unread > 0 {
            let mut sources: Vec<String> = snapshot
                .gaps
                .iter()
                .filter(|g| !g.instance_ids.is_empty())
                .map(|g| g.source.clone())
                .collect();
            sources.dedup();
            if !management_known {
                sources.extend(sources_of(SOURCE_INSTANCE_INFORMATION));
            }
            let mut names = vec![section::TOTALS, section::GROUPS, section::WORST_INSTANCES];
            if comparing {
                names.push(section::CHANGES);
            }
            partial(&names, &sources, Some(unread));
        }
        let mut summary_only = |known: bool, source: &str| {
            if !known {
                let mut names = vec![section::TOTALS];
                if comparing {
                    names.push(section::CHANGES);
                }
                partial(&names, &sources_of(source), None);
            }
        };
        summary_only(management_known, SOURCE_INSTANCE_INFORMATION);
        summary_only(associations_known, SOURCE_ASSOCIATIONS);
        if !baselines_known {
            partial(&[section::GROUPS], &sources_of(SOURCE_PATCH_GROUPS), None);
        }
        if !management_known {
            let sources = sources_of(SOURCE_INSTANCE_INFORMATION);
            for name in [section::UNMANAGED, section::CONNECTION_LOST] {
                mark(&mut sections, name, Coverage::Unknown, &sources, None);
            }
        }
        if !associations_known {
            mark(
                &mut sections,
                section::ASSOCIATION_NONCOMPLIANT,
                Coverage::Unknown,
                &sources_of(SOURCE_ASSOCIATIONS),
                None,
            );
        }
    }
    if !previous_known {
        mark(
            &mut sections,
            section::CHANGES,
            Coverage::Unknown,
            &sources_of(SOURCE_PREVIOUS),
            None,
        );
    }

    let noncompliant_now: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l.standing == Standing::NonCompliant)
        .map(|l| l.instance_id.as_str())
        .collect();
    let changes = changes_since(
        previous,
        &metric_totals(&fleet_totals),
        &noncompliant_now,
        // Fixed only when read and compliant now, or gone from a complete
        // instance list; never because its data is missing.
        |id| compliant_now.contains(id) || (instances_known && !present.contains(id)),
    );

    ComplianceReport {
        generated_at: now.to_string(),
        region: snapshot.region.clone(),
        stale_after_days,
        complete: snapshot.gaps.is_empty(),
        totals: fleet_totals,
        groups,
        worst_instances: lines,
        unmanaged,
        connection_lost,
        stopped,
        association_noncompliant,
        changes,
        gaps: snapshot.gaps.clone(),
        incomplete_sections: sections,
        omitted: BTreeMap::new(),
        accounts: Vec::new(),
    }
}

/// The metrics compared between reports, in display order; `None`: unknown.
pub fn metric_totals(totals: &FleetTotals) -> Vec<(&'static str, Option<u64>)> {
    vec![
        ("running", totals.patch.running),
        ("stopped", totals.patch.stopped),
        ("stopped_stale", totals.patch.stopped_stale),
        ("unmanaged", totals.unmanaged),
        ("connection_lost", totals.connection_lost),
        ("compliant", totals.patch.compliant),
        ("noncompliant", totals.patch.noncompliant),
        ("missing_critical", totals.patch.missing_critical),
        ("missing_security", totals.patch.missing_security),
        ("failed", totals.patch.failed),
        ("pending_reboot", totals.patch.pending_reboot),
        ("stale", totals.patch.stale),
        ("not_scanned", totals.patch.not_scanned),
        ("association_noncompliant", totals.association_noncompliant),
    ]
}

/// What changed since `previous`. A metric the previous summary does not
/// have is not compared (there is nothing to compare with); one unknown now is
/// listed with `after: None`, never as a drop. `fixable` says whether an
/// instance that is no longer non-compliant was really read this time.
fn changes_since(
    previous: &Previous,
    current: &[(&'static str, Option<u64>)],
    noncompliant: &BTreeSet<&str>,
    fixable: impl Fn(&str) -> bool,
) -> Changes {
    let Some(since) = previous.at.clone() else {
        return Changes::default();
    };
    let metrics = current
        .iter()
        .filter_map(|(name, after)| {
            let before = previous.totals.get(*name).copied()?;
            (*after != Some(before)).then(|| Change {
                metric: (*name).to_string(),
                before,
                after: *after,
            })
        })
        .collect();
    let (newly_noncompliant, fixed) = match &previous.noncompliant {
        Some(before) => {
            let before: BTreeSet<&str> = before.iter().map(String::as_str).collect();
            (
                noncompliant
                    .difference(&before)
                    .map(|s| (*s).to_string())
                    .collect(),
                before
                    .difference(noncompliant)
                    .filter(|id| fixable(id))
                    .map(|s| (*s).to_string())
                    .collect(),
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    Changes {
        since: Some(since),
        metrics,
        newly_noncompliant,
        fixed,
    }
}

/// Largest previous-summary document kept in the parameter (standard tier: 4 KB).
pub const PREVIOUS_MAX_BYTES: usize = 4000;

impl Previous {
    /// The compact summary of `report`, as JSON of at most
    /// [`PREVIOUS_MAX_BYTES`]: instance ids and then groups are dropped
    /// when they do not fit.
    pub fn from_report(report: &ComplianceReport) -> String {
        let mut previous = Previous {
            at: Some(report.generated_at.clone()),
            // Only what is known: an unknown metric is not compared tomorrow.
            totals: metric_totals(&report.totals)
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?)))
                .collect(),
            groups: report
                .groups
                .iter()
                .filter_map(|g| Some((g.patch_group.clone(), g.counts.noncompliant?)))
                .collect(),
            noncompliant: Some(
                report
                    .worst_instances
                    .iter()
                    .filter(|l| l.standing == Standing::NonCompliant)
                    .map(|l| l.instance_id.clone())
                    .collect(),
            ),
        };
        let encode = |p: &Previous| serde_json::to_string(p).unwrap_or_default();
        let mut text = encode(&previous);
        if text.len() > PREVIOUS_MAX_BYTES {
            previous.noncompliant = None;
            text = encode(&previous);
        }
        while text.len() > PREVIOUS_MAX_BYTES && !previous.groups.is_empty() {
            previous.groups.pop_last();
            text = encode(&previous);
        }
        text
    }
}
