//! The TLS policy of every Kura listener (NET-1, HX-5, HIC-S12).
//!
//! - Versions: TLS 1.3; TLS 1.2 only for clients that lack 1.3.
//! - Cipher suites: AES-GCM only — `TLS13_AES_256_GCM_SHA384`, `TLS13_AES_128_GCM_SHA256`, and
//!   in TLS 1.2 `ECDHE-ECDSA-AES256-GCM-SHA384` / `ECDHE-ECDSA-AES128-GCM-SHA256`. No CBC, no
//!   RSA key exchange, no ChaCha20 (not on the CRYPTREC list).
//! - Key exchange: ECDHE on P-256 and P-384 (CRYPTREC-listed curves).
//! - Signatures accepted from clients: ECDSA P-256/P-384 and Ed25519.
//! - Client certificates: required, chained to Kura's CA, not revoked ([`ClientVerifier`]).

use crate::{Fingerprint, PkiError, RevocationSet};
use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
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

/// Verifies client certificates: not revoked (a hash-set lookup by fingerprint, before any
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
        if self.revoked.is_revoked(&Fingerprint::of(end_entity)) {
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

/// The configuration of a Kura listener: the server's certificate chain and key, client
/// certificates required from Kura's CA and checked against `revoked` on every handshake.
pub fn server_config(
    ca: &CertificateDer<'_>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    revoked: Arc<RevocationSet>,
) -> Result<ServerConfig> {
    let verifier = Arc::new(ClientVerifier::new(ca, revoked)?);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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
