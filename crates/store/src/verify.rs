//! Full verification of a dataset's files against the catalogue: presence, size, SHA-256.

use crate::catalog::{DatasetEntry, FileEntry};
use crate::home::Home;
use kura_crypto::{Keyring, MasterKey};
use sha2::{Digest, Sha256};
use std::io::Read;

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file (relative to the data root).
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(buf.get(..k).unwrap_or_default());
    }
    Ok((n, hex::encode(h.finalize())))
}

/// Checks that every key a dataset's files need is in the keyring and opens (a catalogue
/// restored from an earlier generation lists keys that crypto-shredding destroyed). The master
/// key and keyring must come from the same [`Home::snapshot`] as the catalogue: a rewrite in
/// between shreds keys and rotates the master, which would look like damage.
pub fn verify_keys(master: &MasterKey, keyring: &Keyring, dataset: &DatasetEntry) -> Vec<Finding> {
    let ids =
        dataset.tables.iter().flat_map(|t| std::iter::once(t.footer_key_id.as_str()).chain(t.columns.iter().map(|c| c.key_id.as_str())));
    ids.filter_map(|id| {
        let problem = match kura_crypto::KeyId::new(id) {
            Ok(k) => keyring.unwrap_as(master, &k, kura_crypto::Purpose::ColumnData).err().map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        problem.map(|p| Finding { file: format!("key {id}"), problem: format!("鍵を開けません / the key does not open: {p}") })
    })
    .collect()
}

/// Checks every file of a dataset; returns the problems (empty when all is well).
pub fn verify_dataset(home: &Home, dataset: &DatasetEntry) -> Vec<Finding> {
    verify_files(&home.data_dir(), dataset.tables.iter().flat_map(|t| t.files.iter()))
}

/// Checks files under a data root against their catalogue entries.
pub fn verify_files<'a>(data_root: &std::path::Path, files: impl IntoIterator<Item = &'a FileEntry>) -> Vec<Finding> {
    let mut out = Vec::new();
    {
        for f in files {
            let path = data_root.join(&f.path);
            match sha256_file(&path) {
                Err(e) => out.push(Finding { file: f.path.clone(), problem: format!("読めません / unreadable: {e}") }),
                Ok((n, _)) if n != f.bytes => out
                    .push(Finding {
                        file: f.path.clone(), problem: format!("サイズ不一致 / size {n} bytes, catalogue says {}", f.bytes)
                    }),
                Ok((_, h)) if h != f.sha256 => out.push(Finding {
                    file: f.path.clone(),
                    problem: "SHA-256 不一致（改ざん）/ SHA-256 mismatch: the file was altered".into(),
                }),
                Ok(_) => {}
            }
        }
    }
    out
}
