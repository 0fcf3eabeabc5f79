//! Env files, full disks and read-only folders, clocks, what tools print: the env file read as
//! docker compose reads `.env` with the passwords people generate; a real tmpfs filled up under
//! `up` and `down`; mtimes and timestamps from the future; a tool printing 300 MiB, bytes that are
//! not UTF-8 and colour codes. Fake tools on PATH stand in for Terraform and ssh (argv and stdin
//! recorded); the disk, the clock's files and the bytes are real.

use std::process::Command;

use crate::common::TestContext;

fn declare(cx: &TestContext, names: &[&str]) {
    let list: String = names.iter().map(|n| format!("  - name: {n}\n")).collect();
    cx.append_to_manifest(&format!("environment:\n{list}"));
}

/// What the hooks' shell sees for `name` after sourcing the env script `up` sent over ssh.
fn hook_value(cx: &TestContext, name: &str) -> String {
    let script = cx.fake_dir.join("stdin-0");
    let out = Command::new("sh")
        .args(["-c", ". \"$1\" && printenv \"$2\"", "sh"])
        .arg(&script)
        .arg(name)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "{name} not in {}", script.display());
    let mut value = String::from_utf8(out.stdout).unwrap();
    assert_eq!(value.pop(), Some('\n'));
    value
}

#[test]
fn generated_passwords_reach_the_hooks_as_compose_reads_the_env_file() {
    let cx = TestContext::new();
    let names = [
        "B64", "PWGEN", "ESCAPED", "DOLLARS", "DB_URL", "PORT", "MODE", "LITERAL",
    ];
    declare(&cx, &names);
    // `openssl rand -base64 32` (with `/`, `+`, `=`), pwgen -sy style (`$`, `#`, quotes,
    // backslashes), written the ways docker's "env file syntax" page documents.
    std::fs::write(
        cx.app.join(".env"),
        concat!(
            "# secrets for the app\n",
            "B64=q4V/8r+Tz0K1m2bNwq9XyZa7LcQe3Rf5Gh6Jk8Mn0o=\n",
            "PWGEN='Zu$ie#7\"q\\x'   # single quotes: literal\n",
            "ESCAPED=\"a\\$b#c \\\"d\\\" e\\\\f\"\n",
            "DOLLARS=x$$y$$\n",
            "DB_URL=\"postgres://app:${B64}@db:${PORT_FROM_ENV:-5432}/app\"\n",
            "PORT=${PORT_FROM_ENV-5432}\n",
            "export MODE=staging # inline comment\n",
            "LITERAL='${B64}'\n",
        ),
    )
    .unwrap();
    let (code, _, err) = cx.run(&["up", cx.app_arg()]);
    assert_eq!(code, 0, "{err}");
    for (name, want) in [
        ("B64", "q4V/8r+Tz0K1m2bNwq9XyZa7LcQe3Rf5Gh6Jk8Mn0o="),
        ("PWGEN", "Zu$ie#7\"q\\x"),
        ("ESCAPED", "a$b#c \"d\" e\\f"),
        ("DOLLARS", "x$y$"),
        (
            "DB_URL",
            "postgres://app:q4V/8r+Tz0K1m2bNwq9XyZa7LcQe3Rf5Gh6Jk8Mn0o=@db:5432/app",
        ),
        ("PORT", "5432"),
        ("MODE", "staging"),
        ("LITERAL", "${B64}"),
    ] {
        assert_eq!(hook_value(&cx, name), want, "{name}");
    }
}

#[test]
fn a_dollar_in_an_unquoted_password_is_refused_at_its_line_before_anything_is_created() {
    let cx = TestContext::new();
    declare(&cx, &["ADMIN_PASSWORD"]);
    let env = cx.app.join(".env");
    std::fs::write(&env, "# pwgen -sy 12\nADMIN_PASSWORD=k7#Lp$w9Qz!x\n").unwrap();
    let (code, _, err) = cx.run(&["up", cx.app_arg()]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!("{}:2:", env.display()))
            && err.contains("ADMIN_PASSWORD")
            && err.contains("`$w9Qz`"),
        "{err}"
    );
    assert!(err.contains("$$") && err.contains("single quotes"), "{err}");
    assert!(!cx.app.join(".tfgrid-compose").exists());
    assert!(cx.transcript().is_empty(), "{:?}", cx.transcript());
}

