//! A catalogue of bad inputs: each is a one-line error naming file, line and field, with a hint,
//! a non-zero exit, and nothing written to `.tfgrid-compose/`.

use crate::common::{TestContext, copy_dir, fixtures};

const BASE: &str = "name: minimal\nversion: 0.1.0\npattern: minimal\nconfig:\n  flavor: small\nhooks:\n  setup: deployment/setup.sh\n";

/// (case, manifest text or None to keep it, expected fragments of stderr)
fn manifest_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "malformed yaml",
            "name: [unclosed\npattern: minimal\n".into(),
            vec!["tfgrid-compose.yaml:", "hint:"],
        ),
        (
            "empty manifest",
            "\n".into(),
            vec!["tfgrid-compose.yaml:1:1: (document): the manifest is empty"],
        ),
        (
            "missing name",
            "pattern: minimal\n".into(),
            vec!["tfgrid-compose.yaml:1:", "missing field `name`"],
        ),
        (
            "name of wrong type",
            "name: [1, 2]\npattern: minimal\n".into(),
            vec!["tfgrid-compose.yaml:1:7: name: invalid type"],
        ),
        (
            "invalid name",
            "name: \"bad name!\"\npattern: minimal\n".into(),
            vec![
                "tfgrid-compose.yaml:1:1: name: `bad name!` is not a valid app name",
                "hint: use letters",
            ],
        ),
        (
            "unknown pattern",
            BASE.replace("pattern: minimal", "pattern: nope"),
            vec![
                "unknown pattern `nope`",
                "hint: known patterns: ai-stack, bash-vm, gateway, grid-like, k3s, local, minimal, single-vm",
            ],
        ),
        (
            "pattern with a path",
            BASE.replace("pattern: minimal", "pattern: ../minimal"),
            vec!["unknown pattern `../minimal`"],
        ),
        (
            "missing pattern",
            BASE.replace("pattern: minimal\n", ""),
            vec![
                "tfgrid-compose.yaml:",
                "pattern: missing field `pattern`",
                "hint: add `pattern: local`",
            ],
        ),
        (
            "hook that does not exist",
            BASE.replace("deployment/setup.sh", "deployment/nope.sh"),
            vec!["tfgrid-compose.yaml:7:3: hooks.setup: file `deployment/nope.sh` does not exist"],
        ),
        (
            "hook escaping the app",
            BASE.replace("deployment/setup.sh", "../../etc/passwd"),
            vec![
                "tfgrid-compose.yaml:7:3: hooks.setup: `../../etc/passwd` is outside the app folder",
            ],
        ),
        (
            "absolute hook",
            BASE.replace("deployment/setup.sh", "/bin/true"),
            vec!["hooks.setup: `/bin/true` is outside the app folder"],
        ),
        (
            "hook outside deployment/",
            BASE.replace("deployment/setup.sh", "src/index.html"),
            vec!["hooks.setup: `src/index.html` is not inside `deployment/`"],
        ),
        (
            "unknown hook key",
            BASE.replace("  setup:", "  deploy:"),
            vec!["tfgrid-compose.yaml:7:3: hooks: unknown field `deploy`"],
        ),
        (
            "unknown hook in hook_config",
            format!("{BASE}hook_config:\n  install:\n    optional: true\n"),
            vec!["tfgrid-compose.yaml:9:3: hook_config.install: unknown hook `install`"],
        ),
        (
            "hook timeout of wrong type",
            format!("{BASE}hook_config:\n  setup:\n    timeout: soon\n"),
            vec!["tfgrid-compose.yaml:10:14: hook_config.setup.timeout: invalid type"],
        ),
        (
            "hook hosts unknown",
            format!("{BASE}hook_config:\n  setup:\n    hosts: some\n"),
            vec!["hook_config.setup.hosts: unknown variant `some`"],
        ),
        (
            "config of wrong type",
            BASE.replace("flavor: small", "vm_count: two"),
            vec!["tfgrid-compose.yaml:5:3: config.vm_count: expected a number, found a string"],
        ),
        (
            "config below its minimum",
            BASE.replace("flavor: small", "vm_count: 0"),
            vec!["config.vm_count: 0 is below the minimum 1"],
        ),
        (
            "a fraction for a whole number",
            BASE.replace("flavor: small", "vm_count: 2.5"),
            vec!["tfgrid-compose.yaml:5:3: config.vm_count: 2.5 is not a whole number"],
        ),
        (
            "an env file that does not exist",
            format!("{BASE}env_file: .env.production\n"),
            vec![
                "tfgrid-compose.yaml:8:1: env_file: file `.env.production` does not exist",
                "hint: create it",
            ],
        ),
        (
            "a key written twice",
            BASE.replace(
                "flavor: small",
                "flavor: small\n  vm_count: 1\n  flavor: large",
            ),
            vec![
                "tfgrid-compose.yaml:7:3: config: duplicate entry with key \"flavor\"",
                "hint: write each key once",
            ],
        ),
        (
            "a top-level key written twice",
            format!("{BASE}name: other\n"),
            vec!["tfgrid-compose.yaml:8:1: (document): duplicate entry with key \"name\""],
        ),
        (
            "config above its maximum",
            BASE.replace("flavor: small", "vm_count: 99"),
            vec!["config.vm_count: 99 is above the maximum 4"],
        ),
        (
            "url that is not http",
            format!("{BASE}url: ftp://x/\n"),
            vec!["tfgrid-compose.yaml:8:1: url: `ftp://x/` is not an http(s) URL"],
        ),
        (
            "env file escaping the app",
            format!("{BASE}env_file: ../secrets.env\n"),
            vec!["tfgrid-compose.yaml:8:1: env_file: `../secrets.env` is outside the app folder"],
        ),
        (
            "ai_stack with an LLM that is not http",
            format!("{BASE}ai_stack:\n  llm:\n    - {{base_url: ftp://x, model: m}}\n"),
            vec![
                "tfgrid-compose.yaml:8:1: ai_stack: `llm[0].base_url` must start with http:// or \
                 https://",
            ],
        ),
        (
            "ai_stack with an unknown key",
            format!("{BASE}ai_stack:\n  llm: []\n  agents: 2\n"),
            vec!["tfgrid-compose.yaml:10:3: ai_stack: unknown field `agents`"],
        ),
        (
            "commands of wrong shape",
            format!("{BASE}commands:\n  run: /opt/run.sh\n"),
            vec!["tfgrid-compose.yaml:9:8: commands.run: invalid type"],
        ),
    ]
}

