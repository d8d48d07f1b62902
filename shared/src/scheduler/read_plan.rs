//! Which instances a tick must read in full, decided from a few tags.
//!
//! A tick's decisions depend on every tagged instance, but most of them, on
//! most ticks, are already where their schedule wants them. The tick first
//! reads only the tags that decide whether an instance can need anything
//! (`DescribeTags`: a few hundred bytes per instance instead of a few KB),
//! then reads in full only:
//! - by schedule and state: the instances of each schedule that are *not* in
//!   the state the schedule wants now (server-side filters on the tag value
//!   and `instance-state-name`): exactly the ones to stop, start, report as
//!   transitional or as a start that did not hold;
//! - by id: every instance whose tags alone make it need a look (an override,
//!   a patch window, an Auto Scaling group, an unknown or invalid schedule
//!   name, a value EC2's filters cannot match exactly, a transition it is not
//!   marked for, a marker newer than "now");
//! - spot instances (a tag cannot tell them apart; they are always skipped).
//!
//! Everything else is "quiet": `plan_tick` decides nothing for it. The
//! property test in `reads_tests` checks that claim against `plan_tick` over
//! random fleets.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;

use super::plan::{read_marker, MarkerRead, ScheduleNow, APPLIED_TAG, ASG_TAG, OVERRIDE_TAG};
use crate::schedule::Schedules;
use crate::tags::WOKEN_TAG;

/// EC2 refuses a call with more filter values than this, all filters
/// together ("FilterLimitExceeded: The maximum number of filter values
/// specified on a single call is 200").
pub const MAX_FILTER_VALUES: usize = 200;

/// The states a tick reads live instances in (not terminated).
pub const LIVE_STATES: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];
/// Not running: what a schedule that wants its instances running looks for.
const NOT_RUNNING: [&str; 4] = ["pending", "stopping", "stopped", "shutting-down"];
/// Not stopped: what a schedule that wants its instances stopped looks for.
const NOT_STOPPED: [&str; 4] = ["pending", "running", "stopping", "shutting-down"];

/// The tag keys the first read asks for, grouped into the key sets read as
/// separate (concurrent) `DescribeTags` chains: the schedule tag (on every
/// instance), the marker (on most), the rare ones together.
pub fn tag_key_groups(schedule_tag: &str) -> Vec<Vec<String>> {
    vec![
        vec![schedule_tag.to_string()],
        vec![APPLIED_TAG.to_string()],
        vec![
            OVERRIDE_TAG.to_string(),
            WOKEN_TAG.to_string(),
            ASG_TAG.to_string(),
        ],
    ]
}

/// The deciding tags of one instance, as `DescribeTags` returned them.
pub type TagViews = BTreeMap<String, BTreeMap<String, String>>;

/// One `DescribeInstances` query of the second read (before pagination).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FullRead {
    /// Instances whose schedule tag has one of `values`, in one of `states`.
    ByState {
        values: Vec<String>,
        states: Vec<&'static str>,
    },
    /// These instances, if live (terminated ones are not the tick's).
    ById(Vec<String>),
    /// Spot instances carrying the schedule tag, live.
    Spot,
}

/// The second read, and what the first one found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadPlan {
    pub reads: Vec<FullRead>,
    /// Instances carrying the schedule tag.
    pub tagged: usize,
    /// Of those, read by id because their tags alone call for a look.
    pub by_id: usize,
}

/// Marker values already read, per schedule.
type MarkerCache<'a> = HashMap<(&'a str, Option<&'a str>), MarkerRead>;

/// What an instance's deciding tags say, whatever its state.
#[derive(Debug, PartialEq, Eq)]
enum Need {
    /// Nothing to do while it is in this state (`true`: running); a full
    /// read is needed only when it is not.
    QuietWhen(bool),
    /// Its schedule value can be filtered on, but it is not marked for the
    /// schedule's latest transition (or marked later than now): a look in
    /// any state.
    Unmarked,
    /// Anything else: read it by id.
    Look,
}

fn need<'a>(
    tags: &'a BTreeMap<String, String>,
    schedules: &'a Schedules,
    schedule_tag: &str,
    now: Timestamp,
    evaluated: &mut HashMap<String, ScheduleNow>,
    markers: &mut MarkerCache<'a>,
) -> Need {
    if [OVERRIDE_TAG, WOKEN_TAG, ASG_TAG]
        .iter()
        .any(|key| tags.contains_key(*key))
    {
        return Need::Look;
    }
    let Some(value) = tags.get(schedule_tag) else {
        return Need::Look;
    };
    if !filterable(value) {
        return Need::Look;
    }
    let Some(Ok(schedule)) = schedules.get(value) else {
        return Need::Look;
    };
    // Looked up without allocating: this runs once per instance.
    let now_says = match evaluated.get(&schedule.name) {
        Some(known) => *known,
        None => {
            let fresh = ScheduleNow::of(schedule, now);
            evaluated.insert(schedule.name.clone(), fresh);
            fresh
        }
    };
    // Most instances of a schedule carry the same marker: read each value once.
    let marker = tags.get(APPLIED_TAG).map(String::as_str);
    let read = *markers
        .entry((schedule.name.as_str(), marker))
        .or_insert_with(|| read_marker(marker, schedule));
    let applied = match read {
        MarkerRead::Applied(at, _) => Some(at),
        MarkerRead::NotApplied => None,
    };
    if applied.is_some_and(|at| at > now) {
        return Need::Unmarked;
    }
    // A transition-only schedule acts (or marks) once per transition: an
    // instance not yet marked for the latest one needs a look in any state.
    if !schedule.enforced {
        if let Some(last) = now_says.last {
            if applied.is_none_or(|at| at < last.at) {
                return Need::Unmarked;
            }
        }
    }
    Need::QuietWhen(now_says.wants_running)
}

