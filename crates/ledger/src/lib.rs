//! # kura-ledger — the audit ledger
//!
//! 操作記録（監査証跡）を、誰でも検証できる透明性ログとして保持する。
//! Kura's audit trail as a transparency log that anyone can verify (HX-3, HX-4, HX-8, HX-10,
//! HX-12, HIC-S5, HIC-S6, CLD-1).
//!
//! Every operation and every converted file becomes a leaf of an RFC 6962 Merkle tree. The
//! log publishes C2SP signed checkpoints (Ed25519 or ECDSA P-256), C2SP tlog-tiles and entry
//! bundles that any static mirror can serve, collects witness cosignatures (C2SP
//! tlog-witness / tlog-cosignature) and hands out offline proofs (C2SP tlog-proof). The
//! formats follow the specifications exactly, so RFC 6962 / C2SP clients of other projects can
//! verify Kura's log, and Kura can verify theirs.
//!
//! Modules, from the bottom up: [`hash`] (leaf and node hashing), [`merkle`] (roots and
//! proofs), [`tile`] (tile paths and bundles), [`note`] (signed notes and keys),
//! [`checkpoint`], [`proof`] (offline proof files).

pub mod audit;
pub mod checkpoint;
pub mod entry;
pub mod hash;
pub mod log;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod store;
pub mod tile;
pub mod tiles;
pub mod witness;

pub use checkpoint::{Checkpoint, SignedCheckpoint, open_checkpoint};
pub use hash::{Hash, leaf_hash, node_hash};
pub use merkle::{MemoryTree, NodeSource, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
pub use note::{Note, NoteSignature, SigType, SignerKey, VerifierKey};
pub use proof::ProofFile;
pub use tile::TileId;

/// Everything that can go wrong in the ledger. Messages name what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
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
    /// The database failed.
    #[error("台帳データベース / ledger database: {0}")]
    Database(#[from] sqlx::Error),
    /// The store of record could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] kura_db::DbError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// Stored data contradicts the signed checkpoints.
    #[error(
        "改ざんまたは破損を検出しました / tampering or damage detected: {0}. `kura ledger verify` で確認し、`kura ledger repair --from MIRROR` で修復してください / run `kura ledger verify`, then `kura ledger repair --from MIRROR`"
    )]
    Tampered(String),
    /// The log is shut down.
    #[error("台帳が停止しています / the ledger has shut down")]
    Closed,
    /// A witness or mirror answered with an error.
    #[error("立会人・ミラー / witness or mirror {peer}: {detail}")]
    Peer {
        /// Who.
        peer: String,
        /// What went wrong.
        detail: String,
    },
}

impl LedgerError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> LedgerError {
        LedgerError::Io { path: path.display().to_string(), source }
    }
}
