//! The AI stack's backup archive (`projects backup`, `projects restore`): one gzip-compressed
//! tar whose first entry is `manifest.json` ([`Manifest`]: format version, time, the stack's
//! public URL, the projects, one SHA-256 per file), then the files:
//! - `projects.db`: the agent's SQLite database, copied with SQLite's online backup API;
//! - `repos/NAME.bundle`: each project repository as a git bundle (every ref, full history);
//! - `sites/SITE/PATH`: the files of each published site;
//! - `routes.json`: the gateway's routes (`[{path, backend}]`).
//!
//! [`Archive::read`] refuses anything it cannot vouch for before a caller acts on it: not gzip or
//! tar, no manifest, a format it does not know, a file whose checksum differs (named), a file the
//! manifest does not list or one it lists that is missing. The whole archive is held in memory.

use std::collections::BTreeMap;
use std::io::Read as _;

use serde::{Deserialize, Serialize};

use super::api::ProjectStatus;

use crate::error::UserError;

/// The format this tool writes and reads. A change that an older reader would misread bumps it.
pub const FORMAT: u32 = 1;
/// The manifest's name, the archive's first entry.
pub const MANIFEST: &str = "manifest.json";
/// The agent's database in the archive.
pub const DATABASE: &str = "projects.db";
/// The gateway's routes in the archive.
pub const ROUTES: &str = "routes.json";
/// The most an archive may hold once decompressed (1 GiB): a gzip bomb stops here.
pub const MAX_BYTES: u64 = 1 << 30;
/// The most files an archive may hold.
const MAX_FILES: usize = 100_000;

/// One project in the manifest, for a reader that wants the list without the database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestProject {
    pub id: String,
    pub name: String,
    /// `live` or `failed` (a backup is refused while a project is in the pipeline).
    pub status: ProjectStatus,
    /// What the project has: `repo` (a bundle in `repos/`), `site`, `route`.
    pub created: Vec<String>,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// Unix seconds when the backup was taken.
    pub created_at: u64,
    /// The same time as `2026-11-23T10:15:12Z`.
    pub created: String,
    /// The version of the tool that wrote it, `tfgrid-compose 0.1.0`.
    pub tool: String,
    /// The backed-up stack's public URL (sites at `URL/NAME/`); a restore uses its own.
    pub public_url: String,
    pub projects: Vec<ManifestProject>,
    /// Every other file of the archive → its SHA-256, lowercase hex.
    pub files: BTreeMap<String, String>,
}

/// A whole archive in memory: the manifest and the files it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub manifest: Manifest,
    pub files: BTreeMap<String, Vec<u8>>,
}

pub use crate::ids::sha256_hex;

/// A refusal of the archive; the caller says which file it read.
fn refused(message: impl Into<String>, hint: &str) -> UserError {
    UserError::new(message, hint)
}

const DAMAGED: &str = "the archive is damaged or was changed: use another copy of the backup";

/// Archive paths are relative, `/`-separated, without empty, `.` or `..` segments.
fn check_entry_path(path: &str) -> Result<(), UserError> {
    let ok = !path.is_empty()
        && path.len() <= 1024
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(refused(
            format!(
                "the archive holds a file with a bad path `{}`",
                path.escape_default()
            ),
            DAMAGED,
        ))
    }
}

