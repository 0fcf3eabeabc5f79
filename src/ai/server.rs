//! What the gateway, the agent and the git host's API share: the bearer token on every call (and
//! the read-only metrics token, good for `GET /metrics` only), a per-client rate limit, the
//! Prometheus registry behind `/metrics` (requests by status, `http_request_duration_seconds` per
//! service and route, long polls apart in `http_long_poll_duration_seconds`, and what each
//! service registers), one structured log line per request,
//! JSON errors, and a graceful shutdown on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, Result};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
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

/// The upper bounds (seconds) of `http_request_duration_seconds`' buckets: around the design's
/// 500 ms objective for the API's p95, finer below it.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A response extension a handler sets on the answer of a long poll (a request that waits for
/// something to happen, such as `GET /api/v1/projects/{id}/events?wait=30`): its time is how
/// long nothing happened, not how fast the service answered, so the guard observes it in
/// `http_long_poll_duration_seconds` and keeps it out of `http_request_duration_seconds`, the
/// histogram of the API's latency objective.
#[derive(Clone, Copy, Debug)]
pub struct LongPoll;

#[derive(Clone)]
pub struct Common {
    /// Read again when replaced: `projects rotate-tokens` changes it while the service runs.
    token: Arc<super::token::TokenFile>,
    /// The read-only token Prometheus scrapes with: `GET /metrics` only (read again when
    /// replaced, as `token`).
    metrics_token: Option<Arc<super::token::TokenFile>>,
    rate: f64,
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
    registry: prometheus::Registry,
    counts: prometheus::IntCounterVec,
    durations: prometheus::HistogramVec,
    /// Long polls' times ([`LongPoll`]), apart from `durations`.
    long_polls: prometheus::HistogramVec,
    name: &'static str,
}

impl Common {
    /// The service `name`'s guard, with its token from `token_file` and, when given, the
    /// metrics token from `metrics_token_file`; both read again when replaced.
    ///
    /// Errors: a token file that cannot be read or holds fewer than 16 characters.
    pub fn new(
        token_file: &Path,
        metrics_token_file: Option<&Path>,
        rate_per_second: u32,
        name: &'static str,
    ) -> Result<Common> {
        let token =
            super::token::TokenFile::open(token_file, 16).context("the service's token file")?;
        let metrics_token = metrics_token_file
            .map(|f| super::token::TokenFile::open(f, 16).context("the metrics token file"))
            .transpose()?;
        let registry = prometheus::Registry::new();
        let counts = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                format!("tfgrid_{name}_requests_total"),
                format!("Requests the {name} API answered, by HTTP status."),
            ),
            &["code"],
        )?;
        let durations = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from a request's arrival to its response, by service, route and method.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["service", "route", "method"],
        )?;
        let long_polls = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "http_long_poll_duration_seconds",
                "Time from a long poll's arrival to its response (how long it waited), by \
                 service, route and method.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["service", "route", "method"],
        )?;
        registry.register(Box::new(counts.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        registry.register(Box::new(long_polls.clone()))?;
        Ok(Common {
            token,
            metrics_token,
            rate: f64::from(rate_per_second.max(1)),
            buckets: Arc::new(Mutex::new(HashMap::new())),
            registry,
            counts,
            durations,
            long_polls,
            name,
        })
    }

    /// Where a service registers its own metrics; `/metrics` shows them with these.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// `Bearer TOKEN`, or Gitea's `token TOKEN`: the service's token, or the metrics token
    /// when `metrics` (a `GET /metrics`).
    fn authorized(&self, value: Option<&HeaderValue>, metrics: bool) -> bool {
        let given = value
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("token "))
            })
            .unwrap_or("");
        self.token.accepts(given)
            || (metrics
                && self
                    .metrics_token
                    .as_ref()
                    .is_some_and(|t| t.accepts(given)))
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

    /// A response counted and its time observed under the route it matched (`route`, the
    /// route's pattern such as `/api/v1/projects/{id}`, so that ids make no new series): a
    /// long poll's ([`LongPoll`]) in `http_long_poll_duration_seconds`, any other's in
    /// `http_request_duration_seconds`.
    fn observe(
        &self,
        status: StatusCode,
        long_poll: bool,
        route: &str,
        method: &str,
        seconds: f64,
    ) {
        self.counts.with_label_values(&[status.as_str()]).inc();
        let histogram = if long_poll {
            &self.long_polls
        } else {
            &self.durations
        };
        histogram
            .with_label_values(&[self.name, route, method])
            .observe(seconds);
    }

    /// Prometheus' text format (0.0.4) of the registry, with `# HELP` and `# TYPE`, then
    /// `extra` (text the service renders itself, such as the LLM counters).
    pub fn metrics_text(&self, extra: &str) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            tracing::warn!(error = %e, "metrics not encoded");
        }
        out.push_str(extra);
        out
    }
}

/// Prometheus text of values read at scrape time: `fill` registers them on a registry of
/// their own, which is encoded and dropped. A failure is logged and leaves them out.
pub fn scrape_text(fill: impl FnOnce(&prometheus::Registry) -> Result<()>) -> String {
    let registry = prometheus::Registry::new();
    let mut out = String::new();
    let encoded = fill(&registry).and_then(|()| {
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut out)
            .map_err(anyhow::Error::from)
    });
    if let Err(e) = encoded {
        tracing::warn!(error = %format!("{e:#}"), "metrics not encoded");
        out.clear();
    }
    out
}

/// A gauge `name` with `help` and `value`, registered on `registry` (in [`scrape_text`]).
pub fn gauge(registry: &prometheus::Registry, name: &str, help: &str, value: f64) -> Result<()> {
    let gauge = prometheus::Gauge::new(name, help)?;
    gauge.set(value);
    registry.register(Box::new(gauge))?;
    Ok(())
}

/// Registers a counter `name` with `help` at `value` (a total kept elsewhere) in `registry`.
pub fn counter(registry: &prometheus::Registry, name: &str, help: &str, value: f64) -> Result<()> {
    let counter = prometheus::Counter::new(name, help)?;
    counter.inc_by(value);
    registry.register(Box::new(counter))?;
    Ok(())
}

/// The response of `GET /metrics`, in Prometheus' text format.
pub fn metrics_response(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
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
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let metrics = method == axum::http::Method::GET && path == "/metrics";
    let response = if !common.allow(peer.ip()) {
        let mut r = api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded; slow down",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else if !common.authorized(request.headers().get(header::AUTHORIZATION), metrics) {
        api_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response()
    } else {
        next.run(request).await
    };
    common.observe(
        response.status(),
        response.extensions().get::<LongPoll>().is_some(),
        &route,
        method.as_str(),
        started.elapsed().as_secs_f64(),
    );
    tracing::info!(service = common.name, %method, path, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, peer = %peer.ip(), "request");
    response
}

/// Serves `app` behind the guard until SIGINT or SIGTERM, finishing requests in flight.
/// The same on each address of `also` too (`ADDRESS:PORT`), e.g. the private network's where
/// the agent's other address is not reached from the gateway's VM.
///
/// Errors: an address that cannot be bound (before any is served), a server's I/O error.
pub async fn serve(listen: &str, also: &[String], app: Router, common: Common) -> Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(common, guard));
    let mut listeners = Vec::new();
    for at in std::iter::once(listen).chain(also.iter().map(String::as_str)) {
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .with_context(|| format!("cannot listen on {at}"))?;
        listeners.push(listener);
    }
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let app = app.clone();
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown())
                .await
            })
        })
        .collect();
    for server in servers {
        server.await??;
    }
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
