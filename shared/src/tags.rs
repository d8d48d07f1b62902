//! Instance tags as every fleetops function reads them.

/// The patch-group tag Patch Manager uses (case-sensitive).
pub const PATCH_GROUP_TAG: &str = "Patch Group";
/// The fallback key, for instances whose tags cannot hold a space.
pub const PATCH_GROUP_FALLBACK_TAG: &str = "PatchGroup";

/// Tag the patch dispatcher puts on an instance it starts for a patch window
/// (`wake_stopped`), before it starts it: the window's end, RFC 3339 in UTC.
/// While the window is open the scheduler never stops the instance; once it
/// has closed the scheduler brings the instance to its schedule's state once
/// and removes the tag (the dispatcher removes it when it stops the instance
/// after its patch command).
pub const WOKEN_TAG: &str = "fleetops:woken";

/// The end of the patch window a `fleetops:woken` value names; `None` when
/// the value is not an RFC 3339 instant.
pub fn woken_until(value: &str) -> Option<jiff::Timestamp> {
    value.trim().parse().ok()
}

/// An EC2 resource's tags as a map (a tag without a key is dropped, one
/// without a value maps to ""). Every function reads EC2 tags through this.
pub fn ec2_tag_map(tags: &[aws_sdk_ec2::types::Tag]) -> std::collections::BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The patch group of an instance from its tags: `Patch Group`, else
/// `PatchGroup`. A blank value counts as no tag, so `Patch Group=""` with
/// `PatchGroup=web` is `web`. The dispatcher and the reporter both use this.
pub fn patch_group<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> Option<String> {
    let find = |key: &str| {
        tags.clone()
            .into_iter()
            .find(|(k, v)| *k == key && !v.trim().is_empty())
            .map(|(_, v)| v.to_string())
    };
    find(PATCH_GROUP_TAG).or_else(|| find(PATCH_GROUP_FALLBACK_TAG))
}

#[cfg(test)]
mod tests {
    use super::patch_group;

    #[test]
    fn the_patch_manager_tag_wins_unless_it_is_blank() {
        assert_eq!(
            patch_group([("PatchGroup", "b"), ("Patch Group", "a")]),
            Some("a".into())
        );
        assert_eq!(patch_group([("PatchGroup", "b")]), Some("b".into()));
        assert_eq!(
            patch_group([("Patch Group", ""), ("PatchGroup", "web")]),
            Some("web".into())
        );
        assert_eq!(
            patch_group([("Patch Group", "  "), ("PatchGroup", "web")]),
            Some("web".into())
        );
        assert_eq!(
            patch_group([("Patch Group", ""), ("PatchGroup", " ")]),
            None
        );
        assert_eq!(patch_group([("patch group", "a")]), None);
        assert_eq!(patch_group([]), None);
    }
}
