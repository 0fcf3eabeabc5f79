//! The provider's schema and its plan-time validators.
//!
//! `schema.json` (beside this file) is the schema of `threefoldtech/grid` at the provider's
//! `development` head b7d1a8c (2024-10-23): attribute names, types, required/optional/computed/
//! sensitive flags and block nesting, as `terraform providers schema -json` prints them, without
//! the descriptions. The validators are the provider's SDKv2 ones (`internal/provider/*.go` at the
//! same commit), with SDKv2's message texts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use serde::Deserialize;

use super::proto::tfplugin5::schema;
use super::value::Val;

/// The schema file: `provider`, `resources` and `data_sources` blocks.
#[derive(Deserialize)]
pub struct SchemaFile {
    pub provider: Block,
    pub resources: BTreeMap<String, Block>,
    pub data_sources: BTreeMap<String, Block>,
}

#[derive(Deserialize, Clone, Default)]
pub struct Block {
    #[serde(default)]
    pub attributes: BTreeMap<String, Attribute>,
    #[serde(default)]
    pub block_types: BTreeMap<String, NestedBlock>,
}

#[derive(Deserialize, Clone)]
pub struct Attribute {
    /// A cty type in its JSON form: `"string"`, `["list","number"]`, ...
    #[serde(rename = "type")]
    pub ty: serde_json::Value,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub computed: bool,
    #[serde(default)]
    pub sensitive: bool,
}

#[derive(Deserialize, Clone)]
pub struct NestedBlock {
    pub nesting_mode: String,
    #[serde(default)]
    pub min_items: i64,
    #[serde(default)]
    pub max_items: i64,
    pub block: Block,
}

/// The parsed schema (parsed once).
pub fn schemas() -> &'static SchemaFile {
    static SCHEMA: OnceLock<SchemaFile> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(include_str!("schema.json"))
            .expect("the embedded provider schema parses")
    })
}

impl Block {
    /// The protocol form. `mnemonic_from_env`: SDKv2 reports an attribute with a non-nil env
    /// default as optional, so the provider's `mnemonic` is required only while MNEMONIC is unset.
    pub fn to_proto(&self, mnemonic_from_env: bool) -> schema::Block {
        schema::Block {
            version: 0,
            attributes: self
                .attributes
                .iter()
                .map(|(name, a)| {
                    let relaxed = mnemonic_from_env && name == "mnemonic" && a.required;
                    schema::Attribute {
                        name: name.clone(),
                        r#type: serde_json::to_vec(&a.ty).unwrap_or_default(),
                        required: a.required && !relaxed,
                        optional: a.optional || relaxed,
                        computed: a.computed,
                        sensitive: a.sensitive,
                        ..Default::default()
                    }
                })
                .collect(),
            block_types: self
                .block_types
                .iter()
                .map(|(name, nb)| schema::NestedBlock {
                    type_name: name.clone(),
                    block: Some(nb.block.to_proto(false)),
                    nesting: match nb.nesting_mode.as_str() {
                        "single" => schema::nested_block::NestingMode::Single,
                        "set" => schema::nested_block::NestingMode::Set,
                        "map" => schema::nested_block::NestingMode::Map,
                        "group" => schema::nested_block::NestingMode::Group,
                        _ => schema::nested_block::NestingMode::List,
                    } as i32,
                    min_items: nb.min_items,
                    max_items: nb.max_items,
                })
                .collect(),
            ..Default::default()
        }
    }

    /// `value` with every attribute and block of this block present (null, or an empty list for
    /// a list block), as the wire format requires of an object.
    pub fn conform(&self, value: &Val) -> Val {
        if value.is_null() || !value.is_known() {
            return value.clone();
        }
        let mut out = BTreeMap::new();
        for name in self.attributes.keys() {
            out.insert(name.clone(), value.get(name).clone());
        }
        for (name, nb) in &self.block_types {
            let v = value.get(name);
            let conformed = match (nb.nesting_mode.as_str(), v) {
                ("single" | "group", v) => nb.block.conform(v),
                (_, Val::List(items)) => {
                    Val::List(items.iter().map(|i| nb.block.conform(i)).collect())
                }
                (_, Val::Unknown) => Val::Unknown,
                _ => Val::List(Vec::new()),
            };
            out.insert(name.clone(), conformed);
        }
        Val::Map(out)
    }

    /// For a plan: every computed attribute that is null becomes unknown ("known after apply"),
    /// in nested blocks too.
    pub fn mark_computed_unknown(&self, value: &mut Val) {
        let Val::Map(map) = value else { return };
        for (name, a) in &self.attributes {
            if a.computed && map.get(name).is_none_or(Val::is_null) {
                map.insert(name.clone(), Val::Unknown);
            }
        }
        for (name, nb) in &self.block_types {
            match map.get_mut(name) {
                Some(Val::List(items)) => items
                    .iter_mut()
                    .for_each(|i| nb.block.mark_computed_unknown(i)),
                Some(v @ Val::Map(_)) => nb.block.mark_computed_unknown(v),
                _ => {}
            }
        }
    }

