//! `kura sample …`: sample and trial datasets (HIC-P2) that any signed-in researcher may query
//! without an application, so that people learn the data before they apply. The rules are
//! `kura-workflows`'; the queries run in a confined worker of their own (`kura-workspace`).

use crate::{CliError, Format, Result, output, read_query, runtime};
use clap::{Args, Subcommand};
use kura_store::Home;
use kura_workflows::Caller;

/// `kura sample`
#[derive(Debug, Args)]
#[command(after_help = "\
例 / examples:
  kura sample publish ndb --as c1 --note \"学習用の合成データ / synthetic, for learning\"   （データ管理者 / a custodian）
  kura sample sql --dataset ndb --as r1 \"SELECT sex, count(*) FROM re GROUP BY sex\"      （研究者 / any researcher）
  kura sample list

合成データだけが見本データになれます。実データは利用申請が必要です。
Only a synthetic dataset can be a sample; real data is used through an application.")]
pub struct SampleArgs {
    #[command(subcommand)]
    what: SampleCmd,
}

#[derive(Debug, Subcommand)]
enum SampleCmd {
    /// 見本データとして公開（データ管理者、合成データのみ）/ publish a synthetic dataset as a sample (a custodian)
    Publish {
        /// データセット / dataset
        dataset: String,
        /// この利用者として操作（ホームの所有者のみ。台帳に代理と記録）/ act as this user (the home's owner only; the ledger records it)
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 説明 / what it is for
        #[arg(long, default_value = "")]
        note: String,
    },
    /// 公開をやめる（データ管理者）/ withdraw a sample (a custodian)
    Withdraw {
        /// データセット / dataset
        dataset: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
    },
    /// 見本データの一覧 / list the sample datasets
    List {
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
    /// 見本データに SQL（研究者、申請不要）/ run SQL on a sample dataset (any researcher, no application)
    Sql {
        /// データセット / dataset
        #[arg(long)]
        dataset: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 出力形式 / output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// 表示する最大行数（表形式）/ most rows to print in table format
        #[arg(long, default_value_t = 200)]
        max_rows: usize,
        /// SQL（`-` で標準入力、`@FILE` でファイル）/ SQL: `-` reads standard input, `@FILE` reads a file
        query: String,
    },
}

/// Runs `kura sample …`.
pub fn sample(home: &Home, a: SampleArgs) -> Result<()> {
    runtime()?.block_on(async {
        let (app, research) = crate::research::service(home).await?;
        let workspaces = app.workspaces(research.clone())?;
        let ws_err = crate::workspace::ws_err;
        match a.what {
            SampleCmd::Publish { dataset, login, note } => {
                let s = workspaces.publish_sample(&Caller::console_as(&login), &dataset, &note).await.map_err(ws_err)?;
                println!("見本データとして公開しました / published '{}' as a sample dataset", s.dataset);
            }
            SampleCmd::Withdraw { dataset, login } => {
                research.withdraw_sample(&Caller::console_as(&login), &dataset).await.map_err(crate::research::app_err)?;
                println!("公開をやめました / withdrew the sample dataset '{dataset}'");
            }
            SampleCmd::List { json: true } => {
                let list = research.samples().await.map_err(crate::research::app_err)?;
                println!("{}", serde_json::to_string_pretty(&list).map_err(|e| CliError::Usage(e.to_string()))?);
            }
            SampleCmd::List { json: false } => {
                let list = research.samples().await.map_err(crate::research::app_err)?;
                if list.is_empty() {
                    println!("見本データはありません / no sample datasets");
                }
                for s in list {
                    println!("{}  {} ({})  {}", s.dataset, s.published_by, kura_ledger::entry::format_seconds(s.published_at), s.note);
                }
            }
            SampleCmd::Sql { dataset, login, format, max_rows, query } => {
                let sql = read_query(&query)?;
                let outputs = workspaces.run_sample(&Caller::console_as(&login), &dataset, &sql).await.map_err(ws_err)?;
                for o in &outputs {
                    output::statement(o, format, max_rows)?;
                }
            }
        }
        Ok(())
    })
}