/// Runs `sh SCRIPT` (its text) before the fake `TOOL` answers a call whose argv holds `substring`.
fn fake_script(cx: &TestContext, tool: &str, substring: &str, script: &str) -> (String, String) {
    let file = cx.fake_dir.join(format!("{tool}-script.sh"));
    std::fs::write(&file, script).unwrap();
    (
        "FAKE_SCRIPT".into(),
        format!("{tool}:{substring}:{}", file.display()),
    )
}

/// The binary run with `args` and one more variable: its exit code and stderr.
fn run_with(cx: &TestContext, args: &[&str], (key, value): (&str, &str)) -> (Option<i32>, String) {
    let out = cx.cmd().args(args).env(key, value).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), err)
}

/// `cmd` run under `/usr/bin/time`: its exit code, stderr, and peak resident memory in KiB.
fn run_measured(cx: &TestContext, cmd: &Command) -> (i32, String, u64) {
    let time = std::path::Path::new("/usr/bin/time");
    assert!(
        time.is_file(),
        "/usr/bin/time is missing: scripts/install-deps.sh installs it (apt package `time`)"
    );
    let report = cx.root.path().join("time.txt");
    let mut measured = Command::new(time);
    measured
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
    if let Some(dir) = cmd.get_current_dir() {
        measured.current_dir(dir);
    }
    let out = measured.output().unwrap();
    let peak = std::fs::read_to_string(&report).unwrap();
    let peak = peak.lines().last().unwrap().trim().parse().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        peak,
    )
}

const TOKEN: &str = "tok-8Hq2pZ7xW4mN";

/// Every file under the deployment's `logs/`.
fn walk_logs(cx: &TestContext) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![cx.state_dir().join("logs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

/// Megabytes a tool prints in the memory test (the figure docs/performance.md gives).
const HUGE_MIB: u64 = 300;

#[test]
fn a_tool_printing_300_mib_with_odd_bytes_leaves_memory_bounded_and_its_last_words_in_the_error() {
    let cx = TestContext::new();
    // A secret the command knows, so that the log is scanned and rewritten too.
    cx.append_to_manifest("environment:\n  - name: API_TOKEN\n    secret: true\n");
    // 300 MiB of 100-byte lines, then a byte that is not UTF-8, the error in colour, and the
    // blank and colour-only lines tools end with.
    let script = format!(
        "printf '\\033[1mApplying with %s\\033[0m\\n' \"$API_TOKEN_SEEN\"\n\
         yes 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' | head -c {}\n\
         printf 'bad byte \\377 here\\n' >&2\n\
         printf '\\033[31mError:\\033[0m the node ran out of capacity\\n' >&2\n\
         printf '\\n\\033[0m\\n   \\n\\r\\n' >&2\n\
         exit 1\n",
        HUGE_MIB << 20
    );
    let (key, value) = fake_script(&cx, "tofu", " apply ", &script);
    let mut cmd = cx.std_cmd();
    cmd.args(["up", cx.app_arg()])
        .env(key, value)
        .env("API_TOKEN", TOKEN)
        .env("API_TOKEN_SEEN", TOKEN);
    let (code, err, peak_kib) = run_measured(&cx, &cmd);
    assert_eq!(code, 1, "{err}");
    let quoted: Vec<&str> = err.lines().collect();
    let at = quoted
        .iter()
        .position(|l| l.contains("bad byte \u{fffd} here"))
        .unwrap_or_else(|| panic!("the odd byte's line is not quoted: {err}"));
    assert_eq!(
        quoted[at + 1].trim(),
        "Error: the node ran out of capacity",
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "colour codes in the error: {err}");
    let log = walk_logs(&cx)
        .into_iter()
        .find(|l| l.ends_with("infrastructure.log"));
    let log = std::fs::File::open(log.expect("the infrastructure log")).unwrap();
    let mut head = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(log, 4096), &mut head).unwrap();
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.contains("Applying with <redacted>") && !head.contains(TOKEN),
        "{head}"
    );
    #[expect(
        clippy::print_stderr,
        reason = "the figure scripts/bench-io.sh writes to docs/performance.md"
    )]
    {
        eprintln!("peak RSS of `up` while a tool printed {HUGE_MIB} MiB: {peak_kib} KiB");
    }
    assert!(
        peak_kib < 50 * 1024,
        "peak RSS {peak_kib} KiB while a tool printed {HUGE_MIB} MiB"
    );
}

