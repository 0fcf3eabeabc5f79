//! A deployment id leads to exactly that deployment: a folder reached through a symlink is
//! recorded as the real folder, a folder replaced or moved is found out by the id in its
//! `state.yaml`, and a command given an id acts on that deployment or refuses, naming what it
//! found instead. Fake tools (`tests/it/fake-tool.sh`) show in which folder `destroy` ran; the
//! real terraform shows whose Terraform state it destroyed. Also: no hand-edited state, registry
//! or context file makes a command panic.

use std::path::{Path, PathBuf};

use crate::common::{TestContext, copy_dir, fixtures};

/// `up` of the app folder `app`; returns the new deployment's id.
fn up(cx: &TestContext, app: &Path) -> String {
    let (code, _, err) = cx.run(&["up", app.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    id_in(app)
}

/// The id of the deployment whose state is in the app folder `app`.
fn id_in(app: &Path) -> String {
    let state = std::fs::read_to_string(app.join(".tfgrid-compose/default/state.yaml")).unwrap();
    tfgrid_compose::state::DeploymentState::parse(&state)
        .unwrap()
        .id
}

/// Two copies of the fixture app, `blue` and `green`, and a symlink `current` to `blue`: a
/// release switch as people build one.
fn blue_green(cx: &TestContext) -> (PathBuf, PathBuf, PathBuf) {
    let (blue, green) = (new_app(cx, "blue"), new_app(cx, "green"));
    let current = cx.root.path().join("current");
    std::os::unix::fs::symlink(&blue, &current).unwrap();
    (blue, green, current)
}

/// The `-chdir=` folders of every `tofu destroy` the fake tools saw.
fn destroyed_in(cx: &TestContext) -> Vec<String> {
    let log = std::fs::read_to_string(cx.fake_dir.join("argv.log")).unwrap_or_default();
    log.lines()
        .map(|l| l.split('\x1f').collect::<Vec<_>>())
        .filter(|words| words[0] == "tofu" && words.contains(&"destroy"))
        .filter_map(|words| {
            words
                .iter()
                .find_map(|w| w.strip_prefix("-chdir=").map(String::from))
        })
        .collect()
}

/// The row of deployment `id` in `ps --json` (checked against its schema).
fn ps_row(cx: &TestContext, id: &str) -> serde_json::Value {
    let (code, out, err) = cx.run(&["ps", "--json"]);
    assert_eq!(code, 0, "{err}");
    let ps = crate::schema::assert_fits("ps", &out);
    ps["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {ps}"))
        .clone()
}

fn new_app(cx: &TestContext, name: &str) -> PathBuf {
    let dir = cx.root.path().join(name);
    copy_dir(&fixtures().join("apps/minimal"), &dir);
    dir
}

#[test]
fn down_by_id_after_a_symlink_was_repointed_destroys_that_deployment_only() {
    let cx = TestContext::new();
    let (blue, green, current) = blue_green(&cx);
    let first = up(&cx, &current);
    let second = up(&cx, &green);
    // The release switch: `current` now leads to the other deployment's folder.
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink(&green, &current).unwrap();

    // `ps` names the real folder each deployment lives in, and the path it was given as.
    let row = ps_row(&cx, &first);
    assert_eq!(row["app_dir"], blue.to_str().unwrap(), "{row}");
    assert_eq!(row["app_dir_given"], current.to_str().unwrap(), "{row}");
    let (_, table, _) = cx.run(&["ps"]);
    assert!(
        table.lines().next().unwrap().ends_with("FOLDER")
            && table
                .lines()
                .any(|l| l.starts_with(&first[..8]) && l.contains(blue.to_str().unwrap())),
        "{table}"
    );

    cx.clear_transcript();
    let (code, _, err) = cx.run(&["down", "--yes", &first]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        destroyed_in(&cx),
        [blue
            .join(".tfgrid-compose/default/terraform")
            .display()
            .to_string()],
        "{err}"
    );
    assert!(
        green.join(".tfgrid-compose/default/state.yaml").is_file(),
        "the other deployment is untouched"
    );
    let (code, out, err) = cx.run(&["status", "--json", &second]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&second), "{out}");
}

/// The fixture pattern `minimal` with real Terraform: one `terraform_data` resource holding the
/// deployment id (Terraform's built-in provider, nothing to download) and the contract's outputs.
const REAL_MAIN_TF: &str = r#"variable "deployment_name" {}
variable "deployment_id" {}
variable "ssh_public_key" {}
resource "terraform_data" "vm" { input = var.deployment_id }
output "primary_ip" { value = "127.0.0.1" }
output "primary_ip_type" { value = "ipv4" }
output "deployment_name" { value = var.deployment_name }
output "node_ids" { value = [8] }
"#;

