//! The app registry: the list of apps `search` shows and `up NAME` deploys, in the bash tool's
//! format (`apps.official[]`, `apps.community[]`, each app's `repo` and `version`, a git
//! commit). [`Catalog`] is a parsed registry, [`fetch`] reads it from the `registry` setting's
//! URL through a cached copy, [`checkout`] puts one app's pinned commit on disk.
//!
//! Not to be confused with `crate::registry`, the registry of *deployments* made on this
//! machine. Nothing here prints; the caller says what happened.

pub mod checkout;
pub mod fetch;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::InputError;

/// One app of the registry, as the bash tool's `registry/apps.yaml` lists it (reference study
/// §7.3: `name, repo, description, pattern, status, maintainer, tags[], version`; its
/// `versioning` and `git` blocks are read by nobody and ignored here).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogApp {
    pub name: String,
    /// The list it is in: `official`, `community`, or another list under `apps:`.
    pub section: String,
    /// As written: `github.com/org/repo`, a full URL or a path ([`CatalogApp::repo_url`]).
    pub repo: Option<String>,
    pub description: Option<String>,
    pub pattern: Option<String>,
    pub status: Option<String>,
    pub maintainer: Option<String>,
    pub tags: Vec<String>,
    /// The pinned commit, as written (`version:`); [`CatalogApp::commit`] checks it.
    pub version: Option<String>,
}

impl CatalogApp {
    /// The URL git is given: `repo` as written when it has a scheme (`https://`, `file://`) or
    /// is a path, else `https://` + `repo`, as the bash tool did (`registry.sh:get_app_repo`).
    pub fn repo_url(&self) -> Option<String> {
        let repo = self.repo.as_deref()?.trim();
        if repo.is_empty() {
            return None;
        }
        Some(if repo.contains("://") || repo.starts_with('/') {
            repo.to_string()
        } else {
            format!("https://{repo}")
        })
    }

    /// The pinned commit: the full hex id (40 digits for SHA-1, 64 for SHA-256), lower-cased.
    ///
    /// Errors: a sentence naming what `version` holds instead.
    pub fn commit(&self) -> Result<String, String> {
        let Some(version) = self.version.as_deref().map(str::trim) else {
            return Err("has no `version` (the commit to deploy)".into());
        };
        let hex = version.bytes().all(|b| b.is_ascii_hexdigit());
        if hex && (version.len() == 40 || version.len() == 64) {
            Ok(version.to_ascii_lowercase())
        } else {
            Err(format!(
                "has `version: {version}`, which is not a full git commit id (40 hex digits)"
            ))
        }
    }

    /// Whether every word is in the name, description or a tag, and every tag in `tags`
    /// (case-insensitive; words are substrings, tags whole).
    fn matches(&self, words: &[String], tags: &[String]) -> bool {
        let haystack = format!(
            "{} {} {}",
            self.name,
            self.description.as_deref().unwrap_or_default(),
            self.tags.join(" ")
        )
        .to_lowercase();
        words.iter().all(|w| haystack.contains(&w.to_lowercase()))
            && tags
                .iter()
                .all(|t| self.tags.iter().any(|have| have.eq_ignore_ascii_case(t)))
    }
}

/// A parsed registry.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// In the file's order, `official` first, then `community`, then other lists by name.
    pub apps: Vec<CatalogApp>,
    /// Entries left out, one sentence each (a name that cannot be a folder name, a name listed
    /// twice): shown as warnings, never dropped silently.
    pub skipped: Vec<String>,
}

/// `registry/apps.yaml`'s shape; unknown keys (`metadata`, `versioning`, `git`) are ignored.
#[derive(Deserialize)]
struct RegistryFile {
    apps: Sections,
}

#[derive(Deserialize)]
struct Sections {
    #[serde(default)]
    official: Option<Vec<RawApp>>,
    #[serde(default)]
    community: Option<Vec<RawApp>>,
    #[serde(flatten)]
    other: BTreeMap<String, Option<Vec<RawApp>>>,
}

#[derive(Deserialize)]
struct RawApp {
    name: String,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    maintainer: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// A string; anything else is kept as YAML writes it, for [`CatalogApp::commit`] to refuse.
    #[serde(default)]
    version: Option<serde_yaml::Value>,
}

