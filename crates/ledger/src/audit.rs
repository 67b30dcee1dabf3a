//! The full audit (`kura ledger verify`) and repair from a mirror (`kura ledger repair`)
//! (HX-4, HX-8, HIC-S6).
//!
//! [`verify`] recomputes every leaf hash from the stored entries, every hash tile and entry
//! bundle, every checkpoint's signature and root, and the consistency of each checkpoint with
//! the one before it. Each problem is reported with its location (entry index, tile path,
//! checkpoint size). [`repair`] replaces damaged entries, tiles and bundles with a mirror's
//! copies, but only once the repaired tree reproduces the signed root.

use crate::LedgerError;
use crate::log::{READ_CHUNK, hash_tile};
use crate::store::LedgerStore;
use futures::{StreamExt, stream};
use kura_tlog::checkpoint::{Checkpoint, open_checkpoint};
use kura_tlog::hash::{Hash, leaf_hash, on_all_cores};
use kura_tlog::merkle::{MemoryTree, consistency_proof, verify_consistency};
use kura_tlog::mirror::{CheckedTree, Trust};
use kura_tlog::note::{Note, VerifierKey};
use kura_tlog::tile::{TILE_WIDTH, TileId, decode_bundle, encode_bundle, tiles_for_size};
use kura_tlog::tiles::TileStore;

type Result<T> = std::result::Result<T, LedgerError>;

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `entry 1234`, `tile/0/x001/234`, `checkpoint 5000`, `checkpoint file`.
    pub location: String,
    /// What.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.what)
    }
}

/// What an audit checked and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Entries hashed.
    pub entries: u64,
    /// Tiles and bundles compared.
    pub tiles: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The root recomputed from the entries.
    pub root: Option<Hash>,
    /// Everything wrong; empty means the log verifies.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether the log verified.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn add(&mut self, location: impl Into<String>, what: impl Into<String>) {
        self.problems.push(Problem { location: location.into(), what: what.into() });
    }
}

/// Reads every entry, hashing as it goes; `each` sees every bundle-aligned group of entries.
/// Reads run ahead of the hashing (several chunks in flight on separate connections), so the
/// database, the hashing and the bundle checks overlap.
async fn load_tree<S: LedgerStore>(store: &S, size: u64, mut each: impl FnMut(u64, &[Vec<u8>])) -> Result<MemoryTree> {
    let mut tree = MemoryTree::new();
    let chunks = (0..size).step_by(AUDIT_CHUNK as usize).map(|start| (start, (start + AUDIT_CHUNK).min(size)));
    let mut reads =
        stream::iter(chunks).map(|(start, end)| async move { store.read(start, end).await.map(|e| (start, e)) }).buffered(READS_AHEAD);
    while let Some(read) = reads.next().await {
        let (start, entries) = read?;
        tree.extend(&hash_all(&entries));
        each(start, &entries);
    }
    Ok(tree)
}

/// Entries per audit read: a multiple of the bundle width, so bundles never straddle reads.
const AUDIT_CHUNK: u64 = 64 * TILE_WIDTH;

/// Audit reads in flight at once.
const READS_AHEAD: usize = 2;

/// Leaf hashes of many entries, on every core when there are enough.
pub fn hash_all(entries: &[Vec<u8>]) -> Vec<Hash> {
    on_all_cores(entries, 4096, 1, |c| c.iter().map(|e| leaf_hash(e)).collect())
}

