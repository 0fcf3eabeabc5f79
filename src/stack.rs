//! The AI stack's plain data, shared by the manifest (`ai_stack:`), `state.yaml`, the step of
//! `up` that installs the stack and the services: nothing here imports anything of the crate.

use serde::{Deserialize, Serialize};

/// The `ai_stack:` section of an app manifest.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    /// The VM (index, 0 = primary) of each service.
    #[serde(default)]
    pub gateway: usize,
    #[serde(default = "one")]
    pub agent: usize,
    #[serde(default = "two")]
    pub git: usize,
    /// The LLM providers, in fallback order. `{host_ip}` in a `base_url` is this machine's
    /// address on the deployment's WireGuard network, as the agent's VM sees it (an LLM served
    /// from this machine). `api_key_env`/`api_key_file` are read here at deploy time and the key
    /// is copied 0600 to the agent's VM. Empty or absent: the stack runs [`local_model`] on the
    /// agent's VM and uses it.
    #[serde(default)]
    pub llm: Vec<Provider>,
    /// Which provider a request goes to first (default `fallback`).
    #[serde(default)]
    pub llm_strategy: Strategy,
    #[serde(default)]
    pub max_concurrent_projects: Option<usize>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Requests per second per client on each API.
    #[serde(default)]
    pub api_rate_limit: Option<u32>,
    /// The git organisation projects go to.
    #[serde(default = "default_org")]
    pub org: String,
    /// Where sites are live, e.g. `https://ai.example.org` (default: `http://` + the gateway VM's
    /// address).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Prometheus, Alertmanager (on the gateway's VM) and node_exporter (on every VM).
    #[serde(default)]
    pub monitoring: Monitoring,
}

/// The `ai_stack.monitoring:` settings, each with its default.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Monitoring {
    /// Days of samples Prometheus keeps (`--storage.tsdb.retention.time`; default 15).
    pub retention_days: u32,
    /// Megabytes of samples Prometheus keeps at most, the oldest dropped first
    /// (`--storage.tsdb.retention.size`; default 1024).
    pub retention_mb: u32,
    /// Seconds between two scrapes, and between two evaluations of the alert rules (default 15).
    pub scrape_interval: u32,
    /// Where Alertmanager posts alerts (its webhook JSON), e.g. `https://hooks.example.org/ai`;
    /// none: alerts are seen in Alertmanager only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_webhook: Option<String>,
    /// Hours without a backup after which the `BackupMissing` alert fires and `health` fails
    /// (default 26: a daily backup, with two hours to spare).
    pub backup_max_age_hours: u32,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            retention_days: 15,
            retention_mb: 1024,
            scrape_interval: 15,
            alert_webhook: None,
            backup_max_age_hours: 26,
        }
    }
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn default_org() -> String {
    "projects".into()
}

/// What `state.yaml` records of a deployed stack (addresses only).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StackRecord {
    /// The agent API, as this machine reaches it.
    pub agent_api: String,
    pub gateway_api: String,
    pub git_api: String,
    /// Sites are live at `public_url/NAME/`, repositories at `public_url/git/ORG/NAME.git`.
    pub public_url: String,
}

/// One provider of the chain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// e.g. `http://127.0.0.1:11434/v1`, `https://openrouter.ai/api/v1`.
    pub base_url: String,
    pub model: String,
    /// A file holding the API key (0600), or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<std::path::PathBuf>,
    /// the name of an environment variable holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The most tokens one answer may have (`max_tokens`; default [`DEFAULT_MAX_TOKENS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Seconds one answer may take, from the request to its last token (default
    /// [`DEFAULT_TIMEOUT`]). A timed-out answer is not asked again of the same provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Seconds a streamed answer may go without a token, the prompt's reading included (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u64>,
    /// Ask it once when the agent starts (the system prompt, one token of answer), so that the
    /// first create finds the prompt's shared start in the server's prompt cache. For a model on
    /// the agent's own machine, where a request costs nothing; the default model has it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm_up: bool,
}

