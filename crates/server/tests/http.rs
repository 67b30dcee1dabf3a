//! The ledger over real HTTP on a random port: tiles and checkpoints served byte for byte at
//! tlog-tiles paths, anything else refused; the witness endpoint's status codes and content
//! types; a log publishing only checkpoints cosigned by a witness it reaches over HTTP; and a
//! damaged log repaired from a mirror fetched over HTTP (HX-8, HX-10, HX-12, CLD-1).

use kura_ledger::audit::{repair, verify};
use kura_ledger::log::{Log, LogOptions, WitnessEndpoint};
use kura_ledger::store::SqlStore;
use kura_server::client::{Http, HttpWitnessClient, MirrorSource, fetch_mirror};
use kura_server::ledger::{tile_routes, witness_routes};
use kura_tlog::tiles::DirTiles;
use kura_tlog::witness::{AddCheckpoint, Witness};
use kura_tlog::{Checkpoint, SigType, SignerKey, open_checkpoint};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

fn key(name: &str, kind: SigType) -> SignerKey {
    SignerKey::generate(name, kind).unwrap()
}

fn same_key(k: &SignerKey) -> SignerKey {
    SignerKey::parse(&k.to_secret_string()).unwrap()
}

/// Serves `router` on a free loopback port until the test ends.
async fn start(router: kura_server::Router) -> SocketAddr {
    let (listener, addr) = kura_server::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(kura_server::serve(listener, router, std::future::pending()));
    addr
}

async fn open(dir: &Path, opts: LogOptions) -> Log<SqlStore> {
    let store = SqlStore::open(&dir.join("state.db")).await.unwrap();
    Log::open(store, Arc::new(DirTiles::new(&dir.join("log"))), opts).await.unwrap()
}

/// A log of `n` entries with one checkpoint at the end.
async fn build(dir: &Path, k: &SignerKey, n: u64) -> Log<SqlStore> {
    let log = open(dir, LogOptions::new(same_key(k))).await;
    for i in 0..n {
        log.append(format!("entry {i}").into_bytes()).await.unwrap();
    }
    log.checkpoint().await.unwrap();
    log
}

#[tokio::test]
async fn tiles_and_checkpoint_are_served_byte_for_byte_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("example.org/log", SigType::Ed25519);
    let _log = build(dir.path(), &k, 700).await;
    let published = dir.path().join("log");
    let addr = start(tile_routes(Arc::new(DirTiles::new(&published)))).await;
    let http = Http::new();

    for (path, cache) in [
        ("checkpoint", "no-cache"),
        ("tile/0/000", "public, max-age=31536000, immutable"),
        ("tile/0/002.p/188", "no-cache"),
        ("tile/1/000.p/2", "no-cache"),
        ("tile/entries/001", "public, max-age=31536000, immutable"),
        ("tile/entries/002.p/188", "no-cache"),
    ] {
        let a = http.send(hyper::Method::GET, &format!("http://{addr}/{path}"), Vec::new()).await.unwrap();
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body, std::fs::read(published.join(path)).unwrap(), "{path} differs from the published file");
        let got = http_header(addr, path, "cache-control").await;
        assert_eq!(got.as_deref(), Some(cache), "{path}");
    }

    // Paths outside the layout, traversal attempts and tiles that do not exist are all 404;
    // the server never reads outside the tile directory.
    std::fs::write(dir.path().join("secret"), b"not for you").unwrap();
    for path in [
        "tile/../secret",
        "tile/0/../../secret",
        "tile/%2e%2e/secret",
        "tile/0/x000",
        "tile/0/1000",
        "tile/0/003",
        "tile/0/002.p/0",
        "tile/0/002.p/256",
        "tile/entries/999",
        "tile/31/000",
        "state.db",
        "",
    ] {
        let a = http.send(hyper::Method::GET, &format!("http://{addr}/{path}"), Vec::new()).await.unwrap();
        assert_eq!(a.status, 404, "{path}: {}", String::from_utf8_lossy(&a.body));
        assert!(!a.body.windows(11).any(|w| w == b"not for you"), "{path} leaked a file");
    }
    // Read-only: writing methods are not routed.
    let a = http.send(hyper::Method::PUT, &format!("http://{addr}/tile/0/000"), b"x".to_vec()).await.unwrap();
    assert_eq!(a.status, 405);
    assert_eq!(std::fs::read(published.join("tile/0/000")).unwrap().len(), 256 * 32);
}

