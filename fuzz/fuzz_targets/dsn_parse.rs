//! Delivery status notifications: any bytes are read without a panic, and a failure always
//! names a recipient.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let own = mailout::bounces::Own::default();
    if let mailout::bounces::Verdict::Bounces(bounces) = mailout::bounces::parse(data, &own) {
        for b in bounces {
            assert!(!b.recipient.is_empty());
        }
    }
});
