//! The variables of a pattern written for the bash tool: its Terraform's `variable` blocks, its
//! `defaults:`, a placement per `<role>_node`, and the values the bash tool exported
//! (tfgrid-compose-bash.md §3.3), computed from what this tool knows: the app's manifest
//! ([`app_values`]) and the deployment ([`run_values`]). Only declared variables are returned.

use std::collections::BTreeMap;

use crate::pattern::compat::{FieldProblem, Format, yaml_kind};
use crate::pattern::placement::{Amount, PlacementSpec, VmSpec};
use crate::pattern::{Pattern, Variable, VariableKind};

/// The bash tool's default network set (`core/network.sh:20`, `DEFAULT_PROVISION`), used when
/// the app's manifest has no `network.provision`.
pub const DEFAULT_PROVISION: [&str; 2] = ["mycelium", "ipv4"];

/// The networks a `network.provision` entry may name, each a `provision_<name>` variable.
pub const NETWORKS: [&str; 4] = ["mycelium", "wireguard", "ipv4", "ipv6"];

/// The bash tool's resource values when neither the app nor the pattern gives one
/// (`orchestrator.sh:412-414`): vCPUs, MB, GB.
pub const FALLBACK_RESOURCES: [(&str, u64); 3] = [("cpu", 2), ("mem", 4096), ("disk", 50)];

/// The bash tool's role names that its Terraform spells otherwise: `resources.backend.*` went to
/// `internal_*` (`orchestrator.sh:1164-1182`), `resources.master.*` to the k3s `control_*`
/// (`orchestrator.sh:685-693`).
pub fn role_prefix(role: &str) -> &str {
    match role {
        "backend" => "internal",
        "master" => "control",
        other => other,
    }
}

/// The variables a resource key of a role may go to, in order: `cpu` → `<role>_cpu`, `memory` →
/// `<role>_mem` or `<role>_memory`, `disk` → `<role>_disk`, `count` → `<role>_count`.
pub fn resource_variables(role: &str, key: &str) -> Vec<String> {
    let prefix = role_prefix(role);
    match key {
        "memory" | "mem" => vec![format!("{prefix}_mem"), format!("{prefix}_memory")],
        other => vec![format!("{prefix}_{other}")],
    }
}

/// A Terraform `variable` block as a pattern variable: its type, a literal default, description.
pub fn variable_from_hcl(block: &hcl::Block) -> Variable {
    let attribute = |name: &str| {
        block
            .body()
            .attributes()
            .find(|a| a.key() == name)
            .map(|a| a.expr().clone())
    };
    let default = attribute("default").and_then(|expr| {
        use hcl::eval::Evaluate as _;
        let value = expr.evaluate(&hcl::eval::Context::new()).ok()?;
        if value.is_null() {
            return None;
        }
        serde_yaml::to_value(&value).ok()
    });
    let kind = match attribute("type") {
        Some(hcl::Expression::Variable(v)) => match v.as_str() {
            "string" => VariableKind::String,
            "number" => VariableKind::Number,
            "bool" => VariableKind::Bool,
            _ => VariableKind::Any,
        },
        Some(hcl::Expression::FuncCall(call)) => match call.name.name.as_str() {
            "list" | "set" | "tuple" => VariableKind::List,
            "map" | "object" => VariableKind::Map,
            _ => VariableKind::Any,
        },
        _ => VariableKind::Any,
    };
    let description = match attribute("description") {
        Some(hcl::Expression::String(s)) => Some(s),
        _ => None,
    };
    Variable {
        kind,
        default,
        description,
        min: None,
        max: None,
    }
}

/// The variable a `defaults:` entry goes to: a key that names a declared variable is that
/// variable; `cpu`/`memory`/`disk` at the top are the VM's (`vm_*`, the bash tool's generic
/// names); `<role>.<key>` is `<role>_<key>` (see [`resource_variables`]). `None` when the pattern
/// declares no such variable.
pub fn default_target(
    variables: &BTreeMap<String, Variable>,
    role: Option<&str>,
    key: &str,
) -> Option<String> {
    let candidates = match role {
        None if variables.contains_key(key) => vec![key.to_string()],
        None => resource_variables("vm", key),
        Some(role) => resource_variables(role, key),
    };
    candidates.into_iter().find(|c| variables.contains_key(c))
}

