//! Checking a mirror's files before any of them is used or stored (HX-8).
//!
//! A mirror is not trusted. Its checkpoint is opened under the log's key and witness policy
//! ([`crate::open_checkpoint`]); then its level-0 hash tiles must reproduce that checkpoint's
//! root ([`CheckedTree::from_leaf_tiles`]) — 32 bytes per entry of a log that really has that
//! many entries — and from then on every other file it serves is checked against that tree
//! ([`CheckedTree::check`]) before it is kept: a bundle entry by entry, a hash tile hash by
//! hash. A lying mirror is refused at the first file that lies, having cost the size of that
//! one file, not the size of every file it could claim.

use crate::TlogError;
use crate::checkpoint::{SignedCheckpoint, open_checkpoint};
use crate::hash::{Hash, leaf_hash};
use crate::merkle::MemoryTree;
use crate::note::VerifierKey;
use crate::tile::{TILE_HEIGHT, TILE_WIDTH, TileId, decode_bundle, decode_hashes, tiles_for_size};

/// Whom a checkpoint must come from: the log's key, and the witness policy its checkpoints are
/// published under (a checkpoint the log signed but the witnesses did not cosign is not one).
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// The log's verifier key.
    pub log_key: &'a VerifierKey,
    /// The witnesses' keys.
    pub witnesses: &'a [VerifierKey],
    /// How many of them must have cosigned.
    pub min_witnesses: usize,
}

impl Trust<'_> {
    /// Opens a checkpoint under this trust.
    pub fn open(&self, bytes: &[u8]) -> Result<SignedCheckpoint, TlogError> {
        open_checkpoint(bytes, self.log_key, self.witnesses, self.min_witnesses)
    }
}

/// The tree of a signed checkpoint, rebuilt from a mirror's level-0 hash tiles and checked
/// against the checkpoint's root.
#[derive(Debug)]
pub struct CheckedTree {
    tree: MemoryTree,
}

impl CheckedTree {
    /// The level-0 tiles a tree of `size` leaves is published as, in order: what
    /// [`CheckedTree::from_leaf_tiles`] needs.
    pub fn leaf_tiles(size: u64) -> Vec<TileId> {
        tiles_for_size(size).into_iter().filter(|t| t.level == Some(0)).collect()
    }

    /// Rebuilds the tree from the level-0 tiles of a tree of `size` leaves (`tiles`, in the
    /// order of [`CheckedTree::leaf_tiles`]) and checks that it has `root`.
    pub fn from_leaf_tiles(size: u64, root: &Hash, tiles: &[(TileId, Vec<u8>)]) -> Result<CheckedTree, TlogError> {
        let want = Self::leaf_tiles(size);
        if tiles.len() != want.len() || tiles.iter().zip(&want).any(|((t, _), w)| t != w) {
            return Err(TlogError::Malformed {
                what: "mirror",
                detail: format!("the level-0 tiles of a tree of {size} leaves are {} files; {} were given", want.len(), tiles.len()),
            });
        }
        let mut tree = MemoryTree::new();
        for (t, bytes) in tiles {
            let hashes =
                decode_hashes(bytes, t.width).map_err(|e| TlogError::Malformed { what: "mirror", detail: format!("{}: {e}", t.path()) })?;
            tree.extend(&hashes);
        }
        if tree.size() != size || tree.root_at(size)? != *root {
            return Err(TlogError::ProofFailed("the mirror's hash tiles do not reproduce the root of its signed checkpoint"));
        }
        Ok(CheckedTree { tree })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Checks one file of the mirror (a hash tile or an entry bundle) against the tree: it must
    /// be exactly the file a log of this tree publishes at that path.
    pub fn check(&self, t: &TileId, bytes: &[u8]) -> Result<(), TlogError> {
        let width = usize::from(t.width);
        let start = usize::try_from(t.index.saturating_mul(TILE_WIDTH)).unwrap_or(usize::MAX);
        let level = t.level.map_or(0, |l| l.saturating_mul(TILE_HEIGHT));
        let want = self.tree.level(level).get(start..start.saturating_add(width)).ok_or_else(|| TlogError::OutOfRange {
            index: t.index.saturating_mul(TILE_WIDTH).saturating_add(u64::from(t.width)),
            size: self.tree.size(),
        })?;
        match t.level {
            Some(_) => {
                if decode_hashes(bytes, t.width)?.as_slice() != want {
                    return Err(TlogError::ProofFailed("a hash tile of the mirror does not match its checked tree"));
                }
            }
            None => {
                let entries = decode_bundle(bytes)?;
                if entries.len() != width || entries.iter().zip(want).any(|(e, h)| leaf_hash(e) != *h) {
                    return Err(TlogError::ProofFailed("an entry bundle of the mirror does not match its checked hash tiles"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::{encode_bundle, encode_hashes};

    fn log(n: usize) -> (Vec<Vec<u8>>, MemoryTree) {
        let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("entry {i}").into_bytes()).collect();
        let mut tree = MemoryTree::new();
        for e in &entries {
            tree.push(leaf_hash(e));
        }
        (entries, tree)
    }

    fn leaf_tiles(tree: &MemoryTree) -> Vec<(TileId, Vec<u8>)> {
        CheckedTree::leaf_tiles(tree.size())
            .into_iter()
            .map(|t| {
                let s = (t.index * TILE_WIDTH) as usize;
                (t, encode_hashes(&tree.level(0)[s..s + usize::from(t.width)]))
            })
            .collect()
    }

    #[test]
    fn true_files_pass_and_lies_are_named() {
        let (entries, tree) = log(600);
        let root = tree.root_at(600).unwrap();
        let tiles = leaf_tiles(&tree);
        let checked = CheckedTree::from_leaf_tiles(600, &root, &tiles).unwrap();
        let bundle = TileId::entries(1, 256);
        let good = encode_bundle(entries[256..512].iter().map(Vec::as_slice)).unwrap();
        checked.check(&bundle, &good).unwrap();
        let mut bad_entries = entries[256..512].to_vec();
        bad_entries[3] = vec![b'x'; 65_535];
        let bad = encode_bundle(bad_entries.iter().map(Vec::as_slice)).unwrap();
        assert!(matches!(checked.check(&bundle, &bad), Err(TlogError::ProofFailed(_))));
        // A partial bundle of the right width, and one of a width the tree does not have.
        let partial = TileId::entries(2, 88);
        checked.check(&partial, &encode_bundle(entries[512..600].iter().map(Vec::as_slice)).unwrap()).unwrap();
        assert!(checked.check(&TileId::entries(2, 89), &[]).is_err());
        // Hash tiles of a higher level.
        let upper = TileId::hashes(1, 0, 2);
        checked.check(&upper, &encode_hashes(&tree.level(8)[0..2])).unwrap();
        assert!(checked.check(&upper, &encode_hashes(&tree.level(8)[0..1].repeat(2))).is_err());
    }

    #[test]
    fn hash_tiles_must_reproduce_the_signed_root() {
        let (_, tree) = log(300);
        let root = tree.root_at(300).unwrap();
        let mut tiles = leaf_tiles(&tree);
        assert!(CheckedTree::from_leaf_tiles(300, &Hash::empty(), &tiles).is_err());
        assert!(CheckedTree::from_leaf_tiles(301, &root, &tiles).is_err());
        assert!(CheckedTree::from_leaf_tiles(300, &root, &tiles[..1]).is_err());
        tiles[0].1[5] ^= 1;
        assert!(CheckedTree::from_leaf_tiles(300, &root, &tiles).is_err());
    }
}
