//! The ThreeFold mnemonic: checked as a BIP-39 phrase, stored by `signin` 0600 in the config
//! folder, found in one order (environment, the file `signin` wrote, the bash tool's
//! `credentials.yaml`, `~/.config/threefold/mnemonic`, the project file). Its text never
//! appears in a message: errors name the source and the word's position only.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::error::UserError;
use crate::settings::{Settings, Source};

/// The variable the Terraform provider reads, and the one place the environment is looked at.
pub const ENV_VAR: &str = "TF_VAR_mnemonic";

/// Every variable that carries a mnemonic to a child: [`ENV_VAR`], and the grid provider's own
/// `MNEMONIC` and `MNEMONICS` (its argument's name changed in v1.11.2-dev; it reads them when its
/// block has no `mnemonic`).
pub const CHILD_ENV_VARS: [&str; 3] = [ENV_VAR, "MNEMONIC", "MNEMONICS"];

/// Registers the value of each of [`CHILD_ENV_VARS`] in `env` as a secret (as set and as
/// normalized), whatever the pattern needs: children inherit the environment, so a tool that
/// prints one (a provider rejecting it, a playbook, a hook) shows `<redacted>` in the error, the
/// logs, `state.yaml` and `inspect`.
pub fn register_env_secrets(env: &crate::env::Env) {
    for value in CHILD_ENV_VARS.iter().filter_map(|var| env.get(var)) {
        crate::secrets::register(value);
        crate::secrets::register(&normalize(value));
    }
}

/// Words separated by single spaces, lower case.
pub fn normalize(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a phrase against the BIP-39 English list and its checksum.
pub fn validate(phrase: &str) -> Result<usize, String> {
    let phrase = normalize(phrase);
    let count = phrase.split(' ').filter(|w| !w.is_empty()).count();
    bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &phrase)
        .map(|_| count)
        .map_err(|err| match err {
            bip39::Error::BadWordCount(n) => {
                format!("it has {n} words; a mnemonic has 12, 15, 18, 21 or 24")
            }
            bip39::Error::UnknownWord(i) => {
                format!("word {} is not in the BIP-39 English word list", i + 1)
            }
            bip39::Error::InvalidChecksum => {
                "its checksum does not match (a word is wrong or the order is mixed up)".into()
            }
            other => format!("it is not a BIP-39 phrase ({other})"),
        })
}

/// Where `signin` stores the mnemonic.
pub fn stored_file(settings: &Settings) -> PathBuf {
    settings.config_file.with_file_name("mnemonic")
}

/// The places looked at, in order, after the environment. `credentials.yaml` (the bash tool's,
/// §2.3 of its description) holds it under `threefold.mnemonic`; the others hold the phrase.
pub fn files(settings: &Settings) -> Vec<PathBuf> {
    let mut files = vec![
        stored_file(settings),
        crate::credentials::credentials_file(&settings.config_file),
    ];
    if let Some(home) = settings.env.home() {
        files.push(home.join(".config/threefold/mnemonic"));
    }
    files.push(PathBuf::from(".tfgrid-mnemonic"));
    files
}

/// Where the mnemonic would come from, without reading it.
pub fn source(settings: &Settings) -> Option<Source> {
    if settings.env.get(ENV_VAR).is_some() {
        return Some(Source::Env(ENV_VAR.into()));
    }
    files(settings)
        .into_iter()
        .find(|p| read_phrase(p).is_ok_and(|t| t.is_some()))
        .map(Source::Config)
}

/// The phrase a file holds, `None` when it is missing or holds none.
///
/// Errors: an unreadable file; a `credentials.yaml` that does not parse.
fn read_phrase(path: &Path) -> Result<Option<String>> {
    if path.file_name() == Some(crate::credentials::CREDENTIALS_FILE.as_ref()) {
        let creds = crate::credentials::Credentials::load(path)?;
        return Ok(creds.mnemonic().map(String::from));
    }
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text)),
        Ok(_) => Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(UserError::new(
            format!("cannot read `{}`: {err}", path.display()),
            "fix its permissions, or remove it",
        )
        .into()),
    }
}

/// The warning for a mnemonic file other users can read.
pub fn too_open_warning(path: &Path) -> String {
    format!(
        "`{}` is readable by other users; run `chmod 600 {}`",
        path.display(),
        path.display()
    )
}

/// A loaded mnemonic and where it came from.
pub struct Loaded {
    pub phrase: String,
    pub source: Source,
    /// The file is readable by other users.
    pub too_open: bool,
}

/// The first mnemonic found, validated. `Ok(None)` when there is none anywhere.
pub fn load(settings: &Settings) -> Result<Option<Loaded>> {
    let found = if let Some(text) = settings.env.get(ENV_VAR) {
        Some(Loaded {
            phrase: text.to_string(),
            source: Source::Env(ENV_VAR.into()),
            too_open: false,
        })
    } else {
        let mut found = None;
        for path in files(settings) {
            if let Some(text) = read_phrase(&path)? {
                use std::os::unix::fs::PermissionsExt as _;
                let too_open = path
                    .metadata()
                    .is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
                found = Some(Loaded {
                    phrase: text,
                    source: Source::Config(path),
                    too_open,
                });
                break;
            }
        }
        found
    };
    let Some(mut loaded) = found else {
        return Ok(None);
    };
    loaded.phrase = normalize(&loaded.phrase);
    if let Err(problem) = validate(&loaded.phrase) {
        let (at, fix) = match &loaded.source {
            Source::Env(var) => (
                format!("${var}"),
                format!("set {var} to your 12 or 24 words, or unset it"),
            ),
            Source::Config(path) => (
                format!("`{}`", path.display()),
                "run `tfgrid-compose signin` to store a valid one".to_string(),
            ),
            _ => ("the mnemonic".into(), "run `tfgrid-compose signin`".into()),
        };
        return Err(
            UserError::new(format!("the mnemonic in {at} is not valid: {problem}"), fix).into(),
        );
    }
    crate::secrets::register(&loaded.phrase);
    Ok(Some(loaded))
}

/// Writes the phrase to `path`, 0600 in a 0700 folder, replacing any previous one atomically.
pub fn store(path: &Path, phrase: &str) -> Result<()> {
    let dir = path.parent().context("the mnemonic file has no folder")?;
    crate::files::create_private_dir(dir)?;
    crate::files::write_atomic(path, format!("{}\n", normalize(phrase)).as_bytes(), 0o600)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn bip39_phrases() {
        // Test vectors of the BIP-39 specification.
        assert_eq!(
            validate(
                "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                    abandon about"
            ),
            Ok(12)
        );
        assert_eq!(
            validate(
                "  Legal winner thank year wave sausage worth useful legal winner thank yellow\n"
            ),
            Ok(12)
        );
        let err = validate(
            "abandon abandon abandon abandon abandon abandon abandon abandon \
            abandon abandon abandon abandon",
        )
        .unwrap_err();
        assert!(err.contains("checksum"), "{err}");
        let err = validate(
            "abandon abandon abandon abandon abandon abandon abandon abandon \
            abandon abandon abandon zzzq",
        )
        .unwrap_err();
        assert!(err.contains("word 12") && !err.contains("zzzq"), "{err}");
        assert!(validate("abandon about").unwrap_err().contains("2 words"));
    }
}
