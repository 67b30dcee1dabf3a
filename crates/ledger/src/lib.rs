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
//! The formats and their verification (trees, proofs, notes, checkpoints, tiles, witnesses)
//! are the pure crate `kura-tlog`; this crate is the log *service* on top of it: [`entry`] (the
//! audit entry format), [`store`] (the entries in the store of record, through sqlx), [`log`]
//! (the batcher that appends, integrates and publishes tiles and checkpoints, and asks
//! witnesses) and [`audit`] (full verification and repair from a mirror).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod entry;
pub mod log;
pub mod store;

pub use kura_tlog::TlogError;

/// Everything that can go wrong in the ledger. Messages name what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Log data that does not parse or verify (formats, proofs, signatures, tiles).
    #[error(transparent)]
    Tlog(#[from] TlogError),
    /// An entry that cannot be encoded or decoded.
    #[error("形式が正しくありません / malformed {what}: {detail}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What was wrong, and where.
        detail: String,
    },
    /// The database failed.
    #[error("台帳データベース / ledger database: {0}")]
    Database(#[from] sqlx::Error),
    /// The store of record could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] kura_db::DbError),
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
