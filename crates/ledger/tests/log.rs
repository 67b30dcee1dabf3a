//! The running log over the real store of record (SQLite; the same-transaction and sealing
//! tests also on PostgreSQL when `KURA_TEST_POSTGRES` is set) and a real tile directory: appends, same-transaction
//! appends, checkpoints, proofs, witnesses (status codes of C2SP tlog-witness, split views),
//! every kind of tampering, and repair from a mirror (HX-3, HX-4, HX-8, HX-10, HIC-S5, HIC-S6).

use kura_ledger::audit::{repair, verify};
use kura_ledger::log::{Log, LogOptions, WitnessClient, WitnessEndpoint};
use kura_ledger::store::{LedgerStore, SqlStore, append_in};
use kura_ledger::{LedgerError, TlogError};
use kura_tlog::tile::{decode_bundle, encode_bundle};
use kura_tlog::tiles::{DirTiles, TileStore};
use kura_tlog::witness::{AddCheckpoint, Witness, WitnessResponse};
use kura_tlog::{Checkpoint, MemoryTree, Note, SigType, SignerKey, consistency_proof, leaf_hash, open_checkpoint};
use std::path::Path;
use std::sync::Arc;

fn entry(i: u64) -> Vec<u8> {
    format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat((i % 50) as usize)).into_bytes()
}

fn key(name: &str, kind: SigType) -> SignerKey {
    SignerKey::generate(name, kind).unwrap()
}

fn same_key(k: &SignerKey) -> SignerKey {
    SignerKey::parse(&k.to_secret_string()).unwrap()
}

async fn open(dir: &Path, key: &SignerKey) -> Log<SqlStore> {
    let store = SqlStore::open(&dir.join("state.db")).await.unwrap();
    Log::open(store, Arc::new(DirTiles::new(&dir.join("log"))), LogOptions::new(same_key(key))).await.unwrap()
}

async fn audit(dir: &Path, key: &SignerKey) -> kura_ledger::audit::Report {
    let store = SqlStore::open(&dir.join("state.db")).await.unwrap();
    verify(&store, &DirTiles::new(&dir.join("log")), key.verifier(), &[], 0).await.unwrap()
}

/// A log of 700 entries with checkpoints at 300 and 700: two full bundles and a partial one.
async fn build(dir: &Path, key: &SignerKey) {
    let log = open(dir, key).await;
    for i in 0..300 {
        log.append(entry(i)).await.unwrap();
    }
    log.checkpoint().await.unwrap();
    let mut tasks = Vec::new();
    for i in 300..700 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(entry(i)).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    log.checkpoint().await.unwrap();
}

