//! Pseudonym keys: HMAC-SHA-256 over the identifying fields that define the NDB's hashed IDs.
//!
//! | ID  | input (data.md §3) |
//! |-----|--------------------|
//! | ID1 | 保険者番号 + 被保険者証記号・番号 + 生年月日 + 性別 |
//! | ID2 | 氏名 + 生年月日 + 性別 |
//! | ID4 | カナ氏名 + 生年月日 + 性別 |
//! | ID5 | the oldest 個人単位被保険者番号 |
//!
//! The NDB hashes these fields; Kura keys the hash (HMAC) so that nobody without the platform
//! pseudonym key can test a guessed name or insurance number against an ID (NET-5). ID5 is then
//! re-hashed per project ([`PseudonymKey::for_project`]), as the NDB re-hashes ID5 for each
//! release, so two projects cannot join their outputs by identifier (HIC-L1).

use crate::{KEY_LEN, SecretKey};
use aes_gcm::aes::cipher::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

type HmacSha256 = Hmac<Sha256>;

/// Which hashed ID to compute; part of the HMAC input, so equal inputs give unrelated IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// 保険者番号 + 記号・番号 + 生年月日 + 性別.
    Id1,
    /// 氏名 + 生年月日 + 性別.
    Id2,
    /// カナ氏名 + 生年月日 + 性別.
    Id4,
    /// The oldest 個人単位被保険者番号.
    Id5,
}

impl IdKind {
    fn label(self) -> &'static [u8] {
        match self {
            IdKind::Id1 => b"ID1",
            IdKind::Id2 => b"ID2",
            IdKind::Id4 => b"ID4",
            IdKind::Id5 => b"ID5",
        }
    }
}

/// Normalises one identifying field the way Kura's generator and intake both do before
/// hashing (data.md §3: MHLW's own rule is not published, so this one is Kura's):
///
/// - Unicode NFKC: full-width letters and digits (`１９Ｄ`) become ASCII, half-width kana
///   (`ｻﾄｳ`) full-width (`サトウ`), and the ideographic space U+3000 an ASCII space;
/// - dash-like characters (‐ ‑ − －, and ー between two digits) become `-`, so that the CP932
///   minus sign 0x817C hashes alike whichever decoder read it;
/// - runs of spaces become one space, and spaces at either end go.
///
/// One space between 姓 and 名 is **kept**: the NDB's IDs differ between `佐藤 太郎` and
/// `佐藤太郎` (Okamoto, J Epidemiol 2014), and Kura's IDs link exactly as the NDB's would, so
/// that linkage studies see the same breaks.
pub fn normalise_id_field(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let nfkc: Vec<char> = s.nfkc().collect();
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for (i, &c) in nfkc.iter().enumerate() {
        let digit_at = |j: Option<usize>| j.and_then(|j| nfkc.get(j)).is_some_and(char::is_ascii_digit);
        let c = match c {
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}' => '-',
            'ー' if digit_at(i.checked_sub(1)) && digit_at(i.checked_add(1)) => '-',
            c => c,
        };
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

/// Joins identifying fields with U+001F (unit separator), so that field boundaries cannot be
/// shifted to forge a collision ("AB"+"C" ≠ "A"+"BC").
pub fn canonical_id_input(fields: &[&str]) -> String {
    fields.join("\u{1f}")
}

/// An HMAC-SHA-256 pseudonym key (the platform's, or one derived for a project).
#[derive(Clone, Debug)]
pub struct PseudonymKey(SecretKey);

impl PseudonymKey {
    /// Wraps a secret key as a pseudonym key.
    pub fn new(key: SecretKey) -> Self {
        Self(key)
    }

    /// The key's bytes, to hand a project's key to the worker that serves the project (over a
    /// pipe, never on disk). Never call it on the platform key.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        self.0.expose()
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104): new_from_slice cannot fail")]
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.0.expose()).expect("HMAC accepts any key length");
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The hashed ID of `kind` for the canonical input, as 64 lowercase hex characters.
    pub fn hash_id(&self, kind: IdKind, canonical_input: &str) -> String {
        hex::encode(self.mac(&[b"kura/id/v1\0", kind.label(), b"\0", canonical_input.as_bytes()]))
    }

    /// Derives the pseudonym key of one project (workspace) from this platform key.
    pub fn for_project(&self, project_id: &str) -> PseudonymKey {
        let k: [u8; KEY_LEN] = self.mac(&[b"kura/project-key/v1\0", project_id.as_bytes()]);
        PseudonymKey(SecretKey::from_bytes(k))
    }

    /// The permutation of 64-bit record identifiers (receipt, checkup, claim ids) for this
    /// project: call it on a key from [`PseudonymKey::for_project`]. Its AES key is derived
    /// from this key, so two projects number the same record differently.
    pub fn id_permutation(&self) -> IdPermutation {
        let mut k = self.mac(&[b"kura/record-id/v1\0"]);
        let mut key = [0u8; 16];
        for (d, s) in key.iter_mut().zip(k.iter()) {
            *d = *s;
        }
        k.zeroize();
        let p = IdPermutation(aes_gcm::aes::Aes128::new(&key.into()));
        key.zeroize();
        p
    }

    /// The keyed order of a project's extract (call it on a key from
    /// [`PseudonymKey::for_project`]): rows are sorted by [`RowOrder::key`] of their encoded
    /// values (after the project's pseudonym, where the extract clusters by it), so the
    /// extract's order says nothing of the platform's order and two projects order the same
    /// rows differently.
    pub fn row_order(&self) -> RowOrder {
        let mut k = self.mac(&[b"kura/row-order/v1\0"]);
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104): new_from_slice cannot fail")]
        let mac = <HmacSha256 as Mac>::new_from_slice(&k).expect("HMAC accepts any key length");
        k.zeroize();
        RowOrder(mac)
    }

    /// Re-hashes a platform pseudonym (e.g. ID5) into this project's pseudonym space.
    /// Call it on a key from [`PseudonymKey::for_project`].
    pub fn rehash(&self, platform_pseudonym: &str) -> String {
        hex::encode(self.mac(&[b"kura/rehash/v1\0", platform_pseudonym.as_bytes()]))
    }
}

