//! The CA and the TLS policy against real tools: certificates checked by `openssl`, PKCS#12
//! files opened by `openssl pkcs12`, and real TLS handshakes over TCP with rustls on both ends
//! (NET-1, NET-2, HX-5, HIC-S3, HIC-S12).

use kura_pki::tls::{ServerCert, client_config, server_config};
use kura_pki::{Ca, Fingerprint, PkiError, RevocationSet, Serial, Subject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("openssl is installed by scripts/test.sh");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `openssl x509 -text` of `pem`, written to `DIR/NAME.pem` first.
fn x509_text(dir: &Path, name: &str, pem: &str) -> String {
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, pem).unwrap();
    let (ok, text) = openssl(&["x509", "-in", path.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok, "{text}");
    text
}

/// Whether `openssl x509 -text` output shows the noRevAvail extension (RFC 9608, 2.5.29.56),
/// and if so whether it is marked critical.
fn no_rev_avail(text: &str) -> Option<bool> {
    let line = text.lines().find(|l| l.contains("No Revocation Available") || l.contains("2.5.29.56"))?;
    Some(line.contains("critical"))
}

fn user(login: &str) -> Subject {
    Subject::User { login: login.into(), institution: "1310000001".into() }
}

#[test]
fn ca_init_issue_and_export_read_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let ca = Ca::init(&ca_dir, "Kura test CA / 蔵 試験認証局").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca_dir.join("ca.key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the CA key is readable by its owner only");
    }
    assert!(matches!(Ca::init(&ca_dir, "again"), Err(PkiError::CaExists(_))));
    assert_eq!(Ca::open(&ca_dir).unwrap().fingerprint(), ca.fingerprint(), "reopened CA is the same CA");
    assert!(matches!(Ca::open(&dir.path().join("none")), Err(PkiError::NoCa(_))));

    let issued = ca.issue(&user("sato.h"), 365).unwrap();
    assert_eq!(issued.fingerprint, Fingerprint::of(&issued.cert_der));
    let out = dir.path().join("out");
    let [p12, crt, key] = ca.export(&issued, &out, "sato.h", "correct horse 馬").unwrap();
    assert_eq!(p12.file_name().unwrap(), "sato.h.p12");

    let ca_pem = ca_dir.join("ca.crt.pem");
    let (ok, text) = openssl(&["verify", "-CAfile", ca_pem.to_str().unwrap(), "-purpose", "sslclient", crt.to_str().unwrap()]);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok, "{text}");
    for want in
        ["URI:urn:kura:user:sato.h", "TLS Web Client Authentication", "CN = sato.h", "O = 1310000001", "prime256v1", "ecdsa-with-SHA256"]
    {
        assert!(text.contains(want), "certificate lacks {want}:\n{text}");
    }
    let (ok, fp) = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-fingerprint", "-sha256"]);
    assert!(ok);
    assert_eq!(Fingerprint::parse(fp.trim().split('=').nth(1).unwrap()), Some(issued.fingerprint));
    let (ok, text) = openssl(&["pkey", "-in", key.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok && text.contains("P-256"), "{text}");

    // PKCS#12: opens with the password, with CRYPTREC-listed protection; not without it.
    let pass = "pass:correct horse 馬";
    let (ok, text) = openssl(&["pkcs12", "-in", p12.to_str().unwrap(), "-passin", pass, "-info", "-noout"]);
    assert!(ok, "{text}");
    for want in ["PBES2", "PBKDF2", "AES-256-CBC", "sha256"] {
        assert!(text.contains(want), "PKCS#12 info lacks {want}:\n{text}");
    }
    let (ok, text) = openssl(&["pkcs12", "-in", p12.to_str().unwrap(), "-passin", pass, "-nodes"]);
    assert!(ok && text.contains("BEGIN PRIVATE KEY") && text.matches("BEGIN CERTIFICATE").count() == 2, "{text}");
    let (ok, _) = openssl(&["pkcs12", "-in", p12.to_str().unwrap(), "-passin", "pass:wrong", "-noout"]);
    assert!(!ok, "a wrong password must not open the file");

    // Institutions and servers. RFC 9608: only a short-lived server certificate says that no
    // revocation information is published for it (noRevAvail, never critical); a long-lived one
    // and every client certificate (whose revocation Kura checks on each handshake) do not.
    let inst = ca.issue(&Subject::Institution { code: "2710000002".into() }, 365).unwrap();
    let text = x509_text(dir.path(), "inst", &inst.cert_pem);
    assert!(text.contains("URI:urn:kura:institution:2710000002"), "{text}");
    assert_eq!(no_rev_avail(&text), None, "{text}");
    let server = ca.issue(&Subject::Server { names: vec!["kura.example.jp".into(), "127.0.0.1".into()] }, 397).unwrap();
    let text = x509_text(dir.path(), "server", &server.cert_pem);
    assert!(
        text.contains("DNS:kura.example.jp") && text.contains("IP Address:127.0.0.1") && text.contains("TLS Web Server Authentication"),
        "{text}"
    );
    assert_eq!(no_rev_avail(&text), None, "{text}");
    let short = ca.issue(&Subject::Server { names: vec!["kura.example.jp".into()] }, kura_pki::tls::SERVER_CERT_DAYS).unwrap();
    let text = x509_text(dir.path(), "short", &short.cert_pem);
    assert_eq!(no_rev_avail(&text), Some(false), "a non-critical noRevAvail extension:\n{text}");
}

