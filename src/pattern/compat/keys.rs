//! The bash tool's `pattern.yaml` keys whose shape differs from this tool's: `requires` (a list
//! or a map), `provides` and `commands` (a list or a map), `infrastructure` and `platform`. Each
//! reads through a serde visitor, so a value of the wrong type is reported at its line.

use std::collections::BTreeMap;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::pattern::Requirement;
use crate::pattern::command::AppCommand;

/// `requires:`: this tool's list (`[mnemonic]`), or the bash tool's map of what the app must
/// have (`app_hooks`, `deployment_hooks`; other keys, such as `gateway_config`, only describe).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Requires {
    List(Vec<Requirement>),
    App(AppRequirements),
}

impl Default for Requires {
    fn default() -> Self {
        Requires::List(Vec::new())
    }
}

/// The bash tool's `requires:` map.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct AppRequirements {
    /// Files the app must have as hooks, relative to the app folder (`deployment/setup.sh`).
    #[serde(default)]
    pub app_hooks: Vec<String>,
    /// Hook files inside the app's `deployment/` (`setup.sh`), the gateway pattern's spelling.
    #[serde(default)]
    pub deployment_hooks: Vec<String>,
    /// Descriptive entries (`gateway_config`, `deployment_manifest`, `cluster_config`).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

