//! `kura bringin …` and `kura scanner status`: the airlock's bring-in and its malware scanner
//! (issue 17 §4; HIC-IO1, HIC-S1, HIC-P4). The command names and options are a contract:
//! `bringin upload --project ID --as LOGIN FILE` (prints the request id last), `bringin review
//! ID --as LOGIN --approve|--reject`, `scanner status`; `withdraw`, `show` and `list` beside
//! them. The rules are `kura-workflows`'; the scans and the workspace `kura-workspace`'s.

use crate::{CliError, Result, runtime};
use clap::{Args, Subcommand};
use kura_store::Home;
use kura_workflows::{Bringin, Caller, Viewer};
use std::path::PathBuf;

/// `kura bringin`
#[derive(Debug, Args)]
#[command(after_help = "\
例 / examples:
  kura bringin upload --project PRJ-000001 --as r1 drug_master.csv --note \"薬効分類マスター 2026年版\"
  kura bringin upload --project PRJ-000001 --as r1 analysis.sql
  kura bringin list --as c1
  kura bringin review IN-000001 --as c1 --approve
  kura bringin show IN-000002 --as r1 --out ./analysis.sql

持ち込むファイルはアップロード時にウイルス検査（ClamAV）され、プロジェクト外のデータ管理者が承認すると
作業環境に読み取り専用で置かれます。CSV はマスター（見出しが英小文字の列名、UTF-8）として扱い、承認されると
ファイル名の表（drug_master.csv → drug_master）として SQL で使えます。検査できないときは受け付けません。
A file brought in is scanned for malware (ClamAV) on upload; once a custodian outside the project approves it
(it is scanned again), it is in the workspace, read-only. A CSV file is a master (a header of lower-case column
names, UTF-8) and becomes a table named by its file (drug_master.csv → drug_master). Without a working scanner
nothing is accepted.")]
pub struct BringinArgs {
    #[command(subcommand)]
    what: InCmd,
}

#[derive(Debug, Subcommand)]
enum InCmd {
    /// ファイルを持ち込む（検査して、依頼IDを最後に表示）/ bring a file in (scanned; prints the request id last)
    Upload {
        /// プロジェクトID / project id
        #[arg(long)]
        project: String,
        /// この利用者として操作（台帳に代理と記録）/ act as this user (the ledger records it)
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 持ち込むファイル / the file
        file: PathBuf,
        /// 何のファイルか / what it is
        #[arg(long, default_value = "")]
        note: String,
    },
    /// 承認または却下（プロジェクト外のデータ管理者）/ approve or reject (a custodian outside the project)
    Review {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 承認（再検査して作業環境に置く）/ approve: scanned again, then placed in the workspace
        #[arg(long, group = "decision", required = true)]
        approve: bool,
        /// 却下 / reject
        #[arg(long, group = "decision")]
        reject: bool,
        /// コメント / comment
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// 取り下げ（持ち込んだ本人）/ withdraw (its author)
    Withdraw {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
    },
    /// 依頼を表示（--out で承認済みファイルを取り出す、メンバーのみ）/ show a request (--out writes an approved file;
    /// members only)
    Show {
        /// 依頼ID / request id
        id: String,
        /// この利用者として表示 / as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: Option<String>,
        /// 承認済みファイルの書き出し先 / where to write the approved file
        #[arg(long, requires = "login")]
        out: Option<PathBuf>,
    },
    /// 依頼の一覧（確認待ちが先）/ list requests (waiting ones first)
    List {
        /// この利用者に見えるものだけ / only what this user may see
        #[arg(long = "as", value_name = "LOGIN")]
        login: Option<String>,
        /// このプロジェクトだけ / this project only
        #[arg(long)]
        project: Option<String>,
    },
}

/// `kura scanner`
#[derive(Debug, Args)]
#[command(after_help = "\
例 / examples:
  kura scanner status
  kura scanner status --json

clamd（kura.toml の [scanner] socket）に接続し、エンジンとシグネチャの版を表示して、EICAR テストファイルの
検出を確かめます（検出しなければシグネチャが読み込まれていません）。最近の検出も表示します。使えないときは
終了コードが 0 以外になり、持込み・持出しは止まります。
Connects to clamd ([scanner] socket in kura.toml), prints the engine's and signatures' versions and checks that
the EICAR test file is detected (if not, no signatures are loaded); lists recent detections. Exits non-zero when
the scanner cannot be used: bring-in and release are blocked until it can.")]
pub struct ScannerArgs {
    #[command(subcommand)]
    what: ScanCmd,
}

#[derive(Debug, Subcommand)]
enum ScanCmd {
    /// エンジン・シグネチャの版、自己診断、最近の検出 / engine and signature versions, self-test, recent detections
    Status {
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
        /// 表示する検出の数 / how many detections to list
        #[arg(long, default_value_t = 20)]
        detections: i64,
    },
}

fn print_request(r: &Bringin) {
    println!("{}  {} / {}  project {}  author {}", r.id, r.state.label_ja(), r.state, r.project, r.author);
    println!("  {}  {}  {} bytes  sha256 {}", r.kind, r.name, r.bytes, r.sha256);
    println!("  scan: {}", r.scan);
    // Notes and comments may hold line breaks: shown escaped, on one line each, so that none
    // can pose as a line Kura printed.
    let one_line = |t: &str| t.chars().flat_map(char::escape_debug).collect::<String>();
    if !r.note.is_empty() {
        println!("  note: {}", one_line(&r.note));
    }
    if !r.comment.is_empty() {
        println!("  comment: {}", one_line(&r.comment));
    }
}

/// Runs `kura bringin …`.
pub fn bringin(home: &Home, a: BringinArgs) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let (app, research) = crate::research::service(home).await?;
        let ws = app.workspaces(research.clone())?;
        let bringins = research.bringins();
        let wf = |e: kura_workflows::WorkflowError| CliError::App(kura_app::AppError::from(e));
        match a.what {
            InCmd::Upload { project, login, file, note } => {
                let max = ws.policy().policy.limits.bringin_max_bytes;
                let meta = std::fs::metadata(&file).map_err(|e| CliError::Io { path: file.display().to_string(), source: e })?;
                if meta.len() > max {
                    return Err(CliError::Usage(format!(
                        "{}: 持込みファイルは {max} バイトまでです（{} バイト）/ a bring-in file is at most {max} bytes ({} bytes)",
                        file.display(),
                        meta.len(),
                        meta.len()
                    )));
                }
                let content = std::fs::read(&file).map_err(|e| CliError::Io { path: file.display().to_string(), source: e })?;
                let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let r = ws
                    .bringin_upload(&Caller::console_as(&login), &project, &name, &content, &note)
                    .await
                    .map_err(crate::workspace::ws_err)?;
                print_request(&r);
                println!("{}", r.id);
            }
            InCmd::Review { id, login, approve, reject: _, comment } => {
                let r = ws.bringin_review(&Caller::console_as(&login), &id, approve, &comment).await.map_err(crate::workspace::ws_err)?;
                print_request(&r);
            }
            InCmd::Withdraw { id, login } => {
                let r = ws.bringin_withdraw(&Caller::console_as(&login), &id).await.map_err(crate::workspace::ws_err)?;
                print_request(&r);
            }
            InCmd::Show { id, login, out } => {
                let r = match &login {
                    Some(l) => bringins.request(Viewer::User(l), &id).await.map_err(wf)?,
                    None => bringins.request(Viewer::Owner, &id).await.map_err(wf)?,
                };
                print_request(&r);
                for e in &r.events {
                    println!("  {}  {}  {} -> {}  by {}  (ledger {})", e.at, e.step, e.from, e.to, e.actor, e.ledger_index);
                }
                if let (Some(out), Some(l)) = (out, login) {
                    let (_, content) = ws.bringin_content(&Caller::console_as(&l), &id).await.map_err(crate::workspace::ws_err)?;
                    kura_crypto::write_atomic(&out, &content, 0o600)
                        .map_err(|e| CliError::Io { path: out.display().to_string(), source: e })?;
                    println!("書き出しました / written: {}", out.display());
                }
            }
            InCmd::List { login, project } => {
                let viewer = match &login {
                    Some(l) => Viewer::User(l),
                    None => Viewer::Owner,
                };
                for r in bringins.list(viewer, project.as_deref()).await.map_err(wf)? {
                    println!("{}  {}  {}  {}  {}  {}", r.id, r.project, r.author, r.state, r.kind, r.name);
                }
            }
        }
        Ok(())
    })
}

