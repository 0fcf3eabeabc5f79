//! The secrets this command knows (the mnemonic, the AI stack's tokens, LLM API keys, an agent
//! token), registered where they are read, so that whatever prints one (a tool's output, an
//! error, a state file) shows `<redacted>` instead: the runner cleans each child's log and
//! captured stdout, the printer cleans errors, and `state.yaml` is cleaned before it is written.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this are not treated as secrets (they would match ordinary words).
const MIN_LEN: usize = 6;

fn known() -> &'static Mutex<BTreeSet<String>> {
    static KNOWN: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    KNOWN.get_or_init(Mutex::default)
}

/// Registers a secret for the rest of the process (surrounding whitespace ignored).
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() >= MIN_LEN
        && let Ok(mut known) = known().lock()
    {
        known.insert(secret.to_string());
    }
}

/// Every registered secret plus `extra` (a child's secret environment values).
pub fn all<'a>(extra: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = known()
        .lock()
        .map(|k| k.iter().cloned().collect())
        .unwrap_or_default();
    out.extend(
        extra
            .into_iter()
            .map(str::trim)
            .filter(|s| s.len() >= MIN_LEN)
            .map(String::from),
    );
    // Longest first, so that a secret containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every registered secret replaced; `None` when it holds none.
pub fn redact_in(text: &str, secrets: &[String]) -> Option<String> {
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return None;
    }
    Some(
        secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), REDACTED)),
    )
}

/// `text` with every registered secret replaced.
pub fn redact(text: &str) -> String {
    redact_in(text, &all([])).unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn registered_secrets_are_replaced_anywhere_in_a_line() {
        super::register("  tok-abcdef123456  ");
        super::register("abc");
        let text = "Authorization: Bearer tok-abcdef123456; again:tok-abcdef123456.";
        assert_eq!(
            super::redact(text),
            "Authorization: Bearer <redacted>; again:<redacted>."
        );
        assert_eq!(
            super::redact("abc is too short to be one"),
            "abc is too short to be one"
        );
    }
}
