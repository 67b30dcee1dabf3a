//! Keys at read time: the granted data keys as a Parquet `KeyRetriever`, and the DataFusion
//! `EncryptionFactory` that checks each file against the catalogue before handing out
//! decryption properties.

use crate::catalog::DatasetEntry;
use crate::{Result, StoreError};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::EncryptionFactoryOptions;
use datafusion::error::DataFusionError;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use datafusion::parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use datafusion::parquet::encryption::encrypt::FileEncryptionProperties;
use datafusion::parquet::errors::ParquetError;
use kura_crypto::{KeyId, Keyring, MasterKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The AAD prefix of a file: binds its ciphertext to its path, so moved or swapped files fail.
pub fn aad_prefix(path: &str) -> Vec<u8> {
    format!("kura/parquet/v1:{path}").into_bytes()
}

/// The data keys a reader was granted, by key id. Nothing else is in memory.
#[derive(Default)]
pub struct GrantedKeys {
    keys: HashMap<String, Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for GrantedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantedKeys({} keys, <redacted>)", self.keys.len())
    }
}

impl GrantedKeys {
    /// Unwraps exactly the listed keys.
    pub fn unwrap<'a>(master: &MasterKey, keyring: &Keyring, ids: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut keys = HashMap::new();
        for id in ids {
            if keys.contains_key(id) {
                continue;
            }
            let k = keyring.unwrap_as(master, &KeyId::new(id)?, kura_crypto::Purpose::ColumnData)?;
            keys.insert(id.to_string(), Zeroizing::new(k.expose().to_vec()));
        }
        Ok(Self { keys })
    }

    /// From raw keys (for a worker process that received them from its parent).
    pub fn from_raw(keys: HashMap<String, Zeroizing<Vec<u8>>>) -> Self {
        Self { keys }
    }

    /// The raw keys, to hand to a worker process over a private pipe (each copy is zeroised
    /// when dropped).
    pub fn to_raw(&self) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        self.keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key id is held.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }
}

impl KeyRetriever for GrantedKeys {
    fn retrieve_key(&self, key_metadata: &[u8]) -> std::result::Result<Vec<u8>, ParquetError> {
        let id = std::str::from_utf8(key_metadata).unwrap_or("<binary>");
        match self.keys.get(id) {
            Some(k) => Ok(k.to_vec()),
            None => Err(ParquetError::General(format!("key '{id}' is not granted"))),
        }
    }
}

/// The checks every encrypted file passes before it gets decryption properties: it is listed
/// (with its size) in what the reader trusts — the catalogue, or a workspace's sealed extract
/// manifest — has exactly that size, and ends in the encrypted-footer magic.
pub struct FileCheck {
    files: HashMap<String, u64>,
    store: Arc<dyn ObjectStore>,
    checked: Mutex<HashSet<String>>,
}

impl fmt::Debug for FileCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileCheck({} files)", self.files.len())
    }
}

impl FileCheck {
    /// Checks against `files` (object path → size in bytes) in `store`.
    pub fn new(files: HashMap<String, u64>, store: Arc<dyn ObjectStore>) -> Self {
        Self { files, store, checked: Mutex::new(HashSet::new()) }
    }

    /// Checks one file (once per reader): an integrity error names it if it is not listed,
    /// has another size or no encrypted footer.
    pub async fn check(&self, path: &ObjectPath) -> std::result::Result<(), StoreError> {
        let p = path.as_ref();
        let integrity = |reason: String| StoreError::Integrity { file: p.to_string(), reason };
        let Some(&expected) = self.files.get(p) else {
            return Err(integrity("カタログにないファイルです / the file is not in the catalogue".into()));
        };
        if self.checked.lock().map(|c| c.contains(p)).unwrap_or(false) {
            return Ok(());
        }
        let meta = self.store.head(path).await.map_err(|e| StoreError::ObjectStore { path: p.to_string(), reason: e.to_string() })?;
        if meta.size != expected {
            return Err(integrity(format!("サイズ不一致 / size {} bytes, catalogue says {expected}", meta.size)));
        }
        if expected < 12 {
            return Err(integrity("ファイルが短すぎます / file too short".into()));
        }
        let tail = self
            .store
            .get_range(path, expected - 4..expected)
            .await
            .map_err(|e| StoreError::ObjectStore { path: p.to_string(), reason: e.to_string() })?;
        if tail.as_ref() != b"PARE" {
            return Err(integrity("暗号化フッターがありません（平文ファイルに置換された可能性）/ no encrypted footer: the file may have been replaced by a plaintext one".into()));
        }
        if let Ok(mut c) = self.checked.lock() {
            c.insert(p.to_string());
        }
        Ok(())
    }
}

/// DataFusion's hook for reading Kura's encrypted files: only files listed in the catalogue, of
/// the recorded size and with the encrypted-footer magic, get decryption properties, and those
/// carry only the granted keys.
pub struct KuraEncryptionFactory {
    keys: Arc<GrantedKeys>,
    files: FileCheck,
}

impl fmt::Debug for KuraEncryptionFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KuraEncryptionFactory({:?}, {:?})", self.files, self.keys)
    }
}

/// The factory id under which Kura registers its factory with DataFusion.
pub const FACTORY_ID: &str = "kura";

impl KuraEncryptionFactory {
    /// A factory for the files of the given datasets.
    pub fn new(keys: GrantedKeys, datasets: &[&DatasetEntry], store: Arc<dyn ObjectStore>) -> Self {
        let files = datasets.iter().flat_map(|d| d.tables.iter()).flat_map(|t| t.files.iter()).map(|f| (f.path.clone(), f.bytes)).collect();
        Self { keys: Arc::new(keys), files: FileCheck::new(files, store) }
    }
}

#[async_trait]
impl EncryptionFactory for KuraEncryptionFactory {
    async fn get_file_encryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _schema: &SchemaRef,
        file_path: &ObjectPath,
    ) -> datafusion::error::Result<Option<Arc<FileEncryptionProperties>>> {
        Err(DataFusionError::Plan(format!("書き込みは許可されていません / writing is not allowed: {file_path}")))
    }

    async fn get_file_decryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        file_path: &ObjectPath,
    ) -> datafusion::error::Result<Option<Arc<FileDecryptionProperties>>> {
        self.files.check(file_path).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let retriever: Arc<dyn KeyRetriever> = self.keys.clone();
        let props = FileDecryptionProperties::with_key_retriever(retriever)
            .with_aad_prefix(aad_prefix(file_path.as_ref()))
            .build()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(props))
    }
}
