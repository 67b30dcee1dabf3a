//! # kura-store — encrypted datasets, the catalogue and the Kura home
//!
//! Datasets are Parquet files with **modular encryption** (AES-GCM-V1): every column has its own
//! 256-bit data key and the footer has another, each wrapped under the dataset's key-encryption
//! key, itself wrapped under the home's master key (see `kura-crypto`). A reader gets only the
//! keys of the columns it was granted, so a column outside the grant cannot be decrypted even by a
//! bug in the query engine (HIC-S11, HIC-S13). Each file's AAD prefix names its own path, so a
//! file moved, swapped or replaced fails authentication; the catalogue records every file's size
//! and SHA-256, and readers refuse files that are not in it.
//!
//! Storage goes through `object_store` (a local directory by default; an S3-compatible store fits
//! the same paths). The catalogue (情報提供一覧表, WG-5) describes datasets, tables and columns in
//! Japanese and English with code systems, sensitivity classes, row counts and periods.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![forbid(unsafe_code)]

pub mod catalog;
pub mod config;
pub mod home;
pub mod keys;
pub mod schema;
pub mod tables;
pub mod verify;
pub mod writer;

pub use catalog::{Catalog, ColumnEntry, DatasetEntry, FileEntry, TableEntry};
pub use config::StoreConfig;
pub use home::Home;
pub use keys::{FileCheck, GrantedKeys, KuraEncryptionFactory, aad_prefix};
pub use schema::{BatchBuilder, ColType, ColumnSpec, Sensitivity, TableSpec};
pub use writer::{DatasetMeta, DatasetWriter, PartWriter, WriteOptions, WrittenPart};

use std::path::Path;

/// Errors of the store. Every message names the file or object concerned and, where it helps,
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File-system I/O failed.
    #[error("{path}: 入出力エラー / I/O error: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The directory is not a Kura home.
    #[error(
        "{0} はKuraのホームではありません。`kura init --home {0}` で作成してください / {0} is not a Kura home: create it with `kura init --home {0}`"
    )]
    NotAHome(String),
    /// `kura init` on an existing home.
    #[error("{0} には既にKuraのホームがあります / {0} already holds a Kura home")]
    AlreadyInitialised(String),
    /// The configuration file is invalid.
    #[error("設定ファイル {path} が不正です / invalid configuration {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// A key operation failed.
    #[error(transparent)]
    Crypto(#[from] kura_crypto::CryptoError),
    /// A batch or table does not fit the dataset being written.
    #[error("表 {table}: {reason} / table {table}: {reason}")]
    Schema {
        /// The table (or dataset).
        table: String,
        /// What does not fit.
        reason: String,
    },
    /// Writing or reading Parquet failed.
    #[error("{file}: Parquetエラー / Parquet error: {reason}")]
    Parquet {
        /// The file.
        file: String,
        /// The error.
        reason: String,
    },
    /// The object store failed.
    #[error("{path}: オブジェクトストアのエラー / object store error: {reason}")]
    ObjectStore {
        /// The object.
        path: String,
        /// The error.
        reason: String,
    },
    /// A metadata file (catalogue, keyring) is damaged.
    #[error("{what} が破損しています / {what} is damaged: {reason}")]
    Corrupt {
        /// The file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A data file failed an integrity check.
    #[error("{file}: 改ざん・欠損の疑い / integrity check failed: {reason}")]
    Integrity {
        /// The file.
        file: String,
        /// What did not match.
        reason: String,
    },
    /// The dataset is not in the catalogue.
    #[error(
        "データセット '{0}' はカタログにありません。`kura catalog` で一覧を確認してください / dataset '{0}' is not in the catalogue; see `kura catalog`"
    )]
    UnknownDataset(String),
}

impl StoreError {
    /// An I/O error on a path.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io { path: path.display().to_string(), source }
    }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, StoreError>;
