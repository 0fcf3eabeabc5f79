//! What a child printed, read back within fixed bounds whatever it printed: the last meaningful
//! lines of its log for an error (the log's last 64 KiB, decoded lossily, secrets redacted after
//! decoding, ANSI codes, carriage-return redraws and blank lines dropped), the secrets it printed
//! replaced in its log in streaming passes of 1 MiB, and its captured stdout kept up to
//! [`CAPTURE_LIMIT`]. Owns no process: `process.rs` calls these after the child ended.

use std::cmp::Reverse;
use std::fs::File;
use std::io::{BufWriter, Read, Seek as _, SeekFrom, Write};
use std::path::Path;

use memchr::memmem::Finder;

use crate::secrets::REDACTED;

/// Bytes read from the end of a log for an error's tail.
const TAIL_BYTES: u64 = 64 * 1024;
/// Lines an error quotes.
const TAIL_LINES: usize = 20;
/// Characters kept of one quoted line.
const LINE_CHARS: usize = 400;
/// Bytes read at a time when a log is scanned for secrets.
const CHUNK: usize = 1 << 20;
/// Bytes of a captured stdout kept (`tofu output -json` of a large deployment is a few hundred
/// KiB); a command that prints more fails rather than fill the memory.
pub const CAPTURE_LIMIT: u64 = 16 * 1024 * 1024;

/// The last meaningful lines of the log at `path` (empty when it cannot be read), `secrets`
/// replaced.
pub(super) fn tail(path: &Path, secrets: &[String]) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let start = file
        .metadata()
        .map_or(0, |m| m.len().saturating_sub(TAIL_BYTES));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(TAIL_BYTES).read_to_end(&mut bytes).is_err()
    {
        return String::new();
    }
    if start > 0
        && let Some(newline) = memchr::memchr(b'\n', &bytes)
    {
        // The first line read is the end of a longer one.
        bytes.drain(..=newline);
    }
    meaningful_lines(&bytes, secrets)
}

/// The last [`TAIL_LINES`] lines of `bytes` that show something: decoded lossily, `secrets`
/// replaced, ANSI escape sequences and other control characters dropped, a line redrawn with
/// `\r` taken as its last drawing, blank lines skipped, each cut at [`LINE_CHARS`].
pub(super) fn meaningful_lines(bytes: &[u8], secrets: &[String]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = crate::secrets::redact_in(&text, secrets).unwrap_or_else(|| text.into_owned());
    let plain = anstream::adapter::strip_str(&text).to_string();
    let lines: Vec<String> = plain
        .lines()
        .filter_map(|line| {
            let drawn = line.rsplit('\r').find(|part| !part.trim().is_empty())?;
            let shown: String = drawn
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            let shown = shown.trim_end();
            if shown.trim().is_empty() {
                return None;
            }
            Some(match shown.char_indices().nth(LINE_CHARS) {
                Some((cut, _)) => format!("{}…", &shown[..cut]),
                None => shown.to_string(),
            })
        })
        .collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Replaces every one of `secrets` in the log at `path`: a scan first (nothing is written when
/// the log holds none), then a copy through a temp file beside it, renamed over it.
///
/// Errors: the log cannot be read, or the copy cannot be written (a full disk).
pub(super) fn redact_file(path: &Path, secrets: &[String]) -> std::io::Result<()> {
    if secrets.is_empty() || !replace_stream(File::open(path)?, None, secrets)? {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir)?;
    let mut out = BufWriter::new(temp);
    replace_stream(File::open(path)?, Some(&mut out), secrets)?;
    let temp = out
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    temp.persist(path)?;
    Ok(())
}

/// Copies `reader` to `out` with every one of `secrets` replaced by [`REDACTED`], a chunk at a
/// time; without `out`, stops at the first secret. Returns whether any was found.
fn replace_stream(
    mut reader: impl Read,
    mut out: Option<&mut dyn Write>,
    secrets: &[String],
) -> std::io::Result<bool> {
    let finders: Vec<Finder<'_>> = secrets.iter().map(|s| Finder::new(s.as_bytes())).collect();
    // A secret that starts this close to the end of the buffer may go on in the next chunk.
    let keep = secrets.iter().map(String::len).max().unwrap_or(1) - 1;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + keep);
    let mut found = false;
    loop {
        let old = buf.len();
        buf.resize(old + CHUNK, 0);
        let mut filled = old;
        let mut end = false;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        let limit = if end {
            buf.len()
        } else {
            buf.len().saturating_sub(keep)
        };
        let mut at = 0;
        loop {
            let hit = finders
                .iter()
                .filter_map(|f| f.find(&buf[at..]).map(|i| (at + i, f.needle().len())))
                .filter(|(start, _)| *start < limit)
                .min_by_key(|(start, len)| (*start, Reverse(*len)));
            let Some(out) = out.as_mut() else {
                if hit.is_some() {
                    return Ok(true);
                }
                at = limit.max(at);
                break;
            };
            if let Some((start, len)) = hit {
                found = true;
                out.write_all(&buf[at..start])?;
                out.write_all(REDACTED.as_bytes())?;
                at = start + len;
            } else {
                let stop = limit.max(at);
                out.write_all(&buf[at..stop])?;
                at = stop;
                break;
            }
        }
        buf.drain(..at);
        if end {
            if let Some(out) = out {
                out.write_all(&buf)?;
                out.flush()?;
            }
            return Ok(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{meaningful_lines, replace_stream};

    #[test]
    fn a_secret_across_chunks_is_replaced_and_the_rest_kept_byte_for_byte() {
        let secret = "word-word-word-word".to_string();
        let mut text = vec![b'x'; super::CHUNK - 5];
        text.extend_from_slice(secret.as_bytes());
        text.extend_from_slice(b"\xff tail ");
        text.extend_from_slice(secret.as_bytes());
        let mut out = Vec::new();
        let found = replace_stream(&text[..], Some(&mut out), &[secret]).unwrap();
        assert!(found);
        let mut want = vec![b'x'; super::CHUNK - 5];
        want.extend_from_slice(b"<redacted>\xff tail <redacted>");
        assert_eq!(out, want);
    }

    #[test]
    fn the_tail_shows_the_last_lines_that_say_something() {
        let printed = b"\x1b[1mfirst\x1b[0m\nsecret-token-1234 bad\xffbyte\n\n\x1b[0m\n  \nwait 1%\rwait 100%\r\n";
        let tail = meaningful_lines(printed, &["secret-token-1234".to_string()]);
        assert_eq!(tail, "first\n<redacted> bad\u{fffd}byte\nwait 100%");
    }
}
