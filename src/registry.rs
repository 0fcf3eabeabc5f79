//! The registry: one small JSON file per deployment made on this machine, in the user data dir
//! (`~/.local/share/tfgrid-compose/deployments/<id>.json`), each pointing at its state folder.
//! `ps` reads it; `up` adds an entry and every state save refreshes it; a successful `down`
//! removes it. One file per entry means concurrent runs never rewrite each other's entries.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::error::UserError;
use crate::files::{create_private_dir, write_atomic};
use crate::ids::ShortId;

/// Schema of an entry file and of `ps --json`'s rows.
pub const ENTRY_SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub schema_version: u32,
    pub id: String,
    pub app: String,
    pub env: String,
    pub pattern: String,
    /// Status as of the last save (`running`, `failed`, …).
    pub status: String,
    #[serde(default)]
    pub primary_ip: Option<String>,
    /// The app's real folder (symlinks resolved).
    pub app_dir: PathBuf,
    /// The app folder as it was given, when that differs from `app_dir` (for display).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_dir_given: Option<PathBuf>,
    /// `<app>/.tfgrid-compose/<env>/`.
    pub state_dir: PathBuf,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A registry file that could not be read, and why.
pub type Broken = (PathBuf, String);

impl Entry {
    /// The state folder is gone (deleted by hand, or on a disk that is not mounted).
    pub fn missing(&self) -> bool {
        !self.state_dir.join("state.yaml").is_file()
    }

    pub fn short_id(&self) -> ShortId {
        ShortId::of(&self.id)
    }

    /// `app:env`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.app, self.env)
    }
}

#[derive(Debug, Clone)]
pub struct Registry {
    pub dir: PathBuf,
}

impl Registry {
    pub fn new(dir: PathBuf) -> Registry {
        Registry { dir }
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Adds or replaces an entry (atomic write).
    pub fn contains(&self, id: &str) -> bool {
        self.file(id).is_file()
    }

    pub fn put(&self, entry: &Entry) -> Result<()> {
        create_private_dir(&self.dir)?;
        let text = serde_json::to_vec(entry)?;
        write_atomic(&self.file(&entry.id), &text, 0o600)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        match std::fs::remove_file(self.file(id)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("failed to remove registry entry `{id}`"))
            }
            _ => Ok(()),
        }
    }

    /// Every entry, oldest first, and the files that could not be read (never dropped silently).
    pub fn list(&self) -> Result<(Vec<Entry>, Vec<Broken>)> {
        let read = match std::fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()));
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("failed to read the registry `{}`", self.dir.display())
                });
            }
        };
        let mut entries = Vec::new();
        let mut broken = Vec::new();
        for item in read.flatten() {
            let path = item.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|e| e.to_string()))
                .and_then(|entry| check_entry(&path, entry))
            {
                Ok(entry) => entries.push(entry),
                Err(err) => broken.push((path, err)),
            }
        }
        entries.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok((entries, broken))
    }

    /// Resolves `ID-PREFIX`, `APP` or `APP:ENV` to one entry. `env` is the environment to prefer
    /// for a bare app name when it was given explicitly. `Ok(None)` when nothing matches.
    pub fn find(&self, query: &str, env: Option<&str>) -> Result<Option<Entry>> {
        let (entries, _) = self.list()?;
        let is_hex = !query.is_empty()
            && query.len() <= 16
            && query
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if is_hex {
            let hits: Vec<&Entry> = entries.iter().filter(|e| e.id.starts_with(query)).collect();
            match hits.len() {
                0 => {}
                1 => return Ok(Some(hits[0].clone())),
                _ => return Err(ambiguous(query, &hits)),
            }
        }
        let (app, wanted_env) = match query.split_once(':') {
            Some((app, env)) => (app, Some(env)),
            None => (query, env),
        };
        let hits: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.app == app && wanted_env.is_none_or(|w| e.env == w))
            .collect();
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(hits[0].clone())),
            _ => Err(ambiguous(query, &hits)),
        }
    }
}

/// An entry's id names its file (which `down` removes) and the deployment it must find: it has
/// the shape `ids::new_id` makes and is its file's name, or the entry is broken.
fn check_entry(path: &std::path::Path, entry: Entry) -> Result<Entry, String> {
    if !crate::ids::is_deployment_id(&entry.id) {
        return Err(format!(
            "`id` is `{}`, not 16 lowercase hex digits",
            entry.id.escape_debug()
        ));
    }
    if path.file_stem().is_none_or(|s| *s != *entry.id) {
        return Err(format!("`id` is `{}`, not the file's name", entry.id));
    }
    Ok(entry)
}

/// The deployments `query` matches, each by its short id and `APP:ENV`; when two share their
/// `APP:ENV` (copies of one app in two folders), each with its folder too, and the hint names
/// what tells them apart.
fn ambiguous(query: &str, hits: &[&Entry]) -> anyhow::Error {
    let same_label = hits
        .iter()
        .any(|a| hits.iter().filter(|b| b.label() == a.label()).count() > 1);
    let list: Vec<String> = hits
        .iter()
        .map(|e| {
            if same_label {
                format!("{} ({}, {})", e.short_id(), e.label(), e.app_dir.display())
            } else {
                format!("{} ({})", e.short_id(), e.label())
            }
        })
        .collect();
    let hint = if same_label {
        "give more of the id, or the app's folder (`tfgrid-compose ps` lists them)"
    } else {
        "give more of the id, or `APP:ENV` (`tfgrid-compose ps` lists them)"
    };
    UserError::new(
        format!(
            "`{query}` matches {} deployments: {}",
            hits.len(),
            list.join(", ")
        ),
        hint,
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::{ENTRY_SCHEMA, Entry, Registry};

    fn entry(id: &str, app: &str, env: &str) -> Entry {
        Entry {
            schema_version: ENTRY_SCHEMA,
            id: id.into(),
            app: app.into(),
            env: env.into(),
            pattern: "local".into(),
            status: "running".into(),
            primary_ip: None,
            app_dir: "/nowhere".into(),
            app_dir_given: None,
            state_dir: "/nowhere/.tfgrid-compose/default".into(),
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn prefix_and_name_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(dir.path().join("r"));
        reg.put(&entry("abc1000000000000", "web", "default"))
            .unwrap();
        reg.put(&entry("abc2000000000000", "web", "staging"))
            .unwrap();
        reg.put(&entry("ff00000000000000", "db", "default"))
            .unwrap();
        assert_eq!(reg.find("ff", None).unwrap().unwrap().app, "db");
        assert_eq!(reg.find("abc2", None).unwrap().unwrap().env, "staging");
        let err = reg.find("abc", None).unwrap_err().to_string();
        assert!(
            err.contains("abc10000 (web:default)") && err.contains("abc20000 (web:staging)"),
            "{err}"
        );
        assert!(reg.find("web", None).is_err());
        assert_eq!(
            reg.find("web:staging", None).unwrap().unwrap().id,
            "abc2000000000000"
        );
        assert_eq!(
            reg.find("web", Some("default")).unwrap().unwrap().id,
            "abc1000000000000"
        );
        assert!(reg.find("nothing", None).unwrap().is_none());
        std::fs::write(dir.path().join("r/bad.json"), "{").unwrap();
        let (entries, broken) = reg.list().unwrap();
        assert_eq!((entries.len(), broken.len()), (3, 1));
        reg.remove("ff00000000000000").unwrap();
        reg.remove("ff00000000000000").unwrap();
        assert_eq!(reg.list().unwrap().0.len(), 2);
    }
}
