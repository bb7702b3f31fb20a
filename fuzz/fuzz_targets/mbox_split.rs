//! The mbox splitter: any bytes split without a panic, and what is written comes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailout::archive::mbox::{MboxReader, MboxWriter};

fuzz_target!(|data: &[u8]| {
    let messages: Vec<Vec<u8>> = MboxReader::new(data).filter_map(Result::ok).map(|m| m.raw).collect();
    let mut writer = MboxWriter::new(Vec::new());
    for m in &messages {
        writer.write("fuzz@example.org", "Mon Jan  1 00:00:00 2024", m).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let again: Vec<Vec<u8>> = MboxReader::new(&bytes[..]).map(|m| m.unwrap().raw).collect();
    assert_eq!(again, messages);
});