fn assert_rejected(cx: &TestContext, case: &str, args: &[&str], expected: &[&str]) {
    let out = cx.cmd().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{case}: exit code; stderr:\n{stderr}"
    );
    for fragment in expected {
        assert!(
            stderr.contains(fragment),
            "{case}: expected `{fragment}` in:\n{stderr}"
        );
    }
    assert!(
        stderr.starts_with("error: ") && stderr.contains("\nhint: "),
        "{case}: error line plus hint:\n{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{case}"
    );
    assert!(
        !cx.state_dir().exists(),
        "{case}: `.tfgrid-compose/` was written"
    );
    assert!(
        !cx.fake_dir.join("argv.log").exists(),
        "{case}: a tool was run"
    );
}

#[test]
fn bad_manifests_are_rejected_before_anything_is_written() {
    for (case, text, expected) in manifest_cases() {
        let cx = TestContext::new();
        std::fs::write(cx.app.join("tfgrid-compose.yaml"), &text).unwrap();
        let app = cx.app.display().to_string();
        assert_rejected(&cx, case, &["up", &app], &expected);
        let file = cx.app.join("tfgrid-compose.yaml");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            text,
            "{case}: the manifest was changed"
        );
    }
}

#[test]
fn bad_folders_and_patterns_are_rejected() {
    let cx = TestContext::new();
    let missing = cx.root.path().join("nowhere").display().to_string();
    assert_rejected(
        &cx,
        "app path that does not exist",
        &["up", &missing],
        &[
            "nowhere/tfgrid-compose.yaml: (document): no such file",
            "hint: check the path",
        ],
    );
    std::fs::remove_file(cx.app.join("tfgrid-compose.yaml")).unwrap();
    let app = cx.app.display().to_string();
    assert_rejected(
        &cx,
        "folder without manifest",
        &["up", &app],
        &[
            "app/tfgrid-compose.yaml: (document): no such file",
            "hint: an app folder holds",
        ],
    );

    for (case, breakage, expected) in [
        (
            "pattern without site.yml",
            "platform/site.yml",
            "platform/site.yml: (file): missing",
        ),
        (
            "pattern without terraform",
            "infrastructure/main.tf",
            "infrastructure: (folder): no `*.tf` file",
        ),
    ] {
        let cx = TestContext::new();
        let patterns = cx.root.path().join("patterns");
        copy_dir(
            &fixtures().join("patterns/minimal"),
            &patterns.join("minimal"),
        );
        std::fs::remove_file(patterns.join("minimal").join(breakage)).unwrap();
        let out = cx
            .cmd()
            .env("TFGRID_COMPOSE_PATTERNS_DIR", &patterns)
            .arg("up")
            .arg(&cx.app)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}");
        assert!(
            stderr.contains(expected) && stderr.contains("hint:"),
            "{case}: {stderr}"
        );
        assert!(!cx.state_dir().exists(), "{case}");
    }

    let cx = TestContext::new();
    let patterns = cx.root.path().join("patterns");
    copy_dir(
        &fixtures().join("patterns/minimal"),
        &patterns.join("minimal"),
    );
    std::fs::write(
        patterns.join("minimal/pattern.yaml"),
        "name: minimal\nversion: 1\nvariables:\n  x: {type: float}\n",
    )
    .unwrap();
    let out = cx
        .cmd()
        .env("TFGRID_COMPOSE_PATTERNS_DIR", &patterns)
        .arg("up")
        .arg(&cx.app)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pattern.yaml:4:")
            && stderr.contains("variables.x.type: unknown variant `float`"),
        "{stderr}"
    );
    assert!(!cx.state_dir().exists());
}

