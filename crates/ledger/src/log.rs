//! The log: sequencing, integration, tiles, checkpoints, witnesses and proofs.
//!
//! Appends from any number of tasks go through one channel to one batcher task, which writes
//! each batch in one transaction (one fsync per batch), then integrates it: leaf hashes into
//! the in-memory tree, full tiles and entry bundles to the [`TileStore`]. An append is
//! acknowledged only after its batch committed, so an acknowledged entry is never lost.
//! Entries committed by application transactions ([`crate::store::append_in`]) are picked up by
//! [`Log::sync`] or the next batch.
//!
//! [`Log::checkpoint`] signs the current tree head, collects witness cosignatures and publishes
//! the checkpoint (with the partial tiles of its size) only when at least `min_witnesses`
//! cosigned. Nothing inconsistent with an earlier checkpoint is ever signed: on opening, the
//! stored entries are recomputed and must reproduce the latest signed root.

use crate::entry::{Clock, Entry};
use crate::store::LedgerStore;
use crate::{LedgerError, TlogError};
use kura_tlog::checkpoint::{Checkpoint, open_checkpoint};
use kura_tlog::hash::{Hash, leaf_hash};
use kura_tlog::merkle::{MemoryTree, consistency_proof, inclusion_proof};
use kura_tlog::note::{Note, SignerKey, VerifierKey};
use kura_tlog::proof::ProofFile;
use kura_tlog::tile::{TILE_WIDTH, TileId, encode_bundle, encode_hashes, tiles_for_size};
use kura_tlog::tiles::TileStore;
use kura_tlog::witness::{AddCheckpoint, WitnessResponse};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};

type Result<T> = std::result::Result<T, LedgerError>;

/// Entries read from the store at a time when rebuilding or verifying.
pub const READ_CHUNK: u64 = 65_536;

/// A witness the log asks for cosignatures.
#[derive(Debug, Clone)]
pub struct WitnessEndpoint {
    /// Its cosignature key.
    pub key: VerifierKey,
    /// Its submission prefix (`http://host:port`); `None` for an offline witness fed by files.
    pub url: Option<String>,
}

/// How a log runs.
#[derive(Debug)]
pub struct LogOptions {
    /// The checkpoint signing key; its name is the origin.
    pub key: SignerKey,
    /// Witnesses asked to cosign each checkpoint.
    pub witnesses: Vec<WitnessEndpoint>,
    /// Cosignatures required before a checkpoint is published (0 for a laptop).
    pub min_witnesses: usize,
    /// Most entries per batch (one transaction, one fsync).
    pub batch_max: usize,
}

impl LogOptions {
    /// A log signed by `key`, without witnesses, batches of up to 4,096 entries.
    pub fn new(key: SignerKey) -> LogOptions {
        LogOptions { key, witnesses: Vec::new(), min_witnesses: 0, batch_max: 4096 }
    }
}

