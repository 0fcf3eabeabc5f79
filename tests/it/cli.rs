//! The CLI surface: completions and man page from the clap definition, docs that match it,
//! `config show` with its sources, and every command in CI mode (stdin closed) ending on its own.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::TestContext;
use crate::schema::assert_fits;

#[test]
fn completions_and_man_page_are_generated() {
    let cx = TestContext::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef tfgrid-compose"),
        ("fish", "complete -c tfgrid-compose"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let (code, out, err) = cx.run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: no `{marker}`");
        assert!(
            out.contains("inspect") && (out.contains("--env") || out.contains("-l env")),
            "{shell}: subcommands and flags are completed"
        );
    }
    let (code, out, _) = cx.run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{out}");
    let (code, out, _) = cx.run(&["man"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(".ie") || out.contains(".TH tfgrid-compose"),
        "{}",
        &out[..200.min(out.len())]
    );
    assert!(out.contains("select") && out.contains("completions"));
}

fn doc(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name),
    )
    .unwrap()
}

#[test]
fn cli_doc_covers_every_command_and_flag() {
    use clap::CommandFactory as _;
    let text = doc("cli.md");
    let cli = tfgrid_compose::cli::Cli::command();
    let mut missing = Vec::new();
    for arg in cli.get_arguments().filter_map(|a| a.get_long()) {
        if !text.contains(&format!("--{arg}")) {
            missing.push(format!("global --{arg}"));
        }
    }
    for sub in cli.get_subcommands() {
        let name = sub.get_name();
        if !text.contains(&format!("`{name}")) {
            missing.push(format!("command {name}"));
        }
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_global_set())
            .filter_map(|a| a.get_long())
        {
            if !text.contains(&format!("--{arg}")) {
                missing.push(format!("{name} --{arg}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/cli.md does not mention: {missing:?}"
    );
    for page in [
        "getting-started.md",
        "environments.md",
        "exit-codes.md",
        "json-output.md",
        "configuration.md",
        "patterns.md",
        "manifest.md",
    ] {
        assert!(
            doc("../README.md").contains(&format!("docs/{page}")),
            "README links docs/{page}"
        );
    }
}

#[test]
fn manifest_doc_example_parses() {
    let text = doc("manifest.md");
    let start = text
        .find("<!-- example-manifest -->")
        .expect("docs/manifest.md marks its example");
    let block = &text[start..];
    let yaml = block
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("deployment")).unwrap();
    for hook in ["setup.sh", "configure.sh", "healthcheck.sh"] {
        let path = dir.path().join("deployment").join(hook);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    std::fs::write(dir.path().join("tfgrid-compose.yaml"), yaml).unwrap();
    std::fs::write(dir.path().join(".env"), "DOMAIN=example.org\n").unwrap();
    let app = tfgrid_compose::manifest::App::load(dir.path())
        .unwrap_or_else(|e| panic!("docs/manifest.md example: {e}"));
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
    assert!(!app.manifest.commands.is_empty() && app.manifest.max_environments.is_some());
    app.hooks().unwrap();
}

/// docs/configuration.md's table of settings is the one `settings.rs` generates from its table,
/// so the docs cannot drift from the resolver, `config show` or the config file's keys.
#[test]
fn configuration_doc_holds_the_settings_table() {
    let table = tfgrid_compose::settings::reference_table();
    assert!(
        doc("configuration.md").contains(&table),
        "docs/configuration.md's settings table differs from src/settings.rs; it should read:\n{table}"
    );
}

#[test]
fn config_show_names_sources_and_never_the_mnemonic() {
    let cx = TestContext::new();
    let config = cx.home().join(".config/tfgrid-compose");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.yaml"), "lock_wait: 20s\nenv: staging\n").unwrap();
    let out = cx
        .cmd()
        .args(["config", "show", "--json", "--env", "qa"])
        .env("TF_VAR_mnemonic", "canary words canary words")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = assert_fits("config", &text);
    let s = &doc["settings"];
    assert_eq!(s["env"]["value"], "qa");
    assert_eq!(s["env"]["source"]["kind"], "flag");
    assert_eq!(s["lock_wait"]["value"], "20.0s");
    assert_eq!(s["lock_wait"]["source"]["kind"], "config");
    assert_eq!(s["ssh_port"]["source"]["name"], "TFGRID_COMPOSE_SSH_PORT");
    assert_eq!(s["tofu"]["source"]["kind"], "default");
    assert_eq!(s["mnemonic"]["value"], "<redacted>");
    assert!(!text.contains("canary"));
    let out = cx
        .cmd()
        .args(["config", "show"])
        .env("TF_VAR_mnemonic", "canary words canary words")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("env               staging") && text.contains("# config "),
        "{text}"
    );
    assert!(
        text.contains("mnemonic          <redacted>")
            && text.contains("# env TF_VAR_mnemonic")
            && !text.contains("canary"),
        "{text}"
    );
    // A typo in the config file is one line with file, line and field, and exit 2.
    std::fs::write(config.join("config.yaml"), "lock_wait: 20s\nssh_prot: 22\n").unwrap();
    let (code, _, err) = cx.run(&["ps"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("config.yaml:2:1: ssh_prot: unknown field") || err.contains("config.yaml:2:1"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

/// Every command with stdin closed, as in CI: none may wait for input; each ends within the limit.
#[test]
fn no_command_blocks_without_a_terminal() {
    let cx = TestContext::new();
    let (code, _, err) = cx.run(&["up", cx.app_arg()]);
    assert_eq!(code, 0, "{err}");
    let app = cx.app_arg().to_string();
    let cases: Vec<(Vec<&str>, Option<i32>)> = vec![
        (vec!["down", &app], Some(2)),
        (vec!["status", &app], Some(0)),
        (vec!["address", &app], Some(0)),
        (vec!["ps"], Some(0)),
        (vec!["inspect", &app], Some(0)),
        (vec!["logs", "-a", &app], Some(0)),
        (vec!["validate", &app], Some(0)),
        (vec!["commands"], Some(0)),
        (vec!["config", "show"], Some(0)),
        (vec!["ssh", "-a", &app], Some(0)),
        (vec!["exec", "-a", &app, "true"], Some(0)),
        (vec!["select", "minimal"], Some(0)),
        (vec!["unselect"], Some(0)),
        (vec!["up", &app], Some(2)),
        (vec!["completions", "bash"], Some(0)),
        (vec!["man"], Some(0)),
        (vec!["ps", "--prune"], Some(0)),
        // The test registry file is absent: a clear error, at once.
        (vec!["search"], Some(1)),
        (vec!["update", "minimal"], Some(1)),
    ];
    for (args, expected) in cases {
        // stdout to a file, not a pipe nobody reads: a completion script is larger than a pipe holds
        let stdout = tempfile::tempfile().unwrap();
        let mut child = cx
            .std_cmd()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "`{}` still running after 30 s with stdin closed",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            status.code(),
            expected,
            "`{}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cx
        .std_cmd()
        .args(["down", &app])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass `--yes`"));
    assert!(
        cx.state_dir().join("state.yaml").is_file(),
        "nothing was destroyed"
    );
}
