//! Reading the app registry from the `registry` setting: an `http(s)://` URL through a copy in
//! the cache folder (`<cache>/registry/<hash of the URL>.yaml`, used without fetching while
//! younger than `registry_ttl`, and used stale when a fetch fails), or a `file://` URL or path,
//! read as it is every time. Start from [`load`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::Catalog;
use crate::error::{CatalogError, UserError};
use crate::settings::Settings;

/// How long one fetch of the registry may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// How the registry that was read relates to the registry at its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Fetched by this command.
    Fetched,
    /// The cached copy, younger than `registry_ttl`.
    Cached { age: Duration },
    /// The cached copy, because fetching failed (`error` says why); `None` when its time is in
    /// the future.
    Stale {
        age: Option<Duration>,
        error: String,
    },
    /// A local file, read as it is.
    Local,
}

/// A registry read, and where from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub catalog: Catalog,
    /// The `registry` setting as given.
    pub url: String,
    /// The file read: the cached copy, or the local registry itself.
    pub file: PathBuf,
    pub freshness: Freshness,
}

impl Loaded {
    /// The warning to print for a stale copy: what failed and how old the copy is.
    pub fn stale_warning(&self) -> Option<String> {
        let Freshness::Stale { age, error } = &self.freshness else {
            return None;
        };
        Some(format!(
            "could not fetch the app registry from {} ({error}); using the copy {} (`{}`)",
            self.url,
            crate::clock::describe_age(*age),
            self.file.display()
        ))
    }
}

/// Where a registry is read from.
enum Source {
    Remote(String),
    Local(PathBuf),
}

fn source(url: &str) -> Result<Source> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(Source::Remote(url.to_string()))
    } else if let Some(path) = url.strip_prefix("file://") {
        Ok(Source::Local(PathBuf::from(path)))
    } else if url.contains("://") {
        Err(UserError::new(
            format!("the app registry `{url}` has a scheme tfgrid-compose cannot read"),
            "set `registry` (TFGRID_COMPOSE_REGISTRY) to an http(s):// or file:// URL, or a path",
        )
        .into())
    } else {
        Ok(Source::Local(PathBuf::from(url)))
    }
}

/// The cached copy of the registry at `url`: `<cache>/registry/<16 hex of SHA-256(url)>.yaml`,
/// so that another URL never reads this one's copy.
pub fn cache_file(cache_dir: &Path, url: &str) -> PathBuf {
    let hex = crate::ids::sha256_hex(url.as_bytes());
    cache_dir
        .join("registry")
        .join(format!("{}.yaml", &hex[..16]))
}

/// The registry of the `registry` setting. A remote one: the cached copy while it is younger
/// than `registry_ttl` (unless `refresh`), else fetched and cached; when the fetch fails, the
/// cached copy of any age ([`Freshness::Stale`]), unless `refresh` (which must fetch).
///
/// Errors: a [`CatalogError`] when there is no registry to read; an
/// [`crate::error::InputError`] for a local registry that does not parse.
pub async fn load(settings: &Settings, refresh: bool) -> Result<Loaded> {
    let url = settings.registry_url.clone();
    let remote = match source(&url)? {
        Source::Local(file) => {
            let text = std::fs::read_to_string(&file).map_err(|err| CatalogError {
                message: format!("cannot read the app registry `{}`: {err}", file.display()),
                hint:
                    "set `registry` (TFGRID_COMPOSE_REGISTRY) to a registry file that exists, or \
                    to its http(s):// URL"
                        .into(),
            })?;
            let catalog = Catalog::parse(&file, &text)?;
            return Ok(Loaded {
                catalog,
                url,
                file,
                freshness: Freshness::Local,
            });
        }
        Source::Remote(remote) => remote,
    };
    let file = cache_file(&settings.cache_dir, &url);
    let cached = read_copy(&file);
    // A copy dated in the future (no age) is expired, not fresh until then.
    if let Some((catalog, Some(age))) = &cached
        && !refresh
        && *age < settings.registry_ttl
    {
        return Ok(Loaded {
            catalog: catalog.clone(),
            url,
            file,
            freshness: Freshness::Cached { age: *age },
        });
    }
    match fetch(&remote, &file).await {
        Ok(catalog) => Ok(Loaded {
            catalog,
            url,
            file,
            freshness: Freshness::Fetched,
        }),
        Err(error) => match cached {
            Some((catalog, age)) if !refresh => Ok(Loaded {
                catalog,
                url,
                file,
                freshness: Freshness::Stale { age, error },
            }),
            Some((_, age)) => Err(CatalogError {
                message: format!("could not fetch the app registry from {url}: {error}"),
                hint: format!(
                    "the copy {} is still used by `search` and `up NAME`; check the \
                        network, or the `registry` setting (TFGRID_COMPOSE_REGISTRY)",
                    crate::clock::describe_age(age)
                ),
            }
            .into()),
            None => Err(CatalogError {
                message: format!(
                    "could not fetch the app registry from {url}, and there is no copy of it here: \
                        {error}"
                ),
                hint: "check the network, or set `registry` (TFGRID_COMPOSE_REGISTRY) to a \
                    reachable URL or a local copy of apps.yaml (a path or file:// URL)"
                    .into(),
            }
            .into()),
        },
    }
}

/// The cached copy and its age (from its modification time; `None` when that is in the
/// future), if it is there and parses.
fn read_copy(file: &Path) -> Option<(Catalog, Option<Duration>)> {
    let text = std::fs::read_to_string(file).ok()?;
    let modified = std::fs::metadata(file).ok()?.modified().ok()?;
    let age = crate::clock::age_of(modified);
    let catalog = Catalog::parse(file, &text).ok()?;
    Some((catalog, age))
}

/// GETs the registry, checks that it parses, and replaces the cached copy with it.
///
/// Errors: one line saying what failed (the connection, the status, the document).
async fn fetch(url: &str, file: &Path) -> Result<Catalog, String> {
    let text = get(url).await.map_err(|e| format!("{e:#}"))?;
    let catalog = Catalog::parse(Path::new(url), &text).map_err(|e| e.to_string())?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    crate::files::write_atomic(file, text.as_bytes(), 0o644).map_err(|e| format!("{e:#}"))?;
    Ok(catalog)
}

async fn get(url: &str) -> Result<String> {
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("tfgrid-compose/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot start an HTTP client")?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", crate::grid::proxy::describe(&e)))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("HTTP {status}");
    }
    response.text().await.context("the answer was cut off")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn one_copy_per_url() {
        let a = super::cache_file(Path::new("/c"), "https://a/apps.yaml");
        let b = super::cache_file(Path::new("/c"), "https://b/apps.yaml");
        assert_ne!(a, b);
        assert!(a.starts_with("/c/registry"));
        assert_eq!(a.extension().unwrap(), "yaml");
        assert!(matches!(
            super::source("/srv/apps.yaml"),
            Ok(super::Source::Local(_))
        ));
        assert!(matches!(
            super::source("file:///srv/apps.yaml"),
            Ok(super::Source::Local(p)) if p == Path::new("/srv/apps.yaml")
        ));
        assert!(matches!(
            super::source("http://x/a"),
            Ok(super::Source::Remote(_))
        ));
        assert!(super::source("ftp://x/a").is_err());
    }
}
