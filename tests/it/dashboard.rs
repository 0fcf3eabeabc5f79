//! `dashboard`: its guard over plain HTTP (no token → 401, wrong Host → 421, cross-origin POST
//! and event streams → 403, no CORS header anywhere), and its pages in a real browser (Debian's
//! headless Chromium through chromedriver, driven by fantoccini) over an AI stack deployed on
//! local VMs: the list, the phases, a log that follows a new line, a `create` that shows its
//! progress and ends with a link that serves, the providers, charts of the stack's own
//! Prometheus (through the dashboard's ssh tunnel, which ends with it) and of `--prometheus`'s,
//! phone width, and `down` behind its typed confirmation. Screenshots of each page are saved under
//! `target/tmp/dashboard/` for people to look at.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};

/// A `tfgrid-compose dashboard` on a free loopback port, stopped (SIGTERM) when dropped.
pub(crate) struct Dashboard {
    child: Child,
    /// The login URL it printed.
    pub(crate) url: String,
    /// `127.0.0.1:PORT`.
    pub(crate) host: String,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Dashboard {
    /// `cmd` is the binary with its environment; `extra` are more flags.
    pub(crate) fn start(mut cmd: Command, extra: &[&str]) -> Dashboard {
        cmd.args(["dashboard", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        stdout.read_line(&mut url).unwrap();
        let url = url.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "printed {url:?}");
        let host = url["http://".len()..]
            .split('/')
            .next()
            .unwrap()
            .to_string();
        Dashboard {
            child,
            url,
            host,
            _stdout: stdout,
        }
    }

    pub(crate) fn token(&self) -> &str {
        self.url.rsplit_once("token=").unwrap().1
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then how long it took to exit, and its exit status.
    pub(crate) fn stop(&mut self) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        let status = self.child.wait().unwrap();
        (started.elapsed(), status)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        signal,
    );
}

/// An answer over plain HTTP: status, headers (names lowercase), body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request to the dashboard at `addr`, written byte for byte (`Host` and every other
/// header as given), the connection closed after the answer.
pub(crate) fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = if method == "POST" { "confirm=x" } else { "" };
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The guard's answers over plain HTTP against a running dashboard; returns the session cookie
/// (`tfgc_PORT=…`).
pub(crate) fn check_guard(d: &Dashboard) -> String {
    let addr = d.host.as_str();
    let port = addr.rsplit_once(':').unwrap().1;
    let host = [("Host", addr)];
    let mut answers = Vec::new();

    let no_token = http(addr, "GET", "/", &host);
    assert_eq!(no_token.status, 401, "no cookie: {}", no_token.body);
    let wrong = http(addr, "GET", "/login?token=0000", &host);
    assert_eq!(wrong.status, 401, "a wrong token");
    let login = http(addr, "GET", &format!("/login?token={}", d.token()), &host);
    assert_eq!(login.status, 303);
    assert_eq!(
        login.header("location"),
        Some("/"),
        "the token leaves the URL"
    );
    let set = login.header("set-cookie").unwrap().to_string();
    let name = format!("tfgc_{port}=");
    assert!(
        set.starts_with(&name) && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(
        !set.contains(d.token()),
        "the cookie is not the token: {set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    answers.extend([no_token, wrong, login]);

    let page = http(addr, "GET", "/", &[("Host", addr), ("Cookie", &cookie)]);
    assert_eq!(page.status, 200, "{}", page.body);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let localhost = format!("localhost:{port}");
    for ok in [localhost.as_str(), &format!("[::1]:{port}")] {
        let answer = http(addr, "GET", "/", &[("Host", ok), ("Cookie", &cookie)]);
        assert_eq!(answer.status, 200, "Host {ok}");
        answers.push(answer);
    }
    answers.push(page);

    // DNS rebinding: the attacker's name, with the right port and even the right cookie.
    for bad in [
        format!("rebind.example:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", port.parse::<u16>().unwrap() + 1),
        format!("localhost.rebind.example:{port}"),
    ] {
        let answer = http(addr, "GET", "/", &[("Host", &bad), ("Cookie", &cookie)]);
        assert_eq!(answer.status, 421, "Host {bad}");
        answers.push(answer);
    }
    let missing = http(addr, "GET", "/", &[("Cookie", &cookie)]);
    assert_eq!(missing.status, 421, "no Host at all");

    // Cross-origin POSTs: another origin, `null`, another site, or nothing to tell.
    let down = "/d/0123456789abcdef/down";
    for origin in [
        vec![("Origin", "http://evil.example")],
        vec![("Origin", "null")],
        vec![("Origin", "http://127.0.0.1:1")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site")],
        vec![],
    ] {
        let mut headers = vec![("Host", addr), ("Cookie", cookie.as_str())];
        headers.extend(origin.iter().copied());
        let answer = http(addr, "POST", down, &headers);
        assert_eq!(answer.status, 403, "{origin:?}: {}", answer.body);
        answers.push(answer);
    }
    // An event stream needs the same proof of origin.
    let stream = http(
        addr,
        "GET",
        "/events",
        &[("Host", addr), ("Cookie", &cookie)],
    );
    assert_eq!(stream.status, 403, "an event stream without Origin");
    let own = format!("http://{addr}");
    let allowed = http(
        addr,
        "POST",
        down,
        &[("Host", addr), ("Cookie", &cookie), ("Origin", &own)],
    );
    assert_eq!(
        allowed.status, 404,
        "same origin reaches the route: {}",
        allowed.body
    );
    // A CORS preflight gets no CORS answer.
    let preflight = http(
        addr,
        "OPTIONS",
        "/",
        &[
            ("Host", addr),
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
    );
    answers.extend([missing, stream, allowed, preflight]);
    for answer in &answers {
        assert!(
            answer
                .headers
                .iter()
                .all(|(k, _)| !k.starts_with("access-control-")),
            "a CORS header: {:?}",
            answer.headers
        );
    }
    cookie
}

/// A temp data and config folder for a dashboard over no deployment.
fn bare_cmd(root: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("tfgrid-compose"));
    cmd.env("NO_COLOR", "1")
        .env("TFGRID_COMPOSE_DATA_DIR", root.join("data"))
        .env("TFGRID_COMPOSE_CONFIG_DIR", root.join("config"))
        .current_dir(root);
    cmd
}

#[test]
fn dashboard_refuses_without_token_other_hosts_and_cross_origin_requests() {
    let root = tempfile::tempdir().unwrap();
    let mut d = Dashboard::start(bare_cmd(root.path()), &[]);
    check_guard(&d);
    let (_, status) = d.stop();
    assert!(
        status.success(),
        "SIGTERM ends the dashboard cleanly: {status}"
    );
}

/// `--open` hands `xdg-open` (a fake that records its argv) a 0600 page that leads to the login
/// URL, never the token itself; and SIGTERM ends open event streams and the server, exit 0.
#[test]
fn dashboard_open_keeps_the_token_out_of_argv_and_sigterm_ends_open_streams() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fake-tool.sh");
    std::os::unix::fs::symlink(&fake, bin.join("xdg-open")).unwrap();
    let log = root.path().join("fake.log");
    let mut cmd = bare_cmd(root.path());
    cmd.env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    )
    .env("FAKE_LOG", &log)
    .env("FAKE_DIR", root.path());
    let mut d = Dashboard::start(cmd, &["--open"]);
    let started = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.ends_with('\n')) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "xdg-open never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = std::fs::read_to_string(&log).unwrap();
    let argv: Vec<&str> = line.trim_end().split('\x1f').collect();
    assert_eq!(argv.len(), 2, "{argv:?}");
    assert_eq!(argv[0], "xdg-open");
    assert!(!line.contains(d.token()), "the token in argv: {line}");
    let page = Path::new(argv[1]);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(page).unwrap().permissions())
            & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(page).unwrap().contains(&d.url));

