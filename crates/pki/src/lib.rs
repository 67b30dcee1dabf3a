//! # kura-pki — Kura's certificate authority and TLS policy
//!
//! 認証局と TLS の設定。利用者・機関のクライアント証明書を自前の認証局で発行し（PKCS#12 と PEM）、
//! 失効させ、すべてのハンドシェイクで失効を確かめる（NET-1, NET-2, HX-5, HIC-S3, HIC-S12）。
//!
//! The HIC issues client certificates from its own CA; so does Kura:
//!
//! - [`Ca`]: `kura ca init` creates an ECDSA P-256 root; [`Ca::issue`] signs certificates for a
//!   user, an institution (machine-to-machine uploads) or a server. An [`Issued`] certificate is
//!   exported as PKCS#12 for browsers (AES-256-CBC with PBKDF2-HMAC-SHA256, HMAC-SHA256 MAC) and
//!   as PEM for tools.
//! - [`Fingerprint`]: the SHA-256 of a certificate's DER bytes. It identifies a device: the
//!   store of record maps fingerprints to users and institutions, sessions are bound to it.
//! - [`RevocationSet`]: revoked fingerprints in a hash set, checked on every handshake before
//!   the chain is verified — constant time per handshake whether 10 or 600,000 institutions
//!   hold certificates (NET-2).
//! - [`server_certs`]: short-lived server certificates issued ahead of time, so the server
//!   that faces the network never holds the CA's signing key.
//! - [`tls`]: the only TLS configuration Kura's listeners use — TLS 1.3, and TLS 1.2 only
//!   with ECDHE and AES-GCM; ECDSA server keys; client certificates required and checked
//!   against the CA and the revocation set; CRYPTREC-listed algorithms only.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![forbid(unsafe_code)]

mod ca;
pub mod server_certs;
pub mod tls;

pub use ca::{Ca, Issued, Subject};

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::RwLock;

type Result<T> = std::result::Result<T, PkiError>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The CA directory already holds a CA.
    #[error("認証局はすでにあります / a CA already exists in {0}; it is never overwritten")]
    CaExists(PathBuf),
    /// No CA in the directory.
    #[error("認証局がありません / no CA in {0}: run `kura ca init` first")]
    NoCa(PathBuf),
    /// A name that cannot go into a certificate.
    #[error("名前が不正です / invalid {what} `{value}`: {why}")]
    BadName {
        /// Which name.
        what: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        why: &'static str,
    },
    /// Certificate generation or parsing failed.
    #[error("証明書を作れません / certificate error: {0}")]
    Cert(#[from] rcgen::Error),
    /// The system's random number generator failed.
    #[error("乱数を得られません / no randomness from the operating system: {0}")]
    Random(#[source] kura_crypto::CryptoError),
    /// A certificate's validity start could not be represented as a date.
    #[error("証明書の日付を表せません / certificate date out of range: {0}")]
    Time(#[from] time::error::ComponentRange),
    /// PKCS#12 export failed.
    #[error("PKCS#12 を作れません / PKCS#12 error: {0}")]
    Pkcs12(#[from] p12_keystore::error::Error),
    /// The TLS configuration was refused.
    #[error("TLS 設定エラー / TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A PEM file did not hold what it should.
    #[error("PEM を読めません / cannot read PEM {path}: {why}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// File access failed.
    #[error("ファイルを扱えません / {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The SHA-256 of a certificate's DER encoding: the identity of a device or machine.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        use sha2::Digest;
        Fingerprint(sha2::Sha256::digest(der).into())
    }

    /// Parses 64 hex digits (colons allowed, as `openssl x509 -fingerprint` prints them).
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let s = s.trim().strip_prefix("sha256:").unwrap_or(s.trim());
        let hexs: String = s.chars().filter(|c| *c != ':').collect();
        let b = hex::decode(hexs).ok()?;
        Some(Fingerprint(b.try_into().ok()?))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", &self.to_hex()[..16])
    }
}

/// A certificate's serial number as the CA signed it (big-endian, no leading zero bytes): what
/// revocation is keyed on. Unlike the fingerprint — a hash of the whole DER, signature included
/// — it cannot be changed without breaking the CA's signature: an ECDSA signature (r, s) is
/// also valid as (r, n − s), which gives a revoked certificate a new fingerprint but the same
/// serial.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// The serial of a DER certificate (`None` if it does not parse).
    pub fn of_der(der: &[u8]) -> Option<Serial> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(Serial::from_bytes(cert.tbs_certificate.raw_serial()))
    }

    /// A serial from its bytes (leading zero bytes are dropped).
    pub fn from_bytes(b: &[u8]) -> Serial {
        let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        Serial(b.get(start..).unwrap_or_default().to_vec())
    }

    /// Parses hex digits (colons allowed), as stored and as `openssl x509 -serial` prints them.
    pub fn parse(s: &str) -> Option<Serial> {
        let s = s.trim();
        let s = s.strip_prefix("serial=").unwrap_or(s);
        let digits: String = s.chars().filter(|c| *c != ':').collect();
        if digits.is_empty() || digits.len() > 42 {
            return None;
        }
        let padded = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits };
        Some(Serial::from_bytes(&hex::decode(padded).ok()?))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

/// Revoked certificates, by serial number ([`Serial`]). Shared between the listeners (which
/// check it on every handshake and request) and whatever revokes (which adds to it at once).
#[derive(Debug, Default)]
pub struct RevocationSet {
    revoked: RwLock<HashSet<Serial>>,
    /// Set while a revocation that could not be read is outstanding: then no certificate is
    /// known not to be revoked, and every one is refused (fail closed).
    incomplete: std::sync::atomic::AtomicBool,
}

impl RevocationSet {
    /// A set holding these serials.
    pub fn new(revoked: impl IntoIterator<Item = Serial>) -> RevocationSet {
        RevocationSet { revoked: RwLock::new(revoked.into_iter().collect()), incomplete: Default::default() }
    }

    /// Marks the set as missing a revocation that could not be read (`true`: every certificate
    /// counts as revoked until a complete reading clears it with `false`).
    pub fn set_incomplete(&self, incomplete: bool) {
        self.incomplete.store(incomplete, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a revocation that could not be read is outstanding.
    pub fn is_incomplete(&self) -> bool {
        self.incomplete.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Marks a certificate revoked; returns whether it was not already.
    pub fn revoke(&self, serial: Serial) -> bool {
        self.revoked.write().unwrap_or_else(|e| e.into_inner()).insert(serial)
    }

    /// Whether a certificate is revoked: listed, or any certificate while the set is incomplete.
    pub fn is_revoked(&self, serial: &Serial) -> bool {
        self.is_incomplete() || self.revoked.read().unwrap_or_else(|e| e.into_inner()).contains(serial)
    }

    /// Adds revoked certificates; returns whether any was new. Revocation is final, so a set is
    /// only ever added to while a server runs (a reload that read the store before a
    /// revocation made here cannot take it back).
    pub fn extend(&self, serials: impl IntoIterator<Item = Serial>) -> bool {
        let mut set = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        let before = set.len();
        set.extend(serials);
        set.len() > before
    }

    /// Replaces the whole set.
    pub fn replace(&self, revoked: impl IntoIterator<Item = Serial>) {
        *self.revoked.write().unwrap_or_else(|e| e.into_inner()) = revoked.into_iter().collect();
    }

    /// Number of revoked certificates.
    pub fn len(&self) -> usize {
        self.revoked.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
