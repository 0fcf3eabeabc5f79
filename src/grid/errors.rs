//! What a failed `terraform apply`, `plan` or `destroy` on the grid says about its cause, from
//! the error texts of the provider, its SDK, tfchain and zos. The table is docs/grid-errors.md
//! (with the source of every text), read here at build time: this module owns no text of its
//! own. Start from [`classify`]; the infrastructure phase asks [`Cause::node_can_fix`] before it
//! tries other nodes, and `error::hints_for_error` shows the row's hint.

use std::sync::OnceLock;

/// The reference the table is read from.
const REFERENCE: &str = include_str!("../../docs/grid-errors.md");

/// What caused a grid error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The twin's account: funds, a missing twin, the mnemonic or its key type.
    Account,
    /// A name on the grid: taken, or not valid.
    Name,
    /// A value of the deployment every node refuses (an flist, a memory size, an in-place change).
    Input,
    /// The node or its farm: capacity, public IPs, an unreachable or slow node.
    Node,
}

impl Cause {
    fn parse(text: &str) -> Option<Cause> {
        match text {
            "account" => Some(Cause::Account),
            "name" => Some(Cause::Name),
            "input" => Some(Cause::Input),
            "node" => Some(Cause::Node),
            _ => None,
        }
    }

    /// Whether another node may succeed where this one failed.
    pub fn node_can_fix(self) -> bool {
        self == Cause::Node
    }
}

/// One row of docs/grid-errors.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The text the error contains (compared without case).
    pub text: String,
    pub cause: Cause,
    /// What it means, in a few words.
    pub meaning: String,
    /// What to do about it.
    pub hint: String,
}

/// The rows of the reference's table, in order. Panics on a malformed row: the unit test below
/// reads every row, so a bad edit of the reference fails the build's tests, not a user's run.
pub fn table() -> &'static [Known] {
    static TABLE: OnceLock<Vec<Known>> = OnceLock::new();
    TABLE.get_or_init(|| parse(REFERENCE).unwrap_or_else(|e| panic!("docs/grid-errors.md: {e}")))
}

/// The table's rows from the Markdown of the reference: the rows after the `| text | class |`
/// header, cells without their backticks.
fn parse(markdown: &str) -> Result<Vec<Known>, String> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for (number, line) in markdown.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("| text | class |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("| ---") {
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [text, class, meaning, hint, _source] = cells[..] else {
            return Err(format!(
                "line {}: {} cells, expected 5",
                number + 1,
                cells.len()
            ));
        };
        let cause = Cause::parse(class)
            .ok_or_else(|| format!("line {}: class `{class}` is unknown", number + 1))?;
        rows.push(Known {
            text: text.trim_matches('`').to_string(),
            cause,
            meaning: meaning.to_string(),
            hint: hint.to_string(),
        });
    }
    if rows.is_empty() {
        return Err("no `| text | class | …` table".into());
    }
    Ok(rows)
}

/// `text` as one line of lowercase words: Terraform wraps a diagnostic's lines at 78 columns and
/// frames them in `│`, so a provider's message can be split anywhere between words.
fn words(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || matches!(c, '│' | '╷' | '╵'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The first row of the table whose text `output` (a tool's error or the tail of its log)
/// contains; `None` for an error the table does not know.
pub fn classify(output: &str) -> Option<&'static Known> {
    let output = words(output);
    table().iter().find(|k| output.contains(&words(&k.text)))
}

/// `err` explained by the table when it knows the error: `message` then the row's meaning, with
/// the row's hint; otherwise `err` with `message` as its context.
pub fn explained(err: anyhow::Error, message: &str) -> anyhow::Error {
    match classify(&format!("{err:#}")) {
        Some(known) => recognised(err, known, message.to_string()),
        None => err.context(message.to_string()),
    }
}

/// `err` as a failure whose cause is `known`, said by `message`.
pub fn recognised(err: anyhow::Error, known: &Known, message: String) -> anyhow::Error {
    crate::error::Recognised {
        message,
        hint: format!("{}: {}", known.meaning, known.hint),
        source: err.into(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::{Cause, classify, table};

    #[test]
    fn every_row_of_the_reference_is_read() {
        let rows = table();
        assert!(rows.len() >= 20, "{}", rows.len());
        for cause in [Cause::Account, Cause::Name, Cause::Input, Cause::Node] {
            assert!(rows.iter().any(|r| r.cause == cause), "{cause:?}");
        }
        assert!(
            rows.iter()
                .all(|r| !r.text.is_empty() && !r.hint.is_empty())
        );
    }

    #[test]
    fn the_cause_wins_over_the_node_the_wrapper_names() {
        // the SDK wraps a chain error with the node it was deploying to
        let wrapped = "Error: couldn't deploy deployment with error: failed to create contract \
            on node 12: NameExists";
        assert_eq!(classify(wrapped).map(|k| k.cause), Some(Cause::Name));
        // Terraform's frame and wrapping between words
        let framed = "│ Error: couldn't deploy deployment with error: account contains 0.500000 \
            tft, min fee\n│ is 2 tft\n│ \n│   with grid_deployment.vm,";
        assert_eq!(classify(framed).map(|k| k.cause), Some(Cause::Account));
        let node = "node 21 does not have enough resources. needed: [mru: 2 GB]";
        assert!(classify(node).is_some_and(|k| k.cause.node_can_fix()));
        assert!(classify("fake tofu failed on purpose").is_none());
    }
}
