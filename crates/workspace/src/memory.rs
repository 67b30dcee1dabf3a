//! The airlock's differencing memory (issue 17 §2, issue 22 §1, §2, §4).
//!
//! Every cell that leaves in a release is remembered with the set of persons behind it — the
//! platform's person keys from the checker's hidden lineage column, the same in every project
//! (project pseudonyms differ, so they cannot be used) — together with the release's project
//! and the project's members at that moment. Per measure of each released table the union of
//! its cells is remembered too: what the cells add up to (a total someone can compute).
//!
//! A new cell C is compared, both ways, with every remembered set R of its own project and of
//! every project that shares a member with it (the attacker is a person, not a project), and
//! with the other tables of its own request: where |C \ R| or |R \ C| is between 1 and the
//! policy's person threshold − 1, the two together isolate that few persons, and the cell fails
//! under rule `differencing.released`, naming the release it combines with. The count itself is
//! never said (it is evidence below the threshold, issue 22 §8).
//!
//! A release's files whose persons are not known (a table whose lineage was lost, a file no
//! Kura query made) are remembered by name: while such a release is relevant to a new table,
//! every passing cell of it is review under `differencing.unknown`, naming the release
//! (issue 22 §3: what the memory cannot compare is never a silent pass).
//!
//! The memory lives in `airlock/memory/`, one file per release, sealed (AES-256-GCM) under a key
//! derived from the platform's airlock key with the release's id in the associated data. The
//! release gate compares again under an exclusive lock (`airlock/release.lock`) against
//! everything released up to that moment and writes the release's memory before the lock is
//! let go, so two outputs approved in parallel cannot both leave when together they isolate
//! persons (issue 22 §4).

use crate::{Result, WorkspaceError};
use kura_crypto::SecretKey;
use kura_disclosure::check::{Finding, Status, rule};
use kura_disclosure::table::{Action, Table, TableVerdict};
use kura_query::lineage::{CellSets, decode_set, encode_set};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The first bytes of a sealed memory or person-set file.
const MAGIC: &[u8; 8] = b"KURAMEM1";

/// One remembered (or pending) person set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemCell {
    /// The file it belongs to.
    pub file: String,
    /// What it is, as people read it: `row keys / measure`, or `measure (合計 total)`.
    pub label: String,
    /// The cell's row and measure in its table (`None` for a union of a measure's cells).
    pub at: Option<(usize, usize)>,
    /// The persons.
    pub set: Persons,
}

/// A sorted set of platform person keys. Sealed as [`encode_set`]'s bytes in the packed form
/// ([`PACKED`]; as hex in the older all-JSON form, still read); a stored set that does not
/// decode makes its whole memory file unreadable (never a set silently left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persons(Vec<u64>);

impl Persons {
    /// The set of `keys` (sorted and deduplicated here).
    pub fn new(mut keys: Vec<u64>) -> Persons {
        if !keys.is_sorted_by(|a, b| a < b) {
            keys.sort_unstable();
            keys.dedup();
        }
        Persons(keys)
    }

    /// The keys, ascending.
    pub fn keys(&self) -> &[u64] {
        &self.0
    }
}

impl Serialize for Persons {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(encode_set(&self.0)))
    }
}

impl<'de> Deserialize<'de> for Persons {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Persons, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(&text)
            .ok()
            .and_then(|b| decode_set(&b))
            .map(Persons)
            .ok_or_else(|| serde::de::Error::custom("a remembered person set does not decode"))
    }
}

/// The memory of one release: its head, and the sets of its cells. Sealed in the packed form
/// ([`PACKED`]); the older all-JSON form (the head's fields beside `cells`) is still read.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    head: EntryHead,
    cells: Vec<MemCell>,
}

/// What the memory keeps of a release besides its sets.
#[derive(Debug, Serialize, Deserialize)]
struct EntryHead {
    release: String,
    project: String,
    members: Vec<String>,
    /// A table the platform publishes itself (issue 22 §2): released to everyone, so every new
    /// output of every project is compared with it.
    #[serde(default)]
    public: bool,
    /// The release's files whose persons are not known (a table whose lineage was lost, a file
    /// no Kura query made): nothing of them can be compared, so later outputs are at best
    /// review while this release is relevant to them. Missing in a release remembered before
    /// Kura kept it: such a release counts as not known at all.
    #[serde(default)]
    unknown: Option<Vec<String>>,
    /// The release's number in the memory (1, 2, …, in the order the gate remembered them).
    #[serde(default)]
    seq: u64,
}

/// The first bytes of the packed form of sealed sets: a JSON head with each cell's name and
/// the length of its set, then the sets' bytes ([`encode_set`]) one after another. Reading
/// 100 releases this way takes a fraction of parsing their sets as hex inside JSON; the older,
/// all-JSON form is still read.
const PACKED: &[u8; 8] = b"KMEMSET2";

/// A cell of the packed form: its name and the length of its set's bytes.
#[derive(Debug, Serialize, Deserialize)]
struct CellHead {
    file: String,
    label: String,
    at: Option<(usize, usize)>,
    /// The length of its set's bytes.
    bytes: usize,
    /// The number of persons in its set (checked: a shifted boundary between two sets fails).
    persons: usize,
}

#[derive(Serialize, Deserialize)]
struct Packed<H> {
    head: H,
    cells: Vec<CellHead>,
}

/// Packs `head` and `cells` ([`PACKED`]).
fn pack<H: Serialize>(head: H, cells: &[MemCell]) -> Result<Vec<u8>> {
    let mut blob = Vec::new();
    let mut heads = Vec::with_capacity(cells.len());
    for c in cells {
        let bytes = encode_set(c.set.keys());
        heads.push(CellHead { file: c.file.clone(), label: c.label.clone(), at: c.at, bytes: bytes.len(), persons: c.set.keys().len() });
        blob.extend_from_slice(&bytes);
    }
    let json = serde_json::to_vec(&Packed { head, cells: heads }).map_err(|e| WorkspaceError::Unusable(e.to_string()))?;
    let mut out = Vec::with_capacity(PACKED.len() + 8 + json.len() + blob.len());
    out.extend_from_slice(PACKED);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&blob);
    Ok(out)
}

