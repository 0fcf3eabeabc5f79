//! The CI event `pr` acts on: GitHub's webhook payload as Actions hands it over (the event's name
//! in `GITHUB_EVENT_NAME`, its JSON at `GITHUB_EVENT_PATH`), read into the one decision `pr`
//! makes: deploy, redeploy or destroy the environment `pr-N`, or nothing, with the reason. Reads
//! a file and decides; runs nothing. Start at [`read`].
//!
//! The fields are those GitHub documents for the `pull_request` and `issue_comment` events
//! ("Webhook events and payloads"); the tests replay octokit/webhooks' payload examples
//! (`tests/fixtures/github-events/`, with their source).

use std::path::Path;

use serde::Deserialize;

use crate::error::InputError;

/// The event's name, as GitHub Actions sets it for every step ("Variables" reference:
/// default environment variables).
pub const EVENT_NAME_VAR: &str = "GITHUB_EVENT_NAME";
/// The path of the file holding the event's full webhook payload (same reference).
pub const EVENT_PATH_VAR: &str = "GITHUB_EVENT_PATH";

/// The events `pr` reads a payload of; any other is ignored unread.
pub const EVENTS: [&str; 3] = ["pull_request", "pull_request_target", "issue_comment"];

/// What the event asks of the pull request's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Make sure it is up: a new deployment, the rest of one that stopped, or nothing.
    Deploy,
    /// Run it again with the code checked out now (a new one when there is none).
    Redeploy,
    /// Take it down (nothing when there is none).
    Destroy,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Redeploy => "redeploy",
            Action::Destroy => "destroy",
        }
    }
}

/// The pull request an event concerns, as the payload describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub draft: bool,
    /// Its page (`https://github.com/OWNER/REPO/pull/N`).
    pub html_url: String,
    /// The head commit, when the event names it (`pull_request` events do, comments do not).
    pub head_sha: Option<String>,
}

impl PullRequest {
    /// The environment of this pull request: `pr-N`.
    pub fn env_name(&self) -> String {
        format!("pr-{}", self.number)
    }
}

/// The decision: act on a pull request's environment, or ignore the event (and why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Act {
        action: Action,
        pull_request: PullRequest,
        /// What asked for it: `pull_request opened`, `/deploy by @login`.
        trigger: String,
    },
    Ignore {
        reason: String,
        /// The pull request's number, when the event concerns one.
        number: Option<u64>,
    },
}

/// The `author_association` values whose comments are commands: people with write access
/// (GitHub's `OWNER`, `MEMBER`, `COLLABORATOR`). Anyone may comment on a public repository.
pub const COMMAND_AUTHORS: [&str; 3] = ["OWNER", "MEMBER", "COLLABORATOR"];

/// The `pull_request` actions `pr` acts on, and what each asks (a draft's deploy and redeploy
/// are left to a comment); any other action is ignored.
pub const PULL_REQUEST_ACTIONS: [(&str, Action); 6] = [
    ("opened", Action::Deploy),
    ("reopened", Action::Deploy),
    ("ready_for_review", Action::Deploy),
    ("synchronize", Action::Redeploy),
    ("converted_to_draft", Action::Destroy),
    ("closed", Action::Destroy),
];

/// The comment commands, first word of a comment on a pull request.
pub const COMMANDS: [(&str, Action); 3] = [
    ("/deploy", Action::Deploy),
    ("/redeploy", Action::Redeploy),
    ("/destroy", Action::Destroy),
];

#[derive(Deserialize)]
struct PullRequestEvent {
    action: String,
    pull_request: PullRequestPayload,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    number: u64,
    #[serde(default)]
    draft: bool,
    html_url: String,
    head: Head,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
}

#[derive(Deserialize)]
struct IssueCommentEvent {
    action: String,
    issue: Issue,
    comment: Comment,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    state: String,
    #[serde(default)]
    draft: bool,
    html_url: String,
    /// Present when the issue is a pull request.
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Comment {
    body: Option<String>,
    user: User,
    author_association: String,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

/// Reads the payload at `path` of the event `name` and decides.
///
/// Errors: an [`InputError`] naming the file, line, column and field when the file cannot be
/// read, is not JSON, or lacks a field the decision reads.
pub fn read(name: &str, path: &Path) -> anyhow::Result<Decision> {
    if !EVENTS.contains(&name) {
        return Ok(decide(name, b"").map_err(|e| e.at(path, name))?);
    }
    let bytes = std::fs::read(path).map_err(|e| InputError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        field: "(document)".into(),
        message: format!("cannot read the event payload: {e}"),
        hint: Some("GITHUB_EVENT_PATH (or --payload) must name the event's JSON file".into()),
    })?;
    Ok(decide(name, &bytes).map_err(|e| e.at(path, name))?)
}

/// A payload that does not have the shape its event's name promises.
#[derive(Debug)]
pub struct PayloadError {
    field: String,
    message: String,
    line: usize,
    column: usize,
}

impl PayloadError {
    fn at(self, path: &Path, name: &str) -> InputError {
        InputError {
            file: path.to_path_buf(),
            line: Some(self.line),
            column: Some(self.column),
            field: self.field,
            message: self.message,
            hint: Some(format!(
                "pass the payload of a `{name}` event as GitHub sends it (docs/pr-environments.md)"
            )),
        }
    }
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, PayloadError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        PayloadError {
            field: if field == "." {
                "(document)".into()
            } else {
                field
            },
            line: inner.line(),
            column: inner.column(),
            message: strip_location(&inner.to_string()),
        }
    })
}

