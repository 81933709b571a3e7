use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn events(l: &mut Lease) -> Vec<LeaseEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

/// A node that takes a free lease leads with the create's revision as its epoch, and renews
/// with the latest revision every `renew`.
#[test]
fn a_free_lease_is_taken_and_renewed() {
    let t0 = Instant::now();
    let mut l = Lease::new(t0, LeaseTiming::default());
    assert_eq!(l.epoch(t0), None);
    assert_eq!(l.poll_op(t0), Some(LeaseOp::Create));
    assert_eq!(l.poll_op(t0), None, "one operation at a time");
    l.on_reply(t0 + ms(3), LeaseReply::Done(41));
    assert_eq!(events(&mut l), vec![LeaseEvent::Acquired { epoch: 41 }]);
    assert_eq!(l.epoch(t0 + ms(3)), Some(41));
    assert_eq!(l.poll_timeout(), Some(t0 + ms(500)));
    assert_eq!(l.poll_op(t0 + ms(499)), None);
    assert_eq!(
        l.poll_op(t0 + ms(500)),
        Some(LeaseOp::Update { revision: 41 })
    );
    l.on_reply(t0 + ms(502), LeaseReply::Done(57));
    assert_eq!(
        l.poll_op(t0 + ms(1000)),
        Some(LeaseOp::Update { revision: 57 })
    );
    l.on_reply(t0 + ms(1001), LeaseReply::Done(60));
    assert_eq!(
        l.epoch(t0 + ms(2400)),
        Some(41),
        "the epoch is the create's"
    );
    assert!(events(&mut l).is_empty());
}

/// A lease someone else holds is looked at again every poll interval, not hammered.
#[test]
fn a_held_lease_is_polled() {
    let t0 = Instant::now();
    let mut l = Lease::new(t0, LeaseTiming::default());
    assert_eq!(l.poll_op(t0), Some(LeaseOp::Create));
    l.on_reply(t0 + ms(1), LeaseReply::Taken);
    assert_eq!(l.epoch(t0 + ms(1)), None);
    assert_eq!(l.poll_timeout(), Some(t0 + ms(201)));
    assert_eq!(l.poll_op(t0 + ms(100)), None);
    assert_eq!(l.poll_op(t0 + ms(201)), Some(LeaseOp::Create));
}

/// Validity counts from when the renewal was sent: an answer that took 1.2 s does not give
/// the leader 1.5 s more from its arrival, so the leader is quiet before `max_age` frees the
/// key for another node.
#[test]
fn a_slow_renewal_does_not_stretch_the_lease() {
    let t0 = Instant::now();
    let mut l = Lease::new(t0, LeaseTiming::default());
    l.poll_op(t0);
    l.on_reply(t0, LeaseReply::Done(7));
    assert_eq!(
        l.poll_op(t0 + ms(500)),
        Some(LeaseOp::Update { revision: 7 })
    );
    l.on_reply(t0 + ms(1700), LeaseReply::Done(9));
    assert_eq!(
        l.epoch(t0 + ms(1999)),
        Some(7),
        "sent at 500: valid to 2000"
    );
    assert_eq!(l.epoch(t0 + ms(2000)), None);
}

/// NATS silent: the leader stops at `hold` after its last confirmed renewal, says so once, and
/// when NATS answers again and the key is still its own it leads again under the same epoch.
#[test]
fn a_leader_cut_off_from_nats_stops_then_comes_back() {
    let t0 = Instant::now();
    let mut l = Lease::new(t0, LeaseTiming::default());
    l.poll_op(t0);
    l.on_reply(t0, LeaseReply::Done(7));
    events(&mut l);
    let mut now = t0 + ms(500);
    while now < t0 + ms(1500) {
        if l.poll_op(now).is_some() {
            l.on_reply(now + ms(50), LeaseReply::Unavailable);
        }
        now += ms(100);
    }
    assert_eq!(l.epoch(t0 + ms(1499)), Some(7));
    l.handle_timeout(t0 + ms(1500));
    assert_eq!(l.epoch(t0 + ms(1500)), None);
    assert_eq!(events(&mut l), vec![LeaseEvent::Lost { epoch: 7 }]);
    l.handle_timeout(t0 + ms(1600));
    assert!(events(&mut l).is_empty(), "lost once");
    let op = l.poll_op(t0 + ms(1700));
    assert_eq!(op, Some(LeaseOp::Update { revision: 7 }));
    l.on_reply(t0 + ms(1710), LeaseReply::Done(12));
    assert_eq!(events(&mut l), vec![LeaseEvent::Acquired { epoch: 7 }]);
    assert_eq!(l.epoch(t0 + ms(1710)), Some(7));
}

