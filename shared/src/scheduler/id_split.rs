//! How the first read splits a big `DescribeTags` chain by instance id, so
//! that it runs as a few concurrent chains instead of one `NextToken` chain
//! that grows with the fleet.
//!
//! An instance id is `i-` followed by 8 (before 2016) or 17 lowercase
//! hexadecimal digits (EC2 User Guide, "Resource IDs"; EC2 answers any other
//! form with `InvalidInstanceID.Malformed`), so the sixteen `resource-id`
//! patterns `i-*0` … `i-*f` (by the last digit) cover every instance exactly
//! once. Not by the first digit: the 17-digit ids EC2 hands out begin `i-0`
//! in practice (the benchmark's simulated EC2 copies that, and a split by the
//! first digit put the whole fleet into one pattern).
//! EC2 accepts `*` and `?` wildcards in filter values (the SDKs' `Filter`
//! documentation for DescribeTags: "* specifies that zero or more characters
//! must match"). The last digit is random, so each pattern holds about 1/16 of the fleet.
//!
//! The size of the fleet is not known before it is read: the first pattern is
//! read alone (the probe), and what it found sizes the rest, in groups
//! expected to fit one page each. A small fleet costs two calls (the probe,
//! then one group of the other fifteen), a big one at most sixteen chains. A
//! warm process remembers what its last tick found (`read::ReadMemory`) and
//! skips the probe: the sixteen patterns straight away, grouped by that count
//! (a wrong guess costs pages, never an instance).

/// Tags per `DescribeTags` page (the API's maximum `MaxResults`).
pub const TAGS_PER_PAGE: usize = 1000;

/// The sixteen `resource-id` patterns: every instance id matches one.
pub const ID_PATTERNS: [&str; 16] = [
    "i-*0", "i-*1", "i-*2", "i-*3", "i-*4", "i-*5", "i-*6", "i-*7", "i-*8", "i-*9", "i-*a", "i-*b",
    "i-*c", "i-*d", "i-*e", "i-*f",
];

/// The probe: read first, alone.
pub fn probe() -> Vec<&'static str> {
    ID_PATTERNS[..1].to_vec()
}

/// The other fifteen patterns in groups, sized from what the probe found
/// (`probe_found` tags: about what each other pattern holds).
pub fn after_probe(probe_found: usize) -> Vec<Vec<&'static str>> {
    grouped(&ID_PATTERNS[1..], probe_found)
}

/// All sixteen patterns in groups, without a probe, when the last read of
/// the same tags (a warm process's previous tick) found `last_found`.
pub fn known_size(last_found: usize) -> Vec<Vec<&'static str>> {
    grouped(&ID_PATTERNS, last_found.div_ceil(ID_PATTERNS.len()))
}

/// `patterns` in groups of as many as are expected to fit one page, at
/// least one, when each holds about `per_pattern` tags.
fn grouped(patterns: &[&'static str], per_pattern: usize) -> Vec<Vec<&'static str>> {
    let per_group = (TAGS_PER_PAGE / per_pattern.max(1)).clamp(1, patterns.len());
    patterns.chunks(per_group).map(<[&str]>::to_vec).collect()
}