/// Whether `name` can be a registry app's name, and so a folder name: 1 to 64 of `A-Z a-z 0-9
/// . _ -`, starting with a letter or digit.
pub fn is_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Catalog {
    /// Parses a registry; `source` names it in errors (the cached copy's path, or the URL).
    ///
    /// Errors: an [`InputError`] naming `source`, line, column and field.
    pub fn parse(source: &Path, text: &str) -> Result<Catalog, InputError> {
        let file: RegistryFile = crate::yaml::parse_yaml(
            source,
            text,
            "an app registry lists `apps: {official: [{name, repo, version, …}], community: […]}`",
        )?;
        let Sections {
            official,
            community,
            other,
        } = file.apps;
        let lists = [
            ("official".to_string(), official),
            ("community".to_string(), community),
        ]
        .into_iter()
        .chain(other);
        let mut catalog = Catalog::default();
        for (section, apps) in lists {
            for raw in apps.into_iter().flatten() {
                catalog.add(section.clone(), raw);
            }
        }
        Ok(catalog)
    }

    fn add(&mut self, section: String, raw: RawApp) {
        if !is_app_name(&raw.name) {
            self.skipped.push(format!(
                "app `{}` in `apps.{section}` is left out: a name is 1-64 of A-Z, a-z, 0-9, `.`, \
                    `_`, `-`, starting with a letter or digit",
                raw.name
            ));
            return;
        }
        if let Some(first) = self.get(&raw.name) {
            self.skipped.push(format!(
                "app `{}` is listed again in `apps.{section}`; the one in `apps.{}` is used",
                raw.name, first.section
            ));
            return;
        }
        let version = raw.version.map(|v| match v {
            serde_yaml::Value::String(s) => s,
            other => serde_yaml::to_string(&other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        });
        self.apps.push(CatalogApp {
            name: raw.name,
            section,
            repo: raw.repo,
            description: raw.description,
            pattern: raw.pattern,
            status: raw.status,
            maintainer: raw.maintainer,
            tags: raw.tags,
            version,
        });
    }

    /// The app of that name (names are compared exactly, as folder names are).
    pub fn get(&self, name: &str) -> Option<&CatalogApp> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// Apps whose name, description or tags contain every word, and that have every tag.
    pub fn search(&self, words: &[String], tags: &[String]) -> Vec<&CatalogApp> {
        self.apps
            .iter()
            .filter(|a| a.matches(words, tags))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Catalog;

    /// The bash tool's registry as fetched (tests/fixtures/catalog/apps.yaml).
    fn real() -> Catalog {
        let text = include_str!("../../tests/fixtures/catalog/apps.yaml");
        Catalog::parse(Path::new("apps.yaml"), text).unwrap()
    }

    #[test]
    fn reads_the_bash_tools_registry() {
        let catalog = real();
        let names: Vec<&str> = catalog.apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["tfgrid-ai-stack", "tfgrid-ai-agent", "tfgrid-gitea"]
        );
        let stack = catalog.get("tfgrid-ai-stack").unwrap();
        assert_eq!(
            stack.repo_url().as_deref(),
            Some("https://github.com/tfgrid-studio/tfgrid-ai-stack")
        );
        assert_eq!(
            stack.commit().unwrap(),
            "e378a494d2bfe811d86f6d58fe3eb6b6d6aeb7df"
        );
        assert_eq!(stack.section, "official");
        assert_eq!(stack.pattern.as_deref(), Some("single-vm"));
        assert!(catalog.skipped.is_empty());
    }

    #[test]
    fn search_by_words_and_tags() {
        let catalog = real();
        let names = |words: &[&str], tags: &[&str]| -> Vec<String> {
            let words: Vec<String> = words.iter().map(|w| (*w).to_string()).collect();
            let tags: Vec<String> = tags.iter().map(|t| (*t).to_string()).collect();
            catalog
                .search(&words, &tags)
                .iter()
                .map(|a| a.name.clone())
                .collect()
        };
        assert_eq!(names(&[], &[]).len(), 3);
        assert_eq!(names(&["GIT"], &[]), ["tfgrid-gitea"]);
        assert_eq!(names(&["ai", "qwen"], &[]), ["tfgrid-ai-agent"]);
        assert_eq!(
            names(&[], &["coding"]),
            ["tfgrid-ai-stack", "tfgrid-ai-agent"]
        );
        assert_eq!(names(&["stack"], &["coding"]), ["tfgrid-ai-stack"]);
        // A tag matches whole: `cod` is no tag.
        assert!(names(&[], &["cod"]).is_empty());
    }

    #[test]
    fn odd_entries_are_named_not_fatal() {
        let text = "apps:\n  official:\n  - name: ../etc\n    repo: x\n  - name: a\n    repo: \
            /srv/a.git\n    version: 1.0.0\n  community:\n  - name: a\n    repo: y\n  verified:\n  \
            - name: b\n    version: '1234567890123456789012345678901234567890'\n";
        let catalog = Catalog::parse(Path::new("r.yaml"), text).unwrap();
        let names: Vec<&str> = catalog.apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(catalog.skipped.len(), 2, "{:?}", catalog.skipped);
        let a = catalog.get("a").unwrap();
        assert_eq!(a.repo_url().as_deref(), Some("/srv/a.git"));
        assert!(a.commit().unwrap_err().contains("`version: 1.0.0`"));
        let b = catalog.get("b").unwrap();
        assert_eq!(b.section, "verified");
        assert_eq!(b.repo_url(), None);
        assert_eq!(
            b.commit().unwrap(),
            "1234567890123456789012345678901234567890"
        );
    }

    #[test]
    fn a_broken_registry_names_the_line() {
        let err = Catalog::parse(Path::new("r.yaml"), "apps:\n  official:\n  - repo: x\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("r.yaml:3"), "{err}");
        assert!(err.contains("name"), "{err}");
        assert!(Catalog::parse(Path::new("r.yaml"), "metadata: {}\n").is_err());
    }

    #[test]
    fn names() {
        assert!(super::is_app_name("tfgrid-ai-stack"));
        assert!(super::is_app_name("app.v2_x"));
        assert!(!super::is_app_name(".."));
        assert!(!super::is_app_name("a/b"));
        assert!(!super::is_app_name(""));
        assert!(!super::is_app_name("-x"));
    }
}
