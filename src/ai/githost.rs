//! Where projects are committed: one interface, two kinds, chosen by the agent config.
//! - `plain`: bare repositories under a folder this machine can write (the git host VM, or a
//!   shared disk), pushed to and cloned from over smart HTTP (`git http-backend` behind nginx).
//! - `gitea` (also Forgejo): a repository created in an organisation through the REST API with a
//!   token, pushed over HTTP with the token in a header given through git's environment.
//!
//! A backup bundles a repository from a mirror clone; a restore pushes a bundle's refs into a
//! new repository. The token never reaches argv or a log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::process::{Cmd, Io, Runner};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum GitConfig {
    Plain {
        /// Folder holding `<org>/<name>.git`.
        root: PathBuf,
        /// Base URL the folder is served at, e.g. `http://10.1.0.4/git`.
        url: String,
        #[serde(default = "default_org")]
        org: String,
    },
    Gitea {
        /// e.g. `https://git.example.org`.
        url: String,
        org: String,
        token_file: PathBuf,
    },
}

fn default_org() -> String {
    "projects".into()
}

pub struct GitHost {
    config: GitConfig,
    /// Gitea's token, read again when replaced (`projects rotate-tokens`).
    token: Option<std::sync::Arc<super::token::TokenFile>>,
    http: reqwest::Client,
    runner: Runner,
}

