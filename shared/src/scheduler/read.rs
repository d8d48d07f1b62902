//! The scheduler's reads of the tagged fleet: the deciding tags of every
//! instance (`DescribeTags`) together with the instances out of the state
//! their schedule wants (`read_plan::early_reads`), then in full the others
//! `read_plan` says may need something (`DescribeInstances` with filters),
//! several queries at a time.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_ec2::types::{Filter, InstanceLifecycleType};
use aws_sdk_ec2::Client;
use futures::stream::{self, StreamExt, TryStreamExt};
use jiff::Timestamp;

use super::id_split;
use super::instance::{Instance, InstanceState, StateReason};
use super::pacing::{Pace, TAG_READ_BURST, TAG_READ_REFILL_PER_S};
use super::read_plan::{
    early_queries_per_state, early_reads, plan_reads, tag_key_groups, FullRead, ReadPlan, TagViews,
    LIVE_STATES,
};
use super::tag_page::TagEntry;
use super::tag_page_client::{TagPageClient, TagPageSlot};
use crate::error_text;
use crate::schedule::Schedules;

/// Page size of both describes (the APIs' maximum).
const PAGE_SIZE: i32 = 1000;
/// Queries in flight at once per region. EC2's request token bucket for
/// non-mutating actions holds 100 tokens and refills 20 per second, so a
/// handful of concurrent chains stays far inside it while no single
/// `NextToken` chain has to carry the whole fleet.
const CONCURRENT_QUERIES: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("{operation} in {region} failed: {message}")]
pub struct DescribeError {
    pub region: String,
    pub operation: &'static str,
    pub message: String,
}

/// What a warm process remembers between ticks: per region and tag key
/// group, how many tags its last read found. It only sizes how the reads are
/// split (`id_split::known_size`, `early_queries_per_state`); no decision
/// depends on it, and a stale count costs pages, never an instance. Keyed by
/// region: over several accounts, units of one region share it.
#[derive(Debug, Default)]
pub struct ReadMemory(Mutex<BTreeMap<String, usize>>);

impl ReadMemory {
    pub const fn new() -> Self {
        Self(Mutex::new(BTreeMap::new()))
    }

    fn last(&self, key: &str) -> Option<usize> {
        self.0.lock().ok()?.get(key).copied()
    }

    fn remember(&self, key: String, found: usize) {
        if let Ok(mut counts) = self.0.lock() {
            counts.insert(key, found);
        }
    }
}

