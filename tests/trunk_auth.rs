//! A `[[trunk]]` with digest credentials: its INVITEs are challenged and must prove the
//! password before the call is taken and its P-Asserted-Identity believed; a wrong password
//! gets nowhere (SIPp as the carrier, over real sockets).

mod common;

use common::*;
use std::time::Duration;

fn with_trunk(c: &mut acd::config::Config) {
    c.trunk = vec![acd::call::Trunk {
        name: "carrier".into(),
        addresses: vec![acd::sip::budget::Cidr::parse("127.0.0.1").unwrap()],
        username: Some("carrier".into()),
        password: Some("trunk-secret".into()),
    }];
}

fn carrier(srv: &TestServer, scen: &str, password: &str) -> Sipp {
    sipp(
        srv.sip(),
        srv.dir.path(),
        scen,
        &[
            "-s",
            "100",
            "-key",
            "caller",
            "+15557654321",
            "-au",
            "carrier",
            "-ap",
            password,
            "-d",
            "500",
            "-m",
            "1",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_proves_its_password_and_its_asserted_number_is_believed() {
    let srv = start(None, with_trunk).await;
    let a = agent(&srv, "1001", "agent_answer.xml", 1, false).await;
    carrier(&srv, "trunk_auth.xml", "trunk-secret")
        .success(Duration::from_secs(20))
        .await;
    drop(a);
    let s = srv.wait_idle().await;
    assert_eq!(s.status.totals.arrived, 1, "{:?}", s.status.totals);
    assert_eq!(s.status.sip.auth_failures, 0);
    // The history files the call under the asserted number: the trunk vouched for it.
    let ids = eventually("the call in the history", || async {
        let ids = srv
            .running
            .store
            .interactions_of("+15557654321")
            .await
            .unwrap();
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    assert_eq!(
        ids.len(),
        1,
        "the call is filed under the P-Asserted-Identity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_with_the_wrong_password_starts_no_call() {
    let srv = start(None, with_trunk).await;
    carrier(&srv, "trunk_refused.xml", "guess")
        .success(Duration::from_secs(20))
        .await;
    let s = srv.status().await;
    assert_eq!(s.status.totals.arrived, 0, "{:?}", s.status.totals);
    assert_eq!(s.status.calls, 0);
    assert_eq!(s.status.sip.auth_failures, 1, "{:?}", s.status.sip);
}
