//! The AI stack on this machine with the real parts: nginx (sites and git smart HTTP through
//! fcgiwrap + git http-backend), git, the gateway and agent services of the binary, and a test
//! LLM speaking the chat-completions API with canned answers (one broken at first, so the fixer
//! loop runs). `create` → live page and cloneable repo → `projects` → `monitor` → `delete` (404,
//! clone fails); API auth, validation and rate limit; restarts; 10 concurrent creates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789abcdef";
/// nginx and fcgiwrap live in /usr/sbin, which a non-login PATH may lack.
const SBIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub(crate) const LLM_KEY: &str = "sk-llm-canary-key-9f8e7d";

/// Four distinct free ports: all bound at once, then released.
fn free_ports() -> (u16, u16, u16, u16) {
    let l: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let p: Vec<u16> = l.iter().map(|l| l.local_addr().unwrap().port()).collect();
    (p[0], p[1], p[2], p[3])
}

/// The stacks are heavy (nginx reloads, ten pipelines); one at a time.
static ONE_STACK: Mutex<()> = Mutex::new(());

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("tfgrid-compose")
}

/// Children killed (by PID) when the stack is dropped.
struct Stack {
    _one: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    web: u16,
    gateway: u16,
    agent: u16,
    children: Vec<(String, Child)>,
    llm: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Drop for Stack {
    /// SIGTERM, so that nginx's master takes its workers down with it; SIGKILL after 5 s.
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none()
                && started.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) const INDEX: &str = "<!doctype html><html><head><link rel=\"stylesheet\" href=\"css/site.css\"></head><body class=\"dark\"><h1>Portfolio</h1><a href=\"about.html\">About</a></body></html>";

/// Canned answers: the first answer to a prompt with "portfolio" links a stylesheet it does not
/// include; the answer to the fixer's message includes it. "slow" prompts answer after 3 s.
fn answer(body: &serde_json::Value) -> String {
    let messages = body["messages"].as_array().unwrap();
    let last = messages.last().unwrap()["content"].as_str().unwrap_or("");
    let first = messages[1]["content"].as_str().unwrap_or("");
    let fixing = last.contains("failed these checks");
    let mut files = vec![
        serde_json::json!({"path": "index.html", "content": INDEX}),
        serde_json::json!({"path": "about.html", "content": "<p>About me</p>"}),
    ];
    if fixing || !first.contains("portfolio") {
        files.push(serde_json::json!({"path": "css/site.css", "content": "body.dark { background: #111; color: #eee; }"}));
    }
    serde_json::json!({"files": files}).to_string()
}

/// Serves `app` on `listener` from a thread of its own, for the rest of the test run.
fn serve_in_thread(listener: TcpListener, app: impl FnOnce() -> axum::Router + Send + 'static) {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            axum::serve(tokio::net::TcpListener::from_std(listener).unwrap(), app())
                .await
                .unwrap()
        });
    });
}

/// The test LLM on `listener`, recording each request's Authorization header and body.
pub(crate) fn start_llm(listener: TcpListener, seen: Arc<Mutex<Vec<serde_json::Value>>>) {
    serve_in_thread(listener, move || {
        axum::Router::new().route(
                "/v1/chat/completions",
                axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<serde_json::Value>| {
                    let seen = seen.clone();
                    async move {
                        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        seen.lock().unwrap().push(serde_json::json!({"auth": auth, "body": body.clone()}));
                        let first = body["messages"][1]["content"].as_str().unwrap_or("").to_string();
                        if first.contains("slow") {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        axum::Json(serde_json::json!({"id": "x", "object": "chat.completion", "model": body["model"], "choices": [{"index": 0, "message": {"role": "assistant", "content": answer(&body)}, "finish_reason": "stop"}]}))
                    }
                }),
            )
    });
}

fn wait_http(url: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if std::net::TcpStream::connect(
            url.trim_start_matches("http://").split('/').next().unwrap(),
        )
        .is_ok()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} never answered");
}