#[test]
fn a_command_whose_answer_is_larger_than_the_capture_limit_fails_instead_of_filling_memory() {
    let cx = TestContext::new();
    let script = format!(
        "yes '{{}}' | head -c {}\n",
        tfgrid_compose::process::CAPTURE_LIMIT + 1
    );
    let (key, value) = fake_script(&cx, "tofu", " output ", &script);
    let (code, err) = run_with(&cx, &["up", cx.app_arg()], (&key, &value));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("more than 16 MiB on stdout"), "{err}");
}

/// A tmpfs of a few MiB mounted at a folder of the test, unmounted when dropped whatever
/// happened (lazily if something still holds it).
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(dir: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tfgc-world-io",
            ])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs needs root");
        Tmpfs { dir }
    }

    fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// The app of `cx` copied onto a new tmpfs of `size`: (the mount, the app folder on it).
fn app_on_tmpfs(cx: &TestContext, size: &str) -> (Tmpfs, std::path::PathBuf) {
    let disk = Tmpfs::mount(cx.root.path().join("disk"), size);
    let app = disk.dir.join("app");
    crate::common::copy_dir(&cx.app, &app);
    (disk, app)
}

#[test]
fn a_disk_that_fills_up_during_up_names_the_file_and_cause_and_down_still_destroys() {
    let cx = TestContext::new();
    let (disk, app) = app_on_tmpfs(&cx, "4m");
    let app_arg = app.to_str().unwrap();
    let state_file = app.join(".tfgrid-compose/default/state.yaml");
    // `apply` fills the disk, as a large provider log or another program would.
    let fill = format!(
        "head -c 64M /dev/zero > '{}/filler' 2>/dev/null\ntrue\n",
        disk.dir.display()
    );
    let (key, value) = fake_script(&cx, "tofu", " apply ", &fill);
    let (code, err) = run_with(&cx, &["up", app_arg], (&key, &value));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(" phase: cannot record its")
            && err.contains(&format!("cannot write `{}`", state_file.display()))
            && err.contains("No space left on device")
            && err.contains("is full: free some space there"),
        "{err}"
    );
    assert!(
        !err.contains("default/.tmp"),
        "a temp file named instead of the file: {err}"
    );

    // Nothing runs, and neither `ps` nor `status` says it does.
    let (code, ps, err) = cx.run(&["ps", "--json"]);
    assert_eq!(code, 0, "{err}");
    let ps: serde_json::Value = serde_json::from_str(&ps).unwrap();
    assert_eq!(ps["deployments"][0]["status"], "interrupted", "{ps}");
    let (code, status, err) = cx.run(&["status", app_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        status.contains("status      interrupted") && !status.contains(" running"),
        "{status}"
    );

    // `down` on the still full disk destroys what is paid for first, then forgets it.
    cx.clear_transcript();
    let (code, _, err) = cx.run(&["down", "--yes", app_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        cx.steps().iter().any(|s| s == "tofu destroy"),
        "{:?}",
        cx.steps()
    );
    assert!(!app.join(".tfgrid-compose/default").exists());
    let (_, ps, _) = cx.run(&["ps", "--json"]);
    assert!(ps.contains("\"deployments\":[]"), "{ps}");
    drop(disk);
}

#[test]
fn a_read_only_app_folder_stops_up_naming_the_folder_and_cause_before_any_tool_runs() {
    let cx = TestContext::new();
    let (disk, app) = app_on_tmpfs(&cx, "4m");
    disk.remount_read_only();
    let (code, _, err) = cx.run(&["up", app.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("`{}", app.join(".tfgrid-compose").display()))
            && err.contains("Read-only file system")
            && err.contains("is on a read-only filesystem: remount it read-write"),
        "{err}"
    );
    assert!(cx.transcript().is_empty(), "{:?}", cx.transcript());
}

/// Sets the modification time of every file in `dir` to `ahead` in the future, as a copy from a
/// machine whose clock runs ahead leaves it.
fn date_in_the_future(dir: &std::path::Path, ahead: std::time::Duration) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let file = std::fs::File::options()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap();
        file.set_modified(std::time::SystemTime::now() + ahead)
            .unwrap();
    }
}

