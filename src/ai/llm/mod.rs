//! An OpenAI-compatible chat-completions client (llama.cpp's server, Ollama, vLLM, OpenRouter,
//! OpenAI all speak it) for answers that take minutes on a CPU. Every answer is streamed
//! (`stream: true`, server-sent events; a plain JSON answer is read too) and bounded: `max_tokens`,
//! a deadline and a longest silence per provider, and a watch that stops an answer which has
//! gone wrong. Progress (tokens so far, elapsed) is reported as it comes. Structured output
//! (`response_format` `json_schema`, then `json_object`) is asked for until a provider refuses it,
//! which is remembered per provider. The first provider asked follows the strategy (fallback,
//! round-robin, random); the others follow in order when it fails. Transient errors (connection,
//! 429, 5xx) are tried again with back-off; a timed-out answer is not asked again of the same
//! provider. Counters per provider feed `/metrics` and `/health`. The key is a secret: it goes
//! only into the Authorization header, never into a log line or an error.

pub use crate::stack::{Provider, Strategy};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::stack::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT};

pub mod stats;
mod stream;

pub use stats::Stats;
pub use stream::{Answer, Finish, Progress};
use stream::{Stream, next_event};

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

/// One question: the conversation, its temperature, the JSON schema of the answer (for
/// structured output) and the watch that stops a streamed answer gone wrong (`Some(reason)`).
pub struct Ask<'a> {
    pub messages: &'a [Message],
    pub temperature: f64,
    pub schema: &'a Value,
    pub watch: fn(&str) -> Option<String>,
}

/// How the answer's shape is asked for, richest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `response_format: {type: json_schema}`, with `stream_options.include_usage`.
    Schema,
    /// `response_format: {type: json_object}`, with `stream_options.include_usage`.
    Object,
    /// Neither, nor `stream_options`: the prompt alone asks for JSON.
    Plain,
}

impl Format {
    fn from_u8(n: u8) -> Format {
        match n {
            0 => Format::Schema,
            1 => Format::Object,
            _ => Format::Plain,
        }
    }

    fn plainer(self) -> Option<Format> {
        match self {
            Format::Schema => Some(Format::Object),
            Format::Object => Some(Format::Plain),
            Format::Plain => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Schema => "json_schema",
            Format::Object => "json_object",
            Format::Plain => "none",
        }
    }
}

/// What happens while an answer is awaited.
pub enum Update<'a> {
    /// A provider is asked.
    Asking {
        provider: &'a str,
        format: Format,
    },
    Progress(&'a Progress),
    /// Worth telling: a provider failed and the next is asked, structured output was refused.
    Note(String),
}

struct Slot {
    provider: Provider,
    key: Option<String>,
    /// `model@base_url`.
    name: String,
    /// The richest [`Format`] not refused yet.
    format: AtomicU8,
    stats: Mutex<Stats>,
}

impl Slot {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub struct Llm {
    slots: Vec<Slot>,
    strategy: Strategy,
    turn: AtomicUsize,
    http: reqwest::Client,
}

/// How long [`Llm::warm_up`] waits for a provider to answer: its model may still be loading.
const WARM_UP_FOR: Duration = Duration::from_secs(600);
/// Attempts per provider on connection errors, 429 and 5xx.
const ATTEMPTS: u32 = 3;
/// How often a streamed answer's progress is reported.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How much new text a streamed answer gets before the watch looks at it again.
const WATCH_EVERY: usize = 2048;

/// Why one request failed, which decides what comes next.
enum Failure {
    /// Ask the same provider again after a pause: connection refused, 429, 5xx.
    Transient(String),
    /// The server refused the request's body (400, 422): perhaps its `response_format`.
    Refused(String),
    /// Not asked again of this provider.
    TimedOut(String),
    /// The next provider.
    Failed(String),
}

/// The providers in the order a request asks them: from `first`, wrapping around.
fn rotation(first: usize, n: usize) -> Vec<usize> {
    (0..n).map(|i| (first + i) % n).collect()
}

/// Text of an error answer, short and on one line.
fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(200).collect()
}

