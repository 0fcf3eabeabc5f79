//! The patterns shipped in the binary (`patterns/` at build time, see build.rs), written once to
//! the data folder so that Terraform and ansible can read them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_patterns.rs"));
}

/// Writes the embedded patterns to `<data_dir>/patterns/<hash>/` once (atomically: a temp folder
/// renamed into place) and returns that folder.
pub fn extract_embedded(data_dir: &Path) -> Result<PathBuf> {
    let base = data_dir.join("patterns");
    let dest = base.join(embedded::HASH);
    if dest.is_dir() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&base)
        .with_context(|| format!("failed to create `{}`", base.display()))?;
    let temp = tempfile::tempdir_in(&base)?;
    for (rel, mode, bytes) in embedded::FILES {
        let path = temp.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(*mode))?;
    }
    let temp = temp.keep();
    if let Err(err) = std::fs::rename(&temp, &dest) {
        let _ = std::fs::remove_dir_all(&temp);
        if !dest.is_dir() {
            return Err(err)
                .with_context(|| format!("failed to place the patterns in `{}`", dest.display()));
        }
    }
    Ok(dest)
}

/// Names of the patterns in the binary.
pub fn embedded_names() -> BTreeSet<String> {
    embedded::FILES
        .iter()
        .filter(|(rel, _, _)| rel.ends_with("/pattern.yaml"))
        .filter_map(|(rel, _, _)| rel.split('/').next())
        .map(String::from)
        .collect()
}