/// Runs `kura scanner …`.
pub fn scanner(home: &Home, a: ScannerArgs) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let (app, research) = crate::research::service(home).await?;
        let ws = app.workspaces(research.clone())?;
        let ScanCmd::Status { json, detections } = a.what;
        let status = ws.scanner_status().await;
        let found =
            research.detections(Viewer::Owner, detections.clamp(0, 1000)).await.map_err(|e| CliError::App(kura_app::AppError::from(e)))?;
        if json {
            let v = serde_json::json!({
                "ok": status.is_ok(),
                "engine": status.as_ref().ok(),
                "error": status.as_ref().err().map(|e| e.to_string()),
                "detections": found,
            });
            println!("{}", serde_json::to_string_pretty(&v).map_err(|e| CliError::Usage(e.to_string()))?);
        } else {
            match &status {
                Ok(e) => {
                    println!("scanner: ok");
                    println!("socket: {}", e.socket);
                    println!("engine: {}", e.version);
                    let sigs = e.version.split('/').nth(1).map_or(
                        "（公式データベースなし・独自シグネチャのみ）/ (no official database: local signatures only)".to_string(),
                        |v| v.to_string(),
                    );
                    println!("signatures: {sigs}");
                    println!("self-test: EICAR detected as {}", e.self_test);
                    println!("self-test: an archive too deep to open flagged as {}", e.deep_archives);
                    println!("self-test: an encrypted archive flagged as {}", e.encrypted_archives);
                }
                Err(_) => println!("scanner: unavailable"),
            }
            println!("detections: {}", found.len());
            // Names as text, never as terminal commands.
            let shown = |t: &str| t.chars().flat_map(char::escape_debug).collect::<String>();
            for d in &found {
                println!(
                    "  {}  {}  {}  {}  {}  sha256 {}  by {}  (ledger {})",
                    d.at,
                    d.direction,
                    d.object,
                    shown(&d.file_name),
                    shown(&d.signature),
                    d.sha256,
                    d.actor,
                    d.ledger_index
                );
            }
        }
        status.map(|_| ()).map_err(|e| CliError::Usage(e.to_string()))
    })
}