/// Unpacks [`pack`]'s bytes (`None` if they are not packed); a set that does not decode, or
/// bytes left over, make the whole file unreadable (never a set silently left out).
fn unpack<H: serde::de::DeserializeOwned>(bytes: &[u8], name: &str) -> Option<Result<(H, Vec<MemCell>)>> {
    let rest = bytes.strip_prefix(PACKED.as_slice())?;
    let bad = |why: &str| WorkspaceError::Unusable(format!("{name}: 記憶が読めません（{why}）/ the memory does not read ({why})"));
    Some((|| {
        let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(|| bad("too short"))?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| bad("length"))?;
        let (json, mut blob) = rest.split_at_checked(len).ok_or_else(|| bad("too short"))?;
        let packed: Packed<H> = serde_json::from_slice(json).map_err(|e| bad(&e.to_string()))?;
        let mut cells = Vec::with_capacity(packed.cells.len());
        for c in packed.cells {
            let (set, next) = blob.split_at_checked(c.bytes).ok_or_else(|| bad("a set is cut off"))?;
            blob = next;
            let keys = decode_set(set).filter(|k| k.len() == c.persons).ok_or_else(|| bad("a person set does not decode"))?;
            cells.push(MemCell { file: c.file, label: c.label, at: c.at, set: Persons(keys) });
        }
        if !blob.is_empty() {
            return Err(bad("bytes left over"));
        }
        Ok((packed.head, cells))
    })())
}

/// Reads a sealed entry in either form.
fn read_entry(bytes: &[u8], name: &str) -> Result<Entry> {
    if let Some(unpacked) = unpack::<EntryHead>(bytes, name) {
        let (head, cells) = unpacked?;
        return Ok(Entry { head, cells });
    }
    serde_json::from_slice(bytes).map_err(|e| WorkspaceError::Unusable(format!("{name}: {e}")))
}

/// What the memory holds for a new output.
#[derive(Debug, Default)]
pub struct Recalled {
    /// Every remembered set, with its release.
    pub sets: Vec<(String, MemCell)>,
    /// The releases with files whose persons are not known (their ids; the file names stay
    /// with the operators: another project's members read these).
    pub unknown: Vec<String>,
    /// Every relevant release with its number.
    pub releases: Vec<(String, u64)>,
    /// The number of the newest release of all (relevant or not).
    pub newest: u64,
}

/// The message of a `differencing.unknown` finding about release `release`: the gate compares
/// it exactly (a file name cannot pass for another release's).
pub fn unknown_message(release: &str) -> String {
    format!(
        "{release}: 持ち出し済みのこの依頼は人を特定できないファイルを含むため、差分は審査者が確かめます / {release}, already released, has files whose persons are not known: reviewers compare with it by hand"
    )
}

/// The prefix of the memory's public tables (`PUB-name`).
pub const PUBLIC_PREFIX: &str = "PUB-";

/// The sets of a table that would leave: every cell that is released (not suppressed, its row
/// shown) with one set per aggregate it is built from, and per measure the union of them.
pub fn leaving_sets(file: &str, table: &Table, verdict: &TableVerdict, sets: &[Vec<CellSets>]) -> Vec<MemCell> {
    cell_sets(file, table, sets, |r, m| {
        !verdict.masked_rows.contains(&r)
            && verdict
                .cells
                .get(r)
                .and_then(|row| row.get(m))
                .is_some_and(|v| !matches!(v.action, Action::Suppressed | Action::SecondarySuppressed) && v.released.is_some())
    })
}

/// The sets of every cell of a table the platform publishes itself, and per measure the union
/// of them (issue 22 §2): all of it counts as released.
pub fn public_sets(file: &str, table: &Table, sets: &[Vec<CellSets>]) -> Vec<MemCell> {
    cell_sets(file, table, sets, |_, _| true)
}

/// The sets of the cells `shown(row, measure)` of a table, and per measure their union.
fn cell_sets(file: &str, table: &Table, sets: &[Vec<CellSets>], shown: impl Fn(usize, usize) -> bool) -> Vec<MemCell> {
    let keys: Vec<&Vec<Option<String>>> = table.rows.iter().map(|r| &r.keys).collect();
    let measures = &table.measures;
    let mut out = Vec::new();
    let mut unions: Vec<Vec<u64>> = vec![Vec::new(); measures.len()];
    for (r, row_sets) in sets.iter().enumerate() {
        let key =
            keys.get(r).map(|k| k.iter().map(|v| v.as_deref().unwrap_or("(計 total)")).collect::<Vec<_>>().join(" · ")).unwrap_or_default();
        for (m, cell_sets) in row_sets.iter().enumerate() {
            if !shown(r, m) {
                continue;
            }
            let measure = measures.get(m).map(String::as_str).unwrap_or("?");
            for set in cell_sets {
                if set.is_empty() {
                    continue;
                }
                // A total row of grouping sets is a union already: it takes no part in one.
                if !keys.get(r).is_some_and(|k| k.iter().any(Option::is_none))
                    && let Some(u) = unions.get_mut(m)
                {
                    u.extend(set.iter().copied());
                }
                out.push(MemCell {
                    file: file.into(),
                    label: format!("{key} / {measure}"),
                    at: Some((r, m)),
                    set: Persons::new(set.clone()),
                });
            }
        }
    }
    for (m, u) in unions.into_iter().enumerate() {
        if !u.is_empty() {
            let measure = measures.get(m).map(String::as_str).unwrap_or("?");
            out.push(MemCell { file: file.into(), label: format!("{measure} (合計 total)"), at: None, set: Persons::new(u) });
        }
    }
    out
}

/// |a \ b| and |b \ a| of two sorted sets (the tests' reference for [`compare`]).
#[cfg(test)]
fn differences(a: &[u64], b: &[u64]) -> (u64, u64) {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    let (mut only_a, mut only_b) = (0u64, 0u64);
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => {
                only_a += 1;
                a.next();
            }
            std::cmp::Ordering::Greater => {
                only_b += 1;
                b.next();
            }
            std::cmp::Ordering::Equal => {
                a.next();
                b.next();
            }
        }
    }
    (only_a + a.count() as u64, only_b + b.count() as u64)
}

/// A differencing finding: the new cell at `at` combines with `with` (a release and its cell).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    /// The new cell's row and measure.
    pub at: (usize, usize),
    /// `OUT-… file «label»`.
    pub with: String,
}