    let cookie = check_guard(&d);
    let mut streams: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&d.host).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            write!(
                stream,
                "GET /events HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\
                 Sec-Fetch-Site: same-origin\r\n\r\n",
                d.host
            )
            .unwrap();
            stream
        })
        .collect();
    for stream in &mut streams {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("event: rows") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    }
    let (_, status) = d.stop();
    assert!(status.success(), "{status}");
    assert!(
        !page.exists(),
        "the page with the token outlived the dashboard"
    );
    for mut stream in streams {
        let mut rest = Vec::new();
        stream
            .read_to_end(&mut rest)
            .expect("the stream ends with the server");
    }
}

/// An `up` of two VMs with fake tools: every log the journal names exists (wait-ssh's one per
/// VM among them), the deployment's page links each and serves it; a log the journal does not
/// name, or one since removed, is a 404 that says so, never a 500.
#[test]
fn dashboard_links_every_log_the_journal_names_and_each_exists() {
    let cx = crate::common::TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let state = tfgrid_compose::state::DeploymentState::parse(&cx.state_text()).unwrap();
    let named: Vec<(&str, &Path)> = state
        .journal
        .iter()
        .flat_map(|r| r.logs.iter().map(|l| (r.phase.name(), l.as_path())))
        .collect();
    for (phase, log) in &named {
        assert!(
            log.is_file(),
            "{phase} names {}, which is not there",
            log.display()
        );
    }
    let file = |l: &Path| l.file_name().unwrap().to_str().unwrap().to_string();
    let wait_ssh: Vec<String> = named
        .iter()
        .filter(|(p, _)| *p == "wait-ssh")
        .map(|(_, l)| file(l))
        .collect();
    assert_eq!(
        wait_ssh,
        ["wait-ssh-vm0.log", "wait-ssh-backend1.log"],
        "one log per VM"
    );

    let mut d = Dashboard::start(cx.std_cmd(), &[]);
    let cookie = check_guard(&d);
    let get = |path: &str| {
        http(
            &d.host,
            "GET",
            path,
            &[("Host", &d.host), ("Cookie", &cookie)],
        )
    };
    let id = &state.id;
    let page = get(&format!("/d/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    // The short id the list shows names it too; a prefix too short or of no deployment does not.
    let short = get(&format!("/d/{}", &id[..8]));
    assert_eq!(short.status, 200, "{}", short.body);
    assert!(short.body.contains(id.as_str()), "{}", short.body);
    for wrong in [&id[..7], "ffffffffffff"] {
        let answer = get(&format!("/d/{wrong}"));
        assert!(
            answer.body.contains("is not a deployment id"),
            "{wrong}: {}",
            answer.body
        );
    }
    for (phase, log) in &named {
        let href = format!("/d/{id}/log/{phase}/{}", file(log));
        assert!(
            page.body.contains(&format!("href=\"{href}\"")),
            "no link to {href}"
        );
        let answer = get(&href);
        assert_eq!(answer.status, 200, "{href}: {}", answer.body);
    }
    assert_eq!(
        get(&format!("/d/{id}/log/wait-ssh")).status,
        200,
        "its first log"
    );
    let absent = get(&format!("/d/{id}/log/wait-ssh/wait-ssh.log"));
    assert_eq!(absent.status, 404, "{}", absent.body);
    assert!(
        absent.body.contains("has no `wait-ssh` log `wait-ssh.log`"),
        "{}",
        absent.body
    );
    let (_, removed) = named.iter().find(|(p, _)| *p == "wait-ssh").unwrap();
    std::fs::remove_file(removed).unwrap();
    let gone = get(&format!("/d/{id}/log/wait-ssh/{}", file(removed)));
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert!(gone.body.contains("is no longer there"), "{}", gone.body);
    let (_, status) = d.stop();
    assert!(status.success(), "{status}");
}

/// A tunnel's pid file a SIGKILLed dashboard left names a process that is gone: the next
/// dashboard removes it as it starts, and one stopped by SIGINT leaves no pid file.
#[test]
fn dashboard_removes_a_killed_dashboards_pid_files_and_leaves_none() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("data/dashboard/0123456789abcdef");
    std::fs::create_dir_all(&folder).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale = folder.join(format!("prometheus-tunnel.log.{}.pid", gone.id()));
    std::fs::write(&stale, "ssh\nssh -N -L …\n").unwrap();
    let mut d = Dashboard::start(bare_cmd(root.path()), &[]);
    assert!(!stale.exists(), "the stale pid file is still there");
    assert!(
        !folder.exists(),
        "the tunnel folder of a deployment that is gone is still there"
    );
    signal(d.pid(), nix::sys::signal::Signal::SIGINT);
    let status = d.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut files = Vec::new();
    crate::grid::all_files(&root.path().join("data"), &mut files);
    let pids: Vec<_> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "pid"))
        .collect();
    assert!(pids.is_empty(), "{pids:?}");
}

