//! Importing one message: parsing, bulletin recognition, sections, and the site's HTML
//! sanitiser never panic, and the raw bytes are always kept.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailout::archive::{parse, recognise::Recogniser, sanitise};
use mailout::config::Config;

fuzz_target!(|data: &[u8]| {
    static RECOGNISER: OnceLock<Recogniser> = OnceLock::new();
    let recogniser = RECOGNISER.get_or_init(|| Recogniser::new(&Config::builtin()).unwrap());
    let message = parse::parse(data, "fuzz", None, recogniser);
    assert_eq!(parse::decompress(&message.raw_zstd).unwrap(), data);
    let (text, html) = parse::bodies(data);
    if let Some(html) = &html {
        let clean = sanitise::sanitise(html, Default::default());
        assert!(!clean.to_lowercase().contains("<script"));
    }
    if let Some(text) = text.as_deref().or(message.text.as_deref()) {
        let _ = mailout::archive::recognise::sections(text);
    }
});