/// serde_json's message without its ` at line L column C` (the error names them itself).
fn strip_location(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head)
        .to_string()
}

/// The decision for the event `name` with the JSON payload `bytes`.
pub fn decide(name: &str, bytes: &[u8]) -> Result<Decision, PayloadError> {
    match name {
        "pull_request" | "pull_request_target" => {
            let event: PullRequestEvent = parse(bytes)?;
            Ok(pull_request(name, event))
        }
        "issue_comment" => Ok(issue_comment(parse(bytes)?)),
        other => Ok(Decision::Ignore {
            reason: format!(
                "event `{other}` is not one `pr` acts on ({})",
                EVENTS.map(|e| format!("`{e}`")).join(", ")
            ),
            number: None,
        }),
    }
}

fn pull_request(name: &str, event: PullRequestEvent) -> Decision {
    let payload = event.pull_request;
    let pull_request = PullRequest {
        number: payload.number,
        draft: payload.draft,
        html_url: payload.html_url,
        head_sha: Some(payload.head.sha),
    };
    let number = pull_request.number;
    let found = PULL_REQUEST_ACTIONS
        .iter()
        .find(|(a, _)| *a == event.action)
        .map(|(_, action)| *action);
    let action = match found {
        Some(Action::Deploy | Action::Redeploy) if pull_request.draft => {
            return Decision::Ignore {
                reason: format!(
                    "pull request #{number} is a draft: its environment starts when it is marked \
                    ready for review, or on a `/deploy` comment"
                ),
                number: Some(number),
            };
        }
        Some(action) => action,
        None => {
            return Decision::Ignore {
                reason: format!(
                    "`{name}` action `{}` of pull request #{number} changes no environment",
                    event.action
                ),
                number: Some(number),
            };
        }
    };
    Decision::Act {
        action,
        pull_request,
        trigger: format!("{name} {}", event.action),
    }
}

