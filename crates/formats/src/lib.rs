//! # kura-formats — the source formats the platform receives (issue 18 §1)
//!
//! 受け入れ形式：レセプト電算処理システムの記録（UKE）などを読み書きし、問題はすべて
//! 「ファイル:行（レコード、項目）」で示す。
//!
//! Kura's data arrives as files that institutions, insurers and review bodies produce: レセプト
//! 電算 (UKE) receipts today; 特定健診 CDA archives and care claims follow. This crate reads and
//! writes them and nothing else — no HTTP, no storage, no keys — so that every reader can be
//! fuzzed alone and used by the intake, the synthetic generator and the tests alike.
//!
//! Every reader streams (memory independent of the file's size), never panics on input, and
//! reports each problem as [`Problem`]: the file, the line, the record type and field where it
//! is, what is wrong and what was expected, in Japanese and English. A problem either stops the
//! file ([`uke::Reader::next_receipt`]'s error) or rejects one receipt, which is listed for the
//! sender while the reader goes on: nothing is dropped silently.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![forbid(unsafe_code)]

pub mod archive;
pub mod cda;
pub mod uke;

use std::fmt;

/// Where a problem is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file's name, as the sender gave it.
    pub file: String,
    /// The line (1-based); 0 for the file as a whole.
    pub line: u64,
    /// The record type (`RE`, `SY`, …), where known.
    pub record: Option<String>,
    /// The field (0-based, as the layouts number them) and its name, where known.
    pub field: Option<(usize, &'static str)>,
    /// What is wrong and what was expected: Japanese, then English.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        match (&self.record, &self.field) {
            (Some(r), Some((n, ""))) => write!(f, " ({r}, 項目 field {n})")?,
            (Some(r), Some((n, name))) => write!(f, " ({r}, 項目 field {n} {name})")?,
            (Some(r), None) => write!(f, " ({r})")?,
            (None, Some((n, name))) => write!(f, " (項目 field {n} {name})")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Problem {}

/// What a writer can fail on.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The output could not be written.
    #[error("書き込めません / cannot write: {0}")]
    Io(#[from] std::io::Error),
    /// A value the format cannot carry.
    #[error("{0}")]
    Value(String),
}
