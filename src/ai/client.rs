//! The agent API as the CLI uses it. Names and prompts travel as JSON bodies, never through a
//! shell; the token only in the Authorization header.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::api::{
    DeleteReport, Health, Project, ProjectEvents, ProjectList, ProjectReply, RestoreReport,
};
use crate::error::UserError;

/// An answer of the agent as its API type.
///
/// Errors: an answer that does not have the shape (an agent of another version, a proxy's page).
fn typed<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        anyhow::anyhow!(
            "the agent's answer is not {what} ({e}); is it the same version as this tool?"
        )
    })
}

pub struct AgentClient {
    pub url: String,
    token: Token,
    http: reqwest::Client,
}

/// The agent's token as the CLI has it.
enum Token {
    /// Given as it is (the environment).
    Fixed(String),
    /// A file, read again when replaced: a command running through `projects rotate-tokens`
    /// (a `create` waiting for its site) goes on with the new token.
    File(std::sync::Arc<super::token::TokenFile>),
}

impl AgentClient {
    pub fn new(url: &str, token: &str) -> Result<AgentClient> {
        Self::with(url, Token::Fixed(token.to_string()))
    }

    /// A client whose token is the first line of `file`, read again when the file is replaced.
    ///
    /// Errors: the file cannot be read or holds no token.
    pub fn with_token_file(url: &str, file: &std::path::Path) -> Result<AgentClient> {
        Self::with(url, Token::File(super::token::TokenFile::open(file, 1)?))
    }

    fn with(url: &str, token: Token) -> Result<AgentClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(AgentClient {
            url: url.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn token(&self) -> String {
        match &self.token {
            Token::Fixed(token) => token.clone(),
            Token::File(file) => file.current(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(reqwest::StatusCode, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = self.send(request).await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Sends with the token; an agent that does not answer, or refuses the token, is a
    /// [`UserError`] with a hint.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request
            .bearer_auth(self.token())
            .send()
            .await
            .map_err(|e| {
                UserError::new(
                    format!(
                        "the agent at {} did not answer: {}",
                        self.url,
                        e.without_url()
                    ),
                    "check that the AI stack is up (`tfgrid-compose status`) or pass --agent-url",
                )
            })?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            bail!(UserError::new(
                "the agent refused the token (401)",
                "use the token of this AI stack: TFGRID_COMPOSE_AGENT_TOKEN or --agent-token-file"
            ));
        }
        Ok(response)
    }

    fn fail(status: reqwest::StatusCode, value: &Value) -> anyhow::Error {
        let message = value["error"].as_str().unwrap_or("no details").to_string();
        if status.is_client_error() {
            // The agent's own hint when it gives one (`{error, hint}`), else one for the status.
            let hint = value["hint"].as_str().unwrap_or(match status {
                reqwest::StatusCode::CONFLICT => "try again once the agent's current work is done",
                reqwest::StatusCode::NOT_FOUND => "`tfgrid-compose projects` lists the projects",
                reqwest::StatusCode::TOO_MANY_REQUESTS => "wait a moment and try again",
                _ => "fix the request and try again",
            });
            UserError::new(format!("the agent refused: {message} ({status})"), hint).into()
        } else {
            anyhow::anyhow!("the agent failed: {message} ({status})")
        }
    }

    pub async fn create(&self, prompt: &str, name: Option<&str>) -> Result<Project> {
        let mut body = json!({"prompt": prompt});
        if let Some(name) = name {
            body["name"] = name.into();
        }
        let (status, value) = self
            .call(reqwest::Method::POST, "/api/v1/projects", Some(body))
            .await?;
        if status != reqwest::StatusCode::ACCEPTED {
            return Err(Self::fail(status, &value));
        }
        Ok(typed::<ProjectReply>(value, "a project")?.project)
    }

    pub async fn list(&self) -> Result<Vec<Project>> {
        let (status, value) = self
            .call(reqwest::Method::GET, "/api/v1/projects", None)
            .await?;
        if !status.is_success() {
            return Err(Self::fail(status, &value));
        }
        Ok(typed::<ProjectList>(value, "a project list")?.projects)
    }

    /// The project and its events.
    pub async fn show(&self, key: &str) -> Result<ProjectEvents> {
        let (status, value) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/projects/{}", encode(key)),
                None,
            )
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            bail!(UserError::new(
                format!("no project `{key}`"),
                "list them with `tfgrid-compose projects`"
            ));
        }
        if !status.is_success() {
            return Err(Self::fail(status, &value));
        }
        typed(value, "a project with its events")
    }

    /// Events after `after`, waiting up to `wait` seconds for one.
    pub async fn events(&self, id: &str, after: i64, wait: u64) -> Result<ProjectEvents> {
        let (status, value) = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/projects/{}/events?after={after}&wait={wait}",
                    encode(id)
                ),
                None,
            )
            .await?;
        if !status.is_success() {
            return Err(Self::fail(status, &value));
        }
        typed(value, "a project with its events")
    }

