//! The pattern contract (`patterns/PATTERN_CONTRACT.md`) as a type: the Terraform outputs every
//! pattern must emit, parsed from `tofu output -json` with errors naming the output.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ContractError;

/// The outputs every pattern must declare (patterns/PATTERN_CONTRACT.md).
pub const REQUIRED_OUTPUTS: [&str; 4] = [
    "primary_ip",
    "primary_ip_type",
    "deployment_name",
    "node_ids",
];
/// Variables the orchestrator writes into the tfvars file of every pattern.
pub const PASSED_VARIABLES: [&str; 3] = ["deployment_name", "deployment_id", "ssh_public_key"];

/// How the orchestrator reaches the primary address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpType {
    Wireguard,
    Ipv4,
    Ipv6,
    Mycelium,
}

impl IpType {
    /// `public` is the older spelling of `ipv4`.
    pub fn parse(text: &str) -> Option<IpType> {
        match text {
            "wireguard" => Some(IpType::Wireguard),
            "ipv4" | "public" => Some(IpType::Ipv4),
            "ipv6" => Some(IpType::Ipv6),
            "mycelium" => Some(IpType::Mycelium),
            _ => None,
        }
    }
}

/// A VM other than the primary one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondaryIp {
    pub name: String,
    pub ip: String,
    #[serde(rename = "type")]
    pub kind: IpType,
    pub role: String,
}

/// The contract outputs. `wg_config` is secret: it is written to a 0600 file and never to state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternOutputs {
    pub primary_ip: String,
    pub primary_ip_type: IpType,
    pub deployment_name: String,
    pub node_ids: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secondary_ips: Vec<SecondaryIp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mycelium_ip: Option<String>,
    #[serde(skip)]
    pub wg_config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_info: Option<Value>,
    /// Optional: host keys of the VMs, so that ssh checks them from the first connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_known_hosts: Option<String>,
    /// Optional: each VM's address on the deployment's private network, primary first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_ips: Vec<String>,
}

/// A host the orchestrator talks to: name, address and inventory role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub name: String,
    pub address: String,
    pub role: String,
}

