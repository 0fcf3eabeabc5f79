//! A user's ssh private key, looked at before anything is created: whether a passphrase locks
//! it, its public half, and whether the ssh-agent at `SSH_AUTH_SOCK` holds it. `up` runs ssh in
//! batch mode (no prompt can be answered in CI or under a spinner), so a locked key works only
//! through an agent; [`check`] says so in `validate`. Reads files and talks to the agent's
//! socket; never reads a passphrase and never spawns a process. Start from [`check`].

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::env::Env;
use crate::error::UserError;

/// The public key file beside a private key: `KEY.pub` (ssh-keygen appends `.pub`; it does not
/// replace an extension).
pub fn public_key_file(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// What the private key file says about itself without its passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// A passphrase is needed to use it.
    pub locked: bool,
    /// The public key blob (the wire form an agent lists), when the file carries it.
    pub public_blob: Option<Vec<u8>>,
}

/// Reads a private key's text: OpenSSH's own format (`openssh-key-v1`, PROTOCOL.key in OpenSSH:
/// the cipher name is `none` unless a passphrase locks it, and the public keys are stored in the
/// clear) or PEM (`Proc-Type: 4,ENCRYPTED`, or PKCS#8's `ENCRYPTED PRIVATE KEY`). `None` for a
/// text in neither format.
pub fn read_key_file(text: &str) -> Option<KeyFile> {
    const OPENSSH: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    if let Some(start) = text.find(OPENSSH) {
        let body: String = text[start + OPENSSH.len()..]
            .lines()
            .take_while(|line| !line.starts_with("-----END"))
            .collect::<String>()
            .split_whitespace()
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        let mut rest = bytes.strip_prefix(b"openssh-key-v1\0")?;
        let cipher = take_string(&mut rest)?;
        let _kdf = take_string(&mut rest)?;
        let _kdf_options = take_string(&mut rest)?;
        let count = take_u32(&mut rest)?;
        let public_blob = if count >= 1 {
            Some(take_string(&mut rest)?.to_vec())
        } else {
            None
        };
        return Some(KeyFile {
            locked: cipher != b"none",
            public_blob,
        });
    }
    if text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----") {
        return Some(KeyFile {
            locked: text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
                || text.contains("Proc-Type: 4,ENCRYPTED"),
            public_blob: None,
        });
    }
    None
}

fn take_u32(rest: &mut &[u8]) -> Option<u32> {
    let (head, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(u32::from_be_bytes(*head))
}

fn take_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_u32(rest)?).ok()?;
    if rest.len() < len {
        return None;
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Some(head)
}

/// The blob of a public key file's first line (`TYPE BASE64 [COMMENT]`).
fn public_blob_of(text: &str) -> Option<Vec<u8>> {
    let encoded = text.lines().next()?.split_whitespace().nth(1)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

/// The public key blobs the agent at `socket` holds (the agent protocol's
/// `SSH_AGENTC_REQUEST_IDENTITIES` = 11, answered by `SSH_AGENT_IDENTITIES_ANSWER` = 12;
/// draft-miller-ssh-agent §4.4).
///
/// Errors: the socket cannot be reached, or the answer is not the protocol's, as a sentence.
pub fn agent_keys(socket: &Path) -> Result<Vec<Vec<u8>>, String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach the ssh-agent at `{}`: {e}", socket.display()))?;
    let limit = Some(Duration::from_secs(5));
    let unanswered = |e: std::io::Error| format!("the ssh-agent did not answer: {e}");
    stream.set_read_timeout(limit).map_err(unanswered)?;
    stream.set_write_timeout(limit).map_err(unanswered)?;
    stream.write_all(&[0, 0, 0, 1, 11]).map_err(unanswered)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(unanswered)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 1 << 20 {
        return Err("the ssh-agent's answer is too long".into());
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).map_err(unanswered)?;
    let strange = || "the ssh-agent's answer is not a list of keys".to_string();
    let (&kind, mut rest) = body.split_first().ok_or_else(strange)?;
    if kind != 12 {
        return Err(strange());
    }
    let count = take_u32(&mut rest).ok_or_else(strange)?;
    (0..count)
        .map(|_| {
            let blob = take_string(&mut rest).ok_or_else(strange)?.to_vec();
            take_string(&mut rest).ok_or_else(strange)?;
            Ok(blob)
        })
        .collect()
}