/// A keyed sort key for rows (HMAC-SHA-256 of the row's encoding, its first 64 bits): see
/// [`PseudonymKey::row_order`].
#[derive(Clone)]
pub struct RowOrder(HmacSha256);

impl std::fmt::Debug for RowOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RowOrder(<redacted>)")
    }
}

impl RowOrder {
    /// The sort key of one row's encoded values.
    pub fn key(&self, row: &[u8]) -> u64 {
        let mut mac = self.0.clone();
        mac.update(row);
        let out = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        for (d, s) in first.iter_mut().zip(out.iter()) {
            *d = *s;
        }
        u64::from_be_bytes(first)
    }
}

/// A keyed permutation of 64-bit identifiers: a four-round Feistel network over the two
/// 32-bit halves whose round function is AES-128 (a CRYPTREC-listed cipher). Every identifier
/// maps to exactly one other (joins on it stay exact, no two records merge); without the key
/// the mapping cannot be computed or undone.
#[derive(Clone)]
pub struct IdPermutation(aes_gcm::aes::Aes128);

impl std::fmt::Debug for IdPermutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdPermutation(<redacted>)")
    }
}

/// Feistel rounds: four make the network a strong pseudorandom permutation (Luby–Rackoff).
const ROUNDS: u8 = 4;

impl IdPermutation {
    fn round(&self, round: u8, half: u32) -> u32 {
        use aes_gcm::aes::cipher::BlockEncrypt;
        let [h0, h1, h2, h3] = half.to_be_bytes();
        let mut b = [round, h0, h1, h2, h3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0].into();
        self.0.encrypt_block(&mut b);
        let out: [u8; 16] = b.into();
        let [o0, o1, o2, o3, ..] = out;
        u32::from_be_bytes([o0, o1, o2, o3])
    }

