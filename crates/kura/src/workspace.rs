//! `kura workspace …`: SQL in a project's workspace, in the project's own confined worker
//! (HIC-P3, HIC-S13), and the worker's confinement status. Membership, the end of use and the
//! ledger record are `kura-workflows`' rules; the worker is `kura-query`'s.

use crate::{CliError, Format, Result, output, read_query, runtime};
use clap::{Args, Subcommand};
use kura_store::Home;
use kura_workflows::Caller;

/// `kura workspace`
#[derive(Debug, Args)]
#[command(after_help = "\
例 / examples:
  kura workspace sql --project PRJ-000001 --as r1 \"SELECT sex, count(*) FROM re GROUP BY sex\"
  kura workspace sql --project PRJ-000001 --as r1 --save by_sex \"SELECT sex, count(*) AS n FROM re GROUP BY sex\"
  kura workspace sql --project PRJ-000001 --as r1 \"SELECT * FROM by_sex\"
  kura workspace drop --project PRJ-000001 --as r1 by_sex
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
    /// 保存した表を削除（メンバー）/ remove a saved table of the workspace (a member)
    Drop {
        /// プロジェクトID / project id
        #[arg(long)]
        project: String,
        /// この利用者として操作（ホームの所有者のみ。台帳に代理と記録）/ act as this user (the home's owner only; the ledger records it)
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 表の名前 / the table's name
        name: String,
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
    rt.block_on(async {
        let (app, research) = crate::research::service(home).await?;
        let workspaces = app.workspaces(research)?;
        match a.what {
            WsCmd::Sql { project, login, save, format, max_rows, query } => {
                let sql = read_query(&query)?;
                let outputs = workspaces.run(&Caller::console_as(&login), &project, &sql, save.as_deref()).await.map_err(ws_err)?;
                for o in &outputs {
                    output::statement(o, format, max_rows)?;
                }
                if let Some(name) = save {
                    eprintln!("保存しました / saved as table '{name}' of {project}");
                }
                Ok(())
            }
            WsCmd::Drop { project, login, name } => {
                workspaces.drop_table(&Caller::console_as(&login), &project, &name).await.map_err(ws_err)?;
                println!("削除しました / removed saved table '{name}' of {project}");
                Ok(())
            }
            WsCmd::Status { project } => {
                let s = workspaces.status(&project).await.map_err(ws_err)?;
                println!("{}  worker pid {}", s.project, s.pid);
                for line in &s.confinement {
                    println!("{line}");
                }
                println!(
                    "保存した表 / saved tables: {}",
                    if s.saved_tables.is_empty() { "-".to_string() } else { s.saved_tables.join(", ") }
                );
                if let Some(x) = &s.extract {
                    let tables: Vec<String> = x.tables.iter().map(|(t, rows)| format!("{t} {rows} 行 rows")).collect();
                    println!("抽出 / extract: {} 作成 built; {}", x.built_at, tables.join(", "));
                }
                Ok(())
            }
        }
    })
}

/// A workspace error as the command line reports it.
pub(crate) fn ws_err(e: kura_workspace::WorkspaceError) -> CliError {
    match e {
        kura_workspace::WorkspaceError::Query(q) => CliError::Query(q),
        other => CliError::App(other.into()),
    }
}
