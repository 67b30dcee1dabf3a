//! RFC 6962 hashing: leaves, interior nodes, the empty tree (HX-8).

use crate::TlogError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The root of the empty tree: `SHA-256("")`.
    pub fn empty() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// Standard base64, as checkpoints and proof files write it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a hash written in hex (64 digits) or standard base64 (44 characters).
    pub fn parse(text: &str) -> Result<Hash, TlogError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) { hex::decode(t).ok() } else { STANDARD.decode(t).ok() };
        match bytes {
            Some(b) if b.len() == 32 => Ok(Hash(b.try_into().unwrap_or([0; 32]))),
            _ => Err(TlogError::Malformed {
                what: "hash",
                detail: format!("'{}' is neither 64 hex digits nor 32 bytes of base64", shorten(t)),
            }),
        }
    }

    /// Reads exactly 32 bytes of standard base64 (the form inside notes and proofs).
    pub fn from_base64(text: &str) -> Option<Hash> {
        let b = STANDARD.decode(text).ok()?;
        Some(Hash(b.try_into().ok()?))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash(h.finalize().into())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(&left.0);
    buf[33..].copy_from_slice(&right.0);
    Hash(Sha256::digest(buf).into())
}

/// The shape both C2SP tlog-proof files and tlog-witness requests share: header lines, one
/// base64 hash a line, a blank line, then the signed checkpoint's bytes.
pub fn lines_hashes_note(header: String, hashes: &[Hash], note: &[u8]) -> Vec<u8> {
    let mut s = header;
    for h in hashes {
        s.push_str(&h.to_base64());
        s.push('\n');
    }
    s.push('\n');
    let mut out = s.into_bytes();
    out.extend_from_slice(note);
    out
}

/// At most 80 characters of untrusted text, for error messages.
pub fn shorten(t: &str) -> String {
    if t.chars().count() <= 80 { t.to_string() } else { format!("{}…", t.chars().take(80).collect::<String>()) }
}

/// Applies `f` to consecutive chunks of `items` on every core and concatenates the results in
/// order. Each chunk holds a multiple of `align` items (2 for pairs of nodes); below `min`
/// items the work stays on the calling thread.
pub fn on_all_cores<T: Sync, R: Send>(items: &[T], min: usize, align: usize, f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    if items.len() < min {
        return f(items);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let chunk = items.len().div_ceil(align * threads) * align;
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items.chunks(chunk).map(|c| s.spawn(move || f(c))).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}
