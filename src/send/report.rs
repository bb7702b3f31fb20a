//! A send's account as one self-contained HTML page (PRODUCT.md §6c, issue 15): the figures
//! that add up, the reasons, a bar per branch and per employer, and the failures with the
//! server's replies, for an officer to forward. Nothing in it loads anything: the style is
//! inline, there is no script, and its policy forbids everything else. Names, branches and
//! replies come from members' records and other people's servers, so every value is escaped
//! by the template and cut to a sane length.

use handlebars::Handlebars;
use serde::Serialize;

use super::account::{Account, Figures};
use crate::error::{Error, Result};
use crate::store::Job;

/// The page's template.
const TEMPLATE: &str = include_str!("../../templates/report.html.hbs");

/// The most characters of a server's reply shown.
pub const REPLY_CHARS: usize = 500;

/// The most characters of a name, an address, a branch or a reason shown.
const VALUE_CHARS: usize = 200;

/// The most failures listed; the rest are counted (`--json` lists them all).
pub const MOST_FAILURES: usize = 2_000;

/// The bar segments, in the order they are drawn: class, label, what it counts.
const SEGMENTS: [(&str, &str, &str); 5] = [
    ("sent", "sent", "accepted by the server, no bounce since"),
    ("failed", "failed", "refused for good, or given up on"),
    (
        "bounced",
        "bounced",
        "accepted, then reported undeliverable by the member's server",
    ),
    (
        "notyet",
        "not yet",
        "pending, or sent without a final reply (uncertain)",
    ),
    (
        "notsent",
        "not sent",
        "suppressed before the send, left out during it, or cancelled",
    ),
];

/// The page of job `job`'s `account`, as of `at` (RFC 3339).
pub fn render(account: &Account, job: &Job, at: &str) -> Result<String> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry
        .register_template_string("report", TEMPLATE)
        .map_err(|e| Error::Internal(format!("the report's template does not compile: {e}")))?;
    registry
        .render("report", &Page::of(account, job, at))
        .map_err(|e| Error::Failed {
            context: format!("could not write the report of job {}", account.job),
            source: Box::new(e),
        })
}

/// The name of job `id`'s report file.
pub fn file_name(id: i64) -> String {
    format!("job-{id}.html")
}

/// What the template is given: every value a string already shown and cut.
#[derive(Serialize)]
struct Page {
    tab: String,
    title: String,
    headline: String,
    facts: Vec<Fact>,
    terms: Vec<Term>,
    selected: String,
    total: String,
    adds_up: bool,
    later: Vec<Fact>,
    reasons: Vec<Reasons>,
    waves: Vec<Wave>,
    legend: Vec<Legend>,
    groups: Vec<Groups>,
    failures: Vec<FailureRow>,
    failures_total: String,
    failures_left_out: Option<String>,
    seeds: Vec<Fact>,
    reply_chars: usize,
}

/// A labelled value: one of the job's facts, or what came back later.
#[derive(Serialize)]
struct Fact {
    label: &'static str,
    value: String,
}

/// One outcome in the account's sum.
#[derive(Serialize)]
struct Term {
    sign: &'static str,
    label: &'static str,
    value: String,
    note: &'static str,
}

/// One table of counts by reason.
#[derive(Serialize)]
struct Reasons {
    title: &'static str,
    rows: Vec<Count>,
}

/// A reason and how many members it was.
#[derive(Serialize)]
struct Count {
    reason: String,
    count: String,
}

/// One wave's figures, the selected first.
#[derive(Serialize)]
struct Wave {
    wave: u32,
    kind: &'static str,
    cells: Vec<String>,
}

/// What a bar's colour means.
#[derive(Serialize)]
struct Legend {
    class: &'static str,
    label: &'static str,
    note: &'static str,
}

/// The branches or the employers.
#[derive(Serialize)]
struct Groups {
    title: &'static str,
    heading: &'static str,
    rows: Vec<GroupRow>,
}

/// One branch or employer: its bar and its figures.
#[derive(Serialize)]
struct GroupRow {
    name: String,
    selected: String,
    segments: Vec<Segment>,
    cells: Vec<String>,
    summary: String,
}

/// One part of a bar, as wide as its share.
#[derive(Serialize)]
struct Segment {
    class: &'static str,
    width: String,
    count: String,
    title: String,
    labelled: bool,
}

/// One failed or uncertain copy.
#[derive(Serialize)]
struct FailureRow {
    email: String,
    name: String,
    branch: String,
    state: &'static str,
    reason: String,
    reply: String,
}