#[test]
fn a_registry_copy_dated_in_the_future_is_expired_not_fresh_forever() {
    let mut s = crate::catalog::Setup::new();
    let copies = s.cache().join("registry");
    let day = std::time::Duration::from_secs(86_400);
    let (code, _, err) = s.run(&["search"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.server.registry_requests(), 1);
    date_in_the_future(&copies, 300 * day);
    let (code, _, err) = s.run(&["search"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        s.server.registry_requests(),
        2,
        "a copy dated in the future was taken as fresh"
    );

    // Offline, it is still used, without an age it does not have.
    date_in_the_future(&copies, 300 * day);
    s.server.stop();
    let (code, out, err) = s.run(&["search", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["registry"]["stale"], true, "{out}");
    assert!(doc["registry"]["fetched_seconds_ago"].is_null(), "{out}");
    assert!(
        err.contains("using the copy dated in the future (a skewed clock or a copied file)"),
        "{err}"
    );
}

#[test]
fn a_run_in_progress_is_shown_running_and_the_same_record_after_it_was_killed_is_not() {
    let cx = TestContext::new();
    let child = crate::interrupt::start(&cx, &["up", cx.app_arg()], "tofu: apply ");
    // Whatever fails below, `up` and the tool it started are stopped.
    let _stop = StopOnDrop(&cx, child.id());
    crate::common::wait_for_file(&cx.fake_dir.join("hanging"));
    let (_, ps, err) = cx.run(&["ps", "--json"]);
    let ps: serde_json::Value = serde_json::from_str(&ps).expect(&err);
    assert_eq!(ps["deployments"][0]["status"], "deploying", "{ps}");
    let (_, status, _) = cx.run(&["status", cx.app_arg()]);
    assert!(status.contains("infrastructure  running"), "{status}");
    // SIGKILL: nothing records the end; the tool's group is stopped by the test.
    crate::interrupt::kill("KILL", &child.id().to_string());
    let _ = child.wait_with_output();
    crate::interrupt::kill("KILL", &format!("-{}", read_pid_group(&cx)));
    let (_, ps, _) = cx.run(&["ps", "--json"]);
    let ps: serde_json::Value = serde_json::from_str(&ps).unwrap();
    assert_eq!(ps["deployments"][0]["status"], "interrupted", "{ps}");
    let (_, status, _) = cx.run(&["status", cx.app_arg()]);
    assert!(
        status.contains("infrastructure  interrupted") && !status.contains(" running"),
        "{status}"
    );
}

/// Stops (SIGKILL) a started `up` by its pid, and the tool it left running by the pid file
/// beside its log, when dropped.
struct StopOnDrop<'a>(&'a TestContext, u32);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.1.to_string()])
            .status();
        if let Some(group) = pid_group(self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
    }
}

/// The pid of the tool a killed `up` left running, from the `<log>.<pid>.pid` file beside its log
/// (it leads its own process group).
fn read_pid_group(cx: &TestContext) -> String {
    pid_group(cx).expect("a pid file beside the log of the tool still running")
}

fn pid_group(cx: &TestContext) -> Option<String> {
    walk_logs(cx).iter().find_map(|f| {
        let name = f.file_name()?.to_str()?;
        let rest = name.strip_suffix(".pid")?;
        Some(rest.rsplit('.').next()?.to_string())
    })
}