/// |a ∩ b| of two ascending sets.
fn common_count(a: &[u64], b: &[u64]) -> u64 {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Whether every key of the ascending `small` is in the ascending `big` (searched by halving
/// what is left of `big`: a set that is not a superset is usually told at its first keys).
fn is_subset(small: &[u64], big: &[u64]) -> bool {
    let mut rest = big;
    for key in small {
        match rest.binary_search(key) {
            Ok(at) => rest = rest.get(at + 1..).unwrap_or(&[]),
            Err(_) => return false,
        }
    }
    true
}

/// Groups identical sets: per set the number of its distinct set, and per distinct set its
/// sets (ascending). Sets are told apart by size and a hash of their keys, then compared.
fn distinct_sets<'a>(sets: impl Iterator<Item = &'a [u64]>) -> (Vec<u32>, Vec<Vec<usize>>) {
    let sets: Vec<&[u64]> = sets.collect();
    let mut by_hash: HashMap<(usize, u64), Vec<u32>> = HashMap::new();
    let mut rep = Vec::with_capacity(sets.len());
    let mut twins: Vec<Vec<usize>> = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        // The keys are keyed hashes already: mixing them in order is enough to tell sets apart.
        let hash = set.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, k| (h ^ k).wrapping_mul(0x0100_0000_01b3).rotate_left(29));
        let candidates = by_hash.entry((set.len(), hash)).or_default();
        let found = candidates
            .iter()
            .copied()
            .find(|&d| twins.get(d as usize).and_then(|m| m.first()).and_then(|&f| sets.get(f)).is_some_and(|other| other == set));
        let d = match found {
            Some(d) => d,
            None => {
                let d = twins.len() as u32;
                twins.push(Vec::new());
                candidates.push(d);
                d
            }
        };
        if let Some(m) = twins.get_mut(d as usize) {
            m.push(i);
        }
        rep.push(d);
    }
    (rep, twins)
}

/// Numbers the distinct persons of `sets` densely and inverts them: per set its persons'
/// numbers (ascending), and per number the sets holding it (`post[start[d]..start[d + 1]]`).
///
/// The (person, set) pairs are spread by the person key's top bits into parts small enough to
/// sort in the cache (the keys are keyed hashes: evenly spread), each part is sorted, and the
/// numbers are given in one walk: no hash table of a million persons, whose every look-up
/// would miss the cache.
fn invert<'a>(sets: impl Iterator<Item = &'a [u64]> + Clone) -> (Vec<Vec<u32>>, Vec<u32>, Vec<u32>) {
    let sizes: Vec<usize> = sets.clone().map(<[u64]>::len).collect();
    let total: usize = sizes.iter().sum();
    // About 4,096 pairs per part.
    let bits = (usize::BITS - (total / 4096).leading_zeros()).min(16);
    let part_of = |key: u64| if bits == 0 { 0 } else { (key >> (64 - bits)) as usize };
    let n_parts = 1usize << bits;
    let mut begin = vec![0usize; n_parts + 1];
    for set in sets.clone() {
        for &key in set {
            if let Some(c) = begin.get_mut(part_of(key) + 1) {
                *c += 1;
            }
        }
    }
    for p in 0..n_parts {
        let before = begin.get(p).copied().unwrap_or(0);
        if let Some(c) = begin.get_mut(p + 1) {
            *c += before;
        }
    }
    let mut fill = begin.clone();
    let mut pairs = vec![(0u64, 0u32); total];
    for (j, set) in sets.enumerate() {
        for &key in set {
            if let Some(at) = fill.get_mut(part_of(key)) {
                if let Some(slot) = pairs.get_mut(*at) {
                    *slot = (key, j as u32);
                }
                *at += 1;
            }
        }
    }
    drop(fill);
    let mut dense: Vec<Vec<u32>> = sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
    let mut start = Vec::with_capacity(total / 2 + 1);
    let mut post = Vec::with_capacity(total);
    start.push(0u32);
    for p in 0..n_parts {
        let (a, b) = (begin.get(p).copied().unwrap_or(0), begin.get(p + 1).copied().unwrap_or(0));
        let Some(part) = pairs.get_mut(a..b) else { continue };
        part.sort_unstable();
        let mut last = None;
        for &(key, j) in &*part {
            if last != Some(key) {
                if last.is_some() {
                    start.push(post.len() as u32);
                }
                last = Some(key);
            }
            post.push(j);
            if let Some(d) = dense.get_mut(j as usize) {
                d.push(start.len() as u32 - 1);
            }
        }
        if last.is_some() {
            start.push(post.len() as u32);
        }
    }
    (dense, start, post)
}

