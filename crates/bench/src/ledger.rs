//! `kura bench ledger`: the audit ledger's speed on this machine, on the real storage (SQLite
//! with `synchronous=FULL`, one fsync per batch) and the real tile directory.
//!
//! 1. durable appends from many concurrent writers: throughput and the latency of one append
//!    (from the call until the entry is committed and acknowledged);
//! 2. inclusion proofs: generation (proof path plus the `.tlog-proof` file) and verification,
//!    both of the path alone and of a whole offline proof file (signature included);
//! 3. the full audit (`kura ledger verify`): every entry, bundle, tile and checkpoint.

use crate::report::{Figure, bench_dir};
use indicatif::ProgressBar;
use kura::{CliError, Result, count_bar, runtime};
use kura_ledger::audit::verify;
use kura_ledger::log::{Log, LogOptions};
use kura_ledger::store::SqlStore;
use kura_tlog::tiles::DirTiles;
use kura_tlog::{Checkpoint, Hash, Note, ProofFile, SigType, SignerKey, leaf_hash, verify_inclusion};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `kura bench ledger`.
#[derive(Debug, clap::Args)]
pub struct LedgerBenchArgs {
    /// 追記するエントリ数 / entries to append
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: u64,
    /// 1エントリのバイト数 / bytes per entry
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(32..=4096))]
    pub entry_bytes: u16,
    /// 同時に追記する書き手の数 / concurrent writers
    #[arg(long, default_value_t = 256)]
    pub writers: usize,
    /// 生成・検証する証明の数 / proofs to generate and verify
    #[arg(long, default_value_t = 200_000)]
    pub proofs: u64,
    /// 作業ディレクトリ（既定：一時ディレクトリ、終了時に削除）/ working directory [default: a temporary one, removed at the end]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// An entry of exactly `len` bytes: canonical JSON like an audit event, padded.
fn entry(i: u64, len: usize) -> Vec<u8> {
    let head = format!("{{\"v\":1,\"action\":\"bench.append\",\"n\":{i},\"pad\":\"");
    let mut e = head.into_bytes();
    let pad = len.saturating_sub(e.len() + 2);
    e.extend(std::iter::repeat_n(b'x', pad));
    e.extend_from_slice(b"\"}");
    e
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 { format!("{:.2} M/s", r / 1e6) } else { format!("{:.0} /s", r) }
}

fn percentile(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Duration::from_micros(u64::from(sorted[k.min(sorted.len() - 1)]))
}

/// A deterministic spread of indexes below `size` (a Weyl sequence, no extra crate).
fn indexes(n: u64, size: u64) -> impl Iterator<Item = u64> {
    (0..n).map(move |k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15) % size.max(1))
}

/// Runs the benchmark and prints its figures.
pub fn ledger(a: LedgerBenchArgs) -> Result<()> {
    if a.entries == 0 || a.writers == 0 {
        return Err(CliError::Usage("--entries と --writers は1以上 / --entries and --writers must be at least 1".into()));
    }
    let (dir, _scratch) = bench_dir(a.dir.as_deref(), "kura-bench-ledger-")?;
    println!(
        "台帳ベンチマーク / ledger benchmark: {} entries × {} B, {} concurrent writers, SQLite synchronous=FULL (fsync per batch), {}",
        a.entries,
        a.entry_bytes,
        a.writers,
        dir.display()
    );
    runtime()?.block_on(run(&a, &dir))
}