fn issue_comment(event: IssueCommentEvent) -> Decision {
    let issue = event.issue;
    let number = issue.number;
    let ignore = |reason: String| Decision::Ignore {
        reason,
        number: Some(number),
    };
    if issue.pull_request.is_none() {
        return ignore(format!(
            "a comment on issue #{number}, not on a pull request"
        ));
    }
    if event.action != "created" {
        return ignore(format!(
            "a comment on pull request #{number} was {}: only new comments are commands",
            event.action
        ));
    }
    let body = event.comment.body.unwrap_or_default();
    let word = body.split_whitespace().next().unwrap_or_default();
    let Some((command, action)) = COMMANDS.iter().find(|(c, _)| *c == word) else {
        return ignore(format!(
            "the comment on pull request #{number} is not a command (`/deploy`, `/redeploy`, \
            `/destroy`)"
        ));
    };
    let login = event.comment.user.login;
    let association = event.comment.author_association;
    if !COMMAND_AUTHORS.contains(&association.as_str()) {
        return ignore(format!(
            "`{command}` by @{login} ({association}) on pull request #{number}: only the \
            repository's owners, members and collaborators run commands"
        ));
    }
    if issue.state != "open" && *action != Action::Destroy {
        return ignore(format!(
            "`{command}` on pull request #{number}, which is {}: reopen it first",
            issue.state
        ));
    }
    Decision::Act {
        action: *action,
        pull_request: PullRequest {
            number,
            draft: issue.draft,
            html_url: issue.html_url,
            head_sha: None,
        },
        trigger: format!("`{command}` by @{login}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{Action, Decision, decide};

    /// The smallest payloads docs/pr-environments.md shows are read as it says: the pull
    /// request's deploys pr-7, the comment redeploys it.
    #[test]
    fn the_payloads_the_docs_show_are_read_as_they_say() {
        let doc = include_str!("../docs/pr-environments.md");
        let section = &doc[doc.find("### Trying it by hand").unwrap()..];
        let blocks: Vec<&str> = section
            .split("```json\n")
            .skip(1)
            .map(|b| &b[..b.find("```").unwrap()])
            .collect();
        assert_eq!(blocks.len(), 2, "{section}");
        let act = |name: &str, block: &str| match decide(name, block.as_bytes()) {
            Ok(Decision::Act {
                action,
                pull_request,
                ..
            }) => (action, pull_request.number),
            Ok(_) => panic!("{name}: not acted on"),
            Err(e) => panic!("{name}: {e:?}"),
        };
        assert_eq!(act("pull_request", blocks[0]), (Action::Deploy, 7));
        assert_eq!(act("issue_comment", blocks[1]), (Action::Redeploy, 7));
    }

    fn comment(body: &str, association: &str, state: &str, on_pr: bool) -> Vec<u8> {
        let pull_request = if on_pr {
            serde_json::json!({"url": "https://api.github.com/repos/o/r/pulls/7"})
        } else {
            serde_json::Value::Null
        };
        serde_json::to_vec(&serde_json::json!({
            "action": "created",
            "issue": {"number": 7, "state": state, "draft": true,
                      "html_url": "https://github.com/o/r/pull/7", "pull_request": pull_request},
            "comment": {"body": body, "user": {"login": "ann"}, "author_association": association},
        }))
        .unwrap()
    }

    fn action(decision: &Decision) -> Option<Action> {
        match decision {
            Decision::Act { action, .. } => Some(*action),
            Decision::Ignore { .. } => None,
        }
    }

    #[test]
    fn comment_commands_need_a_pull_request_a_collaborator_and_the_first_word() {
        let d = |body, who, state, on_pr| {
            action(&decide("issue_comment", &comment(body, who, state, on_pr)).unwrap())
        };
        assert_eq!(d("/deploy", "OWNER", "open", true), Some(Action::Deploy));
        assert_eq!(
            d("  /redeploy please\n", "MEMBER", "open", true),
            Some(Action::Redeploy)
        );
        assert_eq!(
            d("/destroy", "COLLABORATOR", "closed", true),
            Some(Action::Destroy)
        );
        assert_eq!(d("/deploy", "OWNER", "closed", true), None);
        assert_eq!(d("/deploy", "CONTRIBUTOR", "open", true), None);
        assert_eq!(d("/deploy", "NONE", "open", true), None);
        assert_eq!(d("/deploy", "OWNER", "open", false), None);
        assert_eq!(d("please /deploy", "OWNER", "open", true), None);
        assert_eq!(d("/deployment", "OWNER", "open", true), None);
    }

    #[test]
    fn a_missing_field_is_named_with_its_place() {
        let err = decide(
            "pull_request",
            br#"{"action": "opened", "pull_request": {"draft": false}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "pull_request");
        assert!(
            err.message.contains("missing field `number`"),
            "{}",
            err.message
        );
        assert_eq!(err.line, 1);
        let err = decide("issue_comment", b"{\"action\": 3}").unwrap_err();
        assert_eq!(err.field, "action");
    }

    fn fixture(name: &str) -> Vec<u8> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github-events");
        std::fs::read(dir.join(name)).unwrap()
    }

    /// octokit/webhooks' payloads as GitHub sends them: each action's decision, the fields read.
    #[test]
    fn real_pull_request_payloads_decide_each_action() {
        for (file, expected) in [
            ("opened", Some(Action::Deploy)),
            ("reopened", Some(Action::Deploy)),
            ("ready_for_review", Some(Action::Deploy)),
            ("synchronize", Some(Action::Redeploy)),
            ("converted_to_draft", Some(Action::Destroy)),
            ("closed", Some(Action::Destroy)),
            ("labeled", None),
        ] {
            let decision = decide(
                "pull_request",
                &fixture(&format!("pull_request.{file}.json")),
            )
            .unwrap();
            assert_eq!(action(&decision), expected, "{file}");
            if let Decision::Act { pull_request, .. } = decision {
                assert_eq!(pull_request.env_name(), "pr-2");
                assert_eq!(
                    pull_request.html_url,
                    "https://github.com/Codertocat/Hello-World/pull/2"
                );
                assert_eq!(
                    pull_request.head_sha.as_deref(),
                    Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821")
                );
            }
        }
        // the example comment is on an issue, not a pull request
        let decision = decide("issue_comment", &fixture("issue_comment.created.json")).unwrap();
        assert_eq!(action(&decision), None);
        // a draft's automatic events are left alone
        let mut opened: serde_json::Value =
            serde_json::from_slice(&fixture("pull_request.opened.json")).unwrap();
        opened["pull_request"]["draft"] = true.into();
        let decision = decide("pull_request", &serde_json::to_vec(&opened).unwrap()).unwrap();
        assert_eq!(action(&decision), None);
    }

    #[test]
    fn other_events_are_ignored_without_reading_the_payload() {
        assert!(matches!(
            decide("push", b"not json").unwrap(),
            Decision::Ignore { number: None, .. }
        ));
    }
}
