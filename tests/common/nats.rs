//! The NATS the cluster tests run against: `ACD_TEST_NATS_URL`, or this machine kind's own
//! server (127.0.0.1:4222, JetStream on). A test that needs it fails with a message saying how
//! to get it; it never passes without it. Each test names its own cluster, so its buckets and
//! subjects are its own even on a shared server.

use std::sync::atomic::{AtomicU32, Ordering};

/// The server's URL, once it is known to answer.
pub async fn url() -> String {
    let url = std::env::var("ACD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let hostport = url.trim_start_matches("nats://").to_string();
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(&hostport),
    )
    .await;
    assert!(
        matches!(answered, Ok(Ok(_))),
        "NATS is not answering at {hostport}: start it with JetStream \
         (nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server, as .ci/run does) \
         or point ACD_TEST_NATS_URL at one"
    );
    url
}

/// A cluster name no other test (in this or another binary) uses.
pub fn cluster_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_micros())
            .unwrap_or(0)
    )
}

/// Deletes a test cluster's buckets.
pub async fn remove_cluster(url: &str, name: &str) {
    let Ok(client) = async_nats::connect(url).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    for b in ["lease", "calls", "nodes", "bindings"] {
        let _ = js.delete_key_value(format!("{name}_{b}")).await;
    }
}

/// A node's `[cluster]` for a test cluster.
pub fn cluster_config(url: &str, name: &str, node: &str) -> acd::cluster::ClusterConfig {
    let text = format!("node = \"{node}\"\nname = \"{name}\"\nnats = \"{url}\"\n");
    toml::from_str(&text).expect("a valid [cluster]")
}
