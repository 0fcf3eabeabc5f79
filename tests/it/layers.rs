//! The import rules of ARCHITECTURE.md, checked on the source: no module imports from a layer
//! above its own, and no import circle between files of different modules (the files of one
//! module folder, a `mod.rs` and its children, may use each other). An import is any `crate::a::b` path
//! outside comments and unit tests, a `use child::…` of a child module, or a `super::…` path;
//! it is resolved to the longest module path that is a file (`a/b.rs`, `a/b/mod.rs`).
//!
//! `cargo test --test it layers -- --nocapture` prints the layers, file sizes and the share of
//! doc comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// ARCHITECTURE.md's layers, bottom up: a module may import its own layer and those below.
/// `ai` (the AI stack's services, run on the VMs) sits between the runner and the inputs: it
/// uses layers 1–2 only. Every module's layer is its first path segment's: no exemption.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "1 leaves",
        &[
            "clock",
            "ids",
            "secrets",
            "files",
            "host",
            "error",
            "output",
            "interrupt",
            "yaml",
            "env",
            "stack",
        ],
    ),
    ("2 runner and tools", &["process", "tools"]),
    ("2.5 AI-stack services", &["ai"]),
    (
        "3 inputs and records",
        &[
            "settings",
            "manifest",
            "app_folder",
            "app_env",
            "env_file",
            "credentials",
            "ssh_key",
            "pattern",
            "state",
            "registry",
            "grid",
            "catalog",
            "ci_event",
            "cost",
        ],
    ),
    ("4 phases and the simulator", &["phase", "sim"]),
    ("5 commands", &["ops", "dashboard"]),
    ("6 command line", &["cli"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Module path (`ops::up`, `state`) → file.
pub(crate) fn modules() -> BTreeMap<String, PathBuf> {
    let mut files = Vec::new();
    crate::grid::all_files(&src(), &mut files);
    let mut modules = BTreeMap::new();
    for file in files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let rel = file.strip_prefix(src()).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] {
            continue;
        }
        modules.insert(parts.join("::"), file);
    }
    modules
}

/// The code of a file without comments and without its `#[cfg(test)]` part.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn resolve(modules: &BTreeMap<String, PathBuf>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains_key(m))
}

/// Paths after `prefix` in `text`: `crate::a::b::{c, d::e}` gives `a::b::c`, `a::b::d::e`.
fn paths_after(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        if text[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let base = rest[..end].trim_end_matches(':').to_string();
        if rest[end..].starts_with('{') && rest[..end].ends_with("::") {
            let inner = &rest[end + 1..rest[end..].find('}').map_or(rest.len(), |i| end + i)];
            for item in inner.split(',') {
                let word = item.split_whitespace().next().unwrap_or_default();
                if !word.is_empty() {
                    out.push(format!("{base}::{word}"));
                }
            }
        } else {
            out.push(base);
        }
    }
    out
}

fn edges(modules: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in modules {
        let text = code(file);
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut targets = paths_after(&text, "crate::");
        // `use schema::X` / `pub use lock::Y` of a child module
        for line in text.lines() {
            let line = line.trim_start();
            let line = line
                .strip_prefix("pub(crate) ")
                .or_else(|| line.strip_prefix("pub "))
                .unwrap_or(line);
            if let Some(rest) = line.strip_prefix("use ") {
                let first = rest.split("::").next().unwrap_or_default();
                if !matches!(first, "crate" | "super" | "self" | "std") {
                    targets.push(format!("{module}::{first}"));
                }
            }
        }
        for path in paths_after(&text, "super::") {
            // `super` of `a::b` (a/b.rs or a/b/mod.rs) is `a`.
            targets.push(if parent.is_empty() {
                path
            } else {
                format!("{parent}::{path}")
            });
        }
        let set = edges.entry(module.clone()).or_default();
        for target in targets {
            if let Some(to) = resolve(modules, &target).filter(|t| t != module) {
                set.insert(to);
            }
        }
    }
    edges
}

/// Strongly connected components with more than one file (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &str) {
            self.index.insert(v.into(), self.next);
            self.low.insert(v.into(), self.next);
            self.next += 1;
            self.stack.push(v.into());
            self.on.insert(v.into());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v.into(), low);
                } else if self.on.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v.into(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(&w);
                    let done = w == v;
                    component.push(w);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

/// The layer of a module: its first path segment's.
fn layer(module: &str) -> Option<usize> {
    let key = module.split("::").next().unwrap_or(module);
    LAYERS.iter().position(|(_, names)| names.contains(&key))
}

#[test]
fn no_module_imports_upward_and_no_import_circle_remains() {
    let modules = modules();
    let edges = edges(&modules);
    let mut upward = Vec::new();
    for (from, targets) in &edges {
        let Some(own) = layer(from) else {
            upward.push(format!(
                "{from} is in no layer (add it to LAYERS and ARCHITECTURE.md)"
            ));
            continue;
        };
        for to in targets {
            let Some(theirs) = layer(to) else { continue };
            let ai_service = own == 2 && from.starts_with("ai::");
            // the services use layers 1–2 and each other, not the inputs
            let bad = theirs > own && !(ai_service && to.starts_with("ai::"));
            if bad {
                upward.push(format!(
                    "{from} ({}) imports {to} ({})",
                    LAYERS[own].0, LAYERS[theirs].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against ARCHITECTURE.md's layers:\n{}",
        upward.join("\n")
    );
    // Files of one module folder (`pattern/mod.rs` and `pattern/compat/…`) may use each other,
    // as Rust's nesting does; a circle that leaves the folder is refused.
    let circles: Vec<Vec<String>> = circles(&edges)
        .into_iter()
        .filter(|c| {
            let top = |m: &String| m.split("::").next().unwrap_or_default().to_string();
            c.iter().any(|m| top(m) != top(&c[0]))
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other in a circle:\n{}",
        circles
            .iter()
            .map(|c| c.join(" → "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The checker sees a circle when there is one (so a pass above means something).
#[test]
fn the_circle_check_finds_a_planted_circle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    edges.entry("c".into()).or_default().insert("a".into());
    edges.entry("d".into()).or_default().insert("a".into());
    assert_eq!(circles(&edges), [vec!["a", "b", "c"]]);
    assert_eq!(
        paths_after("use crate::state::{Phase, StateDir};", "crate::"),
        ["state::Phase", "state::StateDir"]
    );
}

/// Sizes and doc share, for the record (`--nocapture`).
#[allow(clippy::print_stdout, reason = "a report for the person running it")]
#[test]
fn report_layers_and_sizes() {
    let modules = modules();
    let mut lines: Vec<usize> = Vec::new();
    let (mut code_lines, mut doc_lines) = (0usize, 0usize);
    for file in modules.values() {
        let text = std::fs::read_to_string(file).unwrap();
        lines.push(text.lines().count());
        for line in text.lines().map(str::trim_start).filter(|l| !l.is_empty()) {
            if line.starts_with("///") || line.starts_with("//!") {
                doc_lines += 1;
            } else {
                code_lines += 1;
            }
        }
    }
    lines.sort_unstable();
    let at = |q: f64| lines[((lines.len() - 1) as f64 * q).round() as usize];
    println!(
        "{} files; lines per file: median {}, p90 {}, max {}; doc comments {:.1}% of non-blank lines",
        lines.len(),
        at(0.5),
        at(0.9),
        lines.last().unwrap(),
        100.0 * doc_lines as f64 / (doc_lines + code_lines) as f64
    );
    for (name, members) in LAYERS {
        println!("{name}: {}", members.join(", "));
    }
    assert!(lines.len() > 10);
}
