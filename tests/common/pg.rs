//! The PostgreSQL the tests run against: `ACD_TEST_POSTGRES_URL`, or this machine kind's own
//! server (127.0.0.1:5432, trust, user postgres, database test). A test that needs it fails
//! with a message saying how to get it; it never passes without it.

/// The server's URL, once it is known to answer.
pub async fn url() -> String {
    let url = std::env::var("ACD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let hostport = url
        .rsplit_once('@')
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
        .unwrap_or_else(|| "127.0.0.1:5432".into());
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(&hostport),
    )
    .await;
    assert!(
        matches!(answered, Ok(Ok(_))),
        "PostgreSQL is not answering at {hostport} ({url}): start it \
         (pg_ctlcluster 15 main start, as .ci/run does) or point ACD_TEST_POSTGRES_URL at one"
    );
    url
}
