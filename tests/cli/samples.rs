//! Every sample file in `config/` and `examples/` is parsed here, so samples never rot.

use std::path::Path;

use mailout::bulletin::Bulletin;
use mailout::config::Config;
use mailout::recipient::MEMBER_FIELDS;

use crate::harness::{examples, repo};

#[test]
fn the_sample_config_is_valid_and_complete() {
    let path = repo().join("config/mailout.toml");
    let config = Config::load(&path, true).unwrap_or_else(|e| panic!("{e}: {:?}", e.diagnostics()));
    assert_eq!(config.organisation.series, "Latest From PFCU");
    for kind in ["nps", "cafcass", "pbni", "crc", "general"] {
        assert!(config.sections.contains_key(kind), "section kind {kind}");
    }
    // Every key of PRODUCT.md §10 is written in the sample (smtp and dkim commented out).
    let text = std::fs::read_to_string(&path).unwrap();
    for key in [
        "[organisation]",
        "name =",
        "series =",
        "address =",
        "website =",
        "[sender]",
        "from =",
        "reply_to =",
        "list_address =",
        "list_domain =",
        "unsubscribe_url =",
        "unsubscribe_mailto =",
        "token_secret_env =",
        "[smtp]",
        "url =",
        "username =",
        "password_env =",
        "concurrency =",
        "rate =",
        "timeout_secs =",
        "max_attempts =",
        "[dkim]",
        "domain =",
        "selector =",
        "key_file =",
        "algorithm =",
        "[store]",
        "path =",
        "lease_secs =",
        "[approval]",
        "required =",
        "[schedule]",
        "timezone =",
        "late_limit_mins =",
        "[seeds]",
        "addresses =",
        "imap =",
        "[privacy]",
        "employer_domains =",
        "skip_employer_domains =",
        "[numbering]",
        "start =",
        "[archive]",
        "series_pattern =",
        "site_url =",
        "[greeting]",
        "default =",
        "[sections.nps]",
        "label =",
        "[lists.",
    ] {
        assert!(
            text.contains(key),
            "the sample config does not show `{key}`"
        );
    }
}

#[test]
fn every_example_bulletin_is_valid() {
    let config = Config::load(&repo().join("config/mailout.toml"), true).unwrap();
    assert!(examples().len() >= 3);
    for name in examples() {
        let path = repo().join("examples/bulletins").join(&name);
        let bulletin =
            Bulletin::load(&path).unwrap_or_else(|e| panic!("{name}: {:?}", e.diagnostics()));
        let problems = bulletin.validate(&config, &|f| MEMBER_FIELDS.contains(&f), repo());
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        assert!(
            bulletin.number.is_some() && bulletin.date.is_some(),
            "{name} pins its number and date"
        );
    }
}

#[test]
fn the_example_shapes_are_there() {
    let load = |n: &str| Bulletin::load(&repo().join("examples/bulletins").join(n)).unwrap();
    let crisis = load("236-pandemic-measures.toml");
    assert_eq!(crisis.signatories.len(), 2, "two signatories side by side");
    assert!(
        crisis
            .sections
            .iter()
            .any(|s| s.body.get_ref().contains("\n- ")),
        "a bulleted list"
    );
    let items = load("237-branch-news.toml");
    assert!(items.sections.len() >= 5);
    assert!(
        items.sections.iter().all(|s| !s.signed.is_empty()),
        "each item signed"
    );
    let plan = load("238-operational-plan.toml");
    assert!(plan.source.len() > 12_000, "the long plan is long");
    assert!(
        plan.sections
            .iter()
            .filter(|s| s.body.get_ref().contains("### "))
            .count()
            >= 5
    );
    assert_eq!(plan.attachments.len(), 1);
    assert!(
        Path::new(repo())
            .join(plan.attachments[0].path.get_ref())
            .is_file()
    );
}

#[test]
fn the_example_members_csv_has_the_required_columns() {
    let text = std::fs::read_to_string(repo().join("examples/members.csv")).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("email,name,branch,employer"), "{header}");
    assert!(text.lines().count() > 20);
}
