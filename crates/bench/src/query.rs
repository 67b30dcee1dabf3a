//! `kura bench query`: the same analytical SQL through Kura (encrypted files, through a grant)
//! and through DuckDB (the `duckdb` package from PyPI, on the same data decrypted to plaintext
//! Parquet), side by side in one run, with answers compared.

use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use kura::{CliError, Result, count_bar, runtime, synth_with_progress};
use kura_query::{EngineSpec, Grant, QueryEngine};
use kura_store::{DatasetEntry, GrantedKeys, Home, WriteOptions, aad_prefix};
use kura_synth::SynthConfig;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::file::properties::WriterProperties;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `kura bench query`.
#[derive(Debug, clap::Args)]
pub struct QueryBenchArgs {
    /// 生成する人数 / persons to generate
    #[arg(long, default_value_t = 100_000)]
    pub persons: u64,
    /// 乱数シード / random seed
    #[arg(long, default_value_t = 20_240_401)]
    pub seed: u64,
    /// 各クエリの計測回数（中央値を採用、別に1回の予備実行）/ timed runs per query (median reported; one warm-up run first)
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// 作業ディレクトリ（新規または空。既定：一時ディレクトリ、終了時に削除）/ working directory, new or empty
    /// [default: a temporary one, removed at the end]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// DuckDB との比較を省く / skip the DuckDB side
    #[arg(long)]
    pub skip_duckdb: bool,
    /// 使うスレッド数（両エンジン共通、0 = CPU数）/ threads for both engines (0 = CPUs)
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// One benchmark query.
pub struct BenchQuery {
    /// Short name.
    pub name: &'static str,
    /// What it measures.
    pub title: &'static str,
    /// SQL accepted by both DataFusion and DuckDB.
    pub sql: &'static str,
}

/// The grant the suite runs under: exactly the columns it needs (no ID1/ID2, no names of
/// institutions), as a researcher's approved application would give.
pub const GRANT: &[&str] = &[
    "re.receipt_id",
    "re.id5",
    "re.age",
    "re.sex",
    "re.prefecture",
    "re.service_month",
    "re.receipt_kind",
    "re.total_points",
    "re.actual_days",
    "sy.receipt_id",
    "sy.disease_code",
    "sy.suspected",
    "sy.main",
    "iy.receipt_id",
    "iy.drug_code",
    "iy.points",
    "iy.count",
    "dpc.receipt_id",
    "dpc.dpc_code",
    "checkup.checkup_id",
    "checkup.id5",
    "checkup.sex",
    "checkup.age",
    "checkup_item.checkup_id",
    "checkup_item.item_code",
    "checkup_item.value",
    "care_claim.id4",
    "care_claim.age",
    "care_claim.care_level",
    "care_claim.units",
    "m_drug",
    "m_lab_item",
    "m_prefecture",
];

/// The suite: cohort selection across receipts, diagnoses and drugs; checkup aggregates; care by
/// age; a monthly trend; top-N; linkage of checkups with claims.
pub const QUERIES: &[BenchQuery] = &[
    BenchQuery {
        name: "q1_cohort_metformin",
        title: "糖尿病コホートのメトホルミン使用（SY×RE×IY）/ diabetes cohort on metformin",
        sql: "WITH dm AS (
  SELECT r.id5, min(r.age) AS age FROM sy s JOIN re r ON r.receipt_id = s.receipt_id
  WHERE s.disease_code = '2500015' AND NOT s.suspected AND r.id5 IS NOT NULL AND r.id5 <> '9'
  GROUP BY r.id5),
met AS (
  SELECT DISTINCT r.id5 FROM iy i JOIN re r ON r.receipt_id = i.receipt_id
  WHERE i.drug_code IN (SELECT drug_code FROM m_drug WHERE efficacy_class = '3962'))
SELECT CAST(floor(dm.age / 10.0) * 10 AS INT) AS band, count(*) AS patients, count(met.id5) AS metformin_users
FROM dm LEFT JOIN met ON met.id5 = dm.id5
GROUP BY CAST(floor(dm.age / 10.0) * 10 AS INT) ORDER BY band",
    },
    BenchQuery {
        name: "q2_checkup_means",
        title: "健診値の平均（性・年齢階級・項目）/ checkup means by sex, age band, item",
        sql: "SELECT c.sex, CAST(floor(c.age / 10.0) * 10 AS INT) AS band, l.item_key, count(*) AS n, avg(i.value) AS mean
FROM checkup c JOIN checkup_item i ON i.checkup_id = c.checkup_id
JOIN m_lab_item l ON l.item_code = i.item_code
WHERE l.item_key IN ('hba1c', 'bmi', 'sbp', 'ldl')
GROUP BY c.sex, CAST(floor(c.age / 10.0) * 10 AS INT), l.item_key ORDER BY 1, 2, 3",
    },
    BenchQuery {
        name: "q3_care_by_age",
        title: "介護サービス利用（年齢階級・要介護度）/ care use by age band and level",
        sql: "SELECT CASE WHEN age < 75 THEN '<75' WHEN age < 85 THEN '75-84' ELSE '85+' END AS band, care_level,
  count(DISTINCT id4) AS users, sum(units) AS units
FROM care_claim
GROUP BY CASE WHEN age < 75 THEN '<75' WHEN age < 85 THEN '75-84' ELSE '85+' END, care_level ORDER BY 1, 2",
    },
    BenchQuery {
        name: "q4_monthly_trend",
        title: "月別のレセプト数・患者数・点数 / monthly receipts, persons, points",
        sql: "SELECT service_month, receipt_kind, count(*) AS receipts, count(DISTINCT id5) AS persons, sum(total_points) AS points
FROM re GROUP BY service_month, receipt_kind ORDER BY 1, 2",
    },
    BenchQuery {
        name: "q5_top_drugs",
        title: "薬剤料の上位10品目 / top 10 drugs by points",
        sql: "SELECT d.name_ja, d.efficacy_class, sum(i.points * i.count) AS points, count(*) AS lines
FROM iy i JOIN m_drug d ON d.drug_code = i.drug_code
GROUP BY d.name_ja, d.efficacy_class ORDER BY points DESC LIMIT 10",
    },
    BenchQuery {
        name: "q6_top_inpatient_diagnoses",
        title: "入院の主傷病 上位10 / top 10 main diagnoses of inpatient receipts",
        sql: "SELECT s.disease_code, count(*) AS receipts
FROM sy s JOIN re r ON r.receipt_id = s.receipt_id
WHERE r.receipt_kind IN ('DPC', '医科入院') AND s.main
GROUP BY s.disease_code ORDER BY receipts DESC, s.disease_code LIMIT 10",
    },
    BenchQuery {
        name: "q7_hypertension_by_prefecture",
        title: "高血圧患者の降圧薬使用（都道府県別）/ antihypertensive use by prefecture",
        sql: "WITH ht AS (
  SELECT r.id5, min(r.prefecture) AS prefecture FROM sy s JOIN re r ON r.receipt_id = s.receipt_id
  WHERE s.disease_code IN ('8833421', '8840107') AND NOT s.suspected AND r.id5 IS NOT NULL AND r.id5 <> '9'
  GROUP BY r.id5),
treated AS (
  SELECT DISTINCT r.id5 FROM iy i JOIN re r ON r.receipt_id = i.receipt_id
  JOIN m_drug d ON d.drug_code = i.drug_code WHERE d.efficacy_class IN ('2171', '2149'))
SELECT p.name_ja, count(*) AS patients, count(t.id5) AS treated
FROM ht JOIN m_prefecture p ON p.prefecture = ht.prefecture LEFT JOIN treated t ON t.id5 = ht.id5
GROUP BY p.name_ja ORDER BY p.name_ja",
    },
    BenchQuery {
        name: "q8_dpc_groups",
        title: "DPC診断群分類ごとの患者数・在院日数・点数 / DPC groups: patients, bed days, points",
        sql: "SELECT d.dpc_code, count(DISTINCT r.id5) AS patients, sum(r.actual_days) AS bed_days, avg(r.total_points) AS mean_points
FROM dpc d JOIN re r ON r.receipt_id = d.receipt_id
GROUP BY d.dpc_code ORDER BY 1",
    },
    BenchQuery {
        name: "q9_undiagnosed_high_hba1c",
        title: "健診でHbA1c≥6.5%だが糖尿病の病名がない人（健診×レセプト）/ HbA1c ≥ 6.5 % without a diagnosis",
        sql: "WITH high AS (
  SELECT DISTINCT c.id5, c.sex FROM checkup c JOIN checkup_item i ON i.checkup_id = c.checkup_id
  JOIN m_lab_item l ON l.item_code = i.item_code
  WHERE l.item_key = 'hba1c' AND i.value >= 6.5 AND c.id5 IS NOT NULL),