/// Asks an online witness (the HTTP client lives with the server code).
pub trait WitnessClient: Send + Sync {
    /// POSTs an `add-checkpoint` body to `url` and returns the answer.
    fn add_checkpoint(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<WitnessResponse>> + Send + '_>>;
}

enum Req {
    Append(Vec<u8>, oneshot::Sender<Result<u64>>),
    Sync(oneshot::Sender<Result<u64>>),
}

struct Inner<S> {
    store: S,
    tiles: Arc<dyn TileStore>,
    opts: LogOptions,
    tree: RwLock<MemoryTree>,
    clock: Clock,
    publish: tokio::sync::Mutex<()>,
    client: RwLock<Option<Arc<dyn WitnessClient>>>,
}

/// A running log. Cloning is cheap; all clones share one batcher.
pub struct Log<S: LedgerStore> {
    inner: Arc<Inner<S>>,
    tx: mpsc::Sender<Req>,
}

impl<S: LedgerStore> Clone for Log<S> {
    fn clone(&self) -> Self {
        Log { inner: self.inner.clone(), tx: self.tx.clone() }
    }
}

const META_PENDING: &str = "pending_checkpoint";

fn meta_witness(name: &str) -> String {
    format!("witness_size/{name}")
}

impl<S: LedgerStore> Log<S> {
    /// Opens a log over its store and tile store: rebuilds the tree from the stored entries,
    /// checks it against the latest signed checkpoint (refusing to continue on a mismatch),
    /// writes any full tile a crash left unwritten, and starts the batcher. Needs a Tokio
    /// runtime.
    pub async fn open(store: S, tiles: Arc<dyn TileStore>, opts: LogOptions) -> Result<Log<S>> {
        store.seal().await?;
        let size = store.size().await?;
        let mut tree = MemoryTree::new();
        let mut bundle: Vec<Vec<u8>> = Vec::new();
        let clock = Clock::default();
        let mut writes: Vec<TileWrite> = Vec::new();
        let mut start = 0;
        while start < size {
            let end = (start + READ_CHUNK).min(size);
            let entries = store.read(start, end).await?;
            for (i, e) in entries.into_iter().enumerate() {
                tree.push(leaf_hash(&e));
                let index = start + i as u64;
                if index + 1 == size
                    && let Ok(entry) = Entry::decode(&e)
                {
                    match entry {
                        Entry::Audit(a) => clock.not_before(&a.time),
                        Entry::File(f) => clock.not_before(&f.time),
                        Entry::Records(_) => {}
                    }
                }
                bundle.push(e);
                if bundle.len() as u64 == TILE_WIDTH {
                    let t = TileId::entries(index / TILE_WIDTH, TILE_WIDTH as u16);
                    if !tiles.exists(&t.path()) {
                        writes.push(TileWrite::Put(t.path(), encode_bundle(bundle.iter().map(Vec::as_slice))?));
                    }
                    bundle.clear();
                }
            }
            start = end;
        }
        if let Some((cp_size, note)) = store.latest_checkpoint().await? {
            let cp = open_checkpoint(&note, opts.key.verifier(), &[], 0)
                .map_err(|e| LedgerError::Tampered(format!("the latest stored checkpoint (size {cp_size}) does not verify: {e}")))?
                .checkpoint;
            if cp.size > size {
                return Err(LedgerError::Tampered(format!(
                    "the signed checkpoint covers {} entries but the database holds {size}",
                    cp.size
                )));
            }
            if tree.root_at(cp.size)? != cp.root {
                return Err(LedgerError::Tampered(format!(
                    "the stored entries do not reproduce the root of the signed checkpoint of size {}",
                    cp.size
                )));
            }
        }
        for t in tiles_for_size(size) {
            if let (Some(level), true) = (t.level, t.is_full())
                && !tiles.exists(&t.path())
            {
                writes.push(TileWrite::Put(t.path(), hash_tile(&tree, level, t.index, t.width)));
            }
        }
        write_tiles(&tiles, writes).await?;
        let (tx, rx) = mpsc::channel(65_536);
        let inner = Arc::new(Inner {
            store,
            tiles,
            opts,
            tree: RwLock::new(tree),
            clock,
            publish: tokio::sync::Mutex::new(()),
            client: RwLock::new(None),
        });
        tokio::spawn(batcher(inner.clone(), rx, bundle));
        let log = Log { inner, tx };
        // A crash between storing a checkpoint and publishing it leaves the published files
        // behind the database: publish again (files are written atomically, so this is safe).
        if let Some((cp_size, note)) = log.inner.store.latest_checkpoint().await?
            && log.inner.tiles.get("checkpoint")?.as_ref() != Some(&note)
        {
            log.publish_tiles(cp_size).await?;
            write_tiles(&log.inner.tiles, vec![TileWrite::Put("checkpoint".into(), note)]).await?;
        }
        Ok(log)
    }

    /// Sets the client used to reach online witnesses.
    pub fn set_witness_client(&self, client: Arc<dyn WitnessClient>) {
        if let Ok(mut c) = self.inner.client.write() {
            *c = Some(client);
        }
    }

    /// The log's origin (its key's name).
    pub fn origin(&self) -> &str {
        self.inner.opts.key.name()
    }

    /// The log's verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        self.inner.opts.key.verifier()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The next timestamp of the log's clock.
    pub fn now(&self) -> String {
        self.inner.clock.now()
    }

    /// Entries integrated into the tree.
    pub fn size(&self) -> u64 {
        self.inner.tree.read().map_or(0, |t| t.size())
    }

    /// The root of the integrated tree.
    pub fn root(&self) -> Hash {
        self.inner.tree.read().map_or(Hash::empty(), |t| t.root())
    }

    /// Appends an entry; returns its index once it is durable.
    pub async fn append(&self, entry: Vec<u8>) -> Result<u64> {
        if entry.len() > kura_tlog::tile::MAX_ENTRY_LEN {
            return Err(LedgerError::Tlog(TlogError::EntryTooLong(entry.len())));
        }
        let (tx, rx) = oneshot::channel();
        self.tx.send(Req::Append(entry, tx)).await.map_err(|_| LedgerError::Closed)?;
        rx.await.map_err(|_| LedgerError::Closed)?
    }

