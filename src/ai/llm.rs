//! An OpenAI-compatible chat-completions client (Ollama, vLLM, OpenRouter, OpenAI all speak it),
//! with retries on transient errors and a chain of fallback providers. The key is a secret: it
//! goes only into the Authorization header, never into a log line or an error.

pub use super::spec::Provider;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

pub struct Llm {
    providers: Vec<(Provider, Option<String>)>,
    http: reqwest::Client,
}

/// Attempts per provider on connection errors, timeouts, 429 and 5xx.
const ATTEMPTS: u32 = 3;

impl Llm {
    pub fn new(providers: &[Provider], env: &crate::env::Env) -> Result<Llm> {
        if providers.is_empty() {
            bail!("no LLM provider is configured (agent config `llm:`)");
        }
        let mut resolved = Vec::new();
        for p in providers {
            let key = match (&p.api_key_file, &p.api_key_env) {
                (Some(file), _) => {
                    Some(crate::files::read_secret(file).context("the API key file")?)
                }
                (None, Some(var)) => env.get(var).map(String::from),
                (None, None) => None,
            };
            resolved.push((p.clone(), key));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()?;
        Ok(Llm {
            providers: resolved,
            http,
        })
    }

    /// The first answer of the chain: each provider is tried with back-off, then the next one.
    /// Returns the content and the `model@base_url` that answered.
    pub async fn complete(&self, messages: &[Message]) -> Result<(String, String)> {
        let mut problems = Vec::new();
        for (provider, key) in &self.providers {
            let who = format!("{}@{}", provider.model, provider.base_url);
            match self.ask(provider, key.as_deref(), messages).await {
                Ok(content) => return Ok((content, who)),
                Err(err) => problems.push(format!("{who}: {err}")),
            }
        }
        bail!("every LLM provider failed: {}", problems.join("; "))
    }

    async fn ask(
        &self,
        provider: &Provider,
        key: Option<&str>,
        messages: &[Message],
    ) -> Result<String> {
        let url = format!(
            "{}/chat/completions",
            provider.base_url.trim_end_matches('/')
        );
        let body = json!({"model": provider.model, "messages": messages, "temperature": 0.2, "response_format": {"type": "json_object"}});
        let mut delay = Duration::from_millis(250);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut request = self.http.post(&url).json(&body);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let value: serde_json::Value = response
                        .json()
                        .await
                        .map_err(|e| anyhow::anyhow!("the answer is not JSON: {e}"))?;
                    let Some(content) = value
                        .pointer("/choices/0/message/content")
                        .and_then(|c| c.as_str())
                    else {
                        bail!("the answer has no choices[0].message.content");
                    };
                    return Ok(content.to_string());
                }
                Ok(response) => {
                    let status = response.status();
                    last = format!("HTTP {status}");
                    if !(status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS)
                    {
                        bail!("{last}");
                    }
                }
                Err(err) if err.is_connect() || err.is_timeout() => {
                    last = if err.is_timeout() {
                        "timed out".into()
                    } else {
                        "connection failed".into()
                    }
                }
                Err(err) => bail!("request failed: {}", err.without_url()),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        bail!("{last} after {ATTEMPTS} attempts")
    }
}
