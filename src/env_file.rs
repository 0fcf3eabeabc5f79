//! An app's env file, read the way docker compose reads `.env`, never run by a shell.
//!
//! The rules are compose's documented ones (docs.docker.com "Syntax for environment files" and
//! compose-spec `12-interpolation.md`): `KEY=VALUE` lines, `export` before a key, `#` comments
//! (inline only after a space when unquoted), `'single'` quotes literal (`\'` is a quote),
//! `"double"` quotes with `\n` `\r` `\t` `\\` `\"` `\$` escapes and values that may span lines,
//! and interpolation in unquoted and double-quoted values: `$NAME`, `${NAME}`, `${NAME:-default}`,
//! `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`, `${NAME:+other}`, `${NAME+other}`
//! (nested in the operand), `$$` for a literal `$`. A name is looked up in the process
//! environment, then among the keys defined above it in the file. Where compose warns and puts an
//! empty string for a `$NAME` that refers to nothing, this reader refuses with file, line,
//! column and the variable: a password with a `$` in it must not lose its tail silently.
//! Start from [`read`].

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::InputError;

/// The values of the env file at `path`, in the order written (a key written twice keeps the
/// last value). `lookup` reads one variable of the process environment.
///
/// Errors: an [`InputError`] at the line (and column) of a line that is not `KEY=VALUE`, a quote
/// left open, text after a closing quote, a `${` left open or without a name, a `$NAME` that
/// refers to nothing, or a `${NAME?error}` whose `NAME` is unset.
pub fn read(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|err| InputError {
        file: path.into(),
        line: None,
        column: None,
        field: "(document)".into(),
        message: err.to_string(),
        hint: Some("make the env file readable, or remove `env_file:`".into()),
    })?;
    Ok(parse(path, &text, lookup)?.into_iter().collect())
}

/// The `(key, value)` pairs of an env file's text, in order; see [`read`].
pub fn parse(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, InputError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser {
        path,
        chars: text.replace("\r\n", "\n").chars().collect(),
        pos: 0,
        key: String::new(),
        lookup,
        values: Vec::new(),
    };
    parser.lines()?;
    Ok(parser.values)
}

struct Parser<'a> {
    path: &'a Path,
    chars: Vec<char>,
    pos: usize,
    /// The key whose value is being read (the field of an error).
    key: String,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    values: Vec<(String, String)>,
}

/// How a value was written: quotes decide escapes and interpolation.
#[derive(Clone, Copy, PartialEq)]
enum Quoting {
    None,
    Double,
}

const NAME_HINT: &str = "write one `NAME=value` per line (`export NAME=value` is read too); \
    quote values with spaces";

