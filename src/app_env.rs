//! The app's `environment:` declarations, resolved to the values its hooks get.
//!
//! The bash tool's manifest declares variables as a list of `{name, description, required,
//! default, secret, options[], depends_on{KEY: value}}` (tfgrid-compose-bash.md §2); some apps
//! write a plain map `NAME: default`. A value comes from the process environment, else the app's
//! env file (read as compose reads `.env`, never run: [`crate::env_file`]), else the default. A required one that has
//! none (and whose `depends_on` holds) stops `up` at validation, before anything is created.
//!
//! The hooks also get the bash tool's names for the same facts (§4.7): `DOMAIN` and
//! `TFGRID_DOMAIN` (from `TFGRID_DOMAIN`, `DOMAIN` or `DOMAIN_NAME`), `SSL_EMAIL` and
//! `TFGRID_SSL_EMAIL`, `TFGRID_GIT_NAME` and `TFGRID_GIT_EMAIL` (else `git.name`/`git.email` of
//! `credentials.yaml`). Values of `secret: true` variables are registered as secrets.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::credentials::GitIdentity;
use crate::yaml::scalar_text as scalar;

/// One declared variable.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct EnvVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// A YAML scalar (`443`, `true` and `"x"` are all text to the hooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_yaml::Value>,
    #[serde(default)]
    pub secret: bool,
    /// The values allowed, when not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<serde_yaml::Value>,
    /// Required (and checked against `options`) only when each `KEY` has this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, serde_yaml::Value>,
    /// Other keys of the bash tool's prompts (`type`, `example`, …): kept, not read.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

/// `environment:` as written: a list of declarations, or a map `NAME: default`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Environment {
    List(Vec<EnvVar>),
    Defaults(BTreeMap<String, serde_yaml::Value>),
}

impl Default for Environment {
    fn default() -> Self {
        Environment::List(Vec::new())
    }
}

impl Environment {
    /// The declarations, a map's entries as optional variables with that default.
    pub fn vars(&self) -> Vec<EnvVar> {
        match self {
            Environment::List(list) => list.clone(),
            Environment::Defaults(map) => map
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    default: Some(value.clone()),
                    ..EnvVar::default()
                })
                .collect(),
        }
    }
}

/// A variable name as a shell would take it: a letter or `_`, then letters, digits and `_`.
pub fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Where values come from, in order: the process environment, the env file, the declarations'
/// defaults. `process` reads one variable of the process environment.
pub struct Sources<'a> {
    pub process: &'a dyn Fn(&str) -> Option<String>,
    pub env_file: BTreeMap<String, String>,
    pub git: GitIdentity,
}

impl Sources<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        (self.process)(name).or_else(|| self.env_file.get(name).cloned())
    }
}

/// A missing or refused value, and where its declaration is.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    /// Index in the declaration list.
    pub index: usize,
    pub name: String,
    pub message: String,
    pub hint: String,
}

/// The values for the hooks, in a stable order: declared ones, then the bash tool's names.
/// Secret values are registered with [`crate::secrets`].
///
/// Errors: the first declared variable that is required and unset, or not among its `options`.
pub fn resolve(vars: &[EnvVar], sources: &Sources<'_>) -> Result<Vec<(String, String)>, Problem> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for var in vars {
        if let Some(value) = sources
            .lookup(&var.name)
            .or_else(|| var.default.as_ref().and_then(scalar))
        {
            values.insert(var.name.clone(), value);
        }
    }
    for (index, var) in vars.iter().enumerate() {
        let applies = var.depends_on.iter().all(|(key, want)| {
            let have = values.get(key).cloned().or_else(|| sources.lookup(key));
            have.is_some() && have == scalar(want)
        });
        if !applies {
            continue;
        }
        match values.get(&var.name) {
            None if var.required => {
                let what = var
                    .description
                    .as_deref()
                    .map_or(String::new(), |d| format!(" ({d})"));
                return Err(Problem {
                    index,
                    name: var.name.clone(),
                    message: format!("`{}`{what} is required and not set", var.name),
                    hint: format!(
                        "export {}=… before `up`, or add it to the app's env file",
                        var.name
                    ),
                });
            }
            Some(value) if !var.options.is_empty() => {
                let allowed: Vec<String> = var.options.iter().filter_map(scalar).collect();
                if !allowed.contains(value) {
                    return Err(Problem {
                        index,
                        name: var.name.clone(),
                        message: format!(
                            "`{}` is `{}`, not one of its options",
                            var.name,
                            if var.secret { "<redacted>" } else { value }
                        ),
                        hint: format!("set it to one of: {}", allowed.join(", ")),
                    });
                }
            }
            _ => {}
        }
    }
    for var in vars.iter().filter(|v| v.secret) {
        if let Some(value) = values.get(&var.name) {
            crate::secrets::register(value);
        }
    }
    let mut out: Vec<(String, String)> = vars
        .iter()
        .filter_map(|v| values.get(&v.name).map(|x| (v.name.clone(), x.clone())))
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| values.get(*n).cloned().or_else(|| sources.lookup(n)))
    };
    let mut alias = |names: [&str; 2], value: Option<String>| {
        if let Some(value) = value {
            for name in names {
                if !out.iter().any(|(k, _)| k == name) {
                    out.push((name.to_string(), value.clone()));
                }
            }
        }
    };
    alias(
        ["TFGRID_DOMAIN", "DOMAIN"],
        find(&["TFGRID_DOMAIN", "DOMAIN", "DOMAIN_NAME"]),
    );
    alias(
        ["TFGRID_SSL_EMAIL", "SSL_EMAIL"],
        find(&["TFGRID_SSL_EMAIL", "SSL_EMAIL"]),
    );
    for (name, fallback) in [
        ("TFGRID_GIT_NAME", sources.git.name.clone()),
        ("TFGRID_GIT_EMAIL", sources.git.email.clone()),
    ] {
        if !out.iter().any(|(k, _)| k == name)
            && let Some(value) = find(&[name]).or(fallback)
        {
            out.push((name.to_string(), value));
        }
    }
    Ok(out)
}

