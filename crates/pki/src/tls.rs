//! The TLS policy of every Kura listener (NET-1, HX-5, HIC-S12).
//!
//! - Versions: TLS 1.3; TLS 1.2 only for clients that lack 1.3.
//! - Cipher suites: AES-GCM only — `TLS13_AES_256_GCM_SHA384`, `TLS13_AES_128_GCM_SHA256`, and
//!   in TLS 1.2 `ECDHE-ECDSA-AES256-GCM-SHA384` / `ECDHE-ECDSA-AES128-GCM-SHA256`. No CBC, no
//!   RSA key exchange, no ChaCha20 (not on the CRYPTREC list).
//! - Key exchange: ECDHE on P-256 and P-384 (CRYPTREC-listed curves).
//! - Signatures accepted from clients: ECDSA P-256/P-384 and Ed25519.
//! - Client certificates: required, chained to Kura's CA, not revoked ([`ClientVerifier`]).

use crate::{PkiError, RevocationSet, Serial};
use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use std::sync::Arc;

type Result<T> = std::result::Result<T, PkiError>;

/// Signature algorithms accepted in certificates and handshakes.
static SIGNATURES: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
        webpki::ring::ED25519,
    ],
    mapping: &[
        (SignatureScheme::ECDSA_NISTP384_SHA384, &[webpki::ring::ECDSA_P384_SHA384, webpki::ring::ECDSA_P256_SHA384]),
        (SignatureScheme::ECDSA_NISTP256_SHA256, &[webpki::ring::ECDSA_P256_SHA256, webpki::ring::ECDSA_P384_SHA256]),
        (SignatureScheme::ED25519, &[webpki::ring::ED25519]),
    ],
};

/// The cryptography Kura's TLS uses: *ring* restricted to the algorithms above.
pub fn provider() -> Arc<CryptoProvider> {
    let base = ring::default_provider();
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![ring::kx_group::SECP256R1, ring::kx_group::SECP384R1],
        signature_verification_algorithms: SIGNATURES,
        ..base
    })
}

/// Verifies client certificates: not revoked (a hash-set lookup by serial, before any
/// signature work), then chained to Kura's CA with `clientAuth` and within validity.
#[derive(Debug)]
pub struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<RevocationSet>,
}

impl ClientVerifier {
    /// A verifier trusting only `ca` and refusing what `revoked` holds.
    pub fn new(ca: &CertificateDer<'_>, revoked: Arc<RevocationSet>) -> Result<ClientVerifier> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| PkiError::Tls(rustls::Error::General(e.to_string())))?;
        Ok(ClientVerifier { inner, revoked })
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        // Revocation goes by serial, which the CA's signature covers (a re-encoded signature
        // changes the fingerprint, not the serial).
        let Some(serial) = Serial::of_der(end_entity) else {
            return Err(rustls::Error::InvalidCertificate(CertificateError::BadEncoding));
        };
        if self.revoked.is_revoked(&serial) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        self.inner.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The server's certificate and key, replaceable while the server runs: Kura's server
/// certificates are short-lived (see [`SERVER_CERT_DAYS`]) and renewed before they expire,
/// without a restart and without dropping connections.
#[derive(Debug)]
pub struct ServerCert {
    current: std::sync::RwLock<(Arc<CertifiedKey>, i64)>,
}

/// Life of a server certificate, in days. Short enough that revocation information is not
/// needed (RFC 9608; the CA/Browser Forum's short-lived certificates), long enough to survive
/// a weekend without renewal.
pub const SERVER_CERT_DAYS: u32 = 7;

/// Renew a server certificate when less than this many seconds of its life remain.
pub const SERVER_CERT_RENEW_BEFORE: i64 = 3 * 86_400;

impl ServerCert {
    /// Holds `chain` (leaf first) and its `key`; `not_after` is the leaf's end of validity.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, not_after: i64) -> Result<Arc<ServerCert>> {
        Ok(Arc::new(ServerCert { current: std::sync::RwLock::new((Self::certified(chain, key)?, not_after)) }))
    }

    fn certified(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Arc<CertifiedKey>> {
        let signing = provider().key_provider.load_private_key(key)?;
        Ok(Arc::new(CertifiedKey::new(chain, signing)))
    }

    /// Puts a renewed certificate in place; handshakes from now on present it.
    pub fn replace(&self, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, not_after: i64) -> Result<()> {
        let next = Self::certified(chain, key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (next, not_after);
        Ok(())
    }

    /// End of validity of the certificate presented now (seconds since the Unix epoch).
    pub fn not_after(&self) -> i64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Whether the certificate should be renewed at `now` (seconds since the Unix epoch).
    pub fn due(&self, now: i64) -> bool {
        self.not_after() - now < SERVER_CERT_RENEW_BEFORE
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).0.clone())
    }
}

/// The configuration of a Kura listener: the server's certificate (renewable), client
/// certificates required from Kura's CA and checked against `revoked` on every handshake.
pub fn server_config(ca: &CertificateDer<'_>, cert: Arc<ServerCert>, revoked: Arc<RevocationSet>) -> Result<ServerConfig> {
    let verifier = Arc::new(ClientVerifier::new(ca, revoked)?);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption, in either version: a resumed handshake restores the client
    // certificate from the saved session without asking the verifier, so a revoked or expired
    // certificate would be served, without its private key, for as long as the session lived.
    // Every connection is a full handshake that proves the key and is checked for revocation.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// End of validity (`notAfter`, seconds since the Unix epoch) of a DER certificate, or `None`
/// if it does not parse. The front door checks it on every request of a kept-alive connection.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// A client configuration with the same policy, trusting Kura's CA and presenting a client
/// certificate (Kura's own tools, the tests and the benchmark).
pub fn client_config(ca: &CertificateDer<'_>, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone().into_owned())?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
