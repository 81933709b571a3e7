//! The desk over HTTPS: a TLS accept loop in front of the same router, with HSTS on every
//! answer. axum's own `serve` only takes plain listeners, so this drives hyper directly (HTTP/1.1
//! with upgrades, for the desk's WebSockets) and hands each request the client's address the
//! way `into_make_service_with_connect_info` does (the log-in limiter keys on it).

use crate::tls::CertStore;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_service::Service;
use tracing::debug;

/// A browser must finish its TLS handshake within this.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// HSTS: browsers that saw the desk over HTTPS never try it over plain HTTP for a year.
pub const HSTS: &str = "max-age=31536000";

/// Serves `router` on `listener` over TLS until the process ends.
pub async fn serve(listener: TcpListener, router: axum::Router, certs: CertStore) {
    let router = router.layer(axum::middleware::map_response(hsts));
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "HTTPS accept");
                continue;
            }
        };
        let acceptor = certs.acceptor();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return debug!(%addr, error = %e, "HTTPS handshake failed"),
                Err(_) => return debug!(%addr, "HTTPS handshake timed out"),
            };
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
                // A Router is always ready (axum documents `poll_ready` as a no-op).
                router.clone().call(req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                debug!(%addr, error = %e, "HTTPS connection");
            }
        });
    }
}

async fn hsts(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    r
}
