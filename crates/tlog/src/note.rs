//! C2SP signed notes: text signed by one or more keys (HX-10). Kura signs checkpoints with
//! Ed25519 (type `0x01`) or ECDSA P-256 (type `0x02`), and witnesses cosign with timestamped
//! Ed25519 (type `0x04`, C2SP tlog-cosignature). Keys are written in the `name+id+key` form.

use crate::TlogError;
use crate::hash::shorten;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The most signatures a note may carry (the spec asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// The longest note Kura reads.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// The DER prefix of a P-256 SubjectPublicKeyInfo before its 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
    0x07, 0x03, 0x42, 0x00,
];

/// Signature types of the signed-note registry that Kura speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigType {
    /// `0x01`: Ed25519 over the note text.
    Ed25519,
    /// `0x02`: ECDSA P-256 with SHA-256, ASN.1 DER signature; the key is a DER SPKI.
    EcdsaP256,
    /// `0x04`: timestamped Ed25519 witness cosignature (C2SP tlog-cosignature v1).
    Cosignature,
}

impl SigType {
    /// The type's identifier byte.
    pub fn byte(self) -> u8 {
        match self {
            SigType::Ed25519 => 0x01,
            SigType::EcdsaP256 => 0x02,
            SigType::Cosignature => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<SigType> {
        match b {
            0x01 => Some(SigType::Ed25519),
            0x02 => Some(SigType::EcdsaP256),
            0x04 => Some(SigType::Cosignature),
            _ => None,
        }
    }
}

/// Whether a key name is valid: non-empty, no spaces of any kind, no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// `SHA-256(name || 0x0A || type || public key)[:4]` as a big-endian u32.
pub fn key_id(name: &str, kind: SigType, public: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind.byte()]);
    h.update(public);
    let d: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn malformed(what: &'static str, detail: impl Into<String>) -> TlogError {
    TlogError::Malformed { what, detail: detail.into() }
}

/// A public key that verifies note signatures: `name+hexid+base64(type || key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// Key name (for a checkpoint signer: the log's origin).
    pub name: String,
    /// Key ID.
    pub id: u32,
    /// Signature type.
    pub kind: SigType,
    /// Ed25519: the 32-byte key; ECDSA: the DER SubjectPublicKeyInfo.
    pub public: Vec<u8>,
}

impl VerifierKey {
    /// Parses `name+hexid+base64(type || key)`, checking that the ID matches the key.
    pub fn parse(text: &str) -> Result<VerifierKey, TlogError> {
        let t = text.trim();
        let mut parts = t.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("verifier key", format!("'{}' is not name+id+key", shorten(t))));
        };
        if !is_valid_key_name(name) {
            return Err(malformed("verifier key", format!("invalid key name '{}'", shorten(name))));
        }
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("verifier key", format!("key ID '{}' is not 8 hex digits", shorten(id_hex))));
        }
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| malformed("verifier key", "bad key ID"))?;
        let raw = STANDARD.decode(key_b64).map_err(|_| malformed("verifier key", "the key is not base64"))?;
        let (&type_byte, public) = raw.split_first().ok_or_else(|| malformed("verifier key", "empty key"))?;
        let kind = SigType::from_byte(type_byte)
            .ok_or_else(|| malformed("verifier key", format!("unsupported signature type 0x{type_byte:02x}")))?;
        match kind {
            SigType::Ed25519 | SigType::Cosignature if public.len() != 32 => {
                return Err(malformed("verifier key", "an Ed25519 key has 32 bytes"));
            }
            SigType::EcdsaP256 if public.len() != 91 || !public.starts_with(&P256_SPKI_PREFIX) => {
                return Err(malformed("verifier key", "only ECDSA P-256 keys (uncompressed SPKI) are accepted"));
            }
            _ => {}
        }
        if key_id(name, kind, public) != id {
            return Err(malformed("verifier key", format!("key ID {id_hex} does not match the key")));
        }
        Ok(VerifierKey { name: name.to_string(), id, kind, public: public.to_vec() })
    }

    /// Checks one signature (the bytes after the key ID) over `text`. For a cosignature,
    /// returns its timestamp.
    pub fn verify(&self, text: &[u8], signature: &[u8]) -> Result<Option<u64>, TlogError> {
        let bad = || TlogError::BadSignature { key: self.name.clone() };
        match self.kind {
            SigType::Ed25519 => {
                UnparsedPublicKey::new(&sig::ED25519, &self.public).verify(text, signature).map(|_| None).map_err(|_| bad())
            }
            SigType::EcdsaP256 => {
                let point = self.public.get(P256_SPKI_PREFIX.len()..).ok_or_else(bad)?;
                UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, point).verify(text, signature).map(|_| None).map_err(|_| bad())
            }
            SigType::Cosignature => {
                if signature.len() != 72 {
                    return Err(bad());
                }
                let (time, signature) = signature.split_first_chunk::<8>().ok_or_else(bad)?;
                let time = u64::from_be_bytes(*time);
                if time > i64::MAX as u64 {
                    return Err(bad());
                }
                let msg = cosignature_message(time, text);
                UnparsedPublicKey::new(&sig::ED25519, &self.public).verify(&msg, signature).map(|_| Some(time)).map_err(|_| bad())
            }
        }
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![self.kind.byte()];
        raw.extend_from_slice(&self.public);
        write!(f, "{}+{:08x}+{}", self.name, self.id, STANDARD.encode(raw))
    }
}