impl GitHost {
    pub fn new(config: GitConfig) -> Result<GitHost> {
        let token = match &config {
            GitConfig::Gitea { token_file, .. } => {
                Some(super::token::TokenFile::open(token_file, 1).context("the Gitea token file")?)
            }
            GitConfig::Plain { .. } => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(GitHost {
            config,
            token,
            http,
            runner: Runner::real(),
        })
    }

    /// The URL the agent pushes to: under the configured base (for Gitea, its API host, which may
    /// be a private address while `clone_url` is the public one).
    pub fn repo_url(&self, name: &str) -> String {
        match &self.config {
            GitConfig::Plain { url, org, .. } => {
                format!("{}/{org}/{name}.git", url.trim_end_matches('/'))
            }
            GitConfig::Gitea { url, org, .. } => {
                format!("{}/{org}/{name}.git", url.trim_end_matches('/'))
            }
        }
    }

    /// Creates an empty repository; returns the URL users clone it from.
    pub async fn create(&self, name: &str, log: &Path) -> Result<String> {
        match &self.config {
            GitConfig::Plain { root, org, .. } => {
                let dir = root.join(org).join(format!("{name}.git"));
                if dir.exists() {
                    bail!("repository `{}` exists already", dir.display());
                }
                init_bare(&self.runner, &dir, log).await?;
                Ok(self.repo_url(name))
            }
            GitConfig::Gitea { url, org, .. } => {
                let api = format!("{}/api/v1/orgs/{org}/repos", url.trim_end_matches('/'));
                let body = serde_json::json!({"name": name, "private": false, "auto_init": false, "default_branch": "main"});
                let response = self
                    .http
                    .post(&api)
                    .header("Authorization", self.auth())
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.without_url()))?;
                let status = response.status();
                if !status.is_success() {
                    bail!("Gitea refused to create `{org}/{name}`: HTTP {status}");
                }
                let repo: serde_json::Value = response.json().await?;
                Ok(repo["clone_url"]
                    .as_str()
                    .map_or_else(|| self.repo_url(name), String::from))
            }
        }
    }

    /// `METHOD {url}/api/v1/repos/{org}/{name}` on a Gitea host, with the token: the status.
    async fn repo_api(&self, method: reqwest::Method, name: &str) -> Result<reqwest::StatusCode> {
        let GitConfig::Gitea { url, org, .. } = &self.config else {
            bail!("the repository API is Gitea's")
        };
        let api = format!("{}/api/v1/repos/{org}/{name}", url.trim_end_matches('/'));
        let response = self
            .http
            .request(method, &api)
            .header("Authorization", self.auth())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("the git host: {}", e.without_url()))?;
        Ok(response.status())
    }

    fn auth(&self) -> String {
        format!(
            "token {}",
            self.token.as_ref().map(|t| t.current()).unwrap_or_default()
        )
    }

    /// Commits the files as the first commit of `main` and pushes them to `repo_url(name)`.
    pub async fn push(
        &self,
        name: &str,
        files: &super::site::Files,
        message: &str,
        log: &Path,
    ) -> Result<()> {
        let work = tempfile::tempdir()?;
        let dir = work.path().display().to_string();
        for (path, content) in files {
            let target = work.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap_or(work.path()))?;
            std::fs::write(&target, content)?;
        }
        self.git(
            Cmd::new("git").args(["init", "-q", "-b", "main", &dir]),
            log,
        )
        .await?;
        self.git(Cmd::new("git").args(["-C", &dir, "add", "-A"]), log)
            .await?;
        self.git(
            Cmd::new("git").args([
                "-C",
                &dir,
                "-c",
                "user.name=tfgrid-compose",
                "-c",
                "user.email=agent@tfgrid-compose.invalid",
                "commit",
                "-q",
                "-m",
                message,
            ]),
            log,
        )
        .await?;
        let push = Cmd::new("git").args(["-C", &dir, "push", "-q", &self.repo_url(name), "main"]);
        self.git(self.authorized(push), log).await
    }

    /// `cmd` talking to the host: no prompt, and for Gitea the token as an HTTP header given
    /// through git's environment (never argv).
    fn authorized(&self, cmd: Cmd) -> Cmd {
        let cmd = cmd.env("GIT_TERMINAL_PROMPT", "0");
        match &self.token {
            Some(token) => cmd
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .secret_env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: token {}", token.current()),
                ),
            None => cmd,
        }
    }

    /// Whether the host has the repository `name`.
    ///
    /// Errors: the host cannot be asked, or answers something other than found / not found.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        match &self.config {
            GitConfig::Plain { root, org, .. } => {
                Ok(root.join(org).join(format!("{name}.git")).exists())
            }
            GitConfig::Gitea { org, .. } => {
                match self.repo_api(reqwest::Method::GET, name).await? {
                    s if s.is_success() => Ok(true),
                    reqwest::StatusCode::NOT_FOUND => Ok(false),
                    s => bail!("the git host answered HTTP {s} for `{org}/{name}`"),
                }
            }
        }
    }

    /// Writes the repository `name` as a git bundle of every ref (`git clone --mirror`, then
    /// `git bundle create FILE --all`) to `file`.
    ///
    /// Errors: the clone or the bundle fails (an empty repository cannot be bundled).
    pub async fn bundle(&self, name: &str, file: &Path, log: &Path) -> Result<()> {
        let work = tempfile::tempdir()?;
        let mirror = work.path().join("mirror.git").display().to_string();
        let clone = Cmd::new("git").args([
            "clone",
            "-q",
            "--mirror",
            "--",
            &self.repo_url(name),
            &mirror,
        ]);
        self.git(self.authorized(clone), log)
            .await
            .with_context(|| format!("cannot clone the repository of `{name}`"))?;
        let bundle = file.display().to_string();
        self.git(
            Cmd::new("git").args(["-C", &mirror, "bundle", "create", "-q", &bundle, "--all"]),
            log,
        )
        .await
        .with_context(|| format!("cannot bundle the repository of `{name}`"))
    }

    /// Pushes every ref of the bundle `file` to the (new, empty) repository `name`
    /// (`git clone --mirror FILE`, then `git push --mirror`).
    ///
    /// Errors: the bundle is not one, or the push is refused.
    pub async fn push_bundle(&self, name: &str, file: &Path, log: &Path) -> Result<()> {
        let work = tempfile::tempdir()?;
        let mirror = work.path().join("mirror.git").display().to_string();
        let bundle = file.display().to_string();
        self.git(
            Cmd::new("git").args(["clone", "-q", "--mirror", "--", &bundle, &mirror]),
            log,
        )
        .await
        .with_context(|| format!("cannot read the bundle of `{name}`"))?;
        let push = Cmd::new("git").args([
            "-C",
            &mirror,
            "push",
            "-q",
            "--mirror",
            &self.repo_url(name),
        ]);
        self.git(self.authorized(push), log)
            .await
            .with_context(|| format!("cannot push the history of `{name}`"))
    }

    /// Removes the repository; a repository that is not there counts as removed.
    pub async fn delete(&self, name: &str) -> Result<()> {
        match &self.config {
            GitConfig::Plain { root, org, .. } => {
                let dir = root.join(org).join(format!("{name}.git"));
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e).with_context(|| format!("cannot remove `{}`", dir.display())),
                }
            }
            GitConfig::Gitea { org, .. } => {
                let status = self.repo_api(reqwest::Method::DELETE, name).await?;
                if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
                    Ok(())
                } else {
                    bail!("Gitea refused to delete `{org}/{name}`: HTTP {status}")
                }
            }
        }
    }

    async fn git(&self, cmd: Cmd, log: &Path) -> Result<()> {
        git(&self.runner, cmd, log).await
    }
}

async fn git(runner: &Runner, cmd: Cmd, log: &Path) -> Result<()> {
    runner
        .run(
            &cmd.io(Io::Log(log.to_path_buf()))
                .timeout(Duration::from_secs(120)),
        )
        .await
        .map(|_| ())
}

/// A bare repository at `dir` (parents created) on `main`, accepting pushes over smart HTTP.
pub async fn init_bare(runner: &Runner, dir: &Path, log: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.parent().unwrap_or(dir))?;
    let path = dir.display().to_string();
    git(
        runner,
        Cmd::new("git").args(["init", "-q", "--bare", "-b", "main", &path]),
        log,
    )
    .await?;
    git(
        runner,
        Cmd::new("git").args(["-C", &path, "config", "http.receivepack", "true"]),
        log,
    )
    .await
}
