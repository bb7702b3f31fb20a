//! Delivery status notifications: any bytes are read without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(bounces) = mailout::bounces::parse(data) {
        for b in bounces {
            assert!(!b.recipient.is_empty());
        }
    }
});
