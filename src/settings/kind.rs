//! The kinds of setting values ([`Kind`]: how a flag's or a variable's text is parsed, how a
//! config-file value is checked, how `config show` and the docs show it) and `settings!`, the
//! macro that turns the table of settings in `settings.rs` into the config file's keys,
//! [`Overrides`](super::Overrides), [`Settings`](super::Settings), its resolver, `config show`'s
//! values and the docs' rows. Holds no setting of its own.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{NodeSelection, check_env_name, parse_duration};
use crate::grid::select::NodeFilter;

/// The table of settings → everything derived from it. A row:
///
/// ```text
/// /// doc line (the field's doc and the docs' meaning column)
/// field: Kind, key [env_only]?, var "TFGRID_COMPOSE_…"?, flag "--flag"?, flags "docs"?
///     = default EXPR | = unset "what the docs say when unset";
/// ```
///
/// `default` gives the field the kind's value type, `unset` an `Option` of it; `[env_only]` keeps
/// the key out of the config file; `flag` adds a field to `Overrides`; `flags` only names, for
/// the docs, flags of some commands that come first.
macro_rules! settings {
    (@type default $kind:ty) => { <$kind as Kind>::Value };
    (@type unset $kind:ty) => { Option<<$kind as Kind>::Value> };
    (@settle default $picked:expr, $default:expr) => { $picked.unwrap_or_else(|| $default) };
    (@settle unset $picked:expr, $default:expr) => { $picked };
    (@show default $kind:ty, $value:expr) => { <$kind as Kind>::show(&$value) };
    (@show unset $kind:ty, $value:expr) => {
        $value.as_ref().map_or(serde_json::Value::Null, <$kind as Kind>::show)
    };
    (@doc_default default $kind:ty, $default:expr) => { <$kind as Kind>::doc(&$default) };
    (@doc_default unset $kind:ty, $text:expr) => { String::from($text) };
    (@opt) => { None };
    (@opt $text:literal) => { Some($text) };
    (@in_file) => { true };
    (@in_file $only:ident) => { false };
    (@flag $flags:ident . $field:ident) => { None };
    (@flag $flags:ident . $field:ident, $flag:literal) => {
        $flags.$field.clone().map(|value| (value, $flag))
    };
    (
        $(
            $(#[doc = $doc:literal])+
            $field:ident: $kind:ty, $key:ident $([$only:ident])?
            $(, var $var:literal)?
            $(, flag $flag:literal)?
            $(, flags $flags_doc:literal)?
            = $how:ident $default:expr;
        )+
    ) => {
        /// The user config file. Every key is optional; unknown keys are an error.
        #[derive(Debug, Clone, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ConfigFile {
            $(
                $(#[doc = $doc])+
                $(#[serde(skip)] #[doc = concat!("(", stringify!($only), ")")])?
                pub $key: Option<<$kind as Kind>::Written>,
            )+
        }

        /// Flags that override the environment and the config file.
        #[derive(Debug, Clone, Default)]
        pub struct Overrides {
            $($(
                #[doc = $flag]
                pub $field: Option<<$kind as Kind>::Value>,
            )?)+
        }

        /// Everything a run needs to know that is not in the manifest.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                pub $field: settings!(@type $how $kind),
            )+
            pub env: Env,
            pub config_file: PathBuf,
            pub data_dir: PathBuf,
            /// What can be fetched again: the app registry's copy, app repositories
            /// ([`Env::cache_dir`]).
            pub cache_dir: PathBuf,
            /// Key → where its value came from.
            pub sources: BTreeMap<&'static str, Source>,
        }

        /// The settings table, in its order (docs, `config show`).
        pub fn table() -> Vec<Setting> {
            vec![$(
                Setting {
                    key: stringify!($key),
                    in_file: settings!(@in_file $($only)?),
                    var: settings!(@opt $($var)?),
                    flag: settings!(@opt $($flag)?),
                    flags: settings!(@opt $($flags_doc)?),
                    kind: <$kind as Kind>::NAME,
                    default: settings!(@doc_default $how $kind, $default),
                    doc: concat!($($doc),+).split_whitespace().collect::<Vec<_>>().join(" "),
                },
            )+]
        }

        impl Settings {
            /// Each setting of the table from its flag, variable, config-file key or default.
            fn resolve_table(env: Env, flags: &Overrides) -> Result<Settings> {
                let config_file = env.config_dir().join("config.yaml");
                let config = ConfigFile::load(&config_file)?;
                let mut resolver = Resolver {
                    env: &env,
                    config_file: &config_file,
                    sources: BTreeMap::new(),
                };
                $(
                    let $field = settings!(@settle $how resolver.pick::<$kind>(
                        stringify!($key),
                        settings!(@flag flags.$field $(, $flag)?),
                        settings!(@opt $($var)?),
                        config.$key.clone(),
                    )?, $default);
                )+
                let sources = resolver.sources;
                Ok(Settings {
                    $($field,)+
                    data_dir: env.data_dir(),
                    cache_dir: env.cache_dir(),
                    config_file,
                    sources,
                    env,
                })
            }

            /// `config show`'s values: key → value as JSON, in the table's order (a secret as
            /// `<redacted>`, an unset value as null).
            pub fn shown(&self) -> Vec<(&'static str, serde_json::Value)> {
                vec![$((stringify!($key), settings!(@show $how $kind, self.$field)),)+]
            }
        }
    };
}

