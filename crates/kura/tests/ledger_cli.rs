//! The ledger from the command line, through the real binary: appends, files and their
//! proofs, verification and repair, an offline witness, and RFC 6962 proof checks
//! (HX-3, HX-4, HX-8, HX-10, HX-12, HIC-S5, HIC-S6).

use kura_tlog::tile::{decode_bundle, encode_bundle};
use std::path::Path;

mod common;
use common::{Served, bench_ran, fails, kura, kura_with_input, ok};
use std::process::Command;

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
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

#[test]
fn append_files_proofs_verify_and_repair() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    let vkey = ok(&kura(&home, &["ledger", "key"])).trim().to_string();
    assert!(vkey.starts_with("kura.local/") && vkey.splitn(3, '+').count() == 3, "{vkey}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("keys/ledger.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the signing key must be readable by the owner only");
    }

    let out = ok(&kura(&home, &["ledger", "append", "maintenance window opened"]));
    assert!(out.contains("recorded entry 0"), "{out}");
    // `-` reads standard input.
    let out = ok(&kura_with_input(&home, &["ledger", "append", "-"], Some("鍵を交換した / keys rotated\n")));
    assert!(out.contains("recorded entry 1"), "{out}");

    // A converted file with 600 records: one file entry and two record-hash entries.
    let data = dir.path().join("receipts.csv");
    let body: String = (0..600).map(|i| format!("RE,{i},1,2026-04\n")).collect();
    std::fs::write(&data, &body).unwrap();
    let out = ok(&kura(&home, &["ledger", "add-file", "--institution", "1312345678", data.to_str().unwrap()]));
    assert!(out.contains("600") && out.contains("at entry 2"), "{out}");
    // Enough notes to fill one full bundle (256 entries) and part of the next.
    for i in 0..3 {
        ok(&kura(&home, &["ledger", "append", &format!("note {i}")]));
    }
    let cp = ok(&kura(&home, &["ledger", "checkpoint"]));
    let origin = vkey.split('+').next().unwrap();
    assert!(cp.starts_with(&format!("{origin}\n8\n")), "{cp}");
    assert!(cp.contains(&format!("\u{2014} {origin} ")));
    assert_eq!(std::fs::read_to_string(home.join("ledger/log/checkpoint")).unwrap(), cp);

    // The proof of a file, checked offline against the data itself.
    let proof = dir.path().join("receipts.tlog-proof");
    ok(&kura(&home, &["ledger", "prove", "--file", data.to_str().unwrap(), "--out", proof.to_str().unwrap()]));
    let text = std::fs::read_to_string(&proof).unwrap();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    let out = ok(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &vkey, "--data", data.to_str().unwrap()]));
    assert!(out.contains("proof verified: entry 2"), "{out}");
    // A different file, another log's key, and every altered byte of the proof are refused.
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "RE,0\n").unwrap();
    fails(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &vkey, "--data", other.to_str().unwrap()]));
    let stranger = tempfile::tempdir().unwrap();
    let other_key = ok(&kura(stranger.path(), &["ledger", "key"])).trim().to_string();
    fails(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &other_key]));
    fails(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &vkey, "--min-witnesses", "1"]));
    let bytes = std::fs::read(&proof).unwrap();
    let altered = dir.path().join("altered.tlog-proof");
    for at in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[at] ^= 0x02;
        std::fs::write(&altered, &b).unwrap();
        let o = kura(&home, &["proof", "verify", altered.to_str().unwrap(), "--log-key", &vkey]);
        assert!(!o.status.success(), "byte {at} altered ('{}'), yet the proof verified", bytes[at] as char);
    }
    // By index too.
    ok(&kura(&home, &["ledger", "prove", "--index", "0", "--out", proof.to_str().unwrap()]));
    let out = ok(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &vkey]));
    assert!(out.contains("ledger.note"), "{out}");

    let out = ok(&kura(&home, &["ledger", "verify"]));
    assert!(out.contains("OK") && out.contains("8 エントリ entries"), "{out}");

    // Grow past one full bundle so that full tiles exist, then tamper and repair.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = home.join("state.db");
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        for i in 8..300i64 {
            sqlx::query("INSERT INTO ledger_entries (idx, data) VALUES (?, ?)")
                .bind(i)
                .bind(format!("bulk {i}").into_bytes())
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    });
    ok(&kura(&home, &["ledger", "checkpoint"]));
    ok(&kura(&home, &["ledger", "verify"]));
    let mirror = dir.path().join("mirror");
    copy_dir(&home.join("ledger/log"), &mirror);

    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        // Entry 99 now lives in the sealed row of bundle 0: rewrite it there.
        let row: Vec<u8> = sqlx::query_scalar("SELECT data FROM ledger_bundles WHERE bundle = 0").fetch_one(&pool).await.unwrap();
        let mut entries: Vec<Vec<u8>> = decode_bundle(&row).unwrap().into_iter().map(<[u8]>::to_vec).collect();
        entries[99] = b"bulk 99!".to_vec();
        let row = encode_bundle(entries.iter().map(Vec::as_slice)).unwrap();
        sqlx::query("UPDATE ledger_bundles SET data = ? WHERE bundle = 0").bind(row).execute(&pool).await.unwrap();
        pool.close().await;
    });
    flip(&home.join("ledger/log/tile/0/000"), 100);
    flip(&home.join("ledger/log/checkpoint"), 3);
    let out = fails(&kura(&home, &["ledger", "verify"]));
    for want in ["entry 99 differs", "tile/0/000", "checkpoint file", "checkpoint 300"] {
        assert!(out.contains(want), "verify did not report {want}:\n{out}");
    }
    // The damaged log refuses new appends rather than signing over the damage.
    fails(&kura(&home, &["ledger", "append", "on top of damage"]));
    let out = ok(&kura(&home, &["ledger", "repair", "--from", mirror.to_str().unwrap()]));
    assert!(out.contains("restored entry 99") && out.contains("the log verifies"), "{out}");
    ok(&kura(&home, &["ledger", "verify"]));
    ok(&kura(&home, &["ledger", "append", "after repair"]));
}