#[test]
fn dashboard_refuses_a_remote_listen_address_without_the_flag() {
    let root = tempfile::tempdir().unwrap();
    let out = bare_cmd(root.path())
        .args(["dashboard", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not a loopback address") && err.contains("--allow-remote"),
        "{err}"
    );
}

/// chromedriver on a free port, with a Chromium profile of its own; both stopped by PID when
/// dropped.
struct Browser {
    driver: Child,
    profile: tempfile::TempDir,
    port: u16,
}

impl Browser {
    fn start() -> Browser {
        for tool in ["chromium", "chromedriver"] {
            assert!(
                which::which(tool).is_ok(),
                "`{tool}` is missing: run scripts/install-deps.sh"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Browser {
            driver,
            profile: tempfile::tempdir().unwrap(),
            port,
        }
    }

    async fn client(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": which::which("chromium").unwrap(),
                "args": [
                    "--headless=new",
                    // root has no sandbox (Chromium refuses to start as root with one)
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            }),
        );
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        signal(self.driver.id(), nix::sys::signal::Signal::SIGTERM);
        let _ = self.driver.wait();
        // A browser chromedriver left (a test that failed before `close`): by its profile.
        let profile = self.profile.path().display().to_string();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&profile)
                && let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>()
            {
                signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// Where the screenshots go: `target/tmp/dashboard/`.
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Waits (`limit` at most) for an element the XPath names, and returns its text. A live page
/// may replace the element between finding and reading it (a stale element): it is found again.
async fn text_of(c: &Client, xpath: &str, limit: Duration) -> String {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let element = match c
            .wait()
            .at_most(left)
            .for_element(Locator::XPath(xpath))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("{xpath}: {e}\n{}", c.source().await.unwrap_or_default()),
        };
        match element.text().await {
            Ok(text) => return text,
            Err(e) if std::time::Instant::now() >= deadline => panic!("{xpath}: {e}"),
            Err(_) => continue,
        }
    }
}

/// A page on another origin of this machine (127.0.0.1, another port: same site, so the
/// dashboard's cookie goes along) whose form posts itself to the dashboard's `down`.
fn cross_origin_page(target: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let html = format!(
        "<!doctype html><form id=\"f\" method=\"post\" action=\"{target}\">\
         <input name=\"confirm\" value=\"x\"></form>\
         <script>document.getElementById('f').submit()</script>"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten().take(4) {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                )
                .as_bytes(),
            );
        }
    });
    format!("http://{addr}/")
}