/// The message a v1 cosignature signs: `cosignature/v1\ntime <t>\n` then the checkpoint body.
pub fn cosignature_message(time: u64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {time}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// A private key that signs notes. Its text form, `PRIVATE+KEY+name+id+base64(type || secret)`,
/// is secret; the secret is an Ed25519 seed or an ECDSA PKCS#8 document.
pub struct SignerKey {
    name: String,
    kind: SigType,
    secret: Zeroizing<Vec<u8>>,
    verifier: VerifierKey,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({}, {:?}, secret withheld)", self.verifier, self.kind)
    }
}

impl SignerKey {
    /// A fresh key of the given type from the system's random source.
    pub fn generate(name: &str, kind: SigType) -> Result<SignerKey, TlogError> {
        if !is_valid_key_name(name) {
            return Err(malformed("key name", format!("'{}' must be non-empty, without spaces or '+'", shorten(name))));
        }
        let rng = SystemRandom::new();
        let secret = match kind {
            SigType::Ed25519 | SigType::Cosignature => {
                let mut seed = Zeroizing::new(vec![0u8; 32]);
                rng.fill(&mut seed).map_err(|_| TlogError::Crypto("no randomness"))?;
                seed
            }
            SigType::EcdsaP256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| TlogError::Crypto("ECDSA key generation failed"))?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
        };
        SignerKey::from_secret(name, kind, secret)
    }

    fn from_secret(name: &str, kind: SigType, secret: Zeroizing<Vec<u8>>) -> Result<SignerKey, TlogError> {
        let public = match kind {
            SigType::Ed25519 | SigType::Cosignature => {
                let kp = Ed25519KeyPair::from_seed_unchecked(&secret).map_err(|_| malformed("signer key", "bad Ed25519 seed"))?;
                kp.public_key().as_ref().to_vec()
            }
            SigType::EcdsaP256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &secret, &SystemRandom::new())
                    .map_err(|_| malformed("signer key", "bad ECDSA P-256 PKCS#8 key"))?;
                let mut spki = P256_SPKI_PREFIX.to_vec();
                spki.extend_from_slice(kp.public_key().as_ref());
                spki
            }
        };
        let verifier = VerifierKey { name: name.to_string(), id: key_id(name, kind, &public), kind, public };
        Ok(SignerKey { name: name.to_string(), kind, secret, verifier })
    }

    /// Parses the secret text form.
    pub fn parse(text: &str) -> Result<SignerKey, TlogError> {
        let t = text.trim();
        let rest = t.strip_prefix("PRIVATE+KEY+").ok_or_else(|| malformed("signer key", "does not start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("signer key", "not PRIVATE+KEY+name+id+key"));
        };
        if !is_valid_key_name(name) {
            return Err(malformed("signer key", "invalid key name"));
        }
        let raw = Zeroizing::new(STANDARD.decode(b64).map_err(|_| malformed("signer key", "the key is not base64"))?);
        let (&type_byte, secret) = raw.split_first().ok_or_else(|| malformed("signer key", "empty key"))?;
        let kind = SigType::from_byte(type_byte)
            .ok_or_else(|| malformed("signer key", format!("unsupported signature type 0x{type_byte:02x}")))?;
        let key = SignerKey::from_secret(name, kind, Zeroizing::new(secret.to_vec()))?;
        if format!("{:08x}", key.verifier.id) != id_hex.to_ascii_lowercase() {
            return Err(malformed("signer key", "the key ID does not match the key"));
        }
        Ok(key)
    }

    /// The secret text form (store it only where the owner alone can read it).
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(vec![self.kind.byte()]);
        raw.extend_from_slice(&self.secret);
        Zeroizing::new(format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.verifier.id, STANDARD.encode(&*raw)))
    }

    /// The matching public key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs a note text (for a cosignature key: cosigns it at `time`, Unix seconds).
    pub fn sign_at(&self, text: &[u8], time: u64) -> Result<NoteSignature, TlogError> {
        let bytes = match self.kind {
            SigType::Ed25519 => {
                let kp = Ed25519KeyPair::from_seed_unchecked(&self.secret).map_err(|_| TlogError::Crypto("bad Ed25519 seed"))?;
                kp.sign(text).as_ref().to_vec()
            }
            SigType::EcdsaP256 => {
                let rng = SystemRandom::new();
                let kp = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &self.secret, &rng)
                    .map_err(|_| TlogError::Crypto("bad ECDSA key"))?;
                kp.sign(&rng, text).map_err(|_| TlogError::Crypto("ECDSA signing failed"))?.as_ref().to_vec()
            }
            SigType::Cosignature => {
                let kp = Ed25519KeyPair::from_seed_unchecked(&self.secret).map_err(|_| TlogError::Crypto("bad Ed25519 seed"))?;
                let mut b = time.to_be_bytes().to_vec();
                b.extend_from_slice(kp.sign(&cosignature_message(time, text)).as_ref());
                b
            }
        };
        Ok(NoteSignature { name: self.name.clone(), id: self.verifier.id, bytes })
    }

    /// Signs a note text now.
    pub fn sign(&self, text: &[u8]) -> Result<NoteSignature, TlogError> {
        self.sign_at(text, unix_now())
    }
}

