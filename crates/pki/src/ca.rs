//! The certificate authority: creation, loading, issuing, export.

use crate::{Fingerprint, PkiError};
use p12_keystore::{Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey, PrivateKeyChain};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

type Result<T> = std::result::Result<T, PkiError>;

/// id-ce-noRevAvail (2.5.29.56), RFC 9608.
const NO_REV_AVAIL: &[u64] = &[2, 5, 29, 56];

const CA_CERT: &str = "ca.crt.pem";
const CA_KEY: &str = "ca.key.pem";
/// How long the CA certificate is valid.
const CA_DAYS: i64 = 3653;
/// PBKDF2 iterations protecting exported PKCS#12 files.
const PKCS12_ITERATIONS: u32 = 100_000;

/// Who a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A person (利用者), by login, at an institution.
    User {
        /// The login.
        login: String,
        /// The institution's code.
        institution: String,
    },
    /// An institution itself (医療機関・提供者), for machine-to-machine uploads (NET-2).
    Institution {
        /// The institution's code.
        code: String,
    },
    /// A Kura server: its DNS names and IP addresses.
    Server {
        /// Names and addresses the certificate is valid for.
        names: Vec<String>,
    },
}

fn check_name(what: &'static str, value: &str) -> Result<()> {
    let ok = !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadName { what, value: value.to_string(), why: "1–64 characters of A–Z, a–z, 0–9 and . _ - @" })
    }
}

impl Subject {
    /// Checks the names that will go into the certificate.
    pub fn validate(&self) -> Result<()> {
        match self {
            Subject::User { login, institution } => {
                check_name("login", login)?;
                check_name("institution", institution)
            }
            Subject::Institution { code } => check_name("institution", code),
            Subject::Server { names } => {
                if names.is_empty() {
                    return Err(PkiError::BadName {
                        what: "server name",
                        value: String::new(),
                        why: "at least one DNS name or IP address",
                    });
                }
                for n in names {
                    let dns = n.len() <= 253
                        && n.split('.')
                            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
                    if !dns && n.parse::<std::net::IpAddr>().is_err() {
                        return Err(PkiError::BadName { what: "server name", value: n.clone(), why: "a DNS name or an IP address" });
                    }
                }
                Ok(())
            }
        }
    }

    /// The URI that names the subject inside the certificate (`urn:kura:user:LOGIN`,
    /// `urn:kura:institution:CODE`), or `None` for servers.
    pub fn urn(&self) -> Option<String> {
        match self {
            Subject::User { login, .. } => Some(format!("urn:kura:user:{login}")),
            Subject::Institution { code } => Some(format!("urn:kura:institution:{code}")),
            Subject::Server { .. } => None,
        }
    }
}

/// A certificate just issued, with its private key (never stored by the CA).
pub struct Issued {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 DER (wiped from memory when dropped).
    pub key_der: Zeroizing<Vec<u8>>,
    /// The private key, PKCS#8 PEM (wiped from memory when dropped).
    pub key_pem: Zeroizing<String>,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the certificate.
    pub fingerprint: Fingerprint,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("serial", &self.serial).field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl Issued {
    /// A PKCS#12 file holding the key, the certificate and the CA certificate, for import into
    /// a browser or an OS key store. Protected by `password` with PBES2 (PBKDF2-HMAC-SHA256,
    /// AES-256-CBC) and an HMAC-SHA256 integrity MAC.
    pub fn to_pkcs12(&self, ca: &Ca, password: &str, friendly_name: &str) -> Result<Vec<u8>> {
        let p12 = PkiError::Pkcs12;
        let key = PrivateKey::from_der(&self.key_der).map_err(p12)?;
        let chain = [Certificate::from_der(&self.cert_der).map_err(p12)?, Certificate::from_der(ca.cert_der()).map_err(p12)?];
        let mut store = KeyStore::new();
        store.add_entry(friendly_name, KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(self.fingerprint.0.to_vec(), key, chain)));
        store
            .writer(password)
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .encryption_iterations(PKCS12_ITERATIONS)
            .mac_algorithm(MacAlgorithm::HmacSha256)
            .mac_iterations(PKCS12_ITERATIONS)
            .write()
            .map_err(p12)
    }
}

/// Kura's certificate authority, loaded from its directory.
pub struct Ca {
    dir: PathBuf,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("dir", &self.dir).field("fingerprint", &self.fingerprint()).finish_non_exhaustive()
    }
}

fn random_serial() -> Result<SerialNumber> {
    let mut b = [0u8; 16];
    kura_crypto::random_bytes(&mut b).map_err(PkiError::Random)?;
    b[0] = (b[0] & 0x7f) | 0x01; // positive and of full length
    Ok(SerialNumber::from_slice(&b))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

/// Writes a file atomically ([`kura_crypto::write_atomic`]), readable by its owner only when
/// `private`.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    kura_crypto::write_atomic(path, bytes, if private { 0o600 } else { 0o644 }).map_err(io(path))
}

