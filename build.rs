//! Embeds `patterns/` in the binary (so `cargo install` users have them): generates a table of
//! (relative path, unix mode, bytes) and a content hash that names the extraction folder. Compiles
//! the Terraform plugin protocol (`proto/`) for the grid simulator's provider, with `protox`
//! (pure Rust: no `protoc` on the build machine).
// A build script reads what cargo sets in its environment; the crate's rule is for the binary.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("patterns/ is readable")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || name == "terraform.tfstate" {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)
        } else {
            out.push(path)
        }
    }
}

fn protocols() {
    let files = ["proto/tfplugin5.2.proto", "proto/plugin.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"]).expect("proto/ compiles");
    tonic_prost_build::configure()
        .build_client(false)
        .compile_fds(descriptors)
        .expect("tonic code generation");
}

fn main() {
    protocols();
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("patterns");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut table = String::from("&[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(&root)
            .expect("inside patterns/")
            .to_string_lossy()
            .into_owned();
        let mode = std::fs::metadata(file)
            .expect("readable")
            .permissions()
            .mode()
            & 0o777;
        for byte in rel
            .bytes()
            .chain(std::fs::read(file).expect("readable"))
            .chain(mode.to_le_bytes())
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let _ = writeln!(
            table,
            "    ({rel:?}, 0o{mode:o}, include_bytes!({:?}) as &[u8]),",
            file.display().to_string()
        );
    }
    table.push(']');
    let code = format!(
        "/// Every file under `patterns/`: path, mode, contents.\npub(super) static FILES: &[(&str, u32, &[u8])] = {table};\n/// Hash of all of them.\npub(super) const HASH: &str = \"{hash:016x}\";\n"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_patterns.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