/// Runs the binary with the real terraform and [`REAL_MAIN_TF`]'s pattern (ssh and ansible stay
/// the fakes); returns (exit code, stderr).
fn real(cx: &TestContext, args: &[&str]) -> (i32, String) {
    let patterns = cx.root.path().join("patterns");
    if !patterns.exists() {
        copy_dir(
            &fixtures().join("patterns/minimal"),
            &patterns.join("minimal"),
        );
        std::fs::write(
            patterns.join("minimal/infrastructure/main.tf"),
            REAL_MAIN_TF,
        )
        .unwrap();
    }
    let terraform =
        which::which("terraform").expect("terraform is installed (scripts/install-deps.sh)");
    let out = cx
        .cmd()
        .args(args)
        .env("TFGRID_COMPOSE_TOFU", terraform)
        .env("TFGRID_COMPOSE_PATTERNS_DIR", &patterns)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The deployment ids whose `terraform_data` a Terraform state file still holds.
fn ids_in_tfstate(app: &Path) -> Vec<String> {
    let path = app.join(".tfgrid-compose/default/terraform/terraform.tfstate");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["instances"].as_array().cloned().unwrap_or_default())
        // `input` is dynamic: Terraform keeps it as {value, type}
        .filter_map(|i| i["attributes"]["input"]["value"].as_str().map(String::from))
        .collect()
}