impl PatternOutputs {
    /// Parses `tofu output -json` (`{"name": {"value": …, "type": …, "sensitive": …}}`).
    pub fn from_output_json(pattern: &str, json: &str) -> Result<PatternOutputs, ContractError> {
        let err = |output: &str, problem: String| ContractError {
            pattern: pattern.into(),
            output: output.into(),
            problem,
        };
        let root: Value = serde_json::from_str(json).map_err(|e| {
            err(
                "(all)",
                format!("could not be read: `output -json` printed invalid JSON ({e})"),
            )
        })?;
        let get = |name: &str| {
            root.get(name)
                .map(|o| o.get("value").unwrap_or(o))
                .filter(|v| !v.is_null())
        };
        let string = |name: &str| -> Result<String, ContractError> {
            match get(name) {
                None => Err(err(name, "is missing".into())),
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(Value::String(_)) => Err(err(name, "is empty".into())),
                Some(other) => Err(err(
                    name,
                    format!("must be a string, found {}", json_kind(other)),
                )),
            }
        };
        let optional_string = |name: &str| -> Result<Option<String>, ContractError> {
            match get(name) {
                None => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(err(
                    name,
                    format!("must be a string, found {}", json_kind(other)),
                )),
            }
        };
        let type_text = string("primary_ip_type")?;
        let primary_ip_type = IpType::parse(&type_text).ok_or_else(|| {
            err(
                "primary_ip_type",
                format!("is `{type_text}`; expected wireguard, ipv4, ipv6 or mycelium"),
            )
        })?;
        let node_ids = match get("node_ids") {
            None => return Err(err("node_ids", "is missing".into())),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                })
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| err("node_ids", "must be a list of node numbers".into()))?,
            Some(other) => {
                return Err(err(
                    "node_ids",
                    format!("must be a list, found {}", json_kind(other)),
                ));
            }
        };
        let secondary_ips = match get("secondary_ips") {
            None => Vec::new(),
            Some(value) => {
                let items = value.as_array().ok_or_else(|| {
                    err(
                        "secondary_ips",
                        format!("must be a list, found {}", json_kind(value)),
                    )
                })?;
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let field = |f: &str| {
                        item.get(f)
                            .and_then(Value::as_str)
                            .map(String::from)
                            .ok_or_else(|| {
                                err("secondary_ips", format!("item {i} has no string `{f}`"))
                            })
                    };
                    let type_text = field("type")?;
                    let kind = IpType::parse(&type_text).ok_or_else(|| {
                        err("secondary_ips", format!("item {i} has type `{type_text}`"))
                    })?;
                    out.push(SecondaryIp {
                        name: field("name")?,
                        ip: field("ip")?,
                        kind,
                        role: field("role")?,
                    });
                }
                out
            }
        };
        let private_ips = match get("private_ips") {
            None => Vec::new(),
            Some(value) => value
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(|v| v.as_str().map(String::from))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| err("private_ips", "must be a list of strings".into()))?,
        };
        let outputs = PatternOutputs {
            primary_ip: string("primary_ip")?,
            primary_ip_type,
            deployment_name: string("deployment_name")?,
            node_ids,
            secondary_ips,
            mycelium_ip: optional_string("mycelium_ip")?,
            wg_config: optional_string("wg_config")?,
            connection_info: get("connection_info").cloned(),
            ssh_known_hosts: optional_string("ssh_known_hosts")?,
            private_ips,
        };
        if outputs.primary_ip_type == IpType::Wireguard && outputs.wg_config.is_none() {
            return Err(err(
                "wg_config",
                "is missing, but `primary_ip_type` is wireguard (on the grid: a network whose \
                    nodes are all zos-light has no WireGuard access)"
                    .into(),
            ));
        }
        // Every address among the outputs is checked now, not when ssh waits for it until its
        // timeout: the contract's, the bash tool's (`wireguard_ip`, `ipv4_address`, …) and those
        // inside a map or list (`connection_info.public_ipv4`, `secondary_ips[0].ip`).
        for address in addresses(&root) {
            // a dry run's placeholders are `<name>`
            let text = address.value.as_str();
            if text.is_empty()
                || text.parse::<std::net::IpAddr>().is_ok()
                || (text.starts_with('<') && text.ends_with('>'))
            {
                continue;
            }
            let fix = if text.contains('/') {
                ": drop the prefix in the output's HCL, e.g. `split(\"/\", …)[0]` (the grid's \
                    computedip carries one)"
            } else {
                ""
            };
            return Err(err(
                &address.path,
                format!("is `{text}`, which is not an IP address{fix}"),
            ));
        }
        Ok(outputs)
    }

    /// Every VM, primary first.
    pub fn vms(&self) -> Vec<Vm> {
        let mut vms = vec![Vm {
            name: "vm0".into(),
            address: self.primary_ip.clone(),
            role: "primary".into(),
        }];
        for (i, s) in self.secondary_ips.iter().enumerate() {
            let name = if s.name.is_empty() {
                format!("vm{}", i + 1)
            } else {
                s.name.clone()
            };
            vms.push(Vm {
                name,
                address: s.ip.clone(),
                role: s.role.clone(),
            });
        }
        vms
    }

    /// What a dry run pretends `output -json` printed.
    pub fn placeholder_json() -> String {
        r#"{"primary_ip":{"value":"<primary_ip>"},"primary_ip_type":{"value":"wireguard"},"deployment_name":{"value":"<deployment_name>"},"node_ids":{"value":[0]},"wg_config":{"value":"<wg_config>","sensitive":true}}"#.to_string()
    }
}

/// Whether an output, or a key of a map among the outputs, names an address: `ip`, `ipv4`,
/// `ipv6`, `address`, or a name ending in `_ip`, `_ips`, `_ipv4`, `_ipv6`, `_address` or
/// `_addresses`. The contract's addresses are such names (`primary_ip`, `private_ips`,
/// `secondary_ips[].ip`), and so are the bash tool's outputs (`wireguard_ip`, `ipv4_address`,
/// `mycelium_ips`) and the shipped patterns' `connection_info` keys (`public_ipv4`).
pub fn is_address_name(name: &str) -> bool {
    matches!(name, "ip" | "ipv4" | "ipv6" | "address" | "addresses")
        || ["_ip", "_ips", "_ipv4", "_ipv6", "_address", "_addresses"]
            .iter()
            .any(|end| name.ends_with(end))
}

/// A string among the outputs that [`is_address_name`] says is an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// For messages: `primary_ip`, `connection_info.public_ipv4`, `secondary_ips[1].ip`.
    pub path: String,
    /// Where it is in `output -json`'s document (RFC 6901), for [`Value::pointer_mut`].
    pub pointer: String,
    pub value: String,
}