impl Archive {
    /// An archive of `files`, with their checksums in a manifest written now.
    pub fn new(
        public_url: &str,
        projects: Vec<ManifestProject>,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Archive {
        let created_at = crate::clock::now_unix();
        Archive {
            manifest: Manifest {
                format: FORMAT,
                created_at,
                created: crate::clock::format_utc(created_at),
                tool: concat!("tfgrid-compose ", env!("CARGO_PKG_VERSION")).into(),
                public_url: public_url.trim_end_matches('/').to_string(),
                projects,
                files: files
                    .iter()
                    .map(|(path, data)| (path.clone(), sha256_hex(data)))
                    .collect(),
            },
            files,
        }
    }

    /// The tar.gz: the manifest first, then the files in path order (mode 0644, mtime of the
    /// backup). The manifest is written as it is, so a test can write a tampered archive.
    ///
    /// Errors: a path tar cannot hold.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let manifest = serde_json::to_vec_pretty(&self.manifest)?;
        let entries = std::iter::once((MANIFEST, manifest.as_slice())).chain(
            self.files
                .iter()
                .map(|(path, data)| (path.as_str(), data.as_slice())),
        );
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(self.manifest.created_at);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, path, data)?;
        }
        Ok(tar.into_inner()?.finish()?)
    }

    /// Reads and checks an archive: gzip and tar, the manifest, its format, every checksum.
    ///
    /// Errors ([`UserError`], one line and a hint): not a gzip-compressed tar or cut short; no
    /// `manifest.json` first; a format other than [`FORMAT`]; a file whose SHA-256 differs from
    /// the manifest's (named); a file the manifest does not list, or one it lists that is
    /// missing; more than [`MAX_BYTES`] or 100,000 files.
    pub fn read(bytes: &[u8]) -> Result<Archive, UserError> {
        let not_archive = |e: &dyn std::fmt::Display| {
            refused(
                format!("not a backup archive (a gzip-compressed tar): {e}"),
                "pass a file written by `tfgrid-compose projects backup`; a copy cut short \
                    or damaged cannot be used",
            )
        };
        let gz = flate2::read::GzDecoder::new(bytes).take(MAX_BYTES + 1);
        let mut tar = tar::Archive::new(gz);
        let mut manifest: Option<Manifest> = None;
        let mut files = BTreeMap::new();
        let mut total: u64 = 0;
        for entry in tar.entries().map_err(|e| not_archive(&e))? {
            let mut entry = entry.map_err(|e| not_archive(&e))?;
            let path = String::from_utf8(entry.path_bytes().into_owned()).map_err(|_| {
                refused("the archive holds a file whose path is not UTF-8", DAMAGED)
            })?;
            if !entry.header().entry_type().is_file() {
                return Err(refused(
                    format!(
                        "the archive holds `{}`, which is not a regular file",
                        path.escape_default()
                    ),
                    DAMAGED,
                ));
            }
            check_entry_path(&path)?;
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| not_archive(&e))?;
            total += data.len() as u64;
            if total > MAX_BYTES || files.len() >= MAX_FILES {
                return Err(refused(
                    "the archive is larger than a backup can be (1 GiB or 100,000 files)",
                    DAMAGED,
                ));
            }
            if manifest.is_none() {
                if path != MANIFEST {
                    return Err(refused(
                        format!("the archive does not start with `{MANIFEST}`"),
                        "pass a file written by `tfgrid-compose projects backup`",
                    ));
                }
                manifest = Some(parse_manifest(&data)?);
                continue;
            }
            if files.insert(path.clone(), data).is_some() || path == MANIFEST {
                return Err(refused(
                    format!("the archive holds `{path}` twice"),
                    DAMAGED,
                ));
            }
        }
        let Some(manifest) = manifest else {
            return Err(not_archive(&"it holds no files"));
        };
        for (path, data) in &files {
            match manifest.files.get(path) {
                None => {
                    return Err(refused(
                        format!("`{path}` is in the archive but not in its manifest"),
                        DAMAGED,
                    ));
                }
                Some(sum) if *sum != sha256_hex(data) => {
                    return Err(refused(
                        format!(
                            "checksum mismatch for `{path}`: its SHA-256 is not the manifest's"
                        ),
                        DAMAGED,
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(missing) = manifest.files.keys().find(|p| !files.contains_key(*p)) {
            return Err(refused(
                format!("`{missing}` is in the manifest but not in the archive"),
                DAMAGED,
            ));
        }
        Ok(Archive { manifest, files })
    }

    /// The sites: `sites/SITE/PATH` → SITE → PATH → text.
    ///
    /// Errors: a site file that is not UTF-8 text (the gateway serves text files only).
    pub fn sites(&self) -> Result<BTreeMap<String, super::site::Files>, UserError> {
        let mut sites: BTreeMap<String, super::site::Files> = BTreeMap::new();
        for (path, data) in &self.files {
            let Some((site, file)) = path
                .strip_prefix("sites/")
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            let text = String::from_utf8(data.clone())
                .map_err(|_| refused(format!("`{path}` is not UTF-8 text"), DAMAGED))?;
            sites
                .entry(site.to_string())
                .or_default()
                .insert(file.to_string(), text);
        }
        Ok(sites)
    }

    /// The repository bundle of project `name`, when the archive has one.
    pub fn bundle(&self, name: &str) -> Option<&[u8]> {
        self.files.get(&bundle_path(name)).map(Vec::as_slice)
    }
}

/// Where a project's bundle is in the archive.
pub fn bundle_path(name: &str) -> String {
    format!("repos/{name}.bundle")
}

/// Where a site's file is in the archive.
pub fn site_path(site: &str, file: &str) -> String {
    format!("sites/{site}/{file}")
}

/// The manifest: its format first, so that a newer archive is refused as newer, not as damaged.
fn parse_manifest(data: &[u8]) -> Result<Manifest, UserError> {
    let value: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| refused(format!("`{MANIFEST}` is not JSON: {e}"), DAMAGED))?;
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(f) if f == u64::from(FORMAT) => {}
        Some(f) => {
            return Err(refused(
                format!("the archive has format version {f}; this tool reads version {FORMAT}"),
                if f > u64::from(FORMAT) {
                    "restore it with the newer tfgrid-compose that wrote it"
                } else {
                    "restore it with the tfgrid-compose version that wrote it"
                },
            ));
        }
        None => {
            return Err(refused(
                format!("`{MANIFEST}` has no format version"),
                "pass a file written by `tfgrid-compose projects backup`",
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| refused(format!("`{MANIFEST}`: {e}"), DAMAGED))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Archive, FORMAT, ManifestProject, ProjectStatus, sha256_hex};

    fn sample() -> Archive {
        let files: BTreeMap<String, Vec<u8>> = [
            ("projects.db".to_string(), b"SQLite format 3\0...".to_vec()),
            ("repos/blog.bundle".into(), b"# v2 git bundle\n".to_vec()),
            ("sites/blog/index.html".into(), b"<h1>Blog</h1>".to_vec()),
            ("sites/blog/css/site.css".into(), b"body{}".to_vec()),
            (
                "routes.json".into(),
                br#"[{"path":"blog","backend":{"static":"blog"}}]"#.to_vec(),
            ),
        ]
        .into();
        Archive::new(
            "http://10.1.0.2/",
            vec![ManifestProject {
                id: "3fa2c1d0e4b5a697".into(),
                name: "blog".into(),
                status: ProjectStatus::Live,
                created: vec!["repo".into(), "site".into(), "route".into()],
            }],
            files,
        )
    }

    fn message(bytes: &[u8]) -> String {
        Archive::read(bytes).unwrap_err().message
    }

    #[test]
    fn an_archive_reads_back_as_written_with_one_checksum_per_file() {
        let archive = sample();
        assert_eq!(archive.manifest.format, FORMAT);
        assert_eq!(archive.manifest.public_url, "http://10.1.0.2");
        assert_eq!(archive.manifest.files.len(), 5);
        assert_eq!(
            archive.manifest.files["sites/blog/index.html"],
            sha256_hex(b"<h1>Blog</h1>")
        );
        // The SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let read = Archive::read(&archive.to_bytes().unwrap()).unwrap();
        assert_eq!(read, archive);
        let sites = read.sites().unwrap();
        assert_eq!(sites["blog"]["css/site.css"], "body{}");
        assert_eq!(read.bundle("blog"), Some(&b"# v2 git bundle\n"[..]));
        assert_eq!(read.bundle("other"), None);
    }

    #[test]
    fn a_changed_file_is_refused_by_name() {
        let mut archive = sample();
        archive
            .files
            .insert("sites/blog/index.html".into(), b"<h1>Hacked</h1>".to_vec());
        assert_eq!(
            message(&archive.to_bytes().unwrap()),
            "checksum mismatch for `sites/blog/index.html`: its SHA-256 is not the manifest's"
        );
    }

    #[test]
    fn extra_and_missing_files_are_refused() {
        let mut extra = sample();
        extra
            .files
            .insert("sites/evil/x.html".into(), b"x".to_vec());
        assert!(
            message(&extra.to_bytes().unwrap()).contains("`sites/evil/x.html` is in the archive")
        );
        let mut missing = sample();
        missing.files.remove("repos/blog.bundle");
        assert!(
            message(&missing.to_bytes().unwrap())
                .contains("`repos/blog.bundle` is in the manifest but not in the archive")
        );
    }

    #[test]
    fn another_format_version_is_refused_before_anything_else() {
        let mut newer = sample();
        newer.manifest.format = FORMAT + 1;
        let err = Archive::read(&newer.to_bytes().unwrap()).unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "the archive has format version {}; this tool reads version 1",
                FORMAT + 1
            )
        );
        assert!(err.hint.unwrap().contains("newer"));
    }

    #[test]
    fn what_is_not_an_archive_is_refused() {
        assert!(message(b"hello").starts_with("not a backup archive"));
        let whole = sample().to_bytes().unwrap();
        assert!(message(&whole[..whole.len() / 2]).starts_with("not a backup archive"));
        assert!(message(&[]).starts_with("not a backup archive"));
        // A tar.gz of other files: no manifest first.
        let mut other = sample();
        other.manifest.files.clear();
        let bytes = {
            let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let mut tar = tar::Builder::new(gz);
            let mut header = tar::Header::new_gnu();
            header.set_size(2);
            tar.append_data(&mut header, "notes.txt", &b"hi"[..])
                .unwrap();
            tar.into_inner().unwrap().finish().unwrap()
        };
        assert_eq!(
            message(&bytes),
            "the archive does not start with `manifest.json`"
        );
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["", "a//b", "../x", "a/./b", "a/.."] {
            assert!(super::check_entry_path(bad).is_err(), "{bad:?}");
        }
        assert!(super::check_entry_path("sites/a/b.html").is_ok());
    }
}