/// Whether a `tag:` filter with this value matches exactly this value: EC2
/// reads `*`, `?` and `\` as wildcards and escapes, and the tick trims values
/// that EC2 compares as they are.
fn filterable(value: &str) -> bool {
    !value.is_empty() && value.trim() == value && !value.contains(['*', '?', '\\'])
}

/// Instances (counted from the tags) a query of several schedule values is
/// planned for at most: small schedules share a query, so a quiet fleet costs
/// few calls; big ones get their own, read concurrently, so that no single
/// `NextToken` chain grows with the fleet.
pub const INSTANCES_PER_QUERY: usize = 2000;
/// A schedule whose unmarked instances are at least this share (1 in N) of
/// it is read whole (1000 per page) rather than by id (200 per call).
const WHOLE_READ_SHARE: usize = 5;

#[derive(Default)]
struct ValueStats {
    instances: usize,
    unmarked: Vec<String>,
    /// What its quiet instances are (the same for all: one schedule).
    quiet_running: Option<bool>,
}

/// Plans the second read from the first: which instances must be read in
/// full, in as few and as parallel queries as EC2's filter limit allows.
pub fn plan_reads(
    views: &TagViews,
    schedules: &Schedules,
    schedule_tag: &str,
    now: Timestamp,
) -> ReadPlan {
    let mut evaluated = HashMap::new();
    let mut markers = MarkerCache::new();
    let mut by_id = Vec::new();
    let mut values: BTreeMap<&str, ValueStats> = BTreeMap::new();
    let mut tagged = 0;
    for (id, tags) in views {
        let Some(value) = tags.get(schedule_tag) else {
            continue;
        };
        tagged += 1;
        let need = need(
            tags,
            schedules,
            schedule_tag,
            now,
            &mut evaluated,
            &mut markers,
        );
        if need == Need::Look {
            by_id.push(id.clone());
            continue;
        }
        let stats = values.entry(value.as_str()).or_default();
        stats.instances += 1;
        match need {
            Need::QuietWhen(running) => stats.quiet_running = Some(running),
            Need::Unmarked => stats.unmarked.push(id.clone()),
            Need::Look => {}
        }
    }
    // Per value: read whole, or only the instances out of the wanted state
    // (plus the unmarked by id).
    let mut whole = Vec::new();
    let mut not_running = Vec::new();
    let mut not_stopped = Vec::new();
    for (value, stats) in values {
        if stats.unmarked.len() * WHOLE_READ_SHARE >= stats.instances {
            whole.push((value, stats.instances));
            continue;
        }
        by_id.extend(stats.unmarked);
        match stats.quiet_running {
            Some(true) => not_running.push((value, stats.instances)),
            Some(false) => not_stopped.push((value, stats.instances)),
            None => {}
        }
    }
    let mut reads = Vec::new();
    for (group, states) in [
        (whole, &LIVE_STATES[..]),
        (not_running, &NOT_RUNNING[..]),
        (not_stopped, &NOT_STOPPED[..]),
    ] {
        for values in group_values(&group, MAX_FILTER_VALUES - states.len()) {
            reads.push(FullRead::ByState {
                values,
                states: states.to_vec(),
            });
        }
    }
    let looked_at = by_id.len();
    for chunk in by_id.chunks(MAX_FILTER_VALUES - LIVE_STATES.len()) {
        reads.push(FullRead::ById(chunk.to_vec()));
    }
    if tagged > 0 {
        reads.push(FullRead::Spot);
    }
    ReadPlan {
        reads,
        tagged,
        by_id: looked_at,
    }
}

/// Schedule values in groups of at most `max_values`, each group planned
/// for at most `INSTANCES_PER_QUERY` instances (a bigger value alone).
fn group_values(values: &[(&str, usize)], max_values: usize) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut planned = 0;
    for (value, instances) in values {
        if !current.is_empty()
            && (planned + instances > INSTANCES_PER_QUERY || current.len() == max_values)
        {
            groups.push(std::mem::take(&mut current));
            planned = 0;
        }
        current.push((*value).to_string());
        planned += instances;
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}
