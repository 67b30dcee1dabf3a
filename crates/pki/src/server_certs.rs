//! Server certificates issued ahead of time, so that the network-facing server never holds the
//! CA's signing key (issue 14; NET-1, HIC-S12).
//!
//! Kura's server certificates live [`SERVER_CERT_DAYS`] days (RFC 9608: no revocation
//! information is needed). Instead of the server signing its own renewals — which would put
//! the key that can sign *client* certificates into the process that faces the network —
//! `kura ca init` and `kura ca server-certs` (run by an operator, or from cron, with the CA key)
//! issue a series of them into `<home>/ca/server/`, the i-th valid from i × [`STAGGER_DAYS`]
//! days ahead. At any moment one of them is valid with at least
//! `SERVER_CERT_DAYS − STAGGER_DAYS` days left; the running server reads the directory (never
//! the CA key) and switches to the next one when it becomes valid.
//!
//! ```text
//! <home>/ca/server/<not_before>.crt.pem   the certificate (public)
//! <home>/ca/server/<not_before>.key.pem   its key (0600)
//! ```

use crate::ca::{Ca, Subject};
use crate::tls::SERVER_CERT_DAYS;
use crate::{PkiError, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// Days between the starts of two consecutive server certificates.
pub const STAGGER_DAYS: i64 = 4;

/// One server certificate from the directory.
pub struct ServerCertFile {
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds).
    pub not_after: i64,
    /// The certificate.
    pub cert: CertificateDer<'static>,
    /// Its key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ServerCertFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertFile").field("not_before", &self.not_before).field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

fn validity(der: &[u8], path: &Path) -> Result<(i64, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::Pem { path: path.to_path_buf(), why: e.to_string() })?;
    Ok((cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp()))
}

/// Reads every server certificate in `dir` (a missing directory holds none).
pub fn load(dir: &Path) -> Result<Vec<ServerCertFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".crt.pem")) else { continue };
        let key_path = dir.join(format!("{stem}.key.pem"));
        let cert = CertificateDer::from_pem_file(&path).map_err(|e| PkiError::Pem { path: path.clone(), why: e.to_string() })?;
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| PkiError::Pem { path: key_path.clone(), why: e.to_string() })?;
        let (not_before, not_after) = validity(&cert, &path)?;
        out.push(ServerCertFile { not_before, not_after, cert, key });
    }
    out.sort_by_key(|c| c.not_before);
    Ok(out)
}

/// The certificate to present at `now`: valid now, the one that lasts longest.
pub fn pick(certs: &[ServerCertFile], now: i64) -> Option<&ServerCertFile> {
    certs.iter().filter(|c| c.not_before <= now && now < c.not_after).max_by_key(|c| c.not_after)
}

/// Until when the certificates in hand cover without a gap, from `now`.
pub fn covered_until(certs: &[ServerCertFile], now: i64) -> Option<i64> {
    let mut until = pick(certs, now)?.not_after;
    while let Some(next) = certs.iter().filter(|c| c.not_before <= until && c.not_after > until).max_by_key(|c| c.not_after) {
        until = next.not_after;
    }
    Some(until)
}

/// Issues server certificates for `names` into `dir` until they cover `days` days from `now`
/// (continuing the series already there), and removes expired ones. Returns the paths written.
pub fn issue_ahead(ca: &Ca, names: &[String], dir: &Path, now: i64, days: i64) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let existing = load(dir)?;
    for c in existing.iter().filter(|c| c.not_after <= now) {
        for suffix in ["crt.pem", "key.pem"] {
            let p = dir.join(format!("{}.{suffix}", c.not_before));
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    let target = now + days * 86_400;
    let mut start = match covered_until(&existing, now) {
        // The next one starts STAGGER_DAYS after the latest start, so it overlaps.
        Some(_) => existing.iter().map(|c| c.not_before).max().unwrap_or(now) + STAGGER_DAYS * 86_400,
        None => now - 300,
    };
    let mut written = Vec::new();
    let subject = Subject::Server { names: names.to_vec() };
    while start + i64::from(SERVER_CERT_DAYS) * 86_400 <= target + STAGGER_DAYS * 86_400 {
        let not_before = time::OffsetDateTime::from_unix_timestamp(start)?;
        let issued = ca.issue_from(&subject, not_before, SERVER_CERT_DAYS)?;
        let cert_path = dir.join(format!("{start}.crt.pem"));
        let key_path = dir.join(format!("{start}.key.pem"));
        kura_crypto::write_atomic(&key_path, issued.key_pem.as_bytes(), 0o600).map_err(io(&key_path))?;
        kura_crypto::write_atomic(&cert_path, issued.cert_pem.as_bytes(), 0o644).map_err(io(&cert_path))?;
        written.push(cert_path);
        start += STAGGER_DAYS * 86_400;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_covers_without_gaps_and_continues() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&dir.path().join("ca"), "Test CA").unwrap();
        let server = dir.path().join("ca/server");
        let now = 1_800_000_000;
        let written = issue_ahead(&ca, &["localhost".into()], &server, now, 30).unwrap();
        assert_eq!(written.len(), 7, "starts at 0, 4, …, 24 days cover 31 days");
        let certs = load(&server).unwrap();
        let until = covered_until(&certs, now).unwrap();
        assert!(until >= now + 30 * 86_400);
        // At every hour of the period one certificate is valid, with 3 days or more left
        // wherever the series goes on that long.
        for t in (now..now + 30 * 86_400).step_by(3600) {
            let c = pick(&certs, t).unwrap_or_else(|| panic!("nothing valid at +{} h", (t - now) / 3600));
            let left = (i64::from(SERVER_CERT_DAYS) - STAGGER_DAYS) * 86_400;
            assert!(c.not_after - t >= left.min(until - t), "+{} h", (t - now) / 3600);
        }
        // Later: expired ones go, the series continues from its last start.
        let later = now + 20 * 86_400;
        issue_ahead(&ca, &["localhost".into()], &server, later, 30).unwrap();
        let certs = load(&server).unwrap();
        assert!(certs.iter().all(|c| c.not_after > later));
        assert!(covered_until(&certs, later).unwrap() >= later + 30 * 86_400);
        let starts: Vec<i64> = certs.iter().map(|c| c.not_before).collect();
        assert!(starts.windows(2).all(|w| w[1] - w[0] == STAGGER_DAYS * 86_400), "{starts:?}");
    }
}