#[tokio::test]
async fn append_checkpoint_prove_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("example.org/log", SigType::Ed25519);
    let log = open(dir.path(), &k).await;
    let mut tasks = Vec::new();
    for i in 0..1000u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { (i, log.append(entry(i)).await.unwrap()) }));
    }
    let mut seen = std::collections::BTreeMap::new();
    for t in tasks {
        let (i, idx) = t.await.unwrap();
        assert!(seen.insert(idx, i).is_none(), "index {idx} handed out twice");
    }
    assert_eq!(seen.len(), 1000);
    assert_eq!(*seen.keys().last().unwrap(), 999);
    // Every acknowledged entry is stored at the index it was given.
    for (idx, i) in &seen {
        assert_eq!(log.store_read(*idx).await.unwrap(), entry(*i));
    }

    // Spawned, so the checkpoint future must be Send (as servers need it to be).
    let l = log.clone();
    let note = tokio::spawn(async move { l.checkpoint().await }).await.unwrap().unwrap();
    let cp = open_checkpoint(&note, k.verifier(), &[], 0).unwrap().checkpoint;
    assert_eq!((cp.origin.as_str(), cp.size), ("example.org/log", 1000));
    assert_eq!(cp.root, log.root());
    assert_eq!(std::fs::read(dir.path().join("log/checkpoint")).unwrap(), note);
    // Full bundles/tiles and the partial ones of the checkpoint's size are published.
    for p in ["tile/0/000", "tile/0/003.p/232", "tile/1/000.p/3", "tile/entries/000", "tile/entries/003.p/232"] {
        assert!(dir.path().join("log").join(p).is_file(), "{p} not published");
    }

    let proof = log.prove(777, Some(log.store_read(777).await.unwrap())).await.unwrap();
    let leaf = leaf_hash(proof.extra.as_ref().unwrap());
    proof.verify(&leaf, k.verifier(), &[], 0).unwrap();
    let reparsed = kura_tlog::ProofFile::parse(&proof.to_bytes()).unwrap();
    reparsed.verify(&leaf, k.verifier(), &[], 0).unwrap();
    assert!(reparsed.verify(&leaf_hash(b"other"), k.verifier(), &[], 0).is_err());

    // Proving an entry newer than the latest checkpoint signs a new one first.
    let i = log.append(b"late".to_vec()).await.unwrap();
    let p = log.prove(i, None).await.unwrap();
    p.verify(&leaf_hash(b"late"), k.verifier(), &[], 0).unwrap();

    let root = log.root();
    drop(log);
    let again = open(dir.path(), &k).await;
    assert_eq!((again.size(), again.root()), (1001, root));
    assert!(audit(dir.path(), &k).await.ok());

    // Another key with the same name cannot reopen the log's history as its own.
    let store = SqlStore::open(&dir.path().join("state.db")).await.unwrap();
    let imposter = key("example.org/log", SigType::Ed25519);
    let err = Log::open(store, Arc::new(DirTiles::new(&dir.path().join("log"))), LogOptions::new(imposter)).await.err().unwrap();
    assert!(matches!(err, LedgerError::Tampered(_)), "{err}");
}

#[tokio::test]
async fn ecdsa_log_key() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("example.org/p256", SigType::EcdsaP256);
    let log = open(dir.path(), &k).await;
    for i in 0..10 {
        log.append(entry(i)).await.unwrap();
    }
    let note = log.checkpoint().await.unwrap();
    assert_eq!(open_checkpoint(&note, k.verifier(), &[], 0).unwrap().checkpoint.size, 10);
    assert!(audit(dir.path(), &k).await.ok());
}

#[tokio::test]
async fn entry_commits_with_the_application_transaction() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let dir = tempfile::tempdir().unwrap();
        let k = key("example.org/log", SigType::Ed25519);
        let log = Log::open(SqlStore::new(db.clone()), Arc::new(DirTiles::new(&dir.path().join("log"))), LogOptions::new(same_key(&k)))
            .await
            .unwrap();
        let pool = db.pool().clone();
        sqlx::query("CREATE TABLE app_projects (name TEXT NOT NULL)").execute(&pool).await.unwrap();
        log.append(b"before".to_vec()).await.unwrap();

        // Committed: the state change and its audit entry together.
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO app_projects (name) VALUES ('study A')").execute(&mut *tx).await.unwrap();
        let idx = append_in(&mut tx, b"project created: study A").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(idx, 1);
        assert_eq!(log.sync().await.unwrap(), 2);

        // Rolled back: neither the state change nor the entry exists, and no index is skipped.
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO app_projects (name) VALUES ('study B')").execute(&mut *tx).await.unwrap();
        append_in(&mut tx, b"project created: study B").await.unwrap();
        tx.rollback().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app_projects").fetch_one(&pool).await.unwrap();
        assert_eq!(n, 1);
        assert_eq!(log.sync().await.unwrap(), 2);

        // Interleaved with the batcher, without sync: the next batch picks the entry up first.
        let mut tx = db.begin_write().await.unwrap();
        append_in(&mut tx, b"project approved").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(log.append(b"after".to_vec()).await.unwrap(), 3);
        assert_eq!(log.size(), 4);
        let note = log.checkpoint().await.unwrap();
        let cp = open_checkpoint(&note, k.verifier(), &[], 0).unwrap().checkpoint;
        let mut t = MemoryTree::new();
        for e in [&b"before"[..], b"project created: study A", b"project approved", b"after"] {
            t.push(leaf_hash(e));
        }
        assert_eq!(cp.root, t.root());
        assert!(verify(log.store(), &DirTiles::new(&dir.path().join("log")), k.verifier(), &[], 0).await.unwrap().ok());
    }
}