/// Reads one header with a bare HTTP/1.1 request (the test's own small client).
async fn http_header(addr: SocketAddr, path: &str, name: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("HEAD /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()))
}

#[tokio::test]
async fn witness_over_http_speaks_the_spec_and_the_log_publishes_only_cosigned_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("example.org/log", SigType::EcdsaP256);
    let wkey = key("example.org/witness", SigType::Cosignature);
    let witness = Arc::new(Witness::open(same_key(&wkey), vec![k.verifier().clone()], &dir.path().join("w.json")).unwrap());
    let addr = start(witness_routes(witness.clone())).await;
    let url = format!("http://{addr}");
    let http = Http::new();

    // 400 for a body that is not an add-checkpoint request; 413 beyond the body limit.
    let a = http.send(hyper::Method::POST, &format!("{url}/add-checkpoint"), b"hello\n".to_vec()).await.unwrap();
    assert_eq!(a.status, 400);
    let big = vec![b'a'; kura_server::ledger::MAX_ADD_CHECKPOINT + 1];
    let a = http.send(hyper::Method::POST, &format!("{url}/add-checkpoint"), big).await.unwrap();
    assert_eq!(a.status, 413);
    let a = http.send(hyper::Method::GET, &format!("{url}/add-checkpoint"), Vec::new()).await.unwrap();
    assert_eq!(a.status, 405);

    // The log reaches the witness over HTTP and publishes with its cosignature (k = 1 of 1).
    let mut opts = LogOptions::new(same_key(&k));
    opts.witnesses = vec![WitnessEndpoint { key: wkey.verifier().clone(), url: Some(url.clone()) }];
    opts.min_witnesses = 1;
    let log = open(dir.path(), opts).await;
    log.set_witness_client(Arc::new(HttpWitnessClient::default()));
    for i in 0..300 {
        log.append(format!("entry {i}").into_bytes()).await.unwrap();
    }
    let note = log.checkpoint().await.unwrap();
    let ws = [wkey.verifier().clone()];
    let c = open_checkpoint(&note, k.verifier(), &ws, 1).unwrap();
    assert_eq!((c.checkpoint.size, c.cosigners.len()), (300, 1));
    assert_eq!(witness.state("example.org/log").unwrap().size, 300);
    for i in 300..310 {
        log.append(format!("entry {i}").into_bytes()).await.unwrap();
    }
    let note = log.checkpoint().await.unwrap();
    assert_eq!(open_checkpoint(&note, k.verifier(), &ws, 1).unwrap().checkpoint.size, 310);

    // 409 with the witness's size as text/x.tlog.size when the old size is stale.
    let stale = Checkpoint::new("example.org/log", 310, log.root()).sign(&k).unwrap().to_bytes();
    let body = AddCheckpoint { old: 0, proof: Vec::new(), checkpoint: stale }.to_bytes();
    let a = http.send(hyper::Method::POST, &format!("{url}/add-checkpoint"), body).await.unwrap();
    assert_eq!((a.status, a.content_type.as_str(), a.body.as_slice()), (409, "text/x.tlog.size", &b"310\n"[..]));
    // 404 for a log the witness does not follow.
    let other = key("example.org/other", SigType::Ed25519);
    let note = Checkpoint::new("example.org/other", 310, log.root()).sign(&other).unwrap().to_bytes();
    let body = AddCheckpoint { old: 0, proof: Vec::new(), checkpoint: note }.to_bytes();
    let a = http.send(hyper::Method::POST, &format!("{url}/add-checkpoint"), body).await.unwrap();
    assert_eq!(a.status, 404);

    // A witness that cannot be reached: nothing is published, the error names it.
    let dir2 = tempfile::tempdir().unwrap();
    let (gone, gone_addr) = kura_server::bind("127.0.0.1:0").await.unwrap();
    drop(gone);
    let mut opts = LogOptions::new(same_key(&key("example.org/log2", SigType::Ed25519)));
    opts.witnesses = vec![WitnessEndpoint { key: wkey.verifier().clone(), url: Some(format!("http://{gone_addr}")) }];
    opts.min_witnesses = 1;
    let lonely = open(dir2.path(), opts).await;
    lonely.set_witness_client(Arc::new(HttpWitnessClient::default()));
    lonely.append(b"x".to_vec()).await.unwrap();
    assert!(lonely.checkpoint().await.is_err());
    assert!(!dir2.path().join("log/checkpoint").exists());
}

