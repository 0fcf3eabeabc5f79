//! A model's answer as real models give it: the JSON object `{"files": [...]}` taken out of the
//! prose and code fences around it (`Sure!`, `Here is your site:` … ```` ```json ```` … `Enjoy!`),
//! the placeholders a small model writes instead of content, and the signs that a streamed answer
//! has gone wrong (a loop, a flood of files or of placeholders) so it is stopped early.
//! Start from [`extract`]; [`RESPONSE_SCHEMA`] is what structured output asks for.

use serde_json::Value;

/// At most this many `{` are tried as the start of the object, so prose full of braces stays cheap.
const MAX_CANDIDATES: usize = 64;

/// The answer's JSON object that has a `files` key, from the first place that holds one: a
/// ```` ```json ```` fence, any other fence, then the first balanced object in the text. A raw
/// control character inside a string (a newline a model did not escape) is escaped first.
/// Errors: what was wrong with the most likely candidate, for the model to fix.
pub fn extract(answer: &str) -> Result<Value, String> {
    let mut places = fences(answer, true);
    places.extend(fences(answer, false));
    places.push(answer);
    let mut first_error = None;
    for text in places {
        match first_object(text) {
            Ok(value) => return Ok(value),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "the answer holds no JSON object".into()))
}

/// The bodies of the code fences in `text`: those tagged `json` when `json_only`, else the others.
fn fences(text: &str, json_only: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let Some(line_end) = after.find('\n') else {
            break;
        };
        let tag = after[..line_end].trim().to_ascii_lowercase();
        let body = &after[line_end + 1..];
        // The closing fence starts a line; JSON strings hold no raw newline, so this one is
        // outside every string.
        let close = body.match_indices("```").map(|(i, _)| i).find(|&i| {
            let line = body[..i].rfind('\n').map_or(0, |n| n + 1);
            body[line..i].trim().is_empty()
        });
        let (inner, next) = match close {
            Some(i) => (&body[..i], &body[i + 3..]),
            None => (body, ""),
        };
        if (tag == "json") == json_only {
            out.push(inner);
        }
        rest = next;
    }
    out
}

/// The first `{…}` of `text` that parses (as it is, or with raw control characters escaped) to
/// an object with a `files` key.
fn first_object(text: &str) -> Result<Value, String> {
    let mut first_error = None;
    for (start, _) in text.match_indices('{').take(MAX_CANDIDATES) {
        let candidate = &text[start..];
        for attempt in [None, Some(escape_controls(candidate))] {
            let source = attempt.as_deref().unwrap_or(candidate);
            let mut values = serde_json::Deserializer::from_str(source).into_iter::<Value>();
            match values.next() {
                Some(Ok(value)) if value.get("files").is_some() => return Ok(value),
                Some(Ok(_)) => break,
                Some(Err(e)) => {
                    // The error worth telling is the one of an object that starts with `files`.
                    let likely = candidate[1..].trim_start().starts_with("\"files\"");
                    if attempt.is_some() && (likely || first_error.is_none()) {
                        let message = format!("the answer's JSON object does not parse: {e}");
                        if likely && !matches!(first_error, Some((true, _))) {
                            first_error = Some((true, message));
                        } else {
                            first_error.get_or_insert((likely, message));
                        }
                    }
                }
                None => break,
            }
        }
    }
    Err(first_error.map(|(_, e)| e).unwrap_or_else(|| {
        if text.contains('{') {
            "the answer holds no JSON object with a `files` array".into()
        } else {
            "the answer holds no JSON object".into()
        }
    }))
}

/// `text` with the raw control characters inside JSON strings written as escapes.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            } else if c.is_control() {
                match c {
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    other => out.push_str(&format!("\\u{:04x}", u32::from(other))),
                }
                continue;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

/// A file's content that stands for content instead of being it: empty, `...`, `"..."`, `…`,
/// `TODO`, `TBD`, `placeholder`, `content here` and the like.
pub fn is_placeholder(content: &str) -> bool {
    let text = content
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '`' || c.is_whitespace())
        .trim_start_matches("<!--")
        .trim_end_matches("-->")
        .trim_start_matches("/*")
        .trim_end_matches("*/")
        .trim()
        .to_ascii_lowercase();
    if text
        .chars()
        .all(|c| c == '.' || c == '…' || c.is_whitespace())
    {
        return true;
    }
    [
        "todo",
        "tbd",
        "placeholder",
        "content",
        "content here",
        "file content",
        "your content here",
        "insert content here",
        "add content here",
        "base64",
        "binary",
        "image",
        "image data",
        "binary data",
    ]
    .contains(&text.trim_end_matches(['.', '…', ':']).trim())
}

/// Extensions of files a JSON string cannot carry (images, fonts, audio, video, archives).
pub fn is_binary_path(path: &str) -> bool {
    let ext = path
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    [
        "png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "bmp", "tif", "tiff", "woff", "woff2",
        "ttf", "otf", "eot", "mp3", "wav", "ogg", "mp4", "webm", "mov", "pdf", "zip", "gz", "tar",
    ]
    .contains(&ext.as_str())
}

/// Why a streamed answer should be stopped now, when it has clearly gone wrong: more files than
/// a site may have, several placeholder contents, or the same text over and over (a model in a
/// loop runs until `max_tokens` or the context is full).
pub fn gone_wrong(text: &str, max_files: usize) -> Option<String> {
    let files = text.matches("\"path\"").count();
    if files > max_files {
        return Some(format!(
            "it lists more than {max_files} files; a site here is index.html plus a few files"
        ));
    }
    let placeholders = contents(text)
        .filter(|c| is_placeholder(&c.replace("\\\"", "\"").replace("\\n", "\n")))
        .count();
    if placeholders >= 3 {
        return Some(format!(
            "{placeholders} files have a placeholder (such as `...`) instead of their content"
        ));
    }
    looping(text).then(|| "it repeats the same text over and over".to_string())
}

