//! A provider's counters ([`Stats`]) and their Prometheus text for the agent's `/metrics`.

use serde::{Deserialize, Serialize};

/// A provider's counters since the agent started, and its last health probe.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    pub answers: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Milliseconds spent on the answers (not the failures).
    pub latency_ms_total: u64,
    pub last_error: Option<String>,
    /// `GET {base_url}/models` answered 2xx; `None` before the first probe.
    pub healthy: Option<bool>,
    pub checked_at: Option<u64>,
    pub probe_ms: Option<u64>,
    pub probe_error: Option<String>,
}

impl Stats {
    /// The mean time of an answer, `None` before the first.
    pub fn mean_latency(&self) -> Option<std::time::Duration> {
        self.latency_ms_total
            .checked_div(self.answers)
            .map(std::time::Duration::from_millis)
    }
}

/// Prometheus text of `(provider, stats)` pairs, one series per provider (label
/// `provider="model@base_url"`).
pub(super) fn metrics_text(stats: &[(String, Stats)]) -> String {
    let mut out = String::new();
    let series: [Series; 8] = [
        (
            "tfgrid_agent_llm_requests_total",
            "Requests sent to the provider.",
            "counter",
            |s| s.requests as f64,
        ),
        (
            "tfgrid_agent_llm_answers_total",
            "Answers the provider gave.",
            "counter",
            |s| s.answers as f64,
        ),
        (
            "tfgrid_agent_llm_errors_total",
            "Requests the provider failed.",
            "counter",
            |s| s.errors as f64,
        ),
        (
            "tfgrid_agent_llm_timeouts_total",
            "Requests the provider did not answer in time.",
            "counter",
            |s| s.timeouts as f64,
        ),
        (
            "tfgrid_agent_llm_tokens_in_total",
            "Prompt tokens sent to the provider.",
            "counter",
            |s| s.tokens_in as f64,
        ),
        (
            "tfgrid_agent_llm_tokens_out_total",
            "Tokens the provider answered with.",
            "counter",
            |s| s.tokens_out as f64,
        ),
        (
            "tfgrid_agent_llm_answer_seconds_total",
            "Seconds the provider spent on its answers.",
            "counter",
            |s| s.latency_ms_total as f64 / 1000.0,
        ),
        (
            "tfgrid_agent_llm_up",
            "1 when the provider's last health probe answered.",
            "gauge",
            |s| f64::from(u8::from(s.healthy == Some(true))),
        ),
    ];
    for (name, help, kind, value) in series {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (provider, s) in stats {
            out.push_str(&format!(
                "{name}{{provider=\"{}\"}} {}\n",
                label(provider),
                value(s)
            ));
        }
    }
    out
}

/// A Prometheus series: name, help, type, value of a provider's counters.
type Series = (&'static str, &'static str, &'static str, fn(&Stats) -> f64);

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::{Stats, label, metrics_text};

    #[test]
    fn one_series_per_provider_with_its_label_escaped() {
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
        let text = metrics_text(&[(
            "m@http://x/v1".into(),
            Stats {
                tokens_out: 42,
                latency_ms_total: 1500,
                healthy: Some(true),
                ..Stats::default()
            },
        )]);
        for want in [
            "# TYPE tfgrid_agent_llm_tokens_out_total counter\n",
            "tfgrid_agent_llm_tokens_out_total{provider=\"m@http://x/v1\"} 42\n",
            "tfgrid_agent_llm_answer_seconds_total{provider=\"m@http://x/v1\"} 1.5\n",
            "tfgrid_agent_llm_up{provider=\"m@http://x/v1\"} 1\n",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }
}
