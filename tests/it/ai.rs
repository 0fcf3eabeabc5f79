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
/// The read-only token of `/metrics`.
const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";
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
/// include; the answer to the fixer's message includes it. "slow" prompts answer after 3 s, or
/// streamed over 7 s when asked for a stream ([`streamed`]).
fn answer(body: &serde_json::Value) -> String {
    let messages = body["messages"].as_array().unwrap();
    let last = messages.last().unwrap()["content"].as_str().unwrap_or("");
    let first = messages[1]["content"].as_str().unwrap_or("");
    let fixing = last.contains("failed these checks");
    let request = first.trim_start_matches("Build this website: ");
    let mut files = vec![
        serde_json::json!({"path": "index.html", "content": INDEX}),
        serde_json::json!({"path": "about.html", "content": format!("<p>About: {request}</p>")}),
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
        axum::Router::new()
            .route(
                "/v1/models",
                axum::routing::get(|| async { axum::Json(serde_json::json!({"object": "list", "data": [{"id": "canned", "object": "model"}]})) }),
            )
            .route(
                "/v1/chat/completions",
                axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<serde_json::Value>| {
                    let seen = seen.clone();
                    async move {
                        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        seen.lock().unwrap().push(serde_json::json!({"auth": auth, "body": body.clone()}));
                        let first = body["messages"][1]["content"].as_str().unwrap_or("").to_string();
                        if first.contains("slow") && body["stream"] == true {
                            return streamed(answer(&body));
                        }
                        if first.contains("slow") {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        axum::response::IntoResponse::into_response(axum::Json(serde_json::json!({"id": "x", "object": "chat.completion", "model": body["model"], "choices": [{"index": 0, "message": {"role": "assistant", "content": answer(&body)}, "finish_reason": "stop"}]})))
                    }
                }),
            )
    });
}

/// `text` as a chat completion's event stream: 28 pieces 250 ms apart, then its end: 7 s at
/// least, so that the client reports its progress (every 2 s) several times for one answer.
fn streamed(text: String) -> axum::response::Response {
    use futures_util::StreamExt as _;
    let chars: Vec<char> = text.chars().collect();
    let mut events: Vec<String> = chars
        .chunks(chars.len().div_ceil(28).max(1))
        .map(|piece| {
            let piece: String = piece.iter().collect();
            let chunk = serde_json::json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
            format!("data: {chunk}\n\n")
        })
        .collect();
    let end = serde_json::json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    events.push(format!("data: {end}\n\ndata: [DONE]\n\n"));
    let body = futures_util::stream::iter(events).then(|event| async move {
        tokio::time::sleep(Duration::from_millis(250)).await;
        Ok::<_, std::convert::Infallible>(event)
    });
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from_stream(body))
        .unwrap()
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
pub(crate) fn request(
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

/// `n` GETs of `url` by one curl on one connection: the status of each.
fn get_many(url: &str, token: &str, n: usize) -> Vec<u16> {
    let mut args = vec![
        "-s".to_string(),
        "-w".into(),
        "%{http_code}\n".into(),
        "-H".into(),
        format!("Authorization: Bearer {token}"),
    ];
    for _ in 0..n {
        args.extend(["-o".into(), "/dev/null".into(), url.to_string()]);
    }
    let out = Command::new("curl").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or(0))
        .collect()
}

fn post(url: &str, token: &str, body: &str) -> (u16, String) {
    request("POST", url, Some(&format!("Bearer {token}")), Some(body))
}

impl Stack {
    /// The stack with the canned LLM behind an unreachable provider (the fallback is used).
    fn start() -> Stack {
        Stack::start_with(|d, llm_port| {
            let llm = Arc::new(Mutex::new(Vec::new()));
            start_llm(
                TcpListener::bind(("127.0.0.1", llm_port)).unwrap(),
                llm.clone(),
            );
            let llm_yaml = format!(
                "llm:\n  - base_url: http://127.0.0.1:1/v1\n    model: unreachable\n  - base_url: http://127.0.0.1:{llm_port}/v1\n    model: canned\n    api_key_file: {}/llm-key\n",
                d.display()
            );
            (llm_yaml, llm)
        })
    }

