//! Crash safety (HIC-S5): a child process appends with concurrent writers and checkpoints,
//! reporting each acknowledged index; it is killed with SIGKILL mid-batch. After reopening,
//! the log verifies and every acknowledged entry is present with its bytes.
//!
//! The child is this same test binary, re-run with `KURA_CRASH_CHILD` set.

use kura_ledger::audit::verify;
use kura_ledger::log::{Log, LogOptions};
use kura_ledger::store::{LedgerStore, SqlStore};
use kura_tlog::tiles::DirTiles;
use kura_tlog::{SigType, SignerKey};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

const CHILD: &str = "KURA_CRASH_CHILD";

fn entry(writer: u64, n: u64) -> Vec<u8> {
    format!("{{\"writer\":{writer},\"n\":{n},\"pad\":\"{}\"}}", "z".repeat(200)).into_bytes()
}

fn key_path(dir: &Path) -> std::path::PathBuf {
    dir.join("ledger.key")
}

async fn open(dir: &Path) -> Log<SqlStore> {
    let key = SignerKey::parse(&std::fs::read_to_string(key_path(dir)).unwrap()).unwrap();
    let store = SqlStore::open(&dir.join("state.db")).await.unwrap();
    let mut opts = LogOptions::new(key);
    opts.batch_max = 512;
    Log::open(store, Arc::new(DirTiles::new(&dir.join("log"))), opts).await.unwrap()
}

/// The child: 8 writers append forever; each acknowledgement is printed as `writer n index`.
/// A checkpoint is signed every 2,000 entries so that the kill can land in one.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD) else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let log = open(Path::new(&dir)).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64, u64)>();
        for w in 0..8u64 {
            let log = log.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let i = log.append(entry(w, n)).await.unwrap();
                    if tx.send((w, n, i)).is_err() {
                        return;
                    }
                }
            });
        }
        let cp = log.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                let _ = cp.checkpoint().await;
            }
        });
        let mut out = std::io::stdout().lock();
        while let Some((w, n, i)) = rx.recv().await {
            writeln!(out, "{w} {n} {i}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[tokio::test]
async fn killed_mid_batch_loses_no_acknowledged_entry() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::generate("example.org/crash", SigType::Ed25519).unwrap();
    std::fs::write(key_path(dir.path()), key.to_secret_string().as_bytes()).unwrap();

    let mut acked: Vec<(u64, u64, u64)> = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads", "1"])
            .env(CHILD, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        // Kill at a different point each round, while writers are busy.
        let kill_after = 3_000 + round * 2_500;
        let mut seen = 0;
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            let v: Vec<u64> = line.split(' ').filter_map(|t| t.parse().ok()).collect();
            if v.len() == 3 {
                acked.push((v[0], v[1], v[2]));
                seen += 1;
            }
            if seen == kill_after {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
        child.wait().unwrap();
        assert!(seen >= kill_after, "round {round}: the child stopped after {seen} acknowledgements");

        // Reopen: the log rebuilds, republishes what the kill interrupted, and verifies.
        let log = open(dir.path()).await;
        let store = SqlStore::open(&dir.path().join("state.db")).await.unwrap();
        let size = store.size().await.unwrap();
        let entries = store.read(0, size).await.unwrap();
        for &(w, n, i) in &acked {
            assert_eq!(entries.get(i as usize), Some(&entry(w, n)), "acknowledged entry {i} (writer {w}, #{n}) lost");
        }
        log.checkpoint().await.unwrap();
        let report = verify(&store, &DirTiles::new(&dir.path().join("log")), log.verifier(), &[], 0).await.unwrap();
        assert!(report.ok(), "round {round}: {:?}", report.problems);
        assert_eq!(report.entries, size);
    }
}