async fn run(a: &LedgerBenchArgs, dir: &Path) -> Result<()> {
    let key = SignerKey::generate("bench.kura.local/ledger", SigType::Ed25519)?;
    let verifier = key.verifier().clone();
    let store = SqlStore::open(&dir.join("ledger.db")).await?;
    let tiles_dir = dir.join("log");
    let log = Log::open(store, Arc::new(DirTiles::new(&tiles_dir)), LogOptions::new(key)).await?;
    let mut figures = Vec::new();
    let len = usize::from(a.entry_bytes);

    // 1. Durable appends from concurrent writers.
    let pb = count_bar(a.entries, "追記 / appending", "件 entries");
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(a.writers);
    for w in 0..a.writers as u64 {
        let (log, done, n, writers) = (log.clone(), done.clone(), a.entries, a.writers as u64);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity((n / writers + 1) as usize);
            let mut placed = Vec::with_capacity((n / writers + 1) as usize);
            let mut i = w;
            while i < n {
                let e = entry(i, len);
                let t = Instant::now();
                let index = log.append(e).await?;
                placed.push((index, i));
                lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                done.fetch_add(1, Ordering::Relaxed);
                i += writers;
            }
            Ok::<_, kura_ledger::LedgerError>((lat, placed))
        }));
    }
    let ticker = {
        let (pb, done) = (pb.clone(), done.clone());
        tokio::spawn(async move {
            loop {
                pb.set_position(done.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let mut latencies = Vec::with_capacity(a.entries as usize);
    // Which entry each index holds: writers race, so the log decides the order.
    let mut holds = vec![u64::MAX; a.entries as usize];
    for t in tasks {
        let (lat, placed) = t.await.map_err(|e| CliError::Bench(e.to_string()))??;
        latencies.extend(lat);
        for (index, i) in placed {
            if let Some(slot) = holds.get_mut(index as usize) {
                *slot = i;
            }
        }
    }
    if holds.contains(&u64::MAX) {
        return Err(CliError::Bench("an acknowledged append has no index of its own".into()));
    }
    let append_time = started.elapsed();
    ticker.abort();
    pb.finish_and_clear();
    latencies.sort_unstable();
    let append_rate = rate(a.entries, append_time);
    figures.push(Figure {
        what: "追記スループット / durable appends",
        value: format!("{} ({:.1} s)", fmt_rate(append_rate), append_time.as_secs_f64()),
        target: "≥ 20,000 /s",
        met: Some(append_rate >= 20_000.0),
    });
    figures.push(Figure {
        what: "追記の遅延 p50 / append latency p50",
        value: format!("{:.1} ms", percentile(&latencies, 0.50).as_secs_f64() * 1e3),
        target: "",
        met: None,
    });
    figures.push(Figure {
        what: "追記の遅延 p99 / append latency p99",
        value: format!("{:.1} ms", percentile(&latencies, 0.99).as_secs_f64() * 1e3),
        target: "",
        met: None,
    });
    drop(latencies);

    let t = Instant::now();
    let note_bytes = log.checkpoint().await?;
    figures.push(Figure {
        what: "チェックポイント署名・公開 / checkpoint sign + publish",
        value: format!("{:.1} ms", t.elapsed().as_secs_f64() * 1e3),
        target: "",
        met: None,
    });
    let note = Note::parse(&note_bytes)?;
    let cp = Checkpoint::parse_body(&note.text)?;
    let size = cp.size;

    // 2. Proofs: generation of the path and the offline file; verification of both.
    let n = a.proofs.max(1);
    let t = Instant::now();
    let mut files = Vec::with_capacity(n.min(100_000) as usize);
    let mut bytes_total = 0usize;
    for (k, i) in indexes(n, size).enumerate() {
        let proof = log.inclusion_proof(i, size)?;
        let file = ProofFile { extra: None, index: i, proof, checkpoint: note_bytes.clone() }.to_bytes();
        bytes_total += file.len();
        if k < 100_000 {
            files.push(file);
        }
    }
    let gen_time = t.elapsed();
    let gen_rate = rate(n, gen_time);
    figures.push(Figure {
        what: "包含証明の生成 / inclusion proofs generated",
        value: format!("{} ({} B/file)", fmt_rate(gen_rate), bytes_total / n as usize),
        target: "≥ 50,000 /s",
        met: Some(gen_rate >= 50_000.0),
    });

    // The leaf hashes the verifier needs (it holds the entries it checks).
    let leaves: Vec<(u64, Hash)> = indexes(n, size).map(|i| (i, leaf_hash(&entry(holds[i as usize], len)))).collect();
    let paths: Vec<Vec<Hash>> = leaves.iter().map(|(i, _)| log.inclusion_proof(*i, size)).collect::<std::result::Result<_, _>>()?;
    let t = Instant::now();
    for ((i, leaf), proof) in leaves.iter().zip(&paths) {
        verify_inclusion(leaf, *i, size, proof, &cp.root)?;
    }
    let ver_rate = rate(n, t.elapsed());
    figures.push(Figure { what: "包含証明の検証 / inclusion proofs verified", value: fmt_rate(ver_rate), target: "", met: None });
    drop(paths);
    let t = Instant::now();
    for (file, (_, leaf)) in files.iter().zip(&leaves) {
        ProofFile::parse(file)?.verify(leaf, &verifier, &[], 0)?;
    }
    let file_rate = rate(files.len() as u64, t.elapsed());
    figures.push(Figure {
        what: "証明ファイルの検証（署名込み）/ .tlog-proof files verified (signature included)",
        value: fmt_rate(file_rate),
        target: "",
        met: None,
    });
    drop(files);
    drop(leaves);

    // 3. The full audit, as `kura ledger verify` runs it.
    let pb = ProgressBar::new_spinner();
    pb.set_message("全件監査 / full verify");
    pb.enable_steady_tick(Duration::from_millis(200));
    let t = Instant::now();
    let report = verify(log.store(), &DirTiles::new(&tiles_dir), &verifier, &[], 0).await?;
    let verify_time = t.elapsed();
    pb.finish_and_clear();
    if !report.ok() {
        return Err(CliError::Bench(format!("the benchmark's own log does not verify: {:?}", report.problems.first())));
    }
    let verify_rate = rate(report.entries, verify_time);
    figures.push(Figure {
        what: "全件監査 / full verify",
        value: format!(
            "{} ({} entries, {} tiles, {:.2} s)",
            fmt_rate(verify_rate),
            report.entries,
            report.tiles,
            verify_time.as_secs_f64()
        ),
        target: "≥ 1,000,000 /s",
        met: Some(verify_rate >= 1_000_000.0),
    });

    let db_size = ["ledger.db", "ledger.db-wal"].iter().filter_map(|f| std::fs::metadata(dir.join(f)).ok()).map(|m| m.len()).sum::<u64>();
    let verdict = crate::report::figures(&figures);
    println!("データベース / database: {:.1} MiB; tree size {size}", db_size as f64 / 1_048_576.0);
    verdict
}
