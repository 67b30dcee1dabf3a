//! kura-scan against a real clamd started by the test with its own signatures (issue 17 §4,
//! HIC-S1): EICAR plain and inside a zip, a YARA rule, a clean file, a scanner without
//! signatures and a scanner that went away — the last two block with a clear error.

#[path = "support/clamd.rs"]
mod clamd;
use clamd::{Clamd, EICAR_SIGNATURE, YARA_MARKER, YARA_RULE, zip_stored};
use kura_scan::{ScanError, Scanner, Verdict, eicar};

fn found(v: &Verdict) -> String {
    match v {
        Verdict::Found { signature } => signature.clone(),
        Verdict::Clean => String::new(),
    }
}

#[tokio::test]
async fn eicar_plain_and_zipped_the_yara_rule_and_a_clean_file() {
    let mut d = Clamd::start();
    let s = Scanner::at(&d.socket);
    let status = s.status().await.unwrap();
    assert!(status.version.starts_with("ClamAV 1."), "{status:?}");
    assert!(status.self_test.starts_with(EICAR_SIGNATURE), "{status:?}");

    let plain = s.scan(&eicar()).await.unwrap();
    assert!(found(&plain.verdict).starts_with(EICAR_SIGNATURE), "{plain:?}");
    let zip = zip_stored(&[("readme.txt", b"hello".as_slice()), ("tools/eicar.com", eicar().as_slice())]);
    let zipped = s.scan(&zip).await.unwrap();
    assert!(found(&zipped.verdict).starts_with(EICAR_SIGNATURE), "a zip is opened: {zipped:?}");
    let marked = s.scan(format!("SELECT 1; -- {YARA_MARKER}\n").as_bytes()).await.unwrap();
    assert!(found(&marked.verdict).contains(YARA_RULE), "{marked:?}");
    let clean = s.scan(b"SELECT sex, count(*) FROM re GROUP BY sex\n").await.unwrap();
    assert_eq!(clean.verdict, Verdict::Clean);
    assert_eq!(clean.engine.version, status.version);
    // The same zip without the test file is clean: what was found was the file inside.
    let harmless = zip_stored(&[("readme.txt", b"hello".as_slice())]);
    assert_eq!(s.scan(&harmless).await.unwrap().verdict, Verdict::Clean);
    // What the scanner cannot look into is not clean: the test file 20 zips deep, or in a zip
    // marked encrypted.
    let v = s.scan(&clamd::nested_zip(&eicar(), 20)).await.unwrap().verdict;
    assert!(found(&v).contains("Exceeded"), "{v:?}");
    let locked = kura_scan::stored_zip(&[("tool.com", eicar().as_slice())], true);
    let v = s.scan(&locked).await.unwrap().verdict;
    assert!(found(&v).contains("Encrypted"), "{v:?}");
    assert!(status.deep_archives.contains("Exceeded") && status.encrypted_archives.contains("Encrypted"), "{status:?}");

    // The scanner goes away: the next scan is an error, not a pass.
    d.stop();
    let e = s.scan(b"hello").await.unwrap_err();
    assert!(matches!(e, ScanError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("kura scanner status"), "{e}");
}

#[tokio::test]
async fn a_scanner_without_signatures_blocks() {
    // clamd refuses to start with no signature file at all; one rule that finds nothing real
    // stands for a database that does not hold what it should.
    let d = Clamd::with_signatures(&[("other.yar", clamd::yara_rule("Nothing", "no-file-holds-this-4c1e"))]);
    let s = Scanner::at(&d.socket);
    let e = s.scan(b"hello").await.unwrap_err();
    assert!(matches!(e, ScanError::NoSignatures { .. }), "{e}");
    assert!(e.to_string().contains("EICAR"), "{e}");
    let e = s.scan(&eicar()).await.unwrap_err();
    assert!(matches!(e, ScanError::NoSignatures { .. }), "even the test file is not let through as clean: {e}");
}

#[tokio::test]
async fn a_scanner_that_passes_what_it_cannot_open_blocks() {
    // clamd's defaults: an archive too deep or encrypted is answered OK.
    let eicar_sig = clamd::eicar_signature();
    let lax = Clamd::configured(std::slice::from_ref(&eicar_sig), "");
    let e = Scanner::at(&lax.socket).scan(b"hello").await.unwrap_err();
    assert!(matches!(e, ScanError::Permissive { setting: "AlertExceedsMax yes", .. }), "{e}");
    let half = Clamd::configured(&[eicar_sig], "AlertExceedsMax yes\n");
    let e = Scanner::at(&half.socket).scan(b"hello").await.unwrap_err();
    assert!(matches!(e, ScanError::Permissive { setting: "AlertEncrypted yes", .. }), "{e}");
    assert!(e.to_string().contains("clamd.conf"), "{e}");
}