/// The pattern's `defaults:` as variable values, after checking each against its variable's type.
/// `Err` names the `defaults` field and the problem; entries that match no declared variable are
/// returned apart (reported by `patterns check`, never passed).
#[expect(
    clippy::type_complexity,
    reason = "values, unmatched keys, or a field and its problem"
)]
pub fn resolve_defaults(
    defaults: &BTreeMap<String, serde_yaml::Value>,
    variables: &BTreeMap<String, Variable>,
) -> Result<(BTreeMap<String, serde_json::Value>, Vec<String>), (Vec<String>, String)> {
    let mut values = BTreeMap::new();
    let mut unmatched = Vec::new();
    let mut entries: Vec<(Option<&str>, &str, &serde_yaml::Value)> = Vec::new();
    for (key, value) in defaults {
        match value {
            serde_yaml::Value::Mapping(map) if !variables.contains_key(key) => {
                for (inner, value) in map {
                    let Some(inner) = inner.as_str() else {
                        return Err((vec![key.clone()], "keys must be strings".into()));
                    };
                    entries.push((Some(key.as_str()), inner, value));
                }
            }
            value => entries.push((None, key.as_str(), value)),
        }
    }
    for (role, key, value) in entries {
        let field: Vec<String> = role
            .map(String::from)
            .into_iter()
            .chain([key.to_string()])
            .collect();
        let Some(target) = default_target(variables, role, key) else {
            unmatched.push(field.join("."));
            continue;
        };
        let json = crate::yaml::yaml_to_json(value);
        variables[&target].check(&json).map_err(|problem| {
            (
                field.clone(),
                format!("{problem} (for variable `{target}`)"),
            )
        })?;
        values.insert(target, json);
    }
    Ok((values, unmatched))
}

/// One placement per `<role>_node` number variable, for a pattern without `placement:`: one VM
/// of `<role>_cpu`, `<role>_mem`, `<role>_disk` (or the bash tool's 2 vCPU, 4096 MB, 50 GB where
/// the pattern declares none), on a farm with a free public IPv4 when `provision_ipv4` (or
/// `<role>_public_ipv4`) is true. The bash tool chose `vm_node`, `gateway_node` and
/// `management_node` so (tfgrid-compose-bash.md §3.3).
pub fn placements(variables: &BTreeMap<String, Variable>) -> Vec<PlacementSpec> {
    variables
        .iter()
        .filter(|(_, v)| matches!(v.kind, VariableKind::Number | VariableKind::Any))
        .filter_map(|(name, _)| name.strip_suffix("_node").map(|role| (name, role)))
        .filter(|(_, role)| !role.is_empty())
        .map(|(name, role)| {
            let amount = |key: &str, fallback: u64| {
                resource_variables(role, key)
                    .into_iter()
                    .find(|v| variables.contains_key(v))
                    .map_or(Amount::Number(fallback), Amount::Variable)
            };
            let public_ipv4 = ["provision_ipv4".to_string(), format!("{role}_public_ipv4")]
                .into_iter()
                .find(|v| variables.contains_key(v))
                .map(Amount::Variable);
            PlacementSpec {
                role: role.to_string(),
                variable: name.clone(),
                public_ipv4,
                vms: vec![VmSpec {
                    count: None,
                    cpu: amount("cpu", 2),
                    memory: amount("memory", 4096),
                    disk: amount("disk", 50),
                }],
            }
        })
        .collect()
}

