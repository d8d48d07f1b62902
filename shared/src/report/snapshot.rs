//! What the reporter reads from AWS, as plain data: no SDK types, so the
//! report can be built and tested without AWS.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Everything one report is built from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetSnapshot {
    pub region: String,
    /// Every EC2 instance of the region (any state).
    pub instances: Vec<Ec2Instance>,
    /// Registered SSM agents (DescribeInstanceInformation).
    pub managed: Vec<ManagedInstance>,
    /// Patch states (DescribeInstancePatchStates).
    pub patch_states: Vec<PatchState>,
    /// Patch groups registered to a baseline (DescribePatchGroups).
    pub patch_groups: Vec<PatchGroupBaseline>,
    /// Association (State Manager) compliance per resource.
    pub associations: Vec<AssociationCompliance>,
    /// Data that could not be read after retries.
    pub gaps: Vec<DataGap>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Instance {
    pub instance_id: String,
    /// The `Name` tag, when present.
    pub name: Option<String>,
    /// EC2 state name (`running`, `stopped`, `terminated`...).
    pub state: String,
    /// The patch group from the tags ([`crate::tags::patch_group`], as the
    /// dispatcher reads it): `Patch Group`, else `PatchGroup`, blanks ignored.
    pub patch_group: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedInstance {
    pub instance_id: String,
    /// `Online`, `ConnectionLost` or `Inactive`.
    pub ping_status: String,
    pub platform: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchState {
    pub instance_id: String,
    pub patch_group: Option<String>,
    pub baseline_id: Option<String>,
    /// `Scan` or `Install`.
    pub operation: String,
    /// When the last scan or install ended.
    pub operation_end_time: Option<Timestamp>,
    pub installed: u32,
    pub installed_pending_reboot: u32,
    pub installed_rejected: u32,
    pub missing: u32,
    pub failed: u32,
    pub not_applicable: u32,
    pub critical_noncompliant: u32,
    pub security_noncompliant: u32,
    pub other_noncompliant: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchGroupBaseline {
    pub patch_group: String,
    pub baseline_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationCompliance {
    pub resource_id: String,
    pub compliant: bool,
    pub noncompliant_count: u32,
}

/// `DataGap::source` of a failed DescribeInstances: nothing about the fleet
/// is known.
pub const SOURCE_INSTANCES: &str = "ec2:DescribeInstances";
/// `DataGap::source` of a failed DescribeInstanceInformation: nobody's
/// management status is known.
pub const SOURCE_INSTANCE_INFORMATION: &str = "ssm:DescribeInstanceInformation";
/// `DataGap::source` of a patch-state batch that failed (its `instance_ids`
/// name the instances whose patch state is missing).
pub const SOURCE_PATCH_STATES: &str = "ssm:DescribeInstancePatchStates";
/// `DataGap::source` of a failed DescribePatchGroups: baselines are unknown.
pub const SOURCE_PATCH_GROUPS: &str = "ssm:DescribePatchGroups";
/// `DataGap::source` of failed association compliance.
pub const SOURCE_ASSOCIATIONS: &str = "ssm:ListResourceComplianceSummaries";
/// `DataGap::source` (followed by a space and the parameter name) of a
/// previous summary that could not be read: changes are unknown.
pub const SOURCE_PREVIOUS: &str = "ssm:GetParameter";

/// A piece of data that could not be read; the report says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataGap {
    /// What was being read, for example `ssm:DescribeInstancePatchStates`.
    pub source: String,
    /// Instances whose data is missing because of it (empty: fleet-wide).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    pub error: String,
}

impl DataGap {
    /// Whether this gap is about `source` (one of the `SOURCE_*` names; a
    /// source may be followed by a space and what exactly was read).
    pub fn is(&self, source: &str) -> bool {
        self.source
            .strip_prefix(source)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    }
}
