//! A Kura home: the directory that holds configuration, keys, catalogue and data.
//!
//! ```text
//! <home>/kura.toml            configuration
//! <home>/keys/master.key      the master key (0600); replaced at every crypto-shredding
//! <home>/keys/keyring.json    every other key, wrapped (0600)
//! <home>/catalog.json         the catalogue, authenticated with the catalogue key
//! <home>/data/…               encrypted datasets (object store root)
//! <home>/tmp/                 spill files of queries: encrypted and nameless (0700)
//! ```

use crate::catalog::Catalog;
use crate::config::StoreConfig;
use crate::{Result, StoreError};
use kura_crypto::{KeyId, Keyring, MasterKey, PseudonymKey, Purpose};
use std::path::{Path, PathBuf};

/// The keyring id of the platform pseudonym key.
pub const PLATFORM_PSEUDONYM_KEY: &str = "pseudonym/platform";

/// The keyring id of the airlock key.
pub const AIRLOCK_KEY: &str = "airlock/platform";

/// The keyring id of the catalogue key (authenticates `catalog.json`, keys content digests).
pub const CATALOG_KEY: &str = "platform/catalog";

/// Writes a file atomically ([`kura_crypto::write_atomic`]), naming the file in errors.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    kura_crypto::write_atomic(path, bytes, mode).map_err(|e| StoreError::io(path, e))
}

/// A new home's directory must not exist, or be an empty directory of this user that nobody
/// else may write to: `kura init --home /tmp` must not take over (and re-permission) a shared
/// directory.
fn check_new_root(root: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(root, e)),
    };
    let refuse = |why: &str| {
        Err(StoreError::Config {
            path: root.display().to_string(),
            reason: format!("{why}: 新しい空のディレクトリを指定してください / name a new or empty directory of your own"),
        })
    };
    if !meta.is_dir() {
        return refuse("ディレクトリではありません / not a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.mode() & 0o022 != 0 || meta.mode() & 0o1000 != 0 {
            return refuse("他の利用者も書き込めるディレクトリです / others may write to this directory");
        }
        if meta.uid() != rustix::process::getuid().as_raw() {
            return refuse("他の利用者のディレクトリです / the directory belongs to another user");
        }
    }
    if std::fs::read_dir(root).map_err(|e| StoreError::io(root, e))?.next().is_some() {
        return refuse("空ではありません / the directory is not empty");
    }
    Ok(())
}

/// Makes `path` (and its parents) and sets it to owner-only (0700).
pub fn mkdir_private(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| StoreError::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|e| StoreError::io(path, e))?;
    }
    Ok(())
}

/// An opened home.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
    /// `kura.toml` as read (syntax checked); sections are typed by their owners.
    config: toml::Table,
    /// The store's own section.
    store: StoreConfig,
}

/// The configuration a home gets from [`Home::init`]: every setting at its default. The
/// commented template is the composition root's (`kura_app::config::TEMPLATE`).
pub const MINIMAL_CONFIG: &str = "version = 1\n";

impl Home {
    /// Creates a home (directories, configuration, master key, keyring with the platform
    /// pseudonym and catalogue keys, an empty sealed catalogue). Refuses a directory that
    /// already holds a home, and an existing directory that is not empty or that others may
    /// write to (a shared directory such as `/tmp` is never taken over or re-permissioned).
    pub fn init(root: &Path) -> Result<Self> {
        Self::init_with_config(root, MINIMAL_CONFIG)
    }

    /// [`Home::init`] writing `config` as `kura.toml` (checked by opening the home).
    pub fn init_with_config(root: &Path, config: &str) -> Result<Self> {
        if root.join("kura.toml").exists() || root.join("keys/master.key").exists() {
            return Err(StoreError::AlreadyInitialised(root.display().to_string()));
        }
        check_new_root(root)?;
        mkdir_private(root)?;
        mkdir_private(&root.join("keys"))?;
        mkdir_private(&root.join("data"))?;
        mkdir_private(&root.join("tmp"))?;
        let master = MasterKey::generate()?;
        master.save(&root.join("keys/master.key"))?;
        let mut keyring = Keyring::new();
        keyring.create(&master, None, KeyId::new(PLATFORM_PSEUDONYM_KEY)?, Purpose::Pseudonym)?;
        keyring.create(&master, None, KeyId::new(CATALOG_KEY)?, Purpose::CatalogMac)?;
        keyring.save(&root.join("keys/keyring.json"))?;
        write_atomic(&root.join("kura.toml"), config.as_bytes(), 0o644)?;
        let home = Self::open(root)?;
        home.save_catalog(&mut Catalog { version: 1, ..Catalog::default() })?;
        Ok(home)
    }

