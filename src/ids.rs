//! Random ids and tokens from the kernel, SHA-256 digests as hex, and the one shape of a
//! deployment id: [`is_deployment_id`] checks it where a file gives one, [`ShortId`] is its
//! 8-character form (tables, messages, interface and network names, the local pattern's VMs).

/// `n` random bytes from the kernel, as hex (ids, and the AI stack's tokens, which must not fall
/// back to anything weaker).
pub fn random_hex(n: usize) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The SHA-256 of `data` (through `ring`), as 64 lowercase hex digits.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh random id of 16 hex digits (deployments, AI-stack projects).
pub fn new_id() -> String {
    random_hex(8)
        .ok()
        .filter(|hex| hex != "0000000000000000")
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!(
                "{:016x}",
                u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(1)
                    ^ u64::from(std::process::id())
            )
        })
}

/// Whether `id` has the shape [`new_id`] makes: 16 lowercase hex digits. Every id read from a
/// file (`state.yaml`, a registry entry, the context file) is checked with this before it names a
/// file or a folder.
pub fn is_deployment_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The first [`ShortId::LEN`] characters of an id: how a deployment (or an AI-stack project) is
/// named to people, in `tfgc<short>` interface names, in the bash tool's `<pattern>_net_<short>`
/// and in the local pattern's VM folder (`substr(var.deployment_id, 0, 8)` in
/// `patterns/local/infrastructure/main.tf`). A shorter id is kept whole and a cut never falls
/// inside a character, so a hand-edited id cannot make it panic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortId(String);

impl ShortId {
    /// Characters kept.
    pub const LEN: usize = 8;

    pub fn of(id: &str) -> ShortId {
        ShortId(id.chars().take(Self::LEN).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ShortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<std::path::Path> for ShortId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{ShortId, is_deployment_id, new_id};

    #[test]
    fn a_short_id_never_panics_whatever_the_id() {
        assert_eq!(ShortId::of("0123456789abcdef").as_str(), "01234567");
        assert_eq!(ShortId::of("abc").as_str(), "abc");
        assert_eq!(ShortId::of("").as_str(), "");
        // 8 bytes would cut the third euro sign in two.
        assert_eq!(ShortId::of("€€€€€€€€€€").as_str(), "€€€€€€€€");
    }

    #[test]
    fn new_ids_have_the_checked_shape() {
        assert!(is_deployment_id(&new_id()));
        for bad in [
            "",
            "abc",
            "0123456789ABCDEF",
            "../../etc/passwd",
            "0123456789abcdeg",
        ] {
            assert!(!is_deployment_id(bad), "{bad}");
        }
    }
}