/// Compares the new cells (`fresh`, those with a position; their table's unions take part as
/// what they add up to) with `released` (a source name and its sets) and with each other:
///
/// - every pair, one fresh and one released or two fresh (two measures of a row, two parts of
///   a share or difference, two rows, a row and the table's total), whose difference one way
///   holds 1 to `threshold` − 1 persons while the other way holds fewer than `threshold`;
/// - unions: a set C (fresh or released) less the union of the other sets that lie within it
///   (released cells that add up to a new total, new cells under a released total) holding 1 to
///   `threshold` − 1 persons.
pub fn compare(fresh: &[MemCell], released: &[(String, MemCell)], threshold: u64) -> Vec<Hit> {
    let few = |n: u64| (1..threshold).contains(&n);
    // Two sets that differ by a few persons one way and by fewer than the threshold the other
    // (nested, or nearly): their values' difference is those few persons'. Two overlapping
    // categories that each hold many persons the other lacks (a cross-tab's cells) are not.
    let close = |a: u64, b: u64| (few(a) && b < threshold) || (few(b) && a < threshold);
    // Every set, the fresh ones first: its name, its fresh cell (if fresh), its persons.
    let mut items: Vec<(String, Option<&MemCell>, &[u64])> =
        fresh.iter().map(|c| (format!("{} «{}»", c.file, c.label), Some(c), c.set.keys())).collect();
    let n_fresh = items.len();
    items.extend(released.iter().map(|(src, c)| (format!("{src} {} «{}»", c.file, c.label), None, c.set.keys())));
    // An empty set stands for nobody: comparing with it is the threshold rule's business.
    let sizes: Vec<u64> = items.iter().map(|(_, _, p)| p.len() as u64).collect();
    // The sets each person is in (an inverted index): two sets that differ by fewer than the
    // threshold share persons, so only the sets found through a set's persons are compared
    // with it — one pass over its persons' lists instead of one comparison per set.
    // Each distinct person a dense number, each set its persons' numbers; then the sets of
    // each number, laid out one after another (`start[d]..start[d + 1]` in `post`).
    // Identical sets (a row's count beside its sum, two measures' totals) are indexed once:
    // two identical sets differ by nobody, so comparing them finds nothing, and a set's twins
    // take its overlaps. `rep[i]` is item i's distinct set, `twins[d]` the items of set d.
    let (rep, twins) = distinct_sets(items.iter().map(|(_, _, p)| *p));
    let (dense, start, post) = invert(twins.iter().map(|m| m.first().and_then(|&i| items.get(i)).map_or(&[][..], |(_, _, p)| *p)));
    let postings = |d: &u32| {
        let (a, b) = (start.get(*d as usize).copied().unwrap_or(0), start.get(*d as usize + 1).copied().unwrap_or(0));
        post.get(a as usize..b as usize).unwrap_or(&[])
    };
    let rep_of = |i: usize| rep.get(i).copied().unwrap_or(u32::MAX);
    // |S_k ∩ S_j| for every j sharing a person with S_k but for its twins: (j, count), counted
    // per distinct set in `counts` and remembered per distinct set.
    let mut counts = vec![0u64; twins.len()];
    let mut memo: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    let mut overlaps = |k: usize| -> Vec<(usize, u64)> {
        let own = rep_of(k);
        let shared = memo.entry(own).or_insert_with(|| {
            let mut touched = Vec::new();
            for person in dense.get(own as usize).map_or(&[][..], Vec::as_slice) {
                for &d in postings(person) {
                    if d == own {
                        continue;
                    }
                    if let Some(c) = counts.get_mut(d as usize) {
                        if *c == 0 {
                            touched.push(d);
                        }
                        *c += 1;
                    }
                }
            }
            let out: Vec<(u32, u64)> = touched.iter().map(|&d| (d, counts.get(d as usize).copied().unwrap_or(0))).collect();
            for d in touched {
                if let Some(c) = counts.get_mut(d as usize) {
                    *c = 0;
                }
            }
            out
        });
        shared.iter().flat_map(|&(d, c)| twins.get(d as usize).map_or(&[][..], Vec::as_slice).iter().map(move |&j| (j, c))).collect()
    };
    let small: Vec<usize> = (0..items.len()).filter(|&j| sizes.get(j).is_some_and(|&s| s > 0 && s < threshold)).collect();
    let mut hits = BTreeSet::new();
    // The fresh cell a finding is reported on: the given one, or the first cell of its file
    // (a finding on a table's total).
    let at_of = |c: &MemCell| {
        c.at.or_else(|| fresh.iter().find(|f| f.file == c.file && f.at.is_some() && !f.set.keys().is_empty()).and_then(|f| f.at))
    };
    let size = |j: usize| sizes.get(j).copied().unwrap_or(0);
    let name = |j: usize| items.get(j).map_or("", |(n, _, _)| n.as_str());
    // A finding of fresh set `i` (reported on cell `at`) with set `j`: a release, or another
    // set of this output (each pair once).
    let report = |hits: &mut BTreeSet<Hit>, at: (usize, usize), i: usize, j: usize| {
        if j >= n_fresh {
            hits.insert(Hit { at, with: name(j).to_string() });
        } else if j > i {
            hits.insert(Hit { at, with: format!("{} (この出力 this output, {})", name(j), name(i)) });
        }
    };
    // Union candidates: each with the sets lying within it.
    let mut unions: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut released_supersets = BTreeSet::new();
    for i in 0..n_fresh {
        let Some((_, Some(c), _)) = items.get(i) else { continue };
        let mine = size(i);
        if mine == 0 {
            continue;
        }
        // A fresh set without a cell is the union of this output's shown cells of a measure
        // (`cell_sets`): those cells lie within it and cover it, so the union check has
        // nothing to find, and only sets within the threshold of its size can be close to it.
        // Its persons (every person of the table) are not walked through the index.
        if c.at.is_none() && mine >= threshold {
            let keys = |j: usize| items.get(j).map_or(&[][..], |(_, _, p)| *p);
            for j in 0..items.len() {
                let theirs = size(j);
                if j == i || theirs == 0 {
                    continue;
                }
                if j >= n_fresh && theirs > mine && is_subset(keys(i), keys(j)) {
                    released_supersets.insert(j);
                }
                if theirs.abs_diff(mine) >= threshold {
                    continue;
                }
                let common = common_count(keys(i), keys(j));
                if let Some(at) = at_of(c)
                    && close(mine - common, theirs - common)
                {
                    report(&mut hits, at, i, j);
                }
            }
            continue;
        }
        let shared = overlaps(i);
        let mut within = Vec::new();
        let mut seen = BTreeSet::new();
        for &(j, common) in &shared {
            seen.insert(j);
            let theirs = size(j);
            if common == theirs && theirs < mine {
                within.push(j);
            }
            if j >= n_fresh && common == mine && theirs > mine {
                released_supersets.insert(j);
            }
            if let Some(at) = at_of(c)
                && close(mine - common, theirs - common)
            {
                report(&mut hits, at, i, j);
            }
        }
        // Sets that share nobody with this one are close only when both are tiny.
        if let Some(at) = at_of(c)
            && mine < threshold
        {
            // (A twin shares everyone: it is not among them.)
            for &j in small.iter().filter(|j| !seen.contains(*j) && rep_of(**j) != rep_of(i)) {
                if close(mine, size(j)) {
                    report(&mut hits, at, i, j);
                }
            }
        }
        within.sort_unstable();
        unions.push((i, within));
    }
    // A released set with a fresh one within it: what the sets within it add up to now.
    for k in released_supersets {
        let big = size(k);
        let mut within: Vec<usize> =
            overlaps(k).into_iter().filter(|&(j, common)| common == size(j) && size(j) < big).map(|(j, _)| j).collect();
        within.sort_unstable();
        unions.push((k, within));
    }
    // Unions of the sets that lie within a set: the persons of the set no part covers.
    let mut part = vec![false; twins.len()];
    for (k, within) in unions {
        if within.len() < 2 {
            continue; // one set within another is the pairwise check above
        }
        for &j in &within {
            if let Some(p) = part.get_mut(rep_of(j) as usize) {
                *p = true;
            }
        }
        let persons = dense.get(rep_of(k) as usize).map_or(&[][..], Vec::as_slice);
        let covered = persons.iter().filter(|d| postings(d).iter().any(|&j| part.get(j as usize).copied().unwrap_or(false))).count();
        for &j in &within {
            if let Some(p) = part.get_mut(rep_of(j) as usize) {
                *p = false;
            }
        }
        let rest = size(k) - covered as u64;
        if !few(rest) {
            continue;
        }
        // Reported on a fresh cell taking part: the big one, or one within it.
        let own = items.get(k).and_then(|(_, c, _)| c.and_then(at_of));
        let fresh_part = own.or_else(|| within.iter().find_map(|&j| items.get(j).and_then(|(_, c, _)| c.and_then(at_of))));
        if let Some(at) = fresh_part {
            let parts: Vec<&str> = within.iter().take(4).map(|&j| name(j)).collect();
            hits.insert(Hit { at, with: format!("{} = {} …", name(k), parts.join(" + ")) });
        }
    }
    hits.into_iter().collect()
}

