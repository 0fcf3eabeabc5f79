//! A generated project: what the model is told ([`SYSTEM_PROMPT`]), its answer parsed into files
//! and the files checked (paths, sizes, placeholders, binary files), and the site served on
//! 127.0.0.1 and fetched: index answers 200 and every local link and asset exists. The problems
//! found are what the fixer loop sends back to the LLM.

pub use crate::stack::check_name;
use std::collections::BTreeMap;

use super::answer;

pub type Files = BTreeMap<String, String>;

pub const MAX_FILES: usize = 50;
pub const MAX_FILE_BYTES: usize = 256 * 1024;
pub const MAX_TOTAL_BYTES: usize = 2 * 1024 * 1024;

/// What the model is told: a small self-contained site the check can verify, shown by one tiny
/// complete example (a placeholder in an example is what small models copy), written without
/// what costs output tokens and shows nothing (a local model writes about 9 tokens/s on two
/// cores: docs/performance.md).
pub const SYSTEM_PROMPT: &str = r#"You write one small static website. Answer with one JSON object and nothing else: no prose, no code fence.

The answer for the request "a page for Mia's flower stall" would be:
{"files": [{"path": "index.html", "content": "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Mia's Flowers</title>\n<link rel=\"stylesheet\" href=\"style.css\">\n</head>\n<body>\n<h1>Mia's Flowers</h1>\n<p>Tulips and roses at the Saturday market.</p>\n</body>\n</html>\n"}, {"path": "style.css", "content": "body { font-family: sans-serif; margin: 2rem; }\nh1 { color: #b03060; }\n"}]}

Rules:
- Every "content" is the complete text of its file, never a placeholder (three dots, TODO, lorem ipsum).
- index.html at the root, plus style.css and script.js when they are needed: at most 10 files.
- Text files only: no images, fonts or other binary files (use CSS, emoji or inline SVG).
- Every href and src is a relative path to a file you include: no external URL, CDN or build step.
- Paths use only a-z, A-Z, 0-9, '-', '_', '.' and '/'.
- The headings and text are about what the request asks for, in the request's language.
- Every token takes time: no comments, no indentation, no blank lines, only the CSS the page uses."#;