/// Every address in `output -json`'s document (`{"name": {"value": …}}` or bare values): a string
/// under an address name, directly or in lists under it, and the same inside any map.
pub fn addresses(root: &Value) -> Vec<Address> {
    fn walk(name: &str, value: &Value, path: &str, pointer: &str, out: &mut Vec<Address>) {
        match value {
            Value::String(text) if is_address_name(name) => out.push(Address {
                path: path.to_string(),
                pointer: pointer.to_string(),
                value: text.clone(),
            }),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(
                        name,
                        item,
                        &format!("{path}[{i}]"),
                        &format!("{pointer}/{i}"),
                        out,
                    );
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    walk(
                        key,
                        item,
                        &format!("{path}.{key}"),
                        &format!("{pointer}/{escaped}"),
                        out,
                    );
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, output) in root.as_object().into_iter().flatten() {
        let escaped = name.replace('~', "~0").replace('/', "~1");
        match output.get("value") {
            Some(value) => walk(name, value, name, &format!("/{escaped}/value"), &mut out),
            None => walk(name, output, name, &format!("/{escaped}"), &mut out),
        }
    }
    out
}

/// `a string`, `a list`, … for messages about a JSON value of the wrong type.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::{IpType, PatternOutputs};

    fn parse(json: &str) -> Result<PatternOutputs, String> {
        PatternOutputs::from_output_json("p", json).map_err(|e| e.to_string())
    }

    #[test]
    fn full_outputs_parse() {
        let json = r#"{
          "primary_ip": {"value": "10.1.0.2", "type": "string", "sensitive": false},
          "primary_ip_type": {"value": "wireguard"},
          "deployment_name": {"value": "demo"},
          "node_ids": {"value": [8, "13"]},
          "wg_config": {"value": "[Interface]", "sensitive": true},
          "secondary_ips": {"value": [{"name": "b1", "ip": "10.1.1.2", "type": "wireguard", "role": "backend"}]},
          "mycelium_ip": {"value": ""}
        }"#;
        let out = parse(json).unwrap();
        assert_eq!(out.node_ids, vec![8, 13]);
        assert_eq!(out.vms().len(), 2);
        assert_eq!(out.vms()[1].role, "backend");
        assert_eq!(out.mycelium_ip, None);
        let yaml = serde_yaml::to_string(&out).unwrap();
        assert!(
            !yaml.contains("Interface"),
            "wg_config must never be serialized"
        );
    }

    #[test]
    fn public_is_ipv4() {
        let json = r#"{"primary_ip":{"value":"1.2.3.4"},"primary_ip_type":{"value":"public"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]}}"#;
        assert_eq!(parse(json).unwrap().primary_ip_type, IpType::Ipv4);
    }

    #[test]
    fn errors_name_the_output() {
        let cases = [
            (
                r#"{"primary_ip_type":{"value":"ipv4"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]}}"#,
                "output `primary_ip` is missing",
            ),
            (
                r#"{"primary_ip":{"value":7},"primary_ip_type":{"value":"ipv4"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]}}"#,
                "output `primary_ip` must be a string, found a number",
            ),
            (
                r#"{"primary_ip":{"value":"x"},"primary_ip_type":{"value":"tcp"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]}}"#,
                "output `primary_ip_type` is `tcp`",
            ),
            (
                r#"{"primary_ip":{"value":"x"},"primary_ip_type":{"value":"ipv4"},"deployment_name":{"value":"d"},"node_ids":{"value":"1"}}"#,
                "output `node_ids` must be a list",
            ),
            (
                r#"{"primary_ip":{"value":"x"},"primary_ip_type":{"value":"wireguard"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]}}"#,
                "output `wg_config` is missing",
            ),
            ("not json", "invalid JSON"),
            (
                r#"{"primary_ip":{"value":"10.20.2.2/24"},"primary_ip_type":{"value":"ipv4"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]}}"#,
                "output `primary_ip` is `10.20.2.2/24`, which is not an IP address: drop the \
                    prefix in the output's HCL, e.g. `split(\"/\", …)[0]`",
            ),
            (
                r#"{"primary_ip":{"value":"10.1.0.2"},"primary_ip_type":{"value":"ipv4"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]},"secondary_ips":{"value":[{"name":"b","ip":"backend-1","type":"ipv4","role":"r"}]}}"#,
                "output `secondary_ips[0].ip` is `backend-1`, which is not an IP address",
            ),
            (
                r#"{"primary_ip":{"value":"10.1.0.2"},"primary_ip_type":{"value":"ipv4"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]},"connection_info":{"value":{"wireguard_ip":"10.20.2.2/24","public_ipv4":"","url":"http://x/"}}}"#,
                "output `connection_info.wireguard_ip` is `10.20.2.2/24`, which is not an IP \
                    address: drop the prefix",
            ),
            (
                r#"{"primary_ip":{"value":"10.1.0.2"},"primary_ip_type":{"value":"ipv4"},"deployment_name":{"value":"d"},"node_ids":{"value":[1]},"mycelium_ips":{"value":["400:1::2/64"]}}"#,
                "output `mycelium_ips[0]` is `400:1::2/64`, which is not an IP address",
            ),
        ];
        for (json, want) in cases {
            let got = parse(json).unwrap_err();
            assert!(got.contains(want), "{got}");
        }
    }
}
