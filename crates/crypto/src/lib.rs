//! # kura-crypto — Kura's key hierarchy
//!
//! Every secret Kura holds hangs from one **master key** (256 bits, a file readable by its owner
//! only). Below it:
//!
//! ```text
//! master key ──wraps──▶ dataset key-encryption keys (one per dataset)
//!                          └─wraps──▶ data keys (one per column or column group; Parquet modular encryption)
//!            ──wraps──▶ platform pseudonym key (HMAC-SHA-256; the hashed person IDs ID1/ID2/ID4/ID5)
//!                          └─derives─▶ project pseudonym keys (re-hash of ID5 per project, as the NDB does per release)
//! ```
//!
//! Wrapping is AES-256-GCM with a random 96-bit nonce and associated data that names the wrapped
//! key's identity and purpose, so a wrapped key moved to another slot fails to unwrap
//! (requirement HIC-S11: storage encryption with CRYPTREC-listed algorithms only — AES-GCM,
//! SHA-256, HMAC-SHA-256). Destroying a dataset's key-encryption key makes every file of the
//! dataset unreadable (crypto-shredding).
//!
//! All key material lives in [`zeroize::Zeroizing`] buffers and is wiped on drop.
//!
//! ```
//! use kura_crypto::{MasterKey, KeyId, SecretKey, Purpose};
//! let master = MasterKey::generate().unwrap();
//! let id = KeyId::new("ndb/re/id5").unwrap();
//! let dek = SecretKey::generate().unwrap();
//! let wrapped = master.wrap(&id, Purpose::ColumnData, &dek).unwrap();
//! let back = master.unwrap(&wrapped).unwrap();
//! assert_eq!(back.expose(), dek.expose());
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![forbid(unsafe_code)]

mod keyring;
mod pseudonym;

pub use keyring::{Keyring, KeyringEntry};
pub use pseudonym::{IdKind, IdPermutation, PseudonymKey, RowOrder, canonical_id_input, normalise_id_field};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

/// Length in bytes of every symmetric key Kura uses (AES-256, HMAC-SHA-256 keys).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Errors of the key hierarchy. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The operating system's random source failed.
    #[error("乱数の取得に失敗しました / the OS random source failed: {0}")]
    Random(#[source] getrandom::Error),
    /// A wrapped key did not authenticate: wrong master key, altered file, or key moved to
    /// another identity.
    #[error(
        "鍵 '{0}' を復号できません（マスター鍵の不一致または改ざん）/ key '{0}' cannot be unwrapped: wrong master key, or the keyring was altered"
    )]
    Unwrap(String),
    /// A key file has the wrong size or format.
    #[error("鍵ファイル {path} の形式が不正です / key file {path} is malformed: {reason}")]
    BadKeyFile {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A key file is readable by others than its owner.
    #[error(
        "鍵ファイル {0} の権限が広すぎます（所有者のみに制限してください: chmod 600）/ key file {0} is readable by others: run chmod 600"
    )]
    Permissions(String),
    /// A key identifier is not acceptable.
    #[error("鍵ID '{0}' が不正です / invalid key id '{0}': use 1-200 characters of [A-Za-z0-9/_.:#-]")]
    BadKeyId(String),
    /// The keyring has no key under that identifier.
    #[error("鍵 '{0}' がキーリングにありません / key '{0}' is not in the keyring")]
    MissingKey(String),
    /// A key exists already under that identifier.
    #[error("鍵 '{0}' は既に存在します / key '{0}' exists already")]
    DuplicateKey(String),
    /// Reading or writing a key file failed.
    #[error("鍵ファイル {path} の入出力に失敗しました / I/O on key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, CryptoError>;

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(CryptoError::Random)
}

/// Writes a file atomically — temporary file created with `mode` (e.g. 0600 for secrets),
/// fsync, rename, fsync of the directory — so a crash leaves the old file or the new one,
/// never half of either. Every file holding a key or a certificate is written this way.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A 256-bit secret key (data key, key-encryption key or pseudonym key), wiped on drop.
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// A fresh random key from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(&mut k[..])?;
        Ok(Self(k))
    }

    /// A key from raw bytes (tests and derivations).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key bytes. Callers must not log or persist them unwrapped.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A key derived from this one for one purpose (HMAC-SHA-256 of `label` under this key):
    /// keys derived under different labels are independent, and destroying this key destroys
    /// every key derived from it.
    pub fn derive(&self, label: &[u8]) -> SecretKey {
        use hmac::{Hmac, Mac};
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104): new_from_slice cannot fail")]
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0[..]).expect("HMAC accepts any key length");
        mac.update(b"kura/derive/v1\0");
        mac.update(label);
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        k.copy_from_slice(&mac.finalize().into_bytes());
        SecretKey(k)
    }
}

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        Self(Zeroizing::new(*self.0))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// The identity of a wrapped key, e.g. `dataset/ndb/re/id5`. Bound into the wrap's AAD.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    /// Parses an identifier: 1–200 characters of `[A-Za-z0-9/_.:#-]`.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        let ok = !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.:#-".contains(&b));
        if ok { Ok(Self(s)) } else { Err(CryptoError::BadKeyId(s)) }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = CryptoError;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a wrapped key is for; part of the wrap's associated data, so a data key cannot be