#[test]
fn offline_witness_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (log_home, w_home) = (dir.path().join("log"), dir.path().join("witness"));
    ok(&kura(&log_home, &["init"]));
    let cfg = log_home.join("kura.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("origin = \"\"", "origin = \"example.org/audit\"");
    std::fs::write(&cfg, &text).unwrap();
    let log_key = ok(&kura(&log_home, &["ledger", "key"])).trim().to_string();
    assert!(log_key.starts_with("example.org/audit+"));
    let w_key = ok(&kura(&w_home, &["witness", "key", "--name", "example.org/vault"])).trim().to_string();
    assert!(w_key.starts_with("example.org/vault+"));
    ok(&kura(&w_home, &["witness", "add-log", &log_key]));

    // The log requires one cosignature from the offline witness.
    let text = text.replace("min_witnesses = 0", "min_witnesses = 1") + &format!("\n[[ledger.witnesses]]\nkey = \"{w_key}\"\n");
    std::fs::write(&cfg, text).unwrap();
    let out = ok(&kura(&log_home, &["ledger", "append", "first"]));
    assert!(out.contains("waits for witnesses"), "{out}");
    assert!(!log_home.join("ledger/log/checkpoint").exists(), "published without a cosignature");

    let req = dir.path().join("req");
    let resp = dir.path().join("resp");
    ok(&kura(&log_home, &["ledger", "witness-request", "--witness", "example.org/vault", "--out", req.to_str().unwrap()]));
    ok(&kura(&w_home, &["witness", "cosign", req.to_str().unwrap(), "--out", resp.to_str().unwrap()]));
    // A replayed request is refused with 409 and the witness's size.
    let out = fails(&kura(&w_home, &["witness", "cosign", req.to_str().unwrap(), "--out", dir.path().join("again").to_str().unwrap()]));
    assert!(out.contains("409"), "{out}");
    let out = ok(&kura(&log_home, &["ledger", "witness-import", "--witness", "example.org/vault", resp.to_str().unwrap()]));
    assert!(out.contains("published") && out.contains("\u{2014} example.org/vault "), "{out}");

    let proof = dir.path().join("p.tlog-proof");
    ok(&kura(&log_home, &["ledger", "prove", "--index", "0", "--out", proof.to_str().unwrap()]));
    let p = proof.to_str().unwrap();
    let out = ok(&kura(&log_home, &["proof", "verify", p, "--log-key", &log_key, "--witness-key", &w_key, "--min-witnesses", "1"]));
    assert!(out.contains("cosigned by example.org/vault"), "{out}");
    fails(&kura(&log_home, &["proof", "verify", p, "--log-key", &log_key, "--witness-key", &w_key, "--min-witnesses", "2"]));

    // Second round: the witness checks consistency from what it cosigned before.
    ok(&kura(&log_home, &["ledger", "append", "second"]));
    ok(&kura(&log_home, &["ledger", "witness-request", "--witness", "example.org/vault", "--out", req.to_str().unwrap()]));
    ok(&kura(&w_home, &["witness", "cosign", req.to_str().unwrap(), "--out", resp.to_str().unwrap()]));
    ok(&kura(&log_home, &["ledger", "witness-import", "--witness", "example.org/vault", resp.to_str().unwrap()]));
    let cp = ok(&kura(&log_home, &["ledger", "checkpoint"]));
    assert!(cp.starts_with("example.org/audit\n2\n"), "{cp}");
    ok(&kura(&log_home, &["ledger", "verify"]));
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inclusion {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Vec<String>,
    #[serde(rename = "want_err")]
    want_err: bool,
}

