//! Words of prompts and pages, transliterated to ASCII (`deunicode`: `个人作品集` → `Ge Ren Zuo Pin
//! Ji`, `тёмной` → `tiomnoi`, `🚀` → `rocket`): a project's name made from its prompt, and the
//! smoke test of meaning, which asks whether a site's visible text names anything of the prompt's
//! subject. Start from [`name_from_prompt`] and [`meaning_problem`].

use std::collections::BTreeSet;

use super::site::Files;

/// Words that say nothing of a site's subject: English function words and the words every
/// request for a site uses.
const STOP_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "with",
    "and",
    "or",
    "for",
    "of",
    "to",
    "in",
    "on",
    "at",
    "by",
    "from",
    "my",
    "our",
    "your",
    "me",
    "i",
    "we",
    "you",
    "it",
    "its",
    "is",
    "are",
    "be",
    "that",
    "this",
    "some",
    "about",
    "as",
    "into",
    "please",
    "make",
    "build",
    "create",
    "write",
    "give",
    "want",
    "need",
    "site",
    "website",
    "web",
    "page",
    "webpage",
    "homepage",
    "simple",
    "small",
    "nice",
    "beautiful",
    "modern",
    "new",
    "using",
    "use",
    "s",
];

/// Lower-case ASCII words of `text` after transliteration.
pub fn ascii_words(text: &str) -> Vec<String> {
    deunicode::deunicode(text)
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// The longest name: [`crate::stack::check_name`]'s limit.
const MAX_NAME: usize = 40;

/// The name a prompt suggests: its transliterated words, stop words left out, joined by `-`, at
/// most 40 characters; `None` when nothing of it is a letter or digit in ASCII.
pub fn name_from_prompt(prompt: &str) -> Option<String> {
    let words: Vec<String> = ascii_words(prompt)
        .into_iter()
        .filter(|w| {
            ![
                "a", "an", "the", "with", "and", "for", "of", "to", "in", "my",
            ]
            .contains(&w.as_str())
        })
        .collect();
    let mut name = String::new();
    for word in words {
        if name.is_empty() {
            name = word.chars().take(MAX_NAME).collect();
            continue;
        }
        if name.len() + 1 + word.len() > MAX_NAME {
            break;
        }
        name.push('-');
        name.push_str(&word);
    }
    (!name.is_empty()).then_some(name)
}

/// The `n`th name to try for a project whose prompt suggested `base` (`n` from 1): `base`, then
/// `base-2`, `base-3`, … shortened at a `-` so that the whole stays within 40 characters.
pub fn numbered(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_string();
    }
    let suffix = format!("-{n}");
    let room = MAX_NAME - suffix.len();
    let mut stem = base;
    if stem.len() > room {
        stem = &stem[..room];
        if let Some(cut) = stem.rfind('-').filter(|&i| i > 0) {
            stem = &stem[..cut];
        }
    }
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

/// The words of the prompt that carry its subject: transliterated, stop words left out.
fn subject_words(prompt: &str) -> BTreeSet<String> {
    ascii_words(prompt)
        .into_iter()
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// Whether most letters of `text` are Latin (ASCII) letters; `None` when it has no letter.
fn mostly_latin(text: &str) -> Option<bool> {
    let (latin, all) = text
        .chars()
        .filter(|c| c.is_alphabetic())
        .fold((0usize, 0usize), |(l, a), c| {
            (l + usize::from(c.is_ascii_alphabetic()), a + 1)
        });
    (all > 0).then_some(latin * 2 > all)
}

/// The subject of a prompt, for [`meaning_problem`]: its words, and its script.
#[derive(Debug, Clone)]
pub struct Subject {
    pub words: BTreeSet<String>,
    latin: Option<bool>,
}

impl Subject {
    pub fn of(prompt: &str) -> Self {
        Self {
            words: subject_words(prompt),
            latin: mostly_latin(prompt),
        }
    }
}

/// Two words are the same word, give or take an ending: equal, one a prefix of the other and at
/// least 4 characters, or a common beginning of 5 (`bakery`/`bakers`,
/// `photography`/`photographer`).
fn same_word(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    a == b || (short.len() >= 4 && long.starts_with(short)) || common >= 5
}

/// The text a visitor reads on an HTML page: no tags, no scripts, no styles, no comments.
pub fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        let skip_to = if rest.starts_with("<!--") {
            rest.find("-->").map(|e| i + e + 3)
        } else if rest.starts_with("<script") {
            rest.find("</script>").map(|e| i + e + 9)
        } else if rest.starts_with("<style") {
            rest.find("</style>").map(|e| i + e + 8)
        } else if rest.starts_with('<') {
            rest.find('>').map(|e| i + e + 1)
        } else {
            None
        };
        if let Some(next) = skip_to {
            out.push(' ');
            i = next;
            continue;
        }
        if rest.starts_with('<') {
            break;
        }
        let end = rest.find('<').map_or(html.len(), |e| i + e);
        out.push_str(&html[i..end]);
        i = end;
    }
    out
}