/// The full audit. `witnesses` and `min_witnesses` state the cosigning policy that every
/// stored checkpoint must meet.
pub async fn verify<S: LedgerStore>(
    store: &S,
    tiles: &dyn TileStore,
    log_key: &VerifierKey,
    witnesses: &[VerifierKey],
    min_witnesses: usize,
) -> Result<Report> {
    let mut report = Report::default();
    let size = store.size().await?;
    let mut bundle_problems = Vec::new();
    let mut bundles_checked = 0u64;
    let tree = load_tree(store, size, |start, entries| {
        for (k, group) in entries.chunks(TILE_WIDTH as usize).enumerate() {
            if group.len() as u64 != TILE_WIDTH {
                continue;
            }
            let t = TileId::entries(start / TILE_WIDTH + k as u64, TILE_WIDTH as u16);
            bundles_checked += 1;
            if let Some(p) = check_bundle(tiles, t, group) {
                bundle_problems.push(p);
            }
        }
    })
    .await?;
    report.entries = size;
    report.root = Some(tree.root());
    report.tiles += bundles_checked;
    report.problems.extend(bundle_problems);

    let checkpoints = store.checkpoints().await?;
    let published = checkpoints.last().map_or(0, |(s, _)| *s);
    // Every full tile of the stored tree, and the partial tiles and bundle of the published
    // size (partials of unpublished sizes are never written). Full bundles were checked above.
    let full = tiles_for_size(size).into_iter().filter(|t| t.is_full());
    let partial = tiles_for_size(published.min(size)).into_iter().filter(|t| !t.is_full());
    for t in full.chain(partial) {
        let Some(level) = t.level else {
            if !t.is_full() {
                let start = t.index * TILE_WIDTH;
                let entries = store.read(start, start + u64::from(t.width)).await?;
                report.tiles += 1;
                if let Some(p) = check_bundle(tiles, t, &entries) {
                    report.problems.push(p);
                }
            }
            continue;
        };
        report.tiles += 1;
        let want = hash_tile(&tree, level, t.index, t.width);
        match tiles.get(&t.path())? {
            None => report.add(t.path(), "missing / ありません"),
            Some(got) if got != want => {
                let k = got.chunks(32).zip(want.chunks(32)).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()) / 32);
                let first_leaf = (t.index * TILE_WIDTH + k as u64) << (u32::from(level) * 8);
                report.add(
                    t.path(),
                    format!("hash {k} (covering entries from {first_leaf}) differs from the entries / エントリと一致しません"),
                );
            }
            Some(_) => {}
        }
    }

    let mut previous: Option<Checkpoint> = None;
    for (cp_size, note) in &checkpoints {
        report.checkpoints += 1;
        let loc = format!("checkpoint {cp_size}");
        let cp = match open_checkpoint(note, log_key, witnesses, min_witnesses) {
            Ok(c) => c.checkpoint,
            Err(e) => {
                report.add(&loc, format!("{e}"));
                continue;
            }
        };
        if cp.size != *cp_size {
            report.add(&loc, format!("stored under size {cp_size} but signs size {}", cp.size));
        }
        if cp.size > size {
            report.add(&loc, format!("covers {} entries; the database holds only {size} (entries lost)", cp.size));
        } else if tree.root_at(cp.size)? != cp.root {
            report.add(&loc, format!("the entries 0..{} do not reproduce its signed root (entries altered or history rewritten)", cp.size));
        }
        if let Some(prev) = &previous
            && prev.size <= size
            && cp.size <= size
        {
            let proof = consistency_proof(&tree, prev.size, cp.size)?;
            if verify_consistency(prev.size, cp.size, &prev.root, &cp.root, &proof).is_err() {
                report.add(&loc, format!("not consistent with the previous checkpoint of size {} (split view or rewrite)", prev.size));
            }
        }
        previous = Some(cp);
    }
    match (tiles.get("checkpoint")?, checkpoints.last()) {
        (None, Some(_)) => report.add("checkpoint file", "missing / ありません"),
        (Some(file), Some((_, note))) if &file != note => {
            let why = match open_checkpoint(&file, log_key, witnesses, 0) {
                Err(e) => format!("{e}"),
                Ok(_) => "differs from the latest stored checkpoint".to_string(),
            };
            report.add("checkpoint file", why);
        }
        (Some(_), None) => report.add("checkpoint file", "present, but no checkpoint is stored"),
        _ => {}
    }
    Ok(report)
}

fn check_bundle(tiles: &dyn TileStore, t: TileId, entries: &[Vec<u8>]) -> Option<Problem> {
    let got = match tiles.get(&t.path()) {
        Ok(Some(b)) => b,
        Ok(None) => return Some(Problem { location: t.path(), what: "missing / ありません".into() }),
        Err(e) => return Some(Problem { location: t.path(), what: e.to_string() }),
    };
    let want = encode_bundle(entries.iter().map(Vec::as_slice)).ok()?;
    if got == want {
        return None;
    }
    let what = match decode_bundle(&got) {
        Err(e) => e.to_string(),
        Ok(decoded) => match decoded.iter().zip(entries).position(|(a, b)| *a != b.as_slice()) {
            Some(k) => {
                format!("entry {} differs from the database (the bundle or the database row was altered)", t.index * TILE_WIDTH + k as u64)
            }
            None => format!("holds {} entries, the database {}", decoded.len(), entries.len()),
        },
    };
    Some(Problem { location: t.path(), what })
}

