//! Offline proof files (C2SP tlog-proof) from untrusted bytes: no panics, exact round trip,
//! and verification of whatever parses fails cleanly.
#![no_main]

use kura_ledger::{Hash, ProofFile};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A real log key (the fuzzer's inputs are never signed by it).
fn key() -> &'static kura_ledger::VerifierKey {
    static K: OnceLock<kura_ledger::VerifierKey> = OnceLock::new();
    K.get_or_init(|| kura_ledger::SignerKey::generate("example.com/key", kura_ledger::SigType::Ed25519).unwrap().verifier().clone())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ProofFile::parse(data) {
        assert_eq!(p.to_bytes(), data, "a parsed proof file must re-encode byte for byte");
        assert!(p.proof.len() <= 64);
        let _ = p.verify(&Hash::default(), key(), &[], 0);
    }
});
