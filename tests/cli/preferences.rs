//! A member's preferences page (PRODUCT.md §6d), served by `mailout serve` at `/p/TOKEN`:
//! what the union holds about them, the optional lists (`[lists.NAME] optional = true`)
//! with their choice, unsubscribe from all, and re-subscribe after their own unsubscribe.
//! Every change is in their history; a form without the page's key, from another site, or
//! with another member's key changes nothing. A person's use of it is driven in headless
//! Chromium from the link in a delivered copy.
//!
//! `MAILOUT_KEEP_PREFERENCES_SHOT=docs/preferences.png cargo test --test cli preferences`
//! keeps the screenshot (the README shows it).

use std::path::Path;

use mailout::token::TokenKey;

use crate::browser::{Browser, CHROMIUM};
use crate::harness::{TOKEN_SECRET, Test, skip};
use crate::serve::{http, serve};

const ROUNDUP: &str = "examples/bulletins/237-branch-news.toml";
const GRACE: &str = "grace.liu@example.org";

fn history(t: &Test, address: &str) -> String {
    t.run(&["members", "history", address]).success().stdout
}

fn sent_to(t: &Test, number: &str) -> Vec<String> {
    let dir = t.file(&format!("outbox/{number}/sent"));
    if !Path::new(&dir).exists() {
        return Vec::new();
    }
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".eml")
                .to_string()
        })
        .collect()
}

#[test]
fn choices_are_kept_and_forged_forms_change_nothing() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let server = serve(&t);
    let key = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec());
    let token = key.token(GRACE);
    let path = format!("/p/{token}");

    let (status, _, page) = http(&server, "GET", &path, "", "");
    assert_eq!(status, 200);
    for shown in [
        "Grace Liu",
        GRACE,
        "<dd>London</dd>",
        "<dd>NPS</dd>",
        "<label for=\"list-reps\"><strong>reps</strong>: Early briefings for reps before each branch meeting</label>",
        "Unsubscribe from all bulletins",
    ] {
        assert!(page.contains(shown), "{shown} in\n{page}");
    }
    assert!(page.contains("value=\"reps\" checked>"), "{page}");
    assert!(!page.contains("<script"), "the page needs no script");
    let form = key.form_key(&token);
    assert!(
        page.contains(&format!("name=\"form\" value=\"{form}\"")),
        "{page}"
    );

    // Forged posts: no key, another member's key, a key from another site.
    let before = history(&t, GRACE);
    let other = key.form_key(&key.token("sam.okoro@example.net"));
    for (body, extra) in [
        ("action=save".to_string(), ""),
        (format!("form={other}&action=unsubscribe"), ""),
        (
            format!("form={form}&action=unsubscribe"),
            "Origin: https://evil.example\r\n",
        ),
        (
            format!("form={form}&action=unsubscribe"),
            "Sec-Fetch-Site: cross-site\r\n",
        ),
    ] {
        let (status, _, page) = http(&server, "POST", &path, &body, extra);
        assert_eq!(status, 403, "{body} {extra}: {page}");
        assert!(page.contains("nothing was changed"), "{page}");
    }
    assert_eq!(history(&t, GRACE), before, "nothing changed");
    let (status, _, _) = http(&server, "GET", "/p/AAAAforgedAAAA", "", "");
    assert_eq!(status, 404);

    // Out of the reps list: kept, shown, in the history, and the next send to reps leaves
    // her out (counted in its account).
    let (status, head, _) = http(
        &server,
        "POST",
        &path,
        &format!("form={form}&action=save"),
        "",
    );
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains(&format!("location: /p/{token}?saved=1")),
        "{head}"
    );
    let (_, _, page) = http(&server, "GET", &format!("{path}?saved=1"), "", "");
    assert!(page.contains("Your choices are saved."), "{page}");
    assert!(page.contains("value=\"reps\">"), "unchecked now: {page}");
    assert!(
        history(&t, GRACE).contains("list-opt-out  preferences page  list `reps`"),
        "{}",
        history(&t, GRACE)
    );
    t.run(&["send", ROUNDUP, "--to", "reps", "--yes", "-q"])
        .success();
    let reps = sent_to(&t, "237");
    assert!(!reps.contains(&GRACE.to_string()), "{reps:?}");
    assert!(
        reps.contains(&"sam.okoro@example.net".to_string()),
        "{reps:?}"
    );
    let job = t.run(&["job", "1"]).success().stdout;
    assert!(
        job.contains("suppressed before the send:  opted-out 1"),
        "{job}"
    );

    // Unsubscribe from all, then back: her own choice both ways.
    http(
        &server,
        "POST",
        &path,
        &format!("form={form}&action=unsubscribe"),
        "",
    );
    assert!(
        t.run(&["suppressed"])
            .success()
            .stdout
            .contains(&format!("{GRACE}  unsubscribed"))
    );
    let (_, _, page) = http(&server, "GET", &path, "", "");
    assert!(page.contains("value=\"resubscribe\""), "{page}");
    let (status, _, _) = http(
        &server,
        "POST",
        &path,
        &format!("form={form}&action=resubscribe"),
        "",
    );
    assert_eq!(status, 303);
    assert!(!t.run(&["suppressed"]).success().stdout.contains(GRACE));
    let record = history(&t, GRACE);
    assert!(
        record.contains("unsubscribed  preferences page"),
        "{record}"
    );
    assert!(
        record.contains("resubscribed  preferences page"),
        "{record}"
    );

    // An officer's suppression is not the member's to lift.
    t.run(&[
        "unsubscribe",
        "sam.okoro@example.net",
        "--reason",
        "left the union",
    ])
    .success();
    let sam = key.token("sam.okoro@example.net");
    let (status, _, page) = http(
        &server,
        "POST",
        &format!("/p/{sam}"),
        &format!("form={}&action=resubscribe", key.form_key(&sam)),
        "",
    );
    assert_eq!(status, 400, "{page}");
    assert!(
        t.run(&["suppressed"])
            .success()
            .stdout
            .contains("sam.okoro@example.net")
    );
}

