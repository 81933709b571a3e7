//! Budgets on a fake clock.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn budgets(invite: u32) -> Budgets {
    Budgets::new(BudgetConfig {
        per_s: [invite, 5, 5, 50],
        drop_factor: 3,
        retry_after_s: 7,
        allow: vec![Cidr::parse("198.51.100.0/24").unwrap()],
        max_sources: 4,
    })
}

#[test]
fn past_the_budget_503_then_silence_and_the_next_second_is_fresh() {
    let t0 = Instant::now();
    let mut b = budgets(2);
    let a = ip("203.0.113.9");
    let got: Vec<Verdict> = (0..8).map(|_| b.check(t0, a, Class::Invite)).collect();
    assert_eq!(
        got,
        vec![
            Verdict::Accept,
            Verdict::Accept,
            Verdict::Refuse(7),
            Verdict::Refuse(7),
            Verdict::Refuse(7),
            Verdict::Refuse(7),
            Verdict::Drop,
            Verdict::Drop
        ]
    );
    assert_eq!(b.stats.refused[Class::Invite as usize], 4);
    assert_eq!(b.stats.dropped[Class::Invite as usize], 2);
    // Another class of the same source has its own budget.
    assert_eq!(b.check(t0, a, Class::Register), Verdict::Accept);
    // Another source is not affected.
    assert_eq!(
        b.check(t0, ip("203.0.113.10"), Class::Invite),
        Verdict::Accept
    );
    assert_eq!(
        b.check(t0 + Duration::from_millis(999), a, Class::Invite),
        Verdict::Drop
    );
    assert_eq!(
        b.check(t0 + Duration::from_secs(1), a, Class::Invite),
        Verdict::Accept
    );
}

#[test]
fn ipv6_is_counted_per_64_and_the_allow_list_is_never_limited() {
    let t0 = Instant::now();
    let mut b = budgets(1);
    assert_eq!(
        b.check(t0, ip("2001:db8:1:2::1"), Class::Invite),
        Verdict::Accept
    );
    // Rotating through the same /64 does not buy a new budget.
    assert_eq!(
        b.check(t0, ip("2001:db8:1:2:ffff::9"), Class::Invite),
        Verdict::Refuse(7)
    );
    assert_eq!(
        b.check(t0, ip("2001:db8:1:3::1"), Class::Invite),
        Verdict::Accept
    );
    for _ in 0..100 {
        assert_eq!(
            b.check(t0, ip("198.51.100.77"), Class::Invite),
            Verdict::Accept
        );
    }
    // An IPv4-mapped IPv6 source is the IPv4 address.
    assert_eq!(
        b.check(t0, ip("::ffff:198.51.100.5"), Class::Invite),
        Verdict::Accept
    );
}

#[test]
fn the_source_table_is_bounded_and_evicts_whole_generations() {
    let t0 = Instant::now();
    let mut b = budgets(1);
    for i in 0..100u8 {
        b.check(t0, ip(&format!("203.0.113.{i}")), Class::Invite);
        assert!(
            b.stats.sources <= 8,
            "at most twice the cap: {}",
            b.stats.sources
        );
    }
    assert!(b.stats.evictions > 0);
}

#[test]
fn generations_keep_recent_entries_and_age_out_old_ones() {
    let t0 = Instant::now();
    let mut g: Generations<u32, u32> = Generations::new(100, Duration::from_secs(10));
    *g.entry(t0, 1, || 0) += 5;
    // A later insert after the ttl rotates: 1 moves to the previous generation, still found.
    *g.entry(t0 + Duration::from_secs(11), 2, || 0) += 1;
    assert_eq!(g.get(&1), Some(&5));
    // Touching it brings it forward; an untouched entry is gone after two rotations.
    *g.entry(t0 + Duration::from_secs(12), 1, || 0) += 1;
    g.entry(t0 + Duration::from_secs(30), 3, || 0);
    g.entry(t0 + Duration::from_secs(45), 4, || 0);
    assert_eq!(g.get(&2), None);
    assert_eq!(g.len(), 2);
}

#[test]
fn cidr_parsing_and_matching() {
    let c = Cidr::parse("10.0.0.0/8").unwrap();
    assert!(c.contains(ip("10.200.1.1")) && !c.contains(ip("11.0.0.1")));
    assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
    assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
    assert!(Cidr::parse("2001:db8::/32")
        .unwrap()
        .contains(ip("2001:db8:ffff::1")));
    assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
}
