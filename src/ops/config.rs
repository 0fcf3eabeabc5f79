//! `config show`: every setting with its resolved value and where it came from (flag, env var,
//! config file, default). Secrets are never shown, only whether and where they are set.

use anyhow::Result;
use serde_json::{Value, json};

use crate::ops::deployments::JSON_SCHEMA;
use crate::output::Printer;
use crate::settings::{Settings, Source};

pub fn show(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    let values = settings.shown();
    let source = |key: &str| {
        settings
            .sources
            .get(key)
            .cloned()
            .unwrap_or(Source::Default)
    };
    let mnemonic = crate::grid::mnemonic::source(settings);
    if json {
        let mut map = serde_json::Map::new();
        for (key, value) in &values {
            map.insert(
                (*key).to_string(),
                json!({"value": value, "source": source(key)}),
            );
        }
        map.insert(
            "mnemonic".into(),
            json!({"value": mnemonic.as_ref().map(|_| "<redacted>"), "source": mnemonic}),
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
        printer.data(format!("{key:<17} {shown:<30} # {}", source(key)));
    }
    let (shown, source) = match &mnemonic {
        Some(source) => ("<redacted>".to_string(), source.to_string()),
        None => (
            "(unset)".to_string(),
            "run `tfgrid-compose signin`, or set TF_VAR_mnemonic".to_string(),
        ),
    };
    printer.data(format!("{:<17} {shown:<30} # {source}", "mnemonic"));
    Ok(())
}
