//! The first read's split by instance id: complete, disjoint, sized by the probe.

use fleetops::scheduler::id_split::{after_probe, known_size, probe, ID_PATTERNS};
use proptest::prelude::*;

/// EC2's `i-*<digit>`: `i-`, anything, then the digit last.
fn matches(pattern: &str, id: &str) -> bool {
    let (head, tail) = pattern.split_once('*').expect("one wildcard");
    id.len() > head.len() && id.starts_with(head) && id.ends_with(tail)
}

#[test]
fn the_probe_found_sizes_the_groups_of_the_rest() {
    let sizes = |found| after_probe(found).iter().map(Vec::len).collect::<Vec<_>>();
    // Small fleets: the rest in one call.
    assert_eq!(sizes(0), [15]);
    assert_eq!(sizes(40), [15]);
    assert_eq!(sizes(66), [15]);
    // 100 per pattern: ten patterns fill a page.
    assert_eq!(sizes(67), [14, 1]);
    assert_eq!(sizes(100), [10, 5]);
    // 10,000 instances (about 625 per pattern) and up: a chain per pattern.
    assert_eq!(sizes(625), [1; 15]);
    assert_eq!(sizes(6_250), [1; 15]);
}

#[test]
fn a_known_size_splits_all_sixteen_without_a_probe() {
    let sizes = |found| known_size(found).iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(sizes(0), [16]);
    assert_eq!(sizes(1_000), [15, 1]);
    assert_eq!(sizes(2_000), [8, 8]);
    assert_eq!(sizes(10_000), [1; 16]);
}

proptest! {
    /// Probe and groups are the sixteen patterns, each once, whatever the
    /// probe found; and every instance id (`i-` and 8 or 17 hex digits)
    /// matches exactly one of them.
    #[test]
    fn every_instance_id_is_read_by_exactly_one_query(
        found in 0usize..20_000,
        id in "i-[0-9a-f]{8}([0-9a-f]{9})?",
    ) {
        let probed: Vec<Vec<&str>> = std::iter::once(probe()).chain(after_probe(found)).collect();
        for queries in [probed, known_size(found)] {
            let flat: Vec<&str> = queries.iter().flatten().copied().collect();
            prop_assert_eq!(&flat[..], &ID_PATTERNS[..]);
            let reading = queries
                .iter()
                .filter(|q| q.iter().any(|p| matches(p, &id)))
                .count();
            prop_assert_eq!(reading, 1);
        }
    }
}
