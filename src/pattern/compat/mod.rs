//! Patterns written for the bash tool: the keys of its `pattern.yaml` (those of the
//! `single-vm`, `gateway` and `k3s` patterns it shipped, tfgrid-compose-bash.md §3.1) as types,
//! and what they mean here. A `pattern.yaml` without this tool's own keys (`variables`,
//! `placement`, `host_tools`, `needs_root`) is in the bash tool's [`Format`]: its variables are
//! the `variable` blocks of `infrastructure/*.tf`, `defaults:` become their values, a `<role>_node`
//! variable is a node to place, and the bash tool's exported variables ([`app_values`],
//! [`run_values`]) are passed where declared. Nothing here runs a tool or writes a file.
//! `keys` holds the key types, `variables` the variable rules; this file the format, the rules
//! in words for `patterns check`, and the checks of paths and of the app's files.

pub mod keys;
pub mod variables;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::pattern::Pattern;
use crate::yaml::locate;

pub use keys::{
    AppRequirements, Described, InfrastructureSpec, PatternCommands, PlatformSpec, Requires,
};
pub use variables::{
    DEFAULT_PROVISION, FALLBACK_RESOURCES, NETWORKS, app_values, default_target, placements,
    resolve_defaults, resource_variables, role_prefix, run_values, unfilled, variable_from_hcl,
};

/// Which tool a `pattern.yaml` was written for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// This tool's: variables and placement in `pattern.yaml`.
    #[default]
    Native,
    /// The bash tool's: variables only in the Terraform.
    Bash,
}

/// The top-level keys only this tool's format has; a `pattern.yaml` with none of them is read
/// as the bash tool's.
pub const NATIVE_KEYS: [&str; 5] = [
    "variables",
    "placement",
    "host_tools",
    "needs_root",
    "down_without_state",
];

/// Where the remote copy of a pattern's `scripts/` lands on the VM (beside the bash tool's
/// `/tmp/app-deployment` and `/tmp/app-source`).
pub const REMOTE_SCRIPTS: &str = "/tmp/app-pattern";

/// A problem with an app's manifest for a bash-format value: the field and what is wrong.
pub type FieldProblem = (Vec<String>, String);

