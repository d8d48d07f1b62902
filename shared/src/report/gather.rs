//! The reporter's AWS reads. Each returns plain data; a read that fails after
//! the SDK's retries becomes a [`DataGap`] in the snapshot, never a wrong count.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{ComplianceQueryOperatorType, ComplianceStatus, ComplianceStringFilter};
use futures::stream::{self, StreamExt};

use super::snapshot::{
    AssociationCompliance, DataGap, Ec2Instance, FleetSnapshot, ManagedInstance,
    PatchGroupBaseline, PatchState, SOURCE_ASSOCIATIONS, SOURCE_INSTANCES,
    SOURCE_INSTANCE_INFORMATION, SOURCE_PATCH_GROUPS, SOURCE_PATCH_STATES,
};
use crate::error_text;
use crate::tags::patch_group;

/// DescribeInstancePatchStates takes at most 50 instance ids per call.
pub const PATCH_STATE_BATCH: usize = 50;
/// Patch-state batches read at the same time.
pub const CONCURRENCY: usize = 4;

fn gap(source: &str, error: &(dyn std::error::Error + 'static)) -> DataGap {
    let mut text = error_text(error);
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    DataGap {
        source: source.to_string(),
        instance_ids: Vec::new(),
        error: text,
    }
}

fn count(n: impl Into<Option<i32>>) -> u32 {
    n.into().and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

/// Every instance of the region, paginated.
pub async fn describe_instances(ec2: &aws_sdk_ec2::Client) -> Result<Vec<Ec2Instance>, DataGap> {
    let mut pages = ec2
        .describe_instances()
        .max_results(1000)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| gap(SOURCE_INSTANCES, &e))?;
        for raw in page.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = raw.instance_id() else {
                continue;
            };
            let tags: BTreeMap<&str, &str> = raw
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
                .collect();
            out.push(Ec2Instance {
                instance_id: id.to_string(),
                name: tags.get("Name").map(|s| (*s).to_string()),
                state: raw
                    .state()
                    .and_then(|s| s.name())
                    .map_or_else(|| "unknown".to_string(), |n| n.as_str().to_string()),
                patch_group: patch_group(tags.iter().map(|(k, v)| (*k, *v))),
            });
        }
    }
    Ok(out)
}

/// Registered SSM agents (managed instances), paginated.
pub async fn describe_managed(ssm: &aws_sdk_ssm::Client) -> Result<Vec<ManagedInstance>, DataGap> {
    let mut pages = ssm
        .describe_instance_information()
        .max_results(50)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| gap(SOURCE_INSTANCE_INFORMATION, &e))?;
        for info in page.instance_information_list() {
            let Some(id) = info.instance_id() else {
                continue;
            };
            out.push(ManagedInstance {
                instance_id: id.to_string(),
                ping_status: info
                    .ping_status()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                platform: info.platform_name().map(str::to_string),
            });
        }
    }
    Ok(out)
}

/// Patch groups registered to a baseline, paginated.
pub async fn describe_patch_groups(
    ssm: &aws_sdk_ssm::Client,
) -> Result<Vec<PatchGroupBaseline>, DataGap> {
    let mut pages = ssm
        .describe_patch_groups()
        .max_results(100)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| gap(SOURCE_PATCH_GROUPS, &e))?;
        for mapping in page.mappings() {
            let (Some(group), Some(baseline)) = (
                mapping.patch_group(),
                mapping.baseline_identity().and_then(|b| b.baseline_id()),
            ) else {
                continue;
            };
            out.push(PatchGroupBaseline {
                patch_group: group.to_string(),
                baseline_id: baseline.to_string(),
            });
        }
    }
    Ok(out)
}

/// Association (State Manager) compliance per resource, paginated.
pub async fn association_compliance(
    ssm: &aws_sdk_ssm::Client,
) -> Result<Vec<AssociationCompliance>, DataGap> {
    let mut pages = ssm
        .list_resource_compliance_summaries()
        .filters(
            ComplianceStringFilter::builder()
                .key("ComplianceType")
                .values("Association")
                .r#type(ComplianceQueryOperatorType::Equal)
                .build(),
        )
        .max_results(50)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| gap(SOURCE_ASSOCIATIONS, &e))?;
        for item in page.resource_compliance_summary_items() {
            let Some(id) = item.resource_id() else {
                continue;
            };
            out.push(AssociationCompliance {
                resource_id: id.to_string(),
                compliant: item.status() == Some(&ComplianceStatus::Compliant),
                noncompliant_count: item
                    .non_compliant_summary()
                    .map_or(0, |s| count(s.non_compliant_count())),
            });
        }
    }
    Ok(out)
}