#[test]
fn down_by_id_after_a_symlink_was_repointed_destroys_that_terraform_state_with_real_terraform() {
    let cx = TestContext::new();
    let (blue, green, current) = blue_green(&cx);
    for app in [&current, &green] {
        let (code, err) = real(&cx, &["up", app.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let (first, second) = (id_in(&blue), id_in(&green));
    assert_eq!(ids_in_tfstate(&blue), std::slice::from_ref(&first));
    assert_eq!(ids_in_tfstate(&green), std::slice::from_ref(&second));
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink(&green, &current).unwrap();

    let (code, err) = real(&cx, &["down", "--yes", &first]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("({first})")), "{err}");
    assert!(!blue.join(".tfgrid-compose").exists(), "{err}");
    assert_eq!(
        ids_in_tfstate(&green),
        std::slice::from_ref(&second),
        "the other deployment's Terraform state is untouched"
    );
    let (code, err) = real(&cx, &["down", "--yes", &second]);
    assert_eq!(code, 0, "{err}");
    assert!(!green.join(".tfgrid-compose").exists(), "{err}");
}

#[test]
fn down_by_id_of_a_folder_replaced_at_the_same_path_refuses_and_names_the_one_there() {
    let cx = TestContext::new();
    let first = up(&cx, &cx.app);
    // The folder is moved away and a new copy of the app deployed at the same path.
    let moved = cx.root.path().join("app-old");
    std::fs::rename(&cx.app, &moved).unwrap();
    copy_dir(&fixtures().join("apps/minimal"), &cx.app);
    let second = up(&cx, &cx.app);
    assert_ne!(first, second);

    cx.clear_transcript();
    for args in [
        vec!["down", "--yes", first.as_str()],
        vec!["status", &first[..8]],
        vec!["up", "--resume", &first[..8]],
    ] {
        let (code, _, err) = cx.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(&format!("deployment {} is not in", &first[..8]))
                && err.contains(&format!(
                    "holds deployment {} (minimal:default)",
                    &second[..8]
                ))
                && err.contains("hint:"),
            "{args:?}: {err}"
        );
    }
    // With the state.yaml there damaged, the variables file `up` wrote still says whose it is.
    let state_file = cx.state_dir().join("state.yaml");
    let good = std::fs::read_to_string(&state_file).unwrap();
    std::fs::write(&state_file, "").unwrap();
    let (code, _, err) = cx.run(&["down", "--yes", &first]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "holds deployment {} (its state.yaml damaged)",
            &second[..8]
        )),
        "{err}"
    );
    std::fs::write(&state_file, good).unwrap();
    assert!(
        cx.transcript().is_empty(),
        "nothing ran: {:?}",
        cx.transcript()
    );
    // `inspect --all` shows the refusal for that entry and goes on with the others.
    let (code, out, err) = cx.run(&["inspect", "--all", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc = crate::schema::assert_fits("inspect", &out);
    let rows = doc["deployments"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{doc}");
    let refused = rows.iter().find(|r| r["id"] == first.as_str()).unwrap();
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("is not in")),
        "{refused}"
    );
    assert!(
        rows.iter()
            .any(|r| r["id"] == second.as_str() && r["state"].is_object())
    );
    // A run in its new folder records where it lives now: its id leads there again.
    let (code, _, err) = cx.run(&["up", "--from", "verify", moved.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let row = ps_row(&cx, &first);
    assert_eq!(row["app_dir"], moved.to_str().unwrap(), "{row}");
    let (code, out, err) = cx.run(&["status", "--json", &first[..8]]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(moved.to_str().unwrap()), "{out}");
    // Named by its new folder, the moved deployment goes down, and its registry entry with it.
    let (code, _, err) = cx.run(&["down", "--yes", moved.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        destroyed_in(&cx),
        [moved
            .join(".tfgrid-compose/default/terraform")
            .display()
            .to_string()]
    );
    let (_, out, _) = cx.run(&["ps", "--json"]);
    assert!(!out.contains(&first) && out.contains(&second), "{out}");
}

/// Runs `args` and checks that it ended with an error or success of its own, never a panic.
fn no_panic(cx: &TestContext, args: &[&str]) -> (i32, String) {
    let (code, _, err) = cx.run(args);
    assert!(
        !err.contains("panicked") && matches!(code, 0..=2),
        "{args:?} exited {code}: {err}"
    );
    (code, err)
}

#[test]
fn hand_edited_ids_and_commits_never_panic_nor_name_a_file_outside() {
    let cx = TestContext::new();
    let id = up(&cx, &cx.app);
    let state_file = cx.state_dir().join("state.yaml");
    let good = std::fs::read_to_string(&state_file).unwrap();
    let entry_file = cx.registry().join(format!("{id}.json"));
    let entry = std::fs::read_to_string(&entry_file).unwrap();
    // What a hand edit would reach if an id were followed as a path.
    let outside = cx.root.path().join("outside.json");
    std::fs::write(&outside, "{}").unwrap();

    // state.yaml: ids too short to cut, cut inside a character, or a path; a commit likewise.
    for bad in ["abc", "€€€€€€€€€€", "../../outside"] {
        std::fs::write(&state_file, good.replace(&id, bad)).unwrap();
        for args in [
            vec!["select", cx.app_arg()],
            vec!["status", cx.app_arg()],
            vec!["inspect", cx.app_arg()],
            vec!["ps"],
        ] {
            no_panic(&cx, &args);
        }
        let (code, err) = no_panic(&cx, &["status", cx.app_arg()]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("state.yaml") && err.contains("line 2: `id` is") && err.contains("hint:"),
            "{err}"
        );
    }
    let origin = "  origin:\n    name: minimal\n    registry: r\n    repo: g\n    commit: \
        'aaaaaaaaaa€€€€€€'\n";
    std::fs::write(
        &state_file,
        good.replacen("  manifest: ", &format!("{origin}  manifest: "), 1),
    )
    .unwrap();
    // The registry's app folder gone: `up` restores the checkout, naming the commit.
    let app_dir = format!(
        "\"app_dir\":{}",
        serde_json::to_string(cx.app_arg()).unwrap()
    );
    assert!(entry.contains(&app_dir), "{entry}");
    std::fs::write(
        &entry_file,
        entry.replace(&app_dir, "\"app_dir\":\"/nowhere\""),
    )
    .unwrap();
    let (_, err) = no_panic(&cx, &["up", "--resume", &id]);
    assert!(err.contains("Restoring"), "{err}");
    std::fs::write(&entry_file, &entry).unwrap();
    std::fs::write(&state_file, &good).unwrap();

    // The registry entry: an id that is not its file's name, or not an id at all.
    for bad in ["abc", "€€€€€€€€€€", "../outside", "0123456789abcdef"] {
        std::fs::write(&entry_file, entry.replace(&id, bad)).unwrap();
        for args in [
            vec!["ps"],
            vec!["ps", "--prune"],
            vec!["down", "--yes", "abc"],
        ] {
            no_panic(&cx, &args);
        }
        let (_, err) = no_panic(&cx, &["ps"]);
        assert!(
            err.contains("registry entry") && err.contains("`id` is"),
            "{err}"
        );
    }
    assert!(outside.is_file(), "a hand-edited id removed a file outside");
    std::fs::write(&entry_file, &entry).unwrap();

    // The context file: a selection that is not an id.
    for bad in [
        "deployment: 12",
        "deployment: '€€€'",
        "deployment: [a]",
        "- a",
    ] {
        std::fs::write(cx.root.path().join(".tfgrid-compose.yaml"), bad).unwrap();
        no_panic(&cx, &["status"]);
    }
}

#[test]
fn down_of_a_moved_folder_refuses_before_anything_runs_and_says_how_to_move_it_back() {
    let cx = TestContext::new();
    let id = up(&cx, &cx.app);
    let moved = cx.root.path().join("app moved");
    std::fs::rename(&cx.app, &moved).unwrap();
    cx.clear_transcript();
    let (code, _, err) = cx.run(&["down", "--yes", moved.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "deployment {} (`minimal:default`) was made in",
            &id[..8]
        )) && err.contains("nothing was destroyed")
            && err.contains("hint: move the folder back (`mv "),
        "{err}"
    );
    assert!(
        cx.transcript().is_empty(),
        "nothing ran: {:?}",
        cx.transcript()
    );
    // moved back, it goes down whole
    std::fs::rename(&moved, &cx.app).unwrap();
    let (code, _, err) = cx.run(&["down", "--yes", cx.app_arg()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(destroyed_in(&cx).len(), 1, "{:?}", destroyed_in(&cx));
}
