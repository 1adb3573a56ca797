use super::*;

#[test]
fn a_rate_admits_its_burst_then_says_when_to_come_back() {
    let r = Rate::new(2, 3);
    for _ in 0..3 {
        assert_eq!(r.check_at(0), Ok(()));
    }
    assert_eq!(r.check_at(0), Err(Duration::from_millis(500)));
    assert_eq!(r.check_at(200_000_000), Err(Duration::from_millis(300)));
    assert_eq!(r.check_at(500_000_000), Ok(()));
    assert_eq!(retry_after_secs(Duration::from_millis(300)), 1);
    assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
}

#[test]
fn without_a_burst_a_rate_admits_one_seconds_worth() {
    let r = Rate::new(5, 0);
    assert_eq!(r.burst, 5);
    assert_eq!((0..10).filter(|_| r.check_at(7).is_ok()).count(), 5);
}

#[test]
fn a_pacer_lets_a_quarter_second_through_then_queues_by_size() {
    let p = Pacer::new(1000);
    assert_eq!(p.reserve_at(100, 0), Duration::ZERO);
    assert_eq!(p.reserve_at(150, 0), Duration::ZERO);
    // 250 bytes (a quarter second) are out: the next 500 start their turn at 250 ms, within
    // the slack; the 500 after them at 750 ms, so they wait 500 ms.
    assert_eq!(p.reserve_at(500, 0), Duration::ZERO);
    assert_eq!(p.reserve_at(500, 0), Duration::from_millis(500));
    assert_eq!(p.reserve_at(100, 600_000_000), Duration::from_millis(400));
    // Idle time is not saved up beyond the slack.
    assert_eq!(p.reserve_at(100, 10_000_000_000), Duration::ZERO);
}

#[test]
fn a_deployment_takes_requests_up_to_its_limit() {
    let limits = UrlLimits {
        max_requests: 2,
        ..UrlLimits::default()
    };
    let h = std::sync::Arc::new(Host::new(
        "web--v1.localhost".into(),
        limits,
        std::sync::Arc::default(),
    ));
    let a = h.enter().unwrap();
    let _b = h.enter().unwrap();
    assert_eq!(h.enter().unwrap_err(), 2);
    assert_eq!(h.in_flight(), 2);
    drop(a);
    assert!(h.enter().is_ok());
}
