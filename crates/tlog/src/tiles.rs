//! Published tiles: the read-only, static face of the log (C2SP tlog-tiles).
//!
//! A [`TileStore`] holds `checkpoint`, `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`
//! under one prefix. [`DirTiles`] writes them to a directory that any static web server or
//! `rsync` mirror can serve as is; full tiles never change once written.

use crate::TlogError;
use crate::tile::TileId;
use std::path::{Path, PathBuf};

/// Where published files go and come from.
pub trait TileStore: Send + Sync {
    /// Stores a file at a tlog-tiles path (`checkpoint`, `tile/…`).
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), TlogError>;
    /// Reads a file; `None` if absent.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, TlogError>;
    /// Removes a file if present.
    fn remove(&self, path: &str) -> Result<(), TlogError>;
    /// Whether a file is present.
    fn exists(&self, path: &str) -> bool {
        self.get(path).ok().flatten().is_some()
    }
    /// Removes the partial versions of a tile once the full one exists.
    fn remove_partials(&self, _full: TileId) -> Result<(), TlogError> {
        Ok(())
    }
}

/// Tiles in a directory.
#[derive(Debug, Clone)]
pub struct DirTiles {
    root: PathBuf,
}

impl DirTiles {
    /// Tiles under `root` (created when first written).
    pub fn new(root: &Path) -> DirTiles {
        DirTiles { root: root.to_path_buf() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, p: &str) -> Result<PathBuf, TlogError> {
        // Only the log's own paths: no absolute paths, no `..`.
        if p != "checkpoint" && crate::tile::TileId::parse_path(p).is_err() {
            return Err(TlogError::Malformed { what: "tile path", detail: crate::hash::shorten(p) });
        }
        Ok(self.root.join(p))
    }
}

impl TileStore for DirTiles {
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), TlogError> {
        let target = self.path(path)?;
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| TlogError::io(dir, e))?;
        }
        // Readers (a web server, a mirror) never see half a file, and a crash leaves the old
        // file or the new one: Kura's one atomic write (aside, fsync, rename, fsync the directory).
        kura_crypto::write_atomic(&target, bytes, 0o644).map_err(|e| TlogError::io(&target, e))
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, TlogError> {
        let target = self.path(path)?;
        match std::fs::read(&target) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TlogError::io(&target, e)),
        }
    }

    fn remove(&self, path: &str) -> Result<(), TlogError> {
        let target = self.path(path)?;
        match std::fs::remove_file(&target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TlogError::io(&target, e)),
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).is_ok_and(|p| p.is_file())
    }

    fn remove_partials(&self, full: TileId) -> Result<(), TlogError> {
        let dir = self.path(&full.path())?.with_extension("p");
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TlogError::io(&dir, e)),
        }
    }
}