/// A kind of setting value: how it is read from a flag's or a variable's text, checked when the
/// config file writes it, and shown by `config show` and the docs.
pub trait Kind {
    /// The resolved value.
    type Value: Clone + std::fmt::Debug;
    /// The value as the config file writes it, before its check.
    type Written: DeserializeOwned + Clone + std::fmt::Debug;
    /// The type column of docs/configuration.md.
    const NAME: &'static str;
    /// The hint of a config-file value that fails its check.
    const HINT: &'static str = "fix the value, or remove the key to use the default";
    /// A variable's (or a flag's) text → the value; errors say what is wrong with the text.
    fn parse(text: &str) -> Result<Self::Value, String>;
    /// The config file's value → the value.
    fn check(written: Self::Written) -> Result<Self::Value, String>;
    /// As `config show` prints it (JSON; a secret as `<redacted>`).
    fn show(value: &Self::Value) -> Value;
    /// As the docs write a default.
    fn doc(value: &Self::Value) -> String {
        match Self::show(value) {
            Value::String(text) => format!("`{text}`"),
            other => other.to_string(),
        }
    }
    /// Sees every value that is not the default (a secret registers itself here).
    fn accept(_value: &Self::Value) {}
}

/// Text as it is (a URL, a program name).
pub struct Text;
impl Kind for Text {
    type Value = String;
    type Written = String;
    const NAME: &'static str = "text";
    fn parse(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
    fn check(written: String) -> Result<String, String> {
        Ok(written)
    }
    fn show(value: &String) -> Value {
        Value::String(value.clone())
    }
}

/// A path to a file or folder.
pub struct FilePath;
impl Kind for FilePath {
    type Value = PathBuf;
    type Written = PathBuf;
    const NAME: &'static str = "path";
    fn parse(text: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(text))
    }
    fn check(written: PathBuf) -> Result<PathBuf, String> {
        Ok(written)
    }
    fn show(value: &PathBuf) -> Value {
        Value::String(value.display().to_string())
    }
}

/// A TCP port, 1 to 65535.
pub struct Port;
impl Kind for Port {
    type Value = u16;
    type Written = u16;
    const NAME: &'static str = "port";
    const HINT: &'static str = "give a port number from 1 to 65535";
    fn parse(text: &str) -> Result<u16, String> {
        text.parse::<u16>()
            .map_err(|_| ())
            .and_then(|port| Self::check(port).map_err(|_| ()))
            .map_err(|()| format!("`{text}` is not a port number (1-65535)"))
    }
    fn check(port: u16) -> Result<u16, String> {
        if port == 0 {
            Err("0 is not a port number (1-65535)".into())
        } else {
            Ok(port)
        }
    }
    fn show(value: &u16) -> Value {
        json!(value)
    }
}

/// A whole number.
pub struct Count;
impl Kind for Count {
    type Value = u32;
    type Written = u32;
    const NAME: &'static str = "number";
    fn parse(text: &str) -> Result<u32, String> {
        text.parse::<u32>()
            .map_err(|_| format!("`{text}` is not a number"))
    }
    fn check(written: u32) -> Result<u32, String> {
        Ok(written)
    }
    fn show(value: &u32) -> Value {
        json!(value)
    }
}