pub(crate) fn yaml_kind(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a bool",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

/// The compatibility rules [`Pattern::load`] used for a bash-format pattern, in words, for
/// `patterns check`.
pub fn rules(pattern: &Pattern) -> Vec<String> {
    let m = &pattern.manifest;
    let mut rules = vec![format!(
        "format: the bash tool's pattern.yaml (none of {}); keys read: name, version, \
         description, provides, requires, defaults, commands, infrastructure, platform, stages, \
         network, features",
        NATIVE_KEYS.join(", ")
    )];
    rules.push(format!(
        "variables: the {} `variable` blocks of infrastructure/*.tf{}",
        m.variables.len(),
        if pattern.mnemonic_variable {
            " (`mnemonic` goes only into the environment, as TF_VAR_mnemonic)"
        } else {
            ""
        }
    ));
    let exported: Vec<&str> = [
        "tfgrid_network",
        "SSH_KEY",
        "provision_mycelium",
        "provision_wireguard",
        "provision_ipv4",
        "provision_ipv6",
        "vm_public_ipv4",
        "network_mode",
        "network_name",
        "internal_nodes",
        "vm_cpu",
        "vm_mem",
        "vm_disk",
    ]
    .into_iter()
    .filter(|v| m.variables.contains_key(*v))
    .collect();
    if !exported.is_empty() {
        rules.push(format!(
            "passed as the bash tool exported them: {}",
            exported.join(", ")
        ));
    }
    if !m.placement.is_empty() {
        let nodes: Vec<String> = m
            .placement
            .iter()
            .map(|p| format!("{} ({})", p.variable, p.role))
            .collect();
        rules.push(format!(
            "nodes: {} chosen by node selection (or pinned by `nodes:`, `--node`, `config:`)",
            nodes.join(", ")
        ));
    }
    if !pattern.defaults.is_empty() {
        let applied: Vec<String> = pattern
            .defaults
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rules.push(format!(
            "defaults: become variable values unless the app sets them: {}",
            applied.join(", ")
        ));
    }
    for field in &pattern.unmatched_defaults {
        rules.push(format!(
            "defaults.{field}: the infrastructure declares no matching variable; not passed"
        ));
    }
    if !m.commands.0.is_empty() {
        rules.push(format!(
            "commands: {} run on the primary VM from {REMOTE_SCRIPTS}/ (uploaded by `up`); an \
             app command of the same name wins",
            m.commands.0.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    for name in &pattern.missing_commands {
        rules.push(format!(
            "commands.{name}: the pattern has no script for it; not offered"
        ));
    }
    let mut filled = app_values(pattern, None, None, &BTreeMap::new()).unwrap_or_default();
    filled.insert("tfgrid_network".into(), "main".into());
    let needed = unfilled(pattern, &filled);
    if !needed.is_empty() {
        rules.push(format!(
            "variables without a default that the app must set under `config:`: {}",
            needed.join(", ")
        ));
    }
    let files = m.requires.app_files();
    if !files.is_empty() {
        rules.push(format!(
            "requires: the app must have {} (checked by `validate`)",
            files
                .iter()
                .map(|(_, _, f)| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    rules.push(
        "outputs: an address with a prefix length (`185.69.167.152/24`) is read without it, as \
         the bash tool did (tasks/terraform.sh)"
            .into(),
    );
    rules
}

/// Checks of the bash-format keys that need the pattern folder: `infrastructure.template`,
/// `platform.playbook`, `platform.provisioner`, and each command's script (inside `scripts/`,
/// present). `Err` is the field and the problem.
pub fn check_paths(
    dir: &Path,
    manifest: &crate::pattern::PatternManifest,
) -> Result<(), FieldProblem> {
    let inside = |value: &str| {
        let path = Path::new(value);
        !path.is_absolute()
            && path.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            })
    };
    if let Some(template) = manifest
        .infrastructure
        .as_ref()
        .and_then(|i| i.template.as_ref())
        && !(inside(template)
            && ((Path::new(template).starts_with("infrastructure")
                && dir.join(template).is_file())
                || dir.join("infrastructure").join(template).is_file()))
    {
        return Err((
            vec!["infrastructure".into(), "template".into()],
            format!(
                "`{template}` is not a file inside the pattern's `infrastructure/` (as \
                    `infrastructure/main.tf` or `main.tf`)"
            ),
        ));
    }
    if let Some(platform) = &manifest.platform {
        if let Some(p) = platform.provisioner.as_deref().filter(|p| *p != "ansible") {
            return Err((
                vec!["platform".into(), "provisioner".into()],
                format!("`{p}` is not supported; the platform phase runs ansible"),
            ));
        }
        if let Some(playbook) = &platform.playbook
            && !(inside(playbook) && dir.join(playbook).is_file())
        {
            return Err((
                vec!["platform".into(), "playbook".into()],
                format!("`{playbook}` is not a file inside the pattern folder"),
            ));
        }
    }
    for (name, command) in &manifest.commands.0 {
        let script = command.script.trim();
        if !(inside(script) && Path::new(script).starts_with("scripts")) {
            return Err((
                vec!["commands".into(), name.clone(), "script".into()],
                format!("`{script}` is not inside the pattern's `scripts/`"),
            ));
        }
    }
    Ok(())
}

/// The line and column of a dotted field of `pattern.yaml`, for errors found after parsing.
pub fn position(text: &str, field: &[String]) -> (Option<usize>, Option<usize>) {
    let field: Vec<&str> = field.iter().map(String::as_str).collect();
    locate(text, &field).map_or((None, None), |(l, c)| (Some(l), Some(c)))
}

/// `output -json` with the prefix length cut off every address among the outputs (those
/// [`crate::pattern::contract::addresses`] finds: `primary_ip`, `secondary_ips[].ip`, and the
/// bash tool's own `ipv4_address`, `public_ip`, …): the bash tool's patterns emit the grid's
/// `computedip` (`185.69.167.152/24`), and the bash tool cut it (`tasks/terraform.sh:75-78,
/// 104-106`). Text that is not JSON is returned unchanged, for the contract to report.
pub fn strip_prefixes(json: &str) -> String {
    let Ok(mut root) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_string();
    };
    for address in crate::pattern::contract::addresses(&root) {
        if let Some((ip, bits)) = address.value.split_once('/')
            && bits.parse::<u8>().is_ok()
            && let Some(value) = root.pointer_mut(&address.pointer)
        {
            *value = ip.into();
        }
    }
    root.to_string()
}

#[cfg(test)]
mod tests {
    use super::strip_prefixes;

    #[test]
    fn prefixes_are_cut_from_addresses_only() {
        let json = r#"{"primary_ip":{"value":"185.69.167.152/24"},"deployment_name":{"value":"a/b"},
            "secondary_ips":{"value":[{"ip":"10.1.3.3/16","name":"w"}]},"private_ips":{"value":["10.1.0.2/16"]},
            "ipv4_address":{"value":"185.69.167.152/24"},"provisioned_networks":{"value":["10.1.0.0/16"]}}"#;
        let out: serde_json::Value = serde_json::from_str(&strip_prefixes(json)).unwrap();
        assert_eq!(out["primary_ip"]["value"], "185.69.167.152");
        assert_eq!(out["deployment_name"]["value"], "a/b");
        assert_eq!(out["secondary_ips"]["value"][0]["ip"], "10.1.3.3");
        assert_eq!(out["private_ips"]["value"][0], "10.1.0.2");
        assert_eq!(out["ipv4_address"]["value"], "185.69.167.152");
        assert_eq!(out["provisioned_networks"]["value"][0], "10.1.0.0/16");
        assert_eq!(strip_prefixes("not json"), "not json");
    }
}