#[test]
fn names_that_do_not_belong_in_a_certificate_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(dir.path(), "Kura test CA").unwrap();
    for bad in ["", "a b", "../etc", "x".repeat(65).as_str(), "名前", "a,CN=admin"] {
        assert!(matches!(ca.issue(&user(bad), 1), Err(PkiError::BadName { .. })), "{bad:?}");
    }
    assert!(matches!(ca.issue(&Subject::Server { names: vec![] }, 1), Err(PkiError::BadName { .. })));
    assert!(matches!(ca.issue(&Subject::Server { names: vec!["bad_name!".into()] }, 1), Err(PkiError::BadName { .. })));
    assert_eq!(Fingerprint::parse(&"AB:".repeat(31)), None, "31 bytes are not a SHA-256");
    assert_eq!(Fingerprint::parse("zz"), None);
}

fn key_of(issued: &kura_pki::Issued) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.to_vec()))
}

struct Pki {
    ca: Ca,
    server: kura_pki::Issued,
    revoked: Arc<RevocationSet>,
}

fn pki(dir: &Path) -> Pki {
    let ca = Ca::init(dir, "Kura test CA").unwrap();
    let server = ca.issue(&Subject::Server { names: vec!["localhost".into(), "127.0.0.1".into()] }, 30).unwrap();
    Pki { ca, server, revoked: Arc::new(RevocationSet::default()) }
}

/// Serves one connection: answers `ok <fingerprint of the client's certificate>`.
async fn serve_once(p: &Pki) -> (std::net::SocketAddr, tokio::task::JoinHandle<Result<Fingerprint, String>>) {
    let cert = ServerCert::new(vec![CertificateDer::from(p.server.cert_der.clone())], key_of(&p.server), p.server.not_after).unwrap();
    let config = server_config(p.ca.cert_der(), cert, p.revoked.clone()).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let fp = Fingerprint::of(tls.get_ref().1.peer_certificates().and_then(|c| c.first()).ok_or("no client certificate")?);
        tls.write_all(format!("ok {fp}").as_bytes()).await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok(fp)
    });
    (addr, task)
}

async fn connect(addr: std::net::SocketAddr, config: rustls::ClientConfig) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    // A TLS 1.3 server's refusal of the client certificate shows on the first read.
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.map_err(|e| e.to_string())?;
    Ok(answer)
}