    /// The identifier's image.
    pub fn apply(&self, x: u64) -> u64 {
        let (mut l, mut r) = ((x >> 32) as u32, x as u32);
        for i in 0..ROUNDS {
            (l, r) = (r, l ^ self.round(i, r));
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    /// The identifier whose image is `y` (for tests and audits holding the key).
    pub fn invert(&self, y: u64) -> u64 {
        let (mut l, mut r) = ((y >> 32) as u32, y as u32);
        for i in (0..ROUNDS).rev() {
            (l, r) = (r ^ self.round(i, l), l);
        }
        (u64::from(l) << 32) | u64::from(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PseudonymKey {
        PseudonymKey::new(SecretKey::from_bytes([42u8; 32]))
    }

    #[test]
    fn identifying_fields_normalise_as_data_md_says() {
        // Full-width digits and letters of 記号・番号 (every UKE sample writes them so).
        assert_eq!(normalise_id_field("１９Ｄ０００１"), "19D0001");
        // Half-width kana become full-width, the ideographic space one ASCII space.
        assert_eq!(normalise_id_field("ｻﾄｳ　ﾀﾛｳ"), "サトウ タロウ");
        assert_eq!(normalise_id_field("ｶﾞｯｺｳ"), "ガッコウ");
        // Spaces: runs become one, the ends go; none is added where there was none.
        assert_eq!(normalise_id_field("  佐藤　　太郎 "), "佐藤 太郎");
        assert_eq!(normalise_id_field("佐藤太郎"), "佐藤太郎");
        // The CP932 minus 0x817C (U+FF0D) and strict Shift_JIS's U+2212 fold alike; the long
        // vowel mark folds only between digits.
        assert_eq!(normalise_id_field("12\u{ff0d}34"), "12-34");
        assert_eq!(normalise_id_field("12\u{2212}34"), "12-34");
        assert_eq!(normalise_id_field("12ー34"), "12-34");
        assert_eq!(normalise_id_field("サトー"), "サトー");
        // 6-digit 国保 numbers right-aligned in 8 characters.
        assert_eq!(normalise_id_field("  133066"), "133066");
    }

    #[test]
    fn ids_are_64_hex_deterministic_and_kind_separated() {
        let k = key();
        let input = canonical_id_input(&["山田 花子", "19800101", "2"]);
        let a = k.hash_id(IdKind::Id2, &input);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(a, k.hash_id(IdKind::Id2, &input));
        assert_ne!(a, k.hash_id(IdKind::Id4, &input));
        // Field boundaries matter.
        assert_ne!(k.hash_id(IdKind::Id1, &canonical_id_input(&["AB", "C"])), k.hash_id(IdKind::Id1, &canonical_id_input(&["A", "BC"])));
    }

    #[test]
    fn record_ids_are_permuted_per_project() {
        let platform = key();
        let a = platform.for_project("PRJ-000001").id_permutation();
        let b = platform.for_project("PRJ-000002").id_permutation();
        let mut seen = std::collections::HashSet::new();
        for x in (0..2000u64).chain([u64::MAX, 1 << 40]) {
            let y = a.apply(x);
            assert_eq!(a.invert(y), x);
            assert!(seen.insert(y), "a permutation: no two ids meet");
            assert_ne!(y, b.apply(x), "another project numbers records differently");
        }
        assert_eq!(a.apply(42), platform.for_project("PRJ-000001").id_permutation().apply(42), "deterministic");
        assert_eq!(format!("{a:?}"), "IdPermutation(<redacted>)");
    }

    #[test]
    fn matches_hmac_sha256_definition() {
        // HMAC-SHA-256 RFC 4231 test case 2 through the same primitive.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac.finalize().into_bytes()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn row_order_is_keyed_per_project_and_deterministic() {
        let platform = key();
        let a = platform.for_project("PRJ-000001").row_order();
        let b = platform.for_project("PRJ-000002").row_order();
        let rows: Vec<Vec<u8>> = (0u32..200).map(|i| i.to_be_bytes().to_vec()).collect();
        let order = |o: &RowOrder| {
            let mut idx: Vec<usize> = (0..rows.len()).collect();
            idx.sort_by_key(|&i| o.key(&rows[i]));
            idx
        };
        let (oa, ob) = (order(&a), order(&b));
        let stored: Vec<usize> = (0..rows.len()).collect();
        let same = |x: &[usize], y: &[usize]| x.iter().zip(y).filter(|(p, q)| p == q).count();
        // A random order keeps about one row of 200 in place; allow a few.
        assert!(same(&oa, &stored) < 10 && same(&ob, &stored) < 10 && same(&oa, &ob) < 10);
        assert_eq!(oa, order(&platform.for_project("PRJ-000001").row_order()), "deterministic");
        assert_eq!(format!("{a:?}"), "RowOrder(<redacted>)");
    }

    #[test]
    fn project_pseudonyms_do_not_join_across_projects() {
        let platform = key();
        let id5 = platform.hash_id(IdKind::Id5, "0613306612345601");
        let p1 = platform.for_project("project-A");
        let p2 = platform.for_project("project-B");
        let a = p1.rehash(&id5);
        let b = p2.rehash(&id5);
        assert_ne!(a, b);
        assert_ne!(a, id5);
        assert_eq!(a, platform.for_project("project-A").rehash(&id5));
        assert_eq!(a.len(), 64);
    }
}