dm AS (
  SELECT DISTINCT r.id5 FROM sy s JOIN re r ON r.receipt_id = s.receipt_id
  WHERE s.disease_code = '2500015' AND NOT s.suspected AND r.id5 IS NOT NULL)
SELECT h.sex, count(*) AS high, sum(CASE WHEN dm.id5 IS NULL THEN 1 ELSE 0 END) AS undiagnosed
FROM high h LEFT JOIN dm ON dm.id5 = h.id5 GROUP BY h.sex ORDER BY 1",
    },
];

/// The DuckDB side: a Python process that answers one query per line of standard input with
/// one line of JSON (seconds, rows), so that the two engines can be timed alternately.
const DUCKDB_SCRIPT: &str = r#"
import sys, json, time, resource, decimal, datetime
import duckdb
cfg = json.loads(sys.stdin.readline())
con = duckdb.connect()
con.execute(f"SET threads TO {int(cfg['threads'])}")
con.execute("SET enable_progress_bar = false")
for t in cfg['tables']:
    con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{cfg['plain_dir']}/{t}/*.parquet')")
def norm(v):
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return v
print(json.dumps({'version': duckdb.__version__}), flush=True)
for line in sys.stdin:
    sql = json.loads(line)['sql']
    t0 = time.perf_counter()
    rows = con.execute(sql).fetchall()
    t1 = time.perf_counter()
    print(json.dumps({'seconds': t1 - t0, 'rows': [[norm(v) for v in r] for r in rows],
                      'peak_rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
"#;

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Resets the peak-memory mark (Linux), so the next phase is measured alone.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The target: Kura's median time over the suite at most 1.5 times DuckDB's (issue 2).
const MAX_MEDIAN_RATIO: f64 = 1.5;

/// The median (the upper one of an even count); NaN of nothing.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Normalises a value for comparison: numbers to 9 significant digits, NULL as `NULL`.
fn norm_cell(s: &str) -> String {
    if s.is_empty() || s == "null" || s == "NULL" {
        return "NULL".into();
    }
    match s.parse::<f64>() {
        // -0 and 0 compare equal.
        Ok(x) => {
            if x == 0.0 {
                "0".into()
            } else {
                format!("{x:.8e}")
            }
        }
        Err(_) => s.to_string(),
    }
}

fn norm_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "NULL".into(),
        serde_json::Value::String(s) => norm_cell(s),
        serde_json::Value::Bool(b) => b.to_string(),
        other => norm_cell(&other.to_string()),
    }
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

/// Writes every table of a synthetic dataset, decrypted with the owner's keys, as plaintext
/// Parquet with the same compression and row groups: the peer engine's copy of the same data.
fn export_plaintext(home: &Home, entry: &DatasetEntry, dir: &Path, row_group_rows: usize) -> Result<u64> {
    if !entry.synthetic {
        return Err(CliError::Bench(
            "平文の書き出しは合成データにのみ許されます / plaintext export is allowed for synthetic data only".into(),
        ));
    }
    let ids: Vec<&str> = entry
        .tables
        .iter()
        .flat_map(|t| std::iter::once(t.footer_key_id.as_str()).chain(t.columns.iter().map(|c| c.key_id.as_str())))
        .collect();
    let (master, keyring, _) = home.snapshot()?;
    let keys = Arc::new(GrantedKeys::unwrap(&master, &keyring, ids)?);
    let files: usize = entry.tables.iter().map(|t| t.files.len()).sum();
    let pb = ProgressBar::new(files as u64);
    pb.set_style(
        ProgressStyle::with_template("平文コピー plaintext copy [{bar:30}] {pos}/{len} files")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut bytes = 0;
    let bench = |e: String| CliError::Bench(e);
    for t in &entry.tables {
        let out_dir = dir.join(&t.name);
        std::fs::create_dir_all(&out_dir).map_err(|e| CliError::Io { path: out_dir.display().to_string(), source: e })?;
        for f in &t.files {
            let props = FileDecryptionProperties::with_key_retriever(keys.clone())
                .with_aad_prefix(aad_prefix(&f.path))
                .build()
                .map_err(|e| bench(e.to_string()))?;
            let src = home.data_dir().join(&f.path);
            let file = std::fs::File::open(&src).map_err(|e| CliError::Io { path: src.display().to_string(), source: e })?;
            let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(
                file,
                ArrowReaderOptions::new().with_file_decryption_properties(props),
            )
            .and_then(|b| b.build())
            .map_err(|e| bench(format!("{}: {e}", f.path)))?;
            let name = Path::new(&f.path).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let dst = out_dir.join(name);
            let out = std::fs::File::create(&dst).map_err(|e| CliError::Io { path: dst.display().to_string(), source: e })?;
            let wprops =
                WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_row_count(Some(row_group_rows)).build();
            let mut writer: Option<ArrowWriter<std::fs::File>> = None;
            let mut out = Some(out);
            for batch in reader {
                let batch = batch.map_err(|e| bench(e.to_string()))?;
                if writer.is_none()
                    && let Some(o) = out.take()
                {
                    writer = Some(ArrowWriter::try_new(o, batch.schema(), Some(wprops.clone())).map_err(|e| bench(e.to_string()))?);
                }
                if let Some(w) = writer.as_mut() {
                    w.write(&batch).map_err(|e| bench(e.to_string()))?;
                }
            }
            if let Some(w) = writer {
                w.close().map_err(|e| bench(e.to_string()))?;
            }
            bytes += std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    Ok(bytes)
}

pub(crate) fn ensure_duckdb() -> Result<()> {
    let ok = || Command::new("python3").args(["-c", "import duckdb"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if ok() {
        return Ok(());
    }
    eprintln!("DuckDB（PyPI の duckdb）をインストールします / installing DuckDB (duckdb from PyPI)…");
    let _ = Command::new("python3").args(["-m", "pip", "install", "--quiet", "duckdb"]).status();
    if ok() {
        Ok(())
    } else {
        Err(CliError::Bench("python3 から duckdb を読み込めません。`python3 -m pip install duckdb` を実行するか --skip-duckdb を付けてください / cannot import duckdb: run `python3 -m pip install duckdb` or pass --skip-duckdb".into()))
    }
}

/// A running DuckDB process.
struct DuckServer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    version: String,
    peak_rss: u64,
}

impl DuckServer {
    fn start(plain: &Path, tables: &[String], threads: usize) -> Result<Self> {
        let mut child = Command::new("python3")
            .args(["-c", DUCKDB_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| CliError::Io { path: "python3".into(), source: e })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(CliError::Bench("python3: no pipes".into()));
        };
        let mut s = Self { child, stdin, stdout: std::io::BufReader::new(stdout), version: String::new(), peak_rss: 0 };
        let cfg = serde_json::json!({ "plain_dir": plain.display().to_string(), "tables": tables, "threads": threads });
        let hello = s.call(&cfg)?;
        s.version = hello["version"].as_str().unwrap_or("?").to_string();
        Ok(s)
    }

    fn call(&mut self, msg: &serde_json::Value) -> Result<serde_json::Value> {
        use std::io::BufRead;
        let io = |e| CliError::Io { path: "duckdb process".into(), source: e };
        writeln!(self.stdin, "{msg}").map_err(io)?;
        self.stdin.flush().map_err(io)?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(io)?;
        if line.is_empty() {
            return Err(CliError::Bench("DuckDB が終了しました（上のエラーを参照）/ DuckDB exited: see the error above".into()));
        }
        serde_json::from_str(&line).map_err(|e| CliError::Bench(format!("DuckDB output: {e}")))
    }

    /// Runs a query: seconds and normalised, sorted rows.
    fn run(&mut self, sql: &str) -> Result<(f64, Vec<Vec<String>>)> {
        let v = self.call(&serde_json::json!({ "sql": sql }))?;
        self.peak_rss = self.peak_rss.max(v["peak_rss_kb"].as_u64().unwrap_or(0) * 1024);
        let rows =
            v["rows"].as_array().into_iter().flatten().map(|row| row.as_array().into_iter().flatten().map(norm_json).collect()).collect();
        Ok((v["seconds"].as_f64().unwrap_or(f64::NAN), sorted(rows)))
    }
}

impl Drop for DuckServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or(0.0, |kb| kb as f64 / 1048576.0);
    format!("{cores} cores ({cpu}), {mem:.0} GiB RAM")
}

/// Runs `kura bench query`.
pub fn query(a: QueryBenchArgs) -> Result<()> {
    // A given directory must be new or empty: nothing in it is removed or overwritten.
    let (work, _scratch) = crate::report::bench_dir(a.dir.as_deref(), "kura-bench-query-")?;
    let threads = if a.threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { a.threads };
    if !a.skip_duckdb {
        ensure_duckdb()?;
    }
    println!(
        "Kura ベンチマーク / benchmark: {} 人 persons, seed {}, {} runs, {} threads, {}",
        a.persons,
        a.seed,
        a.runs,
        threads,
        machine()
    );
    let home = Home::init(&work.join("home"))?;

    // 1. Generation.
    reset_peak_rss();
    let opts = WriteOptions { threads, ..WriteOptions::from_home(&home, "ndb") };
    let (entry, gen_secs) = synth_with_progress(&home, SynthConfig::new(a.persons, a.seed), &opts)?;
    let gen_peak = peak_rss().unwrap_or(0);
    let rows = entry.rows();
    println!(
        "生成 generation: {rows} 行 rows in {gen_secs:.1} s = {:.0} 行/s rows/s; peak memory {:.0} MiB",
        rows as f64 / gen_secs,
        gen_peak as f64 / 1048576.0
    );

    // 2. The plaintext copy for DuckDB and the size overhead of encryption.
    let plain = work.join("plain");
    let plain_bytes = export_plaintext(&home, &entry, &plain, home.store_config().row_group_rows)?;
    let enc_bytes = entry.bytes();
    let overhead = 100.0 * (enc_bytes as f64 / plain_bytes.max(1) as f64 - 1.0);
    println!(
        "サイズ size: 暗号化 encrypted {:.1} MiB, 平文 plaintext {:.1} MiB, 暗号化のオーバーヘッド encryption overhead {overhead:+.2} %",
        enc_bytes as f64 / 1048576.0,
        plain_bytes as f64 / 1048576.0
    );

    // 3. Both engines, alternately: per query one warm-up each, then `runs` timed runs taken
    //    in turn, so that a change in the machine's speed affects both alike.
    let tables: Vec<String> = entry.tables.iter().map(|t| t.name.clone()).collect();
    let mut duck = if a.skip_duckdb { None } else { Some(DuckServer::start(&plain, &tables, threads)?) };
    let grant = Grant::parse(&entry, GRANT)?;
    let mut spec = EngineSpec::from_home(&home, "ndb", Some(grant))?;
    spec.limits.target_partitions = threads;
    let engine = QueryEngine::new(spec)?;
    let rt = runtime()?;
    reset_peak_rss();
    let pb = count_bar(QUERIES.len() as u64, "実行中 running", "問 queries");
    let (mut kura_times, mut kura_rows, mut duck_times, mut duck_rows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for q in QUERIES {
        let (mut kt, mut dt) = (Vec::new(), Vec::new());
        let mut kr = Vec::new();
        let mut dr = Vec::new();
        for i in 0..=a.runs {
            if let Some(d) = duck.as_mut() {
                let (secs, rows) = d.run(q.sql).map_err(|e| CliError::Bench(format!("{}: {e}", q.name)))?;
                if i > 0 {
                    dt.push(secs);
                }
                dr = rows;
            }
            let started = Instant::now();
            let out = rt.block_on(engine.run(q.sql)).map_err(|e| CliError::Bench(format!("{}: {e}", q.name)))?;
            if i > 0 {
                kt.push(started.elapsed().as_secs_f64());
            }
            if let Some(o) = out.into_iter().last() {
                kr = sorted(
                    kura::output::cells(&o.batches, usize::MAX)?.into_iter().map(|r| r.iter().map(|c| norm_cell(c)).collect()).collect(),
                );
            }
        }
        kura_times.push(median(&mut kt));
        kura_rows.push(kr);
        duck_times.push(median(&mut dt));
        duck_rows.push(dr);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let kura_peak = peak_rss().unwrap_or(0);
    let duck_info = duck.as_ref().map(|d| (d.version.clone(), d.peak_rss));
    drop(duck.take());

    // 5. Report.
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["クエリ query", "内容 what", "Kura ms", "DuckDB ms", "比 ratio", "一致 same answer"]);
    let mut ratios = Vec::new();
    let mut md = String::from("| query | Kura (ms) | DuckDB (ms) | Kura/DuckDB | same answer |\n|---|---:|---:|---:|---|\n");
    let mut all_same = true;
    for (i, q) in QUERIES.iter().enumerate() {
        let k = kura_times[i] * 1000.0;
        let (d, ratio, same) = match &duck_info {
            Some(_) => {
                let dm = duck_times[i] * 1000.0;
                let same = duck_rows[i] == kura_rows[i];
                all_same &= same;
                ratios.push(k / dm);
                (format!("{dm:.1}"), format!("{:.2}", k / dm), if same { "✓" } else { "✗" })
            }
            None => ("-".into(), "-".into(), "-"),
        };
        t.add_row([q.name.to_string(), q.title.to_string(), format!("{k:.1}"), d.clone(), ratio.clone(), same.to_string()]);
        md.push_str(&format!("| {} | {k:.1} | {d} | {ratio} | {same} |\n", q.name));
    }
    for c in 2..5 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    println!("{t}");
    let med = median(&mut ratios.clone());
    if let Some((version, peak)) = &duck_info {
        println!("中央値の比 median ratio Kura/DuckDB: {med:.2} (DuckDB {version}; 目標 target ≤ {MAX_MEDIAN_RATIO})");
        println!(
            "ピークメモリ peak memory: Kura queries {:.0} MiB, DuckDB process {:.0} MiB",
            kura_peak as f64 / 1048576.0,
            *peak as f64 / 1048576.0
        );
        md.push_str(&format!("\nMedian Kura/DuckDB: **{med:.2}** (DuckDB {version}).\n"));
    } else {
        println!("ピークメモリ peak memory: Kura queries {:.0} MiB", kura_peak as f64 / 1048576.0);
    }
    println!("\nMarkdown:\n{md}");
    println!(
        "generation {:.0} rows/s ({rows} rows, {gen_secs:.1} s, peak {:.0} MiB); encryption overhead {overhead:+.2} % ({:.1} vs {:.1} MiB)",
        rows as f64 / gen_secs,
        gen_peak as f64 / 1048576.0,
        enc_bytes as f64 / 1048576.0,
        plain_bytes as f64 / 1048576.0
    );
    if duck_info.is_some() && !all_same {
        return Err(CliError::Bench("Kura と DuckDB の答えが一致しないクエリがあります / Kura and DuckDB disagree on some query".into()));
    }
    if duck_info.is_some() && med > MAX_MEDIAN_RATIO {
        return Err(CliError::TargetMissed(format!("median Kura/DuckDB ratio ({med:.2}, ≤ {MAX_MEDIAN_RATIO})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_not_format() {
        assert_eq!(norm_cell("80"), norm_cell("80.0"));
        assert_eq!(norm_cell("12.5"), norm_cell("12.500000000001"));
        assert_ne!(norm_cell("123456789"), norm_cell("123456788"));
        assert_eq!(norm_cell(""), "NULL");
        assert_eq!(norm_cell("東京都"), "東京都");
        assert_eq!(norm_json(&serde_json::json!(7)), norm_cell("7"));
    }

    #[test]
    fn the_suite_runs_under_its_grant_and_is_read_only() {
        assert!(QUERIES.len() >= 6);
        let granted: std::collections::HashSet<String> =
            ["re", "sy", "iy", "dpc", "checkup", "checkup_item", "care_claim", "m_drug", "m_lab_item", "m_prefecture"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        for q in QUERIES {
            let stmts = datafusion::sql::parser::DFParser::parse_sql(q.sql).unwrap();
            for s in &stmts {
                assert_eq!(kura_query::policy::check(s, &granted).unwrap(), kura_query::policy::Allowed::Query, "{}", q.name);
            }
        }
    }
}
