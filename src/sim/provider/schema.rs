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
    /// `StringMatch(^[a-zA-Z0-9_]+$, nameValidationErrorMessage)` (provider.go:18-19).
    Name,
    IntBetween(i64, i64),
    IpAddress,
    /// `IsCIDRNetwork(16, 16)` (resource_network.go:68).
    Cidr16,
    OneOf(&'static [&'static str]),
    UrlScheme(&'static str),
    NotEmpty,
    /// `StringMatch(gpuValidationRegex, gpuValidationErrMsg)` on each element (provider.go:20-21,
    /// resource_deployment.go:304).
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
            (&["vms"], "name", Name),
            (&["vms"], "cpu", IntBetween(1, 32)),
            (&["vms"], "memory", IntBetween(256, 262_144)),
            (&["vms"], "rootfs_size", IntBetween(1024, 10_485_760)),
            (&["vms"], "ip", IpAddress),
            (&["vms"], "gpus", Gpu),
            (&["disks"], "name", Name),
            (&["disks"], "size", IntBetween(1, 10_240)),
            (&["zdbs"], "name", Name),
            (&["qsfs"], "name", Name),
        ],
        "grid_kubernetes" => &[
            (&[], "name", Name),
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
/// configuration. A null (unset) value is not validated and neither is an unknown one, as SDKv2
/// does (helper/schema/schema.go `validate`: no value, or not wholly known, returns early); a
/// value set to `0` or `""` is validated.
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
            path.push(PathStep::Attr(attr.to_string()));
            if let Check::Gpu = check {
                // a validator of the list's elements: one problem per element, at its index
                for (i, gpu) in v.list().iter().enumerate() {
                    if gpu.str().is_some_and(|g| !gpu_id(g)) {
                        let mut at = path.clone();
                        at.push(PathStep::Index(i as i64));
                        problems.push(Invalid {
                            path: at,
                            message: format!("invalid value for {attr} (not a valid gpu id)"),
                        });
                    }
                }
                continue;
            }
            for message in check_one(check, attr, v) {
                problems.push(Invalid {
                    path: path.clone(),
                    message,
                });
            }
        }
    }
    problems
}

