//! Reading an answer: server-sent events out of the bytes as they come ([`next_event`]), and the
//! answer they add up to ([`Stream`]): text, tokens (the server's `usage` when it gives one),
//! finish reason, progress.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Failure, excerpt};

/// A streamed answer so far.
#[derive(Debug, Clone)]
pub struct Progress {
    /// `model@base_url`.
    pub provider: String,
    /// Tokens received (the server's count when it gives one, else one per streamed piece).
    pub tokens: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn tokens_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.tokens as f64 / secs
        } else {
            0.0
        }
    }
}

/// How an answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Stop,
    /// Cut at `max_tokens`.
    Length,
    /// Stopped here because it had gone wrong (the watch's reason).
    Stopped(String),
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub content: String,
    /// `model@base_url`.
    pub provider: String,
    /// The prompt's tokens, when the server counts them.
    pub tokens_in: Option<u64>,
    pub tokens_out: u64,
    /// Of `tokens_in`, those the server took from its prompt cache instead of reading them
    /// (llama.cpp's `timings.cache_n`), when it says.
    pub tokens_cached: Option<u64>,
    pub elapsed: Duration,
    pub finish: Finish,
    /// Generation speed as the server measured it, tokens/s (llama.cpp's `timings.
    /// predicted_per_second`, which excludes reading the prompt and the network).
    pub server_tokens_per_s: Option<f64>,
}

/// The data of the next complete server-sent event in `buffer` (its `data:` lines joined), which
/// is removed from the buffer; `None` until an event is complete.
pub(super) fn next_event(buffer: &mut Vec<u8>) -> Option<String> {
    loop {
        let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
        let crlf = buffer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4));
        let end = match (lf, crlf) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let event: Vec<u8> = buffer.drain(..end.0 + end.1).collect();
        let text = String::from_utf8_lossy(&event[..end.0]);
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if !data.is_empty() {
            return Some(data.join("\n"));
        }
    }
}

/// An answer being read.
pub(super) struct Stream {
    pub(super) provider: String,
    pub(super) started: Instant,
    pub(super) text: String,
    /// Streamed pieces with text (one token each on llama.cpp and OpenAI).
    pub(super) pieces: u64,
    pub(super) usage_in: Option<u64>,
    pub(super) usage_out: Option<u64>,
    /// llama.cpp's `timings` object (sent with its last chunk).
    pub(super) timings: Option<Value>,
    pub(super) finish: Finish,
}

impl Stream {
    pub(super) fn new(provider: String, started: Instant) -> Stream {
        Stream {
            provider,
            started,
            text: String::new(),
            pieces: 0,
            usage_in: None,
            usage_out: None,
            timings: None,
            finish: Finish::Stop,
        }
    }

