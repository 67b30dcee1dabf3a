//! Spill files that are encrypted and cannot outlive the process (issue 14, HIC-S11).
//!
//! When an operator runs out of memory, DataFusion writes batches of *decrypted* values (ID
//! hashes, institution codes…) to spill files. Kura gives DataFusion its own spill backend:
//!
//! - every spill file has its own AES-256-GCM key, made for it and held only in memory;
//!   chunks are sealed with the file's identity and the chunk's number as associated data,
//!   so a chunk changed, swapped or cut on disk fails to open (DataFusion reads its spills back
//!   without validating them: this makes the bytes it reads the bytes it wrote);
//! - the file is unlinked the moment it is created: it has no name in the directory, nobody
//!   can open it by path, and the kernel frees it when the process ends however it ends
//!   (SIGKILL included) — there is nothing to clean up after a crash;
//! - the space all spill files of an engine take is capped.

use bytes::Bytes;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SpillFile, SpillWriter, TempFileFactory};
use kura_crypto::SecretKey;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Plaintext bytes sealed per chunk (a flush seals a shorter one).
const CHUNK: usize = 256 * 1024;

/// Makes the encrypted, nameless spill files of one engine.
#[derive(Debug)]
pub struct EncryptedSpills {
    dir: PathBuf,
    used: Arc<AtomicU64>,
    limit: u64,
}

impl EncryptedSpills {
    /// Spill files in `dir` (created if missing, owner-only), at most `limit` bytes in all.
    pub fn new(dir: &Path, limit: u64) -> std::io::Result<EncryptedSpills> {
        std::fs::create_dir_all(dir)?;
        Ok(EncryptedSpills { dir: dir.to_path_buf(), used: Arc::new(AtomicU64::new(0)), limit })
    }

    /// Bytes the spill files take on disk now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

fn io_err(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("一時ファイル / spill file: {what}: {e}"))
}

impl TempFileFactory for EncryptedSpills {
    fn create_temp_file(&self, _description: &str) -> Result<Arc<dyn SpillFile>> {
        Ok(self.create()?)
    }
}

impl EncryptedSpills {
    fn create(&self) -> Result<Arc<EncryptedSpillFile>> {
        let mut id = [0u8; 16];
        kura_crypto::random_bytes(&mut id).map_err(|e| io_err("random", e))?;
        let path = self.dir.join(format!("spill-{}", hex::encode(id)));
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path).map_err(|e| io_err("create", e))?;
        // From here on the file has no name: only this process's descriptor reaches it.
        std::fs::remove_file(&path).map_err(|e| io_err("unlink", e))?;
        let key = SecretKey::generate().map_err(|e| io_err("key", e))?;
        Ok(Arc::new(EncryptedSpillFile {
            shared: Arc::new(Shared {
                file,
                key,
                id,
                chunks: Mutex::new(Vec::new()),
                used: self.used.clone(),
                limit: self.limit,
                size: AtomicU64::new(0),
            }),
        }))
    }
}

