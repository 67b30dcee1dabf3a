//! `kura bench intake` (issue 18, "Performance"): the UKE files of a synthetic population
//! (100,000 persons, a year, by default) taken in as `kura intake` takes them — read, parsed
//! and validated, the file and every record hashed and recorded in the ledger, the hashed IDs
//! computed, and the rows written as a new encrypted dataset generation — against DuckDB's
//! `read_csv` of the same files (converted to UTF-8 beforehand, not timed) written to Parquet,
//! side by side in one run. Rates are of the UKE files' bytes and lines for both. Target:
//! Kura's rate at least DuckDB's.
//!
//! Not timed for either: generating the files; the malware scan (`kura intake` asks clamd,
//! whose speed is the engine's, not Kura's; without clamd the benchmark still runs).

use crate::report::{Figure, bench_dir, figures};
use kura::{CliError, Result};
use kura_intake::{Id5Answers, load, ordered, read_uke};
use kura_ledger::entry::{Actor, RecordHasher, hashed_file_entries};
use kura_store::Home;
use kura_synth::{Generator, SynthConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Arguments of `kura bench intake`.
#[derive(Debug, clap::Args)]
pub struct IntakeBenchArgs {
    /// 生成する人数（1年分）/ persons to generate (a year)
    #[arg(long, default_value_t = 100_000)]
    pub persons: u64,
    /// 乱数シード / random seed
    #[arg(long, default_value_t = 20_240_401)]
    pub seed: u64,
    /// DuckDB との比較を省く / skip the DuckDB comparison
    #[arg(long)]
    pub skip_duckdb: bool,
    /// 作業ディレクトリ（新規または空）/ working directory, new or empty [default: a temporary one]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// DuckDB: every file as CSV (no header, fields padded to the widest record), all text, into
/// one Parquet file.
const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys, time
src, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute("SET enable_progress_bar = false")
cols = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(48))
t = time.perf_counter()
con.execute(f"COPY (SELECT * FROM read_csv('{src}/**/*.csv', header = false, auto_detect = false, delim = ',', quote = '', escape = '', null_padding = true, columns = {{{cols}}})) TO '{out}' (FORMAT parquet)")
s = time.perf_counter() - t
rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
print(json.dumps({"seconds": s, "rows": rows, "version": duckdb.__version__}))
"#;

fn io(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Io { path: path.display().to_string(), source: e }
}

/// The UKE files under `dir`, sorted, with their sizes.
fn uke_files(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let p = e.map_err(io(&d))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "UKE") {
                let n = std::fs::metadata(&p).map_err(io(&p))?.len();
                out.push((p, n));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The ID5 answers beside a file.
fn id5(path: &Path) -> Result<Id5Answers> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let p = path.with_file_name(format!("{stem}.ID5.CSV"));
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    Id5Answers::parse(&p.display().to_string(), &text).map_err(|e| CliError::Bench(e.to_string()))
}

/// Runs `kura bench intake`.
pub fn intake(a: IntakeBenchArgs) -> Result<()> {
    let (dir, _guard) = bench_dir(a.dir.as_deref(), "kura-bench-intake")?;
    let home = Home::init(&dir.join("home"))?;
    let files_dir = dir.join("files");
    let g = Generator::new(SynthConfig::new(a.persons, a.seed), home.platform_pseudonym_key()?)?;
    let pb = kura::persons_bar(a.persons, "UKE 書き出し writing");
    let written = kura_synth_dataset::uke::write_uke(&g, &files_dir, &|n| pb.inc(n))?;
    pb.finish_and_clear();
    let files = uke_files(&files_dir)?;
    let bytes: u64 = files.iter().map(|(_, n)| n).sum();
    let lines: u64 = files
        .iter()
        .map(|(p, _)| std::fs::read(p).map(|b| b.iter().filter(|c| **c == b'\n').count() as u64).map_err(io(p)))
        .sum::<Result<u64>>()?;
    println!(
        "{} 人 persons: {} ファイル UKE files, {} 件 receipts, {} レコード records, {:.1} MB",
        a.persons,
        files.len(),
        written.receipts,
        lines,
        bytes as f64 / 1e6
    );

    // Kura, as `kura intake` does it (less the scan).
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let app = kura::app(&home)?;
    let rt = kura::runtime()?;
    let log = rt.block_on(app.open_log())?;
    let key = home.platform_pseudonym_key()?;
    let started = Instant::now();
    let work = |(path, _): &(PathBuf, u64)| -> Result<_> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let answers = id5(path)?;
        let mut hasher = RecordHasher::new(bytes.as_slice());
        let (outcome, staged) = read_uke(&path.display().to_string(), &mut hasher, &answers, &key, None);
        let _ = std::io::copy(&mut hasher, &mut std::io::sink());
        Ok((path.display().to_string(), outcome, staged, hasher.finish()))
    };
    let mut entries = Vec::new();
    let (receipts, loaded) = load(&home, "receipts", |sink| {
        let mut receipts = 0u64;
        ordered(&files, threads, work, |parsed| {
            let (name, outcome, staged, hashes) = parsed.map_err(|e| kura_intake::IntakeError::Dataset(e.to_string()))?;
            if let Some(p) = &outcome.refused {
                return Err(kura_intake::IntakeError::Dataset(format!("refused: {p}")));
            }
            let sha = hashes.sha256.iter().map(|b| format!("{b:02x}")).collect::<String>();
            entries.push(hashed_file_entries(&name, &hashes, &Actor::default(), &log.now()));
            receipts += outcome.accepted;
            sink.add(&staged, &kura_intake::FileInfo { sha256: &sha, name: &name, outcome: &outcome })?;
            Ok(())
        })?;
        Ok(receipts)
    })
    .map_err(|e| CliError::Bench(e.to_string()))?;
    let loaded_s = started.elapsed().as_secs_f64();
    rt.block_on(kura::intake::append_files(&log, &entries))?;
    rt.block_on(log.checkpoint())?;
    let kura_s = started.elapsed().as_secs_f64();
    if receipts != written.receipts || loaded.is_none() {
        return Err(CliError::Bench(format!("Kura loaded {receipts} receipts of {}", written.receipts)));
    }

    let mut figs = vec![
        Figure { what: "Kura: 受け入れ全体 / whole intake", value: format!("{kura_s:.2} s"), target: "", met: None },
        Figure { what: "Kura: MB/s", value: format!("{:.1}", bytes as f64 / 1e6 / kura_s), target: "", met: None },
        Figure { what: "Kura: records/s", value: format!("{:.0}", lines as f64 / kura_s), target: "", met: None },
        Figure {
            what: "  読み取り・検査・仮名化・書き込み / parse, check, pseudonymise, write",
            value: format!("{loaded_s:.2} s"),
            target: "",
            met: None,
        },
        Figure {
            what: "  台帳への記録 / ledger entries",
            value: format!("{:.2} s ({} entries)", kura_s - loaded_s, entries.iter().map(Vec::len).sum::<usize>()),
            target: "",
            met: None,
        },
    ];
    if !a.skip_duckdb {
        crate::query::ensure_duckdb()?;
        // The same files as UTF-8 CSV, beforehand.
        let csv = dir.join("csv");
        for (i, (p, _)) in files.iter().enumerate() {
            let raw = std::fs::read(p).map_err(io(p))?;
            let raw = raw.strip_suffix(&[0x1a]).unwrap_or(&raw);
            let (text, _, _) = encoding_rs::SHIFT_JIS.decode(raw);
            let sub = csv.join(format!("{:03}", i / 1000));
            std::fs::create_dir_all(&sub).map_err(io(&sub))?;
            let dst = sub.join(format!("{i:06}.csv"));
            std::fs::write(&dst, text.as_bytes()).map_err(io(&dst))?;
        }
        let out = dir.join("duckdb.parquet");
        let o = Command::new("python3")
            .args(["-c", DUCKDB_SCRIPT, &csv.display().to_string(), &out.display().to_string(), &threads.to_string()])
            .output()
            .map_err(io(Path::new("python3")))?;
        if !o.status.success() {
            return Err(CliError::Bench(format!("DuckDB: {}", String::from_utf8_lossy(&o.stderr))));
        }
        let stdout = String::from_utf8_lossy(&o.stdout);
        let last = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(last).map_err(|e| CliError::Bench(format!("DuckDB output: {e}: {stdout}")))?;
        let duck_s = v["seconds"].as_f64().unwrap_or(f64::NAN);
        if v["rows"].as_u64() != Some(lines) {
            return Err(CliError::Bench(format!("DuckDB read {} rows of {lines}", v["rows"])));
        }
        let ratio = duck_s / kura_s;
        figs.push(Figure {
            what: "DuckDB read_csv → Parquet",
            value: format!("{duck_s:.2} s (DuckDB {})", v["version"].as_str().unwrap_or("?")),
            target: "",
            met: None,
        });
        figs.push(Figure { what: "DuckDB: MB/s", value: format!("{:.1}", bytes as f64 / 1e6 / duck_s), target: "", met: None });
        figs.push(Figure {
            what: "Kura の速さ / Kura's rate ÷ DuckDB's",
            value: format!("{ratio:.2} ×"),
            target: "≥ 1.00 ×",
            met: Some(ratio >= 1.0),
        });
    }
    figures(&figs)
}
