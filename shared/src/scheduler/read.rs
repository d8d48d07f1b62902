//! The scheduler's reads of the tagged fleet: the deciding tags of every
//! instance first (`DescribeTags`), then in full only the instances
//! `read_plan` says may need something (`DescribeInstances` with filters),
//! several queries at a time.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, InstanceLifecycleType};
use aws_sdk_ec2::Client;
use futures::stream::{self, StreamExt, TryStreamExt};
use jiff::Timestamp;

use super::instance::{Instance, InstanceState, StateReason};
use super::read_plan::{plan_reads, tag_key_groups, FullRead, ReadPlan, TagViews, LIVE_STATES};
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
) -> Result<FleetRead, DescribeError> {
    let views = describe_tag_views(client, region, schedule_tag).await?;
    let plan = plan_reads(&views, schedules, schedule_tag, now);
    let reads: Vec<Vec<Instance>> = stream::iter(plan.reads.iter())
        .map(|read| describe(client, region, filters_of(read, schedule_tag)))
        .buffer_unordered(CONCURRENT_QUERIES)
        .try_collect()
        .await?;
    // A query by state and one by id may both return an instance.
    let mut by_id = BTreeMap::new();
    for instance in reads.into_iter().flatten() {
        by_id.insert(instance.instance_id.clone(), instance);
    }
    Ok(FleetRead {
        instances: by_id.into_values().collect(),
        plan,
    })
}

/// The deciding tags of every instance carrying any of them: one
/// `DescribeTags` chain per key group, concurrently.
async fn describe_tag_views(
    client: &Client,
    region: &str,
    schedule_tag: &str,
) -> Result<TagViews, DescribeError> {
    let chains = tag_key_groups(schedule_tag)
        .into_iter()
        .map(|keys| async move {
            let mut pages = client
                .describe_tags()
                .filters(
                    Filter::builder()
                        .name("resource-type")
                        .values("instance")
                        .build(),
                )
                .filters(Filter::builder().name("key").set_values(Some(keys)).build())
                .max_results(PAGE_SIZE)
                .into_paginator()
                .send();
            let mut found = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| DescribeError {
                    region: region.to_string(),
                    operation: "DescribeTags",
                    message: error_text(&e),
                })?;
                // Owned: a quiet tick's work is mostly these strings.
                for tag in page.tags.unwrap_or_default() {
                    // EC2 always sends all three; an entry without them says nothing.
                    if let (Some(id), Some(key)) = (tag.resource_id, tag.key) {
                        found.push((id, key, tag.value.unwrap_or_default()));
                    }
                }
            }
            Ok::<_, DescribeError>(found)
        });
    let mut views = TagViews::new();
    for chain in futures::future::try_join_all(chains).await? {
        for (id, key, value) in chain {
            views.entry(id).or_default().insert(key, value);
        }
    }
    Ok(views)
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
