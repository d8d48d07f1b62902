//! Client-side pacing of one API's calls to EC2's request token bucket, so a
//! big read waits its turn instead of being refused.
//!
//! EC2 throttles each API of an account and region with a bucket (for
//! non-mutating actions, 100 tokens refilled at 20 a second: "Request
//! throttling for the Amazon EC2 API"). A refused call is retried by the SDK
//! with backoff, but many refusals at once exhaust the SDK's retry quota and
//! fail the read (seen at 100,000 instances: 224 `DescribeTags` pages sent 32
//! at a time). Pacing to a share of that bucket leaves the rest to the
//! account's other tools.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The share of EC2's default non-mutating bucket the tag reads pace to:
/// 80 of its 100 tokens, refilled at 16 of its 20 a second.
pub const TAG_READ_BURST: f64 = 80.0;
pub const TAG_READ_REFILL_PER_S: f64 = 16.0;

/// One reservation: with `tokens` left after the last one, `elapsed_s`
/// seconds ago, how many are left after this one (below zero: owed) and how
/// long this call must wait for its token.
pub fn reserve(tokens: f64, elapsed_s: f64, burst: f64, refill_per_s: f64) -> (f64, f64) {
    let available = (tokens + elapsed_s * refill_per_s).min(burst) - 1.0;
    let wait_s = if available >= 0.0 {
        0.0
    } else {
        -available / refill_per_s
    };
    (available, wait_s)
}

/// A token bucket shared by one read's calls.
#[derive(Debug)]
pub struct Pace {
    burst: f64,
    refill_per_s: f64,
    state: Mutex<(f64, Instant)>,
}

impl Pace {
    /// A full bucket (the tick's first call of the API in minutes).
    pub fn new(burst: f64, refill_per_s: f64) -> Self {
        Self {
            burst,
            refill_per_s,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until the next call may be sent, and takes its token.
    pub async fn ready(&self) {
        let wait_s = match self.state.lock() {
            Ok(mut state) => {
                let now = Instant::now();
                let elapsed = now.duration_since(state.1).as_secs_f64();
                let (left, wait_s) = reserve(state.0, elapsed, self.burst, self.refill_per_s);
                *state = (left, now);
                wait_s
            }
            // A panicked holder: send without pacing rather than not at all.
            Err(_) => 0.0,
        };
        if wait_s > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait_s)).await;
        }
    }
}
