//! Offline proof files (C2SP tlog-proof) from untrusted bytes: no panics, exact round trip,
//! and verification of whatever parses fails cleanly.
#![no_main]

use kura_fuzz::unrelated_key;
use kura_tlog::{Hash, ProofFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ProofFile::parse(data) {
        assert_eq!(p.to_bytes(), data, "a parsed proof file must re-encode byte for byte");
        assert!(p.proof.len() <= 64);
        let _ = p.verify(&Hash::default(), unrelated_key(), &[], 0);
    }
});
