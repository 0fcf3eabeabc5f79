//! The code maps (ARCHITECTURE.md's table and `lib.rs`'s `//!`) against the tree: every file
//! and module path they name exists, every item `module::Item` they name is defined or
//! re-exported there, and every source file and integration-test module is named in
//! ARCHITECTURE.md, so neither map can keep a name that is gone or leave a file out.

use std::path::{Path, PathBuf};

use crate::layers::modules;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rows of ARCHITECTURE.md's code map: (paths of the first cell, text of the second).
fn rows() -> Vec<(Vec<String>, String)> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let map = text
        .split("## Code map")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    map.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            (ticked(cells[0]), cells[1..].join(" | "))
        })
        .collect()
}

/// The backticked words of a text.
fn ticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every file below `dir` (recursively).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    crate::grid::all_files(dir, &mut files);
    files
}

/// Backticked names that no longer exist: a row's own paths; `name.rs`, `name.json`, `name.sh`
/// or `name/` in the row of a folder, somewhere below it; `module::Item` paths of the crate.
fn missing_names(rows: &[(Vec<String>, String)], lib_map: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for (paths, text) in rows {
        for path in paths {
            if !root().join(path).exists() {
                missing.push(format!("{path} (a row of ARCHITECTURE.md)"));
            }
        }
        let Some(folder) = paths.iter().find(|p| p.ends_with('/')) else {
            continue;
        };
        let below = files_below(&root().join(folder));
        for name in ticked(text) {
            let file_like = [".rs", ".json", ".sh", ".md", ".py"]
                .iter()
                .any(|ext| name.ends_with(ext))
                && !name.contains(' ');
            let dir_like = name.ends_with('/') && !name.contains(' ') && !name.starts_with('.');
            let elsewhere = root().join(&name).exists() || root().join("src").join(&name).exists();
            let found = if name.contains('*') || elsewhere {
                true
            } else if file_like {
                below.iter().any(|f| f.ends_with(&name))
            } else if dir_like {
                below.iter().any(|f| {
                    f.parent()
                        .is_some_and(|p| p.ends_with(name.trim_end_matches('/')))
                })
            } else {
                true
            };
            if !found {
                missing.push(format!("{name} (in the row of {folder})"));
            }
        }
    }
    for (paths, text) in rows {
        for name in ticked(text).into_iter().filter(|n| is_type_name(n)) {
            if !paths.iter().any(|p| defines_below(&root().join(p), &name)) {
                missing.push(format!(
                    "{name} (a type the row of {} names)",
                    paths.join(", ")
                ));
            }
        }
    }
    // lib.rs maps phases and files to modules: what follows an arrow names a module.
    let after_arrows: String = lib_map
        .lines()
        .filter_map(|l| l.split_once('→').map(|(_, after)| after))
        .collect::<Vec<_>>()
        .join("\n");
    for name in ticked(&after_arrows) {
        let module = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if module && !modules().contains_key(&name) {
            missing.push(format!("{name} (a module lib.rs names)"));
        }
    }
    let all_text: String = rows
        .iter()
        .map(|(_, t)| t.as_str())
        .chain([lib_map])
        .collect();
    for name in ticked(&all_text) {
        if let Some(problem) = unknown_item(&name) {
            missing.push(problem);
        }
    }
    missing.sort();
    missing.dedup();
    missing
}

