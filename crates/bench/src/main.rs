//! # kura-bench — Kura's benchmarks, apart from the shipping binary
//!
//! 性能測定は出荷用の `kura` に含めない別の実行ファイル。`kura bench …` はこれを呼び出す。
//! The benchmarks are a program of their own, so that the `kura` binary that ships never
//! installs packages (the query benchmark installs DuckDB from PyPI) nor exports a dataset's
//! columns decrypted (the peer engine's copy). `kura bench query|ledger|server|workspace|airlock|intake …` runs this
//! program when it is installed beside `kura` (`cargo build --release` builds both into
//! `target/release/`); it can also be run directly as `kura-bench query|ledger|server …`.
//!
//! Every benchmark prints its figures with their targets and exits with status 3 when a target
//! is missed (1 on any other error). The figures and the commands that produced them are in `docs/benchmarks.md`.

#![forbid(unsafe_code)]

mod airlock;
mod intake;
mod ledger;
mod query;
mod report;
mod server;
mod workspace;

use clap::{Parser, Subcommand};
use kura::{CliError, Result};
use std::path::PathBuf;
use std::process::ExitCode;

/// The `kura-bench` command (also reached as `kura bench`).
#[derive(Debug, Parser)]
#[command(
    name = "kura bench",
    version,
    about = "性能測定（結果は目標と並べて表示、未達なら終了コード3）/ benchmarks: figures beside their targets, exit status 3 when one is missed"
)]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Kura（暗号化・許可経由）とDuckDB（平文Parquet）で同じ分析SQLを比較 / the same analytical SQL through
    /// Kura (encrypted, through a grant) and DuckDB (plaintext Parquet), side by side
    Query(query::QueryBenchArgs),
    /// 監査台帳の追記・証明・全件監査の速度（100万件×256バイト）/ the audit ledger: durable appends,
    /// inclusion proofs and the full verify (1,000,000 entries of 256 bytes)
    Ledger(ledger::LedgerBenchArgs),
    /// 玄関口の速度：mTLSハンドシェイク、認証済みリクエスト、ログイン試行の洪水の下での応答 /
    /// the front door: mTLS handshakes, authenticated requests, and service during a sign-in flood
    Server(server::ServerBenchArgs),
    /// 作業環境：起動時間、作業プロセス経由の問い合わせの負担、待機中のメモリ / workspaces: start time, the
    /// worker's overhead on the query suite, memory of idle workers
    Workspace(workspace::WorkspaceBenchArgs),
    /// 持ち出し審査：1万セル・100万人の表の自動検査（根拠の問い合わせ込み）と元の問い合わせの比、過去100件の持ち出し
    /// との差分比較 / the airlock: checking a table of 10,000 cells over 1,000,000 persons (evidence queries
    /// included) against the plain query, and differencing against 100 earlier releases
    Airlock(airlock::AirlockBenchArgs),
    /// 受け入れ：10万人1年分の UKE ファイルを検査・記録・仮名化・暗号化して保存する速さを DuckDB の read_csv →
    /// Parquet と比較 / intake: the UKE files of 100,000 persons for a year parsed, checked, recorded,
    /// pseudonymised and written encrypted, against DuckDB's read_csv → Parquet of the same bytes
    Intake(intake::IntakeBenchArgs),
}

/// The `kura` binary the benchmarks drive (`kura serve` as a child process): the one beside
/// this program (or beside the directory of a test binary, `target/debug/deps/..`).
fn kura_exe() -> Result<PathBuf> {
    let me = std::env::current_exe().map_err(|e| CliError::Bench(format!("own executable: {e}")))?;
    let dir = me.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let name = format!("kura{}", std::env::consts::EXE_SUFFIX);
    [dir.join(&name), dir.join("..").join(&name)].into_iter().find(|p| p.is_file()).ok_or_else(|| {
        CliError::Bench(format!(
            "{} の隣に kura がありません。`cargo build --release -p kura` を実行してください / no `kura` binary beside {}: build it with `cargo build --release -p kura`",
            dir.display(),
            dir.display()
        ))
    })
}

fn main() -> ExitCode {
    kura::init_logging();
    let cli = Cli::parse();
    let result = match cli.what {
        What::Query(q) => query::query(q),
        What::Ledger(l) => ledger::ledger(l),
        What::Server(s) => server::server(s),
        What::Workspace(w) => workspace::workspace(w),
        What::Airlock(a) => airlock::airlock(a),
        What::Intake(i) => intake::intake(i),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ CliError::TargetMissed(_)) => {
            eprintln!("{e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("エラー / error: {e}");
            ExitCode::FAILURE
        }
    }
}
