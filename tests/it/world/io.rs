//! Env files, full disks and read-only folders, clocks, what tools print: the env file read as
//! docker compose reads `.env` with the passwords people generate; a real tmpfs filled up under
//! `up` and `down`; mtimes and timestamps from the future; a tool printing 300 MiB, bytes that are
//! not UTF-8 and colour codes. Fake tools on PATH stand in for Terraform and ssh (argv and stdin
//! recorded); the disk, the clock's files and the bytes are real.

use std::process::Command;

use crate::common::TestContext;

fn declare(cx: &TestContext, names: &[&str]) {
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("environment:\n");
    for name in names {
        text.push_str(&format!("  - name: {name}\n"));
    }
    std::fs::write(&manifest, text).unwrap();
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