/// `module::…::Item` of the crate: the module must be a file, and `Item` defined in it or
/// re-exported by it; `None` for a word that is no crate path or that resolves.
fn unknown_item(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split("::").collect();
    let word = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if parts.len() < 2 || !parts.iter().all(word) {
        return None;
    }
    let modules = modules();
    if !modules
        .keys()
        .any(|m| m.split("::").next() == Some(parts[0]))
    {
        return None;
    }
    let Some(n) = (1..=parts.len())
        .rev()
        .find(|n| modules.contains_key(&parts[..*n].join("::")))
    else {
        return Some(format!("{name}: no module `{}`", parts[0]));
    };
    let item = parts.get(n)?;
    let file = &modules[&parts[..n].join("::")];
    let code = std::fs::read_to_string(file).unwrap();
    let defined = code.lines().any(|line| {
        let line = line.trim_start();
        let declares = [
            "fn ", "struct ", "enum ", "const ", "static ", "mod ", "trait ", "type ",
        ]
        .iter()
        .any(|kw| {
            line.split_once(kw).is_some_and(|(before, after)| {
                before
                    .split_whitespace()
                    .all(|w| w.starts_with("pub") || w == "async" || w == "unsafe")
                    && after.starts_with(item)
                    && !after[item.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        });
        declares || line.starts_with(&format!("macro_rules! {item}"))
    }) || reexports(&code, item);
    (!defined).then(|| format!("{name}: no `{item}` in {}", file.display()))
}

/// `Phase`, `StateDir`: a word that names a type.
fn is_type_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && name.chars().any(|c| c.is_ascii_lowercase())
}

/// Whether a file at or below `path` defines (or re-exports) the type `name`.
fn defines_below(path: &Path, name: &str) -> bool {
    let files = if path.is_dir() {
        files_below(path)
    } else {
        vec![path.to_path_buf()]
    };
    files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .any(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .any(|line| {
                    let line = line.trim_start();
                    ["struct ", "enum ", "trait ", "type "].iter().any(|kw| {
                        line.starts_with(&format!("pub {kw}{name}"))
                            || line.starts_with(&format!("pub(crate) {kw}{name}"))
                    })
                })
                || reexports(&std::fs::read_to_string(f).unwrap_or_default(), name)
        })
}

/// Whether a `pub use …;` of `code` (on one line or several) re-exports `name`.
fn reexports(code: &str, name: &str) -> bool {
    code.split(';')
        .map(str::trim_start)
        .filter(|statement| statement.starts_with("pub use"))
        .any(|statement| {
            statement
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|w| w == name)
        })
}

/// `lib.rs`'s code map: its leading `//!` lines.
fn lib_map() -> String {
    std::fs::read_to_string(root().join("src/lib.rs"))
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_code_maps_name_only_what_exists() {
    let missing = missing_names(&rows(), &lib_map());
    assert!(
        missing.is_empty(),
        "the code maps name what does not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn architecture_md_names_every_source_file_and_test_module() {
    let rows = rows();
    // A file is named by its path, or in its folder's row by its name or stem (`tofu`).
    let named = |file: &Path| {
        let rel = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        rows.iter().any(|(paths, text)| {
            paths.iter().any(|p| {
                *p == rel
                    || (p.ends_with('/')
                        && rel.starts_with(p.as_str())
                        && (rel.ends_with("/mod.rs")
                            || ticked(text)
                                .iter()
                                .any(|t| rel.ends_with(t.as_str()) || *t == stem)))
            })
        })
    };
    let mut unnamed: Vec<String> = files_below(&root().join("src"))
        .into_iter()
        .chain(files_below(&root().join("tests/it")))
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .filter(|f| !f.ends_with("src/lib.rs") && !f.ends_with("tests/it/main.rs"))
        .filter(|f| !named(f))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    unnamed.sort();
    assert!(
        unnamed.is_empty(),
        "files ARCHITECTURE.md's code map does not name:\n{}",
        unnamed.join("\n")
    );
}

/// The checks see a planted stale name (so a pass above means something).
#[test]
fn a_stale_name_in_a_code_map_is_found() {
    let rows = vec![(
        vec!["src/ops/".to_string()],
        "`up.rs` (…, `UpOptions`), `vanished.rs`, `gone/`, `Phase`".to_string(),
    )];
    let missing = missing_names(
        &rows,
        "//! - up → `ops::up::validate`, `state::Nope`, `nomodule::x`, `contract`",
    );
    assert_eq!(missing.len(), 5, "{missing:#?}");
    assert!(missing.iter().any(|m| m.starts_with("Phase (a type")));
    assert!(missing.iter().any(|m| m.starts_with("contract (a module")));
    assert!(missing.iter().any(|m| m.starts_with("vanished.rs")));
    assert!(missing.iter().any(|m| m.starts_with("gone/")));
    assert!(missing.iter().any(|m| m.starts_with("state::Nope")));
}
