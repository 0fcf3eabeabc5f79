//! The provider's schema defaults, applied as SDKv2 applies them: where the configuration leaves
//! an attribute null, the plan (and so the state) holds the default (`name = "vm"` of a
//! `grid_deployment`, `cpu = 1` of a VM, …).
//!
//! `defaults.json` (beside this file) is the reference: each default with its path (`vms.cpu`:
//! the attribute `cpu` of every element of the block list `vms`) and its `file:line` in the
//! provider's source at b7d1a8c. `terraform providers schema -json` carries no defaults, so the
//! schema test cannot see them; `tests/it/fidelity.rs` plans a near-empty configuration of each
//! resource and compares the plan with this file.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::value::Val;

/// The reference file: the provider commit it was read from, and the defaults per resource.
#[derive(Deserialize)]
pub struct DefaultsFile {
    pub source: String,
    pub resources: BTreeMap<String, Vec<Default>>,
}

/// One attribute's default: `path` (dot-separated, through block lists), the value, and where
/// the provider declares it (`internal/provider/<file>.go:<line>`).
#[derive(Deserialize)]
pub struct Default {
    pub path: String,
    pub default: serde_json::Value,
    pub source: String,
}

/// The parsed reference (parsed once).
pub fn defaults() -> &'static DefaultsFile {
    static DEFAULTS: OnceLock<DefaultsFile> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        serde_json::from_str(include_str!("defaults.json"))
            .expect("the embedded provider defaults parse")
    })
}

/// Sets every default of `type_name` that `planned` leaves null, in every element of a block
/// list on the way. Unknown values and absent blocks stay as they are.
pub fn apply(type_name: &str, planned: &mut Val) {
    for d in defaults().resources.get(type_name).into_iter().flatten() {
        let path: Vec<&str> = d.path.split('.').collect();
        set_default(planned, &path, &Val::from(&d.default));
    }
}

fn set_default(value: &mut Val, path: &[&str], default: &Val) {
    let Val::Map(map) = value else { return };
    match path {
        [] => {}
        [leaf] => {
            if map.get(*leaf).is_none_or(Val::is_null) {
                map.insert((*leaf).to_string(), default.clone());
            }
        }
        [block, rest @ ..] => match map.get_mut(*block) {
            Some(Val::List(items)) => items.iter_mut().for_each(|i| set_default(i, rest, default)),
            Some(v @ Val::Map(_)) => set_default(v, rest, default),
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_nulls_through_block_lists_and_keep_what_is_set() {
        let vm = |cpu: Val| Val::Map(BTreeMap::from([("cpu".into(), cpu)]));
        let mut planned = Val::Map(BTreeMap::from([
            ("name".into(), Val::Null),
            (
                "vms".into(),
                Val::List(vec![vm(Val::Null), vm(Val::Int(4))]),
            ),
            ("zdbs".into(), Val::List(Vec::new())),
        ]));
        apply("grid_deployment", &mut planned);
        assert_eq!(planned.get("name"), &Val::string("vm"));
        assert_eq!(planned.get("vms").list()[0].get("cpu"), &Val::Int(1));
        assert_eq!(planned.get("vms").list()[1].get("cpu"), &Val::Int(4));
        assert!(planned.get("zdbs").list().is_empty());
        for rows in defaults().resources.values() {
            for d in rows {
                assert!(
                    d.source.starts_with("internal/provider/resource_"),
                    "{}",
                    d.source
                );
            }
        }
    }
}