#[tokio::test]
async fn a_damaged_log_is_repaired_from_a_mirror_fetched_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("example.org/log", SigType::Ed25519);
    let log = build(dir.path(), &k, 1000).await;
    let published = dir.path().join("log");
    // The mirror: a plain copy of the published directory, served by another process's worth
    // of server.
    let mirror = tempfile::tempdir().unwrap();
    copy_dir(&published, mirror.path());
    let addr = start(tile_routes(Arc::new(DirTiles::new(mirror.path())))).await;

    // Damage a full tile and a bundle.
    for p in ["tile/0/001", "tile/entries/002"] {
        let mut b = std::fs::read(published.join(p)).unwrap();
        b[17] ^= 0x40;
        std::fs::write(published.join(p), b).unwrap();
    }
    let report = verify(log.store(), &DirTiles::new(&published), k.verifier(), &[], 0).await.unwrap();
    assert!(!report.ok());
    let named: Vec<_> = report.problems.iter().map(|p| p.location.clone()).collect();
    assert!(named.iter().any(|l| l.contains("tile/0/001")), "{named:?}");
    assert!(named.iter().any(|l| l.contains("tile/entries/002")), "{named:?}");

    let fetched = tempfile::tempdir().unwrap();
    let trust = kura_tlog::mirror::Trust { log_key: k.verifier(), witnesses: &[], min_witnesses: 0 };
    let done = std::sync::atomic::AtomicU64::new(0);
    let total = fetch_mirror(&MirrorSource::Http(format!("http://{addr}/")), fetched.path(), trust, &|d, _| {
        done.store(d, std::sync::atomic::Ordering::Relaxed)
    })
    .await
    .unwrap();
    assert!(total.total > 8 && done.load(std::sync::atomic::Ordering::Relaxed) == total.total && total.refused.is_empty());
    let out = repair(log.store(), &DirTiles::new(&published), &DirTiles::new(fetched.path()), trust).await.unwrap();
    assert_eq!(out.files.len(), 2, "{:?}", out.files);
    let report = verify(log.store(), &DirTiles::new(&published), k.verifier(), &[], 0).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);

    // A mirror with nothing published is a clear error, not a silent success.
    let empty = tempfile::tempdir().unwrap();
    let addr = start(tile_routes(Arc::new(DirTiles::new(empty.path())))).await;
    let err = fetch_mirror(&MirrorSource::Http(format!("http://{addr}")), fetched.path(), trust, &|_, _| {}).await.unwrap_err();
    assert!(err.to_string().contains("checkpoint"), "{err}");
    // Only http:// URLs.
    let err = fetch_mirror(&MirrorSource::Http("file:///etc".into()), fetched.path(), trust, &|_, _| {}).await.unwrap_err();
    assert!(err.to_string().contains("http://"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