/// One memory is one memory: compared by identity.
impl PartialEq for ReadMemory {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ReadMemory {}

/// The memory's key of one tag chain in a region.
fn memory_key(region: &str, keys: &[String]) -> String {
    format!("{region} {}", keys.join(","))
}

/// What a region's reads found.
#[derive(Debug, Default)]
pub struct FleetRead {
    /// Every instance that may need something this tick, read in full.
    pub instances: Vec<Instance>,
    /// The second read's plan (how many carry the tag, how many by id).
    pub plan: ReadPlan,
}

/// Reads what the tick needs of a region's tagged fleet.
pub async fn read_fleet(
    client: &Client,
    region: &str,
    schedule_tag: &str,
    schedules: &Schedules,
    now: Timestamp,
    memory: Option<&ReadMemory>,
) -> Result<FleetRead, DescribeError> {
    let tagged_before = memory.and_then(|m| m.last(&memory_key(region, &[schedule_tag.into()])));
    let early = early_reads(schedules, now, early_queries_per_state(tagged_before));
    // The by-state queries need nothing from the tags: sent with them.
    let (views, early_found) = futures::try_join!(
        describe_tag_views(client, region, schedule_tag, memory),
        describe_each(client, region, schedule_tag, &early),
    )?;
    let plan = plan_reads(&views, schedules, schedule_tag, now, early);
    let late_found = describe_each(client, region, schedule_tag, &plan.reads).await?;
    // A query by state and one by id may both return an instance.
    let mut by_id = BTreeMap::new();
    for instance in early_found.into_iter().chain(late_found) {
        by_id.insert(instance.instance_id.clone(), instance);
    }
    Ok(FleetRead {
        instances: by_id.into_values().collect(),
        plan,
    })
}

/// `reads`, up to `CONCURRENT_QUERIES` at a time, everything they returned.
async fn describe_each(
    client: &Client,
    region: &str,
    schedule_tag: &str,
    reads: &[FullRead],
) -> Result<Vec<Instance>, DescribeError> {
    let found: Vec<Vec<Instance>> = stream::iter(reads.iter())
        .map(|read| describe(client, region, filters_of(read, schedule_tag)))
        .buffer_unordered(CONCURRENT_QUERIES)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The deciding tags of every instance carrying any of them: one
/// `DescribeTags` chain per key group, concurrently; the big groups split by
/// instance id (`id_split`): the probe then the rest, or, when `memory`
/// knows the last count, all patterns at once; a few chains at a time.
async fn describe_tag_views(
    client: &Client,
    region: &str,
    schedule_tag: &str,
    memory: Option<&ReadMemory>,
) -> Result<TagViews, DescribeError> {
    // Every page of every chain of this read, paced together (`pacing`).
    let pace = Pace::new(TAG_READ_BURST, TAG_READ_REFILL_PER_S);
    let pace = &pace;
    let describe_tags = |keys: Vec<String>, patterns: Vec<&'static str>| async move {
        describe_tags(client, region, &keys, &patterns, pace).await
    };
    let chains = tag_key_groups(schedule_tag)
        .into_iter()
        .map(|chain| async move {
            if !chain.split {
                return describe_tags(chain.keys, Vec::new()).await;
            }
            let key = memory_key(region, &chain.keys);
            let (mut found, groups) = match memory.and_then(|m| m.last(&key)) {
                Some(last) => (Vec::new(), id_split::known_size(last)),
                None => {
                    let probe = describe_tags(chain.keys.clone(), id_split::probe()).await?;
                    let rest = id_split::after_probe(probe.len());
                    (probe, rest)
                }
            };
            let parts: Vec<Vec<TagEntry>> = stream::iter(groups)
                .map(|patterns| describe_tags(chain.keys.clone(), patterns))
                .buffer_unordered(CONCURRENT_QUERIES)
                .try_collect()
                .await?;
            found.extend(parts.into_iter().flatten());
            if let Some(memory) = memory {
                memory.remember(key, found.len());
            }
            Ok(found)
        });
    let mut views = TagViews::new();
    for chain in futures::future::try_join_all(chains).await? {
        for (id, key, value) in chain {
            views.entry(id).or_default().insert(key, value);
        }
    }
    Ok(views)
}

/// One `DescribeTags` chain: instances' tags with one of `keys`, of
/// instances matching one of `id_patterns` (every instance when empty), each
/// page sent when `pace` allows.
async fn describe_tags(
    client: &Client,
    region: &str,
    keys: &[String],
    id_patterns: &[&str],
    pace: &Pace,
) -> Result<Vec<TagEntry>, DescribeError> {
    let mut request = client
        .describe_tags()
        .filters(
            Filter::builder()
                .name("resource-type")
                .values("instance")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("key")
                .set_values(Some(keys.to_vec()))
                .build(),
        );
    if !id_patterns.is_empty() {
        request = request.filters(
            Filter::builder()
                .name("resource-id")
                .set_values(Some(id_patterns.iter().map(|p| p.to_string()).collect()))
                .build(),
        );
    }
    let request = request.max_results(PAGE_SIZE);
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        pace.ready().await;
        // The page goes to `tag_page` through the client's own HTTP client
        // (`aws::load_sdk_config` gives every client one); a client without
        // one leaves it to the SDK.
        let slot = TagPageSlot::default();
        let mut operation = request.clone().set_next_token(token.take()).customize();
        if let Some(http) = client.config().http_client() {
            operation = operation.config_override(
                aws_sdk_ec2::config::Builder::new()
                    .http_client(TagPageClient::new(http, slot.clone())),
            );
        }
        let page = operation.send().await.map_err(|e| DescribeError {
            region: region.to_string(),
            operation: "DescribeTags",
            message: error_text(&e),
        })?;
        match slot.take() {
            Some(read) => {
                token = read.next_token;
                found.extend(read.tags);
            }
            None => {
                // The last page has no token (EC2 sends an empty one at times too).
                token = page.next_token.filter(|t| !t.is_empty());
                for tag in page.tags.unwrap_or_default() {
                    // EC2 always sends all three; an entry without them says nothing.
                    if let (Some(id), Some(key)) = (tag.resource_id, tag.key) {
                        found.push((id, key, tag.value.unwrap_or_default()));
                    }
                }
            }
        }
        if token.is_none() {
            return Ok(found);
        }
    }
}

