//! Search latency on an archive: `cargo bench --bench archive_search -- STORE`. Runs a mix
//! of queries (common and rare words, phrases, AND/OR/NOT) many times and prints p50 and
//! p99 in milliseconds. `benches/archive` builds the 100,000-message archive it is run on.

use std::time::Instant;

use mailout::store;

const QUERIES: &[&str] = &[
    "money",
    "mortgage",
    "linux",
    "python",
    "delivery",
    "unsubscribe",
    "\"click here\"",
    "\"mailing list\"",
    "free NOT money",
    "perl OR python",
    "server AND kernel",
    "spamassassin",
    "razor",
    "zzzzunlikelyword",
    "report",
    "subject:meeting",
];

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "archive.sqlite".into());
    if !std::path::Path::new(&path).exists() {
        println!("archive_search: no store at {path}; run benches/archive first (skipped)");
        return;
    }
    let store = store::open(&path).expect("open the store");
    // Warm the page cache once, as a server would be.
    for q in QUERIES {
        mailout::archive::search::search(store.as_ref(), q, 20, &Default::default())
            .expect("search");
    }
    let mut times = Vec::new();
    for _ in 0..20 {
        for q in QUERIES {
            let start = Instant::now();
            let hits = mailout::archive::search::search(store.as_ref(), q, 20, &Default::default())
                .expect("search");
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(hits);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    println!(
        "search latency over {} queries ({} kinds x 20), 20 hits each: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        QUERIES.len(),
        at(0.50),
        at(0.99),
        times[times.len() - 1]
    );
}
