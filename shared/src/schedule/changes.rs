//! What a new schedules document changes, schedule by schedule, compared
//! with the one in force (`fleetops push` prints it).

use super::config::Schedules;

/// Schedule names, each list in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScheduleChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// In both documents with another definition (`Schedule::digest`); a
    /// schedule that is invalid in either counts as edited.
    pub edited: Vec<String>,
    pub unchanged: Vec<String>,
}

impl ScheduleChanges {
    /// Whether no schedule is added, removed or edited.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.edited.is_empty()
    }
}

impl Schedules {
    /// What replacing `self` (the document in force) with `new` changes.
    pub fn changes_to(&self, new: &Schedules) -> ScheduleChanges {
        let mut changes = ScheduleChanges::default();
        for (name, now) in &new.by_name {
            match (self.by_name.get(name), now) {
                (None, _) => changes.added.push(name.clone()),
                (Some(Ok(before)), Ok(now)) if before.digest == now.digest => {
                    changes.unchanged.push(name.clone())
                }
                (Some(_), _) => changes.edited.push(name.clone()),
            }
        }
        changes.removed = self
            .by_name
            .keys()
            .filter(|name| !new.by_name.contains_key(*name))
            .cloned()
            .collect();
        changes
    }
}
