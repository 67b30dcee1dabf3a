//! What the fuzz targets share.

use std::sync::OnceLock;

/// A real log key that signed none of the fuzzer's inputs: verifying against it must fail
/// cleanly, never panic.
pub fn unrelated_key() -> &'static kura_tlog::VerifierKey {
    static K: OnceLock<kura_tlog::VerifierKey> = OnceLock::new();
    K.get_or_init(|| kura_tlog::SignerKey::generate("example.com/key", kura_tlog::SigType::Ed25519).unwrap().verifier().clone())
}
