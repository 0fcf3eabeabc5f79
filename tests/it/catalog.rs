//! The app registry: `search`, `up NAME`, `update [NAME]` and `inspect`'s origin, against a
//! registry in the bash tool's format served over HTTP from 127.0.0.1 and app repositories
//! served by the real `git http-backend` (smart HTTP) behind a small server of the test's own,
//! with the fake tools of the flow tests for the deployment itself.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use predicates::str::contains;

use crate::common::{TestContext, copy_dir, fixtures};

/// A loopback HTTP server: `GET /apps.yaml` answers the registry text it holds, `/git/…` is
/// handed to `git http-backend` as a CGI request over the repositories in `repos`. Every request
/// line is recorded; [`Server::stop`] closes the port (connections are then refused).
pub(crate) struct Server {
    addr: SocketAddr,
    registry: Arc<Mutex<String>>,
    requests: Arc<Mutex<Vec<String>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(repos: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let registry = Arc::new(Mutex::new(String::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (text, seen, stop) = (registry.clone(), requests.clone(), stopping.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (repos, text, seen) = (repos.clone(), text.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &repos, &text, &seen));
            }
        });
        Server {
            addr,
            registry,
            requests,
            stopping,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set_registry(&self, text: &str) {
        *self.registry.lock().unwrap() = text.to_string();
    }

    /// How many times the registry was asked for.
    pub(crate) fn registry_requests(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.ends_with("/apps.yaml"))
            .count()
    }

    pub(crate) fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request: read it, answer it, close.
fn serve(stream: TcpStream, repos: &Path, registry: &Mutex<String>, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body).unwrap();
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let mut words = first.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let target = words.next().unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    seen.lock().unwrap().push(format!("{method} {path}"));
    let (status, head, content) = if path == "/apps.yaml" {
        let text = registry.lock().unwrap().clone();
        let status = if text.is_empty() {
            "404 Not Found"
        } else {
            "200 OK"
        };
        (
            status.to_string(),
            "Content-Type: text/yaml\r\n".to_string(),
            text.into_bytes(),
        )
    } else if let Some(path_info) = path.strip_prefix("/git") {
        git_http_backend(repos, &method, path_info, query, &header, &body)
    } else {
        ("404 Not Found".into(), String::new(), Vec::new())
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    );
    let _ = stream.write_all(&content);
}

/// `git http-backend` as a CGI program: the request in its environment and stdin, its headers
/// (with `Status:`) and body on stdout.
fn git_http_backend(
    repos: &Path,
    method: &str,
    path_info: &str,
    query: &str,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> (String, String, Vec<u8>) {
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("GIT_PROJECT_ROOT", repos)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default());
    if let Some(protocol) = header("git-protocol") {
        cgi.env("GIT_PROTOCOL", protocol);
    }
    if let Some(encoding) = header("content-encoding") {
        cgi.env("HTTP_CONTENT_ENCODING", encoding);
    }
    let mut child = cgi
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("git http-backend");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        })
        .expect("CGI headers");
    let head_text = String::from_utf8_lossy(&out.stdout[..split.0]).into_owned();
    let mut status = "200 OK".to_string();
    let mut head = String::new();
    for line in head_text.lines() {
        match line.strip_prefix("Status:") {
            Some(s) => status = s.trim().to_string(),
            None => head.push_str(&format!("{}\r\n", line.trim_end())),
        }
    }
    (status, head, out.stdout[split.0 + split.1..].to_vec())
}

/// Runs git in `dir` with a fixed identity; returns its stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The app's repository (bare, served as `/git/minimal.git`) and a working copy to commit in.
struct AppRepo {
    work: PathBuf,
}