impl Parser<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    /// Line and column (from 1) of the character at `index`.
    fn position(&self, index: usize) -> (usize, usize) {
        let before = &self.chars[..index.min(self.chars.len())];
        let line = before.iter().filter(|c| **c == '\n').count() + 1;
        let column = before.iter().rev().take_while(|c| **c != '\n').count() + 1;
        (line, column)
    }

    fn error(&self, at: usize, message: String, hint: &str) -> InputError {
        let (line, column) = self.position(at);
        InputError {
            file: self.path.into(),
            line: Some(line),
            column: Some(column),
            field: if self.key.is_empty() {
                "(document)".into()
            } else {
                self.key.clone()
            },
            message,
            hint: Some(hint.into()),
        }
    }

    fn skip_blanks(&mut self) {
        while self.peek(0).is_some_and(|c| c == ' ' || c == '\t') {
            self.pos += 1;
        }
    }

    fn skip_line(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.pos += 1;
        }
    }

    fn lines(&mut self) -> Result<(), InputError> {
        loop {
            while self.peek(0).is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
            match self.peek(0) {
                None => return Ok(()),
                Some('#') => self.skip_line(),
                Some(_) => self.assignment()?,
            }
        }
    }

    /// `[export] KEY=VALUE`, then the end of its line.
    fn assignment(&mut self) -> Result<(), InputError> {
        self.key.clear();
        let start = self.pos;
        let word = |p: &Parser<'_>| -> String {
            p.chars[p.pos..]
                .iter()
                .take_while(|c| !c.is_whitespace() && **c != '=')
                .collect()
        };
        if word(self) == "export" && self.peek(6).is_some_and(|c| c == ' ' || c == '\t') {
            self.pos += 6;
            self.skip_blanks();
        }
        let key = word(self);
        self.pos += key.chars().count();
        self.skip_blanks();
        if !crate::app_env::is_name(&key) || self.peek(0) != Some('=') {
            return Err(self.error(start, "not a `KEY=VALUE` line".into(), NAME_HINT));
        }
        self.key = key;
        self.pos += 1;
        self.skip_blanks();
        let value = match self.peek(0) {
            Some('\'') => self.single_quoted()?,
            Some('"') => {
                let end = self.closing('"')?;
                let value = self.expand(self.pos + 1, end, Quoting::Double)?;
                self.pos = end + 1;
                value
            }
            _ => {
                let begin = self.pos;
                let mut end = begin;
                while let Some(c) = self.chars.get(end).filter(|c| **c != '\n') {
                    // An inline comment starts at a `#` after a space (or at the value's start
                    // after spaces, which were skipped).
                    if *c == '#' && end > begin && self.chars[end - 1].is_whitespace() {
                        break;
                    }
                    end += 1;
                }
                while end > begin && self.chars[end - 1].is_whitespace() {
                    end -= 1;
                }
                let value = self.expand(begin, end, Quoting::None)?;
                self.pos = end;
                self.skip_line();
                value
            }
        };
        self.skip_blanks();
        match self.peek(0) {
            None | Some('\n') => {}
            Some('#') => self.skip_line(),
            Some(_) => {
                return Err(self.error(
                    self.pos,
                    "text after the closing quote".into(),
                    "put a comment after a space and `#`, or the whole value inside the quotes",
                ));
            }
        }
        self.values.push((self.key.clone(), value));
        Ok(())
    }

    /// The index of the quote that closes the one at `self.pos` (a backslash escapes a quote).
    fn closing(&self, quote: char) -> Result<usize, InputError> {
        let mut i = self.pos + 1;
        while let Some(c) = self.chars.get(i) {
            match *c {
                '\\' => i += 2,
                c if c == quote => return Ok(i),
                _ => i += 1,
            }
        }
        Err(self.error(
            self.pos,
            format!("the {quote} quote here is never closed"),
            "close the quote; a value may span lines only inside quotes",
        ))
    }

    /// A single-quoted value: literal, but for `\'`.
    fn single_quoted(&mut self) -> Result<String, InputError> {
        let end = self.closing('\'')?;
        let mut value = String::new();
        let mut i = self.pos + 1;
        while i < end {
            if self.chars[i] == '\\' && self.chars.get(i + 1) == Some(&'\'') {
                value.push('\'');
                i += 2;
            } else {
                value.push(self.chars[i]);
                i += 1;
            }
        }
        self.pos = end + 1;
        Ok(value)
    }

    /// The text of `chars[begin..end]` with escapes (double quotes only) and interpolation.
    fn expand(&self, begin: usize, end: usize, quoting: Quoting) -> Result<String, InputError> {
        let mut out = String::new();
        let mut i = begin;
        while i < end {
            let c = self.chars[i];
            let next = self.chars.get(i + 1).copied().filter(|_| i + 1 < end);
            match (c, next) {
                ('\\', Some(escaped)) if quoting == Quoting::Double => {
                    match escaped {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '\\' | '"' | '$' | '\'' => out.push(escaped),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                    i += 2;
                }
                ('$', Some('$')) => {
                    out.push('$');
                    i += 2;
                }
                ('$', Some('{')) => {
                    let close = self.brace_end(i, end)?;
                    out.push_str(&self.braced(i, close, quoting)?);
                    i = close + 1;
                }
                ('$', Some(first)) if first.is_ascii_alphabetic() || first == '_' => {
                    let name: String = self.chars[i + 1..end]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    out.push_str(&self.require(&name, i)?);
                    i += 1 + name.len();
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    /// The index of the `}` that closes the `${` at `start`, nested `${…}` counted.
    fn brace_end(&self, start: usize, end: usize) -> Result<usize, InputError> {
        let mut depth = 0usize;
        let mut i = start + 2;
        while i < end {
            match (self.chars[i], self.chars.get(i + 1)) {
                ('\\' | '$', Some('$')) => i += 2,
                ('$', Some('{')) => {
                    depth += 1;
                    i += 2;
                }
                ('}', _) if depth == 0 => return Ok(i),
                ('}', _) => {
                    depth -= 1;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        Err(self.error(
            start,
            "`${` is never closed with `}`".into(),
            "close it (`${NAME}`), or write `$$` for a literal `$`",
        ))
    }

    /// `${NAME}`, `${NAME:-x}`, `${NAME-x}`, `${NAME:?x}`, `${NAME?x}`, `${NAME:+x}`, `${NAME+x}`
    /// between `start` (the `$`) and `close` (the `}`).
    fn braced(&self, start: usize, close: usize, quoting: Quoting) -> Result<String, InputError> {
        let inner = &self.chars[start + 2..close];
        let name: String = inner
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect();
        let rest = &inner[name.len()..];
        let colon = rest.first() == Some(&':');
        let operator = rest.get(usize::from(colon)).copied();
        if !crate::app_env::is_name(&name)
            || !(rest.is_empty() || matches!(operator, Some('-' | '?' | '+')))
        {
            let text: String = inner.iter().collect();
            return Err(self.error(
                start,
                format!("`${{{text}}}` is not a substitution compose knows"),
                "write `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}` or \
                `${NAME:+other}`; `$$` is a literal `$`",
            ));
        }
        let Some(operator) = operator else {
            return self.require(&name, start);
        };
        let operand_start = start + 2 + name.len() + usize::from(colon) + 1;
        let value = self.lookup(&name);
        // With `:`, an empty value counts as unset.
        let set = value.as_ref().is_some_and(|v| !colon || !v.is_empty());
        match (operator, set) {
            ('-', true) | ('?', true) => Ok(value.unwrap_or_default()),
            ('+', false) => Ok(String::new()),
            ('-' | '+', _) => self.expand(operand_start, close, quoting),
            _ => {
                let said = self.expand(operand_start, close, quoting)?;
                Err(self.error(
                    start,
                    format!(
                        "`{name}` is not set{}",
                        if said.is_empty() {
                            String::new()
                        } else {
                            format!(": {said}")
                        }
                    ),
                    &format!("export {name}=… before `up`, or define it above this line"),
                ))
            }
        }
    }

    /// The value of the process environment's `name`, else of a key above in the file.
    fn lookup(&self, name: &str) -> Option<String> {
        (self.lookup)(name).or_else(|| {
            self.values
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    /// The value of `$name` (written at `at`), which must refer to something.
    fn require(&self, name: &str, at: usize) -> Result<String, InputError> {
        self.lookup(name).ok_or_else(|| {
            self.error(
                at,
                format!(
                    "`${name}` refers to no variable (none in the environment, none above in \
                    this file)"
                ),
                &format!(
                    "for a literal `$`, write `$$` or put the value in single quotes \
                    ('…'); else define {name} above this line or export it"
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(text: &str) -> Result<Vec<(String, String)>, crate::error::InputError> {
        let env = |name: &str| (name == "HOME_DIR").then(|| "/home/ada".to_string());
        super::parse(Path::new(".env"), text, &env)
    }

    fn values(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn the_documented_examples_of_compose() {
        // Each pair is an example of docs.docker.com's "Syntax for environment files".
        for (line, want) in [
            ("VAR=VAL", "VAL"),
            ("VAR=\"VAL\"", "VAL"),
            ("VAR='VAL'", "VAL"),
            ("VAR=VAL # comment", "VAL"),
            ("VAR=VAL# not a comment", "VAL# not a comment"),
            ("VAR=\"VAL # not a comment\"", "VAL # not a comment"),
            ("VAR=\"VAL\" # comment", "VAL"),
            ("VAR='$OTHER'", "$OTHER"),
            ("VAR='${OTHER}'", "${OTHER}"),
            (r"VAR='Let\'s go!'", "Let's go!"),
            (r#"VAR="{\"hello\": \"json\"}""#, r#"{"hello": "json"}"#),
            (r#"VAR="some\tvalue""#, "some\tvalue"),
            (r"VAR='some\tvalue'", r"some\tvalue"),
            (r"VAR=some\tvalue", r"some\tvalue"),
            ("export VAR=VAL", "VAL"),
            ("VAR=$$HOME_DIR", "$HOME_DIR"),
            ("VAR=${HOME_DIR}/x", "/home/ada/x"),
            ("VAR=$HOME_DIR.x", "/home/ada.x"),
            ("VAR=${UNSET:-dflt}", "dflt"),
            ("VAR=${UNSET-dflt}", "dflt"),
            ("VAR=${UNSET:-${HOME_DIR:-x}}", "/home/ada"),
            ("VAR=${HOME_DIR:+other}", "other"),
            ("VAR=${UNSET:+other}", ""),
            ("VAR=cost $5", "cost $5"),
            ("VAR=", ""),
        ] {
            assert_eq!(values(line), [want], "{line}");
        }
    }

    #[test]
    fn set_and_empty_differ_with_and_without_the_colon() {
        assert_eq!(values("E=\nA=${E-d}\nB=${E:-d}"), ["", "", "d"]);
    }

    #[test]
    fn keys_above_are_used_and_a_value_may_span_lines_in_quotes() {
        assert_eq!(
            values("USER=ada\nURL=\"postgres://$USER@db\"\nKEY=\"line one\nline two\""),
            ["ada", "postgres://ada@db", "line one\nline two"]
        );
    }

    #[test]
    fn generated_passwords_survive_when_written_as_documented() {
        // `openssl rand -base64 32` and pwgen-style secrets with `$`, `#`, quotes, backslashes.
        for (line, want) in [
            (
                "P=q4V/8r+Tz0K1m2bNwq9XyZa7LcQe3Rf5Gh6Jk8Mn0o=",
                "q4V/8r+Tz0K1m2bNwq9XyZa7LcQe3Rf5Gh6Jk8Mn0o=",
            ),
            ("P=a#b$$c", "a#b$c"),
            ("P='x$y#z\"q\\w'", "x$y#z\"q\\w"),
            (r#"P="d\$e \"f\" g\\h""#, r#"d$e "f" g\h"#),
            ("P='it\\'s' # owner's", "it's"),
        ] {
            assert_eq!(values(line), [want], "{line}");
        }
    }

    #[test]
    fn a_dollar_name_that_refers_to_nothing_is_refused_where_it_is() {
        let err = parse("A=1\nDB_PASSWORD=p4$sw0rd\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(15)), "{err}");
        assert_eq!(err.field, "DB_PASSWORD");
        assert!(err.message.contains("`$sw0rd`"), "{err}");
        assert!(err.hint.unwrap().contains("$$"));
        let err = parse("A=\"${NOPE}\"").unwrap_err();
        assert!(err.message.contains("`$NOPE`"), "{err}");
        let err = parse("A=${NOPE:?set it first}").unwrap_err();
        assert!(err.message.contains("set it first"), "{err}");
    }

    #[test]
    fn broken_lines_are_refused_with_their_line() {
        for (text, line) in [
            ("A=1\nnot a line\n", 2),
            ("A=1\nB=\"open\n", 2),
            ("A='x' y", 1),
            ("A=${B", 1),
            ("A=${B/x/y}", 1),
            ("1A=x", 1),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, Some(line), "{text}: {err}");
        }
    }
}
