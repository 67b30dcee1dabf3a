//! The Merkle tree of RFC 6962 / RFC 9162: roots, inclusion and consistency proofs, and their
//! verification (HX-8, HX-12). Proof generation reads complete-subtree hashes from a
//! [`NodeSource`] (memory, tiles on disk, a mirror); verification needs nothing but the proof.

use crate::TlogError;
use crate::hash::{Hash, node_hash, on_all_cores};

/// Hashes of complete subtrees: `node(level, index)` is the root of the `2^level` leaves
/// starting at `index · 2^level`. Level 0 holds the leaf hashes.
pub trait NodeSource {
    /// The hash of one complete subtree, or an error if it is not (yet) stored or is unreadable.
    fn node(&self, level: u8, index: u64) -> Result<Hash, TlogError>;
}

/// The largest power of two strictly below `n` (n ≥ 2): where RFC 6962 splits a tree.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[lo..hi]): the root of the leaves `lo..hi` (`hi > lo`).
pub fn subtree_root(src: &dyn NodeSource, lo: u64, hi: u64) -> Result<Hash, TlogError> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return src.node(n.trailing_zeros() as u8, lo >> n.trailing_zeros());
    }
    let k = if n.is_power_of_two() { n / 2 } else { split(n) };
    Ok(node_hash(&subtree_root(src, lo, lo + k)?, &subtree_root(src, lo + k, hi)?))
}

/// The root of the tree of the first `size` leaves (the empty-tree hash for 0).
pub fn root(src: &dyn NodeSource, size: u64) -> Result<Hash, TlogError> {
    if size == 0 { Ok(Hash::empty()) } else { subtree_root(src, 0, size) }
}

/// The inclusion proof (audit path, RFC 6962 §2.1.1) of leaf `index` in the tree of `size`
/// leaves, from the leaf's sibling up to the root's child.
pub fn inclusion_proof(src: &dyn NodeSource, index: u64, size: u64) -> Result<Vec<Hash>, TlogError> {
    if index >= size {
        return Err(TlogError::OutOfRange { index, size });
    }
    let mut proof = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0u64, size);
    // Walk down from the root, collecting siblings; reversed at the end (leaf first).
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            proof.push(subtree_root(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(subtree_root(src, lo, lo + k)?);
            lo += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof (RFC 6962 §2.1.2) between the trees of `size1` and `size2` leaves.
/// Empty when `size1` is 0 or equal to `size2`.
pub fn consistency_proof(src: &dyn NodeSource, size1: u64, size2: u64) -> Result<Vec<Hash>, TlogError> {
    if size1 > size2 {
        return Err(TlogError::OutOfRange { index: size1, size: size2 });
    }
    let mut proof = Vec::with_capacity(64);
    if size1 == 0 || size1 == size2 {
        return Ok(proof);
    }
    // SUBPROOF(m, D[lo..hi], b), unrolled; siblings collected top-down, reversed at the end.
    let (mut lo, mut hi, mut m, mut whole) = (0u64, size2, size1, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                proof.push(subtree_root(src, lo, hi)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            proof.push(subtree_root(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(subtree_root(src, lo, lo + k)?);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2): does `leaf` sit at `index` in the tree of
/// `size` leaves whose root is `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), TlogError> {
    let computed = root_from_inclusion(leaf, index, size, proof)?;
    if &computed == root { Ok(()) } else { Err(TlogError::ProofFailed("the inclusion proof leads to a different root")) }
}

/// The root an inclusion proof leads to, or an error if the proof's shape does not fit.
pub fn root_from_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash]) -> Result<Hash, TlogError> {
    if index >= size {
        return Err(TlogError::ProofFailed("the index is not below the tree size"));
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return Err(TlogError::ProofFailed("the inclusion proof is too long"));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(TlogError::ProofFailed("the inclusion proof is too short"));
    }
    Ok(r)
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): is the tree (`size2`, `root2`) an
/// append-only extension of (`size1`, `root1`)?
pub fn verify_consistency(size1: u64, size2: u64, root1: &Hash, root2: &Hash, proof: &[Hash]) -> Result<(), TlogError> {
    if size1 > size2 {
        return Err(TlogError::ProofFailed("the first tree is larger than the second"));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(TlogError::ProofFailed("a proof between equal sizes must be empty"));
        }
        return if root1 == root2 { Ok(()) } else { Err(TlogError::ProofFailed("equal sizes with different roots")) };
    }
    if size1 == 0 {
        return if proof.is_empty() { Ok(()) } else { Err(TlogError::ProofFailed("a proof from the empty tree must be empty")) };
    }
    if proof.is_empty() {
        return Err(TlogError::ProofFailed("the consistency proof is empty"));
    }
    let mut path = proof.iter();
    let first = if size1.is_power_of_two() { *root1 } else { *path.next().unwrap_or(root1) };
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in path {
        if s == 0 {
            return Err(TlogError::ProofFailed("the consistency proof is too long"));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(TlogError::ProofFailed("the consistency proof is too short"));
    }
    if &fr != root1 {
        return Err(TlogError::ProofFailed("the consistency proof does not lead to the first root"));
    }
    if &sr != root2 {
        return Err(TlogError::ProofFailed("the consistency proof does not lead to the second root"));
    }
    Ok(())
}

/// A whole tree in memory: every complete subtree hash, level by level. Used as the log's
/// cache of its own tree, by `verify` when it recomputes everything, and in tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends one leaf hash and every subtree it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else { return };
            row.push(h);
            // A new pair completes the subtree above it.
            match row.as_slice() {
                [.., left, right] if row.len() % 2 == 0 => h = node_hash(left, right),
                _ => break,
            }
            level += 1;
        }
    }

    /// Appends many leaf hashes at once, computing the new interior nodes of each level on
    /// all cores. Same result as [`MemoryTree::push`] of each leaf in turn.
    pub fn extend(&mut self, leaves: &[Hash]) {
        if leaves.len() < 4096 {
            leaves.iter().for_each(|h| self.push(*h));
            return;
        }
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        if let Some(leaf_level) = self.levels.first_mut() {
            leaf_level.extend_from_slice(leaves);
        }
        // Invariant: level L+1 holds floor(len(L) / 2) hashes, one per complete pair below.
        let mut level = 0;
        while self.levels.get(level).is_some_and(|row| row.len() >= 2) {
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            let (lower, upper) = self.levels.split_at_mut(level + 1);
            let (Some(row), Some(parents)) = (lower.last(), upper.first_mut()) else { break };
            let first = parents.len();
            let pairs = row.get(2 * first..2 * (row.len() / 2)).unwrap_or_default();
            parents.extend(pair_hashes(pairs));
            level += 1;
        }
    }

    /// The complete-subtree hashes of one level (level 0: the leaf hashes).
    pub fn level(&self, level: u8) -> &[Hash] {
        self.levels.get(usize::from(level)).map_or(&[], |v| v.as_slice())
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, TlogError> {
        root(self, size)
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        root(self, self.size()).unwrap_or_else(|_| Hash::empty())
    }
}

/// `node_hash` of each pair, on every core when there are many.
fn pair_hashes(pairs: &[Hash]) -> Vec<Hash> {
    on_all_cores(pairs, 8192, 2, |c| {
        c.chunks_exact(2)
            .filter_map(|p| match p {
                [left, right] => Some(node_hash(left, right)),
                _ => None,
            })
            .collect()
    })
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash, TlogError> {
        self.levels
            .get(usize::from(level))
            .and_then(|row| row.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(TlogError::MissingNode { level, index })
    }
}
