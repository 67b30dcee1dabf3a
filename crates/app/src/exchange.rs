//! The exchange's files (issue 18 §3; HX-7, HX-8): each file an institution sends is scanned
//! (HIC-S1), then sealed with AES-256-GCM under a data key of its own, generated for that
//! transfer; the data key is wrapped under the home's exchange key (`platform/exchange` in the
//! keyring) and the wrapped form is kept with the transfer's record, bound to the transfer's
//! identifier. Deleting a transfer removes the sealed file and destroys the wrapped key, so a
//! copy of the file taken earlier no longer opens. The rules (who may send, see, download,
//! delete; retention; the trail) are [`kura_workflows::exchange`]'s.

use crate::{App, Result};
use kura_crypto::{KeyId, Purpose, SecretKey, WrappedKey};
use kura_workflows::{Caller, Exchanges, FileStore, NewTransfer, Research, Transfer};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// The first bytes of a sealed exchange file.
const MAGIC: &[u8; 8] = b"KURAXF01";
/// The exchange key's identifier in the keyring.
const EXCHANGE_KEY: &str = "platform/exchange";

/// The sealed files of a home's exchange (`exchange/`).
#[derive(Debug)]
struct SealedFiles {
    dir: PathBuf,
    home: kura_store::Home,
}

impl SealedFiles {
    fn kek(&self) -> std::result::Result<SecretKey, String> {
        self.home.ensure_key(EXCHANGE_KEY, Purpose::Exchange).map_err(|e| e.to_string())
    }

    /// The sealed file of transfer `id`; an identifier of any other form names no file.
    fn path(&self, id: &str) -> std::result::Result<PathBuf, String> {
        if kura_workflows::exchange::is_transfer_id(id) {
            Ok(self.dir.join(format!("{id}.sealed")))
        } else {
            Err("not a transfer identifier".into())
        }
    }

    fn key_id(id: &str) -> std::result::Result<KeyId, String> {
        KeyId::new(format!("exchange/{id}")).map_err(|e| e.to_string())
    }

    /// Binds the sealed bytes to their transfer and content: a file moved to another
    /// transfer's name does not open.
    fn aad(id: &str, sha256: &str) -> Vec<u8> {
        format!("kura/exchange/v1\0{id}\0{sha256}").into_bytes()
    }
}

impl FileStore for SealedFiles {
    fn seal(&self, id: &str, sha256: &str, content: &[u8]) -> std::result::Result<String, String> {
        let kek = self.kek()?;
        let dek = SecretKey::generate().map_err(|e| e.to_string())?;
        let wrapped = kura_crypto::wrap_key(&kek, &Self::key_id(id)?, Purpose::Exchange, &dek).map_err(|e| e.to_string())?;
        kura_store::home::mkdir_private(&self.dir).map_err(|e| e.to_string())?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&kura_crypto::seal(&dek, &Self::aad(id, sha256), content).map_err(|e| e.to_string())?);
        let path = self.path(id)?;
        // Never over another transfer's file (identifiers are random: a collision is refused).
        if path.exists() {
            return Err("the identifier is taken".into());
        }
        kura_crypto::write_atomic(&path, &bytes, 0o600).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::to_string(&wrapped).map_err(|e| e.to_string())
    }

    fn open(&self, t: &Transfer, wrapped_key: &str) -> std::result::Result<Vec<u8>, String> {
        let w: WrappedKey = serde_json::from_str(wrapped_key).map_err(|_| "its key record is damaged".to_string())?;
        if w.id != Self::key_id(&t.id)? || w.purpose != Purpose::Exchange {
            return Err("its key belongs to another transfer".into());
        }
        let dek = kura_crypto::unwrap_key(&self.kek()?, &w).map_err(|_| "its key does not open (altered or replaced)".to_string())?;
        let path = self.path(&t.id)?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {}", path.display(), e.kind()))?;
        let sealed = bytes.strip_prefix(MAGIC.as_slice()).ok_or("not a sealed exchange file")?;
        let plain = kura_crypto::open_sealed(&dek, &Self::aad(&t.id, &t.sha256), sealed).map_err(|_| "altered or replaced".to_string())?;
        if hex::encode(Sha256::digest(plain.as_slice())) != t.sha256 {
            return Err("its SHA-256 differs from the one recorded at sending".into());
        }
        Ok(plain.to_vec())
    }

    fn leftovers(&self) -> std::result::Result<Vec<(String, u64)>, String> {
        let dir = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", self.dir.display())),
        };
        let now = std::time::SystemTime::now();
        let age = |e: &std::fs::DirEntry| {
            e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| now.duration_since(t).ok()).map_or(0, |d| d.as_secs())
        };
        Ok(dir
            .filter_map(|e| {
                let e = e.ok()?;
                let id = e.file_name().to_str()?.strip_suffix(".sealed")?.to_string();
                self.path(&id).ok()?;
                Some((id, age(&e)))
            })
            .collect())
    }

    fn remove(&self, id: &str) -> std::result::Result<(), String> {
        let path = self.path(id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

impl App {
    /// The exchange between institutions over `research`'s store, ledger and clock, its files
    /// sealed in the home's `exchange/` directory.
    pub fn exchanges(&self, research: &Research) -> Exchanges {
        let files = SealedFiles { dir: crate::layout::Layout::of(&self.home).exchange(), home: self.home.clone() };
        research.exchanges(self.config.exchange.clone(), Arc::new(files))
    }

    /// `caller` sends `content` as `file` ([`kura_workspace::Workspaces::exchange_send`]:
    /// checked, scanned, sealed, recorded).
    pub async fn exchange_send(&self, research: &Research, caller: &Caller, file: &NewTransfer, content: &[u8]) -> Result<Transfer> {
        let ws = self.workspaces(research.clone())?;
        Ok(ws.exchange_send(&self.exchanges(research), caller, file, content).await?)
    }
}
