//! The `generate` step: the builder/fixer loop. The LLM is asked for a site, the answer parsed and
//! checked, and the problems fed back, at most `max_attempts` times. An answer that repeats an
//! earlier one, was stopped because it went wrong, or was cut at `max_tokens` starts a fresh
//! conversation at another temperature instead of being asked the same way again. A site whose
//! visible text names nothing of the prompt's subject is sent back once. Every step is an event
//! of the project: `llm started|progress|note|done`, `generate restart`, `check
//! started|failed|done`.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::db::Db;
use super::llm::{Answer, Ask, Finish, Llm, Message, Update};
use super::{answer, site, words};

/// The first temperature, then one per fresh start (a repeated answer at 0.2 comes back at 0.2).
const TEMPERATURES: [f64; 3] = [0.2, 0.7, 1.0];
/// The most problems one message sends back.
const MAX_PROBLEMS: usize = 12;

/// What every conversation starts with, for [`crate::ai::llm::Llm::warm_up`]: the system
/// prompt and the request's fixed words.
pub fn shared_start() -> Vec<Message> {
    conversation("", &[])
}

/// The conversation's start: the request, and what earlier answers got wrong.
fn conversation(prompt: &str, avoid: &[String]) -> Vec<Message> {
    let mut request = format!("Build this website: {prompt}");
    if !avoid.is_empty() {
        request.push_str(&format!(
            "\n\nEarlier answers to this request failed these checks; avoid them:\n- {}",
            avoid.join("\n- ")
        ));
    }
    vec![
        Message::new("system", site::SYSTEM_PROMPT),
        Message::new("user", request),
    ]
}

/// What makes two answers the same: their `files` when they have some, else the trimmed text.
fn fingerprint(content: &str) -> String {
    answer::extract(content).map_or_else(
        |_| content.trim().to_string(),
        |value| value["files"].to_string(),
    )
}

fn watch(text: &str) -> Option<String> {
    answer::gone_wrong(text, site::MAX_FILES)
}

/// Records what the LLM client reports during attempt `attempt`.
fn record(db: &Db, id: &str, attempt: u32, temperature: f64, update: Update<'_>) {
    let _ = match update {
        Update::Asking { provider, format } => db.event_with(
            id,
            "llm",
            "started",
            &format!(
                "{provider} for attempt {attempt} (temperature {temperature}, response_format {})",
                format.as_str()
            ),
            Some(&json!({"attempt": attempt, "provider": provider, "temperature": temperature, "response_format": format.as_str()})),
        ),
        Update::Progress(p) => db.event_with(
            id,
            "llm",
            super::api::PROGRESS,
            &format!(
                "{} tokens, {:.1} tokens/s, {} from {}, attempt {attempt}",
                p.tokens,
                p.tokens_per_s(),
                crate::clock::format_duration(p.elapsed),
                p.provider
            ),
            Some(&json!({
                "attempt": attempt,
                "provider": p.provider,
                "tokens": p.tokens,
                "tokens_per_s": (p.tokens_per_s() * 10.0).round() / 10.0,
                "elapsed_ms": u64::try_from(p.elapsed.as_millis()).unwrap_or(u64::MAX),
            })),
        ),
        Update::Note(text) => db.event_with(
            id,
            "llm",
            "note",
            &format!("attempt {attempt}: {text}"),
            Some(&json!({"attempt": attempt})),
        ),
    };
}

/// The `llm done` event of an answer.
fn record_answer(db: &Db, id: &str, attempt: u32, answer: &Answer) -> Result<()> {
    let secs = answer.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        answer.tokens_out as f64 / secs
    } else {
        0.0
    };
    let (finish, how) = match &answer.finish {
        Finish::Stop => ("stop", String::new()),
        Finish::Length => ("length", "; cut off at max_tokens".to_string()),
        Finish::Stopped(why) => ("stopped", format!("; stopped: {why}")),
    };
    let server = answer
        .server_tokens_per_s
        .map(|r| format!("; the server measured {r:.1} tokens/s"))
        .unwrap_or_default();
    db.event_with(
        id,
        "llm",
        "done",
        &format!(
            "{} tokens in {} ({rate:.1} tokens/s) from {}, attempt {attempt}{server}{how}",
            answer.tokens_out,
            crate::clock::format_duration(answer.elapsed),
            answer.provider
        ),
        Some(&json!({
            "attempt": attempt,
            "provider": answer.provider,
            "tokens_in": answer.tokens_in,
            "tokens_out": answer.tokens_out,
            "tokens_cached": answer.tokens_cached,
            "tokens_per_s": (rate * 10.0).round() / 10.0,
            "server_tokens_per_s": answer.server_tokens_per_s.map(|r| (r * 10.0).round() / 10.0),
            "elapsed_ms": u64::try_from(answer.elapsed.as_millis()).unwrap_or(u64::MAX),
            "finish": finish,
        })),
    )?;
    Ok(())
}