/// An amount of US dollars, 0 or more (`25`, `12.50`).
pub struct Usd;
impl Kind for Usd {
    type Value = f64;
    type Written = f64;
    const NAME: &'static str = "USD";
    const HINT: &'static str = "give an amount of US dollars, such as 25 or 12.50";
    fn parse(text: &str) -> Result<f64, String> {
        text.trim_start_matches('$')
            .parse::<f64>()
            .map_err(|_| format!("`{text}` is not an amount of US dollars"))
            .and_then(Self::check)
    }
    fn check(written: f64) -> Result<f64, String> {
        if written.is_finite() && written >= 0.0 {
            Ok(written)
        } else {
            Err(format!(
                "{written} is not an amount of US dollars (0 or more)"
            ))
        }
    }
    fn show(value: &f64) -> Value {
        json!(value)
    }
}

/// A duration: `500ms`, `30s`, `5m`, `1h` or a number of seconds ([`parse_duration`]).
pub struct Span;
impl Kind for Span {
    type Value = Duration;
    type Written = String;
    const NAME: &'static str = "duration";
    const HINT: &'static str = "give a duration such as 30s, 5m or 1h";
    fn parse(text: &str) -> Result<Duration, String> {
        parse_duration(text)
    }
    fn check(written: String) -> Result<Duration, String> {
        parse_duration(&written)
    }
    fn show(value: &Duration) -> Value {
        Value::String(crate::clock::format_duration(*value))
    }
    fn doc(value: &Duration) -> String {
        match value.as_secs() {
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        }
    }
}

/// An environment name ([`check_env_name`]).
pub struct EnvName;
impl Kind for EnvName {
    type Value = String;
    type Written = String;
    const NAME: &'static str = "environment name";
    const HINT: &'static str = "name an environment such as `default`, `staging` or `pr-123`";
    fn parse(text: &str) -> Result<String, String> {
        check_env_name(text).map(|()| text.to_string())
    }
    fn check(written: String) -> Result<String, String> {
        Self::parse(&written)
    }
    fn show(value: &String) -> Value {
        Value::String(value.clone())
    }
}

/// A grid network's name (`grid::proxy::check_network`).
pub struct Network;
impl Kind for Network {
    type Value = String;
    type Written = String;
    const NAME: &'static str = "network";
    const HINT: &'static str = "use main, test, qa, dev, or sim for the grid simulator";
    fn parse(text: &str) -> Result<String, String> {
        crate::grid::proxy::check_network(text).map(|()| text.to_string())
    }
    fn check(written: String) -> Result<String, String> {
        Self::parse(&written)
    }
    fn show(value: &String) -> Value {
        Value::String(value.clone())
    }
}

/// [`NodeSelection`]: `gridproxy` or `scheduler`.
pub struct Selection;
impl Kind for Selection {
    type Value = NodeSelection;
    type Written = NodeSelection;
    const NAME: &'static str = "`gridproxy` or `scheduler`";
    fn parse(text: &str) -> Result<NodeSelection, String> {
        match text {
            "gridproxy" => Ok(NodeSelection::Gridproxy),
            "scheduler" => Ok(NodeSelection::Scheduler),
            _ => Err(format!("`{text}` is not gridproxy or scheduler")),
        }
    }
    fn check(written: NodeSelection) -> Result<NodeSelection, String> {
        Ok(written)
    }
    fn show(value: &NodeSelection) -> Value {
        json!(value)
    }
}

/// A secret: registered with `secrets` as it is read, shown only as `<redacted>`.
pub struct Secret;
impl Kind for Secret {
    type Value = String;
    type Written = String;
    const NAME: &'static str = "secret";
    fn parse(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
    fn check(written: String) -> Result<String, String> {
        Ok(written)
    }
    fn show(_value: &String) -> Value {
        Value::String("<redacted>".into())
    }
    fn accept(value: &String) {
        crate::secrets::register(value);
    }
}

/// A [`NodeFilter`] (a YAML map in the config file; no variable).
pub struct Filter;
impl Kind for Filter {
    type Value = NodeFilter;
    type Written = NodeFilter;
    const NAME: &'static str = "node filter";
    fn parse(_text: &str) -> Result<NodeFilter, String> {
        Err("a node filter is read from the config file only".into())
    }
    fn check(written: NodeFilter) -> Result<NodeFilter, String> {
        Ok(written)
    }
    fn show(value: &NodeFilter) -> Value {
        serde_json::to_value(value).unwrap_or(Value::Null)
    }
    fn doc(_value: &NodeFilter) -> String {
        "none".into()
    }
}
