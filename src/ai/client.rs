//! The agent API as the CLI uses it. Names and prompts travel as JSON bodies, never through a
//! shell; the token only in the Authorization header.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::api::{DeleteReport, Health, Project, ProjectEvents, ProjectList, ProjectReply};
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
    token: String,
    http: reqwest::Client,
}

impl AgentClient {
    pub fn new(url: &str, token: &str) -> Result<AgentClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(AgentClient {
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(reqwest::StatusCode, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            UserError::new(
                format!(
                    "the agent at {} did not answer: {}",
                    self.url,
                    e.without_url()
                ),
                "check that the AI stack is up (`tfgrid-compose status`) or pass --agent-url",
            )
        })?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!(UserError::new(
                "the agent refused the token (401)",
                "use the token of this AI stack: TFGRID_COMPOSE_AGENT_TOKEN or --agent-token-file"
            ));
        }
        Ok((status, value))
    }

    fn fail(status: reqwest::StatusCode, value: &Value) -> anyhow::Error {
        let message = value["error"].as_str().unwrap_or("no details").to_string();
        if status.is_client_error() {
            UserError::new(
                format!("the agent refused: {message} ({status})"),
                "fix the request and try again",
            )
            .into()
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