struct Shared {
    file: File,
    key: SecretKey,
    id: [u8; 16],
    /// (offset, length) of every sealed chunk, in order.
    chunks: Mutex<Vec<(u64, u64)>>,
    used: Arc<AtomicU64>,
    limit: u64,
    size: AtomicU64,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.used.fetch_sub(self.size.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl Shared {
    fn aad(&self, index: usize) -> Vec<u8> {
        let mut aad = b"kura/spill/v1\0".to_vec();
        aad.extend_from_slice(&self.id);
        aad.extend_from_slice(&(index as u64).to_be_bytes());
        aad
    }

    /// Seals `plain` as the next chunk and appends it.
    fn seal(&self, plain: &[u8]) -> std::io::Result<()> {
        let mut chunks = self.chunks.lock().unwrap_or_else(|e| e.into_inner());
        let index = chunks.len();
        let sealed = kura_crypto::seal(&self.key, &self.aad(index), plain).map_err(std::io::Error::other)?;
        let len = sealed.len() as u64;
        if self.used.fetch_add(len, Ordering::Relaxed) + len > self.limit {
            self.used.fetch_sub(len, Ordering::Relaxed);
            return Err(std::io::Error::other(format!(
                "一時ファイルの上限 {} MiB を超えました / spill space limit of {} MiB reached",
                self.limit >> 20,
                self.limit >> 20
            )));
        }
        let offset = chunks.last().map_or(0, |(o, l)| o + l);
        self.file.write_all_at(&sealed, offset)?;
        self.size.fetch_add(len, Ordering::Relaxed);
        chunks.push((offset, len));
        Ok(())
    }

    /// Reads and opens chunk `index`, if it has been sealed.
    fn open(&self, index: usize) -> Option<Result<Bytes>> {
        let (offset, len) = *self.chunks.lock().unwrap_or_else(|e| e.into_inner()).get(index)?;
        let mut sealed = vec![0u8; len as usize];
        if let Err(e) = self.file.read_exact_at(&mut sealed, offset) {
            return Some(Err(io_err("read", e)));
        }
        Some(match kura_crypto::open_sealed(&self.key, &self.aad(index), &sealed) {
            Ok(plain) => Ok(Bytes::copy_from_slice(&plain)),
            Err(_) => Err(DataFusionError::Execution(
                "一時ファイルが改ざんされています / a spill file failed authentication (altered on disk)".into(),
            )),
        })
    }
}

/// One encrypted spill file.
struct EncryptedSpillFile {
    shared: Arc<Shared>,
}

impl SpillFile for EncryptedSpillFile {
    fn size(&self) -> Option<u64> {
        Some(self.shared.size.load(Ordering::Relaxed))
    }

    fn read_stream(&self) -> Result<std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes>> + Send>>> {
        // Chunk by chunk, as far as they are sealed: like reading a file up to its end (a
        // reader that follows a file still being written asks again once more was flushed).
        let shared = self.shared.clone();
        Ok(Box::pin(futures::stream::unfold(0usize, move |index| {
            let next = shared.open(index).map(|chunk| (chunk, index + 1));
            std::future::ready(next)
        })))
    }

    fn open_writer(&self) -> Result<Box<dyn SpillWriter>> {
        Ok(Box::new(ChunkWriter { shared: self.shared.clone(), buf: Zeroizing::new(Vec::with_capacity(CHUNK)) }))
    }
}

/// Buffers plaintext (zeroised when dropped) and seals it a chunk at a time; a flush seals
/// what is buffered, so a reader following the file sees every flushed byte.
struct ChunkWriter {
    shared: Arc<Shared>,
    buf: Zeroizing<Vec<u8>>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(chunk) = self.buf.get(..CHUNK) {
            self.shared.seal(chunk)?;
            self.buf.drain(..CHUNK);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.shared.seal(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl SpillWriter for ChunkWriter {
    fn finish(&mut self) -> Result<()> {
        std::io::Write::flush(self).map_err(|e| io_err("write", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::io::Write;

    async fn read_all(f: &EncryptedSpillFile) -> Vec<u8> {
        let chunks: Vec<Bytes> = f.read_stream().unwrap().map(|b| b.unwrap()).collect().await;
        chunks.concat()
    }

    #[tokio::test]
    async fn nameless_encrypted_and_readable_while_written() {
        let dir = tempfile::tempdir().unwrap();
        let spills = EncryptedSpills::new(dir.path(), 64 << 20).unwrap();
        let f = spills.create().unwrap();
        assert!(f.path().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the file has no name in the directory");
        let secret = b"ID5=0123456789abcdef ".repeat(40_000);
        let mut w = f.open_writer().unwrap();
        w.write_all(&secret[..1000]).unwrap();
        w.flush().unwrap();
        // A reader following the file sees what was flushed.
        assert_eq!(read_all(&f).await, &secret[..1000]);
        w.write_all(&secret[1000..]).unwrap();
        w.finish().unwrap();
        assert_eq!(read_all(&f).await, secret);
        assert!(spills.used() > secret.len() as u64);
        // On disk, through the only descriptor there is: no plaintext anywhere.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f.shared.file);
        let raw = std::fs::read(format!("/proc/self/fd/{fd}")).unwrap();
        assert!(raw.len() >= secret.len());
        assert!(!raw.windows(16).any(|w| w == &secret[..16]), "plaintext on disk");
        // A byte changed on disk is found, not read.
        f.shared.file.write_all_at(&[raw[100] ^ 1], 100).unwrap();
        let first = f.read_stream().unwrap().next().await.unwrap();
        assert!(first.unwrap_err().to_string().contains("authentication"));
        drop(w);
        drop(f);
        assert_eq!(spills.used(), 0, "space is given back when the file is dropped");
    }

    #[test]
    fn the_space_limit_holds() {
        let dir = tempfile::tempdir().unwrap();
        let spills = EncryptedSpills::new(dir.path(), 1 << 20).unwrap();
        let f = spills.create().unwrap();
        let mut w = f.open_writer().unwrap();
        let err = w.write_all(&vec![7u8; 2 << 20]).unwrap_err();
        assert!(err.to_string().contains("spill space limit"), "{err}");
    }
}