/// The site for `prompt`, checked. Errors: every provider failed, or the last attempt's answer
/// still failed its checks (the problems are in the error).
pub async fn generate(
    db: &Db,
    llm: &Llm,
    max_attempts: u32,
    id: &str,
    prompt: &str,
) -> Result<site::Files> {
    let schema: Value = serde_json::from_str(answer::RESPONSE_SCHEMA)?;
    let subject = words::Subject::of(prompt);
    let mut messages = conversation(prompt, &[]);
    let mut temperature = TEMPERATURES[0];
    let (mut restarts, mut meaning_sent) = (0, false);
    let mut earlier: Vec<String> = Vec::new();
    let mut avoid: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for attempt in 1..=max_attempts {
        db.set_attempts(id, attempt)?;
        let observe = move |update: Update<'_>| record(db, id, attempt, temperature, update);
        let ask = Ask {
            messages: &messages,
            temperature,
            schema: &schema,
            watch,
        };
        let answer = llm.complete(&ask, &observe).await?;
        record_answer(db, id, attempt, &answer)?;
        problems.clear();
        let mut restart = None;
        if let Finish::Stopped(why) = &answer.finish {
            problems.push(format!(
                "the answer was stopped after {} tokens: {why}",
                answer.tokens_out
            ));
            restart = Some("its answer was stopped".to_string());
        } else {
            let print = fingerprint(&answer.content);
            if let Some(i) = earlier.iter().position(|e| *e == print) {
                restart = Some(format!("its answer repeats attempt {}'s", i + 1));
            }
            earlier.push(print);
            match site::parse(&answer.content) {
                Ok(mut files) => {
                    let dropped = site::drop_missing_images(&mut files);
                    if !dropped.is_empty() {
                        db.event(
                            id,
                            "check",
                            "note",
                            &format!(
                                "attempt {attempt}: removed the <img> of what the answer did \
                                 not include: {}",
                                dropped.join(", ")
                            ),
                        )?;
                    }
                    db.event(
                        id,
                        "check",
                        "started",
                        &format!(
                            "attempt {attempt}: {} files from {}",
                            files.len(),
                            answer.provider
                        ),
                    )?;
                    problems = site::serve_and_fetch(&files).await;
                    let meaning = words::meaning_problem(&subject, &files);
                    if problems.is_empty()
                        && (meaning.is_none() || meaning_sent || attempt == max_attempts)
                    {
                        let mut message = format!(
                            "index answers 200; {} files, every local link resolves",
                            files.len()
                        );
                        if let Some(m) = meaning {
                            message.push_str(&format!("; kept although {m}"));
                        }
                        db.event(id, "check", "done", &message)?;
                        return Ok(files);
                    }
                    if let Some(m) = meaning.filter(|_| !meaning_sent) {
                        meaning_sent = true;
                        problems.push(m);
                    }
                }
                Err(found) => problems = found,
            }
            if answer.finish == Finish::Length {
                problems.push(format!(
                    "the answer was cut off at max_tokens ({} tokens): write a smaller site, \
                     with fewer and shorter files",
                    answer.tokens_out
                ));
                restart.get_or_insert_with(|| "its answer was cut off".to_string());
            }
        }
        problems.truncate(MAX_PROBLEMS);
        db.event(
            id,
            "check",
            "failed",
            &format!("attempt {attempt}: {}", problems.join("; ")),
        )?;
        if attempt == max_attempts {
            break;
        }
        if let Some(why) = restart {
            restarts += 1;
            temperature = TEMPERATURES[restarts.min(TEMPERATURES.len() - 1)];
            for p in &problems {
                if !avoid.contains(p) {
                    avoid.push(p.clone());
                }
            }
            avoid.truncate(MAX_PROBLEMS);
            messages = conversation(prompt, &avoid);
            db.event_with(
                id,
                "generate",
                "restart",
                &format!(
                    "attempt {attempt}: {why}; starting over with a fresh conversation at \
                     temperature {temperature}"
                ),
                Some(&json!({"attempt": attempt, "temperature": temperature})),
            )?;
        } else {
            messages.push(Message::new("assistant", answer.content));
            messages.push(Message::new(
                "user",
                format!(
                    "The project failed these checks:\n- {}\nAnswer again with the complete, \
                     corrected JSON object.",
                    problems.join("\n- ")
                ),
            ));
        }
    }
    bail!(
        "the generated project still failed its checks after {max_attempts} attempts: {}",
        problems.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::{conversation, fingerprint};

    #[test]
    fn the_same_files_in_other_words_are_the_same_answer() {
        let files = r#"{"files": [{"path": "index.html", "content": "<h1>x</h1>"}]}"#;
        assert_eq!(
            fingerprint(files),
            fingerprint(&format!("Sure! Here it is:\n```json\n{files}\n```"))
        );
        assert_ne!(fingerprint(files), fingerprint("Sorry, I cannot."));
    }

    #[test]
    fn a_fresh_conversation_names_what_to_avoid() {
        let fresh = conversation("a bakery", &["`a.png` is binary".into()]);
        assert_eq!(fresh.len(), 2);
        assert!(
            fresh[1]
                .content
                .starts_with("Build this website: a bakery\n\nEarlier answers")
        );
        assert!(fresh[1].content.ends_with("- `a.png` is binary"));
    }
}