#[tokio::test]
async fn full_bundles_are_sealed_into_one_row_and_read_back_unchanged() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let dir = tempfile::tempdir().unwrap();
        let k = key("example.org/log", SigType::Ed25519);
        let log = Log::open(SqlStore::new(db.clone()), Arc::new(DirTiles::new(&dir.path().join("log"))), LogOptions::new(same_key(&k)))
            .await
            .unwrap();
        let pool = db.pool().clone();
        // 300 entries from batches and 300 from application transactions, interleaved.
        let mut want = Vec::new();
        for i in 0..600u64 {
            if i % 2 == 0 {
                log.append(entry(i)).await.unwrap();
            } else {
                let mut tx = db.begin_write().await.unwrap();
                append_in(&mut tx, &entry(i)).await.unwrap();
                tx.commit().await.unwrap();
                log.sync().await.unwrap();
            }
            want.push(entry(i));
        }
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entries").fetch_one(&pool).await.unwrap();
        let bundles: Vec<i64> = sqlx::query_scalar("SELECT bundle FROM ledger_bundles ORDER BY bundle").fetch_all(&pool).await.unwrap();
        assert_eq!((rows, bundles), (600 - 512, vec![0, 1]), "two sealed bundles and an unsealed tail");
        // Reads across the seal boundary return exactly what was appended.
        assert_eq!(log.store().read(0, 600).await.unwrap(), want);
        assert_eq!(log.store().read(250, 530).await.unwrap(), want[250..530]);
        assert_eq!(log.store().size().await.unwrap(), 600);
        log.checkpoint().await.unwrap();
        // The sealed rows hold exactly the published bundles.
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT data FROM ledger_bundles WHERE bundle = 1").fetch_one(&pool).await.unwrap();
        assert_eq!(sealed, std::fs::read(dir.path().join("log/tile/entries/001")).unwrap());
        assert!(verify(log.store(), &DirTiles::new(&dir.path().join("log")), k.verifier(), &[], 0).await.unwrap().ok());
    }
}

#[tokio::test]
async fn a_damaged_sealed_row_is_named_by_verify_and_restored_by_repair() {
    let k = key("example.org/log", SigType::Ed25519);
    let golden = tempfile::tempdir().unwrap();
    build(golden.path(), &k).await;
    let dir = tempfile::tempdir().unwrap();
    copy_dir(golden.path(), dir.path());
    let store = SqlStore::open(&dir.path().join("state.db")).await.unwrap();
    // Flip a bit in the first length prefix of bundle 1: the row no longer decodes.
    let mut row: Vec<u8> =
        sqlx::query_scalar("SELECT data FROM ledger_bundles WHERE bundle = 1").fetch_one(store.db().pool()).await.unwrap();
    row[0] ^= 0x40;
    sqlx::query("UPDATE ledger_bundles SET data = $1 WHERE bundle = 1").bind(&row).execute(store.db().pool()).await.unwrap();
    let err = verify(&store, &DirTiles::new(&dir.path().join("log")), k.verifier(), &[], 0).await.unwrap_err();
    assert!(err.to_string().contains("bundle 1 in the database (entries 256..512) is damaged"), "{err}");
    // A log over the damaged database refuses to open rather than sign over it.
    assert!(Log::open(store.clone(), Arc::new(DirTiles::new(&dir.path().join("log"))), LogOptions::new(same_key(&k))).await.is_err());

    let out = repair(&store, &DirTiles::new(&dir.path().join("log")), &DirTiles::new(&golden.path().join("log")), trust(&k)).await.unwrap();
    assert_eq!(out.entries, (256..512).collect::<Vec<u64>>());
    assert!(audit(dir.path(), &k).await.ok());
    // Reopening seals the restored entries again.
    drop(open(dir.path(), &k).await);
    let bundles: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_bundles").fetch_one(store.db().pool()).await.unwrap();
    assert_eq!(bundles, 2);
    assert!(audit(dir.path(), &k).await.ok());
}

fn tree_of(entries: impl IntoIterator<Item = Vec<u8>>) -> MemoryTree {
    let mut t = MemoryTree::new();
    for e in entries {
        t.push(leaf_hash(&e));
    }
    t
}