    /// The stack with the agent's `llm:` section (and any other agent keys) that `llm` returns,
    /// given the stack's folder and a free port; its second value is what `Stack::llm` shares.
    fn start_with(
        llm: impl FnOnce(&Path, u16) -> (String, Arc<Mutex<Vec<serde_json::Value>>>),
    ) -> Stack {
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
        std::fs::write(d.join("metrics-token"), METRICS_TOKEN).unwrap();
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
            format!("listen: 127.0.0.1:{gateway}\ntoken_file: {p}/token\nmetrics_token_file: {p}/metrics-token\nstate_dir: {p}/gw\nnginx: [nginx, -p, {p}, -c, {p}/nginx.conf, -e, {p}/error.log]\nrate_limit: 500\n"),
        )
        .unwrap();
        let (llm_yaml, llm) = llm(&d, llm_port);
        std::fs::write(
            d.join("agent.yaml"),
            format!(
                "listen: 127.0.0.1:{agent}\ntoken_file: {p}/token\nmetrics_token_file: {p}/metrics-token\ndatabase: {p}/agent/projects.db\nmax_concurrent_projects: 3\nrate_limit: 40\n\
                 {llm_yaml}\
                 git:\n  kind: plain\n  root: {p}/repos\n  url: http://127.0.0.1:{web}/git\n  org: projects\n\
                 gateway:\n  api: http://127.0.0.1:{gateway}\n  token_file: {p}/token\n  public_url: http://127.0.0.1:{web}\n"
            ),
        )
        .unwrap();
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
    // Deleted already: refused, nothing removed twice; the name is free for the next create of
    // the same prompt.
    let (code, _, err) = stack.cli(&["delete", name, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        (err.contains("was deleted already") || err.contains("no project"))
            && !err.contains("Removed"),
        "{err}"
    );
    let (code, out, err) = stack.cli(&["create", "portfolio website with dark mode"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(stack.project(name)["status"], "live");
    assert_eq!(get_live(&live).0, 200);
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

    // A flood gets 429 (the agent allows 40/s, bursts of 80): 8 clients at once, each sending 25
    // requests on one connection, so that the rate is above the limit however slow starting a
    // process is on a busy machine.
    let health = format!("{}/health", stack.agent_url());
    let codes: Vec<u16> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|_| s.spawn(|| get_many(&health, TOKEN, 25)))
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

/// How the scripted test LLM answers one chat request.
enum Reply {
    /// A whole chat completion at once, as a server that does not stream answers.
    Json(String),
    /// Server-sent events: `text` in `pieces` pieces, one every `every`, then the usage (two
    /// tokens a piece, when asked for) and `[DONE]`.
    Stream {
        text: String,
        pieces: usize,
        every: Duration,
    },
    /// An HTTP error with a JSON body.
    Status(u16, String),
    /// Nothing for this long, then the reply.
    Late(Duration, Box<Reply>),
}

/// A test LLM on 127.0.0.1 that speaks HTTP/1.1 by hand, so that an answer can stream slowly,
/// stall, or notice the client hanging up. `script(body, n)` answers the `n`th chat request (from
/// 0); `GET …/models` answers 200. Each chat request is recorded as `{body, auth, pieces_sent,
/// complete}` (`complete` only once a stream was written to its end).
fn scripted_llm(
    script: impl Fn(&serde_json::Value, usize) -> Reply + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let script = Arc::new(script);
    let recorded = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (script, seen) = (script.clone(), recorded.clone());
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let length: usize = header("content-length").parse().unwrap_or(0);
                while data.len() < head_end + length {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                }
                if head.starts_with("GET ") {
                    let body = r#"{"object":"list","data":[{"id":"scripted","object":"model"}]}"#;
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return;
                }
                let body: serde_json::Value =
                    serde_json::from_slice(&data[head_end..head_end + length]).unwrap_or_default();
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(serde_json::json!({"body": body, "auth": header("authorization"), "pieces_sent": 0}));
                    seen.len() - 1
                };
                let mut reply = script(&body, n);
                while let Reply::Late(wait, inner) = reply {
                    std::thread::sleep(wait);
                    reply = *inner;
                }
                let usage = body["stream_options"]["include_usage"] == true;
                match reply {
                    Reply::Status(code, text) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {code} Refused\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        );
                    }
                    Reply::Json(content) => {
                        let text = serde_json::json!({"id": "x", "object": "chat.completion", "model": body["model"], "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 100, "completion_tokens": 50}}).to_string();
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        );
                    }
                    Reply::Stream {
                        text,
                        pieces,
                        every,
                    } => {
                        if write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n").is_err() {
                            return;
                        }
                        let chars: Vec<char> = text.chars().collect();
                        let size = chars.len().div_ceil(pieces.max(1)).max(1);
                        for (i, piece) in chars.chunks(size).enumerate() {
                            let piece: String = piece.iter().collect();
                            let event = serde_json::json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
                            if write!(conn, "data: {event}\n\n")
                                .and_then(|()| conn.flush())
                                .is_err()
                            {
                                return;
                            }
                            seen.lock().unwrap()[n]["pieces_sent"] = (i + 1).into();
                            std::thread::sleep(every);
                        }
                        let last = serde_json::json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
                        let mut tail = format!("data: {last}\n\n");
                        if usage {
                            // Two tokens a piece, so that a count from the usage differs from one
                            // of the pieces.
                            let count = 2 * chars.len().div_ceil(size);
                            tail.push_str(&format!("data: {}\n\n", serde_json::json!({"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 400, "completion_tokens": count}})));
                        }
                        tail.push_str("data: [DONE]\n\n");
                        if conn.write_all(tail.as_bytes()).is_ok() {
                            seen.lock().unwrap()[n]["complete"] = true.into();
                        }
                    }
                    Reply::Late(..) => unreachable!(),
                }
            });
        }
    });
    (port, seen)
}

/// A complete small site about `title` (the title is the visible text).
fn site_about(title: &str) -> String {
    serde_json::json!({"files": [
        {"path": "index.html", "content": format!("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><link rel=\"stylesheet\" href=\"style.css\"></head>\n<body><h1>{title}</h1></body></html>\n")},
        {"path": "style.css", "content": "body { font-family: sans-serif; }\n"},
    ]})
    .to_string()
}

/// The request of a chat body: its first user message without the agent's preamble.
fn request_of(body: &serde_json::Value) -> String {
    let first = body["messages"][1]["content"].as_str().unwrap_or("");
    let first = first.trim_start_matches("Build this website: ");
    first.split("\n\n").next().unwrap_or("").to_string()
}

