//! Checkpoint bodies (C2SP tlog-checkpoint) from untrusted text: no panics, exact round trip.
#![no_main]

use kura_tlog::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cp) = Checkpoint::parse_body(text) {
        assert_eq!(cp.body(), text, "a parsed checkpoint must re-encode exactly");
        assert!(!cp.origin.is_empty());
    }
});