    /// Opens an existing home. Checks the syntax of `kura.toml` and the store's own section;
    /// the other sections are checked by their owners ([`Home::section`]) and the whole file
    /// by the composition root (`kura-app`), which every command goes through.
    pub fn open(root: &Path) -> Result<Self> {
        let cfg_path = root.join("kura.toml");
        let text = match std::fs::read_to_string(&cfg_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotAHome(root.display().to_string())),
            Err(e) => return Err(StoreError::io(&cfg_path, e)),
        };
        let config: toml::Table =
            toml::from_str(&text).map_err(|e| StoreError::Config { path: cfg_path.display().to_string(), reason: e.to_string() })?;
        let mut home = Self { root: root.to_path_buf(), config, store: StoreConfig::default() };
        home.store = home.section("store")?;
        Ok(home)
    }

    /// One section of `kura.toml` as its owner's type; a missing section is the type's
    /// default. An unknown key or a wrong type is an error naming the file and the section.
    pub fn section<T: serde::de::DeserializeOwned + Default>(&self, name: &str) -> Result<T> {
        match self.config.get(name) {
            None => Ok(T::default()),
            Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| StoreError::Config {
                path: format!("{} [{name}]", self.root.join("kura.toml").display()),
                reason: e.to_string(),
            }),
        }
    }

    /// The whole of `kura.toml` as one type (the composition root's, which checks every
    /// section and refuses unknown ones).
    pub fn whole<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        toml::Value::Table(self.config.clone()).try_into().map_err(|e: toml::de::Error| StoreError::Config {
            path: self.root.join("kura.toml").display().to_string(),
            reason: e.to_string(),
        })
    }

    /// The store's section of the configuration.
    pub fn store_config(&self) -> &StoreConfig {
        &self.store
    }

    /// Opens the home, creating it first if the directory holds none.
    pub fn open_or_init(root: &Path) -> Result<(Self, bool)> {
        Self::open_or_init_with_config(root, MINIMAL_CONFIG)
    }

    /// [`Home::open_or_init`] writing `config` if the home is created.
    pub fn open_or_init_with_config(root: &Path, config: &str) -> Result<(Self, bool)> {
        if root.join("kura.toml").exists() { Ok((Self::open(root)?, false)) } else { Ok((Self::init_with_config(root, config)?, true)) }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The data root (object store root).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The spill directory.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The catalogue path.
    pub fn catalog_path(&self) -> PathBuf {
        self.root.join("catalog.json")
    }

    /// The keyring path.
    pub fn keyring_path(&self) -> PathBuf {
        self.root.join("keys/keyring.json")
    }

    fn master_path(&self) -> PathBuf {
        self.root.join("keys/master.key")
    }

    fn next_master_path(&self) -> PathBuf {
        self.root.join("keys/master.key.next")
    }

    /// Takes the lock on the home's keys (`keys/.lock`): shared to read the master key, the
    /// keyring and the catalogue together, exclusive to change them. Readers never change a
    /// file; every change happens under the exclusive lock, so no reader sees half of one and
    /// no two writers lose each other's keys. Held until dropped. (Never taken twice by one
    /// process at once: the `*_locked` functions are for code that already holds it.)
    pub fn lock_keys(&self, exclusive: bool) -> Result<KeysLock> {
        lock_file(&self.root.join("keys/.lock"), exclusive)
    }

    /// Takes the lock that serialises writers of datasets (`keys/.write-lock`), for a whole
    /// write; the keys lock is taken only for its short changes of keys and catalogue.
    pub fn lock_writes(&self) -> Result<KeysLock> {
        lock_file(&self.root.join("keys/.write-lock"), true)
    }

    /// Loads the master key.
    pub fn master_key(&self) -> Result<MasterKey> {
        let _lock = self.lock_keys(false)?;
        self.master_key_locked()
    }

    /// The master key, for code holding the keys lock. Read-only: after a rotation interrupted
    /// between the keyring's re-wrap and the key's rename, the key that opens the keyring is the
    /// master key ([`Home::finish_rotation_locked`] tidies up under the exclusive lock).
    pub fn master_key_locked(&self) -> Result<MasterKey> {
        let current = MasterKey::load(&self.master_path())?;
        let next_path = self.next_master_path();
        if !next_path.exists() {
            return Ok(current);
        }
        let probe = KeyId::new(PLATFORM_PSEUDONYM_KEY)?;
        let ring = Keyring::load(&self.keyring_path())?;
        if ring.unwrap(&current, &probe).is_ok() {
            return Ok(current);
        }
        let next = MasterKey::load(&next_path)?;
        ring.unwrap(&next, &probe)?;
        Ok(next)
    }

    /// Finishes or undoes a rotation a crash interrupted (under the exclusive keys lock): the
    /// key that opens the keyring becomes `master.key`, the other is removed.
    pub fn finish_rotation_locked(&self) -> Result<()> {
        let next_path = self.next_master_path();
        if !next_path.exists() {
            return Ok(());
        }
        let current = MasterKey::load(&self.master_path())?;
        let ring = Keyring::load(&self.keyring_path())?;
        if ring.unwrap(&current, &KeyId::new(PLATFORM_PSEUDONYM_KEY)?).is_ok() {
            std::fs::remove_file(&next_path).map_err(|e| StoreError::io(&next_path, e))?;
        } else {
            self.master_key_locked()?;
            std::fs::rename(&next_path, self.master_path()).map_err(|e| StoreError::io(&next_path, e))?;
        }
        Ok(())
    }

    /// Replaces the master key: every key under it is re-wrapped under a new one and the old
    /// one is deleted, so a copy of an earlier keyring (holding keys crypto-shredding removed
    /// since) opens with the old master key only (HIC-S11). Takes the exclusive keys lock.
    pub fn rotate_master(&self) -> Result<()> {
        let _lock = self.lock_keys(true)?;
        self.finish_rotation_locked()?;
        let mut ring = Keyring::load(&self.keyring_path())?;
        self.rotate_master_locked(&mut ring)
    }

    /// [`Home::rotate_master`] for code holding the exclusive keys lock, with its keyring (saved
    /// here). Crash-safe: the new key is written first, then the keyring, then the new key
    /// takes the old one's place.
    pub fn rotate_master_locked(&self, keyring: &mut Keyring) -> Result<()> {
        let old = self.master_key_locked()?;
        let new = MasterKey::generate()?;
        let next_path = self.next_master_path();
        let _ = std::fs::remove_file(&next_path);
        new.save(&next_path)?;
        keyring.rewrap_master(&old, &new)?;
        keyring.save(&self.keyring_path())?;
        std::fs::rename(&next_path, self.master_path()).map_err(|e| StoreError::io(&next_path, e))?;
        if let Ok(d) = std::fs::File::open(self.root.join("keys")) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Loads the keyring.
    pub fn keyring(&self) -> Result<Keyring> {
        let _lock = self.lock_keys(false)?;
        Ok(Keyring::load(&self.keyring_path())?)
    }

    /// A top-level key of the home (`platform/…`) for `purpose`, created on first use.
    pub fn ensure_key(&self, id: &str, purpose: Purpose) -> Result<kura_crypto::SecretKey> {
        let id = KeyId::new(id)?;
        {
            let _lock = self.lock_keys(false)?;
            let ring = Keyring::load(&self.keyring_path())?;
            if ring.contains(&id) {
                return Ok(ring.unwrap_as(&self.master_key_locked()?, &id, purpose)?);
            }
        }
        let _lock = self.lock_keys(true)?;
        self.finish_rotation_locked()?;
        let master = self.master_key_locked()?;
        let mut ring = Keyring::load(&self.keyring_path())?;
        if ring.contains(&id) {
            return Ok(ring.unwrap_as(&master, &id, purpose)?);
        }
        let key = ring.create(&master, None, id, purpose)?;
        ring.save(&self.keyring_path())?;
        Ok(key)
    }

    /// Crypto-shredding of one top-level key (a project's workspace key, HIC-IO3): removes it
    /// and every key below it from the keyring, then replaces the master key, so that no copy
    /// of an earlier keyring opens with the master key from now on. Returns how many keys were
    /// removed (0 when it was already gone: the call can be repeated after an interruption).
    pub fn destroy_key(&self, id: &str) -> Result<usize> {
        let id = KeyId::new(id)?;
        let _lock = self.lock_keys(true)?;
        self.finish_rotation_locked()?;
        let mut ring = Keyring::load(&self.keyring_path())?;
        let removed = ring.destroy(&id);
        self.rotate_master_locked(&mut ring)?;
        Ok(removed)
    }

    /// Whether the keyring holds key `id`.
    pub fn has_key(&self, id: &str) -> Result<bool> {
        Ok(self.keyring()?.contains(&KeyId::new(id)?))
    }

    /// The catalogue key, created on first use in homes made before it existed.
    pub fn catalog_key(&self) -> Result<kura_crypto::SecretKey> {
        self.ensure_key(CATALOG_KEY, Purpose::CatalogMac)
    }

    /// Loads the catalogue and checks it is the one Kura wrote: its MAC under the catalogue
    /// key must match, so no entry (a file, a row count, a size) can be added, removed or
    /// changed without the keys. The error names `catalog.json`.
    pub fn catalog(&self) -> Result<Catalog> {
        let key = self.catalog_key()?;
        let _lock = self.lock_keys(false)?;
        self.catalog_locked(&key)
    }

    /// [`Home::catalog`] for code holding the keys lock.
    pub fn catalog_locked(&self, key: &kura_crypto::SecretKey) -> Result<Catalog> {
        let catalog = Catalog::load(&self.catalog_path())?;
        catalog.verify(key, &self.catalog_path())?;
        Ok(catalog)
    }

    /// The master key, the keyring and the catalogue as one consistent view (one shared lock):
    /// what a reader of datasets needs.
    pub fn snapshot(&self) -> Result<(MasterKey, Keyring, Catalog)> {
        let key = self.catalog_key()?;
        let _lock = self.lock_keys(false)?;
        Ok((self.master_key_locked()?, Keyring::load(&self.keyring_path())?, self.catalog_locked(&key)?))
    }

    /// Seals the catalogue under the catalogue key and writes it atomically.
    pub fn save_catalog(&self, catalog: &mut Catalog) -> Result<()> {
        let key = self.catalog_key()?;
        let _lock = self.lock_keys(true)?;
        self.save_catalog_locked(catalog, &key)
    }

    /// [`Home::save_catalog`] for code holding the exclusive keys lock.
    pub fn save_catalog_locked(&self, catalog: &mut Catalog, key: &kura_crypto::SecretKey) -> Result<()> {
        catalog.seal(key)?;
        catalog.save(&self.catalog_path())
    }

    /// The platform pseudonym key.
    pub fn platform_pseudonym_key(&self) -> Result<PseudonymKey> {
        Ok(PseudonymKey::new(self.ensure_key(PLATFORM_PSEUDONYM_KEY, Purpose::Pseudonym)?))
    }

    /// The airlock key (made on first use): the root of the keys only the airlock's checker
    /// and the extract's builder hold (issue 22 §8).
    pub fn airlock_key(&self) -> Result<kura_crypto::SecretKey> {
        self.ensure_key(AIRLOCK_KEY, Purpose::Airlock)
    }
}

/// A lock on a home's keys or writes; released when dropped.
#[derive(Debug)]
pub struct KeysLock {
    _file: Option<std::fs::File>,
}

/// Takes the exclusive lock of the lock file at `path` (made if missing, mode 0600), waiting
/// for whoever holds it; released when the returned value is dropped.
pub fn lock_exclusive(path: &Path) -> Result<KeysLock> {
    lock_file(path, true)
}

/// Takes a lock file's lock. A shared (reader's) lock opens the file read-only, so a home
/// mounted read-only can still be read; on a read-only file system where the file was never
/// made, nobody can write either, so a reader goes without.
fn lock_file(path: &Path, exclusive: bool) -> Result<KeysLock> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = if exclusive {
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
    } else {
        match std::fs::File::open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
            }
            other => other,
        }
    };
    let file = match opened {
        Ok(f) => f,
        Err(e) if !exclusive && rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::ROFS) => {
            return Ok(KeysLock { _file: None });
        }
        Err(e) => return Err(StoreError::io(path, e)),
    };
    let op = if exclusive { rustix::fs::FlockOperation::LockExclusive } else { rustix::fs::FlockOperation::LockShared };
    rustix::fs::flock(&file, op).map_err(|e| StoreError::io(path, e.into()))?;
    Ok(KeysLock { _file: Some(file) })
}