/// The agent's `llm:` section for providers `(model, port, extra keys)`.
fn providers_yaml(providers: &[(&str, u16, &str)]) -> String {
    let mut yaml = "llm:\n".to_string();
    for (model, port, extra) in providers {
        yaml.push_str(&format!(
            "  - base_url: http://127.0.0.1:{port}/v1\n    model: {model}\n"
        ));
        for line in extra.lines() {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    yaml
}

impl Stack {
    /// The project's events, as the API gives them.
    fn events(&self, name: &str) -> Vec<serde_json::Value> {
        let (code, body) = get(
            &format!("{}/api/v1/projects/{name}", self.agent_url()),
            Some(TOKEN),
        );
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["events"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn post_project(&self, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let (code, text) = post(
            &format!("{}/api/v1/projects", self.agent_url()),
            TOKEN,
            &body.to_string(),
        );
        (code, serde_json::from_str(&text).unwrap_or_default())
    }
}

/// Answers as small models on a CPU give them: prose and a fence around the JSON, a `Sure!`
/// before it, 56 placeholder files that come back the same when asked again, a loop that runs
/// until stopped, a slow stream with its progress, a site about something else; and names from
/// prompts in Chinese, Cyrillic, Japanese and emoji.
#[test]
fn answers_as_real_models_give_them_go_live() {
    let placeholder_answer = {
        let mut files = vec![
            serde_json::json!({"path": "index.html", "content": "<h1>Portfolio placeholder</h1>"}),
        ];
        for i in 1..=56 {
            files.push(serde_json::json!({"path": format!("images/projects/project{i}.png"), "content": "\"...\""}));
        }
        serde_json::json!({"files": files}).to_string()
    };
    let looping = {
        let mut text = String::from("{\"files\": [{\"path\": \"style.css\", \"content\": \"");
        while text.len() < 40_000 {
            text.push_str(".card { margin: 0 auto; padding: 1rem; }\\n");
        }
        text
    };
    let (port, seen) = scripted_llm(move |body, _| {
        let request = request_of(body);
        let fresh = body["messages"].as_array().unwrap().len() == 2;
        let warm = body["temperature"].as_f64().unwrap_or(0.0) >= 0.5;
        let site = site_about(&request);
        if request.contains("prose") {
            Reply::Json(format!(
                "Here is your site:\n\n```json\n{site}\n```\n\nEnjoy!"
            ))
        } else if request.contains("sure") {
            Reply::Stream {
                text: format!("Sure! {site}"),
                pieces: 20,
                every: Duration::from_millis(5),
            }
        } else if request.contains("placeholder") && !(fresh && warm) {
            Reply::Json(placeholder_answer.clone())
        } else if request.contains("looping") && !(fresh && warm) {
            Reply::Stream {
                text: looping.clone(),
                pieces: 4000,
                every: Duration::from_millis(1),
            }
        } else if request.contains("slow") {
            Reply::Stream {
                text: site,
                pieces: 50,
                every: Duration::from_millis(100),
            }
        } else if request.contains("bakery") {
            Reply::Json(site_about("Portfolio of a painter"))
        } else {
            Reply::Json(site)
        }
    });
    let stack = Stack::start_with(|_, _| {
        (
            providers_yaml(&[("small", port, "")]),
            Arc::new(Mutex::new(Vec::new())),
        )
    });
    let requests = |model_prompt: &str| -> Vec<serde_json::Value> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|r| request_of(&r["body"]).contains(model_prompt))
            .cloned()
            .collect()
    };

    // Prose and a fence around the JSON; a `Sure!` before it (streamed): one attempt each.
    for prompt in ["prose: a garden club page", "sure: a chess club page"] {
        let (code, out, err) = stack.cli(&["create", prompt]);
        assert_eq!(code, 0, "{out}\n{err}");
        let name = words_name(prompt);
        let project = stack.project(&name);
        assert_eq!(
            (project["status"].as_str(), project["attempts"].as_u64()),
            (Some("live"), Some(1)),
            "{project}"
        );
        if prompt.starts_with("sure") {
            assert!(
                err.contains("Asking small@") && err.contains("Generated "),
                "{err}"
            );
        }
    }
    // Every request is bounded and asks for structured output.
    let first = &requests("prose")[0]["body"];
    assert_eq!(first["max_tokens"], 3000, "{first}");
    assert_eq!(first["stream"], true);
    assert_eq!(first["response_format"]["type"], "json_schema");
    assert_eq!(
        first["response_format"]["json_schema"]["schema"]["properties"]["files"]["maxItems"],
        10
    );
    assert!(
        !first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("...")
    );

    // 56 placeholder files, the same answer when asked again at 0.2: the third attempt starts a
    // fresh conversation at another temperature, which answers well.
    let (code, out, err) = stack.cli(&["create", "placeholder portfolio with projects"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let asked = requests("placeholder");
    assert_eq!(asked.len(), 3, "{asked:#?}");
    let fix = asked[1]["body"]["messages"].as_array().unwrap();
    assert_eq!(
        fix.len(),
        4,
        "the second attempt is the fixer's conversation"
    );
    let fix_text = fix[3]["content"].as_str().unwrap();
    assert!(
        fix_text.contains("57 files; at most 50")
            && fix_text.contains("56 files are binary")
            && fix_text.contains("`images/projects/project1.png`"),
        "{fix_text}"
    );
    let fresh = &asked[2]["body"];
    assert_eq!(fresh["messages"].as_array().unwrap().len(), 2, "{fresh}");
    assert_eq!(fresh["temperature"].as_f64(), Some(0.7));
    assert!(
        fresh["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Earlier answers to this request failed these checks")
    );
    let name = "placeholder-portfolio-projects";
    assert_eq!(stack.project(name)["attempts"], 3);
    let events = stack.events(name);
    assert!(
        events.iter().any(|e| e["step"] == "generate"
            && e["status"] == "restart"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("its answer repeats attempt 1's")),
        "{events:#?}"
    );

    // An answer in a loop is stopped early (the server sees the client hang up), then a fresh
    // conversation at another temperature.
    let (code, out, err) = stack.cli(&["create", "looping card gallery"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let asked = requests("looping");
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert!(
        asked[0]["complete"].is_null(),
        "the looping answer was not read to its end"
    );
    assert!(asked[0]["pieces_sent"].as_u64().unwrap() < 4000);
    assert_eq!(asked[1]["body"]["temperature"].as_f64(), Some(0.7));
    let events = stack.events("looping-card-gallery");
    let done = events
        .iter()
        .find(|e| e["step"] == "llm" && e["status"] == "done")
        .unwrap();
    assert_eq!(done["data"]["finish"], "stopped", "{done}");
    assert!(
        done["message"].as_str().unwrap().contains("over and over"),
        "{done}"
    );

    // A slow stream: progress events with tokens and a rate, on `--json` as the schema says.
    let (code, out, err) = stack.cli(&["create", "slow tea house page", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| crate::schema::assert_fits("create-event", l))
        .collect();
    let progress: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["step"] == "llm" && l["status"] == "progress")
        .collect();
    assert!(progress.len() >= 2, "{out}");
    let tokens: Vec<u64> = progress
        .iter()
        .map(|p| p["data"]["tokens"].as_u64().unwrap())
        .collect();
    assert!(
        tokens.windows(2).all(|w| w[0] <= w[1]) && tokens[0] > 0,
        "{tokens:?}"
    );
    assert!(
        progress
            .iter()
            .all(|p| p["data"]["tokens_per_s"].as_f64().unwrap() > 0.0
                && p["data"]["elapsed_ms"].as_u64().unwrap() >= 1000)
    );
    let done = lines
        .iter()
        .find(|l| l["step"] == "llm" && l["status"] == "done")
        .unwrap();
    let pieces = requests("slow")[0]["pieces_sent"].as_u64().unwrap();
    assert_eq!(
        done["data"]["tokens_out"],
        2 * pieces,
        "the server's usage count: {done}"
    );
    assert_eq!(lines.last().unwrap()["event"], "created");

    // A site about something else is sent back once with that problem, then kept.
    let (code, out, err) = stack.cli(&["create", "landing page for a bakery"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let asked = requests("bakery");
    assert_eq!(asked.len(), 2, "sent back once, not twice");
    let sent_back = asked[1]["body"]["messages"][3]["content"].as_str().unwrap();
    assert!(
        sent_back.contains("names nothing of the request (bakery, landing)"),
        "{sent_back}"
    );
    let events = stack.events("landing-page-bakery");
    assert!(
        events.iter().any(|e| e["step"] == "check"
            && e["status"] == "done"
            && e["message"].as_str().unwrap().contains("kept although")),
        "{events:#?}"
    );

    // Names: a prompt without Latin letters is transliterated, a taken name numbered; a name the
    // user chose is refused when taken; a prompt with nothing to transliterate gets `site-<id>`.
    let chinese = "个人作品集网站，深色模式";
    let mut names = Vec::new();
    for prompt in [
        chinese,
        chinese,
        "Сайт-портфолио с тёмной темой",
        "ダークモードのポートフォリオサイト",
        "🚀🌙✨",
        "？！",
    ] {
        let (code, answer) = stack.post_project(&serde_json::json!({"prompt": prompt}));
        assert_eq!(code, 202, "{answer}");
        names.push(answer["project"]["name"].as_str().unwrap().to_string());
    }
    assert_eq!(
        names[..5],
        [
            "ge-ren-zuo-pin-ji-wang-zhan-shen-se-mo",
            "ge-ren-zuo-pin-ji-wang-zhan-shen-se-mo-2",
            "sait-portfolio-s-tiomnoi-temoi",
            "dakumodonopotohuoriosaito",
            "rocket-crescent-moon-sparkles",
        ]
    );
    assert!(
        names[5].starts_with("site-") && names[5].len() == 13,
        "{}",
        names[5]
    );
    let (code, out, err) = stack.cli(&["create", chinese, "--name", &names[0]]);
    assert_eq!(code, 2, "a refused request is a usage error: {out}");
    assert!(
        err.contains(&format!("a project named `{}` exists", names[0]))
            && err.contains("409")
            && err.contains("hint: pick another --name"),
        "{err}"
    );
    for name in &names {
        assert_eq!(
            stack.wait_status(name, &["live", "failed"])["status"],
            "live",
            "{name}"
        );
    }
}

/// The name the agent makes of a Latin prompt (the unit tests cover the rest).
fn words_name(prompt: &str) -> String {
    tfgrid_compose::ai::words::name_from_prompt(prompt).unwrap()
}

/// `text` through the real `promtool check metrics` (its linter too): what it said, if anything.
pub(crate) fn promtool_check_metrics(text: &str) -> Option<String> {
    let out = crate::common::output_with_input(
        Command::new(
            which::which("promtool")
                .expect("`promtool` is missing: scripts/install-deps.sh installs `prometheus`"),
        )
        .args(["check", "metrics"]),
        text.as_bytes(),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (!out.status.success() || !said.trim().is_empty()).then_some(said)
}

/// `/metrics` of the agent and the gateway after two creates and a backup: the design's series
/// (the latency histogram per service and route, long polls apart, creation attempts and successes, failures by
/// reason, a status per project, the last backup's time, the LLM counters, the agent's start),
/// clean under the real `promtool check metrics`; the metrics token reads `/metrics` and
/// nothing else. A backup of one project counts it in the singular.
#[test]
fn metrics_name_the_designs_series_and_pass_promtool_check_metrics() {
    let started = tfgrid_compose::clock::now_unix();
    let stack = Stack::start();
    let file = stack.dir.path().join("stack.tar.gz").display().to_string();
    for (i, args) in [
        &["create", "portfolio website with dark mode"][..],
        &["create", "bakery landing page", "--name", "bakery"],
    ]
    .into_iter()
    .enumerate()
    {
        let (code, out, err) = stack.cli(args);
        assert_eq!(code, 0, "{out}\n{err}");
        if i == 0 {
            let (code, _, err) = stack.cli(&["projects", "backup", "-o", &file]);
            assert_eq!(code, 0, "{err}");
            assert!(
                err.contains(" against the manifest (1 project)\n")
                    && err.contains(", 1 project of http://"),
                "{err}"
            );
        }
    }
    let before = tfgrid_compose::clock::now_unix();
    let (code, _, err) = stack.cli(&["projects", "backup", "-o", &file]);
    assert_eq!(code, 0, "{err}");

    // The read-only token: `/metrics`, nothing else.
    let agent = stack.agent_url();
    assert_eq!(
        get(&format!("{agent}/api/v1/projects"), Some(METRICS_TOKEN)).0,
        401
    );
    let (code, text) = get(&format!("{agent}/metrics"), Some(METRICS_TOKEN));
    assert_eq!(code, 200, "{text}");
    assert_eq!(promtool_check_metrics(&text), None, "{text}");
    for series in [
        "project_creation_attempts_total 2",
        "project_creation_success_total 2",
        "project_creation_failures_total{reason=\"generating\"} 0",
        "project_status{project=\"bakery\",status=\"live\"} 1",
        "project_status{project=\"portfolio-website-dark-mode\",status=\"live\"} 1",
        "http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/projects\",service=\"agent\",le=\"0.5\"}",
        "http_long_poll_duration_seconds_count{method=\"GET\",route=\"/api/v1/projects/{id}/events\",service=\"agent\"}",
        "# HELP tfgrid_agent_llm_requests_total ",
    ] {
        assert!(text.contains(series), "{series}: {text}");
    }
    // The events `create` followed waited for them: long polls, kept out of the latency
    // histogram the API's p95 is computed from.
    assert!(
        !text.contains("http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/projects/{id}/events\""),
        "{text}"
    );
    let stamp = metric(&text, "backup_last_success_timestamp_seconds").unwrap();
    assert!(stamp >= before as f64, "{stamp} < {before}: {text}");
    // The agent's start, which `BackupNeverTaken` counts from.
    let start = metric(&text, "process_start_time_seconds").unwrap();
    assert!(
        start >= started as f64 && start <= before as f64,
        "{start} not in {started}..{before}: {text}"
    );
    let (code, text) = get(
        &format!("http://127.0.0.1:{}/metrics", stack.gateway),
        Some(METRICS_TOKEN),
    );
    assert_eq!(code, 200, "{text}");
    assert_eq!(promtool_check_metrics(&text), None, "{text}");
    assert!(
        text.contains("http_request_duration_seconds_count{method=\"PUT\",route=\"/api/v1/sites/{name}\",service=\"gateway\"} 2"),
        "{text}"
    );
}

/// The first value of a Prometheus series with this name and label set.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// `round-robin` spreads projects over the providers; a server that refuses `response_format`
/// is asked without it, and from then on without it; `/health`, `/metrics` and `monitor` show
/// each provider.
#[test]
fn providers_take_turns_and_one_refusing_structured_output_is_asked_without_it() {
    let good_site = |body: &serde_json::Value| site_about(&request_of(body));
    let (strict, strict_seen) = scripted_llm(move |body, _| {
        if body.get("response_format").is_some() {
            Reply::Status(
                400,
                r#"{"error": {"message": "response_format is not supported"}}"#.into(),
            )
        } else {
            Reply::Stream {
                text: good_site(body),
                pieces: 10,
                every: Duration::from_millis(5),
            }
        }
    });
    let (plain, plain_seen) = scripted_llm(move |body, _| Reply::Json(good_site(body)));
    let stack = Stack::start_with(|_, _| {
        (
            format!(
                "llm_strategy: round-robin\n{}",
                providers_yaml(&[("strict", strict, ""), ("plain", plain, "")])
            ),
            Arc::new(Mutex::new(Vec::new())),
        )
    });
    for prompt in [
        "first garden page",
        "second garden page",
        "third garden page",
    ] {
        let (code, out, err) = stack.cli(&["create", prompt]);
        assert_eq!(code, 0, "{out}\n{err}");
    }
    let formats = |seen: &Arc<Mutex<Vec<serde_json::Value>>>| -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|r| {
                let format = r["body"]["response_format"]["type"]
                    .as_str()
                    .unwrap_or("none");
                format!("{}: {format}", request_of(&r["body"]))
            })
            .collect()
    };
    assert_eq!(
        formats(&strict_seen),
        [
            "first garden page: json_schema",
            "first garden page: json_object",
            "first garden page: none",
            "third garden page: none",
        ],
        "the refusal is remembered"
    );
    assert_eq!(formats(&plain_seen), ["second garden page: json_schema"]);
    let events = stack.events("first-garden-page");
    assert!(
        events.iter().any(|e| e["status"] == "note"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("response_format is not supported")),
        "{events:#?}"
    );

    let (code, health) = get(&format!("{}/health", stack.agent_url()), Some(TOKEN));
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["llm_strategy"], "round-robin");
    let strict_name = format!("strict@http://127.0.0.1:{strict}/v1");
    let report = &health["llm"][0];
    assert_eq!(report["provider"], strict_name.as_str());
    assert_eq!(report["response_format"], "none");
    assert_eq!(report["stats"]["healthy"], true, "{report}");
    assert_eq!(
        (
            report["stats"]["requests"].as_u64(),
            report["stats"]["errors"].as_u64()
        ),
        (Some(4), Some(2))
    );
    assert_eq!(report["stats"]["tokens_out"], 20, "{report}");
    let (_, metrics) = get(&format!("{}/metrics", stack.agent_url()), Some(TOKEN));
    let series = |name: &str, provider: &str| {
        metric(&metrics, &format!("{name}{{provider=\"{provider}\"}}"))
    };
    assert_eq!(
        series("tfgrid_agent_llm_answers_total", &strict_name),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        series("tfgrid_agent_llm_errors_total", &strict_name),
        Some(2.0)
    );
    let plain_name = format!("plain@http://127.0.0.1:{plain}/v1");
    assert_eq!(
        series("tfgrid_agent_llm_tokens_in_total", &plain_name),
        Some(100.0)
    );
    assert_eq!(
        series("tfgrid_agent_llm_tokens_out_total", &plain_name),
        Some(50.0)
    );
    assert_eq!(series("tfgrid_agent_llm_up", &plain_name), Some(1.0));

    let (code, out, _) = stack.cli(&["monitor", "third-garden-page"]);
    assert_eq!(code, 0);
    assert!(out.contains("llm       round-robin"), "{out}");
    assert!(
        out.contains(&format!("  {strict_name}  up; 2 of 4 requests answered, 2 errors (0 timed out); tokens 0 in, 20 out")),
        "{out}"
    );
    let (code, out, _) = stack.cli(&["monitor", "third-garden-page", "--json"]);
    assert_eq!(code, 0);
    let doc = crate::schema::assert_fits("monitor", &out);
    assert_eq!(doc["llm"][1]["provider"], plain_name.as_str());
}

/// A provider that goes silent mid-answer and one that never finishes are each asked once (no
/// blind retry of a generation that timed out); the next provider answers.
#[test]
fn a_timed_out_generation_is_not_asked_again_and_the_next_provider_answers() {
    let (stall, stall_seen) = scripted_llm(|body, _| Reply::Stream {
        text: site_about(&request_of(body)),
        pieces: 4,
        every: Duration::from_secs(20),
    });
    let (hang, hang_seen) = scripted_llm(|body, _| {
        Reply::Late(
            Duration::from_secs(20),
            Box::new(Reply::Json(site_about(&request_of(body)))),
        )
    });
    let (good, good_seen) = scripted_llm(|body, _| Reply::Json(site_about(&request_of(body))));
    let stack = Stack::start_with(|_, _| {
        (
            providers_yaml(&[
                ("stall", stall, "idle_timeout: 1"),
                ("hang", hang, "timeout: 2"),
                ("good", good, "max_tokens: 1200"),
            ]),
            Arc::new(Mutex::new(Vec::new())),
        )
    });
    // The replies would take 20 s; the timeouts' own messages below show they were cut.
    let (code, out, err) = stack.cli(&["create", "patient harbour page"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(stall_seen.lock().unwrap().len(), 1);
    assert_eq!(hang_seen.lock().unwrap().len(), 1);
    let good_seen = good_seen.lock().unwrap().clone();
    assert_eq!(good_seen.len(), 1);
    assert_eq!(good_seen[0]["body"]["max_tokens"], 1200);
    for want in [
        "no token for 1 s (the provider's `idle_timeout`)",
        "no complete answer within 2 s (the provider's `timeout`)",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let (_, metrics) = get(&format!("{}/metrics", stack.agent_url()), Some(TOKEN));
    for (model, port, timeouts) in [
        ("stall", stall, 1.0),
        ("hang", hang, 1.0),
        ("good", good, 0.0),
    ] {
        assert_eq!(
            metric(
                &metrics,
                &format!(
                    "tfgrid_agent_llm_timeouts_total{{provider=\"{model}@http://127.0.0.1:{port}/v1\"}}"
                )
            ),
            Some(timeouts),
            "{metrics}"
        );
    }
}

/// The commit `main` of a repository points at, through the git host's smart HTTP.
pub(crate) fn head_commit(repo: &str) -> String {
    let out = Command::new("git")
        .args(["ls-remote", "--", repo, "refs/heads/main"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let commit = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(commit.len(), 40, "{repo}: {text}");
    commit
}

#[test]
fn backup_then_restore_brings_projects_back_and_bad_archives_change_nothing() {
    use tfgrid_compose::ai::archive::Archive;
    let stack = Stack::start();
    let names = ["portfolio-website-dark-mode", "bakery"];
    let (code, out, err) = stack.cli(&["create", "portfolio website with dark mode"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = stack.cli(&["create", "bakery landing page", "--name", "bakery"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let web = |name: &str| format!("http://127.0.0.1:{}/{name}/", stack.web);
    let repo = |name: &str| format!("http://127.0.0.1:{}/git/projects/{name}.git", stack.web);
    let commits: Vec<String> = names.iter().map(|n| head_commit(&repo(n))).collect();

    // A backup while a project is in the pipeline is refused; once it is live it is taken.
    let (code, _, err) = stack.cli(&[
        "create",
        "slow gallery page",
        "--name",
        "gallery",
        "--no-wait",
    ]);
    assert_eq!(code, 0, "{err}");
    let file = stack.dir.path().join("stack.tar.gz");
    let file_arg = file.display().to_string();
    let (code, _, err) = stack.cli(&["projects", "backup", "-o", &file_arg]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the agent cannot back up now: project `gallery`"),
        "{err}"
    );
    assert!(!file.exists(), "nothing written");
    stack.wait_status("gallery", &["live"]);
    let (code, out, err) = stack.cli(&["--json", "projects", "backup", "-o", &file_arg]);
    assert_eq!(code, 0, "{err}");
    let doc = crate::schema::assert_fits("backup", &out);
    assert_eq!(doc["projects"].as_array().unwrap().len(), 3, "{doc}");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions())
            & 0o777,
        0o600
    );
    let bytes = std::fs::read(&file).unwrap();
    let archive = Archive::read(&bytes).unwrap();
    assert_eq!(
        doc["sha256"],
        tfgrid_compose::ai::archive::sha256_hex(&bytes)
    );
    for name in names {
        assert!(archive.files.contains_key(&format!("repos/{name}.bundle")));
        assert_eq!(
            archive.files[&format!("sites/{name}/index.html")],
            INDEX.as_bytes()
        );
    }
    // Human output, and a backup into a folder that is not there is refused before the agent.
    let (code, _, err) = stack.cli(&["projects", "backup", "-o", "/nonexistent-dir/x.tar.gz"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the folder `/nonexistent-dir` does not exist"),
        "{err}"
    );

    // Restoring onto the stack that has the projects is refused, naming them; nothing changes.
    let (code, _, err) = stack.cli(&["projects", "restore", &file_arg]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("already on this stack: project `")
            && err.contains("project `portfolio-website-dark-mode`")
            && err.contains("repository of `bakery`")
            && err.contains("site `bakery`")
            && err.contains("route `/bakery/`")
            && err.contains("hint: delete those on this stack first"),
        "{err}"
    );
    assert_eq!(get_live(&web(names[0])), (200, INDEX.to_string()));

    // Damaged, changed and newer archives are refused by the CLI, the file named.
    let bad = |name: &str, archive: &Archive| {
        let path = stack.dir.path().join(name);
        std::fs::write(&path, archive.to_bytes().unwrap()).unwrap();
        let (code, _, err) = stack.cli(&["projects", "restore", &path.display().to_string()]);
        assert_eq!(code, 2, "{err}");
        (err, path)
    };
    let mut changed = archive.clone();
    changed.files.insert(
        format!("sites/{}/index.html", names[1]),
        b"<h1>changed</h1>".to_vec(),
    );
    let (err, path) = bad("changed.tar.gz", &changed);
    assert!(
        err.contains(&format!(
            "`{}`: checksum mismatch for `sites/bakery/index.html`",
            path.display()
        )),
        "{err}"
    );
    let mut newer = archive.clone();
    newer.manifest.format = 99;
    let (err, _) = bad("newer.tar.gz", &newer);
    assert!(err.contains("the archive has format version 99"), "{err}");
    let half = stack.dir.path().join("half.tar.gz");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, err) = stack.cli(&["projects", "restore", &half.display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a backup archive"), "{err}");
    let (code, _, err) = stack.cli(&["projects", "restore", "/nonexistent.tar.gz"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read `/nonexistent.tar.gz`"), "{err}");
    // A stack that does not answer.
    let out = Command::new(bin())
        .args(["projects", "restore", &file_arg])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", stack.dir.path())
        .env("TFGRID_COMPOSE_AGENT_URL", "http://127.0.0.1:1")
        .env("TFGRID_COMPOSE_AGENT_TOKEN", TOKEN)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the agent at http://127.0.0.1:1 did not answer"),
        "{err}"
    );

    // Everything gone, then restored: live, clonable with the same commit, listed.
    for name in names.iter().chain(&["gallery"]) {
        let (code, _, err) = stack.cli(&["delete", name, "--yes"]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(get_until(&web(names[0]), 404).0, 404);
    let (code, out, err) = stack.cli(&["--json", "projects", "restore", &file_arg]);
    assert_eq!(code, 0, "{err}");
    let doc = crate::schema::assert_fits("restore", &out);
    assert_eq!(doc["projects"].as_array().unwrap().len(), 3);
    for (name, commit) in names.iter().zip(&commits) {
        assert_eq!(get_live(&web(name)), (200, INDEX.to_string()));
        assert_eq!(&head_commit(&repo(name)), commit);
        let work = stack.dir.path().join(format!("restored-{name}"));
        assert!(clone(&repo(name), &work));
        assert_eq!(
            std::fs::read_to_string(work.join("index.html")).unwrap(),
            INDEX
        );
        let project = stack.project(name);
        assert_eq!(project["status"], "live");
        assert_eq!(project["live_url"], web(name));
        assert_eq!(project["repo_url"], repo(name));
    }
    let (code, out, _) = stack.cli(&["monitor", names[1]]);
    assert_eq!(code, 0);
    assert!(
        out.contains("verify    done")
            && out.contains("restore   done     restored from the backup of"),
        "{out}"
    );
    let (_, out, _) = stack.cli(&["projects"]);
    assert_eq!(out.matches(" live ").count(), 3, "{out}");
}

/// Route changes that arrive together: every one applied, the upstream ones in fewer nginx
/// reloads than they are; a route nginx refuses (an upstream host it cannot resolve) is refused
/// alone; a route already served answers right at every request throughout.
#[test]
fn route_changes_that_arrive_together_share_reloads_and_a_bad_one_refuses_only_itself() {
    let stack = Stack::start();
    let api = format!("http://127.0.0.1:{}/api/v1", stack.gateway);
    let web = format!("http://127.0.0.1:{}", stack.web);
    let page = |name: &str| format!("<h1>{name}</h1>");
    let names: Vec<String> = (0..10).map(|i| format!("batch-{i}")).collect();
    for name in names.iter().map(String::as_str).chain(["kept"]) {
        let files = serde_json::json!({"files": {"index.html": page(name)}}).to_string();
        let bearer = format!("Bearer {TOKEN}");
        let url = format!("{api}/sites/{name}");
        assert_eq!(request("PUT", &url, Some(&bearer), Some(&files)).0, 201);
    }
    let routes = format!("{api}/routes");
    let kept = format!("{web}/kept/");
    let route = |name: &str| format!(r#"{{"path": "{name}", "backend": {{"static": "{name}"}}}}"#);
    // Every other route is an upstream: the gateway's own nginx, at /kept/.
    let upstream =
        |name: &str| format!(r#"{{"path": "{name}", "backend": {{"upstream": "{web}/kept/"}}}}"#);
    assert_eq!(post(&routes, TOKEN, &route("kept")).0, 201);
    assert_eq!(get_live(&kept), (200, page("kept")));
    let reloads = || {
        let (_, text) = get(
            &format!("http://127.0.0.1:{}/metrics", stack.gateway),
            Some(TOKEN),
        );
        metric(&text, "tfgrid_gateway_nginx_reloads_total").expect("the reload counter")
    };
    let before = reloads();

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (added, broken, seen) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(get(&kept, None));
            }
            seen
        });
        let adds: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let body = if i % 2 == 0 {
                    route(name)
                } else {
                    upstream(name)
                };
                let routes = &routes;
                s.spawn(move || post(routes, TOKEN, &body))
            })
            .collect();
        let broken = s.spawn(|| {
            post(
                &routes,
                TOKEN,
                r#"{"path": "broken", "backend": {"upstream": "http://no-such-host.invalid/"}}"#,
            )
        });
        let added: Vec<(u16, String)> = adds.into_iter().map(|a| a.join().unwrap()).collect();
        let broken = broken.join().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (added, broken, watcher.join().unwrap())
    });
    for (name, (code, answer)) in names.iter().zip(&added) {
        assert_eq!(*code, 201, "{name}: {answer}");
    }
    assert_eq!(broken.0, 422, "{}", broken.1);
    assert!(broken.1.contains("host not found"), "{}", broken.1);
    for (i, name) in names.iter().enumerate() {
        let want = if i % 2 == 0 { page(name) } else { page("kept") };
        assert_eq!(get_live(&format!("{web}/{name}/")), (200, want), "{name}");
    }
    assert_eq!(get(&format!("{web}/broken/"), None).0, 404);
    let (_, listed) = get(&routes, Some(TOKEN));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let mut paths: Vec<&str> = listed["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    let mut want: Vec<&str> = names.iter().map(String::as_str).chain(["kept"]).collect();
    want.sort_unstable();
    assert_eq!(
        paths, want,
        "the routes kept: every good one, not the refused one"
    );
    assert!(!seen.is_empty());
    let wrong: Vec<_> = seen.iter().filter(|a| **a != (200, page("kept"))).collect();
    assert!(
        wrong.is_empty(),
        "`/kept/` answered {wrong:?} while routes changed"
    );
    let used = reloads() - before;
    assert!(
        used < 6.0,
        "{used} reloads for 6 upstream route changes that arrived together"
    );
}

/// A static route is a link to its site, served by one location: it answers from the first
/// request after its POST and is gone from the first after its DELETE, with no nginx reload; a
/// path moved from static to upstream and back answers each time from what it was moved to.
#[test]
fn static_routes_come_and_go_with_no_reload_and_a_path_moves_between_static_and_upstream() {
    let stack = Stack::start();
    let api = format!("http://127.0.0.1:{}/api/v1", stack.gateway);
    let web = format!("http://127.0.0.1:{}", stack.web);
    let bearer = format!("Bearer {TOKEN}");
    for name in ["one", "two"] {
        let files = serde_json::json!({"files": {"index.html": format!("<h1>{name}</h1>")}});
        let url = format!("{api}/sites/{name}");
        assert_eq!(
            request("PUT", &url, Some(&bearer), Some(&files.to_string())).0,
            201
        );
    }
    let reloads = || {
        let (_, text) = get(
            &format!("http://127.0.0.1:{}/metrics", stack.gateway),
            Some(TOKEN),
        );
        metric(&text, "tfgrid_gateway_nginx_reloads_total").expect("the reload counter")
    };
    let routes = format!("{api}/routes");
    let site = format!("{web}/site/");
    let to = |backend: &str| format!(r#"{{"path": "site", "backend": {backend}}}"#);
    let before = reloads();
    assert_eq!(post(&routes, TOKEN, &to(r#"{"static": "one"}"#)).0, 201);
    assert_eq!(get(&site, None), (200, "<h1>one</h1>".to_string()));
    assert_eq!(
        request("GET", &format!("{web}/site"), None, None).0,
        301,
        "`/site` is sent to `/site/`"
    );
    assert_eq!(post(&routes, TOKEN, &to(r#"{"static": "two"}"#)).0, 200);
    assert_eq!(get(&site, None), (200, "<h1>two</h1>".to_string()));
    assert_eq!(reloads(), before, "static routes reloaded nginx");

    // To an upstream (this nginx's /up/, a static route to `one`) and back.
    assert_eq!(
        post(
            &routes,
            TOKEN,
            &to(r#"{"static": "one"}"#).replace("site", "up")
        )
        .0,
        201
    );
    let upstream = format!(r#"{{"upstream": "{web}/up/"}}"#);
    assert_eq!(post(&routes, TOKEN, &to(&upstream)).0, 200);
    assert_eq!(get(&site, None), (200, "<h1>one</h1>".to_string()));
    assert!(reloads() > before, "an upstream route needs a reload");
    assert_eq!(post(&routes, TOKEN, &to(r#"{"static": "two"}"#)).0, 200);
    assert_eq!(get(&site, None), (200, "<h1>two</h1>".to_string()));

    let after = reloads();
    let (code, _) = request("DELETE", &format!("{routes}/site"), Some(&bearer), None);
    assert_eq!(code, 204);
    assert_eq!(get(&site, None).0, 404);
    assert_eq!(reloads(), after, "removing a static route reloaded nginx");
    let (_, listed) = get(&routes, Some(TOKEN));
    assert!(!listed.contains(r#""site""#), "{listed}");
}

/// A provider with `warm_up` is asked the start every create's conversation shares (the system
/// prompt), for one token, once, when the agent starts and before any create; a create's
/// conversation then starts with exactly those words, so a server's prompt cache serves them.
#[test]
fn a_provider_with_warm_up_is_asked_the_shared_start_once_before_any_create() {
    let stack = Stack::start_with(|_, llm_port| {
        let llm = Arc::new(Mutex::new(Vec::new()));
        start_llm(
            TcpListener::bind(("127.0.0.1", llm_port)).unwrap(),
            llm.clone(),
        );
        let llm_yaml = format!(
            "llm:\n  - base_url: http://127.0.0.1:{llm_port}/v1\n    model: canned\n    warm_up: true\n"
        );
        (llm_yaml, llm)
    });
    let started = Instant::now();
    while stack.llm.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no warm-up request"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let warm = stack.llm.lock().unwrap()[0]["body"].clone();
    assert_eq!(warm["max_tokens"], 1, "{warm}");
    assert_eq!(
        warm["messages"][0]["content"],
        tfgrid_compose::ai::site::SYSTEM_PROMPT,
        "{warm}"
    );
    let (code, out, err) = stack.cli(&["create", "portfolio website with dark mode"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Tokens:") && l.ends_with(" out")),
        "the create reports its tokens: {out}"
    );
    let seen = stack.llm.lock().unwrap().clone();
    let asked = &seen[1]["body"];
    assert_eq!(asked["messages"][0], warm["messages"][0]);
    let shared = warm["messages"][1]["content"].as_str().unwrap();
    assert!(
        asked["messages"][1]["content"]
            .as_str()
            .unwrap()
            .starts_with(shared),
        "{asked}"
    );
    let warm_ups = seen.iter().filter(|r| r["body"]["max_tokens"] == 1).count();
    assert_eq!(warm_ups, 1, "{seen:?}");
}