#[derive(serde::Deserialize)]
struct Consistency {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Vec<String>,
    want_err: bool,
}

fn vectors<T: for<'de> serde::Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = format!("{}/../tlog/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn to_hex(b64: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn rfc6962_proof_checks_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let inclusion: Vec<Inclusion> = vectors("inclusion.json");
    assert!(inclusion.iter().any(|v| v.want_err) && inclusion.iter().any(|v| !v.want_err));
    for (k, v) in inclusion.iter().enumerate() {
        // Alternate base64 and hex, as auditors may paste either.
        let enc = |h: &String| if k % 2 == 0 { h.clone() } else { to_hex(h) };
        let proof: Vec<String> = v.proof.iter().map(enc).collect();
        let (index, size) = (v.leaf_idx.to_string(), v.tree_size.to_string());
        let o = kura(
            home,
            &[
                "proof",
                "check-inclusion",
                "--leaf-hash",
                &enc(&v.leaf_hash),
                "--index",
                &index,
                "--size",
                &size,
                "--root",
                &enc(&v.root),
                "--proof",
                &proof.join(","),
            ],
        );
        assert_eq!(o.status.success(), !v.want_err, "inclusion vector {k}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let consistency: Vec<Consistency> = vectors("consistency.json");
    for (k, v) in consistency.iter().enumerate() {
        let (s1, s2) = (v.size1.to_string(), v.size2.to_string());
        let o = kura(
            home,
            &[
                "proof",
                "check-consistency",
                "--size1",
                &s1,
                "--size2",
                &s2,
                "--root1",
                &v.root1,
                "--root2",
                &v.root2,
                "--proof",
                &v.proof.join(","),
            ],
        );
        assert_eq!(o.status.success(), !v.want_err, "consistency vector {k}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // An empty proof is an empty string: a one-leaf tree's leaf is its root.
    let leaf = "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=";
    ok(&kura(home, &["proof", "check-inclusion", "--leaf-hash", leaf, "--index", "0", "--size", "1", "--root", leaf, "--proof", ""]));
    let out = fails(&kura(
        home,
        &["proof", "check-inclusion", "--leaf-hash", "zz", "--index", "0", "--size", "1", "--root", leaf, "--proof", ""],
    ));
    assert!(out.contains("hash"), "{out}");
}

#[test]
fn online_witness_and_repair_from_a_served_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let (log_home, w_home, mirror_home) = (dir.path().join("log"), dir.path().join("witness"), dir.path().join("mirror"));
    ok(&kura(&log_home, &["init"]));
    let log_key = ok(&kura(&log_home, &["ledger", "key"])).trim().to_string();
    let w_key = ok(&kura(&w_home, &["witness", "key", "--name", "example.org/w1"])).trim().to_string();
    ok(&kura(&w_home, &["witness", "add-log", &log_key]));
    let witness = Served::start(&w_home, &["witness", "serve", "--listen", "127.0.0.1:0"], "listening on ");
    assert!(witness.addr.starts_with("http://127.0.0.1:"), "{}", witness.addr);

    // The log requires the online witness's cosignature and gets it over HTTP.
    let cfg = log_home.join("kura.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("min_witnesses = 0", "min_witnesses = 1")
        + &format!("\n[[ledger.witnesses]]\nkey = \"{w_key}\"\nurl = \"{}\"\n", witness.addr);
    std::fs::write(&cfg, text).unwrap();
    for i in 0..4 {
        let out = ok(&kura(&log_home, &["ledger", "append", &format!("operator note {i}")]));
        assert!(out.contains(&format!("checkpoint: size {}", i + 1)), "{out}");
    }
    let cp = ok(&kura(&log_home, &["ledger", "checkpoint"]));
    assert!(cp.contains("— example.org/w1 "), "the published checkpoint carries the cosignature: {cp}");
    let p = dir.path().join("p.tlog-proof");
    ok(&kura(&log_home, &["ledger", "prove", "--index", "1", "--out", p.to_str().unwrap()]));
    ok(&kura(&log_home, &["proof", "verify", p.to_str().unwrap(), "--log-key", &log_key, "--witness-key", &w_key, "--min-witnesses", "1"]));
    // With the witness gone, nothing new is published.
    drop(witness);
    let out = ok(&kura(&log_home, &["ledger", "append", "after the witness went away"]));
    assert!(out.contains("waits for witnesses"), "{out}");
    let out = fails(&kura(&log_home, &["ledger", "checkpoint"]));
    assert!(out.contains("1"), "{out}");
    assert!(std::fs::read_to_string(log_home.join("ledger/log/checkpoint")).unwrap().contains("\n4\n"));

    // A mirror: a copy of the published directory in another home, served read-only.
    ok(&kura(&mirror_home, &["init"]));
    copy_dir(&log_home.join("ledger/log"), &mirror_home.join("ledger/log"));
    let mirror = Served::start(&mirror_home, &["ledger", "serve", "--listen", "127.0.0.1:0"], "listening on ");
    flip(&log_home.join("ledger/log/tile/entries/000.p/4"), 100);
    let out = fails(&kura(&log_home, &["ledger", "verify"]));
    assert!(out.contains("tile/entries/000.p/4"), "{out}");
    let out = ok(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    assert!(out.contains("repaired"), "{out}");
    ok(&kura(&log_home, &["ledger", "verify"]));
    // Issue 15: the log signs a checkpoint before the witnesses cosign it (it travels to them in
    // a witness request). A mirror serving that uncosigned checkpoint is refused: a checkpoint
    // counts only under the witness policy. Before, repair published it (size 5, no cosignature).
    let req = dir.path().join("request.txt");
    ok(&kura(&log_home, &["ledger", "witness-request", "--witness", "example.org/w1", "--out", req.to_str().unwrap()]));
    let req = std::fs::read(&req).unwrap();
    let pending = &req[req.windows(2).position(|w| w == b"\n\n").unwrap() + 2..];
    assert!(String::from_utf8_lossy(pending).contains("\n5\n"), "{}", String::from_utf8_lossy(pending));
    let mirrored = mirror_home.join("ledger/log/checkpoint");
    let cosigned = std::fs::read(&mirrored).unwrap();
    std::fs::write(&mirrored, pending).unwrap();
    flip(&log_home.join("ledger/log/tile/entries/000.p/4"), 100);
    let out = fails(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    assert!(out.contains("witness policy"), "{out}");
    assert!(std::fs::read_to_string(log_home.join("ledger/log/checkpoint")).unwrap().contains("\n4\n"), "the published head is unchanged");
    std::fs::write(&mirrored, cosigned).unwrap();
    ok(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    // An unreachable mirror or a non-http URL is a clear error.
    drop(mirror);
    flip(&log_home.join("ledger/log/tile/entries/000.p/4"), 100);
    let out = fails(&kura(&log_home, &["ledger", "repair", "--from", "ftp://example.org/log"]));
    assert!(out.contains("http://"), "{out}");
}

/// Issue 15 §3 (HX-8): a hostile mirror decides nothing by its own words. Before the fix,
/// `repair --from http://…` believed the tree size of the mirror's checkpoint before verifying
/// it and listed every tile of that size: a forged size of 2^40 asked for billions of tiles.
#[test]
fn a_lying_mirror_is_refused_before_its_size_is_believed() {
    let dir = tempfile::tempdir().unwrap();
    let (log_home, mirror_home) = (dir.path().join("log"), dir.path().join("mirror"));
    ok(&kura(&log_home, &["init"]));
    let early = dir.path().join("early-log");
    for i in 0..3 {
        ok(&kura(&log_home, &["ledger", "append", &format!("operator note {i}")]));
        if i == 0 {
            copy_dir(&log_home.join("ledger/log"), &early);
        }
    }
    ok(&kura(&mirror_home, &["init"]));
    copy_dir(&log_home.join("ledger/log"), &mirror_home.join("ledger/log"));
    let mirror = Served::start(&mirror_home, &["ledger", "serve", "--listen", "127.0.0.1:0"], "listening on ");
    let published = mirror_home.join("ledger/log");
    let honest = std::fs::read_to_string(published.join("checkpoint")).unwrap();
    let body = kura_tlog::Note::parse(honest.as_bytes()).unwrap().text;
    let cp = kura_tlog::Checkpoint::parse_body(&body).unwrap();
    assert_eq!(cp.size, 3, "{honest}");
    let damaged = log_home.join("ledger/log/tile/entries/000.p/3");
    flip(&damaged, 10);
    let huge = 1u64 << 40;

    // 1. The true checkpoint with its size raised: the log key's signature no longer holds.
    let forged = honest.replacen("\n3\n", &format!("\n{huge}\n"), 1);
    assert_ne!(forged, honest);
    std::fs::write(published.join("checkpoint"), &forged).unwrap();
    let out = fails(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    assert!(out.contains("does not verify under this log's key"), "{out}");

    // 2. A well-formed checkpoint of the same origin and that size, signed by another key.
    let stranger = kura_tlog::SignerKey::generate(&cp.origin, kura_tlog::SigType::Ed25519).unwrap();
    let other = kura_tlog::Checkpoint::new(&cp.origin, huge, cp.root).sign(&stranger).unwrap();
    std::fs::write(published.join("checkpoint"), other.to_bytes()).unwrap();
    let out = fails(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    assert!(out.contains("does not verify under this log's key"), "{out}");

    // 3. The true checkpoint, and a hash tile larger than a tile of 3 hashes can be.
    std::fs::write(published.join("checkpoint"), &honest).unwrap();
    let tile = published.join("tile/0/000.p/3");
    let true_tile = std::fs::read(&tile).unwrap();
    assert_eq!(true_tile.len(), 3 * 32);
    std::fs::write(&tile, vec![0u8; 3 * 32 + 1]).unwrap();
    let out = fails(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    assert!(out.contains("tile/0/000.p/3") && out.contains("length limit"), "read no further than 96 bytes: {out}");
    // … or of the right size with other hashes: they do not reproduce the signed root.
    std::fs::write(&tile, vec![7u8; 3 * 32]).unwrap();
    let out = fails(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    assert!(out.contains("do not reproduce the root of its signed checkpoint"), "{out}");
    std::fs::write(&tile, &true_tile).unwrap();

    // 4. True hash tiles, and a bundle of three maximal entries (196 KiB) in place of the true
    // one: left out at that file, before it is kept (it would otherwise cost 64 KiB of disk and
    // memory for every entry the log has); the repair goes on without it, from the entries the
    // database still holds.
    let bundle = published.join("tile/entries/000.p/3");
    let true_bundle = std::fs::read(&bundle).unwrap();
    let big = vec![b'x'; 65_535];
    std::fs::write(&bundle, encode_bundle([big.as_slice(), big.as_slice(), big.as_slice()]).unwrap()).unwrap();
    let out = ok(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    assert!(out.contains("the mirror's tile/entries/000.p/3 does not verify: not used") && out.contains("repaired"), "{out}");
    std::fs::write(&bundle, &true_bundle).unwrap();
    flip(&damaged, 10);

    // 5. A directory mirror is read the same way: a hash tile that is not a regular file (a link
    // to /dev/zero, a FIFO) is refused, not read without end.
    let copy = dir.path().join("dir-mirror");
    copy_dir(&published, &copy);
    std::fs::remove_file(copy.join("tile/0/000.p/3")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", copy.join("tile/0/000.p/3")).unwrap();
    let out = fails(&kura(&log_home, &["ledger", "repair", "--from", copy.to_str().unwrap()]));
    assert!(out.contains("tile/0/000.p/3") && out.contains("not a regular file"), "{out}");

    // The same mirror, honest again, repairs the log.
    let out = ok(&kura(&log_home, &["ledger", "repair", "--from", &mirror.addr]));
    assert!(out.contains("repaired"), "{out}");
    ok(&kura(&log_home, &["ledger", "verify"]));

    // 6. An older genuine checkpoint (size 1, the log's own) cannot take the head back, even
    // when the database has lost its checkpoint rows: the published file's newer one counts.
    // Before, repair chose the mirror's and rolled the published head back to size 1.
    drop(mirror);
    let old_home = dir.path().join("old-mirror");
    ok(&kura(&old_home, &["init"]));
    copy_dir(&early, &old_home.join("ledger/log"));
    let old_mirror = Served::start(&old_home, &["ledger", "serve", "--listen", "127.0.0.1:0"], "listening on ");
    let db = format!("sqlite://{}", log_home.join("state.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        sqlx::query("DELETE FROM ledger_checkpoints").execute(&pool).await.unwrap();
        pool.close().await;
    });
    flip(&damaged, 10);
    let out = ok(&kura(&log_home, &["ledger", "repair", "--from", &old_mirror.addr]));
    assert!(out.contains("repaired"), "{out}");
    let head = std::fs::read_to_string(log_home.join("ledger/log/checkpoint")).unwrap();
    assert_eq!(head, honest, "the published head stays at size 3");
    ok(&kura(&log_home, &["ledger", "verify"]));
}

/// The benchmark runs end to end on a small log (its figures are not judged here: speed is
/// measured in release builds, see docs/benchmarks.md).
#[test]
fn ledger_benchmark_runs_and_its_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("bench");
    let o = Command::new(env!("CARGO_BIN_EXE_kura"))
        .args(["bench", "ledger", "--entries", "3000", "--proofs", "500", "--writers", "32", "--dir"])
        .arg(&work)
        .output()
        .unwrap();
    let out = bench_ran(&o);
    for row in ["durable appends", "append latency p99", "inclusion proofs generated", "full verify", "3000 entries"] {
        assert!(out.contains(row), "{row} missing from:\n{out}");
    }
    // The benchmark's log is a real one: the published checkpoint covers every entry.
    let cp = std::fs::read_to_string(work.join("log/checkpoint")).unwrap();
    assert_eq!(cp.lines().nth(1), Some("3000"), "{cp}");
    // A second run refuses to mix with the first.
    let o = Command::new(env!("CARGO_BIN_EXE_kura")).args(["bench", "ledger", "--entries", "10", "--dir"]).arg(&work).output().unwrap();
    assert!(fails(&o).contains("earlier run"));
}

/// Issue 14, finding 4: what a proof's entry says is printed through an escaper, so a hostile
/// field (an ESC sequence, a carriage return, a bidirectional override) cannot drive the
/// terminal of whoever checks it.
#[test]
fn proof_summaries_cannot_drive_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    let vkey = ok(&kura(&home, &["ledger", "key"])).trim().to_string();
    ok(&kura(&home, &["ledger", "append", "--actor", "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{202e}evil", "a note"]));
    let proof = dir.path().join("p.tlog-proof");
    ok(&kura(&home, &["ledger", "prove", "--index", "0", "--out", proof.to_str().unwrap()]));
    let out = ok(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &vkey]));
    assert!(!out.chars().any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'), "{out:?}");
    assert!(out.contains("\\u{1b}[2J"), "shown escaped: {out}");
}

/// Issue 14, finding 10: Kura does not call a witness or a mirror whose host is on a domain
/// blocklist.
#[test]
fn blocklisted_witnesses_and_mirrors_are_not_called() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    std::fs::write(home.join("blocked-domains.txt"), "evil.example\n").unwrap();
    let cfg = home.join("kura.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("domain_blocklists = []", "domain_blocklists = [\"blocked-domains.txt\"]");
    std::fs::write(&cfg, &text).unwrap();
    let out = fails(&kura(&home, &["ledger", "repair", "--from", "http://mirror.evil.example:7380/"]));
    assert!(out.contains("blocklist") && out.contains("mirror.evil.example"), "{out}");
    let w_key = ok(&kura(&dir.path().join("w"), &["witness", "key", "--name", "example.org/w1"])).trim().to_string();
    let text = text + &format!("\n[[ledger.witnesses]]\nkey = \"{w_key}\"\nurl = \"http://witness.evil.example:7380\"\n");
    std::fs::write(&cfg, text).unwrap();
    let out = fails(&kura(&home, &["ledger", "append", "a note"]));
    assert!(out.contains("blocklist") && out.contains("witness.evil.example"), "{out}");
}
