//! What the gateway and the agent share: the bearer token on every call, a per-client rate
//! limit, request counters for `/metrics`, one structured log line per request, JSON errors, and
//! a graceful shutdown on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, Result};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

pub type ApiError = (StatusCode, Json<serde_json::Value>);

pub fn api_error(status: StatusCode, message: &str) -> ApiError {
    (status, Json(serde_json::json!({"error": message})))
}

/// A refusal that says what to do: `{"error": message, "hint": hint}`; the CLI shows the hint
/// under the error.
pub fn api_refusal(status: StatusCode, message: &str, hint: &str) -> ApiError {
    (
        status,
        Json(serde_json::json!({"error": message, "hint": hint})),
    )
}

#[derive(Clone)]
pub struct Common {
    /// Read again when replaced: `projects rotate-tokens` changes it while the service runs.
    token: Arc<super::token::TokenFile>,
    rate: f64,
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
    counts: Arc<Mutex<HashMap<u16, u64>>>,
    name: &'static str,
}

impl Common {
    pub fn new(token_file: &Path, rate_per_second: u32, name: &'static str) -> Result<Common> {
        let token =
            super::token::TokenFile::open(token_file, 16).context("the service's token file")?;
        Ok(Common {
            token,
            rate: f64::from(rate_per_second.max(1)),
            buckets: Arc::new(Mutex::new(HashMap::new())),
            counts: Arc::new(Mutex::new(HashMap::new())),
            name,
        })
    }

    /// `Bearer TOKEN`, or Gitea's `token TOKEN`.
    fn authorized(&self, value: Option<&HeaderValue>) -> bool {
        let given = value
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("token "))
            })
            .unwrap_or("");
        self.token.accepts(given)
    }

    /// A token bucket per client: `rate` per second, bursts of twice that.
    fn allow(&self, ip: IpAddr) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let burst = self.rate * 2.0;
        let (tokens, last) = buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn count(&self, status: StatusCode) {
        *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(status.as_u16())
            .or_default() += 1;
    }

    /// Prometheus text: requests by status, plus the service's own gauges.
    pub fn metrics_text(&self, gauges: &[(&str, u64)]) -> String {
        let name = self.name;
        let mut out = format!("# TYPE tfgrid_{name}_requests_total counter\n");
        let mut counts: Vec<(u16, u64)> = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        counts.sort_unstable();
        for (code, n) in counts {
            out.push_str(&format!(
                "tfgrid_{name}_requests_total{{code=\"{code}\"}} {n}\n"
            ));
        }
        for (gauge, value) in gauges {
            out.push_str(&format!("# TYPE {gauge} gauge\n{gauge} {value}\n"));
        }
        out
    }
}

async fn guard(
    State(common): State<Common>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = if !common.allow(peer.ip()) {
        let mut r = api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded; slow down",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else if !common.authorized(request.headers().get(header::AUTHORIZATION)) {
        api_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response()
    } else {
        next.run(request).await
    };
    common.count(response.status());
    tracing::info!(service = common.name, %method, path, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, peer = %peer.ip(), "request");
    response
}

/// Serves `app` behind the guard until SIGINT or SIGTERM, finishing requests in flight.
pub async fn serve(listen: &str, app: Router, common: Common) -> Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(common, guard));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