/// The key moved on (another node created it after ours expired): the old leader hears
/// "taken", stops at once and competes with `create` like everyone else.
#[test]
fn a_leader_whose_key_moved_on_stops_at_once() {
    let t0 = Instant::now();
    let mut l = Lease::new(t0, LeaseTiming::default());
    l.poll_op(t0);
    l.on_reply(t0, LeaseReply::Done(7));
    events(&mut l);
    l.poll_op(t0 + ms(500));
    l.on_reply(t0 + ms(501), LeaseReply::Taken);
    assert_eq!(l.epoch(t0 + ms(501)), None);
    assert_eq!(events(&mut l), vec![LeaseEvent::Lost { epoch: 7 }]);
    assert_eq!(l.poll_op(t0 + ms(501)), Some(LeaseOp::Create));
}

/// A node with its share of partitions does not take one more; one it leads it keeps.
#[test]
fn an_unwanted_lease_is_not_taken_but_a_held_one_is_kept() {
    let t0 = Instant::now();
    let mut l = Lease::new(t0, LeaseTiming::default());
    l.set_wanted(false);
    assert_eq!(l.poll_op(t0), None);
    assert_eq!(l.poll_timeout(), None);
    l.set_wanted(true);
    l.poll_op(t0);
    l.on_reply(t0, LeaseReply::Done(3));
    l.set_wanted(false);
    assert_eq!(
        l.poll_op(t0 + ms(500)),
        Some(LeaseOp::Update { revision: 3 })
    );
}

/// A clean stop frees the lease in NATS for the next node (no 2 s wait) and ends the
/// leadership at once, before NATS even answers.
#[test]
fn release_stops_leading_at_once() {
    let t0 = Instant::now();
    let mut l = Lease::new(t0, LeaseTiming::default());
    l.poll_op(t0);
    l.on_reply(t0, LeaseReply::Done(3));
    events(&mut l);
    assert_eq!(
        l.release(t0 + ms(10)),
        Some(LeaseOp::Release { revision: 3 })
    );
    assert_eq!(l.epoch(t0 + ms(10)), None);
    assert_eq!(events(&mut l), vec![LeaseEvent::Lost { epoch: 3 }]);
    l.on_reply(t0 + ms(11), LeaseReply::Done(4));
    assert_eq!(l.poll_op(t0 + ms(600)), None, "not taken again");
}

/// An operation whose answer never came (a bug in the IO layer, a dropped reply) does not
/// wedge the lease.
#[test]
fn an_unanswered_operation_is_given_up() {
    let t0 = Instant::now();
    let mut l = Lease::new(t0, LeaseTiming::default());
    assert_eq!(l.poll_op(t0), Some(LeaseOp::Create));
    assert_eq!(l.poll_timeout(), Some(t0 + ms(2000)));
    assert_eq!(l.poll_op(t0 + ms(1999)), None);
    assert_eq!(l.poll_op(t0 + ms(2000)), Some(LeaseOp::Create));
    l.on_reply(t0 + ms(2001), LeaseReply::Done(5));
    assert_eq!(l.epoch(t0 + ms(2001)), Some(5));
}

/// Commands under an epoch lower than one already seen are refused and counted.
#[test]
fn the_fence_refuses_a_deposed_leader() {
    let mut f = Fence::default();
    assert!(f.admit("p", 7));
    assert!(f.admit("p", 7));
    assert!(f.admit("p", 12));
    assert!(!f.admit("p", 7));
    assert!(f.admit("q", 3), "partitions are fenced apart");
    assert_eq!(f.refused, 1);
    assert_eq!(f.epoch("p"), Some(12));
}