    /// After apply: every computed attribute still unknown gets its type's zero value, as SDKv2
    /// stores them ("" for strings, 0, false, empty collections).
    pub fn settle_unknowns(&self, value: &mut Val) {
        let Val::Map(map) = value else { return };
        for (name, a) in &self.attributes {
            if let Some(v @ Val::Unknown) = map.get_mut(name) {
                *v = zero_of(&a.ty);
            }
        }
        for (name, nb) in &self.block_types {
            match map.get_mut(name) {
                Some(Val::List(items)) => {
                    items.iter_mut().for_each(|i| nb.block.settle_unknowns(i))
                }
                Some(v @ Val::Map(_)) => nb.block.settle_unknowns(v),
                _ => {}
            }
        }
    }
}

fn zero_of(ty: &serde_json::Value) -> Val {
    match ty {
        serde_json::Value::String(t) if t == "string" => Val::string(""),
        serde_json::Value::String(t) if t == "number" => Val::Int(0),
        serde_json::Value::String(t) if t == "bool" => Val::Bool(false),
        serde_json::Value::Array(parts)
            if parts.first().and_then(|p| p.as_str()) == Some("map") =>
        {
            Val::Map(BTreeMap::new())
        }
        serde_json::Value::Array(_) => Val::List(Vec::new()),
        _ => Val::Null,
    }
}

/// A plan-time problem: the attribute path (names and list indexes) and SDKv2's message.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub path: Vec<PathStep>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Attr(String),
    Index(i64),
}

/// The grid's name rule (`^[a-zA-Z0-9_]+$`, provider.go).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

enum Check {
    Name,
    IntBetween(i64, i64),
    /// IntBetween applied only when the value is not 0 (SDKv2 skips unset numbers).
    IntBetweenWhenSet(i64, i64),
    IpAddress,
    Cidr16,
    OneOf(&'static [&'static str]),
    UrlScheme(&'static str),
    NotEmpty,
    Gpu,
}

/// (block path, attribute, check) for each validated attribute, per resource type.
fn checks(type_name: &str) -> &'static [(&'static [&'static str], &'static str, Check)] {
    use Check::*;
    match type_name {
        "provider" => &[
            (&[], "network", OneOf(&["dev", "qa", "test", "main"])),
            (&[], "key_type", OneOf(&["ed25519", "sr25519"])),
            (&[], "substrate_url", UrlScheme("wss")),
            (&[], "relay_url", UrlScheme("wss")),
            (&[], "proxy_url", UrlScheme("https")),
        ],
        "grid_network" => &[(&[], "name", Name), (&[], "ip_range", Cidr16)],
        "grid_deployment" => &[
            (&[], "name", Name),
            (&[], "network_name", Name),
            (&["vms"], "name", Name),
            (&["vms"], "cpu", IntBetween(1, 32)),
            (&["vms"], "memory", IntBetweenWhenSet(256, 262_144)),
            (&["vms"], "rootfs_size", IntBetweenWhenSet(1024, 10_485_760)),
            (&["vms"], "ip", IpAddress),
            (&["vms"], "gpus", Gpu),
            (&["disks"], "name", Name),
            (&["disks"], "size", IntBetween(1, 10_240)),
            (&["zdbs"], "name", Name),
            (&["qsfs"], "name", Name),
        ],
        "grid_kubernetes" => &[
            (&[], "network_name", Name),
            (&[], "token", NotEmpty),
            (&["master"], "name", Name),
            (&["master"], "cpu", IntBetween(1, 32)),
            (&["master"], "memory", IntBetween(256, 262_144)),
            (&["master"], "disk_size", IntBetween(1, 10_240)),
            (&["workers"], "name", Name),
            (&["workers"], "cpu", IntBetween(1, 32)),
            (&["workers"], "memory", IntBetween(256, 262_144)),
            (&["workers"], "disk_size", IntBetween(1, 10_240)),
        ],
        "grid_name_proxy" => &[(&[], "name", Name)],
        "grid_fqdn_proxy" => &[(&[], "name", Name)],
        _ => &[],
    }
}

/// Runs the plan-time validators of `type_name` (`provider` for the provider block) on a
/// configuration. Unknown values are skipped, as Terraform does until they are known.
pub fn validate(type_name: &str, config: &Val) -> Vec<Invalid> {
    let mut problems = Vec::new();
    for (blocks, attr, check) in checks(type_name) {
        let mut targets: Vec<(Vec<PathStep>, &Val)> = vec![(Vec::new(), config)];
        for block in blocks.iter() {
            targets = targets
                .into_iter()
                .flat_map(|(path, v)| {
                    v.get(block)
                        .list()
                        .iter()
                        .enumerate()
                        .map(move |(i, item)| {
                            let mut p = path.clone();
                            p.push(PathStep::Attr(block.to_string()));
                            p.push(PathStep::Index(i as i64));
                            (p, item)
                        })
                })
                .collect();
        }
        for (mut path, obj) in targets {
            let v = obj.get(attr);
            if v.is_null() || v.has_unknown() {
                continue;
            }
            if let Some(message) = check_one(check, attr, v) {
                path.push(PathStep::Attr(attr.to_string()));
                problems.push(Invalid { path, message });
            }
        }
    }
    problems
}