#[tokio::test]
async fn handshakes_require_a_valid_unrevoked_certificate_from_kuras_ca() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(&dir.path().join("ca"));
    let alice = p.ca.issue(&user("alice"), 30).unwrap();
    let alice_config = || client_config(p.ca.cert_der(), vec![CertificateDer::from(alice.cert_der.clone())], key_of(&alice)).unwrap();

    // A good certificate: the server sees exactly its fingerprint.
    let (addr, server) = serve_once(&p).await;
    let answer = connect(addr, alice_config()).await.unwrap();
    assert_eq!(answer, format!("ok {}", alice.fingerprint));
    assert_eq!(server.await.unwrap().unwrap(), alice.fingerprint);

    // No client certificate.
    let (addr, server) = serve_once(&p).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.ca.cert_der().clone()).unwrap();
    let anonymous = rustls::ClientConfig::builder_with_provider(kura_pki::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(connect(addr, anonymous).await.is_err());
    let err = server.await.unwrap().unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    // A certificate from another CA, even with the same names.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Ca::init(other_dir.path(), "Kura test CA").unwrap();
    let mallory = other.issue(&user("alice"), 30).unwrap();
    let (addr, server) = serve_once(&p).await;
    let foreign = client_config(p.ca.cert_der(), vec![CertificateDer::from(mallory.cert_der.clone())], key_of(&mallory)).unwrap();
    assert!(connect(addr, foreign).await.is_err());
    let err = server.await.unwrap().unwrap_err();
    assert!(err.contains("BadSignature"), "same issuer name, wrong key: {err}");

    // A revoked certificate is refused from the next handshake on.
    assert!(p.revoked.revoke(Serial::parse(&alice.serial).unwrap()));
    let (addr, server) = serve_once(&p).await;
    assert!(connect(addr, alice_config()).await.is_err());
    assert!(server.await.unwrap().unwrap_err().contains("Revoked"));

    // Server certificates are not client certificates.
    let (addr, server) = serve_once(&p).await;
    let as_client = client_config(p.ca.cert_der(), vec![CertificateDer::from(p.server.cert_der.clone())], key_of(&p.server)).unwrap();
    assert!(connect(addr, as_client).await.is_err());
    assert!(server.await.unwrap().is_err());
}

/// A renewed server certificate is presented from the next handshake on, without a restart.
#[tokio::test]
async fn server_certificate_is_renewed_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(&dir.path().join("ca"));
    let first = p.ca.issue(&Subject::Server { names: vec!["localhost".into()] }, kura_pki::tls::SERVER_CERT_DAYS).unwrap();
    let cert = ServerCert::new(vec![CertificateDer::from(first.cert_der.clone())], key_of(&first), first.not_after).unwrap();
    assert!(!cert.due(first.not_after - 4 * 86_400) && cert.due(first.not_after - 2 * 86_400));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(p.ca.cert_der(), cert.clone(), p.revoked.clone()).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"ok").await;
                let _ = tls.shutdown().await;
            }
        }
    });
    let alice = p.ca.issue(&user("alice"), 30).unwrap();
    let presented = || async {
        let config = client_config(p.ca.cert_der(), vec![CertificateDer::from(alice.cert_der.clone())], key_of(&alice)).unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls =
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    assert_eq!(presented().await, first.cert_der.to_vec());
    let second = p.ca.issue(&Subject::Server { names: vec!["localhost".into()] }, kura_pki::tls::SERVER_CERT_DAYS).unwrap();
    cert.replace(vec![CertificateDer::from(second.cert_der.clone())], key_of(&second), second.not_after).unwrap();
    assert_eq!(presented().await, second.cert_der.to_vec());
    assert_eq!(cert.not_after(), second.not_after);
}

#[test]
fn revocation_set_is_shared_and_replaceable() {
    let a = Serial::parse("01a2").unwrap();
    let b = Serial::parse("7f:00:01").unwrap();
    let set = RevocationSet::new([a.clone()]);
    assert!(set.is_revoked(&a) && !set.is_revoked(&b));
    assert!(set.revoke(b.clone()) && !set.revoke(b.clone()));
    set.replace([b.clone()]);
    assert!(!set.is_revoked(&a) && set.is_revoked(&b) && set.len() == 1);
    // Leading zeros, case and colons do not make another serial.
    assert_eq!(Serial::parse("0001A2"), Some(a.clone()));
    assert_eq!(Serial::parse("serial=1A2"), Some(a));
    assert_eq!(Serial::parse("xyz"), None);
    let f = Fingerprint::of(b"a");
    assert_eq!(Fingerprint::parse(&f.to_string()), Some(f));
    assert_eq!(Fingerprint::parse(&f.to_hex().to_uppercase()), Some(f));
}