/// The bash tool's exported variables that come from the app's manifest, for the variables the
/// pattern declares (tfgrid-compose-bash.md §3.3, `orchestrator.sh:1128-1312`):
///
/// - `provision_mycelium`, `provision_wireguard`, `provision_ipv4`, `provision_ipv6`: the
///   networks in `network.provision` (a list or `a,b`; `network.public_ipv4: true` adds `ipv4`),
///   else [`DEFAULT_PROVISION`];
/// - `vm_public_ipv4`: `network.public_ipv4` (default false);
/// - `network_mode`: `network.mode`, when set;
/// - `internal_nodes`: `nodes.backend` as a list of node ids, when set;
/// - `<var>` from `defaults:` (given as `pattern_defaults`) and the bash tool's resource
///   fallbacks for `vm_cpu`/`vm_mem`/`vm_disk` without a default.
///
/// Values the app sets in `config:` or `resources:` (in `explicit`) are left alone.
pub fn app_values(
    pattern: &Pattern,
    network: Option<&serde_yaml::Value>,
    nodes: Option<&serde_yaml::Value>,
    explicit: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, serde_json::Value>, FieldProblem> {
    let declared = &pattern.manifest.variables;
    let mut values = BTreeMap::new();
    let public_ipv4 = match network.and_then(|n| n.get("public_ipv4")) {
        None | Some(serde_yaml::Value::Null) => false,
        Some(serde_yaml::Value::Bool(b)) => *b,
        Some(other) => {
            return Err((
                vec!["network".into(), "public_ipv4".into()],
                format!("expected a bool, found {}", yaml_kind(other)),
            ));
        }
    };
    let mut provision: Vec<String> = match network.and_then(|n| n.get("provision")) {
        None | Some(serde_yaml::Value::Null) => {
            DEFAULT_PROVISION.iter().map(|s| (*s).to_string()).collect()
        }
        Some(serde_yaml::Value::String(list)) => list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(serde_yaml::Value::Sequence(items)) => items
            .iter()
            .map(|i| i.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                (
                    vec!["network".into(), "provision".into()],
                    "expected network names".to_string(),
                )
            })?,
        Some(other) => {
            return Err((
                vec!["network".into(), "provision".into()],
                format!("expected a list of networks, found {}", yaml_kind(other)),
            ));
        }
    };
    if let Some(unknown) = provision.iter().find(|n| !NETWORKS.contains(&n.as_str())) {
        return Err((
            vec!["network".into(), "provision".into()],
            format!(
                "unknown network `{unknown}`; expected {}",
                NETWORKS.join(", ")
            ),
        ));
    }
    if public_ipv4 && !provision.iter().any(|n| n == "ipv4") {
        provision.push("ipv4".into());
    }
    if provision.is_empty() {
        return Err((
            vec!["network".into(), "provision".into()],
            "names no network; at least one must be provisioned".into(),
        ));
    }
    for net in NETWORKS {
        values.insert(
            format!("provision_{net}"),
            provision.iter().any(|n| n == net).into(),
        );
    }
    values.insert("vm_public_ipv4".into(), public_ipv4.into());
    if let Some(mode) = network
        .and_then(|n| n.get("mode"))
        .and_then(serde_yaml::Value::as_str)
    {
        values.insert("network_mode".into(), mode.into());
    }
    if let Some(backend) = nodes.and_then(|n| n.get("backend")) {
        let ids: Option<Vec<u64>> = match backend {
            serde_yaml::Value::Sequence(items) => items.iter().map(|i| i.as_u64()).collect(),
            single => single.as_u64().map(|id| vec![id]),
        };
        let ids = ids.ok_or_else(|| {
            (
                vec!["nodes".into(), "backend".into()],
                "expected a node id or a list of node ids".to_string(),
            )
        })?;
        values.insert("internal_nodes".into(), ids.into());
    }
    for (name, value) in &pattern.defaults {
        values.insert(name.clone(), value.clone());
    }
    for (key, fallback) in FALLBACK_RESOURCES {
        let name = format!("vm_{key}");
        if declared.get(&name).is_some_and(|v| v.default.is_none()) {
            values.entry(name).or_insert_with(|| fallback.into());
        }
    }
    values.retain(|name, _| declared.contains_key(name) && !explicit.contains_key(name));
    Ok(values)
}

/// The bash tool's variables known once the deployment exists, for the variables the pattern
/// declares: `SSH_KEY` (the deployment's ssh public key; the bash tool left it to the HCL's
/// `~/.ssh` lookup) and `network_name` (`<pattern>_net_<first 8 of the id>`, as the bash tool
/// named the k3s network, `orchestrator.sh:716-717`).
pub fn run_values(
    pattern: &Pattern,
    deployment_id: &str,
    public_key: &str,
) -> BTreeMap<String, serde_json::Value> {
    let declared = &pattern.manifest.variables;
    let mut values = BTreeMap::new();
    values.insert("SSH_KEY".to_string(), public_key.into());
    let prefix = pattern.manifest.name.replace('-', "_");
    let short = crate::ids::ShortId::of(deployment_id);
    values.insert(
        "network_name".into(),
        format!("{prefix}_net_{short}").into(),
    );
    values.retain(|name, _| declared.contains_key(name));
    values
}

