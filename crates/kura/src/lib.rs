//! # kura — the command line of Kura (蔵)
//!
//! Thin glue over the library crates: `kura-crypto` (keys), `kura-synth` (synthetic data),
//! `kura-store` (encrypted datasets, catalogue), `kura-query` (SQL over a grant) and `kura-workflows`
//! (applications and projects). Each
//! subcommand parses its arguments, calls the libraries and prints results; no business rule
//! lives here. The showcase analyses ([`demo::ANALYSES`]) are public so that tests can check
//! them. Benchmarks are the separate `kura-bench` program (`kura bench …` runs it).
#![forbid(unsafe_code)]

pub mod airlock;
pub mod bringin;
pub mod demo;
pub mod exchange;
pub mod front;
pub mod intake;
pub mod ledger;
pub mod output;
pub mod policy;
pub mod research;
pub mod sample;
pub mod workspace;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kura_query::{EngineSpec, Grant};
use kura_store::{Home, WriteOptions};
use kura_synth::SynthConfig;
use kura_synth::calendar::Month;
use std::path::PathBuf;
use std::process::ExitCode;

/// Errors of the command line: each names what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the store.
    #[error(transparent)]
    Store(#[from] kura_store::StoreError),
    /// From SQL.
    #[error(transparent)]
    Query(#[from] kura_query::QueryError),
    /// From the generator.
    #[error(transparent)]
    Synth(#[from] kura_synth::SynthError),
    /// From putting the home's parts together.
    #[error(transparent)]
    App(#[from] kura_app::AppError),
    /// From writing the synthetic dataset.
    #[error(transparent)]
    SynthDataset(#[from] kura_synth_dataset::SynthDatasetError),
    /// Usage errors.
    #[error("{0}")]
    Usage(String),
    /// A result could not be written (the output closed, or a value has no text form).
    #[error("結果を書き出せません / cannot write the result: {0}")]
    Output(#[from] datafusion::arrow::error::ArrowError),
    /// I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// From the audit ledger.
    #[error(transparent)]
    Ledger(#[from] kura_ledger::LedgerError),
    /// Log data that does not parse or verify (a checkpoint, proof, note or tile).
    #[error(transparent)]
    Tlog(#[from] kura_tlog::TlogError),
    /// A check that did not pass (verification, proof, witness refusal).
    #[error("検証に失敗しました / check failed: {0}")]
    Check(String),
    /// The benchmark failed.
    #[error("ベンチマーク / benchmark: {0}")]
    Bench(String),
    /// A benchmark ran but missed a target (`kura-bench` exits with 3, not 1).
    #[error("目標未達 / missed target(s): {0}")]
    TargetMissed(String),
}

/// The result of a CLI operation.
pub type Result<T> = std::result::Result<T, CliError>;

const ABOUT: &str = "Kura（蔵）— 医療・介護データの安全な解析基盤 / a trusted research environment for Japanese health and care data";

const LONG_ABOUT: &str = "\
Kura（蔵）— 医療・介護データの安全な解析基盤
A trusted research environment for Japanese health and care data.

はじめに / Getting started:
  kura demo                      合成データを作って分析例を表示 / generate data and show analyses
  kura catalog                   データ一覧（情報提供一覧表）/ the data catalogue
  kura sql \"SELECT count(*) FROM re\"

データはすべて列ごとの鍵で暗号化され（AES-256-GCM）、SQL は許可された列だけを読めます。
All data is encrypted with a key per column (AES-256-GCM); SQL can read only granted columns.";

/// The `kura` command.
#[derive(Debug, Parser)]
#[command(name = "kura", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// ホームディレクトリ（設定・鍵・データ）/ the Kura home: configuration, keys and data
    /// [default: the platform data directory, e.g. ~/.local/share/kura]
    #[arg(long, global = true, env = "KURA_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// ホームを作成（設定ファイル・マスター鍵・鍵階層）/ create a home: configuration, master key, key hierarchy
    Init,
    /// 合成データを生成して分析例を表示（最初に試すコマンド）/ generate synthetic data and show example analyses
    Demo(DemoArgs),
    /// 合成データ（レセプト・健診・介護）を生成し暗号化して保存 / generate synthetic claims, checkups and care data, encrypted
    Synth(SynthArgs),
    /// 受け入れ：UKE ファイルを検査・記録・仮名化してデータセットへ / take in UKE files: scanned, checked,
    /// recorded in the ledger, pseudonymised, loaded
    Intake(intake::IntakeArgs),
    /// データカタログ（情報提供一覧表）を表示 / print the data catalogue
    Catalog(CatalogArgs),
    /// 許可された範囲でSQLを実行（読み取り専用）/ run read-only SQL over a grant
    Sql(SqlArgs),
    /// 監査台帳（透明性ログ）の操作 / operate the audit ledger (a transparency log)
    Ledger(ledger::LedgerArgs),
    /// 立会人：台帳のチェックポイントに連署 / run a witness that cosigns log checkpoints
    Witness(ledger::WitnessArgs),
    /// 証明をオフラインで検証（他のRFC 6962ログにも使える）/ check proofs offline (works for any RFC 6962 log)
    Proof(ledger::ProofArgs),
    /// 認証局：クライアント証明書の発行と失効 / Kura's certificate authority: issue and revoke client certificates
    Ca(front::CaArgs),
    /// 利用者の管理（作成・ロック・停止・棚卸し）/ manage users: create, lock, suspend, inventory
    User(front::UserArgs),
    /// ポータルとAPIを起動（TLS・クライアント証明書・二要素認証）/ run the portal and API (TLS, client certificates, two factors)
    Serve(front::ServeArgs),
    /// 利用申請：作成・提出・審査・決定・同意 / applications: file, submit, review, decide, accept
    Application(research::ApplicationArgs),
    /// プロジェクト（承認された申請から作られる解析環境）/ projects provisioned from approved applications
    Project(research::ProjectArgs),
    /// プロジェクトの作業環境：SQL・保存した表・隔離状態 / a project's workspace: SQL, saved tables, confinement
    Workspace(workspace::WorkspaceArgs),
    /// 持ち出し：出力依頼の作成・自動検査・二者審査・許可・受け取り / take-out: output requests, automatic checks,
    /// two-person review, release, download
    Output(airlock::OutputArgs),
    /// 公表基準（持出し審査のポリシー）の表示と検査 / the disclosure policy: show the rules, check a policy file
    Policy(policy::PolicyArgs),
    /// 持ち込み：ファイルのウイルス検査・データ管理者の承認・作業環境への配置 / bring-in: files scanned, approved by a
    /// custodian, placed in the workspace
    Bringin(bringin::BringinArgs),
    /// ウイルス検査エンジン（ClamAV）の状態と検出記録 / the malware scanner (ClamAV): state and detections
    Scanner(bringin::ScannerArgs),
    /// 機関間のファイル送受信：送信・一覧・受信・証跡・閉域グループ / files between institutions: send, list, get,
    /// trail, closed groups
    Exchange(exchange::ExchangeArgs),
    /// 見本データ：申請なしで試せる合成データ / sample datasets: synthetic data to try without an application
    Sample(sample::SampleArgs),
    /// 性能測定（`kura bench query|ledger|server|workspace|airlock|intake`、同じ場所の kura-bench が実行）/ benchmarks
    /// (`kura bench query|ledger|server|workspace|airlock|intake`), run by the separate `kura-bench` program beside this one
    #[command(disable_help_flag = true)]
    Bench {
        /// kura-bench に渡す引数（`kura bench --help` で一覧）/ arguments for kura-bench (`kura bench --help` lists them)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// (内部用) `kura sql` の問い合わせを実行する子プロセス / (internal) the worker process `kura sql` runs statements in
    #[command(name = "query-worker", hide = true)]
    QueryWorker,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// 生成する人数 / persons to generate
    #[arg(long, default_value_t = 100_000)]
    persons: u64,
    /// 乱数シード / random seed
    #[arg(long, default_value_t = 20_240_401)]
    seed: u64,
    /// 既存のデータがあっても作り直す / regenerate even if the home already has the demo data
    #[arg(long)]
    fresh: bool,
}

#[derive(Debug, Args)]
struct SynthArgs {
    /// 人数（省略時は kura.toml の値）/ persons [default: from kura.toml]
    #[arg(long)]
    persons: Option<u64>,
    /// 乱数シード：同じシードと鍵なら同じデータ / seed: the same seed and keys give the same data
    #[arg(long)]
    seed: Option<u64>,
    /// 期間の開始月 YYYYMM / first month of the period, YYYYMM
    #[arg(long, value_name = "YYYYMM")]
    start: Option<i32>,
    /// 期間の月数 / number of months
    #[arg(long)]
    months: Option<u32>,
    /// データセット名 / dataset name
    #[arg(long, default_value = "ndb")]
    dataset: String,
    /// 書き込みスレッド数（0 = CPU数）/ writer threads (0 = CPUs)
    #[arg(long)]
    threads: Option<usize>,
    /// 元ファイルの形式で書き出す（uke: レセプト電算ファイル）/ write the source files instead: uke (receipt
    /// files; cda and care are not written yet)
    #[arg(long, value_enum, requires = "out")]
    format: Option<SourceFormat>,
    /// --format の出力先（空のディレクトリ）/ where --format writes (an empty directory)
    #[arg(long, value_name = "DIR", requires = "format")]
    out: Option<std::path::PathBuf>,
}

/// The source formats `kura synth --format` names (a contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceFormat {
    /// レセプト電算（UKE）/ UKE receipt files
    Uke,
    /// 特定健診 HL7 CDA（未実装）/ checkup CDA archives (not written yet)
    Cda,
    /// 介護給付費明細書（未実装）/ care claims (not written yet)
    Care,
}

#[derive(Debug, Args)]
struct CatalogArgs {
    /// このデータセットだけ / only this dataset
    #[arg(long)]
    dataset: Option<String>,
    /// このテーブルの列を表示 / show the columns of this table
    #[arg(long)]
    table: Option<String>,
    /// 全ファイルのサイズとSHA-256を検証 / verify every file's size and SHA-256
    #[arg(long)]
    verify: bool,
    /// JSONで出力 / print JSON
    #[arg(long)]
    json: bool,
}

/// How `kura sql` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// 罫線付きの表 / a boxed table
    Table,
    /// CSV
    Csv,
    /// JSON lines
    Json,
}

#[derive(Debug, Args)]
struct SqlArgs {
    /// 許可するテーブル・列（繰り返し可）。省略時はホーム所有者として全て / grant TABLE or TABLE.COLUMN (repeatable);
    /// without it, everything, as the home's owner
    #[arg(long = "grant", value_name = "TABLE[.COLUMN]")]
    grants: Vec<String>,
    /// データセット / dataset
    #[arg(long, default_value = "ndb")]
    dataset: String,
    /// 出力形式 / output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// 表示する最大行数（表形式）/ most rows to print in table format
    #[arg(long, default_value_t = 200)]
    max_rows: usize,
    /// SQL（`;` 区切りで複数可、`-` で標準入力、`@FILE` でファイル）/ SQL: several statements separated by `;`,
    /// `-` reads standard input, `@FILE` reads a file
    query: String,
}

fn default_home() -> PathBuf {
    directories::ProjectDirs::from("jp", "kura", "kura").map_or_else(|| PathBuf::from(".kura"), |d| d.data_dir().to_path_buf())
}

/// Opens the home; every section of its `kura.toml` is checked before any command runs.
fn open_home(cli_home: &Option<PathBuf>) -> Result<Home> {
    let root = cli_home.clone().unwrap_or_else(default_home);
    let home = Home::open(&root)?;
    app(&home)?;
    Ok(home)
}

fn open_home_or_init(cli_home: &Option<PathBuf>) -> Result<Home> {
    let root = cli_home.clone().unwrap_or_else(default_home);
    Ok(kura_app::App::open_or_init(&root, app_options())?.0.home().clone())
}

/// A progress bar counting `n` things of `unit` (`人 persons`, `件 entries`) with rate and time left.
pub fn count_bar(n: u64, msg: &str, unit: &str) -> ProgressBar {
    let pb = ProgressBar::new(n);
    let template = format!("{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, 残り {{eta}})");
    pb.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
    pb.set_message(msg.to_string());
    pb
}

/// A progress bar for persons generated.
pub fn persons_bar(n: u64, msg: &str) -> ProgressBar {
    count_bar(n, msg, "人 persons")
}

/// Generates a dataset with a progress bar; returns the catalogue entry and seconds taken.
pub fn synth_with_progress(home: &Home, cfg: SynthConfig, opts: &WriteOptions) -> Result<(kura_store::DatasetEntry, f64)> {
    let pb = persons_bar(cfg.persons, "生成 generating");
    let started = std::time::Instant::now();
    let entry = kura_synth_dataset::write_synthetic(home, cfg, opts, &|n| pb.inc(n));
    pb.finish_and_clear();
    Ok((entry?, started.elapsed().as_secs_f64()))
}

fn synth_config(home: &Home, a: &SynthArgs) -> Result<SynthConfig> {
    let d = app(home)?.config().synth.clone();
    let mut cfg = SynthConfig::new(a.persons.unwrap_or(d.persons), a.seed.unwrap_or(d.seed));
    let start = a.start.unwrap_or(d.start);
    let (y, m) = (start / 100, start % 100);
    if !(1..=12).contains(&m) {
        return Err(CliError::Usage(format!("--start {start}: YYYYMM の形で指定してください / use YYYYMM, e.g. 202404")));
    }
    cfg.start = Month::new(y, m as u32);
    cfg.months = a.months.unwrap_or(d.months);
    cfg.validate()?;
    Ok(cfg)
}

pub(crate) fn read_query(q: &str) -> Result<String> {
    if q == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| CliError::Io { path: "<stdin>".into(), source: e })?;
        Ok(s)
    } else if let Some(path) = q.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|e| CliError::Io { path: path.into(), source: e })
    } else {
        Ok(q.to_string())
    }
}

/// The home composed with this binary's options (see `kura-app`); fails on an invalid
/// `kura.toml`.
pub fn app(home: &Home) -> Result<kura_app::App> {
    Ok(kura_app::App::new(home.clone(), app_options())?)
}

/// The shipping binary hashes passwords at the production cost, whatever the environment says.
#[cfg(not(feature = "testing"))]
pub(crate) fn app_options() -> kura_app::Options {
    kura_app::Options::default()
}

/// Built for this crate's own tests only (the `testing` feature, enabled by its
/// dev-dependencies and never in a release build): `KURA_TEST_FAST_HASH=1` selects the cheap
/// Argon2 cost so that the CLI tests do not spend minutes hashing.
#[cfg(feature = "testing")]
pub(crate) fn app_options() -> kura_app::Options {
    let fast = std::env::var("KURA_TEST_FAST_HASH").as_deref() == Ok("1");
    kura_app::Options { hash_cost: if fast { kura_accounts::HashCost::TEST } else { kura_accounts::HashCost::DEFAULT } }
}

/// A multi-threaded runtime for SQL.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| CliError::Io { path: "tokio runtime".into(), source: e })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init => {
            let root = cli.home.clone().unwrap_or_else(default_home);
            let home = kura_app::App::init(&root, app_options())?.home().clone();
            println!("ホームを作成しました / created a Kura home: {}", home.root().display());
            println!("  設定 configuration: {}", home.root().join("kura.toml").display());
            println!("  マスター鍵 master key: {} (0600)", home.root().join("keys/master.key").display());
            println!("次に / next: kura --home {} synth --persons 10000", home.root().display());
            Ok(())
        }
        Command::Demo(a) => demo::run(cli.home.clone().unwrap_or_else(default_home), a.persons, a.seed, a.fresh),
        Command::Synth(a) if a.format.is_some() => {
            let home = open_home_or_init(&cli.home)?;
            let cfg = synth_config(&home, &a)?;
            let out = a.out.clone().unwrap_or_default();
            match a.format {
                Some(SourceFormat::Uke) => {
                    let g = kura_synth::Generator::new(cfg.clone(), home.platform_pseudonym_key()?)?;
                    let pb = persons_bar(cfg.persons, "書き出し writing");
                    let started = std::time::Instant::now();
                    let written = kura_synth_dataset::uke::write_uke(&g, &out, &|n| pb.inc(n));
                    pb.finish_and_clear();
                    let written = written?;
                    println!(
                        "UKE ファイルを書き出しました / wrote UKE files to {}: {} ファイル files, {} 件 receipts, {:.1} MB, {:.1} s",
                        out.display(),
                        written.files,
                        written.receipts,
                        written.bytes as f64 / 1e6,
                        started.elapsed().as_secs_f64()
                    );
                    Ok(())
                }
                _ => Err(CliError::Usage(
                    "--format cda と care はまだ書き出せません（uke は書けます）/ --format cda and care are not written yet (uke is)"
                        .into(),
                )),
            }
        }
        Command::Intake(a) => intake::intake(&open_home_or_init(&cli.home)?, a),
        Command::Synth(a) => {
            let home = open_home(&cli.home)?;
            let cfg = synth_config(&home, &a)?;
            // Generated data never replaces data that was received (its keys would be shredded).
            if let Some(d) = home.catalog()?.datasets.get(&a.dataset).filter(|d| !d.synthetic) {
                return Err(CliError::Usage(format!(
                    "データセット {} は受け入れた実データです（{}）。合成データは別の名前に --dataset で書いてください / dataset {} holds received data ({}): write synthetic data under another name with --dataset",
                    d.name, d.title_ja, d.name, d.title_en
                )));
            }
            let mut opts = WriteOptions::from_home(&home, &a.dataset);
            if let Some(t) = a.threads.filter(|t| *t > 0) {
                opts.threads = t;
            }
            let (entry, secs) = synth_with_progress(&home, cfg, &opts)?;
            let rows = entry.rows();
            println!(
                "データセット '{}' を書き込みました / wrote dataset '{}': {} 人 persons, {} 行 rows, {:.1} MB, {:.1} s ({:.0} 行/s rows/s)",
                entry.name,
                entry.name,
                entry.persons,
                rows,
                entry.bytes() as f64 / 1e6,
                secs,
                rows as f64 / secs.max(1e-9)
            );
            Ok(())
        }
        Command::Catalog(a) => output::catalog(&open_home(&cli.home)?, a.dataset.as_deref(), a.table.as_deref(), a.verify, a.json),
        Command::Sql(a) => {
            let home = open_home(&cli.home)?;
            let sql = read_query(&a.query)?;
            let catalog = home.catalog()?;
            let entry = catalog.datasets.get(&a.dataset).ok_or_else(|| kura_store::StoreError::UnknownDataset(a.dataset.clone()))?;
            let grant = if a.grants.is_empty() { None } else { Some(Grant::parse(entry, &a.grants)?) };
            // In a worker process that is killed at the time limit and limited in memory
            // (kura_query::worker): whatever the SQL does, it stops.
            let spec = EngineSpec::from_home(&home, &a.dataset, grant)?;
            let outputs = kura_query::worker::run(&kura_query::worker::WorkerCommand::current_exe()?, spec, &sql)?;
            for o in &outputs {
                output::statement(o, a.format, a.max_rows)?;
            }
            Ok(())
        }
        Command::Ledger(a) => ledger::ledger(&open_home_or_init(&cli.home)?, a),
        Command::Witness(a) => ledger::witness(&open_home_or_init(&cli.home)?, a),
        Command::Proof(a) => ledger::proof(a),
        Command::Ca(a) => front::ca(&open_home_or_init(&cli.home)?, a),
        Command::User(a) => front::user(&open_home_or_init(&cli.home)?, a),
        Command::Serve(a) => front::serve(&open_home_or_init(&cli.home)?, a),
        Command::Application(a) => research::application(&open_home_or_init(&cli.home)?, a),
        Command::Project(a) => research::project(&open_home_or_init(&cli.home)?, a),
        Command::Workspace(a) => workspace::workspace(&open_home(&cli.home)?, a),
        Command::Sample(a) => sample::sample(&open_home(&cli.home)?, a),
        Command::Output(a) => airlock::output(&open_home(&cli.home)?, a),
        Command::Policy(a) => policy::policy(a),
        Command::Bringin(a) => bringin::bringin(&open_home(&cli.home)?, a),
        Command::Exchange(a) => exchange::exchange(&open_home(&cli.home)?, a),
        Command::Scanner(a) => bringin::scanner(&open_home(&cli.home)?, a),
        Command::QueryWorker => std::process::exit(kura_query::worker::serve_stdio()),
        Command::Bench { args } => bench(&args),
    }
}