/// replayed as a pseudonym key or vice versa.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// A dataset's key-encryption key (wraps that dataset's column keys).
    DatasetKek,
    /// A Parquet column (or column group, or footer) data key.
    ColumnData,
    /// The platform pseudonym key (HMAC-SHA-256) for hashed person IDs.
    Pseudonym,
    /// The accounts key: seals TOTP secrets, keys recovery-code MACs.
    Accounts,
    /// The catalogue key: authenticates the catalogue and keys its content digests.
    CatalogMac,
    /// A project's workspace key: seals the tables its members save; destroyed at the end of
    /// use (crypto-shredding).
    Workspace,
    /// The airlock key: keys the platform's person and unit keys in the checker's hidden
    /// lineage columns and encrypts those columns and the differencing memory (issue 22 §1, §8).
    Airlock,
    /// The exchange key and each transfer's data key: a file one institution sends another is
    /// sealed under a key of its own, wrapped under the exchange key, and the wrapped key is
    /// destroyed when the file is deleted (HX-7, HX-8).
    Exchange,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::DatasetKek => "dataset-kek",
            Purpose::ColumnData => "column-data",
            Purpose::Pseudonym => "pseudonym",
            Purpose::Accounts => "accounts",
            Purpose::CatalogMac => "catalog-mac",
            Purpose::Workspace => "workspace",
            Purpose::Airlock => "airlock",
            Purpose::Exchange => "exchange",
        }
    }
}

/// A key encrypted under a parent key (AES-256-GCM, AAD = version ‖ purpose ‖ key id).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WrappedKey {
    /// The wrapped key's identity.
    pub id: KeyId,
    /// What the key is for.
    pub purpose: Purpose,
    /// 96-bit GCM nonce, hex.
    pub nonce: String,
    /// Ciphertext and 128-bit tag, hex.
    pub ciphertext: String,
}

fn wrap_aad(id: &KeyId, purpose: Purpose) -> Vec<u8> {
    let mut aad = b"kura/key-wrap/v1\0".to_vec();
    aad.extend_from_slice(purpose.label().as_bytes());
    aad.push(0);
    aad.extend_from_slice(id.as_str().as_bytes());
    aad
}

/// Wraps `key` under `kek` with AES-256-GCM (AAD names the key and its purpose).
pub fn wrap_key(kek: &SecretKey, id: &KeyId, purpose: Purpose, key: &SecretKey) -> Result<WrappedKey> {
    let cipher = Aes256Gcm::new_from_slice(kek.expose()).map_err(|_| CryptoError::Unwrap(id.to_string()))?;
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let aad = wrap_aad(id, purpose);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.expose(), aad: &aad })
        .map_err(|_| CryptoError::Unwrap(id.to_string()))?;
    Ok(WrappedKey { id: id.clone(), purpose, nonce: hex::encode(nonce), ciphertext: hex::encode(ct) })
}

/// Encrypts a small secret (a TOTP seed, say) under `key` with AES-256-GCM: returns
/// nonce ‖ ciphertext ‖ tag. `aad` binds it to its owner and use, so a sealed value copied to
/// another row fails to open.
pub fn seal(key: &SecretKey, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key.expose()).map_err(|_| CryptoError::Unwrap("sealed value".into()))?;
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let ct =
        cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad }).map_err(|_| CryptoError::Unwrap("sealed value".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a value sealed by [`seal`] with the same key and `aad`.
pub fn open_sealed(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let fail = || CryptoError::Unwrap("sealed value".into());
    if sealed.len() < NONCE_LEN + 16 {
        return Err(fail());
    }
    let cipher = Aes256Gcm::new_from_slice(key.expose()).map_err(|_| fail())?;
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    Ok(Zeroizing::new(cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).map_err(|_| fail())?))
}

/// Unwraps a key wrapped by [`wrap_key`]; fails if anything (key, nonce, id, purpose) was altered.
pub fn unwrap_key(kek: &SecretKey, w: &WrappedKey) -> Result<SecretKey> {
    let fail = || CryptoError::Unwrap(w.id.to_string());
    let nonce = hex::decode(&w.nonce).map_err(|_| fail())?;
    let ct = hex::decode(&w.ciphertext).map_err(|_| fail())?;
    if nonce.len() != NONCE_LEN {
        return Err(fail());
    }
    let cipher = Aes256Gcm::new_from_slice(kek.expose()).map_err(|_| fail())?;
    let aad = wrap_aad(&w.id, w.purpose);
    let pt = Zeroizing::new(cipher.decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: &aad }).map_err(|_| fail())?);
    let bytes: [u8; KEY_LEN] = pt.as_slice().try_into().map_err(|_| fail())?;
    Ok(SecretKey::from_bytes(bytes))
}