/// Patch states of `instance_ids`, in batches of 50 read [`CONCURRENCY`] at a
/// time. A batch that fails after retries becomes a gap naming its instances.
pub async fn describe_patch_states(
    ssm: &aws_sdk_ssm::Client,
    instance_ids: &[String],
) -> (Vec<PatchState>, Vec<DataGap>) {
    let batches: Vec<Vec<String>> = instance_ids
        .chunks(PATCH_STATE_BATCH)
        .map(<[String]>::to_vec)
        .collect();
    let results: Vec<Result<Vec<PatchState>, DataGap>> = stream::iter(batches)
        .map(|batch| async move {
            let mut pages = ssm
                .describe_instance_patch_states()
                .set_instance_ids(Some(batch.clone()))
                .max_results(50)
                .into_paginator()
                .send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| DataGap {
                    instance_ids: batch.clone(),
                    ..gap(SOURCE_PATCH_STATES, &e)
                })?;
                out.extend(page.instance_patch_states().iter().map(|s| {
                    PatchState {
                        instance_id: s.instance_id().to_string(),
                        patch_group: Some(s.patch_group())
                            .filter(|g| !g.is_empty())
                            .map(str::to_string),
                        baseline_id: Some(s.baseline_id())
                            .filter(|b| !b.is_empty())
                            .map(str::to_string),
                        operation: s.operation().as_str().to_string(),
                        operation_end_time: crate::aws::timestamp(s.operation_end_time()),
                        installed: count(s.installed_count()),
                        installed_pending_reboot: count(s.installed_pending_reboot_count()),
                        installed_rejected: count(s.installed_rejected_count()),
                        missing: count(s.missing_count()),
                        failed: count(s.failed_count()),
                        not_applicable: count(s.not_applicable_count()),
                        critical_noncompliant: count(s.critical_non_compliant_count()),
                        security_noncompliant: count(s.security_non_compliant_count()),
                        other_noncompliant: count(s.other_non_compliant_count()),
                    }
                }));
            }
            Ok(out)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut states = Vec::new();
    let mut gaps = Vec::new();
    for result in results {
        match result {
            Ok(batch) => states.extend(batch),
            Err(gap) => gaps.push(gap),
        }
    }
    states.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    (states, gaps)
}

/// Reads everything a report needs; independent reads run concurrently.
pub async fn gather(
    ec2: &aws_sdk_ec2::Client,
    ssm: &aws_sdk_ssm::Client,
    region: &str,
) -> FleetSnapshot {
    let (instances, managed, groups, associations) = tokio::join!(
        describe_instances(ec2),
        describe_managed(ssm),
        describe_patch_groups(ssm),
        association_compliance(ssm),
    );
    let mut gaps = Vec::new();
    let instances = or_gap(instances, &mut gaps);
    let managed = or_gap(managed, &mut gaps);
    let patch_groups = or_gap(groups, &mut gaps);
    let associations = or_gap(associations, &mut gaps);
    // Patch states of the managed EC2 instances that are running, and of the
    // stopped ones (their last scan is their patch debt; they are never
    // assessed as non-compliant). Terminated ones are not reported at all.
    let wanted: std::collections::HashSet<&str> = instances
        .iter()
        .filter(|i| {
            matches!(
                i.state.as_str(),
                "running" | "pending" | "stopped" | "stopping"
            )
        })
        .map(|i| i.instance_id.as_str())
        .collect();
    let ids: Vec<String> = managed
        .iter()
        .filter(|m| wanted.contains(m.instance_id.as_str()))
        .map(|m| m.instance_id.clone())
        .collect();
    let (patch_states, patch_gaps) = describe_patch_states(ssm, &ids).await;
    gaps.extend(patch_gaps);
    FleetSnapshot {
        region: region.to_string(),
        instances,
        managed,
        patch_states,
        patch_groups,
        associations,
        gaps,
    }
}

fn or_gap<T>(result: Result<Vec<T>, DataGap>, gaps: &mut Vec<DataGap>) -> Vec<T> {
    result.unwrap_or_else(|gap| {
        gaps.push(gap);
        Vec::new()
    })
}