#[test]
fn a_member_opts_out_from_the_link_in_their_copy_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        skip(&format!(
            "{CHROMIUM} is not installed (apt-get install chromium)"
        ));
        return;
    }
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    t.run(&["send", ROUNDUP, "--to", "all", "--yes", "-q"])
        .success();
    // The link as the member has it, in the text part of their copy.
    let raw = t.bytes(&format!("outbox/237/sent/{GRACE}.eml"));
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let copy = message.body_text(0).unwrap().into_owned();
    let link = copy
        .lines()
        .skip_while(|l| !l.starts_with("Your mail preferences:"))
        .nth(1)
        .expect("a preferences link in the text part")
        .trim()
        .to_string();
    let path = link
        .split_once("/p/")
        .map(|(_, t)| format!("/p/{t}"))
        .unwrap();
    let server = serve(&t);
    let mut browser = Browser::start(&t.file("chromium-profile"));
    browser.open(&format!("http://{}{path}", server.address));
    let text = browser.text();
    assert!(
        text.contains("Grace Liu") && text.contains("London"),
        "{text}"
    );
    assert_eq!(
        browser.eval("document.getElementById('list-reps').checked"),
        true
    );
    // Labels are tied to their boxes: clicking the words unticks it.
    browser.eval("document.querySelector('label[for=list-reps]').click()");
    assert_eq!(
        browser.eval("document.getElementById('list-reps').checked"),
        false
    );
    browser.submit("document.querySelector('button[value=save]').click()");
    let text = browser.text();
    assert!(text.contains("Your choices are saved."), "{text}");
    assert_eq!(
        browser.eval("document.getElementById('list-reps').checked"),
        false
    );
    if let Some(keep) = std::env::var_os("MAILOUT_KEEP_PREFERENCES_SHOT") {
        std::fs::write(keep, browser.screenshot()).unwrap();
    }
    drop(browser);

    assert!(
        history(&t, GRACE).contains("list-opt-out  preferences page"),
        "{}",
        history(&t, GRACE)
    );
    t.run(&[
        "send",
        "examples/bulletins/238-operational-plan.toml",
        "--to",
        "reps",
        "--yes",
        "-q",
    ])
    .success();
    let reps = sent_to(&t, "238");
    assert!(
        !reps.is_empty() && !reps.contains(&GRACE.to_string()),
        "{reps:?}"
    );
}

/// Waits (up to a minute) until `path` exists, woken by the file system's events: the
/// link mail is sent after the answer.
fn arrives(path: &Path) -> bool {
    use notify::Watcher;
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (events, seen) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(events).unwrap();
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || seen.recv_timeout(left).is_err() {
            return path.exists();
        }
    }
    true
}

#[test]
fn email_me_my_link_answers_the_same_and_sends_only_to_members() {
    let t = Test::with_examples();
    t.run(&["members", "import", "examples/members.csv"])
        .success();
    let server = serve(&t);
    let key = TokenKey::new(TOKEN_SECRET.as_bytes().to_vec());
    let (status, _, page) = http(&server, "GET", "/p/", "", "");
    assert_eq!(status, 200);
    assert!(
        page.contains("<label for=\"email\">Your email address</label>"),
        "{page}"
    );
    let form = key.form_key("/p/");
    assert!(page.contains(&form), "{page}");

    let ask = |email: &str| {
        http(
            &server,
            "POST",
            "/p/",
            &format!("form={form}&email={email}"),
            "",
        )
    };
    let (s1, _, stranger) = ask("nobody%40example.net");
    let (s2, _, member) = ask("Grace.Liu%40example.org");
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        stranger, member,
        "the same answer for a member and anyone else"
    );
    assert!(
        member.contains("If that address is on the union"),
        "{member}"
    );

    // One sender, in the order asked: once Grace's link is there, a stranger's would be.
    let links = t.file("outbox/links");
    let grace = links.join(format!("{GRACE}.eml"));
    assert!(arrives(&grace), "no link mail for a member");
    assert!(
        !links.join("nobody@example.net.eml").exists(),
        "a link went to a stranger"
    );
    let mail = std::fs::read_to_string(&grace)
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "");
    assert!(mail.contains(&format!("/p/{}", key.token(GRACE))), "{mail}");
    assert!(
        mail.contains("Subject: Your mail preferences at Probation and Family Courts Union"),
        "{mail}"
    );

    // Asked again within the quarter hour: answered the same, nothing sent.
    std::fs::remove_file(&grace).unwrap();
    assert_eq!(ask(GRACE).2, member);
    ask("sam.okoro%40example.net");
    assert!(arrives(&links.join("sam.okoro@example.net.eml")));
    assert!(!grace.exists(), "a second link to the same address so soon");

    // Forged or bad requests.
    let (status, _, _) = http(&server, "POST", "/p/", "email=grace.liu%40example.org", "");
    assert_eq!(status, 403);
    let (status, _, page) = http(
        &server,
        "POST",
        "/p/",
        &format!("form={form}&email=not-an-address"),
        "",
    );
    assert_eq!(status, 400);
    assert!(page.contains("That is not an email address."), "{page}");
}