/// `kura bench …`: runs the `kura-bench` program installed beside this binary. Benchmarks are
/// not part of the shipping binary (they install DuckDB from PyPI and export decrypted copies).
/// Benchmarks work in a directory of their own (`--dir`), never in a home: `--home` is not
/// passed on.
fn bench(args: &[String]) -> Result<()> {
    let me = std::env::current_exe().map_err(|e| CliError::Bench(format!("own executable: {e}")))?;
    let exe = me.with_file_name(format!("kura-bench{}", std::env::consts::EXE_SUFFIX));
    if !exe.is_file() {
        return Err(CliError::Bench(format!(
            "{} がありません。`cargo build --release -p kura-bench` で作成してください（kura の隣に置かれます）/ {} is not installed: build it with `cargo build --release -p kura-bench` (it is placed beside kura)",
            exe.display(),
            exe.display()
        )));
    }
    let status = std::process::Command::new(&exe)
        .env_remove("KURA_HOME")
        .args(args)
        .status()
        .map_err(|e| CliError::Io { path: exe.display().to_string(), source: e })?;
    if status.success() {
        Ok(())
    } else {
        // kura-bench has said what went wrong; only its exit status is passed on.
        std::process::exit(status.code().unwrap_or(1))
    }
}

/// Logs to standard error, filtered by `KURA_LOG` (default `warn`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KURA_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Parses the command line, runs it and reports errors; the binary's `main`.
pub fn main_entry() -> ExitCode {
    quiet_on_closed_output();
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("エラー / error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A reader that stops early (`kura ledger show | head -1`) closes Kura's standard output;
/// Rust ignores SIGPIPE, so the next print fails and would panic with a backtrace hint. Kura
/// then stops quietly with the shell's code for a broken pipe (141), as other tools do; every
/// other panic is reported as before.
fn quiet_on_closed_output() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied()).unwrap_or("");
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn contract_commands_parse() {
        for args in [
            vec!["kura", "init", "--home", "/tmp/x"],
            vec!["kura", "demo"],
            vec!["kura", "synth", "--persons", "10", "--seed", "3"],
            vec!["kura", "catalog"],
            vec!["kura", "sql", "--grant", "re", "--grant", "sy.disease_code", "SELECT 1"],
            vec!["kura", "bench", "query", "--persons", "1000"],
            vec!["kura", "ca", "init", "--home", "/tmp/x"],
            vec!["kura", "ca", "issue", "--user", "tanaka.h", "--out", "/tmp/o", "--home", "/tmp/x"],
            vec!["kura", "ca", "revoke", "--user", "tanaka.h", "--home", "/tmp/x"],
            vec![
                "kura",
                "user",
                "add",
                "--login",
                "a1",
                "--role",
                "researcher",
                "--institution",
                "1310000001",
                "--password-stdin",
                "--home",
                "/tmp/x",
            ],
            vec!["kura", "user", "lock", "a1", "--home", "/tmp/x"],
            vec!["kura", "user", "unlock", "a1", "--home", "/tmp/x"],
            vec!["kura", "user", "suspend", "a1", "--home", "/tmp/x"],
            vec!["kura", "user", "list", "--home", "/tmp/x"],
            vec!["kura", "serve", "--listen", "127.0.0.1:0", "--home", "/tmp/x"],
        ] {
            Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }
}