impl Page {
    fn of(account: &Account, job: &Job, at: &str) -> Page {
        let f = &account.figures;
        let mut facts = vec![
            fact(
                "Bulletin",
                format!("{} ({})", account.number, shown(&job.spec.source)),
            ),
            fact("Sent to", shown(&account.selectors)),
            fact("By", shown(&job.spec.transport)),
            fact("State", account.state.to_string()),
            fact("Started", when(&account.started)),
        ];
        if let Some(finished) = &account.finished {
            facts.push(fact("Finished", when(finished)));
        }
        facts.push(fact("Figures as of", when(at)));
        let terms = vec![
            term("", "Sent", f.sent, "accepted by the server"),
            term("+", "Failed", f.failed, "refused for good, or given up on"),
            term(
                "+",
                "Uncertain",
                f.uncertain,
                "sent in full without a final reply: may have arrived",
            ),
            term(
                "+",
                "Suppressed before the send",
                f.suppressed_before,
                "unsubscribed, bounced or removed before the job started",
            ),
            term(
                "+",
                "Left out during it",
                f.left_out_during,
                "suppressed after the job started, before their turn",
            ),
            term(
                "+",
                "Cancelled",
                f.cancelled,
                "not sent: the job was cancelled",
            ),
            term("+", "Pending", f.pending, "not sent yet"),
        ];
        let bounces = if account.bounces_by_consequence.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                account
                    .bounces_by_consequence
                    .iter()
                    .map(|(kind, n)| format!("{} {}", shown(kind), grouped(*n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let later = vec![
            fact("Bounced", format!("{}{bounces}", grouped(f.bounced))),
            fact("Unsubscribed", grouped(f.unsubscribed)),
        ];
        let reasons = [
            ("Failed, by reason", &account.failed_by_reason),
            (
                "Suppressed before the send, by reason",
                &account.suppressed_by_reason,
            ),
            ("Left out during it, by reason", &account.left_out_by_reason),
            (
                "Bounced later, by consequence",
                &account.bounces_by_consequence,
            ),
        ]
        .into_iter()
        .filter(|(_, counts)| !counts.is_empty())
        .map(|(title, counts)| Reasons {
            title,
            rows: counts
                .iter()
                .map(|(reason, n)| Count {
                    reason: shown(reason),
                    count: grouped(*n),
                })
                .collect(),
        })
        .collect();
        let waves = if account.waves.len() > 1 {
            account
                .waves
                .iter()
                .map(|w| Wave {
                    wave: w.wave,
                    kind: if w.wave == 1 { "start" } else { "top-up" },
                    cells: outcomes(&w.figures).iter().map(|n| grouped(*n)).collect(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let groups = [
            ("By branch", "Branch", &account.by_branch),
            ("By employer", "Employer", &account.by_employer),
        ]
        .into_iter()
        .map(|(title, heading, groups)| Groups {
            title,
            heading,
            rows: groups
                .iter()
                .map(|g| group_row(&g.name, &g.figures))
                .collect(),
        })
        .collect();
        let failures = account
            .failures
            .iter()
            .take(MOST_FAILURES)
            .map(|x| FailureRow {
                email: shown(&x.email),
                name: x.name.as_deref().map(shown).unwrap_or_default(),
                branch: shown(&x.branch),
                state: x.state,
                reason: shown(&x.reason),
                reply: cut(&x.reply, REPLY_CHARS),
            })
            .collect();
        let left = account.failures.len().saturating_sub(MOST_FAILURES);
        Page {
            tab: format!(
                "Job {}: bulletin {} — {}",
                account.job,
                account.number,
                shown(&account.subject)
            ),
            title: format!(
                "Job {}: the account of bulletin {}",
                account.job, account.number
            ),
            headline: headline(account),
            facts,
            terms,
            selected: grouped(f.selected),
            total: grouped(f.total()),
            adds_up: f.total() == f.selected,
            later,
            reasons,
            waves,
            legend: SEGMENTS
                .iter()
                .map(|(class, label, note)| Legend { class, label, note })
                .collect(),
            groups,
            failures,
            failures_total: grouped(account.failures.len() as u64),
            failures_left_out: (left > 0).then(|| {
                format!(
                    "… and {} more; `mailout job {} --json` lists every one.",
                    grouped(left as u64),
                    account.job
                )
            }),
            seeds: account
                .seeds
                .iter()
                .map(|seed| Fact {
                    label: "Seed",
                    value: format!(
                        "{}: {}",
                        shown(&seed.address),
                        cut(&super::account::seed_in_words(seed), REPLY_CHARS)
                    ),
                })
                .collect(),
            reply_chars: REPLY_CHARS,
        }
    }
}

fn fact(label: &'static str, value: String) -> Fact {
    Fact { label, value }
}

fn term(sign: &'static str, label: &'static str, n: u64, note: &'static str) -> Term {
    Term {
        sign,
        label,
        value: grouped(n),
        note,
    }
}

/// `237 — Subject: 1,000 selected; 950 sent, 12 failed, …; later 3 bounced.`
fn headline(account: &Account) -> String {
    let f = &account.figures;
    let mut parts = vec![format!("{} sent", grouped(f.sent))];
    for (n, what) in [
        (f.failed, "failed"),
        (f.uncertain, "uncertain"),
        (f.suppressed_before, "suppressed before the send"),
        (f.left_out_during, "left out during it"),
        (f.cancelled, "cancelled"),
        (f.pending, "not sent yet"),
    ] {
        if n > 0 {
            parts.push(format!("{} {what}", grouped(n)));
        }
    }
    let mut later = Vec::new();
    if f.bounced > 0 {
        later.push(format!("{} bounced", grouped(f.bounced)));
    }
    if f.unsubscribed > 0 {
        later.push(format!("{} unsubscribed", grouped(f.unsubscribed)));
    }
    let later = if later.is_empty() {
        String::new()
    } else {
        format!("; later {}", later.join(", "))
    };
    format!(
        "{} — {}: {} selected; {}{later}.",
        account.number,
        shown(&account.subject),
        grouped(f.selected),
        parts.join(", ")
    )
}

/// The seven outcomes and the selected count first, as the tables show them.
fn outcomes(f: &Figures) -> [u64; 8] {
    [
        f.selected,
        f.sent,
        f.failed,
        f.uncertain,
        f.suppressed_before,
        f.left_out_during,
        f.cancelled,
        f.pending,
    ]
}

/// The bar's five parts of a group, adding up to its selected count. A bounce is of a copy
/// that was sent (or may have been): it is taken from the sent first, then the uncertain.
fn parts(f: &Figures) -> [u64; 5] {
    let from_sent = f.bounced.min(f.sent);
    let from_uncertain = (f.bounced - from_sent).min(f.uncertain);
    [
        f.sent - from_sent,
        f.failed,
        from_sent + from_uncertain,
        f.pending + f.uncertain - from_uncertain,
        f.suppressed_before + f.left_out_during + f.cancelled,
    ]
}

fn group_row(name: &str, f: &Figures) -> GroupRow {
    let parts = parts(f);
    let whole: u64 = parts.iter().sum();
    let segments = SEGMENTS
        .iter()
        .zip(parts)
        .filter(|(_, n)| *n > 0)
        .map(|((class, label, _), n)| {
            let percent = n as f64 * 100.0 / whole as f64;
            Segment {
                class,
                width: format!("{percent:.2}%"),
                count: grouped(n),
                title: format!("{label}: {} of {}", grouped(n), grouped(whole)),
                // Room for the figure inside the segment; it is in the columns beside too.
                labelled: percent >= 7.0,
            }
        })
        .collect();
    let summary = SEGMENTS
        .iter()
        .zip(parts)
        .map(|((_, label, _), n)| format!("{} {label}", grouped(n)))
        .collect::<Vec<_>>()
        .join(", ");
    GroupRow {
        name: shown(name),
        selected: grouped(f.selected),
        segments,
        cells: parts.iter().map(|n| grouped(*n)).collect(),
        summary,
    }
}

/// `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An RFC 3339 time as people read it (`18 Nov 2026, 11:06 UTC`); as it is when it does not
/// parse.
fn when(stamp: &str) -> String {
    match stamp.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%-d %b %Y, %H:%M UTC").to_string(),
        Err(_) => shown(stamp),
    }
}

/// A value from a record, cut to [`VALUE_CHARS`].
fn shown(value: &str) -> String {
    cut(value, VALUE_CHARS)
}

/// `value` on one line, its direction marks shown rather than obeyed, cut to `most`
/// characters with `…`. The template escapes what is left.
fn cut(value: &str, most: usize) -> String {
    let mut out = String::new();
    for (count, c) in crate::address::clean(value).chars().enumerate() {
        if count == most {
            out.push('…');
            break;
        }
        if matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}