/// Checks that ssh can use the private key `key` (named by the setting `setting`) without a
/// prompt: it exists with its `.pub` beside it, and either no passphrase locks it or the
/// ssh-agent at `SSH_AUTH_SOCK` holds it.
///
/// Errors: one line naming the key and what is wrong, with the fix as the hint.
pub fn check(env: &Env, key: &Path, setting: &str) -> Result<(), UserError> {
    let text = std::fs::read(key).map_err(|e| {
        UserError::new(
            format!(
                "cannot read the ssh key `{}` ({setting}): {e}",
                key.display()
            ),
            format!("point {setting} at a private key this user can read"),
        )
    })?;
    let public_file = public_key_file(key);
    let public = std::fs::read_to_string(&public_file).ok();
    if public.is_none() {
        return Err(UserError::new(
            format!(
                "the ssh key `{}` ({setting}) has no public key `{}` beside it",
                key.display(),
                public_file.display()
            ),
            format!(
                "write it with `ssh-keygen -y -f {} > {}`",
                crate::process::display_word(&key.display().to_string()),
                crate::process::display_word(&public_file.display().to_string())
            ),
        ));
    }
    let Some(file) = read_key_file(&String::from_utf8_lossy(&text)) else {
        // a format we do not read (a hardware token's stub, PuTTY): ssh judges it
        return Ok(());
    };
    if !file.locked {
        return Ok(());
    }
    let blob = file
        .public_blob
        .or_else(|| public.as_deref().and_then(public_blob_of));
    let held = match env.get("SSH_AUTH_SOCK") {
        None => Err("no ssh-agent is running (SSH_AUTH_SOCK is not set)".to_string()),
        Some(socket) => agent_keys(Path::new(socket)).and_then(|keys| {
            if blob.as_ref().is_some_and(|b| keys.contains(b)) {
                Ok(())
            } else {
                Err("the ssh-agent does not hold it".to_string())
            }
        }),
    };
    held.map_err(|why| {
        UserError::new(
            format!(
                "the ssh key `{}` ({setting}) is locked by a passphrase and {why}; ssh runs in \
                    batch mode and cannot ask for the passphrase",
                key.display()
            ),
            format!(
                "load it into an agent (`eval \"$(ssh-agent)\"` then `ssh-add {}`), or point \
                    {setting} at a key without a passphrase",
                crate::process::display_word(&key.display().to_string())
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{public_blob_of, public_key_file, read_key_file};

    /// A new ed25519 key from the real ssh-keygen, with `passphrase` (empty: none).
    fn keygen(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
        let key = dir.join(name);
        #[expect(
            clippy::disallowed_methods,
            reason = "test reads keys exactly as ssh-keygen writes them"
        )]
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-C", "t", "-N", passphrase, "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen is installed (scripts/install-deps.sh)");
        assert!(status.success());
        key
    }

    #[test]
    fn public_key_file_appends_pub() {
        assert_eq!(
            public_key_file("/k/deploy.key".as_ref()),
            PathBuf::from("/k/deploy.key.pub")
        );
    }

    #[test]
    fn a_key_file_says_whether_it_is_locked_and_carries_its_public_half() {
        let dir = tempfile::tempdir().unwrap();
        for (name, passphrase, locked) in [("open", "", false), ("locked", "secret words", true)] {
            let key = keygen(dir.path(), name, passphrase);
            let file = read_key_file(&std::fs::read_to_string(&key).unwrap()).unwrap();
            assert_eq!(file.locked, locked, "{name}");
            let public = std::fs::read_to_string(public_key_file(&key)).unwrap();
            assert_eq!(file.public_blob, public_blob_of(&public), "{name}");
        }
        assert!(read_key_file("not a key").is_none());
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n";
        assert!(read_key_file(pem).unwrap().locked);
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n";
        assert!(!read_key_file(pem).unwrap().locked);
    }
}