/// The problem to send back when no word of the site's visible text (every HTML file) is a word
/// of the prompt's subject; `None` when one is, or when the prompt has no subject word.
///
/// A site in another script than the prompt (a Russian prompt answered in English) is not judged:
/// words of two languages cannot be compared by their letters (`kofeini` is not `coffee`).
pub fn meaning_problem(subject: &Subject, files: &Files) -> Option<String> {
    if subject.words.is_empty() {
        return None;
    }
    let text: String = files
        .iter()
        .filter(|(path, _)| path.ends_with(".html") || path.ends_with(".htm"))
        .map(|(_, html)| visible_text(html))
        .collect::<Vec<_>>()
        .join(" ");
    if subject.latin.is_some() && mostly_latin(&text).is_some_and(|l| Some(l) != subject.latin) {
        return None;
    }
    let seen: BTreeSet<String> = ascii_words(&text).into_iter().collect();
    let subject = &subject.words;
    let found = subject
        .iter()
        .any(|want| seen.iter().any(|word| same_word(want, word)));
    (!found).then(|| {
        format!(
            "the visible text of the site names nothing of the request ({}): write the site the \
             request asks for, with its own headings and text",
            subject.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

/// True when a page's visible text is lorem ipsum and nothing else worth reading.
pub fn lorem_only(html: &str) -> bool {
    const LOREM: &[&str] = &[
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "adipisicing",
        "elit",
        "sed",
        "do",
        "eiusmod",
        "tempor",
        "incididunt",
        "ut",
        "labore",
        "et",
        "dolore",
        "magna",
        "aliqua",
    ];
    let words = ascii_words(&visible_text(html));
    let other = words
        .iter()
        .filter(|w| !LOREM.contains(&w.as_str()))
        .count();
    words.iter().any(|w| w == "lorem") && other <= 3
}

#[cfg(test)]
mod tests {
    use super::{Subject, lorem_only, meaning_problem, name_from_prompt, numbered};
    use crate::ai::site::Files;

    #[test]
    fn names_from_prompts_in_any_script() {
        for (prompt, want) in [
            (
                "Portfolio website with dark mode!",
                Some("portfolio-website-dark-mode"),
            ),
            (
                "个人作品集网站，深色模式",
                Some("ge-ren-zuo-pin-ji-wang-zhan-shen-se-mo"),
            ),
            (
                "Сайт-портфолио с тёмной темой",
                Some("sait-portfolio-s-tiomnoi-temoi"),
            ),
            (
                "ダークモードのポートフォリオサイト",
                Some("dakumodonopotohuoriosaito"),
            ),
            ("🚀🌙✨", Some("rocket-crescent-moon-sparkles")),
            (
                "Café crème — page d'accueil",
                Some("cafe-creme-page-d-accueil"),
            ),
            (&"x".repeat(60), Some(&*"x".repeat(40))),
            ("？！。", None),
            ("", None),
        ] {
            assert_eq!(name_from_prompt(prompt).as_deref(), want, "{prompt}");
            if let Some(name) = want {
                assert!(crate::stack::check_name(name).is_ok(), "{name}");
            }
        }
    }

    #[test]
    fn numbered_names_stay_valid() {
        assert_eq!(numbered("project", 1), "project");
        assert_eq!(numbered("project", 2), "project-2");
        let long = "ge-ren-zuo-pin-ji-wang-zhan-shen-se-mo";
        assert_eq!(numbered(long, 2), format!("{long}-2"));
        assert_eq!(numbered(long, 12), "ge-ren-zuo-pin-ji-wang-zhan-shen-se-12");
        assert_eq!(
            numbered(&"x".repeat(40), 12),
            format!("{}-12", "x".repeat(37))
        );
        for n in 1..200 {
            assert!(crate::stack::check_name(&numbered(long, n)).is_ok());
        }
    }

    fn site(html: &str) -> Files {
        [
            ("index.html".to_string(), html.to_string()),
            (
                "style.css".to_string(),
                "body { color: portfolio; }".to_string(),
            ),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn the_meaning_check_looks_for_the_subject_in_the_visible_text() {
        let subject = Subject::of("A portfolio website with dark mode");
        assert_eq!(
            subject.words.iter().map(String::as_str).collect::<Vec<_>>(),
            ["dark", "mode", "portfolio"]
        );
        assert_eq!(
            meaning_problem(&subject, &site("<h1>My Portfolio</h1>")),
            None
        );
        let off = meaning_problem(
            &subject,
            &site("<title>x</title><style>.portfolio{}</style><h1 class=\"portfolio\">Bakery</h1>"),
        )
        .unwrap();
        assert!(off.contains("dark, mode, portfolio"), "{off}");
        // Endings differ: bakery / bakers.
        let bakery = Subject::of("landing page for a bakery");
        assert_eq!(
            meaning_problem(&bakery, &site("<p>Fresh from our bakers</p>")),
            None
        );
        // A prompt in Chinese and a page in Chinese meet after transliteration.
        let chinese = Subject::of("个人作品集网站，深色模式");
        assert_eq!(
            meaning_problem(&chinese, &site("<h1>我的作品集</h1>")),
            None
        );
        assert!(meaning_problem(&chinese, &site("<h1>其他的东西</h1>")).is_some());
        let russian = Subject::of("Сайт-портфолио с тёмной темой");
        assert_eq!(meaning_problem(&russian, &site("<h1>Portfolio</h1>")), None);
        // A page in another script than the prompt is not judged: a Russian prompt answered in
        // English (Qwen2.5-Coder-1.5B did so), an English prompt answered in Russian.
        let coffee = Subject::of("страница кофейни с меню и ценами");
        assert_eq!(
            meaning_problem(&coffee, &site("<h1>Coffee Shop</h1><p>Menu and prices</p>")),
            None
        );
        assert!(meaning_problem(&coffee, &site("<h1>Погода</h1>")).is_some());
        assert_eq!(
            meaning_problem(&bakery, &site("<h1>Погода на сегодня</h1>")),
            None
        );
        // Nothing to look for: no problem.
        assert_eq!(
            meaning_problem(&Subject::of("a website"), &site("<p>x</p>")),
            None
        );
    }

    #[test]
    fn lorem_ipsum_alone_is_no_content() {
        assert!(lorem_only(
            "<h1>Lorem ipsum</h1><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>"
        ));
        assert!(!lorem_only(
            "<h1>Bakery</h1><p>Lorem ipsum dolor sit amet</p><p>Open daily 8-18, fresh bread</p>"
        ));
        assert!(!lorem_only("<h1>Bakery</h1>"));
    }
}
