//! What a user of the bash tool brings along (tfgrid-compose-bash.md §2, §2.3, §4.7, §7.1):
//! `environment:` declarations, `deployment/playbook.yml`, `credentials.yaml` and
//! `preferences.yaml`, all with the fake tools.

use crate::common::TestContext;

/// The bash tool's `environment:` shape (§2: `{name, description, required, default, secret,
/// options[], depends_on{KEY: value}}`), as the registry's apps write it.
const ENVIRONMENT: &str = "environment:
  - name: DOMAIN
    description: Public domain of the app
    required: true
  - name: SSL_EMAIL
  - name: ADMIN_PASSWORD
    required: true
    secret: true
  - name: MODE
    default: production
    options: [production, staging]
";

fn app_with_environment(cx: &TestContext) {
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}{ENVIRONMENT}")).unwrap();
}

#[test]
fn a_missing_required_variable_stops_up_before_anything_is_created() {
    let cx = TestContext::new();
    app_with_environment(&cx);
    let (code, _, err) = cx.run(&["up", cx.app_arg()]);
    assert_eq!(code, 2, "{err}");
    let manifest = cx.app.join("tfgrid-compose.yaml");
    // `environment:` starts at line 9 of the fixture; DOMAIN's `- name:` is the next line.
    assert!(
        err.contains(&format!("{}:10:", manifest.display()))
            && err.contains("environment.DOMAIN")
            && err.contains("`DOMAIN` (Public domain of the app) is required and not set"),
        "{err}"
    );
    assert!(err.contains("export DOMAIN="), "{err}");
    assert!(!cx.app.join(".tfgrid-compose").exists());
    assert!(cx.transcript().is_empty(), "{:?}", cx.transcript());

    // An option outside the list is refused at its line too.
    let (code, _, err) = cx
        .cmd()
        .args(["validate", cx.app_arg()])
        .env("DOMAIN", "example.org")
        .env("ADMIN_PASSWORD", "pw")
        .env("MODE", "testing")
        .output()
        .map(|o| {
            (
                o.status.code().unwrap(),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(":17:") && err.contains("production, staging"),
        "{err}"
    );
}

#[test]
fn declared_variables_reach_every_hook_under_the_bash_names_and_secrets_stay_out_of_sight() {
    let cx = TestContext::new();
    app_with_environment(&cx);
    std::fs::write(
        cx.app.join(".env"),
        "# the app's env file, read, never run\nSSL_EMAIL=ops@example.org\nADMIN_PASSWORD='s3cr3t $(id)'\n",
    )
    .unwrap();
    let home_config = cx.home().join(".config/tfgrid-compose");
    std::fs::create_dir_all(&home_config).unwrap();
    std::fs::write(
        home_config.join("credentials.yaml"),
        "git:\n  name: \"Ada Lovelace\"\n  email: \"ada@example.org\"\n",
    )
    .unwrap();
    let out = cx
        .cmd()
        .args(["up", cx.app_arg()])
        .env("DOMAIN", "app.example.org")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");

    // The values travel on ssh's stdin into a private file, never in an argv.
    let script = std::fs::read_to_string(cx.fake_dir.join("stdin-0")).unwrap();
    for line in [
        "export DOMAIN='app.example.org'",
        "export SSL_EMAIL='ops@example.org'",
        "export ADMIN_PASSWORD='s3cr3t $(id)'",
        "export MODE='production'",
        "export TFGRID_DOMAIN='app.example.org'",
        "export TFGRID_SSL_EMAIL='ops@example.org'",
        "export TFGRID_GIT_NAME='Ada Lovelace'",
        "export TFGRID_GIT_EMAIL='ada@example.org'",
    ] {
        assert!(script.lines().any(|l| l == line), "{line} in {script}");
    }
    let transcript = cx.transcript();
    let write = transcript
        .iter()
        .find(|l| l.contains("cat > "))
        .expect("the env script is written");
    assert!(write.contains("'umask 077"), "{write}");
    for hook in ["setup.sh", "healthcheck.sh"] {
        let line = transcript
            .iter()
            .find(|l| l.starts_with("ssh") && l.contains(hook))
            .unwrap();
        assert!(
            line.contains("'sh' '-c' '. \"$1\" && shift && exec \"$@\"' 'sh' '/tmp/app-deployment/.tfgrid-compose.env' 'env' '-C'"),
            "{line}"
        );
    }
    let everything = format!(
        "{}\n{err}\n{}\n{}",
        transcript.join("\n"),
        cx.state_text(),
        logs_text(&cx)
    );
    assert!(
        !everything.contains("s3cr3t"),
        "the secret leaked: {everything}"
    );
}

fn logs_text(cx: &TestContext) -> String {
    let mut text = String::new();
    for entry in walk(&cx.state_dir().join("logs")) {
        text.push_str(&std::fs::read_to_string(entry).unwrap_or_default());
    }
    text
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn an_apps_playbook_runs_in_place_of_setup_with_the_deployment_inventory() {
    let cx = TestContext::new();
    std::fs::write(
        cx.app.join("deployment/playbook.yml"),
        "- hosts: all\n  tasks:\n    - ansible.builtin.debug:\n        msg: \"{{ lookup('env', 'TOKEN') }}\"\n",
    )
    .unwrap();
    let manifest = cx.app.join("tfgrid-compose.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}environment:\n  - name: TOKEN\n    secret: true\n"),
    )
    .unwrap();
    let out = cx
        .cmd()
        .args(["up", cx.app_arg()])
        .env("TOKEN", "tok-123-secret")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let steps = cx.steps();
    let playbooks: Vec<String> = cx
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("ansible-playbook"))
        .collect();
    assert_eq!(playbooks.len(), 2, "{steps:?}");
    assert_eq!(
        playbooks[1],
        "ansible-playbook -i [STATE]/inventory.ini -e @[STATE]/extra-vars.json [APP]/deployment/playbook.yml"
    );
    assert!(!steps.iter().any(|s| s == "ssh setup"), "{steps:?}");
    assert!(steps.iter().any(|s| s == "ssh healthcheck"), "{steps:?}");
    assert!(
        err.contains("Running playbook `deployment/playbook.yml`"),
        "{err}"
    );
    assert!(!cx.transcript().join("\n").contains("tok-123-secret"));
}

#[test]
fn the_bash_tools_credentials_and_preferences_are_read() {
    let cx = TestContext::new();
    let config = cx.home().join(".config/tfgrid-compose");
    std::fs::create_dir_all(&config).unwrap();
    // A valid BIP-39 phrase (the standard test vector of all-zero entropy).
    let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    std::fs::write(
        config.join("credentials.yaml"),
        format!("threefold:\n  mnemonic: \"{phrase}\"\ngithub:\n  token: \"ghp_x\"\n"),
    )
    .unwrap();
    std::fs::write(
        config.join("preferences.yaml"),
        "whitelist:\n  nodes: [8, 13]\n  farms: [Freefarm]\nblacklist:\n  nodes: [42]\n  farms: []\npreferences:\n  max_cpu_usage: 80\n",
    )
    .unwrap();
    let (code, out, err) = cx.run(&["signin", "--check", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["signed_in"], true, "{doc}");
    assert_eq!(
        doc["source"]["name"],
        config.join("credentials.yaml").display().to_string()
    );
    assert_eq!(doc["file_private"], false, "{doc}");
    assert!(!out.contains("abandon") && !err.contains("abandon"));

    let (code, out, err) = cx.run(&["config", "show", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let filter = &doc["settings"]["node_filter"];
    assert_eq!(
        filter["value"]["whitelist_nodes"],
        serde_json::json!([8, 13])
    );
    assert_eq!(
        filter["value"]["whitelist_farms"],
        serde_json::json!(["Freefarm"])
    );
    assert_eq!(filter["value"]["blacklist_nodes"], serde_json::json!([42]));
    assert_eq!(
        filter["source"]["name"],
        config.join("preferences.yaml").display().to_string()
    );
    assert!(!out.contains("abandon"));

    // A broken preferences file is an error at its line.
    std::fs::write(
        config.join("preferences.yaml"),
        "whitelist:\n  nodes: [x]\n",
    )
    .unwrap();
    let (code, _, err) = cx.run(&["config", "show"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("preferences.yaml:2:"), "{err}");
}

/// A bash tool deployment folder (§4.3, §5.1): flat `state.yaml`, the pattern's HCL in
/// `terraform/` with a state real Terraform wrote (`terraform_data`, no provider to download),
/// `wg.conf`. The variables are the ones the bash tool exported (§3.3).
fn bash_deployment(cx: &TestContext, terraform: &str) -> std::path::PathBuf {
    let folder = cx
        .home()
        .join(".config/tfgrid-compose/state/0123456789abcdef");
    let tf = folder.join("terraform");
    std::fs::create_dir_all(&tf).unwrap();
    std::fs::write(
        tf.join("main.tf"),
        r#"variable "vm_node" { type = number }
variable "vm_cpu" { type = number }
variable "vm_mem" { type = number }
variable "vm_disk" { type = number }
variable "tfgrid_network" {
  type    = string
  default = "main"
}
resource "terraform_data" "vm" {
  input = "node-${var.vm_node}-cpu-${var.vm_cpu}"
}
output "primary_ip" { value = "10.1.3.2" }
"#,
    )
    .unwrap();
    for args in [
        vec!["init", "-input=false", "-no-color"],
        vec!["apply", "-input=false", "-no-color", "-auto-approve"],
    ] {
        let out = std::process::Command::new(terraform)
            .arg(format!("-chdir={}", tf.display()))
            .args(&args)
            .env_remove("TF_CLI_CONFIG_FILE")
            .env("TF_VAR_vm_node", "8")
            .env("TF_VAR_vm_cpu", "2")
            .env("TF_VAR_vm_mem", "4096")
            .env("TF_VAR_vm_disk", "50")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(
        folder.join("state.yaml"),
        format!(
            "deployed_at: 2025-10-01T10:00:00Z\napp_name: minimal\napp_version: 0.1.0\napp_dir: {}\npattern_name: single-vm\npattern_version: 1.0.0\ndeploy_node: 8\ndeploy_cpu: 2\ndeploy_mem: 4096\ndeploy_disk: 50\ndeploy_network: test\ndeploy_ipv4: false\nmycelium_address: null\nwireguard_address: 10.1.3.2\nipv4_address: \nprimary_ip: 10.1.3.2\nprimary_ip_type: wireguard\ndeployment_name: vm_ab12cd34\n",
            cx.app.display()
        ),
    )
    .unwrap();
    std::fs::write(folder.join("wg.conf"), "[Interface]\nPrivateKey = x\n").unwrap();
    std::fs::write(folder.join("wg_interface"), "wg3\n").unwrap();
    folder
}

#[test]
fn import_takes_a_bash_tool_deployment_under_management_and_down_destroys_it() {
    crate::local::require_tools();
    let terraform = which::which("terraform")
        .or_else(|_| which::which("tofu"))
        .unwrap();
    let terraform = terraform.to_str().unwrap();
    let cx = TestContext::new();
    let ssh = cx.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_ed25519"), "key").unwrap();
    let folder = bash_deployment(&cx, terraform);
    let before = std::fs::read(folder.join("terraform/terraform.tfstate")).unwrap();
    let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    let run = |args: &[&str]| {
        let out = cx
            .cmd()
            .args(args)
            .env("TFGRID_COMPOSE_TOFU", terraform)
            .env("TF_VAR_mnemonic", phrase)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["import", folder.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Imported `minimal` (single-vm on test, 10.1.3.2)"),
        "{err}"
    );

    let (code, out, err) = run(&["status", cx.app_arg(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let d = &doc["deployment"];
    assert_eq!(d["status"], "running");
    assert_eq!(d["outputs"]["primary_ip"], "10.1.3.2");
    assert_eq!(d["outputs"]["primary_ip_type"], "wireguard");
    assert_eq!(d["outputs"]["node_ids"], serde_json::json!([8]));
    assert_eq!(d["grid_network"], "test");
    assert_eq!(d["network"]["interface"], "wg3");
    assert_eq!(
        d["ssh"]["identity"],
        ssh.join("id_ed25519").display().to_string()
    );
    let vars: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cx.state_dir().join("terraform/tfgrid-compose.tfvars.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        vars,
        serde_json::json!({"vm_node": 8, "vm_cpu": 2, "vm_mem": 4096, "vm_disk": 50, "tfgrid_network": "test"}),
        "declared variables only (vm_public_ipv4 is not declared)"
    );
    let (code, out, _) = run(&["ps", "--json"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"minimal\""), "{out}");

    // A second import into the same environment is refused; into another one too: one
    // Terraform state has one owner.
    let (code, _, err) = run(&["import", folder.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--env NAME"), "{err}");
    let (code, _, err) = run(&["import", folder.to_str().unwrap(), "--env", "other"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("was imported already, as deployment"), "{err}");
    assert!(!cx.app.join(".tfgrid-compose/other").exists());

    // `down` destroys with real Terraform from the copied state, then forgets the deployment.
    let (code, _, err) = run(&["down", "--yes", cx.app_arg()]);
    assert_eq!(code, 0, "{err}");
    assert!(!cx.app.join(".tfgrid-compose/default").exists());
    assert_eq!(
        std::fs::read(folder.join("terraform/terraform.tfstate")).unwrap(),
        before,
        "the bash tool's folder is read, never changed"
    );
    let log = cx.transcript().join("\n");
    assert!(!log.contains("abandon"), "{log}");
}

#[test]
fn import_of_a_folder_that_is_not_a_bash_deployment_says_what_is_missing() {
    let cx = TestContext::new();
    let empty = cx.root.path().join("nothing");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = cx.run(&["import", empty.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("state.yaml") && err.contains("~/.config/tfgrid-compose/state/<id>"),
        "{err}"
    );
    std::fs::write(empty.join("state.yaml"), "app_name: x\n").unwrap();
    let (code, _, err) = cx.run(&["import", empty.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("terraform/terraform.tfstate"), "{err}");
    assert!(!cx.app.join(".tfgrid-compose").exists());
    // A state without the values destroy needs is refused before anything is written, naming
    // the variable and the key it comes from; one without `app_dir` asks for `--app`.
    let tf = empty.join("terraform");
    std::fs::create_dir_all(&tf).unwrap();
    std::fs::write(tf.join("terraform.tfstate"), "{\"version\": 4}").unwrap();
    std::fs::write(
        tf.join("main.tf"),
        "variable \"vm_node\" { type = number }\nvariable \"vm_cpu\" {\n  type    = number\n  default = 1\n}\n",
    )
    .unwrap();
    let (code, _, err) = cx.run(&["import", empty.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--app DIR"), "{err}");
    std::fs::write(
        empty.join("state.yaml"),
        format!("app_dir: {}\nprimary_ip: 10.1.3.2\n", cx.app.display()),
    )
    .unwrap();
    let (code, _, err) = cx.run(&["import", empty.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`vm_node` (`deploy_node` in state.yaml)") && !err.contains("vm_cpu"),
        "{err}"
    );
    assert!(!cx.app.join(".tfgrid-compose").exists());
}