/// One DER element at the start of `b`: (tag, header length, content length).
fn tlv(b: &[u8]) -> (u8, usize, usize) {
    match b[1] {
        n if n < 0x80 => (b[0], 2, n as usize),
        0x81 => (b[0], 3, b[2] as usize),
        0x82 => (b[0], 4, (b[2] as usize) << 8 | b[3] as usize),
        n => panic!("length form {n:#x}"),
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
    let mut v = bytes[start..].to_vec();
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

/// The same certificate with its ECDSA P-256 signature (r, s) re-encoded as (r, n − s): still
/// a valid signature by the CA over the same content, but other bytes — another fingerprint.
fn malleated(cert: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
        0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    let (_, h, _) = tlv(cert);
    let body = &cert[h..];
    let (_, th, tl) = tlv(body);
    let tbs = &body[..th + tl];
    let rest = &body[th + tl..];
    let (_, ah, al) = tlv(rest);
    let alg = &rest[..ah + al];
    let bits = &rest[ah + al..];
    let (_, bh, _) = tlv(bits);
    let sig = &bits[bh + 1..]; // after the unused-bits byte
    let (_, sh, _) = tlv(sig);
    let ints = &sig[sh..];
    let (_, rh, rl) = tlv(ints);
    let r = &ints[rh..rh + rl];
    let s_el = &ints[rh + rl..];
    let (_, s_h, s_l) = tlv(s_el);
    let s_bytes = &s_el[s_h..s_h + s_l];
    let mut s32 = [0u8; 32];
    let s_trim = &s_bytes[s_bytes.len().saturating_sub(32)..];
    s32[32 - s_trim.len()..].copy_from_slice(s_trim);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = N[i] as i16 - s32[i] as i16 - borrow;
        (out[i], borrow) = if d < 0 { ((d + 256) as u8, 1) } else { (d as u8, 0) };
    }
    let new_sig = der(0x30, &[der_uint(r), der_uint(&out)].concat());
    let new_bits = der(0x03, &[&[0u8][..], &new_sig].concat());
    der(0x30, &[tbs, alg, &new_bits].concat())
}

/// Re-check of the hardening: a revoked certificate whose signature is re-encoded (r, n − s)
/// has a new fingerprint but the same serial, and revocation goes by serial — before, it
/// passed the handshake as if never revoked.
#[tokio::test]
async fn a_reencoded_signature_does_not_escape_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(&dir.path().join("ca"));
    let config_for = |cert: Vec<u8>, issued: &kura_pki::Issued| {
        client_config(p.ca.cert_der(), vec![CertificateDer::from(cert)], key_of(issued)).unwrap()
    };
    // The re-encoded certificate is valid: an unrevoked one passes, with another fingerprint.
    let bob = p.ca.issue(&user("bob"), 30).unwrap();
    let bob2 = malleated(&bob.cert_der);
    assert_ne!(Fingerprint::of(&bob2), bob.fingerprint);
    assert_eq!(Serial::of_der(&bob2), Serial::parse(&bob.serial));
    let (addr, server) = serve_once(&p).await;
    connect(addr, config_for(bob2.clone(), &bob)).await.expect("a re-encoded signature is still the CA's");
    assert_eq!(server.await.unwrap().unwrap(), Fingerprint::of(&bob2));
    // Revoked: neither encoding passes.
    let alice = p.ca.issue(&user("alice"), 30).unwrap();
    assert!(p.revoked.revoke(Serial::parse(&alice.serial).unwrap()));
    for cert in [alice.cert_der.to_vec(), malleated(&alice.cert_der)] {
        let (addr, server) = serve_once(&p).await;
        assert!(connect(addr, config_for(cert, &alice)).await.is_err());
        assert!(server.await.unwrap().unwrap_err().contains("Revoked"));
    }
}
