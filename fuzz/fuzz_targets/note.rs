//! Signed notes (C2SP signed-note) from untrusted bytes: parsing never panics, and whatever
//! parses re-encodes to exactly the same bytes (the format has one encoding).
#![no_main]

use kura_fuzz::unrelated_key;
use kura_tlog::Note;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_bytes(), data, "a parsed note must re-encode byte for byte");
        assert!(!note.signatures.is_empty());
        // Verifying against a key that signed nothing here must fail cleanly, never panic.
        let _ = note.verify(std::slice::from_ref(unrelated_key()));
    }
});