/// What a repair changed.
#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// Entries restored in the database.
    pub entries: Vec<u64>,
    /// Files rewritten.
    pub files: Vec<String>,
    /// Stored checkpoints restored (a damaged signed note replaced by the verified one).
    pub checkpoints: usize,
}

/// Repairs the log from a mirror: damaged or missing entries, tiles, bundles and checkpoint
/// file are replaced, but only after the repaired entries reproduce the root of a checkpoint
/// that opens under `trust` (the log's key and witness policy): the largest of the database's
/// latest, the local published file's and the mirror's, so a mirror serving an older checkpoint
/// cannot take the log's head back. The mirror's entries are used only where its own bundles
/// match its own hash tiles, checked against its own signed checkpoint ([`CheckedTree`]).
pub async fn repair<S: LedgerStore>(store: &S, tiles: &dyn TileStore, mirror: &dyn TileStore, trust: Trust<'_>) -> Result<RepairReport> {
    let open = |n: Vec<u8>| trust.open(&n).ok().map(|c| (c.checkpoint, n));
    let db_latest = store.latest_checkpoint().await?;
    let file = tiles.get("checkpoint").ok().flatten();
    // The largest size any local checkpoint claims, verifying or not: the head must not go back.
    let claimed = db_latest
        .as_ref()
        .map(|(size, _)| *size)
        .into_iter()
        .chain(file.as_ref().and_then(|b| Note::parse(b).ok()).and_then(|n| Checkpoint::parse_body(&n.text).ok()).map(|c| c.size))
        .max()
        .unwrap_or(0);
    let from_db = db_latest.and_then(|(_, n)| open(n));
    let from_file = file.and_then(open);
    let remote = mirror.get("checkpoint")?.and_then(open);
    let checked = match &remote {
        Some((rc, _)) => {
            let leaf_tiles: Option<Vec<_>> =
                CheckedTree::leaf_tiles(rc.size).into_iter().map(|t| mirror.get(&t.path()).ok().flatten().map(|b| (t, b))).collect();
            leaf_tiles.and_then(|lt| CheckedTree::from_leaf_tiles(rc.size, &rc.root, &lt).ok())
        }
        None => None,
    };
    // The largest; on a tie the local one (the last of equal maxima wins), so a mirror cannot
    // swap the stored note for another of the same size.
    let Some((cp, cp_note)) = [remote, from_file, from_db].into_iter().flatten().max_by_key(|(c, _)| c.size) else {
        return Err(LedgerError::Tampered("no checkpoint signed by the log key (and its witnesses), locally or at the mirror".into()));
    };
    if cp.size < claimed {
        return Err(LedgerError::Tampered(format!(
            "the newest local checkpoint (size {claimed}) does not verify and no checkpoint that does reaches it (the largest: size {}); repair from a mirror that holds size {claimed} or later; nothing was changed",
            cp.size
        )));
    }
    let n = cp.size;
    let db_size = store.size().await?;
    let mut entries: Vec<Vec<u8>> = Vec::with_capacity(n as usize);
    let mut start = 0;
    while start < n.min(db_size) {
        let end = (start + READ_CHUNK).min(n.min(db_size));
        match store.read(start, end).await {
            Ok(e) => entries.extend(e),
            Err(_) => {
                // A hole in the table: read row by row, leaving gaps empty for the mirror to fill.
                for i in start..end {
                    entries.push(store.read(i, i + 1).await.ok().and_then(|mut v| v.pop()).unwrap_or_default());
                }
            }
        }
        start = end;
    }
    entries.resize(n as usize, Vec::new());
    let mut restored = vec![false; n as usize];
    let bundles: Vec<TileId> = tiles_for_size(n).into_iter().filter(|t| t.level.is_none()).collect();

    // First only the bundles with local evidence of damage; then, if the root still differs, all.
    let local_tree = load_tree_from(&entries);
    let level0 = local_hash_tiles(tiles, n);
    let suspicious: Vec<TileId> = bundles
        .iter()
        .copied()
        .filter(|b| {
            let (s, e) = (b.index * TILE_WIDTH, b.index * TILE_WIDTH + u64::from(b.width));
            let local_bundle = tiles.get(&b.path()).ok().flatten();
            let want = entries.get(s as usize..e as usize).and_then(|run| encode_bundle(run.iter().map(Vec::as_slice)).ok());
            local_bundle != want
                || s >= db_size.min(n)
                || e > db_size
                || (s..e).any(|i| level0.get(i as usize).is_none_or(|h| Some(h) != local_tree.level(0).get(i as usize)))
        })
        .collect();
    for pass in [suspicious, bundles.clone()] {
        let root = load_tree_from(&entries).root();
        if root == cp.root {
            break;
        }
        for b in pass {
            let Some(checked) = &checked else { break };
            let Some(bytes) = mirror.get(&b.path())? else { continue };
            // Only a bundle the mirror's checked tree vouches for, entry by entry.
            if checked.check(&b, &bytes).is_err() {
                continue;
            }
            let Ok(decoded) = decode_bundle(&bytes) else { continue };
            if decoded.len() != usize::from(b.width) {
                continue;
            }
            for (k, e) in decoded.iter().enumerate() {
                let i = (b.index * TILE_WIDTH) as usize + k;
                if let (Some(entry), Some(flag)) = (entries.get_mut(i), restored.get_mut(i))
                    && *entry != *e
                {
                    *entry = e.to_vec();
                    *flag = true;
                }
            }
        }
    }
    let tree = load_tree_from(&entries);
    if tree.root() != cp.root {
        return Err(LedgerError::Tampered(format!(
            "even with the mirror's entries the tree does not reproduce the signed root of size {n}; nothing was changed"
        )));
    }
    let mut out = RepairReport::default();
    for (i, (r, entry)) in restored.iter().zip(&entries).enumerate() {
        if *r {
            store.replace(i as u64, entry).await?;
            out.entries.push(i as u64);
        }
    }
    // Files: every tile of size n must match the verified tree; take the mirror's copy when it does.
    for t in tiles_for_size(n) {
        let want = match t.level {
            Some(level) => hash_tile(&tree, level, t.index, t.width),
            None => {
                let s = (t.index * TILE_WIDTH) as usize;
                let run = entries.get(s..s + usize::from(t.width)).ok_or_else(|| {
                    LedgerError::Tampered(format!("entry bundle {} reaches past the {} entries read", t.index, entries.len()))
                })?;
                encode_bundle(run.iter().map(Vec::as_slice))?
            }
        };
        if tiles.get(&t.path())?.as_ref() != Some(&want) {
            let from_mirror = mirror.get(&t.path())?.filter(|m| *m == want);
            tiles.put(&t.path(), from_mirror.as_ref().unwrap_or(&want))?;
            out.files.push(t.path());
        }
    }
    // The stored checkpoint of this size: added if missing, restored if it no longer verifies.
    let stored = store.checkpoints().await?.into_iter().find(|(s, _)| *s == n).map(|(_, b)| b);
    if stored.as_ref().is_none_or(|b| trust.open(b).is_err()) {
        store.add_checkpoint(n, &cp_note).await?;
        out.checkpoints += 1;
    }
    let latest = store.latest_checkpoint().await?.map(|(_, b)| b).unwrap_or(cp_note);
    if tiles.get("checkpoint")?.as_ref() != Some(&latest) {
        tiles.put("checkpoint", &latest)?;
        out.files.push("checkpoint".into());
    }
    Ok(out)
}

fn load_tree_from(entries: &[Vec<u8>]) -> MemoryTree {
    let mut t = MemoryTree::new();
    for h in hash_all(entries) {
        t.push(h);
    }
    t
}

fn local_hash_tiles(tiles: &dyn TileStore, n: u64) -> Vec<Hash> {
    let mut out = Vec::with_capacity(n as usize);
    for t in tiles_for_size(n).into_iter().filter(|t| t.level == Some(0)) {
        match tiles.get(&t.path()).ok().flatten().and_then(|b| kura_tlog::tile::decode_hashes(&b, t.width).ok()) {
            Some(hs) => out.extend(hs),
            None => out.extend(std::iter::repeat_n(Hash::empty(), usize::from(t.width))),
        }
    }
    out
}