impl AppRepo {
    /// A copy of the flow tests' `minimal` app, its page saying `v1`, committed and pushed.
    fn new(root: &Path) -> AppRepo {
        let repos = root.join("repos");
        std::fs::create_dir_all(&repos).unwrap();
        let bare = repos.join("minimal.git");
        git(
            root,
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        let work = root.join("work");
        copy_dir(&fixtures().join("apps/minimal"), &work);
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        let repo = AppRepo { work };
        repo.commit("v1");
        repo
    }

    /// Writes `text` into `src/index.html`, commits and pushes; returns the commit.
    fn commit(&self, text: &str) -> String {
        std::fs::write(self.work.join("src/index.html"), text).unwrap();
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", text]);
        git(&self.work, &["push", "-q", "origin", "main"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

/// The bash tool's registry (the fixture copied from it) with the test's app added to
/// `apps.community`, in the same shape as the official entries.
fn registry_with(repo_url: &str, commit: &str) -> String {
    let real = std::fs::read_to_string(fixtures().join("catalog/apps.yaml")).unwrap();
    assert!(real.contains("  community: []\n"));
    real.replace(
        "  community: []\n",
        &format!(
            "  community:\n  - name: minimal\n    repo: {repo_url}\n    description: The smallest app the flow tests deploy\n    pattern: minimal\n    status: testing\n    maintainer: tests\n    tags:\n    - web\n    - test\n    version: {commit}\n    versioning:\n      primary: git_commit\n    git:\n      default_branch: main\n"
        ),
    )
}

/// A test context, its app's repository, and the server with a registry pinning the first
/// commit.
pub(crate) struct Setup {
    pub(crate) cx: TestContext,
    repo: AppRepo,
    pub(crate) server: Server,
    first: String,
}

impl Setup {
    pub(crate) fn new() -> Setup {
        let cx = TestContext::new();
        let repo = AppRepo::new(cx.root.path());
        let server = Server::start(cx.root.path().join("repos"));
        let first = git(&repo.work, &["rev-parse", "HEAD"]);
        let setup = Setup {
            cx,
            repo,
            server,
            first,
        };
        setup.pin(&setup.first.clone());
        setup
    }

    fn repo_url(&self) -> String {
        self.server.url("/git/minimal.git")
    }

    /// Serves a registry that pins the app to `commit`.
    fn pin(&self, commit: &str) {
        self.server
            .set_registry(&registry_with(&self.repo_url(), commit));
    }

    pub(crate) fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = self.cx.cmd();
        cmd.env("TFGRID_COMPOSE_REGISTRY", self.server.url("/apps.yaml"));
        for (key, value) in env {
            cmd.env(key, value);
        }
        let out = cmd.args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.cx.home().join(".cache/tfgrid-compose")
    }

    fn checkout(&self, commit: &str) -> PathBuf {
        self.cache().join("apps/minimal").join(commit)
    }
}

fn names(search_json: &str) -> Vec<String> {
    let doc = crate::schema::assert_fits("search", search_json);
    doc["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn search_by_query_and_tag() {
    let s = Setup::new();
    let (code, out, err) = s.run(&["search", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names(&out),
        [
            "tfgrid-ai-stack",
            "tfgrid-ai-agent",
            "tfgrid-gitea",
            "minimal"
        ]
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["apps"][3]["commit"], s.first.as_str());
    assert_eq!(doc["apps"][3]["section"], "community");
    assert_eq!(doc["registry"]["stale"], false);
    let (_, out, _) = s.run(&["search", "--json", "AI"], &[]);
    assert_eq!(names(&out), ["tfgrid-ai-stack", "tfgrid-ai-agent"]);
    let (_, out, _) = s.run(&["search", "--json", "--tag", "coding"], &[]);
    assert_eq!(names(&out), ["tfgrid-ai-stack", "tfgrid-ai-agent"]);
    let (_, out, _) = s.run(&["search", "--json", "ai", "--tag", "qwen"], &[]);
    assert_eq!(names(&out), ["tfgrid-ai-agent"]);
    let (_, out, _) = s.run(&["search", "--json", "--tag", "web", "smallest"], &[]);
    assert_eq!(names(&out), ["minimal"]);
    let (code, out, _) = s.run(&["search", "git"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("NAME "), "{out}");
    assert!(
        out.contains("tfgrid-gitea") && !out.contains("tfgrid-ai-stack"),
        "{out}"
    );
    // One fetch: the copy is younger than registry_ttl (1h) for every later search.
    assert_eq!(s.server.registry_requests(), 1);

    // A name that is neither a folder, a deployment nor a registry app: both are named.
    let (code, _, err) = s.run(&["up", "minimall"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "not an app folder or manifest here, not a deployment, and not an app in the registry"
        ),
        "{err}"
    );
    assert!(err.contains("did you mean `minimal`?"), "{err}");
    let (code, _, err) = s.run(&["update", "minimall"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no app `minimall`"), "{err}");
}

#[test]
fn up_of_a_registry_app_deploys_exactly_the_pinned_commit() {
    let s = Setup::new();
    let (code, _, err) = s.run(&["up", "minimal"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Finished `minimal` is up"), "{err}");
    assert!(
        err.contains("Next `tfgrid-compose status minimal`"),
        "{err}"
    );
    let first = s.checkout(&s.first);
    assert_eq!(git(&first, &["rev-parse", "HEAD"]), s.first);
    assert_eq!(
        std::fs::read_to_string(first.join("src/index.html")).unwrap(),
        "v1"
    );
    // The app's files were uploaded from that checkout; its state is in the data dir.
    let argv = std::fs::read_to_string(s.cx.fake_dir.join("argv.log")).unwrap();
    assert!(argv.contains(&format!("{}/src", first.display())), "{argv}");
    let state_dir =
        s.cx.home()
            .join(".local/share/tfgrid-compose/apps/minimal/.tfgrid-compose/default");
    let state = std::fs::read_to_string(state_dir.join("state.yaml")).unwrap();
    assert!(state.contains(&format!("commit: {}", s.first)), "{state}");
    assert!(!first.join(".tfgrid-compose").exists());

    let inspect = |s: &Setup| {
        let (code, out, err) = s.run(&["inspect", "minimal", "--json"], &[]);
        assert_eq!(code, 0, "{err}");
        crate::schema::assert_fits("inspect", &out)["deployment"]["origin"].clone()
    };
    let origin = inspect(&s);
    assert_eq!(origin["name"], "minimal");
    assert_eq!(origin["repo"], s.repo_url().as_str());
    assert_eq!(origin["commit"], s.first.as_str());
    assert_eq!(origin["registry"], s.server.url("/apps.yaml").as_str());
    let (_, text, _) = s.run(&["inspect", "minimal"], &[]);
    assert!(text.contains(&format!("commit: {}", s.first)), "{text}");

    // A later commit in the repository changes nothing while the registry pins the first.
    let second = s.repo.commit("v2");
    let (code, _, err) = s.run(&["update", "minimal"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("commit {}", &s.first[..12])), "{err}");
    assert!(!s.checkout(&second).exists());
    assert_eq!(git(&first, &["rev-parse", "HEAD"]), s.first);
    // …though `update NAME` fetched it into the cached repository.
    git(
        &s.cache().join("apps/minimal/repo.git"),
        &["cat-file", "-e", &format!("{second}^{{commit}}")],
    );

    // The registry moves on: `update` checks the new commit out beside the first; the
    // deployment keeps the commit it was made from.
    s.pin(&second);
    let (code, _, err) = s.run(&["update", "minimal"], &[]);
    assert_eq!(code, 0, "{err}");
    let checkout = s.checkout(&second);
    assert_eq!(git(&checkout, &["rev-parse", "HEAD"]), second);
    assert_eq!(
        std::fs::read_to_string(checkout.join("src/index.html")).unwrap(),
        "v2"
    );
    assert_eq!(
        std::fs::read_to_string(first.join("src/index.html")).unwrap(),
        "v1"
    );
    assert_eq!(inspect(&s)["commit"], s.first.as_str());

    // `up NAME` again finds the deployment, and names it by its registry name.
    let (code, _, err) = s.run(&["up", "minimal"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already deployed"), "{err}");
    assert!(
        err.contains("`tfgrid-compose up --resume minimal`"),
        "{err}"
    );

    // A cleared cache is no loss: the recorded commit is checked out again for a resume.
    std::fs::remove_dir_all(s.cache()).unwrap();
    let (code, _, err) = s.run(&["up", "--from", "application", "minimal"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Restoring"), "{err}");
    assert_eq!(git(&first, &["rev-parse", "HEAD"]), s.first);
    assert!(!s.checkout(&second).exists());

    let (code, _, err) = s.run(&["down", "--yes", "minimal"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!state_dir.exists());
    // Nothing is left of it in the data dir: the app's holder folder goes with its state.
    let holder = state_dir.parent().unwrap().parent().unwrap();
    assert!(!holder.exists(), "{} is left", holder.display());
}

#[test]
fn validate_finds_a_registry_app_as_up_does() {
    let s = Setup::new();
    // One resolver for every TARGET: `validate NAME` checks the registry app that `up NAME`
    // would deploy, at the commit the registry pins, and creates no deployment.
    let (code, _, err) = s.run(&["validate", "minimal"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Valid"), "{err}");
    assert_eq!(git(&s.checkout(&s.first), &["rev-parse", "HEAD"]), s.first);
    assert!(
        !s.cx
            .home()
            .join(".local/share/tfgrid-compose/apps")
            .exists(),
        "validate deploys nothing"
    );
    // A name in neither place is refused by both alike, naming both places.
    for command in ["validate", "up"] {
        let (code, _, err) = s.run(&[command, "no-such-app"], &[]);
        assert_eq!(code, 2, "{command}: {err}");
        assert!(
            err.contains(
                "not an app folder or manifest here, not a deployment, and not an app \
                in the registry"
            ),
            "{command}: {err}"
        );
    }
}

#[test]
fn a_commit_the_repository_lacks_is_refused() {
    let s = Setup::new();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    s.pin(missing);
    let (code, _, err) = s.run(&["up", "minimal"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "pins `minimal` to commit {missing}, which {} does not have (fetched twice)",
            s.repo_url()
        )),
        "{err}"
    );
    assert!(err.contains("never a branch head"), "{err}");
    // Fetched twice (branches and tags, then the commit by its id); nothing checked out,
    // nothing deployed.
    let log = std::fs::read_to_string(s.cache().join("apps/minimal/git.log")).unwrap();
    assert_eq!(log.matches(" fetch ").count(), 2, "{log}");
    assert!(
        log.contains(&format!("+{missing}:refs/tfgrid-compose/{missing}")),
        "{log}"
    );
    let entries: Vec<String> = std::fs::read_dir(s.cache().join("apps/minimal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "repo.git" && n != "git.log" && n != "lock")
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
    assert!(
        !s.cx
            .home()
            .join(".local/share/tfgrid-compose/apps")
            .exists()
    );
    assert!(!s.cx.fake_dir.join("argv.log").exists());

    // A version that is not a commit id is refused before any git.
    s.pin("1.0.0");
    let (code, _, err) = s.run(&["up", "minimal"], &[("TFGRID_COMPOSE_REGISTRY_TTL", "0s")]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("`version: 1.0.0`, which is not a full git commit id"),
        "{err}"
    );
}

#[test]
fn a_stale_copy_is_used_offline_with_its_age() {
    let mut s = Setup::new();
    let (code, _, err) = s.run(&["search"], &[]);
    assert_eq!(code, 0, "{err}");
    s.server.stop();
    let stale = [("TFGRID_COMPOSE_REGISTRY_TTL", "0s")];
    let (code, out, err) = s.run(&["search", "--json", "--tag", "web"], &stale);
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&out), ["minimal"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["registry"]["stale"], true);
    assert!(
        err.contains(&format!(
            "warning: could not fetch the app registry from {} (Connection refused",
            s.server.url("/apps.yaml")
        )),
        "{err}"
    );
    assert!(err.contains("); using the copy fetched "), "{err}");
    assert!(err.contains("s ago (`"), "{err}");

    // `update` must fetch: it fails, and says the copy is still there.
    let (code, _, err) = s.run(&["update"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the copy fetched "), "{err}");

    // No copy at all: a clear error with a hint.
    std::fs::remove_dir_all(s.cache()).unwrap();
    let (code, _, err) = s.run(&["search"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("and there is no copy of it here"), "{err}");
    assert!(
        err.contains("hint: check the network, or set `registry`"),
        "{err}"
    );
    let (code, _, err) = s.run(&["up", "minimal"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("`minimal` is not an app folder, a manifest or a deployment here, and the app registry cannot be read"),
        "{err}"
    );
}

#[test]
fn update_refreshes_the_registry() {
    let s = Setup::new();
    let (_, out, _) = s.run(&["search", "--json", "--tag", "test"], &[]);
    assert_eq!(names(&out), ["minimal"]);
    s.server.set_registry(
        &registry_with(&s.repo_url(), &s.first).replace("    - test\n", "    - fresh\n"),
    );
    // Within registry_ttl the copy answers, unchanged.
    let (_, out, _) = s.run(&["search", "--json", "--tag", "fresh"], &[]);
    assert!(names(&out).is_empty());
    assert_eq!(s.server.registry_requests(), 1);
    let (code, _, err) = s.run(&["update"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "Updated the app registry from {} (4 apps)",
            s.server.url("/apps.yaml")
        )),
        "{err}"
    );
    assert_eq!(s.server.registry_requests(), 2);
    let (code, out, err) = s.run(&["update", "--json", "minimal"], &[]);
    assert_eq!(code, 0, "{err}");
    let doc = crate::schema::assert_fits("update", &out);
    assert_eq!(doc["apps"], 4);
    assert_eq!(doc["app"]["commit"], s.first.as_str());
    assert_eq!(doc["registry"]["fetched_seconds_ago"], 0);
    assert_eq!(s.server.registry_requests(), 3);
    let (_, out, _) = s.run(&["search", "--json", "--tag", "fresh"], &[]);
    assert_eq!(names(&out), ["minimal"]);
    // A registry on disk (file:// or a path) is read as it is, with no copy.
    let file = s.cx.root.path().join("apps.yaml");
    std::fs::write(&file, registry_with(&s.repo_url(), &s.first)).unwrap();
    let url = format!("file://{}", file.display());
    let (code, out, err) = s.run(
        &["search", "--json", "--tag", "test"],
        &[("TFGRID_COMPOSE_REGISTRY", &url)],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&out), ["minimal"]);
    s.cx.cmd()
        .env("TFGRID_COMPOSE_REGISTRY", &file)
        .args(["config", "show"])
        .assert()
        .success()
        .stdout(contains(format!("registry          {}", file.display())))
        .stdout(contains("# env TFGRID_COMPOSE_REGISTRY"))
        .stdout(contains("registry_ttl      60m 00s"));
}
