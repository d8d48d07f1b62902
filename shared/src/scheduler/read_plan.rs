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
//!   transitional or as a start that did not hold. These depend only on the
//!   schedules and the time (`early_reads`), so they are sent together with
//!   the first read, as is the spot query below;
//! - a schedule with many instances not marked for its latest transition:
//!   the rest of it, in the state it wants;
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

/// One `DescribeTags` chain of the first read: the keys it asks for, and
/// whether it is split by instance id (`id_split`) because every or most
/// instances carry one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagChain {
    pub keys: Vec<String>,
    pub split: bool,
}

/// The tag keys the first read asks for, grouped into the key sets read as
/// separate (concurrent) `DescribeTags` chains: the schedule tag (on every
/// instance), the marker (on most), the rare ones together (not split: a
/// handful of tags is one page).
pub fn tag_key_groups(schedule_tag: &str) -> Vec<TagChain> {
    let chain = |keys: &[&str], split| TagChain {
        keys: keys.iter().map(|k| k.to_string()).collect(),
        split,
    };
    vec![
        chain(&[schedule_tag], true),
        chain(&[APPLIED_TAG], true),
        chain(&[OVERRIDE_TAG, WOKEN_TAG, ASG_TAG], false),
    ]
}

/// The deciding tags of every instance carrying one, by instance id.
pub type TagViews = BTreeMap<String, DecidingTags>;

/// The deciding tags of one instance, as `DescribeTags` returned them: one
/// to five of them, so a list, not a map (10,000 instances are 10,000 of
/// these per tick, and a map's first node alone is about 500 bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecidingTags(Vec<(String, String)>);

impl DecidingTags {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` (EC2 keys are unique per resource; a repeat replaces).
    pub fn insert(&mut self, key: String, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => *old = value,
            None => self.0.push((key, value)),
        }
    }
}

impl<const N: usize> From<[(String, String); N]> for DecidingTags {
    fn from(tags: [(String, String); N]) -> Self {
        let mut all = Self::default();
        for (key, value) in tags {
            all.insert(key, value);
        }
        all
    }
}

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
    /// Sent with the first read (`early_reads`).
    pub early: Vec<FullRead>,
    /// Sent after it, from what it found.
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
    /// any state (the schedule wants running: `true`).
    Unmarked(bool),
    /// Anything else: read it by id.
    Look,
}

fn need<'a>(
    tags: &'a DecidingTags,
    schedules: &'a Schedules,
    schedule_tag: &str,
    now: Timestamp,
    evaluated: &mut HashMap<String, ScheduleNow>,
    markers: &mut MarkerCache<'a>,
) -> Need {
    if [OVERRIDE_TAG, WOKEN_TAG, ASG_TAG]
        .iter()
        .any(|key| tags.contains_key(key))
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
        return Need::Unmarked(now_says.wants_running);
    }
    // A transition-only schedule acts (or marks) once per transition: an
    // instance not yet marked for the latest one needs a look in any state.
    if !schedule.enforced {
        if let Some(last) = now_says.last {
            if applied.is_none_or(|at| at < last.at) {
                return Need::Unmarked(now_says.wants_running);
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
    /// Whether its schedule wants its instances running now.
    wants_running: bool,
}

/// Queries per wanted state of `early_reads` when nothing is known of the
/// fleet: enough to read half of a big fleet concurrently.
pub const EARLY_QUERIES_PER_STATE: usize = 8;

/// How many queries per wanted state `early_reads` spreads the schedules
/// over: `EARLY_QUERIES_PER_STATE`, or fewer when the last read of this
/// region counted `last_tagged` instances (about `INSTANCES_PER_QUERY` each).
pub fn early_queries_per_state(last_tagged: Option<usize>) -> usize {
    last_tagged.map_or(EARLY_QUERIES_PER_STATE, |n| {
        n.div_ceil(INSTANCES_PER_QUERY)
            .clamp(1, EARLY_QUERIES_PER_STATE)
    })
}

/// The part of the second read that needs only the schedules and the time:
/// per valid schedule whose name a `tag:` filter matches exactly, its
/// instances not in the state it wants now, in about `queries_per_state`
/// queries per wanted state (more if EC2's filter limit asks for it); and
/// the spot instances carrying the tag.
pub fn early_reads(
    schedules: &Schedules,
    now: Timestamp,
    queries_per_state: usize,
) -> Vec<FullRead> {
    let mut not_running = Vec::new();
    let mut not_stopped = Vec::new();
    for (name, schedule) in &schedules.by_name {
        let Ok(schedule) = schedule else { continue };
        if !filterable(name) {
            continue;
        }
        if schedule.wants_running(now) {
            not_running.push(name.clone());
        } else {
            not_stopped.push(name.clone());
        }
    }
    let mut reads = Vec::new();
    for (names, states) in [(not_running, &NOT_RUNNING), (not_stopped, &NOT_STOPPED)] {
        if names.is_empty() {
            continue;
        }
        let most = MAX_FILTER_VALUES - states.len();
        let queries = queries_per_state.max(1).max(names.len().div_ceil(most));
        let per_query = names.len().div_ceil(queries);
        for values in names.chunks(per_query) {
            reads.push(FullRead::ByState {
                values: values.to_vec(),
                states: states.to_vec(),
            });
        }
    }
    reads.push(FullRead::Spot);
    reads
}

/// Plans the second read from the first: which instances must be read in
/// full besides what `early` (from `early_reads` at the same `now`) reads, in
/// as few and as parallel queries as EC2's filter limit allows.
pub fn plan_reads(
    views: &TagViews,
    schedules: &Schedules,
    schedule_tag: &str,
    now: Timestamp,
    early: Vec<FullRead>,
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
            Need::QuietWhen(running) => stats.wants_running = running,
            Need::Unmarked(running) => {
                stats.wants_running = running;
                stats.unmarked.push(id.clone());
            }
            Need::Look => {}
        }
    }
    // The instances out of the wanted state are `early`'s. Per value, the
    // rest: whole (its instances in the wanted state), or its unmarked ones
    // by id.
    let mut running = Vec::new();
    let mut stopped = Vec::new();
    for (value, stats) in values {
        if stats.unmarked.len() * WHOLE_READ_SHARE >= stats.instances {
            let group = if stats.wants_running {
                &mut running
            } else {
                &mut stopped
            };
            group.push((value, stats.instances));
        } else {
            by_id.extend(stats.unmarked);
        }
    }
    let mut reads = Vec::new();
    for (group, states) in [(running, &["running"][..]), (stopped, &["stopped"][..])] {
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
    ReadPlan {
        early,
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