    /// The agent's `/health`: `{status, active, llm_strategy, llm: [provider]}` (docs/ai-stack.md).
    pub async fn health(&self) -> Result<Health> {
        let (status, value) = self.call(reqwest::Method::GET, "/health", None).await?;
        if !status.is_success() {
            return Err(Self::fail(status, &value));
        }
        typed(value, "a health report")
    }

    /// `(ok, report)`: the report lists what was removed and what failed.
    pub async fn delete(&self, key: &str) -> Result<(bool, DeleteReport)> {
        let (status, value) = self
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/projects/{}", encode(key)),
                None,
            )
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            bail!(UserError::new(
                format!("no project `{key}`"),
                "list them with `tfgrid-compose projects`"
            ));
        }
        if status.is_client_error() {
            return Err(Self::fail(status, &value));
        }
        Ok((status.is_success(), typed(value, "a delete report")?))
    }
}

/// How long a backup or a restore may take: every repository is cloned or pushed, every site
/// read or published.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl AgentClient {
    /// `GET /api/v1/backup`: the archive as the agent sent it (the caller checks it), read in
    /// chunks; `progress` gets the bytes read so far.
    ///
    /// Errors: the agent refuses while a project is in the pipeline (409), has no backup API
    /// (404), fails (5xx), or sends more than an archive may hold.
    pub async fn backup(&self, progress: &dyn Fn(u64)) -> Result<Vec<u8>> {
        let request = self
            .http
            .get(format!("{}/api/v1/backup", self.url))
            .timeout(BACKUP_TIMEOUT);
        let mut response = self.send(request).await?;
        let status = response.status();
        if !status.is_success() {
            let value: Value = response.json().await.unwrap_or(Value::Null);
            let message = value["error"].as_str().unwrap_or("no details").to_string();
            return Err(match status {
                reqwest::StatusCode::CONFLICT => UserError::new(
                    format!("the agent cannot back up now: {message}"),
                    "wait until `tfgrid-compose projects` shows it live or failed, then run the \
                        backup again",
                )
                .into(),
                reqwest::StatusCode::NOT_FOUND => no_backup_api(),
                _ => anyhow::anyhow!("the backup failed: {message} ({status})"),
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| anyhow::anyhow!("the backup was cut short: {}", e.without_url()))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > super::archive::MAX_BYTES {
                bail!("the agent sent more than a backup archive may hold (1 GiB)");
            }
            progress(bytes.len() as u64);
        }
        Ok(bytes)
    }

    /// `POST /api/v1/restore` with the archive.
    ///
    /// Errors ([`UserError`] with a hint): what the archive holds exists on this stack already
    /// (409: nothing was changed); the agent refuses the archive (400); it has no restore API
    /// (404). A failure of a part (502) says everything was taken back.
    pub async fn restore(&self, archive: Vec<u8>) -> Result<RestoreReport> {
        let request = self
            .http
            .post(format!("{}/api/v1/restore", self.url))
            .timeout(BACKUP_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/gzip")
            .body(archive);
        let response = self.send(request).await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        let message = value["error"].as_str().unwrap_or("no details").to_string();
        match status {
            s if s.is_success() => typed(value, "a restore report"),
            reqwest::StatusCode::CONFLICT => Err(UserError::new(
                message,
                "delete those on this stack first (`tfgrid-compose delete NAME`), or restore onto \
                    a fresh stack",
            )
            .into()),
            reqwest::StatusCode::BAD_REQUEST => Err(UserError::new(
                format!("the agent refused the archive: {message}"),
                "pass a file written by `tfgrid-compose projects backup`",
            )
            .into()),
            reqwest::StatusCode::NOT_FOUND => Err(no_backup_api()),
            _ => Err(anyhow::anyhow!("the restore failed: {message} ({status})")),
        }
    }
}

fn no_backup_api() -> anyhow::Error {
    UserError::new(
        "the agent has no backup API (404): it is older than this tool",
        "run `tfgrid-compose up` on the stack's app with this version, which installs itself on \
            the VMs",
    )
    .into()
}

/// Percent-encodes a path segment (names are checked by the agent; this keeps odd input inert).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