/// The messages of one SDKv2 validator (terraform-plugin-sdk v2.34.0, helper/validation), with
/// `k` the attribute's name as `validation.ToDiagFunc` passes it.
fn check_one(check: &Check, k: &str, v: &Val) -> Vec<String> {
    let one = |m: Option<String>| m.into_iter().collect();
    match check {
        // strings.go:93-105; the message is the provider's nameValidationErrorMessage
        Check::Name => one(v.str().filter(|s| !valid_name(s)).map(|_| {
            format!(
                "invalid value for {k} (must only include alphanumeric and underscore characters)"
            )
        })),
        // int.go:15-30
        Check::IntBetween(lo, hi) => one(v
            .int()
            .filter(|n| n < lo || n > hi)
            .map(|n| format!("expected {k} to be in the range ({lo} - {hi}), got {n}"))),
        // network.go:16-29 (Go's net.ParseIP: "" is not an IP)
        Check::IpAddress => one(v
            .str()
            .filter(|s| s.parse::<IpAddr>().is_err())
            .map(|s| format!("expected {k} to contain a valid IP, got: {s}"))),
        // network.go:103-128
        Check::Cidr16 => v
            .str()
            .map(|s| cidr_network(k, s, 16, 16))
            .unwrap_or_default(),
        // strings.go:135-153: Go's %q of a []string, `["dev" "qa" "test" "main"]`
        Check::OneOf(allowed) => one(v.str().filter(|s| !allowed.contains(s)).map(|s| {
            let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
            format!("expected {k} to be one of [{}], got {s}", quoted.join(" "))
        })),
        // web.go:25-56
        Check::UrlScheme(scheme) => one(v.str().and_then(|s| url_problem(k, s, scheme))),
        // strings.go:17-28
        Check::NotEmpty => one(v
            .str()
            .filter(|s| s.is_empty())
            .map(|_| format!("expected \"{k}\" to not be an empty string, got "))),
        Check::Gpu => Vec::new(),
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

/// SDKv2's `IsCIDRNetwork(min, max)` (helper/validation/network.go:103-128): a parse error alone,
/// or "not the network address" and "wrong prefix length", each when it holds.
fn cidr_network(k: &str, s: &str, min: u8, max: u8) -> Vec<String> {
    let parsed = s.split_once('/').and_then(|(addr, bits)| {
        let addr: IpAddr = addr.parse().ok()?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let digits =
            !bits.is_empty() && bits.len() <= 3 && bits.bytes().all(|b| b.is_ascii_digit());
        let bits: u8 = bits.parse().ok().filter(|b| digits && *b <= width)?;
        Some((addr, bits))
    });
    let Some((addr, bits)) = parsed else {
        // Go's net.ParseCIDR error text
        return vec![format!(
            "expected {k} to contain a valid Value, got: {s} with err: invalid CIDR address: {s}"
        )];
    };
    let network = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    let canonical = format!("{network}/{bits}");
    let mut out = Vec::new();
    if canonical != s {
        out.push(format!(
            "expected {k} to contain a valid network Value, expected {canonical}, got {s}"
        ));
    }
    if bits < min || bits > max {
        out.push(format!(
            "expected \"{k}\" to contain a network Value with between {min} and {max} significant \
                bits, got: {bits}"
        ));
    }
    out
}

/// SDKv2's `IsURLWithScheme` (helper/validation/web.go:25-56) over Go's `url.Parse`: empty, no
/// host, or another scheme.
fn url_problem(k: &str, s: &str, scheme: &str) -> Option<String> {
    if s.is_empty() {
        return Some(format!("expected \"{k}\" url to not be empty, got {s}"));
    }
    // Go's url.Parse: a scheme is a letter then letters, digits, + - . before the first ':'
    let (found, rest) = match s.split_once(':') {
        Some((sch, rest))
            if sch.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && sch
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            (sch.to_ascii_lowercase(), rest)
        }
        _ => (String::new(), s),
    };
    let host = rest
        .strip_prefix("//")
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or_default())
        .map(|authority| authority.rsplit('@').next().unwrap_or_default())
        .unwrap_or_default();
    if host.is_empty() {
        return Some(format!("expected \"{k}\" to have a host, got {s}"));
    }
    (found != scheme)
        .then(|| format!("expected \"{k}\" to have a url with schema of: \"{scheme}\", got {s}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

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
            (
                "gpus",
                Val::List(vec![
                    Val::string("0000:0e:00.0/1002/744c"),
                    Val::string("gpu0"),
                ]),
            ),
        ]);
        let config = obj(&[
            ("name", Val::string("ok_name")),
            ("vms", Val::List(vec![vm])),
        ]);
        let problems = validate("grid_deployment", &config);
        let at = |steps: &[&str]| -> Vec<PathStep> {
            steps
                .iter()
                .map(|s| match s.parse::<i64>() {
                    Ok(i) => PathStep::Index(i),
                    Err(_) => PathStep::Attr(s.to_string()),
                })
                .collect()
        };
        assert_eq!(
            problems,
            vec![
                Invalid {
                    path: at(&["vms", "0", "name"]),
                    message: "invalid value for name (must only include alphanumeric and \
                        underscore characters)"
                        .into()
                },
                Invalid {
                    path: at(&["vms", "0", "cpu"]),
                    message: "expected cpu to be in the range (1 - 32), got 64".into()
                },
                // an explicit 0 is validated: SDKv2 skips only what is unset
                Invalid {
                    path: at(&["vms", "0", "memory"]),
                    message: "expected memory to be in the range (256 - 262144), got 0".into()
                },
                // one diagnostic per element of the list, at its index
                Invalid {
                    path: at(&["vms", "0", "gpus", "1"]),
                    message: "invalid value for gpus (not a valid gpu id)".into()
                },
            ]
        );
    }

    /// Each validator's text as terraform-plugin-sdk v2.34.0 (helper/validation) prints it.
    #[test]
    fn validator_messages_are_the_sdks_word_for_word() {
        let messages = |type_name: &str, pairs: &[(&str, Val)]| -> Vec<String> {
            validate(type_name, &obj(pairs))
                .into_iter()
                .map(|p| p.message)
                .collect()
        };
        let net = |range: &str| {
            messages(
                "grid_network",
                &[("name", Val::string("n")), ("ip_range", Val::string(range))],
            )
        };
        assert_eq!(net("10.1.0.0/16"), Vec::<String>::new());
        assert_eq!(
            net("10.1.2.0/16"),
            [
                "expected ip_range to contain a valid network Value, expected 10.1.0.0/16, got \
                10.1.2.0/16"
            ]
        );
        assert_eq!(
            net("10.1.2.0/24"),
            [
                r#"expected "ip_range" to contain a network Value with between 16 and 16 significant bits, got: 24"#
            ]
        );
        assert_eq!(
            net("10.1.2.3/24"),
            [
                "expected ip_range to contain a valid network Value, expected 10.1.2.0/24, got \
                    10.1.2.3/24",
                r#"expected "ip_range" to contain a network Value with between 16 and 16 significant bits, got: 24"#
            ]
        );
        assert_eq!(
            net("10.1.0.0"),
            [
                "expected ip_range to contain a valid Value, got: 10.1.0.0 with err: invalid CIDR \
                address: 10.1.0.0"
            ]
        );
        assert_eq!(
            messages("provider", &[("network", Val::string("sim"))]),
            [r#"expected network to be one of ["dev" "qa" "test" "main"], got sim"#]
        );
        assert_eq!(
            messages(
                "provider",
                &[
                    (
                        "substrate_url",
                        Val::string("https://tfchain.dev.grid.tf/ws")
                    ),
                    ("relay_url", Val::string("relay.dev.grid.tf")),
                    ("proxy_url", Val::string("")),
                ]
            ),
            [
                r#"expected "substrate_url" to have a url with schema of: "wss", got https://tfchain.dev.grid.tf/ws"#,
                r#"expected "relay_url" to have a host, got relay.dev.grid.tf"#,
                r#"expected "proxy_url" url to not be empty, got "#,
            ]
        );
        assert_eq!(
            messages(
                "provider",
                &[("relay_url", Val::string("wss://relay.dev.grid.tf"))]
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            messages("grid_kubernetes", &[("token", Val::string(""))]),
            [r#"expected "token" to not be an empty string, got "#]
        );
        let vm = obj(&[("name", Val::string("vm")), ("ip", Val::string(""))]);
        assert_eq!(
            messages("grid_deployment", &[("vms", Val::List(vec![vm]))]),
            ["expected ip to contain a valid IP, got: "]
        );
    }

    /// Every plan-time validator of the provider (b7d1a8c), and only those, with the message
    /// SDKv2 (terraform-plugin-sdk v2.34.0, helper/validation) prints for a bad value: the texts
    /// are copied from the sources cited on each row, not derived from the simulator's code.
    #[test]
    fn every_validator_is_the_providers_with_the_sdks_words() {
        const NAME: &str = "invalid value for name (must only include alphanumeric and underscore \
            characters)"; // strings.go:102 with provider.go:19
        // (resource, block, attribute, a bad value, the message, where the validator is)
        let rows: &[(&str, &str, &str, Val, &str, &str)] = &[
            (
                "provider",
                "",
                "key_type",
                Val::string("rsa"),
                r#"expected key_type to be one of ["ed25519" "sr25519"], got rsa"#,
                "provider.go:40",
            ), // strings.go:149
            (
                "provider",
                "",
                "network",
                Val::string("sim"),
                r#"expected network to be one of ["dev" "qa" "test" "main"], got sim"#,
                "provider.go:50",
            ),
            (
                "provider",
                "",
                "substrate_url",
                Val::string("https://tfchain.dev.grid.tf/ws"),
                r#"expected "substrate_url" to have a url with schema of: "wss", got https://tfchain.dev.grid.tf/ws"#,
                "provider.go:60",
            ), // web.go:55
            (
                "provider",
                "",
                "relay_url",
                Val::string("relay.dev.grid.tf"),
                r#"expected "relay_url" to have a host, got relay.dev.grid.tf"#,
                "provider.go:67",
            ), // web.go:45
            (
                "provider",
                "",
                "proxy_url",
                Val::string(""),
                r#"expected "proxy_url" url to not be empty, got "#,
                "provider.go:74",
            ), // web.go:34
            (
                "grid_network",
                "",
                "name",
                Val::string("n-1"),
                NAME,
                "resource_network.go:42",
            ),
            (
                "grid_network",
                "",
                "ip_range",
                Val::string("10.1.0.0/24"),
                r#"expected "ip_range" to contain a network Value with between 16 and 16 significant bits, got: 24"#,
                "resource_network.go:68",
            ), // network.go:124
            (
                "grid_deployment",
                "",
                "name",
                Val::string("d-1"),
                NAME,
                "resource_deployment.go:41",
            ),
            (
                "grid_deployment",
                "disks",
                "name",
                Val::string("d-1"),
                NAME,
                "resource_deployment.go:75",
            ),
            (
                "grid_deployment",
                "disks",
                "size",
                Val::Int(0),
                "expected size to be in the range (1 - 10240), got 0",
                "resource_deployment.go:81",
            ), // int.go:24
            (
                "grid_deployment",
                "zdbs",
                "name",
                Val::string("d-1"),
                NAME,
                "resource_deployment.go:102",
            ),
            (
                "grid_deployment",
                "vms",
                "name",
                Val::string("d-1"),
                NAME,
                "resource_deployment.go:163",
            ),
            (
                "grid_deployment",
                "vms",
                "ip",
                Val::string("10.1.2"),
                "expected ip to contain a valid IP, got: 10.1.2",
                "resource_deployment.go:205",
            ), // network.go:25
            (
                "grid_deployment",
                "vms",
                "cpu",
                Val::Int(33),
                "expected cpu to be in the range (1 - 32), got 33",
                "resource_deployment.go:222",
            ),
            (
                "grid_deployment",
                "vms",
                "memory",
                Val::Int(255),
                "expected memory to be in the range (256 - 262144), got 255",
                "resource_deployment.go:234",
            ),
            (
                "grid_deployment",
                "vms",
                "rootfs_size",
                Val::Int(1023),
                "expected rootfs_size to be in the range (1024 - 10485760), got 1023",
                "resource_deployment.go:240",
            ),
            (
                "grid_deployment",
                "vms",
                "gpus",
                Val::List(vec![Val::string("gpu0")]),
                "invalid value for gpus (not a valid gpu id)",
                "resource_deployment.go:304, provider.go:21",
            ),
            (
                "grid_deployment",
                "qsfs",
                "name",
                Val::string("d-1"),
                NAME,
                "resource_deployment.go:325",
            ),
            (
                "grid_kubernetes",
                "",
                "name",
                Val::string("k-1"),
                NAME,
                "resource_k8s.go:32",
            ),
            (
                "grid_kubernetes",
                "",
                "token",
                Val::string(""),
                r#"expected "token" to not be an empty string, got "#,
                "resource_k8s.go:76",
            ), // strings.go:24
            (
                "grid_kubernetes",
                "master",
                "name",
                Val::string("m-1"),
                NAME,
                "resource_k8s.go:95",
            ),
            (
                "grid_kubernetes",
                "master",
                "disk_size",
                Val::Int(10_241),
                "expected disk_size to be in the range (1 - 10240), got 10241",
                "resource_k8s.go:106",
            ),
            (
                "grid_kubernetes",
                "master",
                "cpu",
                Val::Int(0),
                "expected cpu to be in the range (1 - 32), got 0",
                "resource_k8s.go:154",
            ),
            (
                "grid_kubernetes",
                "master",
                "memory",
                Val::Int(262_145),
                "expected memory to be in the range (256 - 262144), got 262145",
                "resource_k8s.go:160",
            ),
            (
                "grid_kubernetes",
                "workers",
                "name",
                Val::string("w-1"),
                NAME,
                "resource_k8s.go:216",
            ),
            (
                "grid_kubernetes",
                "workers",
                "disk_size",
                Val::Int(0),
                "expected disk_size to be in the range (1 - 10240), got 0",
                "resource_k8s.go:237",
            ),
            (
                "grid_kubernetes",
                "workers",
                "cpu",
                Val::Int(0),
                "expected cpu to be in the range (1 - 32), got 0",
                "resource_k8s.go:273",
            ),
            (
                "grid_kubernetes",
                "workers",
                "memory",
                Val::Int(0),
                "expected memory to be in the range (256 - 262144), got 0",
                "resource_k8s.go:279",
            ),
            (
                "grid_fqdn_proxy",
                "",
                "name",
                Val::string("g-1"),
                NAME,
                "resource_gateway_fqdn.go:31",
            ),
            (
                "grid_name_proxy",
                "",
                "name",
                Val::string("g-1"),
                NAME,
                "resource_gateway_name.go:29",
            ),
        ];
        for (type_name, block, attr, bad, message, source) in rows {
            let one = obj(&[(attr, bad.clone())]);
            let config = if block.is_empty() {
                one
            } else {
                obj(&[(block, Val::List(vec![one]))])
            };
            let got: Vec<String> = validate(type_name, &config)
                .into_iter()
                .map(|p| p.message)
                .collect();
            assert_eq!(got, [*message], "{type_name} {block} {attr} ({source})");
        }
        // nothing else is validated at plan: an attribute the provider leaves alone is not
        let validated: BTreeSet<(String, String, String)> = [
            "provider",
            "grid_network",
            "grid_deployment",
            "grid_kubernetes",
            "grid_name_proxy",
            "grid_fqdn_proxy",
            "grid_scheduler",
        ]
        .iter()
        .flat_map(|t| {
            checks(t)
                .iter()
                .map(move |(blocks, attr, _)| (t.to_string(), blocks.join("."), attr.to_string()))
        })
        .collect();
        let expected: BTreeSet<(String, String, String)> = rows
            .iter()
            .map(|(t, b, a, ..)| (t.to_string(), b.to_string(), a.to_string()))
            .collect();
        assert_eq!(validated, expected);
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