/// Marks the cells `hits` names as failing in `verdict` (the rule, the release they combine
/// with; never the count).
pub fn apply(verdict: &mut TableVerdict, hits: &[Hit], threshold: u64) {
    for h in hits {
        let Some(cell) = verdict.cells.get_mut(h.at.0).and_then(|r| r.get_mut(h.at.1)) else { continue };
        cell.findings.push(Finding {
            rule: rule::DIFFERENCING.to_owned(),
            status: Status::Fail,
            message: format!(
                "既に持ち出された {} と合わせると {} 人未満の人が特定されます / together with {}, already released, it isolates fewer than {} persons",
                h.with, threshold, h.with, threshold
            ),
        });
        cell.status = Status::Fail;
        verdict.status = Status::Fail;
        verdict.released_status = Status::Fail;
    }
}

/// Marks a table checked against the memory (`recalled`): its `memory_through`, and for each
/// relevant release with files whose persons are not known a table finding (review) naming it,
/// with every passing cell at best review: the memory cannot tell what the table adds to that
/// release, so reviewers compare by hand (issue 22 §3: never a silent pass).
pub fn apply_unknown(verdict: &mut TableVerdict, recalled: &Recalled) {
    verdict.memory_through = recalled.newest;
    if recalled.unknown.is_empty() {
        return;
    }
    for release in &recalled.unknown {
        verdict.table_findings.push(Finding {
            rule: rule::DIFFERENCING_UNKNOWN.to_owned(),
            status: Status::Review,
            message: unknown_message(release),
        });
    }
    let list = recalled.unknown.join(", ");
    for cell in verdict.cells.iter_mut().flatten() {
        if cell.status == Status::Pass {
            cell.findings.push(Finding {
                rule: rule::DIFFERENCING_UNKNOWN.to_owned(),
                status: Status::Review,
                message: format!("{list}: 人を特定できない持ち出し済みのファイル / released files whose persons are not known"),
            });
            cell.status = Status::Review;
        }
    }
    for s in [&mut verdict.status, &mut verdict.released_status] {
        if *s == Status::Pass {
            *s = Status::Review;
        }
    }
}

/// Whether a table's persons are not known to the memory: its lineage was lost, it is
/// record-level, or none of its cells left a set to remember.
pub fn table_unknown(verdict: Option<&TableVerdict>, pending: &[MemCell]) -> bool {
    let Some(v) = verdict else { return true };
    pending.is_empty()
        || v.table_findings
            .iter()
            .chain(v.cells.iter().flatten().flat_map(|c| c.findings.iter()))
            .any(|x| x.rule == rule::LINEAGE || x.rule == rule::RECORDS)
}

/// Whether `verdict` was told of release `release`'s unknown files ([`apply_unknown`]).
pub fn told_of_unknown(verdict: &TableVerdict, release: &str) -> bool {
    let want = unknown_message(release);
    verdict.table_findings.iter().any(|f| f.rule == rule::DIFFERENCING_UNKNOWN && f.message == want)
}

/// The memory and pending sets on disk.
pub struct Memory {
    dir: PathBuf,
    key: SecretKey,
}

impl Memory {
    /// The memory under `airlock` (the airlock directory), sealed under keys from `airlock_key`.
    pub fn new(airlock: &Path, airlock_key: &SecretKey) -> Memory {
        Memory { dir: airlock.join("memory"), key: airlock_key.derive(b"kura/airlock-memory/v1") }
    }