impl Llm {
    pub fn new(providers: &[Provider], strategy: Strategy, env: &crate::env::Env) -> Result<Llm> {
        if providers.is_empty() {
            bail!("no LLM provider is configured (agent config `llm:`)");
        }
        let mut slots = Vec::new();
        for p in providers {
            let key = match (&p.api_key_file, &p.api_key_env) {
                (Some(file), _) => {
                    Some(crate::files::read_secret(file).context("the API key file")?)
                }
                (None, Some(var)) => env.get(var).map(String::from),
                (None, None) => None,
            };
            slots.push(Slot {
                name: format!("{}@{}", p.model, p.base_url),
                provider: p.clone(),
                key,
                format: AtomicU8::new(0),
                stats: Mutex::new(Stats::default()),
            });
        }
        // No client-wide timeout: each request carries its provider's.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Llm {
            slots,
            strategy,
            turn: AtomicUsize::new(0),
            http,
        })
    }

    fn order(&self) -> Vec<usize> {
        let n = self.slots.len();
        let first = match self.strategy {
            Strategy::Fallback => 0,
            Strategy::RoundRobin => self.turn.fetch_add(1, Ordering::Relaxed) % n,
            Strategy::Random => {
                crate::ids::random_hex(4)
                    .ok()
                    .and_then(|hex| usize::from_str_radix(&hex, 16).ok())
                    .unwrap_or(0)
                    % n
            }
        };
        rotation(first, n)
    }

    /// The first answer of the providers, asked in the strategy's order.
    /// Errors: every provider failed (each one's reason).
    pub async fn complete(
        &self,
        ask: &Ask<'_>,
        observe: &(dyn Fn(Update<'_>) + Send + Sync),
    ) -> Result<Answer> {
        let mut problems = Vec::new();
        let order = self.order();
        for (i, &index) in order.iter().enumerate() {
            let slot = &self.slots[index];
            match self.ask_provider(slot, ask, observe).await {
                Ok(answer) => return Ok(answer),
                Err(err) => {
                    if i + 1 < order.len() {
                        observe(Update::Note(format!(
                            "{}: {err}; asking {}",
                            slot.name,
                            self.slots[order[i + 1]].name
                        )));
                    }
                    problems.push(format!("{}: {err}", slot.name));
                }
            }
        }
        bail!("every LLM provider failed: {}", problems.join("; "))
    }

    async fn ask_provider(
        &self,
        slot: &Slot,
        ask: &Ask<'_>,
        observe: &(dyn Fn(Update<'_>) + Send + Sync),
    ) -> Result<Answer, String> {
        let known = Format::from_u8(slot.format.load(Ordering::Relaxed));
        let mut format = known;
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            observe(Update::Asking {
                provider: &slot.name,
                format,
            });
            slot.stats().requests += 1;
            let failure = match self.request(slot, ask, format, observe).await {
                Ok(answer) => {
                    if format != known {
                        slot.format.store(format as u8, Ordering::Relaxed);
                        observe(Update::Note(format!(
                            "{} answers with response_format {}: asking it so from now on",
                            slot.name,
                            format.as_str()
                        )));
                    }
                    let mut stats = slot.stats();
                    stats.answers += 1;
                    stats.tokens_in += answer.tokens_in.unwrap_or(0);
                    stats.tokens_out += answer.tokens_out;
                    stats.latency_ms_total +=
                        u64::try_from(answer.elapsed.as_millis()).unwrap_or(u64::MAX);
                    return Ok(answer);
                }
                Err(failure) => failure,
            };
            let (text, again) = match failure {
                Failure::Refused(why) => match format.plainer() {
                    Some(plainer) => {
                        observe(Update::Note(format!(
                            "{} refused the request with response_format {} ({why}); asking \
                             with {}",
                            slot.name,
                            format.as_str(),
                            plainer.as_str()
                        )));
                        format = plainer;
                        (why, true)
                    }
                    None => (why, false),
                },
                Failure::Transient(why) if attempt < ATTEMPTS => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                    (why, true)
                }
                Failure::Transient(why) => (format!("{why} after {ATTEMPTS} attempts"), false),
                Failure::TimedOut(why) => {
                    slot.stats().timeouts += 1;
                    (why, false)
                }
                Failure::Failed(why) => (why, false),
            };
            let mut stats = slot.stats();
            stats.errors += 1;
            stats.last_error = Some(text.clone());
            if !again {
                return Err(text);
            }
        }
    }

    /// One request and its answer.
    async fn request(
        &self,
        slot: &Slot,
        ask: &Ask<'_>,
        format: Format,
        observe: &(dyn Fn(Update<'_>) + Send + Sync),
    ) -> Result<Answer, Failure> {
        let p = &slot.provider;
        let total = Duration::from_secs(p.timeout.unwrap_or(DEFAULT_TIMEOUT));
        let idle = Duration::from_secs(p.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT));
        let mut body = json!({
            "model": p.model,
            "messages": ask.messages,
            "temperature": ask.temperature,
            "max_tokens": p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            "stream": true,
        });
        match format {
            Format::Schema => {
                body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "answer", "strict": true, "schema": ask.schema}});
            }
            Format::Object => body["response_format"] = json!({"type": "json_object"}),
            Format::Plain => {}
        }
        if format != Format::Plain {
            body["stream_options"] = json!({"include_usage": true});
        }
        let url = format!("{}/chat/completions", p.base_url.trim_end_matches('/'));
        let started = Instant::now();
        let mut request = self.http.post(&url).json(&body).timeout(total);
        if let Some(key) = &slot.key {
            request = request.bearer_auth(key);
        }
        let timed_out = || {
            Failure::TimedOut(format!(
                "no complete answer within {} s (the provider's `timeout`)",
                total.as_secs()
            ))
        };
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(timed_out()),
            Err(e) if e.is_connect() => return Err(Failure::Transient("connection failed".into())),
            Err(e) => {
                return Err(Failure::Failed(format!(
                    "request failed: {}",
                    e.without_url()
                )));
            }
        };
        let status = response.status();
        if !status.is_success() {
            let mut text = excerpt(&response.text().await.unwrap_or_default());
            if let Some(key) = slot.key.as_deref().filter(|k| !k.is_empty()) {
                text = text.replace(key, "<redacted>");
            }
            let what = format!("HTTP {status}: {text}");
            return Err(match status.as_u16() {
                400 | 422 => Failure::Refused(what),
                429 | 500..=599 => Failure::Transient(format!("HTTP {status}")),
                _ => Failure::Failed(what),
            });
        }
        let streamed = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut stream = Stream::new(slot.name.clone(), started);
        if !streamed {
            let bytes = match response.bytes().await {
                Ok(b) => b,
                Err(e) if e.is_timeout() => return Err(timed_out()),
                Err(e) => {
                    return Err(Failure::Failed(format!(
                        "the answer broke off: {}",
                        e.without_url()
                    )));
                }
            };
            let value: Value = serde_json::from_slice(&bytes)
                .map_err(|e| Failure::Failed(format!("the answer is not JSON: {e}")))?;
            stream.take(&value)?;
            let Some(content) = value
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
            else {
                return Err(Failure::Failed(
                    "the answer has no choices[0].message.content".into(),
                ));
            };
            stream.text = content.to_string();
            return Ok(stream.answer());
        }
        let mut buffer: Vec<u8> = Vec::new();
        let mut reported = Instant::now();
        let mut watched = 0;
        loop {
            let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                Err(_) => {
                    return Err(Failure::TimedOut(format!(
                        "no token for {} s (the provider's `idle_timeout`)",
                        idle.as_secs()
                    )));
                }
                Ok(Err(e)) if e.is_timeout() => return Err(timed_out()),
                Ok(Err(e)) => {
                    return Err(Failure::Failed(format!(
                        "the answer broke off: {}",
                        e.without_url()
                    )));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(bytes))) => bytes,
            };
            buffer.extend_from_slice(&chunk);
            while let Some(data) = next_event(&mut buffer) {
                if data.trim() == "[DONE]" {
                    return Ok(stream.answer());
                }
                let Ok(value) = serde_json::from_str::<Value>(&data) else {
                    continue;
                };
                stream.take(&value)?;
            }
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = Instant::now();
                observe(Update::Progress(&stream.progress()));
            }
            if stream.text.len() >= watched + WATCH_EVERY {
                watched = stream.text.len();
                if let Some(why) = (ask.watch)(&stream.text) {
                    // Dropping the response closes the connection; servers then stop generating.
                    stream.finish = Finish::Stopped(why);
                    return Ok(stream.answer());
                }
            }
        }
        Ok(stream.answer())
    }

    /// Sends `messages` (the start every create's conversation shares) to each provider with
    /// `warm_up`, asking for one token: llama.cpp's server keeps the last prompt's tokens and
    /// reuses the longest common start of the next one (`cache_prompt`, on by default), so the
    /// first create reads only its own request, not the system prompt (about 20 s for the
    /// default model on two cores: 27 tokens/s of prompt reading, docs/performance.md). Tries
    /// every 2 s while the server starts, for at most [`WARM_UP_FOR`]; not counted in the stats.
    pub async fn warm_up(&self, messages: &[Message]) {
        for slot in self.slots.iter().filter(|s| s.provider.warm_up) {
            let url = format!(
                "{}/chat/completions",
                slot.provider.base_url.trim_end_matches('/')
            );
            let body = json!({"model": slot.provider.model, "messages": messages, "max_tokens": 1,
                "temperature": 0});
            let started = Instant::now();
            loop {
                let mut request = self.http.post(&url).json(&body).timeout(WARM_UP_FOR);
                if let Some(key) = &slot.key {
                    request = request.bearer_auth(key);
                }
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        tracing::info!(provider = %slot.name, elapsed_ms = started.elapsed().as_millis(),
                            "prompt cache warmed up");
                        break;
                    }
                    Ok(_) | Err(_) if started.elapsed() < WARM_UP_FOR => {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    _ => {
                        tracing::warn!(provider = %slot.name, "no answer to the warm-up");
                        break;
                    }
                }
            }
        }
    }

    /// Asks every provider `GET {base_url}/models` (5 s at most each) and records the result.
    pub async fn probe(&self) {
        for slot in &self.slots {
            let url = format!("{}/models", slot.provider.base_url.trim_end_matches('/'));
            let mut request = self.http.get(&url).timeout(Duration::from_secs(5));
            if let Some(key) = &slot.key {
                request = request.bearer_auth(key);
            }
            let started = Instant::now();
            let result = match request.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) if e.is_timeout() => Err("timed out".to_string()),
                Err(e) if e.is_connect() => Err("connection failed".to_string()),
                Err(e) => Err(e.without_url().to_string()),
            };
            let mut stats = slot.stats();
            stats.healthy = Some(result.is_ok());
            stats.checked_at = Some(crate::clock::now_unix());
            stats.probe_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(0));
            stats.probe_error = result.err();
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Each provider for `/health`: `{provider, model, base_url, response_format, max_tokens,
    /// timeout_s, idle_timeout_s, stats: Stats}`.
    pub fn report(&self) -> Vec<crate::ai::api::ProviderHealth> {
        self.slots
            .iter()
            .map(|slot| {
                let p = &slot.provider;
                crate::ai::api::ProviderHealth {
                    provider: slot.name.clone(),
                    model: p.model.clone(),
                    base_url: p.base_url.clone(),
                    response_format: Format::from_u8(slot.format.load(Ordering::Relaxed))
                        .as_str()
                        .into(),
                    max_tokens: p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                    timeout_s: p.timeout.unwrap_or(DEFAULT_TIMEOUT),
                    idle_timeout_s: p.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
                    stats: slot.stats().clone(),
                }
            })
            .collect()
    }

    /// Prometheus text, one series per provider (label `provider="model@base_url"`).
    pub fn metrics_text(&self) -> String {
        let stats: Vec<(String, Stats)> = self
            .slots
            .iter()
            .map(|s| (s.name.clone(), s.stats().clone()))
            .collect();
        stats::metrics_text(&stats)
    }
}

#[cfg(test)]
mod tests {
    use super::rotation;

    #[test]
    fn providers_rotate_from_the_first_asked() {
        assert_eq!(rotation(0, 3), [0, 1, 2]);
        assert_eq!(rotation(2, 3), [2, 0, 1]);
        assert_eq!(rotation(4, 3), [1, 2, 0]);
    }
}
