//! A generated project: the LLM's answer parsed strictly into files, the files checked (paths,
//! sizes), and the site served on 127.0.0.1 and fetched: index answers 200 and every local link
//! and asset exists. The problems found are what the fixer loop sends back to the LLM.

pub use super::spec::check_name;
use std::collections::BTreeMap;

use serde::Deserialize;

pub type Files = BTreeMap<String, String>;

pub const MAX_FILES: usize = 50;
pub const MAX_FILE_BYTES: usize = 256 * 1024;
pub const MAX_TOTAL_BYTES: usize = 2 * 1024 * 1024;

pub const SYSTEM_PROMPT: &str = "You write small static websites. Answer with one JSON object and nothing else: \
{\"files\": [{\"path\": \"index.html\", \"content\": \"...\"}, ...]}. Paths are relative (a-z, 0-9, '-', '_', '.', '/'), \
index.html is at the root, every link and asset is a relative path to a file you include (no build step, no external \
CDN needed), at most 50 files.";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    files: Vec<File>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    path: String,
    content: String,
}

/// Parses the answer: one JSON object `{"files": [{path, content}]}` (one surrounding ``` fence is
/// tolerated, nothing else), every path valid, sizes bounded, `index.html` present.
pub fn parse(answer: &str) -> Result<Files, Vec<String>> {
    let text = answer.trim();
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.trim_end().strip_suffix("```"))
        .unwrap_or(text);
    let parsed: Answer = serde_json::from_str(text.trim())
        .map_err(|e| vec![format!("the answer is not the required JSON object: {e}")])?;
    let mut problems = Vec::new();
    let mut files = Files::new();
    if parsed.files.len() > MAX_FILES {
        problems.push(format!("{} files; at most {MAX_FILES}", parsed.files.len()));
    }
    let mut total = 0;
    for file in parsed.files {
        if let Err(p) = check_path(&file.path) {
            problems.push(p);
            continue;
        }
        if file.content.len() > MAX_FILE_BYTES {
            problems.push(format!(
                "`{}` is {} bytes; at most {MAX_FILE_BYTES}",
                file.path,
                file.content.len()
            ));
        }
        total += file.content.len();
        if files.insert(file.path.clone(), file.content).is_some() {
            problems.push(format!("`{}` appears twice", file.path));
        }
    }
    if total > MAX_TOTAL_BYTES {
        problems.push(format!("{total} bytes in all; at most {MAX_TOTAL_BYTES}"));
    }
    if !files.contains_key("index.html") {
        problems.push("there is no index.html at the root".into());
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// A relative path inside the project: segments of `[a-zA-Z0-9._-]`, no `..`, no leading dot
/// segment, at most 200 characters.
pub fn check_path(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && path.len() <= 200
        && !path.starts_with('/')
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "path `{}` is not a relative path inside the project",
            path.escape_default()
        ))
    }
}

/// Local references (`href`, `src`) of an HTML file, resolved against its folder.
pub fn local_links(file: &str, html: &str) -> Vec<String> {
    let base: Vec<&str> = file
        .rsplit_once('/')
        .map(|(dir, _)| dir.split('/').collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for attr in ["href=", "src="] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let Some(end) = rest[1..].find(quote) else {
                break;
            };
            let link = &rest[1..=end];
            rest = &rest[end + 1..];
            let link = link.split(['#', '?']).next().unwrap_or("");
            if link.is_empty() || link.contains(':') || link.starts_with("//") {
                continue;
            }
            let mut parts: Vec<&str> = if link.starts_with('/') {
                Vec::new()
            } else {
                base.clone()
            };
            for seg in link.split('/') {
                match seg {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    s => parts.push(s),
                }
            }
            let mut path = parts.join("/");
            if path.is_empty() || link.ends_with('/') {
                path = if path.is_empty() {
                    "index.html".into()
                } else {
                    format!("{path}/index.html")
                };
            }
            out.push(path);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Serves the files on 127.0.0.1 and fetches `/` and every local link of every HTML file.
pub async fn serve_and_fetch(files: &Files) -> Vec<String> {
    use axum::extract::{Path, State};
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let shared = std::sync::Arc::new(files.clone());
    async fn get(
        State(files): State<std::sync::Arc<Files>>,
        path: Option<Path<String>>,
    ) -> axum::response::Response {
        let key = path.map_or("index.html".to_string(), |p| p.0);
        let key = if key.is_empty() || key.ends_with('/') {
            format!("{key}index.html")
        } else {
            key
        };
        match files.get(&key) {
            Some(body) => {
                ([(header::CONTENT_TYPE, content_type(&key))], body.clone()).into_response()
            }
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/", axum::routing::get(get))
        .route("/{*path}", axum::routing::get(get))
        .with_state(shared);
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => return vec![format!("cannot serve the site locally: {e}")],
    };
    let Ok(addr) = listener.local_addr() else {
        return vec!["cannot serve the site locally".into()];
    };
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let mut problems = Vec::new();
    let mut wanted = vec!["".to_string()];
    for (path, content) in files.iter().filter(|(p, _)| p.ends_with(".html")) {
        for link in local_links(path, content) {
            if !files.contains_key(&link) {
                problems.push(format!(
                    "`{path}` links to `{link}`, which is not in the project"
                ));
            } else {
                wanted.push(link);
            }
        }
    }
    wanted.sort();
    wanted.dedup();
    for path in wanted {
        match client.get(format!("http://{addr}/{path}")).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => problems.push(format!("GET /{path} answered {}", r.status())),
            Err(e) => problems.push(format!("GET /{path} failed: {}", e.without_url())),
        }
    }
    server.abort();
    problems
}

pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A URL-safe project name from a prompt: lower case words joined by `-`, at most 40 characters.
pub fn slug(prompt: &str) -> String {
    let words: Vec<String> = prompt
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| {
            ![
                "a", "an", "the", "with", "and", "for", "of", "to", "in", "my",
            ]
            .contains(&w.as_str())
        })
        .collect();
    let mut name = String::new();
    for w in words {
        if name.len() + w.len() + 1 > 40 {
            break;
        }
        if !name.is_empty() {
            name.push('-');
        }
        name.push_str(&w);
    }
    if name.is_empty() {
        "project".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::{check_name, local_links, parse, slug};

    #[test]
    fn answers_are_parsed_strictly() {
        let ok = parse(
            r#"```json
{"files": [{"path": "index.html", "content": "<a href=\"about/\">x</a>"}, {"path": "css/site.css", "content": "body{}"}]}
```"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert!(parse("Sure! Here is your site").unwrap_err()[0].contains("not the required JSON"));
        let bad = parse(r#"{"files": [{"path": "../etc/passwd", "content": ""}, {"path": "/abs", "content": ""}, {"path": "a/.git/x", "content": ""}]}"#)
            .unwrap_err();
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(parse(r#"{"files": [], "extra": 1}"#).is_err());
    }

    #[test]
    fn links_and_names() {
        let html = r##"<link href="css/a.css"><img src='../img/x.png'><a href="https://x.org/">x</a><a href="#top">t</a><a href="about/">a</a><a href="mailto:a@b">m</a>"##;
        assert_eq!(
            local_links("blog/index.html", html),
            ["blog/about/index.html", "blog/css/a.css", "img/x.png"]
        );
        assert_eq!(
            slug("Portfolio website with dark mode!"),
            "portfolio-website-dark-mode"
        );
        assert!(check_name("portfolio-website").is_ok());
        for bad in ["", "../x", "a;b", "A", "-x", &"x".repeat(41), "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
