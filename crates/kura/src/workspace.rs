//! `kura workspace …`: SQL in a project's workspace, in the project's own confined worker
//! (HIC-P3, HIC-S13), and the worker's confinement status. Membership, the end of use and the
//! ledger record are `kura-workflows`' rules; the worker is `kura-query`'s.

use crate::{CliError, Format, Result, output, read_query, runtime};
use clap::{Args, Subcommand};
use kura_query::worker::{Session, WorkerCommand};
use kura_store::Home;
use kura_workflows::{Caller, Viewer};
use sha2::{Digest, Sha256};

/// `kura workspace`
#[derive(Debug, Args)]
#[command(after_help = "\
例 / examples:
  kura workspace sql --project PRJ-000001 --as r1 \"SELECT sex, count(*) FROM re GROUP BY sex\"
  kura workspace sql --project PRJ-000001 --as r1 --save by_sex \"SELECT sex, count(*) AS n FROM re GROUP BY sex\"
  kura workspace sql --project PRJ-000001 --as r1 \"SELECT * FROM by_sex\"
  kura workspace status --project PRJ-000001

人を表す ID（ID1・ID2・ID4・ID5）はプロジェクト専用の仮名に置き換わります（他のプロジェクトの結果とは結合できません）。
Person IDs (ID1, ID2, ID4, ID5) appear as this project's own pseudonyms: outputs of two projects cannot be joined on them.")]
pub struct WorkspaceArgs {
    #[command(subcommand)]
    what: WsCmd,
}

#[derive(Debug, Subcommand)]
enum WsCmd {
    /// プロジェクトの作業環境で SQL を実行（メンバーのみ、隔離された専用プロセス）/ run SQL in a project's workspace
    /// (members only; in the project's own confined worker)
    Sql {
        /// プロジェクトID / project id
        #[arg(long)]
        project: String,
        /// この利用者として操作（ホームの所有者のみ。台帳に代理と記録）/ act as this user (the home's owner only; the ledger records it)
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 最後の文の結果を作業環境の表として保存（作業環境の鍵で暗号化）/ save the last statement's result as a
        /// table of the workspace (encrypted with the workspace key)
        #[arg(long, value_name = "NAME")]
        save: Option<String>,
        /// 出力形式 / output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// 表示する最大行数（表形式）/ most rows to print in table format
        #[arg(long, default_value_t = 200)]
        max_rows: usize,
        /// SQL（`;` 区切りで複数可、`-` で標準入力、`@FILE` でファイル）/ SQL: several statements separated by `;`,
        /// `-` reads standard input, `@FILE` reads a file
        query: String,
    },
    /// 作業環境のプロセスの隔離状態（仕組みごとに on/off）と保存した表 / the workspace worker's confinement
    /// (one `mechanism: on|off` line each) and the saved tables
    Status {
        /// プロジェクトID / project id
        #[arg(long)]
        project: String,
    },
}

/// Runs `kura workspace …`.
pub fn workspace(home: &Home, a: WorkspaceArgs) -> Result<()> {
    let rt = runtime()?;
    let (app, research) = rt.block_on(crate::research::service(home))?;
    let cmd = WorkerCommand::current_exe()?;
    match a.what {
        WsCmd::Sql { project, login, save, format, max_rows, query } => {
            let sql = read_query(&query)?;
            let caller = Caller::console_as(&login);
            let p = rt.block_on(research.workspace(&caller, &project)).map_err(crate::research::app_err)?;
            let spec = app.workspace_spec(&p)?;
            let hash = hex::encode(Sha256::digest(sql.as_bytes()));
            let outcome = Session::start(&cmd, spec).and_then(|mut s| s.run(&sql, save.as_deref()));
            // Every script is recorded (its SHA-256, never its text or results).
            let (action, detail) = match &save {
                Some(name) => ("workspace.save", format!("saved table {}", kura_ledger::entry::printable(name))),
                None => ("workspace.query", String::new()),
            };
            let result = if outcome.is_ok() { "ok" } else { "error" };
            rt.block_on(research.record_workspace(&caller, &p.id, action, &hash, result, &detail)).map_err(crate::research::app_err)?;
            let outputs = outcome?;
            for o in &outputs {
                output::statement(o, format, max_rows)?;
            }
            if let Some(name) = save {
                eprintln!("保存しました / saved as table '{name}' of {}", p.id);
            }
            Ok(())
        }
        WsCmd::Status { project } => {
            let p = rt.block_on(research.project(Viewer::Owner, &project)).map_err(crate::research::app_err)?;
            if p.state == "ended" {
                return Err(CliError::App(
                    kura_workflows::WorkflowError::Ended {
                        id: p.id.clone(),
                        ended: p.ended_at.map(kura_ledger::entry::format_seconds).unwrap_or_default().chars().take(10).collect(),
                    }
                    .into(),
                ));
            }
            let spec = app.workspace_spec(&p)?;
            let session = Session::start(&cmd, spec)?;
            println!("{}  ({})  worker pid {}", p.id, p.state, session.pid());
            for line in session.report() {
                println!("{line}");
            }
            let saved = session.saved_tables();
            println!("保存した表 / saved tables: {}", if saved.is_empty() { "-".to_string() } else { saved.join(", ") });
            Ok(())
        }
    }
}