/// Seconds since the Unix epoch, from the one clock Kura uses.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One signature line: `— name base64(keyID || signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub id: u32,
    /// The signature bytes after the key ID.
    pub bytes: Vec<u8>,
}

impl NoteSignature {
    /// The line, with its final newline.
    pub fn line(&self) -> String {
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.bytes);
        format!("\u{2014} {} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// What one trusted signature of a note said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub id: u32,
    /// Signature type.
    pub kind: SigType,
    /// A cosignature's timestamp.
    pub time: Option<u64>,
}

/// A signed note: its text (ending in a newline) and signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    /// The signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note with no signatures yet; the text must end in a newline.
    pub fn new(text: &str) -> Result<Note, TlogError> {
        check_text(text)?;
        if !text.ends_with('\n') {
            return Err(malformed("note", "the text must end with a newline"));
        }
        Ok(Note { text: text.to_string(), signatures: Vec::new() })
    }

    /// Parses a signed note, strictly: UTF-8, no control characters but newline, at most
    /// [`MAX_SIGNATURES`] signatures and [`MAX_NOTE_BYTES`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Note, TlogError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(malformed("note", format!("{} bytes, more than the {} allowed", bytes.len(), MAX_NOTE_BYTES)));
        }
        let s = std::str::from_utf8(bytes).map_err(|e| malformed("note", format!("not UTF-8 at byte {}", e.valid_up_to())))?;
        check_text(s)?;
        let split = s.rfind("\n\n").ok_or_else(|| malformed("note", "no blank line before the signatures"))?;
        let text = &s[..split + 1];
        let sig_block = &s[split + 2..];
        if !sig_block.ends_with('\n') {
            return Err(malformed("note", "the last signature line does not end with a newline"));
        }
        let mut signatures = Vec::new();
        for (i, line) in sig_block[..sig_block.len() - 1].split('\n').enumerate() {
            if signatures.len() == MAX_SIGNATURES {
                return Err(malformed("note", format!("more than {MAX_SIGNATURES} signatures")));
            }
            let where_ = || format!("signature line {}", i + 1);
            let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| malformed("note", format!("{} does not start with '— '", where_())))?;
            let (name, b64) = rest.split_once(' ').ok_or_else(|| malformed("note", format!("{} has no signature", where_())))?;
            if !is_valid_key_name(name) {
                return Err(malformed("note", format!("{}: invalid key name", where_())));
            }
            let raw = STANDARD.decode(b64).map_err(|_| malformed("note", format!("{}: the signature is not base64", where_())))?;
            let Some((id, bytes)) = raw.split_first_chunk::<4>().filter(|(_, rest)| !rest.is_empty()) else {
                return Err(malformed("note", format!("{}: the signature is too short", where_())));
            };
            signatures.push(NoteSignature { name: name.to_string(), id: u32::from_be_bytes(*id), bytes: bytes.to_vec() });
        }
        if signatures.is_empty() {
            return Err(malformed("note", "no signatures"));
        }
        Ok(Note { text: text.to_string(), signatures })
    }

    /// The note as bytes: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone().into_bytes();
        out.push(b'\n');
        for s in &self.signatures {
            out.extend_from_slice(s.line().as_bytes());
        }
        out
    }

    /// Adds a signature, replacing any earlier one by the same key.
    pub fn add(&mut self, signature: NoteSignature) {
        self.signatures.retain(|s| !(s.name == signature.name && s.id == signature.id));
        self.signatures.push(signature);
    }

    /// Verifies the note against trusted keys. Signatures by unknown keys are ignored; a
    /// signature by a known key that fails rejects the whole note; at least one must verify.
    pub fn verify(&self, keys: &[VerifierKey]) -> Result<Vec<Verified>, TlogError> {
        let mut ok = Vec::new();
        for s in &self.signatures {
            let Some(k) = keys.iter().find(|k| k.name == s.name && k.id == s.id) else { continue };
            let time = k.verify(self.text.as_bytes(), &s.bytes)?;
            if !ok.iter().any(|v: &Verified| v.name == k.name && v.id == k.id) {
                ok.push(Verified { name: k.name.clone(), id: k.id, kind: k.kind, time });
            }
        }
        if ok.is_empty() {
            return Err(TlogError::Untrusted);
        }
        Ok(ok)
    }
}

fn check_text(s: &str) -> Result<(), TlogError> {
    if let Some(pos) = s.find(|c: char| (c as u32) < 0x20 && c != '\n') {
        let line = s[..pos].matches('\n').count() + 1;
        return Err(malformed("note", format!("a control character on line {line}")));
    }
    Ok(())
}
