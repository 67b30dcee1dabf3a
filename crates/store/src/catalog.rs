//! The catalogue (情報提供一覧表, WG-5): datasets, tables, columns, files, row counts, periods.

use crate::schema::Sensitivity;
use crate::{Result, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One Parquet file of a table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the data root (`ndb/<generation>/re/part-00000.parquet`).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows.
    pub rows: u64,
    /// SHA-256 of the encrypted file.
    pub sha256: String,
}

/// One column.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ColumnEntry {
    /// Name.
    pub name: String,
    /// Arrow type name (`Int64`, `Utf8`, `Date32`, …).
    pub data_type: String,
    /// Whether nulls occur.
    pub nullable: bool,
    /// Japanese description.
    pub title_ja: String,
    /// English description.
    pub title_en: String,
    /// Code system or format.
    pub code_system: Option<String>,
    /// Sensitivity class.
    pub sensitivity: Sensitivity,
    /// The id of the column's data key in the keyring.
    pub key_id: String,
}

/// One table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableEntry {
    /// Name.
    pub name: String,
    /// Japanese title.
    pub title_ja: String,
    /// English title.
    pub title_en: String,
    /// The source record it mirrors.
    pub source_format: String,
    /// Rows.
    pub rows: u64,
    /// HMAC-SHA-256, under the home's catalogue key, of the table's content in generation
    /// order (independent of encryption and of how rows were split into files): equal for
    /// equal seeds in one home. Keyed, so it confirms nothing to someone who guesses the
    /// content without the keys.
    pub content_mac: String,
    /// The id of the footer key.
    pub footer_key_id: String,
    /// Files.
    pub files: Vec<FileEntry>,
    /// Columns.
    pub columns: Vec<ColumnEntry>,
}

impl TableEntry {
    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&ColumnEntry> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Total size of the files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// One dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatasetEntry {
    /// Name (SQL schema name).
    pub name: String,
    /// Japanese title.
    pub title_ja: String,
    /// English title.
    pub title_en: String,
    /// Japanese description.
    pub description_ja: String,
    /// English description.
    pub description_en: String,
    /// Synthetic (true) or real data.
    pub synthetic: bool,
    /// Generation id: every rewrite of the dataset gets new files and new keys.
    pub generation: String,
    /// The dataset's key-encryption key id.
    pub kek_id: String,
    /// First month covered (YYYYMM).
    pub period_from: i32,
    /// Last month covered (YYYYMM).
    pub period_to: i32,
    /// Persons generated (synthetic data).
    pub persons: u64,
    /// Seed (synthetic data).
    pub seed: u64,
    /// When it was written (UTC, RFC 3339).
    pub created_at: String,
    /// The software that wrote it.
    pub created_by: String,
    /// Tables.
    pub tables: Vec<TableEntry>,
}

impl DatasetEntry {
    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Total rows.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.tables.iter().map(TableEntry::bytes).sum()
    }
}

/// All datasets of a home.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Catalog {
    /// Format version.
    pub version: u32,
    /// Datasets by name.
    pub datasets: BTreeMap<String, DatasetEntry>,
    /// HMAC-SHA-256 of everything above under the home's catalogue key (hex): set by
    /// [`Catalog::seal`], checked by [`Catalog::verify`] on every read.
    #[serde(default)]
    pub mac: String,
}

/// The catalogue key's MAC of `bytes` in the domain `what`.
pub fn keyed_digest(key: &kura_crypto::SecretKey, what: &str, bytes: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104): new_from_slice cannot fail")]
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.expose()).expect("HMAC takes keys of any length");
    mac.update(b"kura/");
    mac.update(what.as_bytes());
    mac.update(b"/v1\0");
    mac.update(bytes);
    hex::encode(mac.finalize().into_bytes())
}

impl Catalog {
    fn body_mac(&self, key: &kura_crypto::SecretKey) -> Result<String> {
        let body = Catalog { mac: String::new(), ..self.clone() };
        let bytes = serde_json::to_vec(&body).map_err(|e| StoreError::Corrupt { what: "catalogue".into(), reason: e.to_string() })?;
        Ok(keyed_digest(key, "catalog", &bytes))
    }

    /// Sets the MAC of the catalogue's content under `key`.
    pub fn seal(&mut self, key: &kura_crypto::SecretKey) -> Result<()> {
        self.mac = self.body_mac(key)?;
        Ok(())
    }

    /// Checks the MAC under `key`; `path` names the file in the error.
    pub fn verify(&self, key: &kura_crypto::SecretKey, path: &Path) -> Result<()> {
        let expected = self.body_mac(key)?;
        let given = self.mac.as_bytes();
        let same: bool = subtle::ConstantTimeEq::ct_eq(given, expected.as_bytes()).into();
        if same {
            Ok(())
        } else {
            Err(StoreError::Integrity {
                file: path.display().to_string(),
                reason: "カタログの認証に失敗しました（鍵なしで書き換えられた可能性）。バックアップから戻すか `kura synth` で作り直してください / the catalogue failed authentication (changed without the keys): restore it from a backup or rewrite the dataset with `kura synth`".into(),
            })
        }
    }

    /// Reads the catalogue (not yet checked: use [`crate::Home::catalog`]); a missing file is an
    /// empty catalogue.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt { what: path.display().to_string(), reason: e.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog { version: 1, datasets: BTreeMap::new(), mac: String::new() }),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Writes the catalogue atomically (seal it first: [`crate::Home::save_catalog`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| StoreError::Corrupt { what: path.display().to_string(), reason: e.to_string() })?;
        kura_crypto::write_atomic(path, text.as_bytes(), 0o644).map_err(|e| StoreError::io(path, e))
    }
}
