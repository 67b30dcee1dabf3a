//! # kura-tlog — transparency-log formats and verification
//!
//! 透明性ログの形式と検証（RFC 6962・C2SP）。非同期ランタイムもデータベースも使わない。
//! The formats of a transparency log and their verification, with nothing else: no async
//! runtime, no database (HX-3, HX-4, HX-8, HX-12, HIC-S6). Kura's audit ledger
//! (`kura-ledger`) is built on it; so are the fuzz targets, and anyone who only wants to check
//! a Kura log — or lets Kura check theirs — needs only this crate.
//!
//! Modules, from the bottom up: [`hash`] (RFC 6962 leaf and node hashing), [`merkle`] (roots,
//! inclusion and consistency proofs), [`tile`] (C2SP tlog-tiles paths, hash tiles and entry
//! bundles), [`note`] (C2SP signed notes, Ed25519 and ECDSA P-256 keys, cosignatures),
//! [`checkpoint`] (C2SP tlog-checkpoint), [`proof`] (C2SP tlog-proof offline proof files),
//! [`tiles`] (where published tiles are kept: a directory any static web server can serve) and
//! [`witness`] (C2SP tlog-witness: cosign a checkpoint only if it is consistent with the last).
//!
//! Every parser takes untrusted bytes and answers with [`TlogError`], never a panic; what parses
//! re-encodes to the same bytes (the fuzz targets check both).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Parsers of untrusted input: no panicking shortcuts (tests may use them).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]

pub mod checkpoint;
pub mod hash;
pub mod merkle;
pub mod mirror;
pub mod note;
pub mod proof;
pub mod tile;
pub mod tiles;
pub mod witness;

pub use checkpoint::{Checkpoint, SignedCheckpoint, open_checkpoint};
pub use hash::{Hash, leaf_hash, node_hash};
pub use merkle::{MemoryTree, NodeSource, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
pub use note::{Note, NoteSignature, SigType, SignerKey, VerifierKey};
pub use proof::ProofFile;
pub use tile::TileId;

/// Everything that can go wrong reading, verifying or storing log data. Messages name what was
/// wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// Input that does not follow its format.
    #[error("形式が正しくありません / malformed {what}: {detail}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What was wrong, and where.
        detail: String,
    },
    /// A proof that does not hold.
    #[error("証明が成り立ちません / proof rejected: {0}")]
    ProofFailed(&'static str),
    /// A signature by a trusted key that does not verify.
    #[error("署名が検証できません（改ざんの可能性）/ signature by '{key}' does not verify (tampered?)")]
    BadSignature {
        /// The key's name.
        key: String,
    },
    /// No signature by any trusted key.
    #[error("信頼する鍵の署名がありません / no signature by a trusted key")]
    Untrusted,
    /// Too few witness cosignatures.
    #[error("立会人の連署が足りません / {have} witness cosignature(s), {need} required")]
    NotEnoughWitnesses {
        /// Verified cosignatures.
        have: usize,
        /// Required by policy.
        need: usize,
    },
    /// An index beyond the tree.
    #[error("範囲外です / index {index} is not below tree size {size}")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A subtree hash the store does not hold.
    #[error("ハッシュがありません / no stored hash at level {level}, index {index}")]
    MissingNode {
        /// Tree level.
        level: u8,
        /// Index within the level.
        index: u64,
    },
    /// An entry too long for an entry bundle.
    #[error("エントリが長すぎます / an entry of {0} bytes exceeds the 65,535-byte limit")]
    EntryTooLong(usize),
    /// A failure of the cryptographic library.
    #[error("暗号処理に失敗しました / cryptographic failure: {0}")]
    Crypto(&'static str),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
}

impl TlogError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> TlogError {
        TlogError::Io { path: path.display().to_string(), source }
    }
}