fn request(old: u64, tree: &MemoryTree, size: u64, key: &SignerKey, proof: Option<Vec<kura_tlog::Hash>>) -> Vec<u8> {
    let note = Checkpoint::new(key.name(), size, tree.root_at(size).unwrap()).sign(key).unwrap();
    let proof = proof.unwrap_or_else(|| if old == 0 { Vec::new() } else { consistency_proof(tree, old, size).unwrap() });
    AddCheckpoint { old, proof, checkpoint: note.to_bytes() }.to_bytes()
}

#[test]
fn witness_answers_with_the_status_codes_of_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let log_key = key("example.org/log", SigType::Ed25519);
    let wkey = key("example.org/witness", SigType::Cosignature);
    let w = Witness::open(same_key(&wkey), vec![log_key.verifier().clone()], &state).unwrap();
    let tree = tree_of((0..40).map(entry));

    // 400: not an add-checkpoint body.
    assert_eq!(w.add_checkpoint(b"hello\n").status, 400);
    // 400: the encoding is exact; a CRLF header line is not the same request.
    let crlf = String::from_utf8(request(0, &tree, 10, &log_key, None)).unwrap().replacen("old 0\n", "old 0\r\n", 1);
    assert_eq!(w.add_checkpoint(crlf.as_bytes()).status, 400);
    // 404: a log the witness does not follow.
    let stranger = key("example.org/other", SigType::Ed25519);
    assert_eq!(w.add_checkpoint(&request(0, &tree, 10, &stranger, None)).status, 404);
    // 403: the right origin, but not signed by the trusted key.
    let imposter = key("example.org/log", SigType::Ed25519);
    assert_eq!(w.add_checkpoint(&request(0, &tree, 10, &imposter, None)).status, 403);
    // 400: old size beyond the checkpoint.
    assert_eq!(w.add_checkpoint(&request(11, &tree, 10, &log_key, Some(Vec::new()))).status, 400);
    // 422: old size 0 requires an empty proof.
    let bogus = vec![tree.root_at(3).unwrap()];
    assert_eq!(w.add_checkpoint(&request(0, &tree, 10, &log_key, Some(bogus))).status, 422);

    // 200: first checkpoint; the answer is a cosignature line that verifies.
    let body = request(0, &tree, 10, &log_key, None);
    let resp = w.add_checkpoint(&body);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let req = AddCheckpoint::parse(&body).unwrap();
    let mut signed = req.checkpoint.clone();
    signed.extend_from_slice(&resp.body);
    let c = open_checkpoint(&signed, log_key.verifier(), std::slice::from_ref(wkey.verifier()), 1).unwrap();
    assert_eq!(c.cosigners.len(), 1);

    // 409 with the witness's size as text/x.tlog.size when old does not match its state.
    let resp = w.add_checkpoint(&request(5, &tree, 20, &log_key, None));
    assert_eq!((resp.status, resp.body.as_slice(), resp.content_type), (409, &b"10\n"[..], "text/x.tlog.size"));
    // 409: same size, different root — a split view.
    let fork = tree_of((0..40).map(|i| if i == 7 { b"forged".to_vec() } else { entry(i) }));
    let resp = w.add_checkpoint(&request(10, &fork, 10, &log_key, Some(Vec::new())));
    assert_eq!(resp.status, 409);
    assert_ne!(resp.content_type, "text/x.tlog.size");
    // 422: a larger forked tree whose proof does not lead from the root the witness holds.
    assert_eq!(w.add_checkpoint(&request(10, &fork, 20, &log_key, None)).status, 422);
    // 422: a corrupted proof for the honest tree.
    let mut proof = consistency_proof(&tree, 10, 20).unwrap();
    proof[0] = tree.root_at(1).unwrap();
    assert_eq!(w.add_checkpoint(&request(10, &tree, 20, &log_key, Some(proof))).status, 422);
    assert_eq!(w.state("example.org/log").unwrap().size, 10, "refusals change nothing");
    // 200: the honest extension.
    assert_eq!(w.add_checkpoint(&request(10, &tree, 20, &log_key, None)).status, 200);

    // The state was persisted before answering: a restarted witness remembers size 20.
    drop(w);
    let w = Witness::open(same_key(&wkey), vec![log_key.verifier().clone()], &state).unwrap();
    assert_eq!(w.state("example.org/log").unwrap().size, 20);
    let resp = w.add_checkpoint(&request(10, &tree, 30, &log_key, None));
    assert_eq!((resp.status, resp.body.as_slice()), (409, &b"20\n"[..]));
    // The offline file form round-trips.
    let back = WitnessResponse::from_file(&resp.to_file()).unwrap();
    assert_eq!((back.status, back.body, back.content_type), (409, b"20\n".to_vec(), "text/x.tlog.size"));
}

