//! # kura-disclosure — output disclosure control (公表物確認, HIC-IO2)
//!
//! 持出し審査の自動判定：公表基準（ポリシー）、セルごとの判定、秘匿と丸め、二次秘匿とその監査。
//!
//! Nothing leaves a workspace except aggregates that meet the database's publication rules.
//! This crate is those rules and nothing else — no HTTP, no storage, no query engine:
//!
//! - [`policy`]: the versioned policy file (the NDB rules by default; presets for OpenSAFELY,
//!   ACRO and CMS VRDC) that the workspace, the automatic checker and the release gate all apply;
//! - [`check`]: per-cell verdicts (pass / review / fail with the rule that fired) from the
//!   evidence behind a cell — distinct persons, institutions, largest contributions — or, where
//!   the lineage is unknown, from the printed value, marked as such and never better than review;
//! - [`table`]: a whole table's verdicts, its columns' rules (identifiers, too-fine geography,
//!   row limits), and the mitigations: suppression of failing cells, rounding, and secondary
//!   suppression so that margins and totals cannot reveal a suppressed cell;
//! - [`audit`]: the proof of the last point — each suppressed cell's feasible interval from what
//!   is released, by linear programming.
//!
//! Rules are from `../shared/domain/disclosure.md`; the requirement is HIC-IO2.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![forbid(unsafe_code)]

pub mod audit;
pub mod check;
pub mod policy;
pub mod table;

pub use check::{Cell, Evidence, Finding, Statistic, Status};
pub use policy::{LoadedPolicy, Policy};
pub use table::{Table, TableVerdict, check_table};

/// What can go wrong in disclosure control.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A policy file that does not parse.
    #[error("{source_name}:{line}:{column}: ポリシーを読めません / the policy does not parse: {message}")]
    Policy {
        /// The file.
        source_name: String,
        /// Line (1-based; 0 where unknown).
        line: usize,
        /// Column (1-based; 0 where unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A policy value out of range.
    #[error("{source_name}: {field}: {message} / ポリシーの値が不正です")]
    PolicyField {
        /// The file.
        source_name: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A preset that does not exist.
    #[error("ポリシーのプリセット {0} はありません / no policy preset {0}: use ndb, opensafely, acro or cms-vrdc")]
    UnknownPreset(String),
    /// A table that is not shaped as it says.
    #[error("表の形が不正です / malformed table: {0}")]
    Table(String),
    /// The suppression audit could not be completed.
    #[error("秘匿の監査ができません / the suppression audit failed: {0}")]
    Audit(String),
}
