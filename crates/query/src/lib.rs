//! # kura-query — read-only SQL over a grant of encrypted datasets
//!
//! A [`QueryEngine`] is built from an [`EngineSpec`]: one dataset's catalogue entry, a
//! [`Grant`] (tables and columns), the unwrapped keys of exactly those columns, the data root,
//! and [`Limits`]. Only granted columns exist for the query (other names fail with a clear
//! "not granted" error), and only their keys are in memory, so a bug in the engine still cannot
//! decrypt anything else (HIC-S11, HIC-S13).
//!
//! Statements are checked on the parsed AST before planning ([`policy`]) and the logical plan is
//! verified again: SELECT / WITH / EXPLAIN / temporary views / SHOW of granted tables only.
//! Memory is bounded by a spilling pool whose spill files are encrypted under a key of their
//! own and have no name on disk ([`spill`]), and every statement has a wall-clock limit;
//! results are capped in rows and bytes.
//!
//! The spec holds everything the engine needs and nothing more, so a later issue can hand it to
//! a sandboxed worker process per workspace (keys over a pipe, results back as Arrow IPC).
//!
//! The crate takes researchers' SQL and a worker's answers: it never panics on them
//! (`unwrap`, `expect` and unchecked indexing are refused by the compiler here).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![forbid(unsafe_code)]

pub mod bounds;
pub mod config;
pub mod confine;
mod engine;
pub mod evidence;
pub mod extract;
mod grant;
pub mod hidden;
pub mod json;
pub mod lineage;
pub mod policy;
pub mod rules;
pub mod spill;
pub mod worker;
pub mod workspace;

pub use engine::{EngineSpec, Limits, QueryEngine, StatementKind, StatementOutput};
pub use grant::{Grant, TableGrant};
pub use workspace::WorkspaceSpec;

/// Errors of SQL execution. Messages are Japanese first, then English, and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL does not parse.
    #[error("SQLの構文エラー / SQL syntax error: {0}")]
    Syntax(String),
    /// A statement class that Kura never runs.
    #[error("{class} は実行できません: {reason} / {class} is refused")]
    Refused {
        /// The statement class, e.g. `COPY`.
        class: String,
        /// Why.
        reason: String,
    },
    /// A table or column exists but is outside the grant.
    #[error("{kind_ja} '{name}' は許可されていません（利用申請で承認された範囲外）/ {kind_en} '{name}' is not granted")]
    NotGranted {
        /// テーブル or 列.
        kind_ja: &'static str,
        /// `table` or `column`.
        kind_en: &'static str,
        /// Its name.
        name: String,
    },
    /// A grant specification is invalid.
    #[error("許可の指定が不正です / invalid grant: {0}")]
    BadGrant(String),
    /// The statement ran out of time.
    #[error(
        "制限時間 {0} 秒を超えたため中止しました。条件を絞るか集計してください / stopped after the time limit of {0} s: narrow the query or aggregate"
    )]
    Timeout(u64),
    /// The statement needed more memory than allowed.
    #[error("メモリ上限を超えました。集計・条件で対象を絞ってください / memory limit exceeded: {0}")]
    Memory(String),
    /// The result is larger than a client may receive.
    #[error("結果が大きすぎます（{0}）。集計するか LIMIT を付けてください / result too large ({0}): aggregate or add LIMIT")]
    ResultTooLarge(String),
    /// Encrypted data failed to authenticate or decrypt.
    #[error(
        "暗号化データの検証に失敗しました（改ざん・欠損・鍵の不一致）/ encrypted data failed verification (tampered, truncated or wrong key): {0}"
    )]
    Integrity(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] kura_store::StoreError),
    /// A setting of `kura.toml [query]` that cannot be used.
    #[error("設定 / configuration: {0}")]
    Config(String),
    /// The engine reported another error (planning or execution).
    #[error("SQLエラー / SQL error: {0}")]
    Engine(String),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, QueryError>;