/// The file the hooks' wrapper reads: one `export NAME='value'` line each, quoted by
/// [`crate::tools::ssh::shell_quote`], the one quoting function for the remote shell.
pub fn env_script(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", crate::tools::ssh::shell_quote(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            ..EnvVar::default()
        }
    }

    #[test]
    fn values_come_from_the_process_then_the_env_file_then_the_default() {
        let process = |n: &str| (n == "DOMAIN").then(|| "example.org".to_string());
        let sources = Sources {
            process: &process,
            env_file: [("SSL_EMAIL".to_string(), "a@b.c".to_string())].into(),
            git: GitIdentity {
                name: Some("Ada".into()),
                email: None,
            },
        };
        let vars = vec![
            EnvVar {
                required: true,
                ..var("DOMAIN")
            },
            var("SSL_EMAIL"),
            EnvVar {
                default: Some(serde_yaml::Value::Number(8080.into())),
                ..var("PORT")
            },
        ];
        let out = resolve(&vars, &sources).unwrap();
        let got: BTreeMap<_, _> = out.into_iter().collect();
        assert_eq!(got["DOMAIN"], "example.org");
        assert_eq!(got["TFGRID_DOMAIN"], "example.org");
        assert_eq!(got["SSL_EMAIL"], "a@b.c");
        assert_eq!(got["TFGRID_SSL_EMAIL"], "a@b.c");
        assert_eq!(got["PORT"], "8080");
        assert_eq!(got["TFGRID_GIT_NAME"], "Ada");
        assert!(!got.contains_key("TFGRID_GIT_EMAIL"));
    }

    #[test]
    fn required_depends_on_and_options_are_checked() {
        let none = |_: &str| None;
        let sources = Sources {
            process: &none,
            env_file: [("DNS_PROVIDER".to_string(), "cloudflare".to_string())].into(),
            git: GitIdentity::default(),
        };
        let token = EnvVar {
            required: true,
            secret: true,
            depends_on: [("DNS_PROVIDER".to_string(), "cloudflare".into())].into(),
            ..var("CF_TOKEN")
        };
        let problem = resolve(std::slice::from_ref(&token), &sources).unwrap_err();
        assert_eq!((problem.index, problem.name.as_str()), (0, "CF_TOKEN"));
        let other = EnvVar {
            depends_on: [("DNS_PROVIDER".to_string(), "namecom".into())].into(),
            ..token
        };
        assert!(resolve(&[other], &sources).is_ok());
        let provider = EnvVar {
            options: vec!["namecom".into(), "manual".into()],
            ..var("DNS_PROVIDER")
        };
        let problem = resolve(&[provider], &sources).unwrap_err();
        assert!(problem.hint.contains("namecom, manual"), "{problem:?}");
    }

    #[test]
    fn the_env_script_quotes_every_value() {
        let script = env_script(&[("A".into(), "it's $(id)".into())]);
        assert_eq!(script, "export A='it'\\''s $(id)'\n");
    }
}
