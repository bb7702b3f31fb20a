//! `mailout members import | list`, `lists`, `unsubscribe`, `suppressed`.

use crate::harness::Test;
use crate::on_both;

const CSV: &str = "email,name,branch,employer,grade\n\
    Jo.Bloggs@Members.Test,Jo Bloggs,London,NPS,PO\n\
    not-an-address,Bad Row,London,NPS,\n\
    ann@members.test,\"Clarke, Ann\",Wales,Cafcass,\n\
    ,No Address,Wales,CRC,\n\
    bob@members.test,Bob,Yorkshire,NPS,\n\
    JO.BLOGGS@members.test,Jo Bloggs-Smith,London,NPS,SPO\n";

on_both! {
    fn import_reports_bad_rows_by_line_and_normalises_addresses(backend) {
        let t = Test::new().on(backend).write("members.csv", CSV);
        let run = t.run(&["members", "import", "members.csv"]).success().after_demo_notice();
        assert_eq!(
            run.stderr,
            "members.csv:3: warning: `not-an-address` is not a valid email address; row skipped\n\
             members.csv:5: warning: no email address; row skipped\n\
             members.csv:7: warning: `jo.bloggs@members.test` is also on line 2; this row replaces that one\n"
        );
        assert_eq!(
            run.stdout,
            "imported `members.csv`: 3 new, 0 updated, 2 rows skipped\n"
        );
        let list = t.run(&["members", "list"]).success().stdout;
        assert_eq!(
            list,
            "EMAIL                   NAME             BRANCH     EMPLOYER  SUPPRESSED\n\
             ann@members.test        Clarke, Ann      Wales      Cafcass\n\
             bob@members.test        Bob              Yorkshire  NPS\n\
             jo.bloggs@members.test  Jo Bloggs-Smith  London     NPS\n"
        );
        t.assert_store_on(backend);
    }

    fn a_rerun_updates_and_never_duplicates(backend) {
        let t = Test::new().on(backend).write("members.csv", CSV);
        t.run(&["members", "import", "members.csv"]).success();
        let changed = CSV.replace("Bob,Yorkshire", "Robert,Yorkshire");
        let t = t.write("members.csv", &changed);
        let run = t.run(&["members", "import", "members.csv"]).success();
        assert_eq!(
            run.stdout,
            "imported `members.csv`: 0 new, 4 updated, 2 rows skipped\n"
        );
        let list = t.run(&["members", "list"]).success().stdout;
        assert_eq!(list.lines().count(), 4, "{list}");
        assert!(list.contains("bob@members.test        Robert"), "{list}");
        t.assert_store_on(backend);
    }

    fn lists_count_members_and_named_lists(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"])
            .success();
        let lists = t.run(&["lists"]).success().stdout;
        assert!(lists.starts_with("LIST"), "{lists}");
        assert!(lists.contains("\nall                  "), "{lists}");
        assert!(
            lists
                .lines()
                .any(|l| l.starts_with("all ") && l.ends_with(" 25")),
            "{lists}"
        );
        assert!(
            lists
                .lines()
                .any(|l| l.starts_with("employer:CRC ") && l.ends_with(" 5")),
            "{lists}"
        );
        assert!(
            lists.lines().any(|l| l
                .starts_with("north-and-cafcass (branch:Yorkshire, employer:Cafcass)")
                && l.ends_with(" 11")),
            "{lists}"
        );
        let crc = t
            .run(&["members", "list", "--to", "employer:crc"])
            .success()
            .stdout;
        assert_eq!(crc.lines().count(), 6, "{crc}");
        t.assert_store_on(backend);
    }

    fn unsubscribed_addresses_are_listed_and_not_counted(backend) {
        let t = Test::new().on(backend).write("members.csv", CSV);
        t.run(&["members", "import", "members.csv"]).success();
        let run = t
            .run(&[
                "unsubscribe",
                "BOB@members.test",
                "--reason",
                "asked by phone",
            ])
            .success();
        assert_eq!(run.stdout, "suppressed bob@members.test\n");
        let again = t.run(&["unsubscribe", "bob@members.test"]).success();
        assert_eq!(again.stdout, "bob@members.test was already suppressed\n");
        let suppressed = t.run(&["suppressed"]).success().stdout;
        let row = suppressed.lines().nth(1).unwrap();
        assert!(
            row.starts_with("bob@members.test  manual  2026-11-18T"),
            "{suppressed}"
        );
        assert!(row.ends_with("asked by phone"), "{suppressed}");
        let lists = t.run(&["lists"]).success().stdout;
        assert!(
            lists
                .lines()
                .any(|l| l.starts_with("all ") && l.ends_with(" 2")),
            "{lists}"
        );
        assert!(lists.contains("(1 suppressed member is not counted)"), "{lists}");
        assert!(
            t.run(&["unsubscribe", "nonsense"])
                .code(1)
                .stderr
                .contains("`nonsense` is not an email address")
        );
        t.assert_store_on(backend);
    }

    fn a_csv_without_a_header_is_refused(backend) {
        let t = Test::new()
            .on(backend)
            .write("members.csv", "jo@members.test,Jo,London,NPS\n");
        let run = t.run(&["members", "import", "members.csv"]).code(1);
        assert!(
            run.stderr
                .contains("the first row must name the columns, and one must be `email`"),
            "{}",
            run.stderr
        );
    }

    fn a_windows_1252_csv_is_refused_with_how_to_save_it(backend) {
        let t = Test::new().on(backend);
        std::fs::write(
            t.file("members.csv"),
            b"email,name,branch\njo@members.test,Jo,London\nzoe@members.test,Zo\xe9 Smith,London\n",
        )
        .unwrap();
        let run = t
            .run(&["members", "import", "members.csv"])
            .code(1)
            .after_demo_notice();
        assert!(
            run.stderr.starts_with(
                "error: `members.csv` line 3 is not UTF-8 text (byte 0xE9, which in Windows-1252 is `\u{e9}`); save the file as \"CSV UTF-8\""
            ),
            "{}",
            run.stderr
        );
        // Nothing half-imported.
        let list = t.run(&["members", "list"]).success().stdout;
        assert!(!list.contains("members.test"), "{list}");
    }

    fn extra_values_in_a_row_are_a_warning_with_the_line(backend) {
        let t = Test::new().on(backend).write(
            "members.csv",
            "email,name,branch\njo@members.test,Jo,London\nann@members.test,Clarke, Ann,Wales\n",
        );
        let run = t
            .run(&["members", "import", "members.csv"])
            .success()
            .after_demo_notice();
        assert_eq!(
            run.stderr,
            "members.csv:3: warning: this row has 4 values but the header names 3 columns; `Wales` left out (a comma inside a value needs quotes: \"Smith, Jo\")\n"
        );
        assert_eq!(
            run.stdout,
            "imported `members.csv`: 2 new, 0 updated, 0 rows skipped\n"
        );
        let one = Test::new().on(backend).write("one.csv", "email\n,\nx\n");
        let run = one.run(&["members", "import", "one.csv"]).success();
        assert!(run.stdout.ends_with(", 1 row skipped\n"), "{}", run.stdout);
    }

    fn a_selector_that_matches_nobody_says_which_name_was_meant(backend) {
        let t = Test::with_examples().on(backend);
        t.run(&["members", "import", "examples/members.csv"]).success();
        for args in [
            &["--to", "branch:londn", "--dry-run"][..],
            &["--to", "branch:londn,employer:NSP", "--yes", "-q"][..],
        ] {
            let mut all = vec!["send", "examples/bulletins/237-branch-news.toml"];
            all.extend(args);
            let run = t.run(&all).code(1);
            assert!(
                run.stderr.contains("selects nobody: no member's branch is `londn`; did you mean `London`?"),
                "{}",
                run.stderr
            );
        }
        let run = t
            .run(&["send", "examples/bulletins/237-branch-news.toml", "--to", "employer:NSP", "--dry-run"])
            .code(1);
        assert!(run.stderr.contains("no member's employer is `nsp`; did you mean `NPS`?"), "{}", run.stderr);
        let run = t
            .run(&["send", "examples/bulletins/237-branch-news.toml", "--to", "al", "--dry-run"])
            .code(1);
        assert!(run.stderr.starts_with("error: unknown selector `al`; did you mean `all`?"), "{}", run.stderr);
        assert!(!t.file("outbox/237").exists());
        t.assert_store_on(backend);
    }
}
