//! A Kura home: the directory that holds configuration, keys, catalogue and data.
//!
//! ```text
//! <home>/kura.toml            configuration
//! <home>/keys/master.key      the master key (0600)
//! <home>/keys/keyring.json    every other key, wrapped (0600)
//! <home>/catalog.json         the catalogue
//! <home>/data/…               encrypted datasets (object store root)
//! <home>/tmp/                 spill files of queries (0700)
//! ```

use crate::catalog::Catalog;
use crate::config::{KuraConfig, TEMPLATE};
use crate::{Result, StoreError};
use kura_crypto::{KeyId, Keyring, MasterKey, PseudonymKey, Purpose};
use std::path::{Path, PathBuf};

/// The keyring id of the platform pseudonym key.
pub const PLATFORM_PSEUDONYM_KEY: &str = "pseudonym/platform";

/// Writes a file atomically ([`kura_crypto::write_atomic`]), naming the file in errors.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    kura_crypto::write_atomic(path, bytes, mode).map_err(|e| StoreError::io(path, e))
}

fn mkdir_private(path: &Path) -> Result<()> {
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
    config: KuraConfig,
}

impl Home {
    /// Creates a home (directories, configuration, master key, keyring with the platform
    /// pseudonym key). Refuses a directory that already holds a home.
    pub fn init(root: &Path) -> Result<Self> {
        if root.join("kura.toml").exists() || root.join("keys/master.key").exists() {
            return Err(StoreError::AlreadyInitialised(root.display().to_string()));
        }
        mkdir_private(root)?;
        mkdir_private(&root.join("keys"))?;
        mkdir_private(&root.join("data"))?;
        mkdir_private(&root.join("tmp"))?;
        let master = MasterKey::generate()?;
        master.save(&root.join("keys/master.key"))?;
        let mut keyring = Keyring::new();
        keyring.create(&master, None, KeyId::new(PLATFORM_PSEUDONYM_KEY)?, Purpose::Pseudonym)?;
        keyring.save(&root.join("keys/keyring.json"))?;
        Catalog { version: 1, ..Catalog::default() }.save(&root.join("catalog.json"))?;
        write_atomic(&root.join("kura.toml"), TEMPLATE.as_bytes(), 0o644)?;
        Self::open(root)
    }

    /// Opens an existing home.
    pub fn open(root: &Path) -> Result<Self> {
        let cfg_path = root.join("kura.toml");
        let text = match std::fs::read_to_string(&cfg_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotAHome(root.display().to_string())),
            Err(e) => return Err(StoreError::io(&cfg_path, e)),
        };
        let config: KuraConfig =
            toml::from_str(&text).map_err(|e| StoreError::Config { path: cfg_path.display().to_string(), reason: e.to_string() })?;
        Ok(Self { root: root.to_path_buf(), config })
    }

    /// Opens the home, creating it first if the directory holds none.
    pub fn open_or_init(root: &Path) -> Result<(Self, bool)> {
        if root.join("kura.toml").exists() { Ok((Self::open(root)?, false)) } else { Ok((Self::init(root)?, true)) }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration.
    pub fn config(&self) -> &KuraConfig {
        &self.config
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

    /// Loads the master key.
    pub fn master_key(&self) -> Result<MasterKey> {
        Ok(MasterKey::load(&self.root.join("keys/master.key"))?)
    }

    /// Loads the keyring.
    pub fn keyring(&self) -> Result<Keyring> {
        Ok(Keyring::load(&self.keyring_path())?)
    }

    /// Loads the catalogue.
    pub fn catalog(&self) -> Result<Catalog> {
        Catalog::load(&self.catalog_path())
    }

    /// The platform pseudonym key.
    pub fn platform_pseudonym_key(&self) -> Result<PseudonymKey> {
        let key = self.keyring()?.unwrap(&self.master_key()?, &KeyId::new(PLATFORM_PSEUDONYM_KEY)?)?;
        Ok(PseudonymKey::new(key))
    }
}

/// The current UTC time as RFC 3339 (`2026-11-22T04:08:00Z`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, d) = kura_synth::calendar::civil_from_days((secs / 86_400) as i32);
    let s = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_open_and_refuse_reinit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home");
        let h = Home::init(&root).unwrap();
        assert_eq!(h.config().query.timeout_secs, 600);
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
}