fn filters_of(read: &FullRead, schedule_tag: &str) -> Vec<Filter> {
    let filter = |name: &str, values: Vec<String>| {
        Filter::builder()
            .name(name)
            .set_values(Some(values))
            .build()
    };
    let states = |states: &[&str]| states.iter().map(|s| s.to_string()).collect();
    match read {
        FullRead::ByState { values, states: s } => vec![
            filter(&format!("tag:{schedule_tag}"), values.clone()),
            filter("instance-state-name", states(s)),
        ],
        FullRead::ById(ids) => vec![
            filter("instance-id", ids.clone()),
            filter("instance-state-name", states(&LIVE_STATES)),
        ],
        FullRead::Spot => vec![
            filter("tag-key", vec![schedule_tag.to_string()]),
            filter("instance-lifecycle", vec!["spot".to_string()]),
            filter("instance-state-name", states(&LIVE_STATES)),
        ],
    }
}

/// Every live instance carrying `tag_key`, read in full (the command line's
/// table shows the whole fleet).
pub async fn describe_scheduled_instances(
    client: &Client,
    region: &str,
    tag_key: &str,
) -> Result<Vec<Instance>, DescribeError> {
    let filters = vec![
        Filter::builder().name("tag-key").values(tag_key).build(),
        Filter::builder()
            .name("instance-state-name")
            .set_values(Some(LIVE_STATES.map(String::from).to_vec()))
            .build(),
    ];
    describe(client, region, filters).await
}

async fn describe(
    client: &Client,
    region: &str,
    filters: Vec<Filter>,
) -> Result<Vec<Instance>, DescribeError> {
    let mut pages = client
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DescribeError {
            region: region.to_string(),
            operation: "DescribeInstances",
            message: error_text(&e),
        })?;
        for reservation in page.reservations() {
            instances.extend(
                reservation
                    .instances()
                    .iter()
                    .filter_map(|i| to_instance(i, region)),
            );
        }
    }
    Ok(instances)
}

fn to_instance(raw: &aws_sdk_ec2::types::Instance, region: &str) -> Option<Instance> {
    // An entry without an id cannot be acted on or reported; EC2 always sends one.
    let instance_id = raw.instance_id()?.to_string();
    let state = raw
        .state()
        .and_then(|s| s.name())
        .map_or(InstanceState::Other("unknown".into()), |n| {
            InstanceState::from_name(n.as_str())
        });
    let tags = crate::tags::ec2_tag_map(raw.tags());
    Some(Instance {
        instance_id,
        region: region.to_string(),
        state,
        tags,
        spot: raw.instance_lifecycle() == Some(&InstanceLifecycleType::Spot),
        hibernation_configured: raw
            .hibernation_options()
            .and_then(|h| h.configured())
            .unwrap_or(false),
        state_reason: raw.state_reason().map(|r| StateReason {
            code: r.code().unwrap_or_default().to_string(),
            message: r.message().unwrap_or_default().to_string(),
        }),
        launch_time: raw.launch_time().and_then(crate::aws::timestamp),
    })
}