    /// Takes what a chunk (or a whole answer) says: text, finish reason, usage, or an error.
    pub(super) fn take(&mut self, value: &Value) -> Result<(), Failure> {
        if let Some(error) = value.get("error") {
            let message = error["message"]
                .as_str()
                .map_or_else(|| error.to_string(), String::from);
            return Err(Failure::Failed(format!(
                "the server reported: {}",
                excerpt(&message)
            )));
        }
        if let Some(piece) = value
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text.push_str(piece);
            self.pieces += 1;
        }
        if value
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            == Some("length")
        {
            self.finish = Finish::Length;
        }
        if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
            self.usage_in = usage["prompt_tokens"].as_u64().or(self.usage_in);
            self.usage_out = usage["completion_tokens"].as_u64().or(self.usage_out);
        }
        if let Some(timings) = value.get("timings").filter(|t| t.is_object()) {
            self.timings = Some(timings.clone());
        }
        Ok(())
    }

    /// A count from `usage`, else from llama.cpp's `timings` (`prompt_n`, `predicted_n`).
    fn timing(&self, key: &str) -> Option<u64> {
        self.timings.as_ref().and_then(|t| t[key].as_u64())
    }

    pub(super) fn tokens(&self) -> u64 {
        self.usage_out
            .or_else(|| self.timing("predicted_n"))
            .unwrap_or(self.pieces)
    }

    pub(super) fn progress(&self) -> Progress {
        Progress {
            provider: self.provider.clone(),
            tokens: self.tokens(),
            elapsed: self.started.elapsed(),
        }
    }

    pub(super) fn answer(self) -> Answer {
        Answer {
            tokens_out: self.tokens(),
            elapsed: self.started.elapsed(),
            tokens_in: self.usage_in.or_else(|| self.timing("prompt_n")),
            tokens_cached: self.timing("cache_n"),
            server_tokens_per_s: self
                .timings
                .as_ref()
                .and_then(|t| t["predicted_per_second"].as_f64()),
            content: self.text,
            provider: self.provider,
            finish: self.finish,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Finish, Stream, next_event};

    #[test]
    fn server_sent_events_are_read_across_chunks() {
        let mut buffer = b"data: {\"a\":1}\n\n: comment\n\ndata: {\"b\"".to_vec();
        assert_eq!(next_event(&mut buffer).as_deref(), Some("{\"a\":1}"));
        assert_eq!(next_event(&mut buffer), None);
        buffer.extend_from_slice(b":2}\r\n\r\ndata: [DONE]\n\n");
        assert_eq!(next_event(&mut buffer).as_deref(), Some("{\"b\":2}"));
        assert_eq!(next_event(&mut buffer).as_deref(), Some("[DONE]"));
        assert!(buffer.is_empty());
    }

    #[test]
    fn chunks_give_text_tokens_and_the_end() {
        let mut s = Stream::new("m@u".into(), std::time::Instant::now());
        for piece in ["{\"fi", "les\"", ""] {
            assert!(
                s.take(&serde_json::json!({"choices": [{"delta": {"content": piece}}]}))
                    .is_ok()
            );
        }
        assert!(
            s.take(&serde_json::json!({"choices": [{"delta": {}, "finish_reason": "length"}]}))
                .is_ok()
        );
        assert_eq!((s.text.as_str(), s.tokens()), ("{\"files\"", 2));
        assert!(
            s.take(&serde_json::json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}))
                .is_ok()
        );
        let answer = s.answer();
        assert_eq!((answer.tokens_in, answer.tokens_out), (Some(7), 3));
        assert_eq!(answer.finish, Finish::Length);
        let mut s = Stream::new("m@u".into(), std::time::Instant::now());
        assert!(
            s.take(&serde_json::json!({"error": {"message": "boom"}}))
                .is_err()
        );
    }

    /// llama.cpp's server (xllamacpp 2026.10.11549) sends no `usage` in a stream; its last chunk
    /// carries `timings`, as here (copied from a real answer of Qwen2.5-Coder-1.5B).
    #[test]
    fn llama_cpp_timings_give_the_counts_and_the_servers_own_speed() {
        let mut s = Stream::new("m@u".into(), std::time::Instant::now());
        let last = r#"{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1795972071,
            "id":"chatcmpl-QPId9FshE6gWMnh3NSQQxb8cDPatd9jP","model":"-","object":"chat.completion.chunk",
            "timings":{"cache_n":0,"prompt_n":35,"prompt_ms":1357.895,"prompt_per_token_ms":38.797,
            "prompt_per_second":25.775188803257983,"predicted_n":7,"predicted_ms":546.389,
            "predicted_per_token_ms":91.06483333333334,"predicted_per_second":10.981187395793107}}"#;
        for piece in ["Hello", " there"] {
            assert!(
                s.take(&serde_json::json!({"choices": [{"delta": {"content": piece}}]}))
                    .is_ok()
            );
        }
        assert_eq!(s.tokens(), 2, "streamed pieces until the server counts");
        assert!(s.take(&serde_json::from_str(last).unwrap()).is_ok());
        let answer = s.answer();
        assert_eq!((answer.tokens_in, answer.tokens_out), (Some(35), 7));
        let rate = answer.server_tokens_per_s.unwrap();
        assert!((rate - 10.981).abs() < 0.001, "{rate}");
        assert_eq!(answer.finish, Finish::Stop);
    }
}
