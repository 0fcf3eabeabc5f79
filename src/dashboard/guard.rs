//! Who may talk to the dashboard: the checks every request passes, the login that turns the
//! printed token into a cookie, and the headers every answer carries.
//!
//! - `Host` must be exactly one of this server's names (`127.0.0.1:PORT`, `localhost:PORT`,
//!   `[::1]:PORT`, or the address given to `--listen`): a DNS-rebinding page names its own host and
//!   gets 421.
//! - A session cookie `tfgc_PORT` (the port in the name: cookies are not isolated by port, RFC 6265
//!   §8.5) is required everywhere but `/login`; without it, 401.
//! - State-changing requests (anything but GET/HEAD) and event streams need `Origin` equal to
//!   `http://` + the request's own host, or, when a browser sends no `Origin`,
//!   `Sec-Fetch-Site: same-origin`; neither, or another value, is 403. No CORS header is ever sent.
//! - Every answer: a strict `Content-Security-Policy` (only this origin, no inline script or style,
//!   `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `nosniff`, `Referrer-Policy: same-origin` (`no-referrer` would make a browser send `Origin: null` with the dashboard's own forms), `no-store`.

use std::net::SocketAddr;

use anyhow::Result;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::Shared;

/// The policy of every answer: this origin only, nothing inline, never in a frame.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

pub(crate) struct Guard {
    /// The exact `Host` values accepted.
    hosts: Vec<String>,
    port: u16,
    /// Printed once, in the login URL; exchanged for [`Guard::session`].
    token: String,
    /// The cookie's value: random, never printed, lives as long as the process.
    session: String,
}

/// Equal in time that depends on the length only.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Guard {
    /// The names of a server on `addr`; `loopback` adds the three loopback spellings.
    pub(crate) fn new(addr: SocketAddr, loopback: bool) -> Result<Guard> {
        let port = addr.port();
        let mut hosts = vec![addr.to_string()];
        if loopback {
            for host in ["127.0.0.1", "localhost", "[::1]"] {
                let name = format!("{host}:{port}");
                if !hosts.contains(&name) {
                    hosts.push(name);
                }
            }
        }
        Ok(Guard {
            hosts,
            port,
            token: crate::ids::random_hex(32)?,
            session: crate::ids::random_hex(32)?,
        })
    }

    /// `http://HOST:PORT/login?token=…`, the one URL that signs a browser in.
    pub(crate) fn login_url(&self) -> String {
        format!("http://{}/login?token={}", self.hosts[0], self.token)
    }

    /// `tfgc_PORT`.
    pub(crate) fn cookie_name(&self) -> String {
        format!("tfgc_{}", self.port)
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn signed_in(&self, headers: &HeaderMap) -> bool {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(k, v)| k == name && same(v, &self.session))
    }
}

/// Whether a request comes from a page of this very origin (`host` is the checked `Host`).
fn same_origin(headers: &HeaderMap, host: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (header("origin"), header("sec-fetch-site")) {
        (Some(origin), _) => origin.eq_ignore_ascii_case(&format!("http://{host}")),
        (None, Some(site)) => site == "same-origin",
        (None, None) => false,
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}

/// The checks, in order, then the headers on whatever the handler answered.
pub(crate) async fn check(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let mut response = gate(&app, request, next).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn gate(app: &Shared, request: Request, next: Next) -> Response {
    let guard = &app.guard;
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !guard.host_allowed(&host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "this dashboard answers only to its own address (Host refused)",
        );
    }
    let path = request.uri().path();
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    let stream = path.ends_with("/events");
    if (changes || stream) && !same_origin(headers, &host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "refused: not a request of the dashboard's own pages (Origin)",
        );
    }
    if path != "/login" && !guard.signed_in(headers) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "sign in with the URL `tfgrid-compose dashboard` printed (it holds a token)",
        );
    }
    next.run(request).await
}

#[derive(serde::Deserialize)]
pub(crate) struct Login {
    token: Option<String>,
}

/// `GET /login?token=…`: the token becomes the session cookie, and the browser goes to `/`
/// (a URL without the token, so that it leaves the address bar and the history).
pub(crate) async fn login(State(app): State<Shared>, Query(login): Query<Login>) -> Response {
    let guard = &app.guard;
    if !login.token.is_some_and(|t| same(&t, &guard.token)) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "this is not the dashboard's token: use the URL `tfgrid-compose dashboard` printed",
        );
    }
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        guard.cookie_name(),
        guard.session
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn hosts_are_the_exact_loopback_names_with_the_port() {
        let guard = Guard::new("127.0.0.1:43100".parse().unwrap(), true).unwrap();
        for ok in [
            "127.0.0.1:43100",
            "localhost:43100",
            "LOCALHOST:43100",
            "[::1]:43100",
        ] {
            assert!(guard.host_allowed(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "127.0.0.1:43101",
            "evil.example:43100",
            "localhost.evil.example:43100",
            "",
        ] {
            assert!(!guard.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn same_origin_needs_this_origin_or_the_browsers_word() {
        let host = "127.0.0.1:43100";
        assert!(same_origin(
            &headers(&[("origin", "http://127.0.0.1:43100")]),
            host
        ));
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            host
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://localhost:43100")]),
            host
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), host));
        assert!(!same_origin(
            &headers(&[
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "same-origin")
            ]),
            host
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            host
        ));
        assert!(!same_origin(&headers(&[]), host));
    }

    #[test]
    fn only_the_session_cookie_of_this_port_signs_in() {
        let guard = Guard::new("127.0.0.1:43100".parse().unwrap(), true).unwrap();
        let cookie = |v: String| {
            let mut map = HeaderMap::new();
            map.insert(header::COOKIE, HeaderValue::from_str(&v).unwrap());
            map
        };
        assert!(guard.signed_in(&cookie(format!("a=b; tfgc_43100={}", guard.session))));
        assert!(!guard.signed_in(&cookie(format!("tfgc_43101={}", guard.session))));
        assert!(!guard.signed_in(&cookie(format!("tfgc_43100={}", guard.token))));
        assert!(!guard.signed_in(&HeaderMap::new()));
    }
}
