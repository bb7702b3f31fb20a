//! Compose benchmarks: building the largest example, and personalising copies in memory.
//!
//! `cargo bench --bench compose` (the figures in the README come from `benches/run`, which
//! also times the whole `mailout build` process with hyperfine).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailout::recipient::Recipient;
use mailout::workspace::{Options, Workspace};

const LARGEST: &str = "examples/bulletins/238-operational-plan.toml";

/// A temporary copy of the repository's config and examples, made the current folder.
fn organisation() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["config", "examples"] {
        copy_dir(&repo.join(folder), &dir.path().join(folder));
    }
    std::env::set_current_dir(dir.path()).expect("cd");
    // SAFETY: set before any thread is started by the benchmark.
    unsafe { std::env::set_var("MAILOUT_TOKEN_SECRET", "bench") };
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `n` members across the four employers and several branches; one in ten has no name.
pub fn members(n: usize) -> Vec<Recipient> {
    let employers = ["NPS", "Cafcass", "PbNI", "CRC"];
    let branches = [
        "Yorkshire",
        "London",
        "Wales",
        "Midlands",
        "Northern Ireland",
    ];
    (0..n)
        .map(|i| Recipient {
            email: format!("member{i:07}@members.test"),
            name: (i % 10 != 0).then(|| format!("Member{i} Surname{}", i % 977)),
            branch: Some(branches[i % branches.len()].to_string()),
            employer: Some(employers[i % employers.len()].to_string()),
            attributes: Default::default(),
        })
        .collect()
}

fn compose(c: &mut Criterion) {
    let _dir = organisation();
    let workspace = Workspace::open(&Options::default()).unwrap();

    let mut group = c.benchmark_group("build");
    group.sample_size(30);
    group.bench_function("largest example (238), library", |b| {
        b.iter(|| {
            workspace
                .build(Path::new(LARGEST), Path::new("outbox"))
                .unwrap()
        })
    });
    group.finish();

    let edition = workspace.edition(Path::new(LARGEST)).unwrap();
    let mailing = workspace.mailing(edition, Some("all")).unwrap();
    let recipients = members(100_000);
    // Render every audience variant once before timing, as a send does on its first copies.
    for r in recipients.iter().take(100) {
        mailing.copy_for(r, false).unwrap();
    }

    let mut group = c.benchmark_group("personalise");
    group.sample_size(10);
    group.throughput(Throughput::Elements(recipients.len() as u64));
    group.bench_function("100,000 copies of 238 in memory", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for r in &recipients {
                bytes += black_box(mailing.copy_for(r, false).unwrap()).bytes.len();
            }
            bytes
        })
    });
    group.finish();

    // One plain timed pass, printed as messages/second for the README.
    let start = Instant::now();
    for r in &recipients {
        black_box(mailing.copy_for(r, false).unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "personalise: {} copies in {:.3} s = {:.0} messages/second (one core)",
        recipients.len(),
        secs,
        recipients.len() as f64 / secs
    );

    // The same copies signed with ed25519, as a send with `[dkim]` does.
    let key = std::env::current_dir().unwrap().join("dkim.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status();
    if !matches!(made, Ok(s) if s.success()) {
        println!("sign: skipped (needs openssl to make a key)");
        return;
    }
    let dkim = mailout::config::Dkim {
        domain: "union.example.org".into(),
        selector: "bench".into(),
        key_file: key,
        algorithm: "ed25519".into(),
    };
    let signer = mailout::dkim::Signer::load(&dkim, Path::new(".")).unwrap();
    // Each copy built and then signed, as a send does, timed apart.
    let (mut building, mut signing) = (0.0, 0.0);
    let mut size = 0;
    let n = 20_000;
    for r in recipients.iter().take(n) {
        let start = Instant::now();
        let copy = black_box(mailing.copy_for(r, false).unwrap());
        let built = Instant::now();
        let signed = black_box(signer.sign(&copy.bytes).unwrap());
        signing += built.elapsed().as_secs_f64();
        building += (built - start).as_secs_f64();
        size = signed.len();
    }
    // mail-auth's own signer on the same copies, for comparison.
    let pem = std::fs::read(std::env::current_dir().unwrap().join("dkim.pem")).unwrap();
    let der = {
        use rustls_pki_types::pem::PemObject as _;
        rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(&pem).unwrap()
    };
    let key = mail_auth::common::crypto::Ed25519Key::from_pkcs8_maybe_unchecked_der(
        der.secret_pkcs8_der(),
    )
    .unwrap();
    let theirs = mail_auth::dkim::DkimSigner::from_key(key)
        .domain("union.example.org")
        .selector("bench")
        .headers(mailout::dkim::SIGNED_HEADERS.iter().copied())
        .header_canonicalization(mail_auth::dkim::Canonicalization::Relaxed)
        .body_canonicalization(mail_auth::dkim::Canonicalization::Relaxed);
    let mut mail_auths = 0.0;
    for r in recipients.iter().take(n) {
        let copy = mailing.copy_for(r, false).unwrap();
        let start = Instant::now();
        black_box(theirs.sign(&copy.bytes).unwrap());
        mail_auths += start.elapsed().as_secs_f64();
    }
    println!(
        "build then sign (ed25519), {n} copies of about {size} bytes: build {:.1} µs, sign {:.1} µs each (mail-auth's own signer: {:.1} µs; one core)",
        building * 1e6 / n as f64,
        signing * 1e6 / n as f64,
        mail_auths * 1e6 / n as f64
    );
}

criterion_group!(benches, compose);
criterion_main!(benches);