    fn seal(&self, path: &Path, aad: &str, json: &[u8]) -> Result<()> {
        let sealed = kura_crypto::seal(&self.key, aad.as_bytes(), json)?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&sealed);
        kura_crypto::write_atomic(path, &bytes, 0o600).map_err(|e| WorkspaceError::io(path, e))
    }

    fn open(&self, path: &Path, aad: &str) -> Result<Vec<u8>> {
        let bytes = std::fs::read(path).map_err(|e| WorkspaceError::io(path, e))?;
        let bad = || {
            WorkspaceError::Unusable(format!("{}: 開けません（改変または置き換え）/ does not open: altered or replaced", path.display()))
        };
        let sealed = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(bad)?;
        Ok(kura_crypto::open_sealed(&self.key, aad.as_bytes(), sealed).map_err(|_| bad())?.to_vec())
    }

    /// Seals the sets of file `n` of request `id` (in the request's own directory `dir`).
    pub fn save_pending(&self, dir: &Path, id: &str, n: i64, cells: &[MemCell]) -> Result<()> {
        let packed = pack((), cells)?;
        self.seal(&dir.join(format!("{n}.sets")), &format!("kura/output-sets/v1\0{id}\0{n}"), &packed)
    }

    /// The sets of file `n` of request `id`.
    pub fn pending(&self, dir: &Path, id: &str, n: i64) -> Result<Vec<MemCell>> {
        let bytes = self.open(&dir.join(format!("{n}.sets")), &format!("kura/output-sets/v1\0{id}\0{n}"))?;
        let name = format!("{id}/{n}.sets");
        if let Some(unpacked) = unpack::<()>(&bytes, &name) {
            return Ok(unpacked?.1);
        }
        serde_json::from_slice(&bytes).map_err(|e| WorkspaceError::Unusable(format!("{name}: {e}")))
    }

    /// Every remembered set that a new output of `project`, whose members are `members`, is
    /// compared with: releases of the same project and of every project sharing a member.
    pub fn relevant(&self, project: &str, members: &[String]) -> Result<Vec<(String, MemCell)>> {
        Ok(self.recall(project, members)?.sets)
    }

    /// What [`Memory::relevant`] gives, and the relevant released files whose persons are not
    /// known.
    pub fn recall(&self, project: &str, members: &[String]) -> Result<Recalled> {
        let mut out = Recalled::default();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(WorkspaceError::io(&self.dir, e)),
        };
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.ends_with(".sealed")).collect();
        names.sort();
        for name in names {
            let release = name.trim_end_matches(".sealed");
            let bytes = self.open(&self.dir.join(&name), &format!("kura/airlock-memory/v1\0{release}"))?;
            let Entry { head, cells } = read_entry(&bytes, &name)?;
            if head.release != release {
                return Err(WorkspaceError::Unusable(format!("{name}: 別の持ち出しの記憶です / holds another release's memory")));
            }
            out.newest = out.newest.max(head.seq);
            if head.public || head.project == project || head.members.iter().any(|m| members.contains(m)) {
                let unknown = match &head.unknown {
                    Some(files) => !files.is_empty(),
                    None => !head.public,
                };
                if unknown {
                    out.unknown.push(head.release.clone());
                }
                out.releases.push((head.release.clone(), head.seq));
                out.sets.extend(cells.into_iter().map(|c| (head.release.clone(), c)));
            }
        }
        Ok(out)
    }

    /// Checks that every release in `released` (the store of record's released requests) has
    /// its memory: a memory file deleted or moved away would let a later output difference it
    /// unnoticed, so the airlock stops until it is restored.
    pub fn complete(&self, released: &[String]) -> Result<()> {
        let missing: Vec<&str> =
            released.iter().filter(|id| !self.dir.join(format!("{id}.sealed")).is_file()).map(String::as_str).collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(WorkspaceError::Unusable(format!(
            "持ち出しの記憶がありません（{}）。バックアップから {} に戻してください / the differencing memory of {} is missing: restore it into {} from a backup; until then nothing is checked or released",
            missing.join(", "),
            self.dir.display(),
            missing.join(", "),
            self.dir.display()
        )))
    }

    /// Remembers a table the platform publishes itself as `PUB-name`: compared with every new
    /// output of every project. Published again under its name, the earlier versions' sets are
    /// kept beside the new ones (they were public too).
    pub fn remember_public(&self, name: &str, cells: Vec<MemCell>) -> Result<()> {
        kura_store::home::mkdir_private(&self.dir)?;
        let release = format!("{PUBLIC_PREFIX}{name}");
        let seq = self.recall("", &[])?.newest + 1;
        let mut cells = cells;
        let path = self.dir.join(format!("{release}.sealed"));
        if path.is_file() {
            let bytes = self.open(&path, &format!("kura/airlock-memory/v1\0{release}"))?;
            let earlier = read_entry(&bytes, &release)?;
            const EARLIER: &str = " (以前の版 an earlier version)";
            cells.extend(earlier.cells.into_iter().map(|mut c| {
                if !c.label.ends_with(EARLIER) {
                    c.label.push_str(EARLIER);
                }
                c
            }));
        }
        let head = EntryHead {
            release: release.clone(),
            project: String::new(),
            members: Vec::new(),
            public: true,
            unknown: Some(Vec::new()),
            seq,
        };
        let packed = pack(&head, &cells)?;
        self.seal(&self.dir.join(format!("{release}.sealed")), &format!("kura/airlock-memory/v1\0{release}"), &packed)
    }

    /// Remembers release `release` of `project` (members `members`) with its leaving sets and
    /// the names of its files whose persons are not known (`unknown`) as release number `seq`:
    /// one more than [`Recalled::newest`] as read under the release lock, which the caller
    /// holds.
    pub fn remember(
        &self,
        release: &str,
        project: &str,
        members: &[String],
        cells: Vec<MemCell>,
        unknown: Vec<String>,
        seq: u64,
    ) -> Result<()> {
        kura_store::home::mkdir_private(&self.dir)?;
        let head = EntryHead {
            release: release.into(),
            project: project.into(),
            members: members.to_vec(),
            public: false,
            unknown: Some(unknown),
            seq,
        };
        let packed = pack(&head, &cells)?;
        self.seal(&self.dir.join(format!("{release}.sealed")), &format!("kura/airlock-memory/v1\0{release}"), &packed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(at: Option<(usize, usize)>, set: &[u64]) -> MemCell {
        MemCell { file: "t.csv".into(), label: "x".into(), at, set: Persons::new(set.to_vec()) }
    }

    fn verdict(table_findings: Vec<Finding>) -> TableVerdict {
        TableVerdict {
            policy: String::new(),
            table_findings,
            cells: Vec::new(),
            status: Status::Pass,
            released_status: Status::Pass,
            masked_rows: Vec::new(),
            memory_through: 0,
        }
    }

    fn finding(rule: &str, message: String) -> Finding {
        Finding { rule: rule.into(), status: Status::Review, message }
    }

    /// Issue 22 §3 (reviewed by an insider): the gate tells a release apart by its exact
    /// message, so a file name that holds another release's id does not stand for it; a
    /// record-level table, a table whose lineage was lost and one that left no set are all
    /// tables whose persons the memory does not know.
    #[test]
    fn releases_without_known_persons_are_told_apart_exactly() {
        let v = verdict(vec![finding(rule::DIFFERENCING_UNKNOWN, unknown_message("OUT-000001 a.txt, OUT-000003"))]);
        assert!(!told_of_unknown(&v, "OUT-000003"));
        assert!(!told_of_unknown(&v, "OUT-000001"));
        let v = verdict(vec![finding(rule::DIFFERENCING_UNKNOWN, unknown_message("OUT-000003"))]);
        assert!(told_of_unknown(&v, "OUT-000003"));
        let some = vec![cell(Some((0, 0)), &[1, 2, 3])];
        assert!(!table_unknown(Some(&verdict(Vec::new())), &some));
        assert!(table_unknown(Some(&verdict(Vec::new())), &[]), "no set left");
        assert!(table_unknown(Some(&verdict(vec![finding(rule::RECORDS, String::new())])), &some), "records");
        assert!(table_unknown(Some(&verdict(vec![finding(rule::LINEAGE, String::new())])), &some), "lineage");
        assert!(table_unknown(None, &some), "a verdict that does not read");
    }

    /// A release remembered before the memory kept its unknown files counts as unknown (it may
    /// have held a figure); a public table does not; numbers grow with each release.
    #[test]
    fn an_older_release_without_the_list_counts_as_unknown() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("kura-memory-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = SecretKey::from_bytes([7u8; 32]);
        let mem = Memory::new(&dir, &key);
        kura_store::home::mkdir_private(&dir)?;
        kura_store::home::mkdir_private(&mem.dir)?;
        let old = br#"{"release":"OUT-000001","project":"PRJ-1","members":["r1"],"cells":[]}"#;
        mem.seal(&mem.dir.join("OUT-000001.sealed"), "kura/airlock-memory/v1\0OUT-000001", old)?;
        let got = mem.recall("PRJ-9", &["r1".to_string()])?;
        assert_eq!(got.unknown, vec!["OUT-000001".to_string()]);
        mem.remember_public("population", vec![cell(None, &[1, 2])])?;
        let next = mem.recall("", &[])?.newest + 1;
        mem.remember("OUT-000002", "PRJ-1", &["r1".to_string()], vec![cell(None, &[1])], Vec::new(), next)?;
        let got = mem.recall("PRJ-1", &[])?;
        assert_eq!(got.unknown, vec!["OUT-000001".to_string()], "the public table and a known release are not unknown");
        let seqs: BTreeSet<u64> = got.releases.iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, BTreeSet::from([0, 1, 2]));
        assert_eq!(got.newest, 2);
        // Published again: the earlier version's sets stay (they were public).
        mem.remember_public("population", vec![cell(None, &[5, 6, 7])])?;
        let public: Vec<Vec<u64>> =
            mem.recall("PRJ-7", &[])?.sets.into_iter().filter(|(r, _)| r == "PUB-population").map(|(_, c)| c.set.keys().to_vec()).collect();
        assert_eq!(public, vec![vec![5, 6, 7], vec![1, 2]]);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// Sets are sealed packed; sets sealed in the older all-JSON form still read, and a packed
    /// file whose sets are damaged does not read at all.
    #[test]
    fn packed_and_older_sets_read_alike() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("kura-memory-pack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = SecretKey::from_bytes([9u8; 32]);
        let mem = Memory::new(&dir, &key);
        kura_store::home::mkdir_private(&dir)?;
        kura_store::home::mkdir_private(&mem.dir)?;
        let cells = vec![cell(Some((0, 1)), &[3, 9, u64::MAX]), cell(None, &[]), cell(Some((2, 0)), &[1 << 40])];
        // Pending sets, both forms.
        mem.save_pending(&dir, "OUT-1", 1, &cells)?;
        let back = mem.pending(&dir, "OUT-1", 1)?;
        assert_eq!(
            back.iter().map(|c| (c.at, c.set.keys().to_vec())).collect::<Vec<_>>(),
            cells.iter().map(|c| (c.at, c.set.keys().to_vec())).collect::<Vec<_>>()
        );
        let json = serde_json::to_vec(&cells).map_err(|e| WorkspaceError::Unusable(e.to_string()))?;
        mem.seal(&dir.join("2.sets"), "kura/output-sets/v1\0OUT-1\x002", &json)?;
        assert_eq!(mem.pending(&dir, "OUT-1", 2)?.len(), 3);
        // A remembered release, packed, beside one in the older form.
        mem.remember("OUT-000002", "PRJ-1", &["r1".to_string()], cells.clone(), Vec::new(), 2)?;
        let old = Entry {
            head: EntryHead {
                release: "OUT-000001".into(),
                project: "PRJ-1".into(),
                members: vec!["r1".into()],
                public: false,
                unknown: Some(Vec::new()),
                seq: 1,
            },
            cells: cells.clone(),
        };
        let json = serde_json::to_vec(&old).map_err(|e| WorkspaceError::Unusable(e.to_string()))?;
        mem.seal(&mem.dir.join("OUT-000001.sealed"), "kura/airlock-memory/v1\0OUT-000001", &json)?;
        let got = mem.recall("PRJ-1", &[])?;
        assert_eq!(got.sets.len(), 6);
        assert_eq!(got.sets.iter().filter(|(_, c)| c.set.keys() == [3, 9, u64::MAX]).count(), 2);
        // Damaged sets inside a packed file (re-sealed, so the seal itself holds).
        let mut packed = pack((), &cells)?;
        if let Some(last) = packed.last_mut() {
            *last |= 0x80;
        }
        mem.seal(&dir.join("3.sets"), "kura/output-sets/v1\0OUT-1\x003", &packed)?;
        assert!(mem.pending(&dir, "OUT-1", 3).is_err());
        packed.truncate(packed.len() - 1);
        mem.seal(&dir.join("4.sets"), "kura/output-sets/v1\0OUT-1\x004", &packed)?;
        let err = mem.pending(&dir, "OUT-1", 4).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("cut off"), "a set cut off: {err}");
        // Bytes left over; a boundary between two sets moved (the persons counted apart).
        let mut extra = pack((), &cells)?;
        extra.push(0x01);
        mem.seal(&dir.join("5.sets"), "kura/output-sets/v1\0OUT-1\x005", &extra)?;
        let err = mem.pending(&dir, "OUT-1", 5).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("left over"), "{err}");
        let two = vec![cell(Some((0, 0)), &[3]), cell(Some((0, 1)), &[9])];
        let mut shifted = pack((), &two)?;
        let pattern = b"\"bytes\":1,\"persons\":1";
        let at = shifted
            .windows(pattern.len())
            .position(|w| w == pattern)
            .ok_or_else(|| WorkspaceError::Unusable("the test's pattern is not in the packed head".into()))?;
        if let Some(b) = shifted.get_mut(at + 8) {
            *b = b'0';
        }
        mem.seal(&dir.join("6.sets"), "kura/output-sets/v1\0OUT-1\x006", &shifted)?;
        assert!(mem.pending(&dir, "OUT-1", 6).is_err(), "a moved boundary");
        // The older form of pending sets reads field for field.
        let old_form = mem.pending(&dir, "OUT-1", 2)?;
        assert_eq!(
            old_form.iter().map(|c| (c.file.clone(), c.label.clone(), c.at, c.set.keys().to_vec())).collect::<Vec<_>>(),
            cells.iter().map(|c| (c.file.clone(), c.label.clone(), c.at, c.set.keys().to_vec())).collect::<Vec<_>>()
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn both_directions_below_the_threshold_are_found() {
        let big: Vec<u64> = (0..100).collect();
        let less: Vec<u64> = (3..100).collect();
        let more: Vec<u64> = (0..103).collect();
        let far: Vec<u64> = (50..200).collect();
        let released = vec![("OUT-1".to_string(), cell(None, &big))];
        assert_eq!(compare(&[cell(Some((0, 0)), &less)], &released, 10).len(), 1, "R \\ C = 3");
        assert_eq!(compare(&[cell(Some((0, 0)), &more)], &released, 10).len(), 1, "C \\ R = 3");
        assert!(compare(&[cell(Some((0, 0)), &big)], &released, 10).is_empty(), "the same persons");
        assert!(compare(&[cell(Some((0, 0)), &far)], &released, 10).is_empty(), "50 and 100 apart");
        assert_eq!(differences(&[1, 2, 3], &[2, 3, 4, 5]), (1, 2));
        // Two overlapping categories (cells of a cross-tab): 6 persons only in one, 50 only in
        // the other: their counts single out nobody.
        let dpc: Vec<u64> = (0..28).collect();
        let outpatient: Vec<u64> = (6..78).collect();
        let released = vec![("OUT-1".to_string(), cell(None, &outpatient))];
        assert!(compare(&[cell(Some((0, 0)), &dpc)], &released, 10).is_empty());
    }

    /// The definition [`compare`] implements with an index, written out as pairs and unions
    /// over every set.
    #[allow(clippy::indexing_slicing, clippy::type_complexity)] // a test's plain definition
    fn reference(fresh: &[MemCell], released: &[(String, MemCell)], threshold: u64) -> BTreeSet<((usize, usize), bool)> {
        let few = |n: u64| (1..threshold).contains(&n);
        let close = |a: u64, b: u64| (few(a) && b < threshold) || (few(b) && a < threshold);
        let mut all: Vec<(Option<(usize, usize)>, Vec<u64>, bool)> = fresh.iter().map(|c| (c.at, c.set.keys().to_vec(), true)).collect();
        let n_fresh = all.len();
        all.extend(released.iter().map(|(_, c)| (None, c.set.keys().to_vec(), false)));
        all.retain(|(_, p, _)| !p.is_empty());
        let n_fresh = all.iter().take(n_fresh).filter(|x| x.2).count();
        let mut out = BTreeSet::new();
        // A fresh set without a cell (a table's total) is reported on the file's first cell.
        let first = all.iter().take(n_fresh).find_map(|x| x.0);
        for i in 0..n_fresh {
            let (own, a, _) = &all[i];
            let Some(at) = own.or(first) else { continue };
            let at = &at;
            for (j, (_, b, _)) in all.iter().enumerate() {
                if j == i || (j < n_fresh && j < i) {
                    continue;
                }
                let (x, y) = differences(a, b);
                if close(x, y) {
                    out.insert((*at, false));
                }
            }
        }
        for (k, (own, big, _)) in all.iter().enumerate() {
            let within: Vec<usize> =
                (0..all.len()).filter(|&j| j != k && all[j].1.len() < big.len() && differences(&all[j].1, big).0 == 0).collect();
            if within.len() < 2 {
                continue;
            }
            let union: BTreeSet<u64> = within.iter().flat_map(|&j| all[j].1.iter().copied()).collect();
            if few(big.len() as u64 - union.len() as u64) {
                // A fresh total is the union of the output's cells: a finding on it is a
                // finding on a cell with the same persons (else its cells cover it).
                let at = if own.is_none() && k < n_fresh {
                    all.iter().take(n_fresh).find(|x| x.0.is_some() && x.1 == *big).and_then(|x| x.0)
                } else {
                    own.or_else(|| within.iter().find_map(|&j| all[j].0))
                };
                if let Some(at) = at {
                    out.insert((at, true));
                }
            }
        }
        out
    }

    /// The inverted index spread over many parts (keys over the whole 64-bit range, more pairs
    /// than one part holds) numbers each person once and lists exactly the sets holding them.
    #[test]
    #[allow(clippy::indexing_slicing)] // a test's reference
    fn the_inverted_index_numbers_each_person_once() {
        use rand::{Rng, SeedableRng};
        use std::collections::BTreeMap;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let pool: Vec<u64> = (0..10_000).map(|_| rng.random()).collect();
        let sets: Vec<Vec<u64>> = (0..25)
            .map(|_| {
                let mut s: Vec<u64> = pool.iter().copied().filter(|_| rng.random_bool(0.2)).collect();
                s.sort_unstable();
                s
            })
            .collect();
        let (dense, start, post) = invert(sets.iter().map(Vec::as_slice));
        let mut number: BTreeMap<u64, u32> = BTreeMap::new();
        let mut want: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for (j, (set, ds)) in sets.iter().zip(&dense).enumerate() {
            assert_eq!(set.len(), ds.len());
            for (key, d) in set.iter().zip(ds) {
                assert_eq!(*number.entry(*key).or_insert(*d), *d, "one number per person");
                want.entry(*key).or_default().push(j as u32);
            }
        }
        let distinct: BTreeSet<u32> = number.values().copied().collect();
        assert_eq!(distinct.len(), number.len(), "one person per number");
        assert_eq!(start.len(), number.len() + 1);
        for (key, d) in &number {
            let (a, b) = (start[*d as usize] as usize, start[*d as usize + 1] as usize);
            assert_eq!(&post[a..b], want[key].as_slice(), "the sets of {key}");
        }
    }

    #[test]
    fn the_index_finds_what_every_pair_and_union_finds() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let mut found = 0;
        for round in 0..300 {
            let universe = rng.random_range(5..60u64);
            let set = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<u64> {
                let keep = rng.random_range(0.05..1.0);
                (0..universe).filter(|_| rng.random_bool(keep)).collect()
            };
            let mut fresh: Vec<MemCell> = (0..rng.random_range(1..6)).map(|i| cell(Some((i, 0)), &set(&mut rng))).collect();
            // Every third round a row's second measure with the same persons (a count beside
            // its sum): twins, indexed once.
            if round % 3 == 0 {
                let twins: Vec<MemCell> = fresh.iter().filter_map(|c| Some(cell(Some((c.at?.0, 1)), c.set.keys()))).collect();
                fresh.extend(twins);
            }
            // Every other round the output's total too, as `cell_sets` makes it: the union
            // of its cells, without a cell of its own.
            if round % 2 == 1 {
                let total: Vec<u64> = fresh.iter().flat_map(|c| c.set.keys().iter().copied()).collect();
                fresh.push(cell(None, &total));
            }
            let released: Vec<(String, MemCell)> =
                (0..rng.random_range(0..6)).map(|i| (format!("OUT-{i}"), cell(None, &set(&mut rng)))).collect();
            let want: BTreeSet<(usize, usize)> = reference(&fresh, &released, 10).into_iter().map(|(at, _)| at).collect();
            let got: BTreeSet<(usize, usize)> = compare(&fresh, &released, 10).into_iter().map(|h| h.at).collect();
            assert_eq!(got, want, "round {round}");
            found += want.len();
        }
        assert!(found > 50, "the rounds exercise findings: {found}");
    }
}