/// A small site is 300-1,600 tokens; this leaves room and still ends a model that loops.
pub const DEFAULT_MAX_TOKENS: u32 = 3000;
/// 15 minutes: 3,000 tokens at the 3.6 tokens/s a 1.5B model makes on two busy CPU cores.
pub const DEFAULT_TIMEOUT: u64 = 900;
/// 3 minutes: reading a 1,000-token prompt at 6 tokens/s, on a loaded CPU, with room.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 180;

/// Which provider a request goes to first; the others follow in order when it fails.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Always the first; the next when one fails.
    #[default]
    Fallback,
    /// Each request starts at the provider after the previous request's first.
    RoundRobin,
    /// Each request starts at a provider picked at random.
    Random,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Fallback => "fallback",
            Strategy::RoundRobin => "round-robin",
            Strategy::Random => "random",
        }
    }
}

/// Project and route names: `[a-z0-9][a-z0-9-]{0,39}`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a name: 1-40 of a-z, 0-9 and `-`, starting with a letter or digit",
            name.escape_default()
        ))
    }
}

/// The model the stack serves itself when `ai_stack.llm` names no provider: llama.cpp's server
/// (PyPI `xllamacpp`) with Qwen2.5-Coder-1.5B-Instruct Q4_K_M, installed by
/// `scripts/install-llm.sh` and run on the agent's VM, on its loopback only.
///
/// Why there: it lives and dies with the deployment (`up` starts it, `down` stops it, nothing
/// outlives the command on the operator's machine), it works the same on a grid VM (the agent's
/// VM has 8 GB by default; the model needs about 2 GB) and on a local VM (which sees this
/// machine's `/opt`, where `install-deps.sh` put it), and it needs no port opened to anyone.
pub mod local_model {
    /// The server's entry point (`serve --host H --port P`), written by `install-llm.sh`.
    pub const SERVE: &str = "/opt/tfgrid-compose/llm/serve";
    /// Its port on the agent VM's loopback.
    pub const PORT: u16 = 8081;
    /// The name it answers to (`/v1/models`).
    pub const MODEL: &str = "qwen2.5-coder-1.5b";
    /// The installer, copied to the agent's VM; it runs there when the VM has no model yet.
    pub const INSTALLER: &str = include_str!("../scripts/install-llm.sh");

    /// The provider the agent uses for it, with the default bounds (which suit CPU inference).
    pub fn provider() -> super::Provider {
        super::Provider {
            base_url: format!("http://127.0.0.1:{PORT}/v1"),
            model: MODEL.into(),
            api_key_file: None,
            api_key_env: None,
            max_tokens: None,
            timeout: None,
            idle_timeout: None,
            warm_up: true,
        }
    }
}

/// Refuses a stack section that cannot work, at validation (before anything is created).
pub fn check(spec: &StackSpec) -> Result<(), String> {
    check_name(&spec.org).map_err(|e| format!("`org`: {e}"))?;
    let m = &spec.monitoring;
    for (key, value) in [
        ("retention_days", m.retention_days),
        ("retention_mb", m.retention_mb),
        ("scrape_interval", m.scrape_interval),
        ("backup_max_age_hours", m.backup_max_age_hours),
    ] {
        if value == 0 {
            return Err(format!("`monitoring.{key}` must be at least 1"));
        }
    }
    if let Some(url) = &m.alert_webhook
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err("`monitoring.alert_webhook` must start with http:// or https://".into());
    }
    for (i, p) in spec.llm.iter().enumerate() {
        if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
            return Err(format!(
                "`llm[{i}].base_url` must start with http:// or https://"
            ));
        }
        for (key, value) in [
            ("max_tokens", p.max_tokens.map(u64::from)),
            ("timeout", p.timeout),
            ("idle_timeout", p.idle_timeout),
        ] {
            if value == Some(0) {
                return Err(format!("`llm[{i}].{key}` must be at least 1"));
            }
        }
    }
    Ok(())
}
