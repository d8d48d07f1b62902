//! Pacing of the tag reads to EC2's request bucket: reservations as a token bucket makes them.

use fleetops::scheduler::pacing::reserve;

const BURST: f64 = 80.0;
const RATE: f64 = 16.0;

#[test]
fn a_full_bucket_sends_its_burst_at_once_then_one_call_per_refill() {
    let mut tokens = BURST;
    let mut waits = Vec::new();
    for _ in 0..83 {
        let (left, wait) = reserve(tokens, 0.0, BURST, RATE);
        tokens = left;
        waits.push(wait);
    }
    assert!(waits[..80].iter().all(|w| *w == 0.0));
    // The 81st waits for one refill, the 83rd for three.
    assert_eq!(&waits[80..], &[1.0 / RATE, 2.0 / RATE, 3.0 / RATE]);
}

#[test]
fn time_refills_the_bucket_up_to_its_burst_and_pays_debts_first() {
    // Empty, a second later: 16 tokens back, one taken.
    assert_eq!(reserve(0.0, 1.0, BURST, RATE), (15.0, 0.0));
    // Idle for minutes: never more than the burst.
    assert_eq!(reserve(10.0, 600.0, BURST, RATE), (BURST - 1.0, 0.0));
    // Owing 8 tokens, half a second later: still owing, wait for the rest.
    let (left, wait) = reserve(-8.0, 0.5, BURST, RATE);
    assert_eq!(left, -1.0);
    assert_eq!(wait, 1.0 / RATE);
}