/// The root of the key hierarchy: 256 bits in a file readable by its owner only.
pub struct MasterKey(SecretKey);

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> Result<Self> {
        Ok(Self(SecretKey::generate()?))
    }

    /// Writes the key to `path` (64 hex characters), created with mode 0600; refuses to
    /// overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |source| CryptoError::Io { path: path.display().to_string(), source };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(self.0.expose())));
        use std::io::Write;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(())
    }

    /// Reads the key from `path`, refusing a file that group or others can read.
    pub fn load(path: &Path) -> Result<Self> {
        let p = path.display().to_string();
        let io = |source| CryptoError::Io { path: p.clone(), source };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(CryptoError::Permissions(p.clone()));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let bad = |reason: &str| CryptoError::BadKeyFile { path: p.clone(), reason: reason.into() };
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| bad("not hex"))?);
        let arr: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| bad("not 256 bits"))?;
        Ok(Self(SecretKey::from_bytes(arr)))
    }

    /// Wraps a child key under the master key.
    pub fn wrap(&self, id: &KeyId, purpose: Purpose, key: &SecretKey) -> Result<WrappedKey> {
        wrap_key(&self.0, id, purpose, key)
    }

    /// Unwraps a child key.
    pub fn unwrap(&self, w: &WrappedKey) -> Result<SecretKey> {
        unwrap_key(&self.0, w)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_label_and_parent() {
        let k = SecretKey::from_bytes([7; KEY_LEN]);
        let a = k.derive(b"extract/file/a");
        assert_eq!(a.expose(), k.derive(b"extract/file/a").expose());
        assert_ne!(a.expose(), k.derive(b"extract/file/b").expose());
        assert_ne!(a.expose(), SecretKey::from_bytes([8; KEY_LEN]).derive(b"extract/file/a").expose());
        assert_ne!(a.expose(), k.expose());
    }

    #[test]
    fn seal_binds_value_to_its_owner() {
        let k = SecretKey::generate().unwrap();
        let sealed = seal(&k, b"totp/alice", b"seed").unwrap();
        assert_eq!(open_sealed(&k, b"totp/alice", &sealed).unwrap().as_slice(), b"seed");
        assert!(open_sealed(&k, b"totp/bob", &sealed).is_err());
        assert!(open_sealed(&SecretKey::generate().unwrap(), b"totp/alice", &sealed).is_err());
        assert!(open_sealed(&k, b"totp/alice", &sealed[..20]).is_err());
    }

    #[test]
    fn wrap_roundtrip_and_tamper() {
        let m = MasterKey::generate().unwrap();
        let id = KeyId::new("dataset/x/re/id5").unwrap();
        let k = SecretKey::generate().unwrap();
        let w = m.wrap(&id, Purpose::ColumnData, &k).unwrap();
        assert_eq!(m.unwrap(&w).unwrap().expose(), k.expose());

        // Moved to another identity: refused.
        let mut moved = w.clone();
        moved.id = KeyId::new("dataset/x/re/id1").unwrap();
        assert!(matches!(m.unwrap(&moved), Err(CryptoError::Unwrap(_))));
        // Replayed with another purpose: refused.
        let mut repurposed = w.clone();
        repurposed.purpose = Purpose::Pseudonym;
        assert!(m.unwrap(&repurposed).is_err());
        // A flipped ciphertext bit: refused.
        let mut flipped = w.clone();
        let mut ct = hex::decode(&flipped.ciphertext).unwrap();
        ct[3] ^= 1;
        flipped.ciphertext = hex::encode(ct);
        assert!(m.unwrap(&flipped).is_err());
        // Another master key: refused.
        assert!(MasterKey::generate().unwrap().unwrap(&w).is_err());
    }

    #[test]
    fn key_ids_are_checked() {
        assert!(KeyId::new("ok/id_1.x:y#z-").is_ok());
        assert!(KeyId::new("").is_err());
        assert!(KeyId::new("spaces are bad").is_err());
        assert!(KeyId::new("x".repeat(201)).is_err());
    }

    #[test]
    fn master_key_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let m = MasterKey::generate().unwrap();
        m.save(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
            let loaded = MasterKey::load(&p).unwrap();
            assert_eq!(loaded.0.expose(), m.0.expose());
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(MasterKey::load(&p), Err(CryptoError::Permissions(_))));
        }
        // Never overwritten.
        assert!(m.save(&p).is_err());
    }

    #[test]
    fn debug_output_is_redacted() {
        let k = SecretKey::from_bytes([7u8; 32]);
        assert_eq!(format!("{k:?}"), "SecretKey(<redacted>)");
    }
}