#[test]
fn an_unknown_key_is_a_warning_with_the_nearest_one_and_strict_makes_it_an_error() {
    let cx = TestContext::new();
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}hook_confg: {{}}\nlicence: MIT\n")).unwrap();
    let app = cx.app.display().to_string();
    let (code, _, stderr) = cx.run(&["validate", &app]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("unknown key `hook_confg` is ignored (did you mean `hook_config`?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown key `licence` is ignored (did you mean `license`?)"),
        "{stderr}"
    );
    let (code, _, stderr) = cx.run(&["validate", "--strict", &app]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("2 warnings and --strict"), "{stderr}");
    assert!(!cx.state_dir().exists(), "validate writes nothing");
}

#[test]
fn usage_errors_exit_2() {
    let cx = TestContext::new();
    let out = cx
        .cmd()
        .args(["up", "--from", "bogus"])
        .arg(&cx.app)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'bogus'"));
    assert!(!cx.state_dir().exists());
}

#[test]
fn missing_tools_are_named() {
    let cx = TestContext::new();
    std::fs::remove_file(cx.bin.join("tofu")).unwrap();
    let app = cx.app.display().to_string();
    let out = cx
        .cmd()
        .env("PATH", cx.bin.display().to_string())
        .args(["up", &app])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("neither `tofu` nor `terraform` is on PATH")
            && stderr.contains("hint: install one"),
        "{stderr}"
    );
    let out = cx
        .cmd()
        .env("TFGRID_COMPOSE_TOFU", "/nonexistent/tofu")
        .args(["up", &app])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("TFGRID_COMPOSE_TOFU names `/nonexistent/tofu`")
    );
    assert!(!cx.state_dir().exists());
}

#[test]
fn broken_contract_names_the_output_and_keeps_state() {
    let cx = TestContext::new();
    cx.set_outputs(r#"{"primary_ip_type":{"value":"ipv4"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]}}"#);
    let out = cx.cmd().arg("up").arg(&cx.app).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(
            "pattern `minimal` broke its output contract: output `primary_ip` is missing"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the pattern's infrastructure must declare `output \"primary_ip\"`"),
        "{stderr}"
    );
    assert!(cx.state_dir().join("terraform/terraform.tfstate").exists());
}

#[test]
fn newer_state_is_refused_with_a_hint() {
    let cx = TestContext::new();
    cx.cmd().arg("up").arg(&cx.app).assert().success();
    let path = cx.state_dir().join("state.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("schema_version: 1", "schema_version: 9");
    std::fs::write(&path, &text).unwrap();
    let out = cx.cmd().arg("status").arg(&cx.app).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema_version 9") && stderr.contains("hint: upgrade tfgrid-compose"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn bad_backup_archives_are_refused_before_a_stack_is_asked_and_stay_as_they_were() {
    use tfgrid_compose::ai::archive::{Archive, FORMAT};
    let cx = TestContext::new();
    let good = Archive::new(
        "http://10.1.0.2",
        Vec::new(),
        [
            ("projects.db".to_string(), b"db".to_vec()),
            ("routes.json".into(), b"[]".to_vec()),
        ]
        .into(),
    );
    let write = |name: &str, bytes: &[u8]| {
        let path = cx.app.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let mut changed = good.clone();
    changed.files.insert("routes.json".into(), b"[{}]".to_vec());
    let mut newer = good.clone();
    newer.manifest.format = FORMAT + 1;
    let cases = [
        (
            "changed",
            changed.to_bytes().unwrap(),
            "checksum mismatch for `routes.json`",
        ),
        (
            "newer",
            newer.to_bytes().unwrap(),
            "the archive has format version 2; this tool reads version 1",
        ),
        (
            "not an archive",
            b"<html>not found</html>".to_vec(),
            "not a backup archive",
        ),
        // A sound archive passes its checks; then the missing stack is what is refused.
        (
            "no stack",
            good.to_bytes().unwrap(),
            "no AI-stack agent is configured",
        ),
    ];
    for (case, bytes, expected) in cases {
        let path = write(&format!("{}.tar.gz", case.replace(' ', "-")), &bytes);
        assert_rejected(&cx, case, &["projects", "restore", &path], &[expected]);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{case}: the file changed"
        );
    }
    assert_rejected(
        &cx,
        "missing",
        &["projects", "restore", "/nonexistent/stack.tar.gz"],
        &["cannot read `/nonexistent/stack.tar.gz`"],
    );
    assert_rejected(
        &cx,
        "backup without a stack",
        &["projects", "backup"],
        &["no AI-stack agent is configured"],
    );
}

#[test]
fn a_negative_max_monthly_cost_is_refused_at_its_line() {
    let cx = crate::common::TestContext::new();
    cx.append_to_manifest("max_monthly_cost: -5\n");
    let (code, _, err) = cx.run(&["validate", cx.app_arg()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tfgrid-compose.yaml:")
            && err.contains("max_monthly_cost")
            && err.contains("-5"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}
