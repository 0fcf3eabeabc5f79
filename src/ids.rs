//! Random ids and tokens from the kernel, and SHA-256 digests as hex.

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