/// The raw string after each complete `"content": "…"` of a partial answer.
fn contents(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("\"content\"").filter_map(|(i, key)| {
        let rest = text[i + key.len()..].trim_start().strip_prefix(':')?;
        let rest = rest.trim_start().strip_prefix('"')?;
        let mut escaped = false;
        for (j, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return Some(&rest[..j]),
                _ => {}
            }
        }
        None
    })
}

/// The last 100 bytes of a long text appear 10 times or more in its last 8 KB.
fn looping(text: &str) -> bool {
    const TAIL: usize = 100;
    const WINDOW: usize = 8192;
    if text.len() < 3000 {
        return false;
    }
    let floor = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let tail = &text[floor(text.len() - TAIL)..];
    let window = &text[floor(text.len().saturating_sub(WINDOW))..];
    !tail.trim().is_empty() && window.matches(tail).count() >= 10
}

/// The JSON schema of an answer, for servers with structured output (`response_format`
/// `json_schema`, as llama.cpp, vLLM and OpenAI take it): at most 10 files, relative paths,
/// no other keys.
pub const RESPONSE_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "files": {
      "type": "array",
      "minItems": 1,
      "maxItems": 10,
      "items": {
        "type": "object",
        "properties": {
          "path": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$"},
          "content": {"type": "string", "minLength": 1}
        },
        "required": ["path", "content"],
        "additionalProperties": false
      }
    }
  },
  "required": ["files"],
  "additionalProperties": false
}"#;

#[cfg(test)]
mod tests {
    use super::{RESPONSE_SCHEMA, extract, gone_wrong, is_binary_path, is_placeholder};

    const SITE: &str = r#"{"files": [{"path": "index.html", "content": "<h1>Hi {there}</h1>"}]}"#;

    #[test]
    fn the_object_is_found_in_prose_and_fences() {
        let want: serde_json::Value = serde_json::from_str(SITE).unwrap();
        for answer in [
            SITE.to_string(),
            format!("Sure! {SITE}"),
            format!("Sure!\n\n{SITE}\n"),
            format!("Here is your site:\n\n```json\n{SITE}\n```\n\nEnjoy!"),
            format!("Here is your site:\n```\n{SITE}\n```\nEnjoy! {{not json}}"),
            // A fence tagged json wins over an object in the prose before it.
            format!("Use {{\"files\": 1}} like this:\n```json\n{SITE}\n```"),
            // Braces in the prose before the object.
            format!("The {{site}} you asked for: {SITE} -- have fun {{}}"),
            // A newline the model did not escape inside a string.
            SITE.replace("Hi ", "Hi\n"),
        ] {
            let got = extract(&answer).unwrap_or_else(|e| panic!("{answer}: {e}"));
            assert_eq!(
                got["files"][0]["path"], want["files"][0]["path"],
                "{answer}"
            );
        }
        assert_eq!(
            extract("Sure! Here is your site").unwrap_err(),
            "the answer holds no JSON object"
        );
        assert!(
            extract("Here: {\"files\": [{\"path\": \"index.html\",}]}")
                .unwrap_err()
                .contains("does not parse"),
        );
        assert_eq!(
            extract("{\"pages\": []}").unwrap_err(),
            "the answer holds no JSON object with a `files` array"
        );
    }

    #[test]
    fn placeholders_and_binary_files_are_named() {
        for p in [
            "",
            "...",
            "\"...\"",
            "…",
            " ... ",
            "TODO",
            "todo.",
            "<!-- TODO -->",
            "Placeholder",
            "/* ... */",
            "content here",
        ] {
            assert!(is_placeholder(p), "{p:?}");
        }
        for real in ["<h1>Todo list</h1>", "body { color: red }", "a...b"] {
            assert!(!is_placeholder(real), "{real:?}");
        }
        assert!(is_binary_path("images/projects/project1.png") && is_binary_path("f.WOFF2"));
        assert!(!is_binary_path("logo.svg") && !is_binary_path("index.html"));
    }

    #[test]
    fn a_streamed_answer_that_went_wrong_is_recognised() {
        let placeholders: String = (1..=3)
            .map(|i| format!("{{\"path\": \"p{i}.png\", \"content\": \"\\\"...\\\"\"}}, "))
            .collect();
        assert!(gone_wrong(&format!("{{\"files\": [{placeholders}"), 50).is_some());
        let two: String = placeholders.splitn(3, "}, ").take(2).collect();
        assert_eq!(gone_wrong(&two, 50), None);
        let many: String = (0..51)
            .map(|i| format!("{{\"path\": \"p{i}.html\", \"content\": \"<p>{i}</p>\"}},"))
            .collect();
        assert!(
            gone_wrong(&many, 50)
                .unwrap()
                .contains("more than 50 files")
        );
        let mut looped = String::from("{\"files\": [{\"path\": \"style.css\", \"content\": \"");
        while looped.len() < 6000 {
            looped.push_str(".card { margin: 0 auto; padding: 1rem; }\\n");
        }
        assert!(gone_wrong(&looped, 50).unwrap().contains("over and over"));
        let varied: String = (0..400)
            .map(|i| format!(".c{i} {{ margin: {i}px; }}\\n"))
            .collect();
        assert_eq!(gone_wrong(&varied, 50), None);
    }

    #[test]
    fn the_response_schema_is_json() {
        let schema: serde_json::Value = serde_json::from_str(RESPONSE_SCHEMA).unwrap();
        assert_eq!(schema["properties"]["files"]["maxItems"], 10);
    }
}
