//! C2SP tlog-tiles: tile coordinates and paths, tile contents, entry bundles (HX-3, HX-4).
//!
//! A tile at level `L` and index `N` holds up to 256 consecutive hashes of tree level `8·L`,
//! starting at hash `256·N`. Full tiles never change, so any static server or object store can
//! mirror them; only the rightmost tile of each level is partial (`.p/<W>`).

use crate::TlogError;
use crate::hash::{Hash, node_hash};

/// Hashes per full tile, and entries per full bundle.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level (`log2(TILE_WIDTH)`).
pub const TILE_HEIGHT: u8 = 8;
/// The longest entry a bundle can hold (its length prefix is a big-endian u16).
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// One tile or entry bundle: level (`None` for an entry bundle), index, and width (1..=256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Tile level (tree level `8·L`), or `None` for an entry bundle.
    pub level: Option<u8>,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes (or entries) in it: 256 for a full tile.
    pub width: u16,
}

impl TileId {
    /// A hash tile.
    pub fn hashes(level: u8, index: u64, width: u16) -> TileId {
        TileId { level: Some(level), index, width }
    }

    /// An entry bundle.
    pub fn entries(index: u64, width: u16) -> TileId {
        TileId { level: None, index, width }
    }

    /// Whether the tile is full (and therefore immutable).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The path below the log's prefix, e.g. `tile/0/x001/x234/067` or `tile/entries/000.p/5`.
    pub fn path(&self) -> String {
        let level = match self.level {
            Some(l) => l.to_string(),
            None => "entries".to_string(),
        };
        let mut p = format!("tile/{level}/{}", encode_index(self.index));
        if !self.is_full() {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses a path written by [`TileId::path`]; anything non-canonical is refused.
    pub fn parse_path(path: &str) -> Result<TileId, TlogError> {
        let bad = |why: &str| TlogError::Malformed { what: "tile path", detail: format!("'{}': {why}", crate::hash::shorten(path)) };
        let rest = path.strip_prefix("tile/").ok_or_else(|| bad("does not start with tile/"))?;
        let (level_text, rest) = rest.split_once('/').ok_or_else(|| bad("no level"))?;
        let level = if level_text == "entries" {
            None
        } else {
            let l: u8 = level_text.parse().map_err(|_| bad("the level is not a small number"))?;
            if l.to_string() != level_text || l > 63 {
                return Err(bad("the level is not canonical"));
            }
            Some(l)
        };
        let (index_text, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let width: u16 = w.parse().map_err(|_| bad("the width is not a number"))?;
                if width == 0 || u64::from(width) >= TILE_WIDTH || width.to_string() != w {
                    return Err(bad("a partial width must be 1 to 255"));
                }
                (i, width)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let index = decode_index(index_text).ok_or_else(|| bad("the index is not in x000/…/000 form"))?;
        Ok(TileId { level, index, width })
    }
}

/// Writes a tile index in groups of three digits, `x`-prefixed except the last.
pub fn encode_index(mut n: u64) -> String {
    let mut out = format!("{:03}", n % 1000);
    n /= 1000;
    while n > 0 {
        out = format!("x{:03}/{out}", n % 1000);
        n /= 1000;
    }
    out
}

fn decode_index(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split('/').collect();
    let (last, groups) = parts.split_last()?;
    let mut n: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let digits = g.strip_prefix('x')?;
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) || (i == 0 && digits == "000") {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    if last.len() != 3 || !last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.checked_mul(1000)?.checked_add(last.parse().ok()?)
}

/// Every tile (hash tiles of each level, then entry bundles) of a tree of `size` leaves.
pub fn tiles_for_size(size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    let mut level = 0u8;
    loop {
        let hashes = if u32::from(level) * 8 >= 64 { 0 } else { size >> (u32::from(level) * 8) };
        if hashes == 0 {
            break;
        }
        push_level(&mut out, Some(level), hashes);
        level += 1;
    }
    push_level(&mut out, None, size);
    out
}

fn push_level(out: &mut Vec<TileId>, level: Option<u8>, count: u64) {
    for i in 0..count / TILE_WIDTH {
        out.push(TileId { level, index: i, width: TILE_WIDTH as u16 });
    }
    if !count.is_multiple_of(TILE_WIDTH) {
        out.push(TileId { level, index: count / TILE_WIDTH, width: (count % TILE_WIDTH) as u16 });
    }
}

/// The tiles whose contents change when a tree grows from `old` to `new` leaves: every tile of
/// the new tree that did not exist, with the same width, in the old one.
pub fn tiles_changed(old: u64, new: u64) -> Vec<TileId> {
    let before: std::collections::HashSet<TileId> = tiles_for_size(old).into_iter().collect();
    tiles_for_size(new).into_iter().filter(|t| !before.contains(t)).collect()
}

/// Concatenated hashes, as a hash tile's bytes.
pub fn encode_hashes(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

/// A hash tile's bytes as hashes; the length must be 32 × width.
pub fn decode_hashes(bytes: &[u8], width: u16) -> Result<Vec<Hash>, TlogError> {
    if bytes.len() != 32 * usize::from(width) {
        return Err(TlogError::Malformed {
            what: "hash tile",
            detail: format!("{} bytes where {} hashes need {}", bytes.len(), width, 32 * usize::from(width)),
        });
    }
    Ok(bytes.chunks_exact(32).map(|c| Hash(c.try_into().unwrap_or([0; 32]))).collect())
}

/// An entry bundle: each entry as a big-endian u16 length and its bytes.
pub fn encode_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, TlogError> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| TlogError::EntryTooLong(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// The entries of a bundle; errors name the entry where the bytes stop making sense.
pub fn decode_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, TlogError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(TlogError::Malformed { what: "entry bundle", detail: format!("entry {} has a truncated length", out.len()) });
        };
        let len = usize::from(u16::from_be_bytes(*len));
        let Some((entry, after)) = tail.split_at_checked(len) else {
            return Err(TlogError::Malformed {
                what: "entry bundle",
                detail: format!("entry {} claims {len} bytes but {} remain", out.len(), tail.len()),
            });
        };
        out.push(entry);
        rest = after;
    }
    Ok(out)
}

/// The root of a run of `2^k` hashes (k ≤ 8): how a level-`8L` tile yields the hashes of
/// levels `8L+1 … 8L+8`.
pub fn fold(hashes: &[Hash]) -> Hash {
    match hashes {
        [] => Hash::empty(),
        [one] => *one,
        _ => {
            let n = hashes.len();
            let k = if n.is_power_of_two() { n / 2 } else { 1usize << (usize::BITS - 1 - (n - 1).leading_zeros()) };
            let (left, right) = hashes.split_at(k);
            node_hash(&fold(left), &fold(right))
        }
    }
}