/// The real witness, reached in-process (the HTTP transport is tested with the server).
struct InProcess(Arc<Witness>);

impl WitnessClient for InProcess {
    fn add_checkpoint(
        &self,
        _url: &str,
        body: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<WitnessResponse, LedgerError>> + Send + '_>> {
        Box::pin(async move { Ok(self.0.add_checkpoint(&body)) })
    }
}

#[tokio::test]
async fn checkpoints_are_published_only_with_enough_cosignatures() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("example.org/log", SigType::Ed25519);
    let wkey = key("example.org/witness", SigType::Cosignature);
    let offline = key("example.org/vault", SigType::Cosignature);
    let witness = Arc::new(Witness::open(same_key(&wkey), vec![k.verifier().clone()], &dir.path().join("w.json")).unwrap());
    let vault = Witness::open(same_key(&offline), vec![k.verifier().clone()], &dir.path().join("vault.json")).unwrap();

    let store = SqlStore::open(&dir.path().join("state.db")).await.unwrap();
    let mut opts = LogOptions::new(same_key(&k));
    opts.witnesses = vec![
        WitnessEndpoint { key: wkey.verifier().clone(), url: Some("in-process".into()) },
        WitnessEndpoint { key: offline.verifier().clone(), url: None },
    ];
    opts.min_witnesses = 2;
    let log = Log::open(store, Arc::new(DirTiles::new(&dir.path().join("log"))), opts).await.unwrap();
    log.set_witness_client(Arc::new(InProcess(witness.clone())));
    for i in 0..50 {
        log.append(entry(i)).await.unwrap();
    }
    // The online witness cosigns; one of two is not enough, nothing is published.
    let err = log.checkpoint().await.unwrap_err();
    assert!(matches!(err, LedgerError::Tlog(TlogError::NotEnoughWitnesses { have: 1, need: 2 })), "{err}");
    assert!(log.latest_checkpoint().await.unwrap().is_none());
    assert!(!dir.path().join("log/checkpoint").exists());
    assert_eq!(witness.state("example.org/log").unwrap().size, 50);

    // The offline witness: request out, response in, published.
    let req = log.witness_request("example.org/vault").await.unwrap();
    let resp = vault.add_checkpoint(&req);
    assert_eq!(resp.status, 200);
    let note = log.witness_import("example.org/vault", &resp.to_file()).await.unwrap().expect("published");
    let ws = [wkey.verifier().clone(), offline.verifier().clone()];
    let c = open_checkpoint(&note, k.verifier(), &ws, 2).unwrap();
    assert_eq!((c.checkpoint.size, c.cosigners.len()), (50, 2));
    assert_eq!(std::fs::read(dir.path().join("log/checkpoint")).unwrap(), note);

    // The online witness lost track of the log (its state says 50, the log thinks 0):
    // 409 with the size, the log retries from 50 and gets the cosignature.
    log.store().set_meta("witness_size/example.org/witness", b"0").await.unwrap();
    for i in 50..60 {
        log.append(entry(i)).await.unwrap();
    }
    assert!(matches!(log.checkpoint().await.unwrap_err(), LedgerError::Tlog(TlogError::NotEnoughWitnesses { have: 1, .. })));
    assert_eq!(witness.state("example.org/log").unwrap().size, 60);
    let resp = vault.add_checkpoint(&log.witness_request("example.org/vault").await.unwrap());
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert!(log.witness_import("example.org/vault", &resp.to_file()).await.unwrap().is_some());
    let report = verify(log.store(), &DirTiles::new(&dir.path().join("log")), k.verifier(), &ws, 2).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.checkpoints, 2);
}

