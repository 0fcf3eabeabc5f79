//! The one YAML loader: `serde_norway` with duplicate keys refused, a byte-order mark read
//! past, and errors as [`InputError`]s naming file, line, column and field; [`locate`] finds a
//! key's position for errors found after parsing. Every YAML file of the tool (manifests,
//! `pattern.yaml`, `state.yaml`, config files, the bash tool's files, the services' configs)
//! goes through here.

use std::path::Path;

use crate::error::InputError;

/// An [`InputError`] at the position of a dotted `field` in `text` (best effort).
pub fn error_at(
    file: &Path,
    text: &str,
    field: &[&str],
    message: impl Into<String>,
    hint: Option<String>,
) -> InputError {
    let (line, column) = locate(text, field).map_or((None, None), |(l, c)| (Some(l), Some(c)));
    InputError {
        file: file.to_path_buf(),
        line,
        column,
        field: if field.is_empty() {
            "(document)".into()
        } else {
            field.join(".")
        },
        message: message.into(),
        hint,
    }
}

/// Parses YAML into `T`, refusing a key written twice in any mapping (also where `T` would keep
/// the last one, e.g. under `#[serde(flatten)]`) and reading past a leading byte-order mark.
///
/// Errors: the parser's, with its position; a duplicate key at its second occurrence.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_yaml::Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_yaml::from_str::<serde_yaml::Value>(text)?;
    serde_yaml::from_str(text)
}

/// [`from_yaml`] with the error as an [`InputError`] naming `file`, line, column and field.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
    hint: &str,
) -> Result<T, InputError> {
    from_yaml(text).map_err(|err| {
        let mut error = yaml_error(file, &err, hint);
        if let Some((line, column)) = duplicate_key_position(text, &err) {
            (error.line, error.column) = (Some(line), Some(column));
            error.hint = Some(format!("write each key once; {hint}"));
        }
        error
    })
}

/// A YAML file that may be missing: [`parse_yaml`] of its text, `T::default()` when the file
/// does not exist or is blank (config files, the bash tool's settings files).
///
/// Errors: an unreadable file; YAML that does not parse or fit `T`, with line and field.
pub fn load_optional_yaml<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    hint: &str,
) -> Result<T, InputError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(err) => {
            return Err(InputError {
                file: path.into(),
                line: None,
                column: None,
                field: "(document)".into(),
                message: err.to_string(),
                hint: Some("make the file readable, or remove it".into()),
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    parse_yaml(path, &text, hint)
}

/// Where a duplicated key is written the second time: serde_norway reports the mapping's start
/// ("duplicate entry with key \"K\" at line L column C"); the key's lines at that column follow.
fn duplicate_key_position(text: &str, err: &serde_yaml::Error) -> Option<(usize, usize)> {
    let message = err.to_string();
    let key = message
        .split("duplicate entry with key \"")
        .nth(1)?
        .split('"')
        .next()?
        .to_string();
    let location = err.location()?;
    let indent = location.column().saturating_sub(1);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut seen = 0;
    for (n, line) in text
        .lines()
        .enumerate()
        .skip(location.line().saturating_sub(1))
    {
        let body = line.get(indent..).unwrap_or_default();
        let leading = line.len() - line.trim_start().len();
        if n + 1 > location.line() && leading < indent && !line.trim().is_empty() {
            break; // the mapping ended
        }
        if leading == indent
            && (body.starts_with(&format!("{key}:")) || body.starts_with(&format!("\"{key}\":")))
        {
            seen += 1;
            if seen == 2 {
                return Some((n + 1, indent + 1));
            }
        }
    }
    None
}

/// Turns a serde_yaml error into an [`InputError`] with the position serde reports.
pub fn yaml_error(file: &Path, err: &serde_yaml::Error, hint: &str) -> InputError {
    let message = err.to_string();
    // serde_norway appends " at line L column C"; keep the message itself.
    let core = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    let field = core
        .split_once(": ")
        .filter(|(path, _)| !path.contains(' '))
        .map_or_else(|| "(document)".to_string(), |(path, _)| path.to_string());
    let core = if field == "(document)" {
        core.clone()
    } else {
        core[field.len() + 2..].to_string()
    };
    InputError {
        file: file.to_path_buf(),
        line: err.location().map(|l| l.line()),
        column: err.location().map(|l| l.column()),
        field,
        message: core,
        hint: Some(hint.to_string()),
    }
}

/// Finds the line and column of a dotted key in block YAML (best effort; used for errors found
/// after parsing, such as a hook file that does not exist).
pub fn locate(text: &str, field: &[&str]) -> Option<(usize, usize)> {
    let mut depth = 0;
    let mut min_indent = 0;
    let mut found = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if depth > 0 && indent < min_indent {
            return found;
        }
        let key = trimmed.trim_start_matches("- ");
        let Some(want) = field.get(depth) else { break };
        let matches = key
            .strip_prefix(want)
            .is_some_and(|rest| rest.starts_with(':'))
            || key
                .strip_prefix(&format!("\"{want}\""))
                .is_some_and(|rest| rest.starts_with(':'));
        if matches && indent >= min_indent {
            found = Some((number + 1, indent + 1));
            depth += 1;
            min_indent = indent + 1;
            if depth == field.len() {
                return found;
            }
        }
    }
    found
}

/// A YAML scalar as text (`443`, `true` and `"x"` alike, as a shell variable holds them);
/// `None` for null, a sequence or a mapping.
pub fn scalar_text(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// YAML scalars and collections as JSON, for tfvars and ansible extra vars.
pub fn yaml_to_json(value: &serde_yaml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {

    #[test]
    fn yaml_reads_a_bom_and_refuses_a_key_written_twice_at_its_second_line() {
        let v: serde_yaml::Value = super::from_yaml("\u{feff}name: a\n").unwrap();
        assert_eq!(v["name"], "a");
        let text = "name: a\nvariables:\n  size:\n    type: number\n  other: {}\n  size:\n    \
            type: string\n";
        let err = super::parse_yaml::<serde_yaml::Value>(
            std::path::Path::new("pattern.yaml"),
            text,
            "see the docs",
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (Some(6), Some(3)), "{err:?}");
        assert!(
            err.message.contains("duplicate entry with key \"size\""),
            "{err:?}"
        );
    }
    use super::locate;

    #[test]
    fn locate_finds_nested_keys() {
        let text =
            "name: x\nhooks:\n  # c\n  setup: a.sh\n  configure: b.sh\nconfig:\n  setup: 1\n";
        assert_eq!(locate(text, &["hooks", "configure"]), Some((5, 3)));
        assert_eq!(locate(text, &["config", "setup"]), Some((7, 3)));
        assert_eq!(locate(text, &["name"]), Some((1, 1)));
    }
}
