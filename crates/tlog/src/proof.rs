//! C2SP tlog-proof: an offline-verifiable proof that an entry is in the log (HX-12). The
//! sender of a converted file receives one for the file; anyone holding the log's public key
//! (and the witnesses') can check it without contacting Kura.

use crate::TlogError;
use crate::checkpoint::{SignedCheckpoint, open_checkpoint};
use crate::hash::{Hash, shorten};
use crate::merkle::verify_inclusion;
use crate::note::VerifierKey;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The first line of every proof file.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The longest proof file Kura reads.
pub const MAX_PROOF_BYTES: usize = 128 * 1024;

/// A parsed `.tlog-proof` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFile {
    /// Opaque, unauthenticated extra data.
    pub extra: Option<Vec<u8>>,
    /// Index of the entry.
    pub index: u64,
    /// Inclusion proof, leaf's sibling first.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: Vec<u8>,
}

impl ProofFile {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{PROOF_HEADER}\n");
        if let Some(e) = &self.extra {
            s.push_str(&format!("extra {}\n", STANDARD.encode(e)));
        }
        s.push_str(&format!("index {}\n", self.index));
        crate::hash::lines_hashes_note(s, &self.proof, &self.checkpoint)
    }

    /// Parses a proof file strictly; errors name the line.
    pub fn parse(bytes: &[u8]) -> Result<ProofFile, TlogError> {
        let bad = |line: usize, d: &str| TlogError::Malformed { what: "proof file", detail: format!("line {line}: {d}") };
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(bad(1, "the file is too large"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| bad(1, "not UTF-8"))?;
        let (head, checkpoint) = text.split_once("\n\n").ok_or_else(|| bad(1, "no blank line before the checkpoint"))?;
        let mut lines = head.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, PROOF_HEADER)) => {}
            _ => return Err(bad(1, "the first line must be c2sp.org/tlog-proof@v1")),
        }
        let (mut n, mut line) = lines.next().ok_or_else(|| bad(2, "no index line"))?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(STANDARD.decode(b64).map_err(|_| bad(n, "the extra data is not base64"))?);
            (n, line) = lines.next().ok_or_else(|| bad(n + 1, "no index line"))?;
        }
        let index_text = line.strip_prefix("index ").ok_or_else(|| bad(n, "expected 'index N'"))?;
        let index: u64 = index_text.parse().map_err(|_| bad(n, "the index is not a number"))?;
        if index.to_string() != index_text {
            return Err(bad(n, "the index is not canonical"));
        }
        let mut proof = Vec::new();
        for (n, l) in lines {
            if proof.len() == 64 {
                return Err(bad(n, "more than 64 proof hashes"));
            }
            proof.push(Hash::from_base64(l).ok_or_else(|| bad(n, &format!("'{}' is not a base64 SHA-256 hash", shorten(l))))?);
        }
        Ok(ProofFile { extra, index, proof, checkpoint: checkpoint.as_bytes().to_vec() })
    }

    /// Verifies the proof for an entry whose leaf hash is `leaf`: the log's signature, the
    /// witness policy (`min_witnesses` of `witnesses`), then the inclusion proof.
    pub fn verify(
        &self,
        leaf: &Hash,
        log_key: &VerifierKey,
        witnesses: &[VerifierKey],
        min_witnesses: usize,
    ) -> Result<SignedCheckpoint, TlogError> {
        let signed = open_checkpoint(&self.checkpoint, log_key, witnesses, min_witnesses)?;
        verify_inclusion(leaf, self.index, signed.checkpoint.size, &self.proof, &signed.checkpoint.root)?;
        Ok(signed)
    }
}