#[tokio::test]
async fn a_rewritten_tail_with_a_fresh_signature_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("example.org/log", SigType::Ed25519);
    let wkey = key("example.org/witness", SigType::Cosignature);
    let witness = Witness::open(same_key(&wkey), vec![k.verifier().clone()], &dir.path().join("w.json")).unwrap();
    build(dir.path(), &k).await;
    // The honest log's checkpoint reaches the witness.
    let store = SqlStore::open(&dir.path().join("state.db")).await.unwrap();
    let (size, note) = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(size, 700);
    assert_eq!(witness.add_checkpoint(&AddCheckpoint { old: 0, proof: Vec::new(), checkpoint: note }.to_bytes()).status, 200);

    // Someone holding the database and the signing key rewrites entries 650.. and signs anew.
    for i in 650..700 {
        overwrite_entry(&store, i, b"rewritten").await;
    }
    let entries = store.read(0, 700).await.unwrap();
    let forged = tree_of(entries);
    let note = Checkpoint::new("example.org/log", 700, forged.root()).sign(&k).unwrap().to_bytes();
    store.add_checkpoint(700, &note).await.unwrap();
    std::fs::write(dir.path().join("log/checkpoint"), &note).unwrap();

    // The older checkpoint (size 300) still holds, so verify pins the rewrite on the newer one;
    // and the witness, which cosigned the honest 700, refuses the forged one.
    let report = audit(dir.path(), &k).await;
    assert!(!report.ok());
    assert!(report.problems.iter().any(|p| p.location == "tile/entries/002.p/188"), "{:?}", report.problems);
    let resp = witness.add_checkpoint(&AddCheckpoint { old: 700, proof: Vec::new(), checkpoint: note.clone() }.to_bytes());
    assert_eq!(resp.status, 409, "split view");

    // Rewriting everything after the older checkpoint, tiles included, is still caught by it.
    for i in 0..300 {
        overwrite_entry(&store, i, b"rewritten").await;
    }
    let report = audit(dir.path(), &k).await;
    assert!(report.problems.iter().any(|p| p.location == "checkpoint 300" && p.what.contains("do not reproduce")), "{:?}", report.problems);
    // And the log refuses to open on it.
    let err = Log::open(store, Arc::new(DirTiles::new(&dir.path().join("log"))), LogOptions::new(same_key(&k))).await.err().unwrap();
    assert!(matches!(err, LedgerError::Tampered(_)));
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

/// What an attacker with write access to the database does to one entry: rewrites it in its
/// sealed bundle row, or in its own row if not yet sealed.
async fn overwrite_entry(store: &SqlStore, idx: u64, data: &[u8]) {
    let b = (idx / 256) as i64;
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT data FROM ledger_bundles WHERE bundle = $1").bind(b).fetch_optional(store.db().pool()).await.unwrap();
    if let Some(bundle) = sealed {
        let mut entries: Vec<Vec<u8>> = decode_bundle(&bundle).unwrap().into_iter().map(<[u8]>::to_vec).collect();
        entries[(idx % 256) as usize] = data.to_vec();
        let bundle = encode_bundle(entries.iter().map(Vec::as_slice)).unwrap();
        sqlx::query("UPDATE ledger_bundles SET data = $1 WHERE bundle = $2").bind(bundle).bind(b).execute(store.db().pool()).await.unwrap();
    } else {
        let done = sqlx::query("UPDATE ledger_entries SET data = $1 WHERE idx = $2")
            .bind(data)
            .bind(idx as i64)
            .execute(store.db().pool())
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1, "entry {idx} not found");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    EntryRow,
    HashTileByte,
    BundleByte,
    PartialBundle,
    CheckpointFile,
    CheckpointSignature,
    MissingTile,
}