/// One HTTP call through curl: `(status, body)`; `authorization` is the header's whole value.
fn request(
    method: &str,
    url: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut args = vec![
        "-s".to_string(),
        "-o".into(),
        "-".into(),
        "-w".into(),
        "\n%{http_code}".into(),
        "-X".into(),
        method.into(),
    ];
    if let Some(a) = authorization {
        args.extend(["-H".into(), format!("Authorization: {a}")]);
    }
    if let Some(b) = body {
        args.extend([
            "-H".into(),
            "Content-Type: application/json".into(),
            "--data-binary".into(),
            b.into(),
        ]);
    }
    args.push(url.into());
    let out = Command::new("curl").args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}

pub(crate) fn get(url: &str, token: Option<&str>) -> (u16, String) {
    request(
        "GET",
        url,
        token.map(|t| format!("Bearer {t}")).as_deref(),
        None,
    )
}

/// A live page: nginx applies a reload asynchronously (new workers start, old ones drain), so a
/// page published a moment ago may take a few hundred milliseconds to answer everywhere.
pub(crate) fn get_live(url: &str) -> (u16, String) {
    get_until(url, 200)
}

pub(crate) fn get_until(url: &str, want: u16) -> (u16, String) {
    let started = Instant::now();
    loop {
        let answer = get(url, None);
        if answer.0 == want || started.elapsed() > Duration::from_secs(3) {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post(url: &str, token: &str, body: &str) -> (u16, String) {
    request("POST", url, Some(&format!("Bearer {token}")), Some(body))
}

impl Stack {
    fn start() -> Stack {
        let one = ONE_STACK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::Builder::new()
            .prefix("aistack")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        let (web, gateway, agent, llm_port) = free_ports();
        for sub in ["tmp", "repos", "gw", "agent", "logs"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("token"), TOKEN).unwrap();
        std::fs::write(d.join("llm-key"), LLM_KEY).unwrap();
        let exec_path = String::from_utf8(
            Command::new("git")
                .arg("--exec-path")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let backend = Path::new(exec_path.trim()).join("git-http-backend");
        let p = d.display();
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "daemon off;\nuser root root;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{ worker_connections 256; }}\n\
                 http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/tmp/body; proxy_temp_path {p}/tmp/proxy;\n  fastcgi_temp_path {p}/tmp/fastcgi; uwsgi_temp_path {p}/tmp/uwsgi; scgi_temp_path {p}/tmp/scgi;\n\
                 client_max_body_size 0;\n  types {{ text/html html; text/css css; text/javascript js; }}\n\
                 server {{\n    listen 127.0.0.1:{web};\n    include {p}/gw/routes/*.conf;\n\
                 location ~ ^/git(/.*)$ {{\n      include /etc/nginx/fastcgi_params;\n      fastcgi_param SCRIPT_FILENAME {};\n      fastcgi_param GIT_PROJECT_ROOT {p}/repos;\n      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n      fastcgi_param PATH_INFO $1;\n      fastcgi_pass unix:{p}/fcgiwrap.sock;\n    }}\n  }}\n}}\n",
                backend.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(d.join("gw/routes")).unwrap();
        std::fs::write(
            d.join("gateway.yaml"),
            format!("listen: 127.0.0.1:{gateway}\ntoken_file: {p}/token\nstate_dir: {p}/gw\nnginx: [nginx, -p, {p}, -c, {p}/nginx.conf, -e, {p}/error.log]\nrate_limit: 500\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("agent.yaml"),
            format!(
                "listen: 127.0.0.1:{agent}\ntoken_file: {p}/token\ndatabase: {p}/agent/projects.db\nmax_concurrent_projects: 3\nrate_limit: 40\n\
                 llm:\n  - base_url: http://127.0.0.1:1/v1\n    model: unreachable\n  - base_url: http://127.0.0.1:{llm_port}/v1\n    model: canned\n    api_key_file: {p}/llm-key\n\
                 git:\n  kind: plain\n  root: {p}/repos\n  url: http://127.0.0.1:{web}/git\n  org: projects\n\
                 gateway:\n  api: http://127.0.0.1:{gateway}\n  token_file: {p}/token\n  public_url: http://127.0.0.1:{web}\n"
            ),
        )
        .unwrap();
        let llm = Arc::new(Mutex::new(Vec::new()));
        start_llm(
            TcpListener::bind(("127.0.0.1", llm_port)).unwrap(),
            llm.clone(),
        );
        let p = p.to_string();
        let mut stack = Stack {
            _one: one,
            dir,
            web,
            gateway,
            agent,
            children: Vec::new(),
            llm,
        };
        let fcgi = Command::new("fcgiwrap")
            .env("PATH", SBIN_PATH)
            .args(["-s", &format!("unix:{p}/fcgiwrap.sock")])
            .stdin(Stdio::null())
            .spawn()
            .expect("fcgiwrap (scripts/install-deps.sh installs it)");
        stack.children.push(("fcgiwrap".into(), fcgi));
        let nginx = Command::new("nginx")
            .env("PATH", SBIN_PATH)
            .args([
                "-p",
                &p.to_string(),
                "-c",
                &format!("{p}/nginx.conf"),
                "-e",
                &format!("{p}/error.log"),
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx (scripts/install-deps.sh installs it)");
        stack.children.push(("nginx".into(), nginx));
        // An HTTP answer, not just a bound socket: a worker is running. A reload signalled while
        // nginx's first worker starts can leave that worker serving the old configuration.
        let started = Instant::now();
        while get(&format!("http://127.0.0.1:{web}/"), None).0 == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nginx never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stack.start_service("gateway");
        stack.start_service("agent");
        stack
    }

    fn start_service(&mut self, which: &str) {
        let d = self.dir.path();
        let log = std::fs::File::create(
            d.join("logs")
                .join(format!("{which}-{}.log", self.children.len())),
        )
        .unwrap();
        let child = Command::new(bin())
            .args(["serve", which, "--config"])
            .arg(d.join(format!("{which}.yaml")))
            .env_clear()
            .env("PATH", SBIN_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((which.into(), child));
        wait_http(&format!(
            "http://127.0.0.1:{}/",
            if which == "gateway" {
                self.gateway
            } else {
                self.agent
            }
        ));
    }

    fn stop_service(&mut self, which: &str, hard: bool) {
        let i = self.children.iter().position(|(n, _)| n == which).unwrap();
        let (_, mut child) = self.children.remove(i);
        if hard {
            child.kill().unwrap();
        } else {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
        }
        let status = child.wait().unwrap();
        assert!(
            hard || status.success(),
            "{which} shut down gracefully: {status:?}"
        );
    }

    fn agent_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.agent)
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(bin())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env("TFGRID_COMPOSE_AGENT_URL", self.agent_url())
            .env("TFGRID_COMPOSE_AGENT_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn project(&self, name: &str) -> serde_json::Value {
        let (code, body) = get(
            &format!("{}/api/v1/projects/{name}", self.agent_url()),
            Some(TOKEN),
        );
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["project"].clone()
    }

    fn wait_status(&self, name: &str, want: &[&str]) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let p = self.project(name);
            if want.contains(&p["status"].as_str().unwrap_or("")) {
                return p;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{name} stuck: {p}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub(crate) fn clone(url: &str, into: &Path) -> bool {
    Command::new("git")
        .args(["clone", "-q", url])
        .arg(into)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn create_publishes_a_checked_site_and_delete_removes_every_part() {
    let mut stack = Stack::start();
    let (code, out, err) = stack.cli(&["create", "portfolio website with dark mode"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for step in [
        "Generating code with AI…",
        "Creating Git repository…",
        "Deploying to gateway…",
    ] {
        assert!(err.contains(step), "{err}");
    }
    assert!(
        err.contains("check: attempt 1:") && err.contains("css/site.css"),
        "the first answer failed its check: {err}"
    );
    let name = "portfolio-website-dark-mode";
    let live = format!("http://127.0.0.1:{}/{name}/", stack.web);
    let repo = format!("http://127.0.0.1:{}/git/projects/{name}.git", stack.web);
    assert!(
        out.contains(&format!("Project created: {name}"))
            && out.contains(&format!("Live site:  {live}"))
            && out.contains(&format!("Repository: {repo}")),
        "{out}"
    );

    // The host fetches the live page, through the real nginx.
    let (code, body) = get_live(&live);
    assert_eq!((code, body.as_str()), (200, INDEX));
    assert_eq!(get_live(&format!("{live}css/site.css")).0, 200);
    // The repository clones with the generated files.
    let work = stack.dir.path().join("clone");
    assert!(clone(&repo, &work));
    assert_eq!(
        std::fs::read_to_string(work.join("index.html")).unwrap(),
        INDEX
    );
    assert!(work.join("css/site.css").is_file() && work.join("about.html").is_file());

    // The LLM: the unreachable first provider was skipped, the key went only in the header, and
    // the fixer's message named the problem.
    let seen = stack.llm.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one broken answer, one fixed");
    assert!(
        seen.iter()
            .all(|r| r["auth"] == format!("Bearer {LLM_KEY}"))
    );
    assert!(
        seen[1]["body"]
            .to_string()
            .contains("links to `css/site.css`, which is not in the project")
    );

    // projects, monitor.
    let (code, out, _) = stack.cli(&["projects", "--json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["projects"][0]["name"], name);
    assert_eq!(doc["projects"][0]["status"], "live");
    assert_eq!(doc["projects"][0]["attempts"], 2);
    let (code, out, _) = stack.cli(&["monitor", name]);
    assert_eq!(code, 0);
    for want in [
        "status    live",
        "generate  started",
        "check     failed",
        "check     done",
        "commit    done",
        "publish   done",
        "verify    done",
    ] {
        assert!(out.contains(want), "no `{want}` in\n{out}");
    }

    // No secret in the agent's database, logs or the gateway's files.
    let mut stack_files = Vec::new();
    crate::grid::all_files(stack.dir.path(), &mut stack_files);
    for f in stack_files
        .iter()
        .filter(|f| !f.ends_with("llm-key") && !f.ends_with("token"))
    {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned();
        assert!(
            !text.contains(LLM_KEY) && !text.contains(TOKEN),
            "secret in {}",
            f.display()
        );
    }

    // Restart both services: the record and the route survive.
    stack.stop_service("agent", false);
    stack.stop_service("gateway", false);
    stack.start_service("gateway");
    stack.start_service("agent");
    assert_eq!(stack.project(name)["status"], "live");
    let (code, routes) = get(
        &format!("http://127.0.0.1:{}/api/v1/routes", stack.gateway),
        Some(TOKEN),
    );
    assert_eq!(code, 200);
    assert!(routes.contains(name), "{routes}");
    assert_eq!(get_live(&live).0, 200);

    // delete: route, files, repo, record, each reported; then 404 and the clone fails.
    let (code, _, err) = stack.cli(&["delete", name]);
    assert_eq!(code, 2, "stdin is not a terminal: --yes is required: {err}");
    let (code, _, err) = stack.cli(&["delete", name, "--yes"]);
    assert_eq!(code, 0, "{err}");
    for part in ["route", "site", "repo", "record"] {
        assert!(
            err.contains(&format!("Removed {part} of `{name}`")),
            "{err}"
        );
    }
    assert_eq!(get_until(&live, 404).0, 404);
    assert!(!clone(&repo, &stack.dir.path().join("clone2")));
    assert!(
        !stack.dir.path().join(format!("gw/www/{name}")).exists()
            && !stack
                .dir
                .path()
                .join(format!("repos/projects/{name}.git"))
                .exists()
    );
    let (_, out, _) = stack.cli(&["projects", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["projects"],
        serde_json::json!([])
    );
}

#[test]
fn the_apis_refuse_bad_tokens_bad_names_and_floods_and_queue_concurrent_creates() {
    let mut stack = Stack::start();
    let api = format!("{}/api/v1/projects", stack.agent_url());
    let gw = format!("http://127.0.0.1:{}/api/v1/routes", stack.gateway);
    assert_eq!(get(&api, None).0, 401);
    assert_eq!(get(&api, Some("wrong-token-wrong-token-0000")).0, 401);
    assert_eq!(get(&gw, None).0, 401);
    assert_eq!(
        get(&format!("http://127.0.0.1:{}/metrics", stack.gateway), None).0,
        401
    );
    for body in [
        r#"{"prompt": "x", "name": "../etc"}"#.to_string(),
        r#"{"prompt": "x", "name": "a;rm -rf /"}"#.to_string(),
        r#"{"prompt": "x", "name": "$(touch /tmp/pwned)"}"#.to_string(),
        format!(r#"{{"prompt": "x", "name": "{}"}}"#, "a".repeat(41)),
        r#"{"prompt": ""}"#.to_string(),
        format!(r#"{{"prompt": "{}"}}"#, "y".repeat(5000)),
        "not json".to_string(),
    ] {
        let (code, answer) = post(&api, TOKEN, &body);
        assert_eq!(code, 400, "{body}: {answer}");
    }
    for body in [
        r#"{"path": "../x", "backend": {"static": "x"}}"#,
        r#"{"path": "ok", "backend": {"upstream": "http://x;y/"}}"#,
        r#"{"path": "ok", "backend": {"static": "nosuchsite"}}"#,
    ] {
        assert_eq!(post(&gw, TOKEN, body).0, 400, "{body}");
    }
    let (code, _) = get(&format!("{}/../etc", stack.agent_url()), Some(TOKEN));
    assert!(code == 404 || code == 400);
    assert_eq!(
        std::fs::read_dir(stack.dir.path().join("repos"))
            .unwrap()
            .count(),
        0,
        "nothing on disk"
    );
    assert_eq!(
        std::fs::read_dir(stack.dir.path().join("gw/www"))
            .unwrap()
            .count(),
        0
    );
    assert!(!Path::new("/tmp/pwned").exists());

    // A flood gets 429 (the agent allows 40/s, bursts of 80): 8 clients at once, so that the rate
    // is above the limit however slow each request is on a busy machine.
    let health = format!("{}/health", stack.agent_url());
    let codes: Vec<u16> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (0..25)
                        .map(|_| get(&health, Some(TOKEN)).0)
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    assert!(codes.contains(&429), "{codes:?}");
    assert!(codes.contains(&200));
    std::thread::sleep(Duration::from_secs(3));
    let (_, metrics) = get(&format!("{}/metrics", stack.agent_url()), Some(TOKEN));
    assert!(
        metrics.contains("tfgrid_agent_requests_total{code=\"429\"}")
            && metrics.contains("tfgrid_agent_requests_total{code=\"401\"}"),
        "{metrics}"
    );

    // Ten creates at once: at most three run, all end live, none touches another's files.
    let names: Vec<String> = (0..10).map(|i| format!("site-{i}")).collect();
    for n in &names {
        let (code, answer) = post(
            &api,
            TOKEN,
            &format!(r#"{{"prompt": "a small page number {n}", "name": "{n}"}}"#),
        );
        assert_eq!(code, 202, "{answer}");
    }
    let (code, _) = post(&api, TOKEN, r#"{"prompt": "again", "name": "site-0"}"#);
    assert_eq!(code, 409, "names are unique");
    for n in &names {
        let p = stack.wait_status(n, &["live", "failed"]);
        assert_eq!(p["status"], "live", "{p}");
        let (code, body) = get_live(&format!("http://127.0.0.1:{}/{n}/", stack.web));
        if code != 200 {
            let mut logs = String::new();
            for e in std::fs::read_dir(stack.dir.path().join("logs"))
                .unwrap()
                .flatten()
            {
                logs += &format!(
                    "== {}\n{}",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                );
            }
            let routes: Vec<_> = std::fs::read_dir(stack.dir.path().join("gw/routes"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            let ctl = std::fs::read_to_string(stack.dir.path().join("gw/nginx-control.log"))
                .unwrap_or_default();
            panic!(
                "{n}: {code}\n{routes:?}\n{ctl}\n{}\n{logs}",
                std::fs::read_to_string(stack.dir.path().join("error.log")).unwrap_or_default()
            );
        }
        assert_eq!(body, INDEX);
    }

    // An agent killed mid-creation: after the restart the project is failed with what was undone,
    // never left half-published.
    let (code, _) = post(
        &api,
        TOKEN,
        r#"{"prompt": "a slow page", "name": "slow-one"}"#,
    );
    assert_eq!(code, 202);
    stack.wait_status("slow-one", &["generating"]);
    stack.stop_service("agent", true);
    stack.start_service("agent");
    let p = stack.wait_status("slow-one", &["failed", "live"]);
    assert_eq!(p["status"], "failed");
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("interrupted by a restart during `generating`"),
        "{p}"
    );
    assert_eq!(
        get_until(&format!("http://127.0.0.1:{}/slow-one/", stack.web), 404).0,
        404
    );
    assert!(
        !stack
            .dir
            .path()
            .join("repos/projects/slow-one.git")
            .exists()
    );
}

/// A Gitea stand-in speaking the documented endpoints the `gitea` client uses, recording each
/// request: `POST /api/v1/orgs/{org}/repos` (201 with `clone_url`, 409 when taken) and
/// `DELETE /api/v1/repos/{owner}/{repo}` (204, 404 when missing, 500 for `broken`).
fn start_fake_gitea(seen: Arc<Mutex<Vec<serde_json::Value>>>) -> u16 {
    use axum::extract::Path as P;
    use axum::http::{HeaderMap, StatusCode};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let repos = Arc::new(Mutex::new(std::collections::BTreeSet::<String>::new()));
    serve_in_thread(listener, move || {
        let (s1, s2, r1, r2) = (seen.clone(), seen, repos.clone(), repos);
        axum::Router::new()
            .route(
                "/api/v1/orgs/{org}/repos",
                axum::routing::post(move |P(org): P<String>, headers: HeaderMap, axum::Json(body): axum::Json<serde_json::Value>| async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    s1.lock().unwrap().push(serde_json::json!({"method": "POST", "path": format!("/api/v1/orgs/{org}/repos"), "auth": auth, "body": body}));
                    let name = body["name"].as_str().unwrap_or("").to_string();
                    if !r1.lock().unwrap().insert(format!("{org}/{name}")) {
                        return (StatusCode::CONFLICT, axum::Json(serde_json::json!({"message": "The repository with the same name already exists."})));
                    }
                    let clone_url = format!("https://git.example.test/{org}/{name}.git");
                    (StatusCode::CREATED, axum::Json(serde_json::json!({"id": 1, "name": name, "full_name": format!("{org}/{name}"), "clone_url": clone_url})))
                }),
            )
            .route(
                "/api/v1/repos/{owner}/{repo}",
                axum::routing::delete(move |P((owner, repo)): P<(String, String)>, headers: HeaderMap| async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    s2.lock().unwrap().push(serde_json::json!({"method": "DELETE", "path": format!("/api/v1/repos/{owner}/{repo}"), "auth": auth}));
                    if repo == "broken" {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else if r2.lock().unwrap().remove(&format!("{owner}/{repo}")) {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::NOT_FOUND
                    }
                }),
            )
    });
    port
}

#[test]
fn the_gitea_client_creates_and_deletes_through_the_documented_endpoints() {
    use tfgrid_compose::ai::githost::{GitConfig, GitHost};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let port = start_fake_gitea(seen.clone());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("gitea.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let host = GitHost::new(GitConfig::Gitea {
        url: format!("http://127.0.0.1:{port}/"),
        org: "projects".into(),
        token_file,
    })
    .unwrap();
    let log = dir.path().join("git.log");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The clone URL shown is the host's answer; pushes go under the configured base.
        assert_eq!(
            host.create("site-a", &log).await.unwrap(),
            "https://git.example.test/projects/site-a.git"
        );
        assert_eq!(
            host.repo_url("site-a"),
            format!("http://127.0.0.1:{port}/projects/site-a.git")
        );
        let taken = host.create("site-a", &log).await.unwrap_err().to_string();
        assert!(
            taken.contains("Gitea refused to create `projects/site-a`: HTTP 409")
                && !taken.contains(TOKEN),
            "{taken}"
        );
        host.delete("site-a").await.unwrap();
        host.delete("site-a")
            .await
            .expect("a repository that is not there counts as removed");
        let broken = host.delete("broken").await.unwrap_err().to_string();
        assert!(
            broken.contains("HTTP 500") && !broken.contains(TOKEN),
            "{broken}"
        );
    });
    let seen = seen.lock().unwrap().clone();
    let calls: Vec<String> = seen
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["method"].as_str().unwrap(),
                c["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            "POST /api/v1/orgs/projects/repos",
            "POST /api/v1/orgs/projects/repos",
            "DELETE /api/v1/repos/projects/site-a",
            "DELETE /api/v1/repos/projects/site-a",
            "DELETE /api/v1/repos/projects/broken"
        ]
    );
    assert!(
        seen.iter().all(|c| c["auth"] == format!("token {TOKEN}")),
        "{seen:?}"
    );
    assert_eq!(
        seen[0]["body"],
        serde_json::json!({"name": "site-a", "private": false, "auto_init": false, "default_branch": "main"})
    );
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(TOKEN)
    );
}

/// `serve git` answers the same endpoints as Gitea, with its token, and refuses bad names.
#[test]
fn serve_git_answers_the_gitea_endpoints_and_refuses_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(d.join("token"), TOKEN).unwrap();
    std::fs::write(
        d.join("git.yaml"),
        format!("listen: 127.0.0.1:{port}\ntoken_file: {0}/token\nroot: {0}/repos\npublic_url: http://gw.test/git/\nrate_limit: 200\n", d.display()),
    )
    .unwrap();
    /// Killed when the test ends, even by a failed assertion.
    struct Service(Child);
    impl Drop for Service {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut service = Service(
        Command::new(bin())
            .args(["serve", "git", "--config"])
            .arg(d.join("git.yaml"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}/api/v1");
    wait_http(&base);
    let call = |method: &str, path: &str, auth: Option<&str>, body: Option<&str>| {
        request(method, &format!("{base}{path}"), auth, body)
    };
    let bearer = format!("Bearer {TOKEN}");
    let gitea = format!("token {TOKEN}");
    assert_eq!(
        call(
            "POST",
            "/orgs/projects/repos",
            None,
            Some(r#"{"name":"site"}"#)
        )
        .0,
        401
    );
    assert_eq!(
        call(
            "POST",
            "/orgs/projects/repos",
            Some("token wrong-token-0123456789"),
            Some(r#"{"name":"site"}"#)
        )
        .0,
        401
    );
    let (code, body) = call(
        "POST",
        "/orgs/projects/repos",
        Some(&gitea),
        Some(r#"{"name":"site","private":false,"auto_init":false,"default_branch":"main"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let repo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(repo["clone_url"], "http://gw.test/git/projects/site.git");
    assert_eq!(repo["full_name"], "projects/site");
    let config = Command::new("git")
        .args(["-C"])
        .arg(d.join("repos/projects/site.git"))
        .args(["config", "http.receivepack"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&config.stdout).trim(), "true");
    assert_eq!(
        call(
            "POST",
            "/orgs/projects/repos",
            Some(&bearer),
            Some(r#"{"name":"site"}"#)
        )
        .0,
        409
    );
    for bad in [
        r#"{"name":"../x"}"#,
        r#"{"name":"a;rm -rf /"}"#,
        r#"{"name":"Site"}"#,
        r#"{"name":"x","default_branch":"master"}"#,
        r#"{"nom":"x"}"#,
    ] {
        assert_eq!(
            call("POST", "/orgs/projects/repos", Some(&bearer), Some(bad)).0,
            422,
            "{bad}"
        );
    }
    assert_eq!(
        call(
            "POST",
            "/orgs/Bad_Org/repos",
            Some(&bearer),
            Some(r#"{"name":"x"}"#)
        )
        .0,
        422
    );
    let on_disk: Vec<String> = std::fs::read_dir(d.join("repos"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        on_disk
            .iter()
            .all(|n| n == "projects" || n.starts_with('.')),
        "{on_disk:?}"
    );
    assert_eq!(
        std::fs::read_dir(d.join("repos/projects")).unwrap().count(),
        1
    );
    assert_eq!(
        call("GET", "/repos/projects/site", Some(&bearer), None).0,
        200
    );
    assert_eq!(call("GET", "/version", Some(&bearer), None).0, 200);
    assert_eq!(
        call("DELETE", "/repos/projects/site", Some(&gitea), None).0,
        204
    );
    assert!(!d.join("repos/projects/site.git").exists());
    assert_eq!(
        call("DELETE", "/repos/projects/site", Some(&gitea), None).0,
        404
    );
    assert_eq!(
        call("GET", "/repos/projects/site", Some(&bearer), None).0,
        404
    );
    let _ = Command::new("kill")
        .args(["-TERM", &service.0.id().to_string()])
        .status();
    assert!(
        service.0.wait().unwrap().success(),
        "serve git stops cleanly on SIGTERM"
    );
}