/// The current UTC time as RFC 3339 (`2026-11-22T04:08:00Z`).
pub fn utc_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let (y, m, d) = now.to_calendar_date();
    format!("{y:04}-{:02}-{d:02}T{:02}:{:02}:{:02}Z", u8::from(m), now.hour(), now.minute(), now.second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_open_and_refuse_reinit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home");
        let h = Home::init(&root).unwrap();
        assert_eq!(h.store_config(), &StoreConfig::default());
        assert!(h.platform_pseudonym_key().is_ok());
        assert!(matches!(Home::init(&root), Err(StoreError::AlreadyInitialised(_))));
        assert!(Home::open(&root).is_ok());
        assert!(matches!(Home::open(&dir.path().join("nope")), Err(StoreError::NotAHome(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.join("keys/master.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(root.join("keys")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert_eq!(utc_now().len(), 20);
    }

    /// Issue 14, finding 16: `kura init --home DIR` never takes over a shared or non-empty
    /// directory (nor changes its permissions).
    #[cfg(unix)]
    #[test]
    fn init_refuses_shared_or_non_empty_directories() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = Home::init(&shared).unwrap_err().to_string();
        assert!(e.contains("others may write"), "{e}");
        assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777, 0o1777, "left as it was");
        let full = dir.path().join("full");
        std::fs::create_dir(&full).unwrap();
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(full.join("notes.txt"), "mine").unwrap();
        assert!(Home::init(&full).unwrap_err().to_string().contains("not empty"));
        assert_eq!(std::fs::read_to_string(full.join("notes.txt")).unwrap(), "mine");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755)).unwrap();
        Home::init(&empty).unwrap();
        assert_eq!(std::fs::metadata(&empty).unwrap().permissions().mode() & 0o777, 0o700);
    }

    /// A rotation interrupted after the keyring was re-wrapped, before the new master key took
    /// the old one's place, is finished at the next use; one interrupted before, is undone.
    #[test]
    fn an_interrupted_master_rotation_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let h = Home::init(&dir.path().join("home")).unwrap();
        let pseudonym = h.platform_pseudonym_key().unwrap();
        // Interrupted after the keyring was saved: readers use the key that opens the keyring
        // (and change nothing); the next writer finishes the rotation.
        let old = h.master_key().unwrap();
        let new = MasterKey::generate().unwrap();
        new.save(&h.next_master_path()).unwrap();
        let mut ring = h.keyring().unwrap();
        ring.rewrap_master(&old, &new).unwrap();
        ring.save(&h.keyring_path()).unwrap();
        assert_eq!(h.platform_pseudonym_key().unwrap().rehash("x"), pseudonym.rehash("x"));
        assert!(h.next_master_path().exists(), "a reader changes no file");
        {
            let _l = h.lock_keys(true).unwrap();
            h.finish_rotation_locked().unwrap();
        }
        assert!(!h.next_master_path().exists());
        assert_eq!(h.platform_pseudonym_key().unwrap().rehash("x"), pseudonym.rehash("x"));
        // Interrupted before: the stray new key is dropped by the next writer.
        MasterKey::generate().unwrap().save(&h.next_master_path()).unwrap();
        assert_eq!(h.platform_pseudonym_key().unwrap().rehash("x"), pseudonym.rehash("x"));
        {
            let _l = h.lock_keys(true).unwrap();
            h.finish_rotation_locked().unwrap();
        }
        assert!(!h.next_master_path().exists());
        // A full rotation keeps every key.
        h.rotate_master().unwrap();
        assert_eq!(h.platform_pseudonym_key().unwrap().rehash("x"), pseudonym.rehash("x"));
        h.catalog().unwrap();
    }
}