/// The bash-format pattern's variables that have no default and that nothing here fills (not
/// the app's values, the nodes, the built-ins or [`run_values`]): `k3s`'s `control_nodes`, say.
pub fn unfilled(pattern: &Pattern, values: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    if pattern.manifest.format != Format::Bash {
        return Vec::new();
    }
    let filled_here = [
        "SSH_KEY",
        "network_name",
        "deployment_name",
        "deployment_id",
        "ssh_public_key",
        "ip_range",
        "exclude_nodes",
    ];
    pattern
        .manifest
        .variables
        .iter()
        .filter(|(name, v)| {
            v.default.is_none()
                && !values.contains_key(*name)
                && !filled_here.contains(&name.as_str())
                && !pattern
                    .manifest
                    .placement
                    .iter()
                    .any(|p| &p.variable == *name)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::pattern::{Variable, VariableKind};

    fn number(default: Option<u64>) -> Variable {
        Variable {
            kind: VariableKind::Number,
            default: default.map(Into::into),
            description: None,
            min: None,
            max: None,
        }
    }

    #[test]
    fn defaults_go_to_the_variables_they_name() {
        let variables: BTreeMap<String, Variable> = [
            ("vm_cpu", number(Some(2))),
            ("vm_mem", number(Some(4096))),
            ("internal_disk", number(None)),
            ("control_cpu", number(None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let defaults: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(
            "cpu: 1\nmemory: 2048\nbackend: {disk: 30, count: 2}\nmaster: {cpu: 3}\n",
        )
        .unwrap();
        let (values, unmatched) = super::resolve_defaults(&defaults, &variables).unwrap();
        assert_eq!(values["vm_cpu"], 1);
        assert_eq!(values["vm_mem"], 2048);
        assert_eq!(
            values["internal_disk"], 30,
            "backend is the Terraform's internal"
        );
        assert_eq!(values["control_cpu"], 3, "master is k3s's control");
        assert_eq!(unmatched, ["backend.count"]);
        let bad: BTreeMap<String, serde_yaml::Value> =
            serde_yaml::from_str("memory: lots\n").unwrap();
        let (field, problem) = super::resolve_defaults(&bad, &variables).unwrap_err();
        assert_eq!(field, ["memory"]);
        assert!(problem.contains("vm_mem"), "{problem}");
    }

    #[test]
    fn hcl_variable_blocks_become_variables() {
        let body = hcl::parse(
            "variable \"a\" {\n  type = number\n  default = 4096\n}\nvariable \"b\" {\n  type = list(number)\n}\n\
             variable \"c\" {\n  default = null\n  description = \"key\"\n}\n",
        )
        .unwrap();
        let vars: Vec<Variable> = body.blocks().map(super::variable_from_hcl).collect();
        assert_eq!(vars[0].kind, VariableKind::Number);
        assert_eq!(vars[0].default, Some(4096.into()));
        assert_eq!(vars[1].kind, VariableKind::List);
        assert_eq!(
            (vars[2].kind, vars[2].default.as_ref()),
            (VariableKind::Any, None)
        );
        assert_eq!(vars[2].description.as_deref(), Some("key"));
    }

    #[test]
    fn node_variables_become_placements() {
        let variables: BTreeMap<String, Variable> = [
            ("vm_node", number(None)),
            ("vm_cpu", number(Some(2))),
            ("provision_ipv4", number(None)),
            ("gateway_node", number(None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let specs = super::placements(&variables);
        assert_eq!(specs.len(), 2);
        let vm = specs.iter().find(|s| s.role == "vm").unwrap();
        assert_eq!(vm.vms[0].cpu, super::Amount::Variable("vm_cpu".into()));
        assert_eq!(vm.vms[0].memory, super::Amount::Number(4096));
        assert_eq!(
            vm.public_ipv4,
            Some(super::Amount::Variable("provision_ipv4".into()))
        );
    }
}
