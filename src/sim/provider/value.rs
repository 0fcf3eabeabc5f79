//! Terraform values as the plugin protocol carries them: MessagePack `DynamicValue`s, decoded into
//! [`Val`] (with Terraform's "unknown" as its own variant) and encoded back.
//!
//! Wire format (Terraform's docs/plugin-protocol/object-wire-format.md): objects and maps are
//! MessagePack maps with string keys; lists, sets and tuples are arrays; numbers are integers
//! or floats; null is nil; an unknown value is the extension type 0 (`d4 00 00`).

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};

/// A Terraform value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Val {
    #[default]
    Null,
    /// Not known until apply.
    Unknown,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A list, set or tuple.
    List(Vec<Val>),
    /// An object or a map.
    Map(BTreeMap<String, Val>),
}

impl Val {
    /// Decodes MessagePack bytes; empty bytes are null.
    pub fn decode(bytes: &[u8]) -> Result<Val> {
        if bytes.is_empty() {
            return Ok(Val::Null);
        }
        let mut slice = bytes;
        let value = rmpv::decode::read_value(&mut slice)
            .context("decoding a MessagePack value from Terraform")?;
        from_rmpv(value)
    }

    /// Encodes as MessagePack.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write(self, &mut out);
        out
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Val::Unknown)
    }

    /// True when this value or anything inside it is unknown.
    pub fn has_unknown(&self) -> bool {
        match self {
            Val::Unknown => true,
            Val::List(items) => items.iter().any(Val::has_unknown),
            Val::Map(map) => map.values().any(Val::has_unknown),
            _ => false,
        }
    }

    /// The attribute `key` of an object (null when absent).
    pub fn get(&self, key: &str) -> &Val {
        static NULL: Val = Val::Null;
        match self {
            Val::Map(map) => map.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    pub fn set(&mut self, key: &str, value: Val) {
        if let Val::Map(map) = self {
            map.insert(key.to_string(), value);
        }
    }

    pub fn str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A string attribute, "" when null.
    pub fn str_or_empty(&self, key: &str) -> String {
        self.get(key).str().unwrap_or_default().to_string()
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(n) => Some(*n),
            Val::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Val::Str(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A number attribute, 0 when null.
    pub fn int_or_zero(&self, key: &str) -> i64 {
        self.get(key).int().unwrap_or(0)
    }

    pub fn bool_or_false(&self, key: &str) -> bool {
        matches!(self.get(key), Val::Bool(true))
    }

    pub fn list(&self) -> &[Val] {
        match self {
            Val::List(items) => items,
            _ => &[],
        }
    }

    pub fn map(&self) -> Option<&BTreeMap<String, Val>> {
        match self {
            Val::Map(map) => Some(map),
            _ => None,
        }
    }

    pub fn string(s: impl Into<String>) -> Val {
        Val::Str(s.into())
    }
}

fn from_rmpv(value: rmpv::Value) -> Result<Val> {
    Ok(match value {
        rmpv::Value::Nil => Val::Null,
        rmpv::Value::Boolean(b) => Val::Bool(b),
        rmpv::Value::Integer(n) => match n.as_i64() {
            Some(i) => Val::Int(i),
            None => Val::Float(n.as_f64().unwrap_or(f64::MAX)),
        },
        rmpv::Value::F32(f) => Val::Float(f64::from(f)),
        rmpv::Value::F64(f) => Val::Float(f),
        rmpv::Value::String(s) => Val::Str(s.into_str().unwrap_or_default()),
        rmpv::Value::Binary(b) => Val::Str(String::from_utf8_lossy(&b).into_owned()),
        rmpv::Value::Array(items) => {
            Val::List(items.into_iter().map(from_rmpv).collect::<Result<_>>()?)
        }
        rmpv::Value::Map(entries) => {
            let mut map = BTreeMap::new();
            for (k, v) in entries {
                let Some(key) = k.as_str() else {
                    bail!("a MessagePack map key that is not a string")
                };
                map.insert(key.to_string(), from_rmpv(v)?);
            }
            Val::Map(map)
        }
        // Terraform encodes an unknown value as an extension (type 0, or 12 with refinements).
        rmpv::Value::Ext(..) => Val::Unknown,
    })
}

fn write(value: &Val, out: &mut Vec<u8>) {
    use rmp::encode;
    // Writing into a Vec cannot fail.
    match value {
        Val::Null => encode::write_nil(out).unwrap_or(()),
        Val::Unknown => out.extend_from_slice(&[0xd4, 0, 0]),
        Val::Bool(b) => encode::write_bool(out, *b).unwrap_or(()),
        Val::Int(n) => drop(encode::write_sint(out, *n)),
        Val::Float(f) => drop(encode::write_f64(out, *f)),
        Val::Str(s) => drop(encode::write_str(out, s)),
        Val::List(items) => {
            drop(encode::write_array_len(out, items.len() as u32));
            for item in items {
                write(item, out);
            }
        }
        Val::Map(map) => {
            drop(encode::write_map_len(out, map.len() as u32));
            for (k, v) in map {
                drop(encode::write_str(out, k));
                write(v, out);
            }
        }
    }
}

impl From<&serde_json::Value> for Val {
    /// JSON state (as `UpgradeResourceState` gets it) into a value.
    fn from(json: &serde_json::Value) -> Val {
        match json {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Val::Int)
                .unwrap_or_else(|| Val::Float(n.as_f64().unwrap_or(0.0))),
            serde_json::Value::String(s) => Val::Str(s.clone()),
            serde_json::Value::Array(items) => Val::List(items.iter().map(Val::from).collect()),
            serde_json::Value::Object(map) => {
                Val::Map(map.iter().map(|(k, v)| (k.clone(), Val::from(v))).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_messagepack_with_unknowns() {
        let mut map = BTreeMap::new();
        map.insert("name".to_string(), Val::string("net"));
        map.insert(
            "nodes".to_string(),
            Val::List(vec![Val::Int(11), Val::Int(-3)]),
        );
        map.insert("id".to_string(), Val::Unknown);
        map.insert("size".to_string(), Val::Float(1.5));
        map.insert("gone".to_string(), Val::Null);
        let value = Val::Map(map);
        let bytes = value.encode();
        assert_eq!(Val::decode(&bytes).unwrap(), value);
        assert!(value.has_unknown());
        assert_eq!(Val::decode(&[]).unwrap(), Val::Null);
        // cty's refined unknown (extension 12) is unknown too
        assert_eq!(Val::decode(&[0xd4, 12, 0]).unwrap(), Val::Unknown);
    }
}
