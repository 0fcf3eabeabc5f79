//! The app folder's layout, the one description of it: each entry of an app's folder that `up`
//! uploads, where it lands on the VM (the bash tool's paths, which hooks use:
//! tfgrid-compose-bash.md §4.7), and whether it alone gives the application phase work.
//! Validation (whether `scp` is needed), the manifest (where hooks live), `up`'s note on the
//! app's playbook and the application phase (what it uploads) all read it. It only looks at
//! which entries exist; it uploads nothing.

use std::path::{Path, PathBuf};

/// The app's `deployment/`: its hooks and playbook. Lands at [`REMOTE_DEPLOYMENT`].
pub const DEPLOYMENT: &str = "deployment";
/// The app's `src/`. Its contents land in [`REMOTE_SOURCE`].
pub const SOURCE: &str = "src";
/// The app's own playbook inside [`DEPLOYMENT`]: when it exists it runs in place of the `setup`
/// and `configure` hooks (tfgrid-compose-bash.md §2, `orchestrator.sh:1534-1546`).
pub const PLAYBOOK: &str = "playbook.yml";

/// Where `deployment/` lands on the VM; hooks run there.
pub const REMOTE_DEPLOYMENT: &str = "/tmp/app-deployment";
/// Where `src/` and the files beside it land on the VM.
pub const REMOTE_SOURCE: &str = "/tmp/app-source";
/// Where the app's env file lands on the VM.
pub const REMOTE_ENV_FILE: &str = "/tmp/app-source/.env";
/// The app's `environment:` values on the VM, 0600, one `export NAME='value'` a line: values
/// (some secret) reach the VM through ssh's stdin, never an argv.
pub const REMOTE_ENV_SCRIPT: &str = "/tmp/app-deployment/.tfgrid-compose.env";

/// How an entry reaches the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lands {
    /// A folder uploaded whole to this remote folder.
    Folder(&'static str),
    /// Into [`REMOTE_SOURCE`] under its own name, with the other such entries in one upload.
    BesideSource,
    /// A file uploaded to this remote path.
    File(&'static str),
}

/// One entry of the app folder that `up` uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its path inside the app folder.
    pub path: &'static str,
    pub lands: Lands,
    /// Whether it alone gives the application phase work (and so `up` needs `scp`); the others
    /// only go along with it.
    pub gives_work: bool,
}

/// Every entry of the app folder that the application phase uploads, in upload order (the
/// pattern's `scripts/` go after the folders). Adding an entry is adding it here.
pub const ENTRIES: [Entry; 7] = [
    Entry {
        path: DEPLOYMENT,
        lands: Lands::Folder(REMOTE_DEPLOYMENT),
        gives_work: true,
    },
    Entry {
        path: SOURCE,
        lands: Lands::Folder(REMOTE_SOURCE),
        gives_work: true,
    },
    Entry {
        path: "docker-compose.yaml",
        lands: Lands::BesideSource,
        gives_work: false,
    },
    Entry {
        path: "scripts",
        lands: Lands::BesideSource,
        gives_work: false,
    },
    Entry {
        path: "config",
        lands: Lands::BesideSource,
        gives_work: false,
    },
    Entry {
        path: "templates",
        lands: Lands::BesideSource,
        gives_work: false,
    },
    Entry {
        path: "artifacts/latest.tar.gz",
        lands: Lands::File("/tmp/app-source/artifacts.tar.gz"),
        gives_work: false,
    },
];

impl Entry {
    /// Whether the app in `app_dir` has it (a folder for [`Lands::Folder`], a file for
    /// [`Lands::File`], anything for [`Lands::BesideSource`]).
    pub fn present(&self, app_dir: &Path) -> bool {
        let path = app_dir.join(self.path);
        match self.lands {
            Lands::Folder(_) => path.is_dir(),
            Lands::BesideSource => path.exists(),
            Lands::File(_) => path.is_file(),
        }
    }
}

/// The entries the app in `app_dir` has, in [`ENTRIES`]' order.
pub fn present(app_dir: &Path) -> Vec<Entry> {
    ENTRIES.into_iter().filter(|e| e.present(app_dir)).collect()
}

/// Whether the app in `app_dir` has an entry that alone gives the application phase work.
pub fn gives_work(app_dir: &Path) -> bool {
    present(app_dir).iter().any(|e| e.gives_work)
}

/// `deployment/<relative>` of the app in `app_dir`: a hook or the playbook.
pub fn in_deployment(app_dir: &Path, relative: &str) -> PathBuf {
    app_dir.join(DEPLOYMENT).join(relative)
}
