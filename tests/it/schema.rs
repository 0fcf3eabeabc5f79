//! A small JSON Schema checker for the documented `--json` schemas in `docs/schemas/`: `type`,
//! `const`, `enum`, `required`, `properties`, `additionalProperties`, `items` and local `$ref`.
//! Enough for the keywords those files use; an unknown keyword there fails the check.

use serde_json::Value;

const KNOWN: &[&str] = &[
    "$schema",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "$ref",
    "$defs",
];

pub(crate) fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schemas")
        .join(format!("{name}.schema.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every violation, as `path: problem`.
pub(crate) fn check(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    walk(schema, schema, value, "$", &mut errors);
    errors
}

fn type_ok(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    }
}

fn walk(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    for key in s.keys() {
        assert!(
            KNOWN.contains(&key.as_str()),
            "schema keyword `{key}` is not supported by the checker"
        );
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix("#/")
            .unwrap()
            .split('/')
            .fold(root, |node, part| &node[part]);
        walk(root, target, v, at, errors);
    }
    if let Some(t) = s.get("type") {
        let names: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type"),
        };
        if !names.iter().any(|n| type_ok(n, v)) {
            errors.push(format!("{at}: expected {names:?}, found {v}"));
            return;
        }
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{at}: expected {c}, found {v}"));
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {options:?}"));
    }
    if let Some(obj) = v.as_object() {
        for key in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(key) {
                errors.push(format!("{at}: missing `{key}`"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (key, child) in obj {
            let here = format!("{at}.{key}");
            match (
                props.and_then(|p| p.get(key)),
                s.get("additionalProperties"),
            ) {
                (Some(sub), _) => walk(root, sub, child, &here, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{at}: unexpected `{key}`"))
                }
                (None, Some(sub @ Value::Object(_))) => walk(root, sub, child, &here, errors),
                _ => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            walk(root, items, item, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Parses `text` as one JSON document and asserts it fits the named schema.
pub(crate) fn assert_fits(name: &str, text: &str) -> Value {
    let value: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {text}"));
    let errors = check(&load(name), &value);
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{value:#}");
    value
}

#[test]
fn the_checker_rejects_what_it_should() {
    let schema = load("address");
    let good = serde_json::json!({"schema": 1, "primary_ip": "10.0.0.2", "primary_ip_type": "ipv4", "mycelium_ip": null, "vms": [{"name": "vm", "ip": "10.0.0.2", "role": "primary"}]});
    assert!(check(&schema, &good).is_empty());
    let mut bad = good.clone();
    bad["schema"] = 2.into();
    bad["primary_ip_type"] = "carrier-pigeon".into();
    bad["vms"][0]["extra"] = true.into();
    bad.as_object_mut().unwrap().remove("mycelium_ip");
    assert_eq!(check(&schema, &bad).len(), 4, "{:?}", check(&schema, &bad));
}