impl Tamper {
    /// Where `verify` must report it.
    fn location(self) -> &'static str {
        match self {
            Tamper::EntryRow => "tile/entries/000",
            Tamper::HashTileByte => "tile/0/001",
            Tamper::BundleByte => "tile/entries/001",
            Tamper::PartialBundle => "tile/entries/002.p/188",
            Tamper::CheckpointFile => "checkpoint file",
            Tamper::CheckpointSignature => "checkpoint 700",
            Tamper::MissingTile => "tile/0/000",
        }
    }

    async fn apply(self, dir: &Path) {
        let log = dir.join("log");
        match self {
            Tamper::EntryRow => {
                let store = SqlStore::open(&dir.join("state.db")).await.unwrap();
                overwrite_entry(&store, 123, b"{\"n\":123,\"pad\":\"y\"}").await;
            }
            Tamper::HashTileByte => flip(&log.join("tile/0/001"), 40),
            Tamper::BundleByte => flip(&log.join("tile/entries/001"), 9),
            Tamper::PartialBundle => flip(&log.join("tile/entries/002.p/188"), 30),
            Tamper::CheckpointFile => flip(&log.join("checkpoint"), 20),
            Tamper::CheckpointSignature => {
                let store = SqlStore::open(&dir.join("state.db")).await.unwrap();
                let (size, note) = store.latest_checkpoint().await.unwrap().unwrap();
                let mut n = Note::parse(&note).unwrap();
                n.signatures[0].bytes[10] ^= 0x01;
                store.add_checkpoint(size, &n.to_bytes()).await.unwrap();
            }
            Tamper::MissingTile => std::fs::remove_file(log.join("tile/0/000")).unwrap(),
        }
    }
}

#[tokio::test]
async fn every_kind_of_tampering_is_found_and_repaired_from_a_mirror() {
    let k = key("example.org/log", SigType::Ed25519);
    let golden = tempfile::tempdir().unwrap();
    build(golden.path(), &k).await;
    assert!(audit(golden.path(), &k).await.ok());
    for t in [
        Tamper::EntryRow,
        Tamper::HashTileByte,
        Tamper::BundleByte,
        Tamper::PartialBundle,
        Tamper::CheckpointFile,
        Tamper::CheckpointSignature,
        Tamper::MissingTile,
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(golden.path(), dir.path());
        t.apply(dir.path()).await;
        let report = audit(dir.path(), &k).await;
        assert!(
            report.problems.iter().any(|p| p.location == t.location()),
            "{t:?}: expected a problem at {}, got {:?}",
            t.location(),
            report.problems
        );

        // Repair from a mirror of the published directory.
        let store = SqlStore::open(&dir.path().join("state.db")).await.unwrap();
        let out =
            repair(&store, &DirTiles::new(&dir.path().join("log")), &DirTiles::new(&golden.path().join("log")), trust(&k)).await.unwrap();
        assert!(!out.entries.is_empty() || !out.files.is_empty() || out.checkpoints > 0, "{t:?}: nothing repaired");
        let report = audit(dir.path(), &k).await;
        assert!(report.ok(), "{t:?}: {:?} after {:?}", report.problems, out);
    }
}

#[tokio::test]
async fn repair_refuses_a_mirror_that_does_not_reproduce_the_signed_root() {
    let k = key("example.org/log", SigType::Ed25519);
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &k).await;
    let bad_mirror = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join("log"), bad_mirror.path());
    flip(&bad_mirror.path().join("tile/entries/000"), 50);
    let store = SqlStore::open(&dir.path().join("state.db")).await.unwrap();
    overwrite_entry(&store, 5, b"x").await;
    let err = repair(&store, &DirTiles::new(&dir.path().join("log")), &DirTiles::new(bad_mirror.path()), trust(&k)).await.unwrap_err();
    assert!(matches!(err, LedgerError::Tampered(_)), "{err}");
    // Nothing was changed: the damage is still there to see.
    assert_eq!(store.read(5, 6).await.unwrap()[0], b"x");
    assert!(DirTiles::new(&dir.path().join("log")).exists("checkpoint"));
}

/// The log key alone, no witnesses: whom these tests' checkpoints come from.
fn trust(k: &SignerKey) -> kura_tlog::mirror::Trust<'_> {
    kura_tlog::mirror::Trust { log_key: k.verifier(), witnesses: &[], min_witnesses: 0 }
}