fn check_one(check: &Check, k: &str, v: &Val) -> Option<String> {
    match check {
        Check::Name => {
            let s = v.str()?;
            (!valid_name(s))
                .then(|| format!("invalid value for {k} (must match ^[a-zA-Z0-9_]+$), got: {s}"))
        }
        Check::IntBetween(lo, hi) => {
            let n = v.int()?;
            (n < *lo || n > *hi)
                .then(|| format!("expected {k} to be in the range ({lo} - {hi}), got {n}"))
        }
        Check::IntBetweenWhenSet(lo, hi) => {
            let n = v.int()?;
            (n != 0 && (n < *lo || n > *hi))
                .then(|| format!("expected {k} to be in the range ({lo} - {hi}), got {n}"))
        }
        Check::IpAddress => {
            let s = v.str()?;
            (!s.is_empty() && s.parse::<IpAddr>().is_err())
                .then(|| format!("expected {k} to contain a valid IP, got: {s}"))
        }
        Check::Cidr16 => {
            let s = v.str()?;
            cidr16_problem(s).map(|why| {
                format!(
                    "expected {k} to contain a network Value with \
                between 16 and 16 significant bits, got: {s} ({why})"
                )
            })
        }
        Check::OneOf(allowed) => {
            let s = v.str()?;
            (!allowed.contains(&s))
                .then(|| format!("expected {k} to be one of {allowed:?}, got {s}"))
        }
        Check::UrlScheme(scheme) => {
            let s = v.str()?;
            (!s.is_empty() && !s.starts_with(&format!("{scheme}://"))).then(|| {
                format!("expected {k} to have a url with schema of: \"{scheme}\", got {s}")
            })
        }
        Check::NotEmpty => {
            let s = v.str()?;
            s.is_empty()
                .then(|| format!("expected \"{k}\" to not be an empty string"))
        }
        Check::Gpu => {
            let bad: Vec<&str> = v
                .list()
                .iter()
                .filter_map(Val::str)
                .filter(|g| !gpu_id(g))
                .collect();
            (!bad.is_empty()).then(|| {
                format!(
                    "invalid value for {k} (must match \
                ^[A-Za-z0-9:.]+/[A-Za-z0-9]+/[A-Za-z0-9]+$), got: {}",
                    bad.join(", ")
                )
            })
        }
    }
}

fn gpu_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && parts[0]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'.')
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Why `s` is not an IPv4 /16 network address, if it is not.
pub fn cidr16_problem(s: &str) -> Option<&'static str> {
    let Some((addr, bits)) = s.split_once('/') else {
        return Some("not a CIDR");
    };
    let Ok(addr) = addr.parse::<std::net::Ipv4Addr>() else {
        return Some("not an IPv4 address");
    };
    if bits != "16" {
        return Some("the prefix must be /16");
    }
    let o = addr.octets();
    (o[2] != 0 || o[3] != 0).then_some("not the network address of its /16")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Val)]) -> Val {
        Val::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn validators_give_sdkv2_messages_with_paths() {
        let vm = obj(&[
            ("name", Val::string("vm-1")),
            ("cpu", Val::Int(64)),
            ("memory", Val::Int(0)),
            ("ip", Val::Unknown),
        ]);
        let config = obj(&[
            ("name", Val::string("ok_name")),
            ("vms", Val::List(vec![vm])),
        ]);
        let problems = validate("grid_deployment", &config);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0].message,
            "invalid value for name (must match ^[a-zA-Z0-9_]+$), got: vm-1"
        );
        assert_eq!(
            problems[0].path,
            vec![
                PathStep::Attr("vms".into()),
                PathStep::Index(0),
                PathStep::Attr("name".into())
            ]
        );
        assert_eq!(
            problems[1].message,
            "expected cpu to be in the range (1 - 32), got 64"
        );
        assert!(
            validate(
                "grid_network",
                &obj(&[
                    ("name", Val::string("n")),
                    ("ip_range", Val::string("10.1.2.0/16"))
                ])
            )[0]
            .message
            .contains("10.1.2.0/16")
        );
        assert!(
            validate(
                "grid_network",
                &obj(&[
                    ("name", Val::string("n")),
                    ("ip_range", Val::string("10.1.0.0/16"))
                ])
            )
            .is_empty()
        );
        assert_eq!(
            validate("provider", &obj(&[("network", Val::string("sim"))]))[0].message,
            r#"expected network to be one of ["dev", "qa", "test", "main"], got sim"#
        );
    }

    #[test]
    fn the_embedded_schema_has_every_resource() {
        let s = schemas();
        let names: Vec<&str> = s.resources.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "grid_deployment",
                "grid_fqdn_proxy",
                "grid_kubernetes",
                "grid_name_proxy",
                "grid_network",
                "grid_scheduler"
            ]
        );
        assert!(s.provider.attributes["mnemonic"].sensitive);
    }
}
