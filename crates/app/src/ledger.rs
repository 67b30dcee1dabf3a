//! The audit ledger of a home (HX-3, HX-4, HX-10, HIC-S5, HIC-S6): the store of record it
//! lives in, its signing key (whose name, the origin, never changes), its witnesses, and the
//! home's own witness.

use crate::{App, AppError, Result};
use kura_db::Db;
use kura_ledger::log::{Log, LogOptions, WitnessEndpoint};
use kura_ledger::store::SqlStore;
use kura_tlog::tiles::DirTiles;
use kura_tlog::witness::Witness;
use kura_tlog::{SigType, SignerKey, VerifierKey};
use std::path::Path;
use std::sync::Arc;

fn read_secret(path: &Path) -> Result<Option<SignerKey>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(SignerKey::parse(&t)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AppError::io(path, e)),
    }
}

impl App {
    /// The store of record's URL: `[server] database`, or SQLite in the home.
    pub fn database_url(&self) -> String {
        let db = &self.config.server.database;
        if db.is_empty() { format!("sqlite://{}", self.layout().state_db().display()) } else { db.clone() }
    }

    /// Opens and migrates the store of record.
    pub async fn open_db(&self) -> Result<Db> {
        let db = match &self.db {
            Some(db) => db.clone(),
            None => Db::connect(&self.database_url()).await?,
        };
        db.migrate().await?;
        Ok(db)
    }

    /// The log's signing key, created on first use from `[ledger]`. A configured origin that
    /// differs from the existing key's name is refused: a log's origin never changes.
    pub fn signing_key(&self) -> Result<SignerKey> {
        let cfg = &self.config.ledger;
        let path = self.layout().ledger_key();
        if let Some(k) = read_secret(&path)? {
            if !cfg.origin.is_empty() && cfg.origin != k.name() {
                return Err(AppError::Setup(format!(
                    "kura.toml の origin '{}' が鍵 '{}' と違います / [ledger] origin '{}' differs from the existing key's name '{}': an origin cannot change; restore the old value",
                    cfg.origin,
                    k.name(),
                    cfg.origin,
                    k.name()
                )));
            }
            return Ok(k);
        }
        let kind = match cfg.key_type.as_str() {
            "ed25519" => SigType::Ed25519,
            "ecdsa-p256" => SigType::EcdsaP256,
            other => {
                return Err(AppError::Setup(format!(
                    "[ledger] key_type '{other}': \"ed25519\" か \"ecdsa-p256\" を指定してください / use \"ed25519\" or \"ecdsa-p256\""
                )));
            }
        };
        let origin = if cfg.origin.is_empty() {
            let mut r = [0u8; 6];
            kura_crypto::random_bytes(&mut r)?;
            format!("kura.local/{}", hex::encode(r))
        } else {
            cfg.origin.clone()
        };
        let key = SignerKey::generate(&origin, kind)?;
        kura_crypto::write_atomic(&path, key.to_secret_string().as_bytes(), 0o600).map_err(|e| AppError::io(&path, e))?;
        Ok(key)
    }

    /// The witnesses of `[ledger]`, each a cosignature key; the URL of an online one must not
    /// be on a blocklist (HIC-S9).
    pub fn witnesses(&self) -> Result<Vec<WitnessEndpoint>> {
        let cfg = &self.config.ledger;
        for url in cfg.witnesses.iter().filter_map(|w| w.url.as_deref()) {
            self.outbound_allowed(url)?;
        }
        cfg.witnesses
            .iter()
            .map(|w| {
                let key = VerifierKey::parse(&w.key)?;
                if key.kind != SigType::Cosignature {
                    return Err(AppError::Setup(format!(
                        "[[ledger.witnesses]] '{}': 連署鍵（種別 0x04）ではありません / not a cosignature (0x04) key",
                        key.name
                    )));
                }
                Ok(WitnessEndpoint { key, url: w.url.clone() })
            })
            .collect()
    }

    /// The witnesses' keys only (for verification).
    pub fn witness_keys(&self) -> Result<Vec<VerifierKey>> {
        Ok(self.witnesses()?.into_iter().map(|w| w.key).collect())
    }

    /// Cosignatures required before a checkpoint is published.
    pub fn min_witnesses(&self) -> usize {
        self.config.ledger.min_witnesses
    }

    /// The published log's tiles.
    pub fn published_tiles(&self) -> Result<DirTiles> {
        let dir = self.layout().ledger_published();
        std::fs::create_dir_all(&dir).map_err(|e| AppError::io(&dir, e))?;
        Ok(DirTiles::new(&dir))
    }

    /// Opens the home's log (creating key, database and directory on first use), asking online
    /// witnesses over HTTP.
    pub async fn open_log(&self) -> Result<Log<SqlStore>> {
        let key = self.signing_key()?;
        let tiles = self.published_tiles()?;
        let store = SqlStore::new(self.open_db().await?);
        let mut opts = LogOptions::new(key);
        opts.witnesses = self.witnesses()?;
        opts.min_witnesses = self.min_witnesses();
        let online = opts.witnesses.iter().any(|w| w.url.is_some());
        let log = Log::open(store, Arc::new(tiles), opts).await?;
        if online {
            log.set_witness_client(Arc::new(kura_server::client::HttpWitnessClient::default()));
        }
        Ok(log)
    }

    /// The home's witness, its key created on first use under `name`.
    pub fn open_witness(&self, name: &str) -> Result<Witness> {
        let layout = self.layout();
        let key_path = layout.witness_key();
        let key = match read_secret(&key_path)? {
            Some(k) => k,
            None => {
                let k = SignerKey::generate(name, SigType::Cosignature)?;
                kura_crypto::write_atomic(&key_path, k.to_secret_string().as_bytes(), 0o600).map_err(|e| AppError::io(&key_path, e))?;
                k
            }
        };
        let logs_path = layout.witness_logs();
        let logs = match std::fs::read_to_string(&logs_path) {
            Ok(t) => t
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| VerifierKey::parse(l.trim()))
                .collect::<std::result::Result<Vec<_>, _>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(AppError::io(&logs_path, e)),
        };
        let state_path = layout.witness_state();
        if let Some(dir) = state_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| AppError::io(dir, e))?;
        }
        Ok(Witness::open(key, logs, &state_path)?)
    }

    /// Adds a log the home's witness cosigns (idempotent).
    pub fn witness_add_log(&self, key: &VerifierKey) -> Result<()> {
        let path = self.layout().witness_logs();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| AppError::io(dir, e))?;
        }
        let mut text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(AppError::io(&path, e)),
        };
        if !text.lines().any(|l| l.trim() == key.to_string()) {
            text.push_str(&format!("{key}\n"));
            kura_crypto::write_atomic(&path, text.as_bytes(), 0o644).map_err(|e| AppError::io(&path, e))?;
        }
        Ok(())
    }
}