    /// Encodes and appends an entry.
    pub async fn record(&self, entry: &Entry) -> Result<u64> {
        self.append(entry.encode()?).await
    }

    /// Integrates entries committed by application transactions; returns the tree size.
    pub async fn sync(&self) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Req::Sync(tx)).await.map_err(|_| LedgerError::Closed)?;
        rx.await.map_err(|_| LedgerError::Closed)?
    }

    /// The latest published checkpoint, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.store.latest_checkpoint().await?.map(|(_, n)| n))
    }

    /// Signs the current tree head, asks the online witnesses and publishes the checkpoint when
    /// enough cosigned; returns the published note. With too few cosignatures the signed
    /// checkpoint waits as *pending* for offline witnesses ([`Log::witness_request`]).
    pub async fn checkpoint(&self) -> Result<Vec<u8>> {
        let _guard = self.inner.publish.lock().await;
        let size = self.sync().await?;
        let root = self.inner.tree.read().map_err(|_| LedgerError::Closed)?.root_at(size)?;
        if let Some((s, note)) = self.inner.store.latest_checkpoint().await?
            && s == size
        {
            return Ok(note);
        }
        let mut note = self.pending_for(size).await?.unwrap_or(Checkpoint::new(self.origin(), size, root).sign(&self.inner.opts.key)?);
        let client = self.inner.client.read().map_err(|_| LedgerError::Closed)?.clone();
        for w in self.inner.opts.witnesses.clone() {
            let (Some(url), Some(client)) = (&w.url, &client) else { continue };
            if note.signatures.iter().any(|s| s.name == w.key.name && s.id == w.key.id) {
                continue;
            }
            match self.ask_online(client.as_ref(), url, &w, &note, size).await {
                Ok(()) => {}
                Err(e) => tracing::warn!(witness = %w.key.name, error = %e, "witness did not cosign"),
            }
        }
        // Re-read what the online round added.
        if let Some(n) = self.pending_for(size).await? {
            note = n;
        }
        self.publish_if_enough(note, size).await
    }

    async fn ask_online(&self, client: &dyn WitnessClient, url: &str, w: &WitnessEndpoint, note: &Note, size: u64) -> Result<()> {
        // A 409 with the witness's size is answered once more, from that size (tlog-witness).
        let mut last = Ok(());
        for _attempt in 0..2 {
            let body = self.request_body(&w.key.name, note, size).await?;
            let resp = client.add_checkpoint(url, body).await?;
            let retry = resp.status == 409 && resp.content_type == "text/x.tlog.size";
            last = self.apply_response(&w.key.name, resp, note.clone(), size).await.map(|_| ());
            if !retry {
                break;
            }
        }
        last
    }

    async fn pending_for(&self, size: u64) -> Result<Option<Note>> {
        let Some(bytes) = self.inner.store.get_meta(META_PENDING).await? else { return Ok(None) };
        if bytes.is_empty() {
            return Ok(None);
        }
        let note = Note::parse(&bytes)?;
        let cp = Checkpoint::parse_body(&note.text)?;
        Ok((cp.size == size).then_some(note))
    }

    async fn request_body(&self, witness: &str, note: &Note, size: u64) -> Result<Vec<u8>> {
        let old = match self.inner.store.get_meta(&meta_witness(witness)).await? {
            Some(b) => std::str::from_utf8(&b).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
            None => 0,
        };
        let old = if old > size { 0 } else { old };
        let proof =
            if old == 0 { Vec::new() } else { consistency_proof(&*self.inner.tree.read().map_err(|_| LedgerError::Closed)?, old, size)? };
        // The witness sees the log's own signature only.
        let mut plain = Note::new(&note.text)?;
        for s in note.signatures.iter().filter(|s| s.name == self.origin()) {
            plain.add(s.clone());
        }
        Ok(AddCheckpoint { old, proof, checkpoint: plain.to_bytes() }.to_bytes())
    }

    /// Takes a witness's answer for the checkpoint of `size`: records the witness's size on a
    /// 409, adds a valid cosignature to the pending note on a 200.
    async fn apply_response(&self, witness: &str, resp: WitnessResponse, mut note: Note, size: u64) -> Result<Note> {
        let w = self
            .inner
            .opts
            .witnesses
            .iter()
            .find(|w| w.key.name == witness)
            .ok_or_else(|| LedgerError::Peer { peer: witness.into(), detail: "not a configured witness".into() })?;
        match resp.status {
            200 => {
                let mut with = note.to_bytes();
                with.extend_from_slice(&resp.body);
                let joined = Note::parse(&with)?;
                joined
                    .verify(std::slice::from_ref(&w.key))
                    .map_err(|e| LedgerError::Peer { peer: witness.into(), detail: format!("cosignature rejected: {e}") })?;
                for s in joined.signatures.into_iter().filter(|s| s.name == w.key.name && s.id == w.key.id) {
                    note.add(s);
                }
                self.inner.store.set_meta(&meta_witness(witness), size.to_string().as_bytes()).await?;
                self.inner.store.set_meta(META_PENDING, &note.to_bytes()).await?;
                Ok(note)
            }
            409 if resp.content_type == "text/x.tlog.size" => {
                let text = String::from_utf8_lossy(&resp.body);
                let s: u64 = text
                    .trim_end_matches('\n')
                    .parse()
                    .map_err(|_| LedgerError::Peer { peer: witness.into(), detail: "409 without a size".into() })?;
                self.inner.store.set_meta(&meta_witness(witness), s.to_string().as_bytes()).await?;
                self.inner.store.set_meta(META_PENDING, &note.to_bytes()).await?;
                Err(LedgerError::Peer { peer: witness.into(), detail: format!("409: the witness last cosigned size {s}; ask again") })
            }
            status => {
                let text = String::from_utf8_lossy(&resp.body).trim().to_string();
                Err(LedgerError::Peer { peer: witness.into(), detail: format!("{status}: {}", kura_tlog::hash::shorten(&text)) })
            }
        }
    }

    async fn publish_if_enough(&self, note: Note, size: u64) -> Result<Vec<u8>> {
        let keys: Vec<VerifierKey> = self.inner.opts.witnesses.iter().map(|w| w.key.clone()).collect();
        let have = match note.verify(&keys) {
            Ok(v) => v.len(),
            Err(TlogError::Untrusted) => 0,
            Err(e) => return Err(e.into()),
        };
        if have < self.inner.opts.min_witnesses {
            self.inner.store.set_meta(META_PENDING, &note.to_bytes()).await?;
            return Err(TlogError::NotEnoughWitnesses { have, need: self.inner.opts.min_witnesses }.into());
        }
        let bytes = note.to_bytes();
        self.publish_tiles(size).await?;
        self.inner.store.add_checkpoint(size, &bytes).await?;
        write_tiles(&self.inner.tiles, vec![TileWrite::Put("checkpoint".into(), bytes.clone())]).await?;
        self.inner.store.set_meta(META_PENDING, b"").await?;
        Ok(bytes)
    }

    /// Writes the partial tiles and bundle of a tree of `size` leaves.
    async fn publish_tiles(&self, size: u64) -> Result<()> {
        let partial: Vec<TileId> = tiles_for_size(size).into_iter().filter(|t| !t.is_full()).collect();
        let mut writes = Vec::with_capacity(partial.len());
        for t in partial {
            let bytes = match t.level {
                Some(level) => {
                    let tree = self.inner.tree.read().map_err(|_| LedgerError::Closed)?;
                    hash_tile(&tree, level, t.index, t.width)
                }
                None => {
                    let start = t.index * TILE_WIDTH;
                    let entries = self.inner.store.read(start, start + u64::from(t.width)).await?;
                    encode_bundle(entries.iter().map(Vec::as_slice))?
                }
            };
            writes.push(TileWrite::Put(t.path(), bytes));
        }
        write_tiles(&self.inner.tiles, writes).await
    }

    /// The `add-checkpoint` request for an offline witness: the pending checkpoint (signing
    /// one for the current tree if none is pending) with a consistency proof from the size
    /// that witness last cosigned.
    pub async fn witness_request(&self, witness: &str) -> Result<Vec<u8>> {
        let _guard = self.inner.publish.lock().await;
        if !self.inner.opts.witnesses.iter().any(|w| w.key.name == witness) {
            return Err(LedgerError::Peer {
                peer: witness.into(),
                detail: "not a configured witness (see [ledger] witnesses in kura.toml)".into(),
            });
        }
        let size = self.sync().await?;
        let note = match self.pending_for(size).await? {
            Some(n) => n,
            None => {
                let root = self.inner.tree.read().map_err(|_| LedgerError::Closed)?.root_at(size)?;
                let n = Checkpoint::new(self.origin(), size, root).sign(&self.inner.opts.key)?;
                self.inner.store.set_meta(META_PENDING, &n.to_bytes()).await?;
                n
            }
        };
        self.request_body(witness, &note, size).await
    }

    /// Imports an offline witness's answer ([`WitnessResponse::to_file`]); publishes the
    /// pending checkpoint once enough witnesses cosigned and returns it.
    pub async fn witness_import(&self, witness: &str, response: &[u8]) -> Result<Option<Vec<u8>>> {
        let _guard = self.inner.publish.lock().await;
        let resp = WitnessResponse::from_file(response)?;
        let pending = self.inner.store.get_meta(META_PENDING).await?.filter(|b| !b.is_empty());
        let Some(bytes) = pending else {
            return Err(LedgerError::Peer { peer: witness.into(), detail: "no checkpoint is waiting for cosignatures".into() });
        };
        let note = Note::parse(&bytes)?;
        let size = Checkpoint::parse_body(&note.text)?.size;
        let note = self.apply_response(witness, resp, note, size).await?;
        match self.publish_if_enough(note, size).await {
            Ok(b) => Ok(Some(b)),
            Err(LedgerError::Tlog(TlogError::NotEnoughWitnesses { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An offline proof (C2SP tlog-proof) that entry `index` is in the latest published
    /// checkpoint, publishing a new checkpoint first if the entry is newer.
    pub async fn prove(&self, index: u64, extra: Option<Vec<u8>>) -> Result<ProofFile> {
        let mut latest = self.inner.store.latest_checkpoint().await?;
        if latest.as_ref().is_none_or(|(s, _)| *s <= index) {
            self.checkpoint().await?;
            latest = self.inner.store.latest_checkpoint().await?;
        }
        let (size, note) = latest.ok_or(TlogError::OutOfRange { index, size: 0 })?;
        if index >= size {
            return Err(TlogError::OutOfRange { index, size }.into());
        }
        let proof = inclusion_proof(&*self.inner.tree.read().map_err(|_| LedgerError::Closed)?, index, size)?;
        Ok(ProofFile { extra, index, proof, checkpoint: note })
    }

    /// An inclusion proof against any size the tree has reached (for benchmarks and servers).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        Ok(inclusion_proof(&*self.inner.tree.read().map_err(|_| LedgerError::Closed)?, index, size)?)
    }

    /// The bytes of one stored entry.
    pub async fn store_read(&self, index: u64) -> Result<Vec<u8>> {
        self.inner.store.read(index, index + 1).await?.pop().ok_or(TlogError::OutOfRange { index, size: self.size() }.into())
    }

    /// The index of the first file record with this SHA-256 (hex).
    pub async fn find_file(&self, sha256_hex: &str) -> Result<Option<u64>> {
        let size = self.size();
        let needle = format!("\"sha256\":\"{}\"", sha256_hex.to_ascii_lowercase());
        let mut start = 0;
        while start < size {
            let end = (start + READ_CHUNK).min(size);
            for (i, e) in self.inner.store.read(start, end).await?.iter().enumerate() {
                if e.starts_with(br#"{"kind":"file""#)
                    && e.windows(needle.len()).any(|w| w == needle.as_bytes())
                    && let Ok(Entry::File(f)) = Entry::decode(e)
                    && f.sha256 == sha256_hex.to_ascii_lowercase()
                {
                    return Ok(Some(start + i as u64));
                }
            }
            start = end;
        }
        Ok(None)
    }
}

/// The bytes of a hash tile of the tree.
pub(crate) fn hash_tile(tree: &MemoryTree, level: u8, index: u64, width: u16) -> Vec<u8> {
    let hashes = tree.level(level * 8);
    let start = (index * TILE_WIDTH) as usize;
    // A tile of the tree's own size: the range is inside the level (an empty tile otherwise).
    encode_hashes(hashes.get(start..start + usize::from(width)).unwrap_or_default())
}

async fn batcher<S: LedgerStore>(inner: Arc<Inner<S>>, mut rx: mpsc::Receiver<Req>, mut bundle: Vec<Vec<u8>>) {
    let mut reqs: Vec<Req> = Vec::new();
    while let Some(first) = rx.recv().await {
        reqs.push(first);
        while reqs.len() < inner.opts.batch_max {
            match rx.try_recv() {
                Ok(r) => reqs.push(r),
                Err(_) => break,
            }
        }
        let entries: Vec<Vec<u8>> = reqs
            .iter_mut()
            .filter_map(|r| match r {
                Req::Append(e, _) => Some(std::mem::take(e)),
                Req::Sync(_) => None,
            })
            .collect();
        let result = commit_batch(&inner, entries, &mut bundle).await;
        let mut k = 0;
        for r in reqs.drain(..) {
            match r {
                Req::Append(_, tx) => {
                    let _ = tx.send(match &result {
                        Ok((first, _)) => Ok(first + k),
                        Err(e) => Err(LedgerError::Peer { peer: "store".into(), detail: e.to_string() }),
                    });
                    k += 1;
                }
                Req::Sync(tx) => {
                    let _ = tx.send(match &result {
                        Ok((_, size)) => Ok(*size),
                        Err(e) => Err(LedgerError::Peer { peer: "store".into(), detail: e.to_string() }),
                    });
                }
            }
        }
    }
}

/// Commits a batch and integrates it (and anything applications committed meanwhile).
/// Returns the first index of the batch and the tree size after it.
async fn commit_batch<S: LedgerStore>(inner: &Inner<S>, entries: Vec<Vec<u8>>, bundle: &mut Vec<Vec<u8>>) -> Result<(u64, u64)> {
    let tree_size = inner.tree.read().map_err(|_| LedgerError::Closed)?.size();
    if entries.is_empty() {
        let size = inner.store.size().await?;
        if size > tree_size {
            let extra = inner.store.read(tree_size, size).await?;
            write_tiles(&inner.tiles, integrate(inner, &extra, bundle)?).await?;
            inner.store.seal().await?;
        }
        return Ok((size, size));
    }
    let first = inner.store.append(&entries).await?;
    if first > tree_size {
        let extra = inner.store.read(tree_size, first).await?;
        write_tiles(&inner.tiles, integrate(inner, &extra, bundle)?).await?;
    }
    write_tiles(&inner.tiles, integrate(inner, &entries, bundle)?).await?;
    Ok((first, first + entries.len() as u64))
}

/// Adds entries to the in-memory tree and returns the full tiles and bundles they complete.
fn integrate<S>(inner: &Inner<S>, entries: &[Vec<u8>], bundle: &mut Vec<Vec<u8>>) -> Result<Vec<TileWrite>> {
    let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut writes: Vec<TileWrite> = Vec::new();
    {
        let mut tree = inner.tree.write().map_err(|_| LedgerError::Closed)?;
        let old = tree.size();
        for h in hashes {
            tree.push(h);
        }
        let new = tree.size();
        for level in 0u8..8 {
            let shift = u32::from(level) * 8;
            let (before, after) = ((old >> shift) / TILE_WIDTH, (new >> shift) / TILE_WIDTH);
            for n in before..after {
                writes.push(TileWrite::Full(TileId::hashes(level, n, TILE_WIDTH as u16), hash_tile(&tree, level, n, TILE_WIDTH as u16)));
            }
            if new >> shift == 0 {
                break;
            }
        }
        for (index, e) in (old..).zip(entries.iter()) {
            bundle.push(e.clone());
            if bundle.len() as u64 == TILE_WIDTH {
                writes.push(TileWrite::Full(
                    TileId::entries(index / TILE_WIDTH, TILE_WIDTH as u16),
                    encode_bundle(bundle.iter().map(Vec::as_slice))?,
                ));
                bundle.clear();
            }
        }
    }
    Ok(writes)
}

/// A file to publish.
enum TileWrite {
    /// A file at a tlog-tiles path (`checkpoint`, a partial tile).
    Put(String, Vec<u8>),
    /// A full tile or bundle: written, then its partial versions removed.
    Full(TileId, Vec<u8>),
}

/// Publishes files on Tokio's blocking pool: file system writes never hold an async worker
/// (the server's requests run on the same runtime). Awaited, so an append is acknowledged
/// only after the files it completed are written.
async fn write_tiles(tiles: &Arc<dyn TileStore>, writes: Vec<TileWrite>) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    let tiles = tiles.clone();
    tokio::task::spawn_blocking(move || {
        for w in writes {
            match w {
                TileWrite::Put(path, bytes) => tiles.put(&path, &bytes)?,
                TileWrite::Full(t, bytes) => {
                    tiles.put(&t.path(), &bytes)?;
                    tiles.remove_partials(t)?;
                }
            }
        }
        Ok(())
    })
    .await
    .map_err(|_| LedgerError::Closed)?
}