/// Parses an answer as real models give it (the JSON object found in prose or a code fence, see
/// [`answer::extract`]) into files: `{"files": [{"path", "content"}]}` (other keys are ignored),
/// every path valid, sizes bounded, `index.html` present, no placeholder, binary or lorem-only
/// file. Errors: every problem, in words the model can act on.
pub fn parse(text: &str) -> Result<Files, Vec<String>> {
    let value = answer::extract(text).map_err(|e| {
        vec![format!(
            "{e}; answer with the JSON object {{\"files\": [{{\"path\", \"content\"}}]}} only"
        )]
    })?;
    let Some(list) = value["files"].as_array() else {
        return Err(vec![
            "`files` must be an array of {\"path\", \"content\"} objects".into(),
        ]);
    };
    let mut problems = Vec::new();
    let mut files = Files::new();
    if list.len() > MAX_FILES {
        problems.push(format!(
            "{} files; at most {MAX_FILES} (index.html, style.css and script.js are enough)",
            list.len()
        ));
    }
    let (mut total, mut placeholders, mut binary, mut lorem) = (0, vec![], vec![], vec![]);
    for (i, file) in list.iter().enumerate() {
        let (Some(path), Some(content)) = (file["path"].as_str(), file["content"].as_str()) else {
            problems.push(format!(
                "files[{i}] is not a {{\"path\": TEXT, \"content\": TEXT}} object"
            ));
            continue;
        };
        if let Err(p) = check_path(path) {
            problems.push(p);
            continue;
        }
        if content.len() > MAX_FILE_BYTES {
            problems.push(format!(
                "`{path}` is {} bytes; at most {MAX_FILE_BYTES}",
                content.len()
            ));
        }
        if answer::is_binary_path(path) {
            binary.push(path);
        } else if answer::is_placeholder(content) {
            placeholders.push(path);
        } else if path.ends_with(".html") && super::words::lorem_only(content) {
            lorem.push(path);
        }
        total += content.len();
        if files
            .insert(path.to_string(), content.to_string())
            .is_some()
        {
            problems.push(format!("`{path}` appears twice"));
        }
    }
    for (paths, what, fix) in [
        (
            &binary,
            "binary (images, fonts, media), which JSON text cannot carry",
            "leave them out and use CSS, emoji or inline SVG",
        ),
        (
            &placeholders,
            "a placeholder, not content",
            "write each file's complete text",
        ),
        (
            &lorem,
            "lorem ipsum only",
            "write real text about the request",
        ),
    ] {
        if !paths.is_empty() {
            problems.push(listing(paths, what, fix));
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

/// `1 file is WHAT (`a`): FIX` or `56 files are WHAT (`a`, … `e` and 51 more): FIX`.
fn listing(paths: &[&str], what: &str, fix: &str) -> String {
    const SHOWN: usize = 5;
    let mut names = paths
        .iter()
        .take(SHOWN)
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        names.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    let count = if paths.len() == 1 {
        "1 file is".to_string()
    } else {
        format!("{} files are", paths.len())
    };
    format!("{count} {what} ({names}): {fix}")
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

/// Removes every `<img>` whose local `src` is not among the files, and says which: small models
/// add a picture (`images/bakery.jpg`) to a site they were told has none, and keep it through
/// every fix (seen with Qwen2.5-Coder-1.5B, three attempts in a row). A page without the picture
/// is what the prompt asked for; a link to a missing page is still refused by the check.
/// Returns one line per removed image: `index.html: images/bakery.jpg`.
pub fn drop_missing_images(files: &mut Files) -> Vec<String> {
    let mut removed = Vec::new();
    let present: std::collections::BTreeSet<String> = files.keys().cloned().collect();
    for (path, content) in files.iter_mut().filter(|(p, _)| p.ends_with(".html")) {
        let mut kept = String::with_capacity(content.len());
        let mut rest = content.as_str();
        while let Some(start) = rest.to_ascii_lowercase().find("<img") {
            let Some(len) = rest[start..].find('>') else {
                break;
            };
            let tag = &rest[start..=start + len];
            let missing: Vec<String> = local_links(path, tag)
                .into_iter()
                .filter(|l| !present.contains(l))
                .collect();
            kept.push_str(&rest[..start]);
            if missing.is_empty() {
                kept.push_str(tag);
            } else {
                removed.extend(missing.into_iter().map(|l| format!("{path}: {l}")));
            }
            rest = &rest[start + len + 1..];
        }
        kept.push_str(rest);
        *content = kept;
    }
    removed
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

#[cfg(test)]
mod tests {
    use super::{check_name, local_links, parse};

    #[test]
    fn answers_are_parsed_from_prose_and_checked() {
        let ok = parse(
            r#"Here is your site:
```json
{"files": [{"path": "index.html", "content": "<a href=\"about/\">x</a>"}, {"path": "css/site.css", "content": "body{}"}]}
```
Enjoy!"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert!(parse("Sure! Here is your site").unwrap_err()[0].contains("no JSON object"));
        let bad = parse(r#"{"files": [{"path": "../etc/passwd", "content": ""}, {"path": "/abs", "content": ""}, {"path": "a/.git/x", "content": ""}]}"#)
            .unwrap_err();
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(parse(r#"{"files": [], "extra": 1}"#).is_err());
    }

    #[test]
    fn placeholder_binary_and_lorem_files_are_refused_by_name() {
        let mut files = vec![
            serde_json::json!({"path": "index.html", "content": "<h1>Portfolio</h1>"}),
            serde_json::json!({"path": "about.html", "content": "<p>Lorem ipsum dolor sit \
                amet.</p>"}),
            serde_json::json!({"path": "script.js", "content": "TODO"}),
        ];
        for i in 1..=56 {
            files.push(serde_json::json!({"path": format!("images/projects/project{i}.png"), "content": "\"...\""}));
        }
        let problems = parse(&serde_json::json!({"files": files}).to_string()).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].starts_with("59 files; at most 50"),
            "{problems:#?}"
        );
        assert_eq!(
            problems[1],
            "56 files are binary (images, fonts, media), which JSON text cannot carry \
             (`images/projects/project1.png`, `images/projects/project2.png`, \
             `images/projects/project3.png`, `images/projects/project4.png`, \
             `images/projects/project5.png` and 51 more): leave them out and use CSS, emoji or \
             inline SVG"
        );
        assert_eq!(
            problems[2],
            "1 file is a placeholder, not content (`script.js`): write each file's complete text"
        );
        assert!(problems[3].starts_with("1 file is lorem ipsum only (`about.html`)"));
    }

    #[test]
    fn the_system_prompt_shows_no_placeholder_to_copy() {
        assert!(!super::SYSTEM_PROMPT.contains("..."));
        assert!(!super::SYSTEM_PROMPT.contains('…'));
        let example = super::SYSTEM_PROMPT
            .lines()
            .find(|l| l.starts_with("{\"files\""))
            .unwrap();
        let files = parse(example).unwrap();
        assert!(files.contains_key("style.css"));
    }

    #[test]
    fn images_the_answer_lacks_are_removed_and_pages_it_lacks_are_not() {
        let mut files: super::Files = [
            (
                "index.html".to_string(),
                "<h1>Bakery</h1><IMG src=\"images/bakery.jpg\" alt=\"bread\"><img src='logo.svg'>\
                 <a href=\"menu.html\">Menu</a><img src=\"https://example.org/x.png\">"
                    .to_string(),
            ),
            ("logo.svg".to_string(), "<svg/>".to_string()),
        ]
        .into();
        assert_eq!(
            super::drop_missing_images(&mut files),
            vec!["index.html: images/bakery.jpg"]
        );
        assert_eq!(
            files["index.html"],
            "<h1>Bakery</h1><img src='logo.svg'><a href=\"menu.html\">Menu</a>\
             <img src=\"https://example.org/x.png\">"
        );
        assert!(super::drop_missing_images(&mut files).is_empty());
    }

    #[test]
    fn links_and_names() {
        let html = r##"<link href="css/a.css"><img src='../img/x.png'><a href="https://x.org/">x</a><a href="#top">t</a><a href="about/">a</a><a href="mailto:a@b">m</a>"##;
        assert_eq!(
            local_links("blog/index.html", html),
            ["blog/about/index.html", "blog/css/a.css", "img/x.png"]
        );
        assert!(check_name("portfolio-website").is_ok());
        for bad in ["", "../x", "a;b", "A", "-x", &"x".repeat(41), "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
