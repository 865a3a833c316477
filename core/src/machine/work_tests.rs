//! Tests of the work-item rules (M26-M29).

use super::*;

type State = WorkState<&'static str, u8>;

#[test]
fn pending_is_a_token_and_instances_are_numbered() {
    let mut item = State::default();
    assert_eq!(item.try_claim(), Some(None));
    assert_eq!(item.try_claim(), None, "pending: a second queueing adds nothing");
    assert_eq!(item.insert("pool0"), 1);
    assert_eq!(item.flush_target(false), Some(1));
    item.start(false);
    assert!(!item.is_pending(), "PENDING is cleared before the function runs");
    assert_eq!(item.try_claim(), Some(Some("pool0")), "queueing while it runs is accepted");
    assert_eq!(item.insert("pool0"), 2);
    assert!(!item.instance_done(1));
    let _ = item.finish(false);
    assert!(item.instance_done(1));
    assert!(!item.instance_done(2), "the requeued instance is still queued");
}

#[test]
fn grab_takes_pending_from_a_timer_or_from_its_pool_only_if_still_there() {
    let mut item = State::default();
    let _ = item.try_claim();
    item.arm(7, Duration::from_secs(1), 3, None);
    assert!(matches!(item.grab(false), Grab::Owned { was_pending: true, timer: Some((7, _, 3)) }));
    assert!(!item.release(), "no waiters to notify");
    let _ = item.try_claim();
    let _ = item.insert("pool1");
    assert_eq!(item.grab(true), Grab::Queued("pool1"));
    assert!(!item.grab_queued(true, |p| *p == "pool0"), "moved meanwhile: retry");
    assert!(item.grab_queued(true, |p| *p == "pool1"));
    assert_eq!(item.location, Location::Cancelling);
    assert!(item.instance_done(1), "a cancelled instance counts as finished");
    assert_eq!(item.grab(false), Grab::Cancelling);
}

#[test]
fn a_stale_timer_does_nothing_and_flush_delayed_fires_any() {
    let mut item = State::default();
    let _ = item.try_claim();
    item.arm(7, Duration::from_secs(1), 3, Some(1));
    assert_eq!(item.fire(Some(6)), None, "stale");
    assert_eq!(item.fire(None), Some((7, Duration::from_secs(1), 3, Some(1), None)));
    assert_eq!(item.location, Location::Owned);
}

#[test]
fn seeded_late_clear_keeps_pending_through_the_run() {
    let mut item = State::default();
    let _ = item.try_claim();
    let _ = item.insert("pool0");
    item.start(true);
    assert_eq!(item.try_claim(), None, "the requeue during execution is lost (the seeded bug)");
    let _ = item.finish(true);
    assert!(!item.is_pending());
}

#[test]
fn a_claim_under_the_chosen_pool_says_whether_to_insert_there() {
    let mut item = State::default();
    assert_eq!(item.try_claim_for(|_| false), Claim::Here, "never ran: nothing to redirect");
    assert_eq!(item.try_claim_for(|_| true), Claim::Pending);
    assert_eq!(item.insert("pool0"), 1);
    item.start(false);
    assert_eq!(item.try_claim_for(|p| *p == "pool1"), Claim::Elsewhere("pool0"), "QU4 must probe pool 0");
    let _ = item.release();
    assert_eq!(item.try_claim_for(|p| *p == "pool0"), Claim::Here, "last ran here: one section");
    assert_eq!(item.insert("pool0"), 2);
}