impl<'de> Deserialize<'de> for Requires {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = Requires;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list (`[mnemonic]`) or a map (`app_hooks: [deployment/setup.sh]`)")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Requires, E> {
                Ok(Requires::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Requires, A::Error> {
                Deserialize::deserialize(SeqAccessDeserializer::new(seq)).map(Requires::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Requires, A::Error> {
                Deserialize::deserialize(MapAccessDeserializer::new(map)).map(Requires::App)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

impl Requires {
    /// In words, for `patterns show`: `mnemonic`, or the files the app must have.
    pub fn describe(&self) -> Vec<String> {
        match self {
            Requires::List(list) => list
                .iter()
                .map(|r| format!("{r:?}").to_lowercase())
                .collect(),
            Requires::App(_) => self
                .app_files()
                .into_iter()
                .map(|(_, _, file)| format!("app file {file}"))
                .collect(),
        }
    }

    pub fn contains(&self, requirement: Requirement) -> bool {
        matches!(self, Requires::List(list) if list.contains(&requirement))
    }

    /// The files the app must have, relative to its folder, with the key that asks for each.
    pub fn app_files(&self) -> Vec<(&'static str, usize, String)> {
        let Requires::App(map) = self else {
            return Vec::new();
        };
        let hooks = map
            .app_hooks
            .iter()
            .enumerate()
            .map(|(i, p)| ("app_hooks", i, p.clone()));
        let deployment = map.deployment_hooks.iter().enumerate().map(|(i, p)| {
            let path = if p.contains('/') {
                p.clone()
            } else {
                format!("{}/{p}", crate::app_folder::DEPLOYMENT)
            };
            ("deployment_hooks", i, path)
        });
        hooks.chain(deployment).collect()
    }
}

/// A list of names, or a map of name to description (`provides:`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Described(pub BTreeMap<String, Option<String>>);

impl<'de> Deserialize<'de> for Described {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = Described;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of names or a map of name to description")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Described, E> {
                Ok(Described::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Described, A::Error> {
                let names: Vec<String> = Deserialize::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(Described(names.into_iter().map(|n| (n, None)).collect()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Described, A::Error> {
                Deserialize::deserialize(MapAccessDeserializer::new(map)).map(Described)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// `commands:`: the bash tool's map (`logs: {script: scripts/logs.sh, description: …}`) or list
/// of names (`[logs, status]`, each `scripts/<name>.sh`). Scripts are relative to the pattern
/// folder and live in its `scripts/`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PatternCommands(pub BTreeMap<String, AppCommand>);

/// One entry of the `commands:` map: nothing (`scripts/<name>.sh`), a script, or a command.
struct CommandEntry(Option<AppCommand>);

impl<'de> Deserialize<'de> for CommandEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = CommandEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map with `script:` (and `description:`), or a script path")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<CommandEntry, E> {
                Ok(CommandEntry(None))
            }
            fn visit_str<E: serde::de::Error>(self, script: &str) -> Result<CommandEntry, E> {
                Ok(CommandEntry(Some(AppCommand {
                    script: script.to_string(),
                    ..AppCommand::default()
                })))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CommandEntry, A::Error> {
                // Without `script:` (the bash gateway's `reload: {description: …}`) the script is
                // empty here and becomes `scripts/<name>.sh` below, as for a listed name.
                Deserialize::deserialize(MapAccessDeserializer::new(map))
                    .map(|c| CommandEntry(Some(c)))
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

impl<'de> Deserialize<'de> for PatternCommands {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        fn default(name: &str) -> AppCommand {
            AppCommand {
                script: format!("scripts/{name}.sh"),
                ..AppCommand::default()
            }
        }
        impl<'de> Visitor<'de> for Shape {
            type Value = PatternCommands;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a map of commands (`logs: {script: scripts/logs.sh}`) or a list of names",
                )
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<PatternCommands, E> {
                Ok(PatternCommands::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<PatternCommands, A::Error> {
                let names: Vec<String> = Deserialize::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(PatternCommands(
                    names.iter().map(|n| (n.clone(), default(n))).collect(),
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PatternCommands, A::Error> {
                let entries: BTreeMap<String, CommandEntry> =
                    Deserialize::deserialize(MapAccessDeserializer::new(map))?;
                Ok(PatternCommands(
                    entries
                        .into_iter()
                        .map(|(name, entry)| {
                            let command = match entry.0 {
                                Some(c) if c.script.is_empty() => AppCommand {
                                    script: default(&name).script,
                                    ..c
                                },
                                Some(c) => c,
                                None => default(&name),
                            };
                            (name, command)
                        })
                        .collect(),
                ))
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// `infrastructure:` (`provider: threefold`, `template: infrastructure/main.tf`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InfrastructureSpec {
    /// `threefold` (the grid); descriptive.
    #[serde(default)]
    pub provider: Option<String>,
    /// A `.tf` file inside `infrastructure/`; the whole folder is the module.
    #[serde(default)]
    pub template: Option<String>,
}

/// `platform:` (`provisioner: ansible`, `playbook: platform/site.yml`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatformSpec {
    /// Only `ansible`.
    #[serde(default)]
    pub provisioner: Option<String>,
    /// The playbook the platform phase runs, relative to the pattern folder.
    #[serde(default)]
    pub playbook: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Requires;
    use crate::pattern::PatternManifest;

    fn parse(text: &str) -> Result<PatternManifest, crate::error::InputError> {
        PatternManifest::parse(Path::new("pattern.yaml"), text)
    }

    /// The shapes of the bash tool's gateway pattern.yaml (b62f6be): `provides` as a map,
    /// `requires` with `deployment_hooks`, `commands` as a list, nested `defaults`, `stages`.
    #[test]
    fn the_bash_gateway_shapes_parse() {
        let m = parse(
            "name: gateway\nversion: 1.0.0\nprovides:\n  gateway_ip: Gateway public IPv4 address\n\
             requires:\n  deployment_hooks:\n    - setup.sh\n  gateway_config:\n    domain: \
             optional\n\
             defaults:\n  gateway:\n    cpu: 2\n  backend:\n    count: 1\n\
             commands:\n  - logs\n  - reload  # Reload Nginx config\n\
             stages:\n  1_infrastructure:\n    tool: terraform\nnetwork:\n  gateway:\n    public: \
             true\n\
             features:\n  - Load balancing\n",
        )
        .unwrap();
        assert_eq!(
            m.commands.0["reload"].script, "scripts/reload.sh",
            "a listed command is scripts/<name>.sh"
        );
        assert_eq!(
            m.requires.app_files(),
            [("deployment_hooks", 0, "deployment/setup.sh".to_string())]
        );
        assert!(!m.requires.contains(crate::pattern::Requirement::Mnemonic));
        assert_eq!(
            m.provides.unwrap().0["gateway_ip"].as_deref(),
            Some("Gateway public IPv4 address")
        );
        let native = parse("name: a\nversion: '1'\nrequires: [mnemonic]\n").unwrap();
        assert_eq!(
            native.requires,
            Requires::List(vec![crate::pattern::Requirement::Mnemonic])
        );
    }

    #[test]
    fn a_bad_key_type_names_the_line() {
        for (text, line, field) in [
            ("name: a\nversion: '1'\nrequires: 3\n", 3, "requires"),
            (
                "name: a\nversion: '1'\ncommands:\n  logs: 7\n",
                4,
                "commands.logs",
            ),
            ("name: a\nversion: '1'\nprovides: 3\n", 3, "provides"),
            (
                "name: a\nversion: '1'\nplatform:\n  playbook: [a]\n",
                4,
                "platform.playbook",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, Some(line), "{text}: {err} {err:?}");
            assert_eq!(err.field, field, "{text}: {err}");
        }
    }
}
