//! `config show`: every setting with its resolved value and where it came from (flag, env var,
//! config file, default). Secrets are never shown, only whether and where they are set.

use anyhow::Result;
use serde_json::{Value, json};

use crate::clock::format_duration;
use crate::ops::deployments::JSON_SCHEMA;
use crate::output::Printer;
use crate::settings::{Settings, Source};

pub fn show(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    let dur = |d: std::time::Duration| Value::String(format_duration(d));
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map_or(Value::Null, |p| Value::String(p.display().to_string()))
    };
    let values: Vec<(&str, Value)> = vec![
        ("env", Value::String(settings.env_name.clone())),
        (
            "tofu",
            settings.tofu.clone().map_or(Value::Null, Value::String),
        ),
        ("patterns_dir", path(&settings.patterns_dir)),
        ("ssh_key", path(&settings.ssh_key)),
        ("ssh_port", json!(settings.ssh_port)),
        ("ssh_timeout", dur(settings.ssh_timeout)),
        ("lock_wait", settings.lock_wait.map_or(Value::Null, dur)),
        ("tofu_timeout", dur(settings.tofu_timeout)),
        ("stop_grace", dur(settings.stop_grace)),
        (
            "max_environments",
            settings.max_environments.map_or(Value::Null, |n| json!(n)),
        ),
        ("network", Value::String(settings.network.clone())),
        (
            "gridproxy_url",
            settings
                .gridproxy_url
                .clone()
                .map_or(Value::Null, Value::String),
        ),
        ("node_selection", json!(settings.node_selection)),
        ("registry", Value::String(settings.registry_url.clone())),
        ("registry_ttl", dur(settings.registry_ttl)),
        (
            "agent_url",
            settings
                .agent_url
                .clone()
                .map_or(Value::Null, Value::String),
        ),
        ("agent_token_file", path(&settings.agent_token_file)),
        (
            "agent_token",
            settings
                .agent_token
                .as_ref()
                .map_or(Value::Null, |_| Value::String("<redacted>".into())),
        ),
    ];
    let mnemonic = crate::grid::mnemonic::source(settings);
    if json {
        let mut map = serde_json::Map::new();
        for (key, value) in &values {
            let source = settings
                .sources
                .get(key)
                .cloned()
                .unwrap_or(Source::Default);
            map.insert(
                (*key).to_string(),
                json!({"value": value, "source": source}),
            );
        }
        map.insert(
            "mnemonic".into(),
            json!({"value": mnemonic.as_ref().map(|_| "<redacted>"), "source": mnemonic}),
        );
        let filter_source = settings
            .sources
            .get("node_filter")
            .cloned()
            .unwrap_or(Source::Default);
        map.insert(
            "node_filter".into(),
            json!({"value": settings.node_filter, "source": filter_source}),
        );
        printer.json_line(&json!({
            "schema": JSON_SCHEMA,
            "config_file": settings.config_file,
            "data_dir": settings.data_dir,
            "cache_dir": settings.cache_dir,
            "settings": map,
        }));
        return Ok(());
    }
    printer.data(format!(
        "# config file: {}{}",
        settings.config_file.display(),
        if settings.config_file.is_file() {
            ""
        } else {
            " (absent)"
        }
    ));
    printer.data(format!("# data dir:    {}", settings.data_dir.display()));
    printer.data(format!("# cache dir:   {}", settings.cache_dir.display()));
    for (key, value) in &values {
        let shown = match value {
            Value::Null => "(unset)".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let source = settings
            .sources
            .get(key)
            .cloned()
            .unwrap_or(Source::Default);
        printer.data(format!("{key:<17} {shown:<30} # {source}"));
    }
    let (shown, source) = match &mnemonic {
        Some(source) => ("<redacted>".to_string(), source.to_string()),
        None => (
            "(unset)".to_string(),
            "run `tfgrid-compose signin`, or set TF_VAR_mnemonic".to_string(),
        ),
    };
    printer.data(format!("{:<17} {shown:<30} # {source}", "mnemonic"));
    if let Some(source) = settings.sources.get("node_filter") {
        printer.data(format!(
            "{:<17} {:<30} # {source}",
            "node_filter",
            serde_json::to_string(&settings.node_filter)?,
        ));
    }
    Ok(())
}