/// Debian's Prometheus scraping Debian's node_exporter every second, both on free loopback ports
/// with their data in a temp folder; stopped by PID when dropped.
struct Prometheus {
    children: Vec<Child>,
    _dir: tempfile::TempDir,
    url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    fn start() -> Prometheus {
        for tool in ["prometheus", "prometheus-node-exporter"] {
            assert!(
                which::which(tool).is_ok(),
                "`{tool}` is missing: run scripts/install-deps.sh"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let (exporter, prometheus) = (free_port(), free_port());
        let mut children = vec![
            Command::new("prometheus-node-exporter")
                .args([
                    format!("--web.listen-address=127.0.0.1:{exporter}"),
                    "--collector.disable-defaults".into(),
                    "--collector.meminfo".into(),
                    "--collector.cpu".into(),
                    "--collector.filesystem".into(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ];
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{exporter}']\n"
            ),
        )
        .unwrap();
        children.push(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{prometheus}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        Prometheus {
            children,
            _dir: dir,
            url: format!("http://127.0.0.1:{prometheus}"),
        }
    }

    /// Waits until `query` has a sample at a whole second (as the dashboard's range queries
    /// end), a minute at most.
    fn until_sampled(&self, query: &str) {
        let started = Instant::now();
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let out = Command::new("curl")
                .args(["-s", "--get", "--data-urlencode"])
                .arg(format!("query={query}"))
                .args(["--data-urlencode".to_string(), format!("time={now}")])
                .arg(format!("{}/api/v1/query", self.url))
                .output()
                .unwrap();
            let body: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            if body["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "Prometheus never had `{query}`: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        for child in &mut self.children {
            signal(child.id(), nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

/// The charts' panels, as the page titles them (`dashboard::chart::PANELS`).
const PANELS: [&str; 7] = [
    "Requests per second",
    "p95 latency",
    "Projects created per hour",
    "Creation success rate",
    "VM CPU busy",
    "VM memory used",
    "VM disk used",
];

/// Opens the charts page at `url` until every panel has a drawn point (a polyline with points,
/// or a dot), three minutes at most; the page's line saying where they come from.
async fn drawn_charts(c: &Client, url: &str) -> String {
    let started = Instant::now();
    loop {
        c.goto(url).await.unwrap();
        let source = match c.find(Locator::Id("source")).await {
            Ok(source) => source.text().await.unwrap(),
            Err(_) => panic!("no source: {}", c.source().await.unwrap_or_default()),
        };
        let mut blank = Vec::new();
        for panel in PANELS {
            let drawn = c
                .find_all(Locator::XPath(&format!(
                    "//section[h2='{panel}']//*[(local-name()='polyline' and \
                     string-length(normalize-space(@points)) > 0) or local-name()='circle']"
                )))
                .await
                .unwrap();
            if drawn.is_empty() {
                blank.push(panel);
            }
        }
        if blank.is_empty() {
            return source;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "panels without a point after 3 minutes: {blank:?}\n{}",
            c.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// A process's argv, if it runs.
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|ppid| ppid.parse().ok())
        .unwrap()
}

/// Every process's id.
fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// The ssh whose forward the charts' source line names (`…ssh tunnel at http://127.0.0.1:PORT`).
fn tunnel_ssh(source: &str) -> Option<u32> {
    let port = source.rsplit_once("127.0.0.1:")?.1.trim_end_matches('.');
    let forward = format!("127.0.0.1:{port}:127.0.0.1:9090");
    pids()
        .into_iter()
        .find(|pid| alive(*pid) && cmdline(*pid).is_some_and(|argv| argv.contains(&forward)))
}

/// The ssh children of `parent`.
fn ssh_children(parent: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            alive(*pid)
                && cmdline(*pid).is_some_and(|argv| argv.first().is_some_and(|a| a == "ssh"))
                && parent_of(*pid) == parent
        })
        .collect()
}

/// The ssh tunnels `parent` runs (its ssh children forwarding to Prometheus' port).
fn tunnel_ssh_any(parent: u32) -> Vec<u32> {
    ssh_children(parent)
        .into_iter()
        .filter(|pid| {
            cmdline(*pid).is_some_and(|argv| argv.iter().any(|a| a.ends_with(":127.0.0.1:9090")))
        })
        .collect()
}

/// Waits (30 s at most) until `pid` has ended.
fn until_gone(pid: u32) {
    crate::local::until(&format!("ssh {pid} ended"), Duration::from_secs(30), || {
        !alive(pid)
    });
}

#[test]
fn dashboard_in_chromium_over_a_local_ai_stack() {
    let (_serial, deployment, _seen) = crate::local::ai_stack_up();
    let state = deployment.state();
    let id = state.id.clone();
    let id8 = deployment.id8();
    let label = state.label();
    let dashboard = Dashboard::start(deployment.std_cmd(), &[]);
    let cookie = check_guard(&dashboard);
    // The creates once the stack's Prometheus has sampled the creation counters at 0: `increase`
    // over the hour then sees them go up (a first sample after the creates gives 0/0 for the
    // success rate).
    crate::local::until(
        "the creation counters sampled",
        Duration::from_secs(120),
        || {
            !crate::local::prometheus_query(&deployment, "project_creation_attempts_total")
                .is_empty()
        },
    );
    // The list is in the HTML itself: readable without JavaScript.
    let list = http(
        &dashboard.host,
        "GET",
        "/",
        &[("Host", &dashboard.host), ("Cookie", &cookie)],
    );
    assert!(
        list.body.contains(&format!(">{id8}</a>")) && list.body.contains("ai-stack"),
        "{}",
        list.body
    );
    let browser = Browser::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = browser.client().await;
        let base = format!("http://{}", dashboard.host);

        // Signed in by the printed URL; the address bar ends without the token.
        c.goto(&dashboard.url).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().as_str(), format!("{base}/"));
        let row = text_of(
            &c,
            &format!("//table[@id='deployments']//tr[td/a[text()='{id8}']]"),
            Duration::from_secs(10),
        )
        .await;
        assert!(row.contains("ai-stack") && row.contains("local"), "{row}");
        shot(&c, "deployments").await;

        // One deployment: its phases from the journal, with durations, outputs and VMs.
        c.find(Locator::LinkText(&id8))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let phases = text_of(&c, "//table[@id='phases']", Duration::from_secs(10)).await;
        for phase in [
            "validate",
            "infrastructure",
            "network",
            "wait-ssh",
            "platform",
            "application",
            "verify",
        ] {
            assert!(phases.contains(phase), "{phase} in {phases}");
        }
        // each finished phase with its duration, as the CLI writes one (`566ms`, `2.0s`, `3m 04s`)
        let timed = |line: &str| {
            line.split_whitespace().nth(2).is_some_and(|d| {
                d.starts_with(|c: char| c.is_ascii_digit()) && d.ends_with(['s', 'm'])
            })
        };
        assert!(
            phases.lines().filter(|l| l.contains(" done ")).all(timed),
            "durations: {phases}"
        );
        let vms = text_of(&c, "//table[@id='vms']", Duration::from_secs(5)).await;
        assert_eq!(vms.lines().count(), 4, "a header and three VMs: {vms}");
        shot(&c, "deployment").await;

        // A phase's log follows a line written after the page loaded.
        let log = state
            .record(tfgrid_compose::state::Phase::Application)
            .and_then(|r| r.logs.first().cloned())
            .expect("the application phase's log");
        let file = log.file_name().unwrap().to_str().unwrap();
        c.goto(&format!("{base}/d/{id}/log/application/{file}"))
            .await
            .unwrap();
        text_of(&c, "//pre[@id='log']", Duration::from_secs(10)).await;
        let marker = format!("dashboard-follow-{}", std::process::id());
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        writeln!(file, "{marker}").unwrap();
        drop(file);
        text_of(
            &c,
            &format!("//pre[@id='log' and contains(., '{marker}')]"),
            Duration::from_secs(10),
        )
        .await;
        shot(&c, "log").await;

        // `create` from the form: the project's page shows the pipeline as it goes (the test
        // LLM streams answers to "slow" prompts over 7 s), and ends with a link that serves.
        c.goto(&format!("{base}/d/{id}/projects")).await.unwrap();
        shot(&c, "projects-empty").await;
        let form = c.form(Locator::Css("form.create")).await.unwrap();
        form.set_by_name("prompt", "slow portfolio website with dark mode")
            .await
            .unwrap();
        form.set_by_name("name", "dash-portfolio").await.unwrap();
        form.submit().await.unwrap();
        text_of(
            &c,
            "//ol[@id='events']/li[contains(@class, 'live')]",
            Duration::from_secs(60),
        )
        .await;
        shot(&c, "create-progress").await;
        let live = c
            .wait()
            .at_most(Duration::from_secs(300))
            .for_element(Locator::Id("live"))
            .await
            .unwrap();
        let href = live.attr("href").await.unwrap().unwrap();
        let events = text_of(&c, "//ol[@id='events']", Duration::from_secs(5)).await;
        for step in ["generate", "commit", "publish", "verify"] {
            assert!(events.contains(step), "{step} in {events}");
        }
        shot(&c, "create-done").await;
        // The LLM streamed each answer over 7 s: of each run of its progress events, the list
        // shows one row, the latest (tokens so far), as the script kept it while they arrived
        // and as the page is served after; `monitor --json` (the events API) keeps every one.
        let doc = crate::local::stack_json(&deployment, &["--json", "monitor", "dash-portfolio"]);
        let all = doc["events"].as_array().unwrap();
        let progress = |e: &serde_json::Value| e["status"] == "progress";
        let latest: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                progress(e)
                    && !all
                        .get(i + 1)
                        .is_some_and(|n| progress(n) && n["step"] == e["step"])
            })
            .map(|(_, e)| {
                format!(
                    "{} progress {}",
                    e["step"].as_str().unwrap(),
                    e["message"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            all.iter().filter(|e| progress(e)).count() > latest.len() && !latest.is_empty(),
            "runs of progress events to show as one row each: {all:#?}"
        );
        let rows = |list: &str| -> Vec<String> {
            list.lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("progress"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(rows(&events), latest, "followed: {events}");
        c.refresh().await.unwrap();
        let served = text_of(&c, "//ol[@id='events']", Duration::from_secs(10)).await;
        assert_eq!(rows(&served), latest, "served: {served}");
        assert_eq!(
            crate::ai::get_live(&href),
            (200, crate::ai::INDEX.to_string()),
            "{href}"
        );
        c.goto(&format!("{base}/d/{id}/projects")).await.unwrap();
        let projects = text_of(&c, "//table[@id='projects']", Duration::from_secs(10)).await;
        assert!(
            projects.contains("dash-portfolio") && projects.contains("live"),
            "{projects}"
        );
        shot(&c, "projects").await;
        // `delete` from its button: gone from the list, the live URL answers 404.
        c.find(Locator::Css("button[aria-label='delete dash-portfolio']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::XPath("//p[text()='No projects yet.']"))
            .await
            .unwrap();
        let after = c.source().await.unwrap();
        assert!(!after.contains("dash-portfolio"), "{after}");
        assert_eq!(
            crate::ai::get_until(&href, 404).0,
            404,
            "{href} after delete"
        );
        // A second creation, from the CLI: the charts below count both.
        crate::local::stack_cmd(
            &deployment,
            &["create", "bakery landing page", "--name", "bakery"],
            None,
        );

        c.goto(&format!("{base}/d/{id}/providers")).await.unwrap();
        let providers = text_of(&c, "//table[@id='providers']", Duration::from_secs(10)).await;
        assert!(providers.contains("canned"), "{providers}");
        shot(&c, "providers").await;

        // Charts without --prometheus: the stack's own Prometheus, through the dashboard's ssh
        // tunnel to the gateway VM, opened by the first look. Rates need two scrapes after the
        // creates, so the page is asked again until every panel has drawn a point.
        let charts = format!("{base}/d/{id}/charts");
        let source = drawn_charts(&c, &charts).await;
        assert!(
            source.contains("gateway VM") && source.contains("ssh tunnel at http://127.0.0.1:"),
            "{source}"
        );
        shot(&c, "charts").await;
        // The tunnel is the dashboard's child, one for the deployment however often the page is
        // opened; one that dies is opened again on the next look.
        let first = tunnel_ssh(&source).expect("the tunnel's ssh runs");
        assert_eq!(parent_of(first), dashboard.pid());
        assert_eq!(drawn_charts(&c, &charts).await, source);
        assert_eq!(tunnel_ssh_any(dashboard.pid()), [first]);
        signal(first, nix::sys::signal::Signal::SIGTERM);
        until_gone(first);
        let again = drawn_charts(&c, &charts).await;
        let second = tunnel_ssh(&again).expect("a new tunnel's ssh runs");
        assert_ne!(first, second, "{again}");

        // A dashboard SIGKILLed (no chance to stop anything) takes its tunnel along: its ssh
        // reads the dashboard's stdin to its end.
        let killed = Dashboard::start(deployment.std_cmd(), &[]);
        c.goto(&killed.url).await.unwrap();
        let source = drawn_charts(&c, &format!("http://{}/d/{id}/charts", killed.host)).await;
        let orphan = tunnel_ssh(&source).expect("the killed dashboard's tunnel runs");
        signal(killed.pid(), nix::sys::signal::Signal::SIGKILL);
        drop(killed);
        until_gone(orphan);

        // --prometheus overrides: the page says which Prometheus (Debian's, scraping a real
        // node_exporter) it drew from, and no tunnel is opened.
        let prometheus = Prometheus::start();
        prometheus.until_sampled("node_memory_MemAvailable_bytes");
        let charted = Dashboard::start(
            deployment.std_cmd(),
            &["--prometheus", prometheus.url.as_str()],
        );
        c.goto(&charted.url).await.unwrap();
        c.goto(&format!("http://{}/d/{id}/charts", charted.host))
            .await
            .unwrap();
        let memory = text_of(
            &c,
            "//section[h2='VM memory used']",
            Duration::from_secs(10),
        )
        .await;
        assert!(memory.contains('%'), "{memory}");
        c.find(Locator::XPath(
            "//section[h2='VM memory used']//*[local-name()='polyline']",
        ))
        .await
        .unwrap();
        let source = text_of(&c, "//span[@id='source']", Duration::from_secs(5)).await;
        assert_eq!(source, format!("{} (--prometheus)", prometheus.url));
        shot(&c, "charts-from-prometheus-flag").await;
        let ssh = ssh_children(charted.pid());
        assert!(ssh.is_empty(), "a tunnel with --prometheus: {ssh:?}");
        drop(charted);
        drop(prometheus);

        c.goto(&format!("{base}/patterns")).await.unwrap();
        let patterns = text_of(&c, "//table[@id='patterns']", Duration::from_secs(10)).await;
        assert!(
            patterns.contains("local") && patterns.contains("ai-stack"),
            "{patterns}"
        );
        shot(&c, "patterns").await;

        // Phone width: nothing wider than the screen but the tables' own scroll boxes.
        c.set_window_size(390, 844).await.unwrap();
        for page in ["/", &format!("/d/{id}"), &format!("/d/{id}/projects")] {
            c.goto(&format!("{base}{page}")).await.unwrap();
            let fits = c
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(fits, serde_json::json!(true), "{page} at 390 px");
        }
        shot(&c, "phone-deployment-projects").await;
        c.set_window_size(1280, 1000).await.unwrap();

        // A page of another origin on this machine posts to `down`: refused, nothing destroyed.
        let evil = cross_origin_page(&format!("{base}/d/{id}/down"));
        c.goto(&evil).await.unwrap();
        let refused = text_of(
            &c,
            "//body[contains(., 'refused')]",
            Duration::from_secs(10),
        )
        .await;
        assert!(refused.contains("Origin"), "{refused}");
        assert!(
            deployment
                .app
                .join(".tfgrid-compose/default/state.yaml")
                .exists()
        );

        // `down`: a wrong confirmation destroys nothing; the deployment's `app:env` does.
        c.goto(&format!("{base}/d/{id}/down")).await.unwrap();
        shot(&c, "down").await;
        let form = c.form(Locator::Css("form.confirm")).await.unwrap();
        form.set_by_name("confirm", "yes").await.unwrap();
        form.submit().await.unwrap();
        let wrong = text_of(&c, "//p[@role='alert']", Duration::from_secs(10)).await;
        assert!(wrong.contains("nothing was destroyed"), "{wrong}");
        assert!(
            deployment
                .app
                .join(".tfgrid-compose/default/state.yaml")
                .exists()
        );
        let form = c.form(Locator::Css("form.confirm")).await.unwrap();
        form.set_by_name("confirm", &label).await.unwrap();
        form.submit().await.unwrap();
        // The answer is the redirect to the deployment's page (its status, or that it is gone
        // when `down` was quicker still): the dashboard took the request.
        text_of(
            &c,
            "//span[@id='status'] | //p[@role='alert']",
            Duration::from_secs(30),
        )
        .await;
        c.close().await.unwrap();
    });
    // `down` runs in the dashboard; the deployment leaves the registry when it is done.
    let started = Instant::now();
    while deployment
        .app
        .join(".tfgrid-compose/default/state.yaml")
        .exists()
    {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "down from the dashboard never finished"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Stopped (SIGTERM), the dashboard stops its tunnel and waits for it.
    let tunnel = tunnel_ssh_any(dashboard.pid());
    let mut dashboard = dashboard;
    let (_, status) = dashboard.stop();
    assert!(status.success(), "{status:?}");
    for pid in tunnel {
        assert!(!alive(pid), "ssh {pid} outlived the dashboard");
    }
    crate::local::assert_nothing_left(&id8);
    #[allow(clippy::print_stderr, reason = "where the screenshots are, for people")]
    {
        eprintln!("screenshots in {}", shots().display());
    }
}