impl Ca {
    /// Creates a CA in `dir` (created if needed): an ECDSA P-256 key (`ca.key.pem`, mode
    /// 0600) and a self-signed certificate valid ten years (`ca.crt.pem`). Refuses to replace
    /// an existing CA.
    pub fn init(dir: &Path, common_name: &str) -> Result<Ca> {
        if dir.join(CA_KEY).exists() || dir.join(CA_CERT).exists() {
            return Err(PkiError::CaExists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Kura");
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(CA_DAYS);
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key)?;
        write_file(&dir.join(CA_KEY), key.serialize_pem().as_bytes(), true)?;
        write_file(&dir.join(CA_CERT), cert.pem().as_bytes(), false)?;
        Ca::open(dir)
    }

    /// Loads the CA from `dir`.
    pub fn open(dir: &Path) -> Result<Ca> {
        let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
        if !cert_path.exists() || !key_path.exists() {
            return Err(PkiError::NoCa(dir.to_path_buf()));
        }
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let key_pem = Zeroizing::new(std::fs::read_to_string(&key_path).map_err(io(&key_path))?);
        let key = KeyPair::from_pem(&key_pem)?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| PkiError::Pem { path: cert_path.clone(), why: e.to_string() })?
            .into_owned();
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Ca { dir: dir.to_path_buf(), cert_der, cert_pem, issuer })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert_der)
    }

    /// Reads only the CA's certificate (public) from `dir`: what a server needs to check client
    /// certificates, without the signing key.
    pub fn certificate(dir: &Path) -> Result<CertificateDer<'static>> {
        let cert_path = dir.join(CA_CERT);
        if !cert_path.exists() {
            return Err(PkiError::NoCa(dir.to_path_buf()));
        }
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        Ok(CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| PkiError::Pem { path: cert_path.clone(), why: e.to_string() })?
            .into_owned())
    }

    /// Issues a certificate valid for `days` days from now with a fresh ECDSA P-256 key.
    /// Client certificates (users, institutions) carry `clientAuth` and a `urn:kura:…` URI
    /// naming the subject; server certificates carry `serverAuth` and their names.
    pub fn issue(&self, subject: &Subject, days: u32) -> Result<Issued> {
        self.issue_from(subject, OffsetDateTime::now_utc() - Duration::minutes(5), days)
    }

    /// Issues a certificate valid for `days` days from `not_before` (which may lie ahead: server
    /// certificates are issued in advance, [`crate::server_certs`]).
    pub fn issue_from(&self, subject: &Subject, not_before: OffsetDateTime, days: u32) -> Result<Issued> {
        subject.validate()?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let (names, eku) = match subject {
            Subject::Server { names } => (names.clone(), ExtendedKeyUsagePurpose::ServerAuth),
            _ => (Vec::new(), ExtendedKeyUsagePurpose::ClientAuth),
        };
        let mut params = CertificateParams::new(names)?;
        let mut dn = DistinguishedName::new();
        match subject {
            Subject::User { login, institution } => {
                dn.push(DnType::OrganizationName, institution.as_str());
                dn.push(DnType::CommonName, login.as_str());
            }
            Subject::Institution { code } => {
                dn.push(DnType::OrganizationName, code.as_str());
                dn.push(DnType::CommonName, code.as_str());
            }
            Subject::Server { names } => dn.push(DnType::CommonName, names.first().map_or("", String::as_str)),
        }
        params.distinguished_name = dn;
        if let Some(urn) = subject.urn() {
            params.subject_alt_names.push(SanType::URI(urn.as_str().try_into()?));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        params.use_authority_key_identifier_extension = true;
        if matches!(subject, Subject::Server { .. }) && days <= crate::tls::SERVER_CERT_DAYS {
            // RFC 9608: a short-lived server certificate says that no revocation information
            // is published for it (id-ce-noRevAvail, a non-critical NULL). Client certificates
            // never carry it: Kura checks their revocation on every handshake.
            params.custom_extensions.push(CustomExtension::from_oid_content(NO_REV_AVAIL, vec![0x05, 0x00]));
        }
        let serial = random_serial()?;
        params.serial_number = Some(serial.clone());
        params.not_before = not_before;
        params.not_after = not_before + Duration::minutes(5) + Duration::days(i64::from(days.max(1)));
        let cert = params.signed_by(&key, &self.issuer)?;
        let cert_der = cert.der().to_vec();
        Ok(Issued {
            fingerprint: Fingerprint::of(&cert_der),
            cert_der,
            cert_pem: cert.pem(),
            key_der: Zeroizing::new(key.serialize_der()),
            key_pem: Zeroizing::new(key.serialize_pem()),
            serial: hex::encode(serial.to_bytes()),
            not_after: params.not_after.unix_timestamp(),
        })
    }

    /// Writes an issued certificate for `name` into `out`: `NAME.p12` (PKCS#12, protected by
    /// `password`), `NAME.crt.pem` and `NAME.key.pem` (mode 0600). Returns the paths.
    pub fn export(&self, issued: &Issued, out: &Path, name: &str, password: &str) -> Result<[PathBuf; 3]> {
        check_name("file name", name)?;
        std::fs::create_dir_all(out).map_err(io(out))?;
        let paths = [out.join(format!("{name}.p12")), out.join(format!("{name}.crt.pem")), out.join(format!("{name}.key.pem"))];
        write_file(&paths[0], &issued.to_pkcs12(self, password, name)?, true)?;
        write_file(&paths[1], issued.cert_pem.as_bytes(), false)?;
        write_file(&paths[2], issued.key_pem.as_bytes(), true)?;
        Ok(paths)
    }
}
