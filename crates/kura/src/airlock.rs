//! `kura output …`: the airlock's take-out (issue 17 §3, issue 22 §3; HIC-IO2). The command
//! names and options are a contract: `new`, `add`, `check`, `submit`, `withdraw`, `review`,
//! `release`, `download`; `exception` and `confirm` beside them. The rules are
//! `kura-workflows`' (who may do what, when); the checks and packages `kura-workspace`'s.

use crate::{CliError, Result, read_query, runtime};
use clap::{Args, Subcommand};
use kura_disclosure::check::Status;
use kura_disclosure::table::{Action, TableVerdict};
use kura_store::Home;
use kura_workflows::{Caller, OutputRequest, ReviewDecision, Viewer};
use std::path::PathBuf;

/// `kura output`
#[derive(Debug, Args)]
#[command(after_help = "\
例 / examples:
  kura output new --project PRJ-000001 --as r1 --name 都道府県別患者数 --query @by_pref.sql
  kura output add OUT-000001 --as r1 figure.png --note \"図1 年齢階級別の受診率\"
  kura output check OUT-000001
  kura output exception OUT-000001 --as r1 --reason \"公表済みの全国値と同じ\"
  kura output submit OUT-000001 --as r1
  kura output review OUT-000001 --as v1 --approve --comment 問題なし
  kura output confirm OUT-000001 --as v1 --file 2
  kura output release OUT-000001 --as c1
  kura output download OUT-000001 --as r1 --out ./released

表は作業環境の検査役（チェッカー）が作り、セルごとにその背後の人数・医療機関数などをデータから数えて
公表基準で判定します。持ち出せるのは抑制・丸め後の表だけで、プロジェクト外の審査者二人の承認と、
データ管理者の許可が要ります。
A table is made by the workspace's checker, which counts from the data who stands behind every cell
(persons, institutions, pharmacies, insurers) and checks it against the policy; only the table after
suppression and rounding can leave, after two reviewers outside the project approved it and a
custodian released it.")]
pub struct OutputArgs {
    #[command(subcommand)]
    what: OutCmd,
}

#[derive(Debug, Subcommand)]
enum OutCmd {
    /// 作業環境の問い合わせから表の出力依頼を作成（依頼IDを最後に表示）/ start an output request with a table made by a
    /// query in the workspace (prints the request id last)
    New {
        /// プロジェクトID / project id
        #[arg(long)]
        project: String,
        /// この利用者として操作（台帳に代理と記録）/ act as this user (the ledger records it)
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 依頼の名前 / the request's name
        #[arg(long)]
        name: String,
        /// SELECT 文一つ（`@FILE` でファイル、`-` で標準入力）/ one SELECT (`@FILE` reads a file, `-` standard input)
        #[arg(long)]
        query: String,
        /// 何を示すか・対象集団・期間 / what it shows, population, period
        #[arg(long, default_value = "")]
        note: String,
    },
    /// ファイル（図・文章・表）または別の問い合わせの表を追加 / add a file (figure, text, table) or another query's table
    Add {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 追加するファイル / the file to add
        #[arg(required_unless_present = "query")]
        file: Option<PathBuf>,
        /// ファイルの代わりに作業環境の問い合わせの表（`@FILE`）/ instead of a file, a table made by this query (`@FILE`)
        #[arg(long, conflicts_with = "file")]
        query: Option<String>,
        /// 問い合わせの表の名前 / the name of the query's table
        #[arg(long, requires = "query")]
        name: Option<String>,
        /// 何を示すか・対象集団・期間 / what it shows, population, period
        #[arg(long, default_value = "")]
        note: String,
    },
    /// セルごとの判定を表示（すべてのセルが合格のときだけ終了コード 0。不合格のセルは持ち出し時に抑制）/ per-cell
    /// verdicts (exit 0 only if every cell passes; failing cells are suppressed in what leaves)
    Check {
        /// 依頼ID / request id
        id: String,
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
    /// 基準を満たさないセルの例外を申請（理由つき、審査者二人の承認が必要）/ ask for an exception for failing cells
    /// (with a reason; both reviewers must approve it)
    Exception {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 理由 / the reason
        #[arg(long)]
        reason: String,
    },
    /// 審査に提出 / submit for review
    Submit {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
    },
    /// 取り下げ / withdraw
    Withdraw {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
    },
    /// 審査（プロジェクト外の審査者、もう一人の票は両者の投票まで見えません）/ review (a reviewer outside the
    /// project; blind to the other vote until both have voted)
    Review {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 承認 / approve
        #[arg(long, group = "decision")]
        approve: bool,
        /// 修正依頼 / request changes
        #[arg(long, group = "decision")]
        changes: bool,
        /// 不承認 / reject
        #[arg(long, group = "decision")]
        reject: bool,
        /// コメント / comment
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// 審査者の確認：問い合わせで作られていないファイル、または例外 / a reviewer confirms a file no query produced,
    /// or approves the exception
    Confirm {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// ファイル番号 / the file's number
        #[arg(long, group = "what")]
        file: Option<i64>,
        /// 例外を承認 / approve the exception
        #[arg(long, group = "what")]
        exception: bool,
    },
    /// 持ち出しの許可（プロジェクト外のデータ管理者）/ release (a custodian outside the project)
    Release {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
    },
    /// 持ち出したパッケージを保存（ファイル・manifest.json・release.tlog-proof）/ save the released package
    /// (files, manifest.json, release.tlog-proof)
    Download {
        /// 依頼ID / request id
        id: String,
        /// この利用者として操作 / act as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 保存先 / where to write
        #[arg(long)]
        out: PathBuf,
    },
    /// 依頼の状態とファイル / a request's state and files
    Show {
        /// 依頼ID / request id
        id: String,
        /// この利用者の見え方で / as this user sees it
        #[arg(long = "as", value_name = "LOGIN")]
        login: Option<String>,
    },
    /// 依頼の一覧 / list requests
    List {
        /// この利用者に見えるもの / those this user may see
        #[arg(long = "as", value_name = "LOGIN")]
        login: Option<String>,
    },
    /// 基盤自身が公表する表（人口表など）を持ち出し済みとして記憶。以後すべてのプロジェクトの出力と比較します
    /// （ホームの管理者）/ remember a table the platform publishes itself (a population table, …) as released:
    /// every later output of every project is compared with it (the home's owner; issue 22 §2)
    Publish {
        /// 公表表の名前（英小文字・数字・_・-、記憶では PUB-名前）/ the table's name (lower case, digits, _ and -;
        /// remembered as PUB-name)
        #[arg(long)]
        name: String,
        /// 集計に検査役を使うプロジェクト（その許可にこの表の列が必要。全員の行で数えます）/ the project whose checker
        /// computes it (its grant must hold the table's columns; every person of the dataset counts)
        #[arg(long)]
        project: String,
        /// SELECT 文一つ（`@FILE` でファイル、`-` で標準入力）/ one SELECT (`@FILE` reads a file, `-` standard input)
        #[arg(long)]
        query: String,
    },
}

fn ws_err(e: kura_workspace::WorkspaceError) -> CliError {
    crate::workspace::ws_err(e)
}

fn wf_err(e: kura_workflows::WorkflowError) -> CliError {
    CliError::App(kura_app::AppError::from(e))
}

fn print_request(r: &OutputRequest) {
    println!("{}  {}（{}）/ {}  project {}  author {}", r.id, r.state.label_ja(), r.name, r.state, r.project, r.author);
    println!("policy: {}", r.policy);
    for f in &r.files {
        println!("  {}  {}  {}  {} bytes  sha256 {}  {}", f.n, f.kind, f.name, f.bytes, f.sha256, f.status);
    }
    if let Some(e) = &r.exception {
        println!("例外の申請 / exception: {e}");
    }
    for v in &r.reviews {
        println!("  review {} (submission {}): {} {}", v.reviewer, v.submission, v.decision, v.comment);
    }
    if r.hidden_votes > 0 {
        println!("  ({} 票は両者の投票まで非表示 / vote(s) hidden until both have voted)", r.hidden_votes);
    }
    for c in &r.confirmations {
        println!("  confirmed {} by {} (submission {})", c.what, c.reviewer, c.submission);
    }
}

/// One line per cell: row, measure, status, the rules that fired, what leaves.
fn print_verdict(v: &TableVerdict, file: &str) {
    println!("{file}: {} (released: {})  policy {}", v.status.as_str(), v.released_status.as_str(), v.policy);
    for f in &v.table_findings {
        println!("  table  {}  {}", f.status.as_str(), f.rule);
        // The releases it could not be compared with (names only, never a count).
        if f.rule == kura_disclosure::check::rule::DIFFERENCING_UNKNOWN {
            println!("      {}", f.message);
        }
    }
    for (i, row) in v.cells.iter().enumerate() {
        for (j, c) in row.iter().enumerate() {
            let mut rules: Vec<&str> = c.findings.iter().map(|f| f.rule.as_str()).collect();
            rules.dedup();
            let action = match c.action {
                Action::Shown => "shown",
                Action::Rounded => "rounded",
                Action::Suppressed => "suppressed",
                Action::SecondarySuppressed => "secondary_suppressed",
            };
            println!(
                "  row {} measure {}  {}  {}  {}",
                i + 1,
                j + 1,
                c.status.as_str(),
                action,
                if rules.is_empty() { "-".to_string() } else { rules.join(",") }
            );
            // The release a differencing finding combines with (its message names no count).
            let named = [kura_disclosure::check::rule::DIFFERENCING, kura_disclosure::check::rule::DIFFERENCING_UNKNOWN];
            for f in c.findings.iter().filter(|f| named.contains(&f.rule.as_str())) {
                println!("      {}", f.message);
            }
        }
    }
}

/// Runs `kura output …`.
pub fn output(home: &Home, a: OutputArgs) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let (app, research) = crate::research::service(home).await?;
        let ws = app.workspaces(research.clone())?;
        let outputs = research.outputs();
        match a.what {
            OutCmd::New { project, login, name, query, note } => {
                let sql = read_query(&query)?;
                let r = ws.output_new(&Caller::console_as(&login), &project, &name, &sql, &note).await.map_err(ws_err)?;
                print_request(&r);
                println!("{}", r.id);
            }
            OutCmd::Add { id, login, file, query, name, note } => {
                let caller = Caller::console_as(&login);
                let r = match (file, query) {
                    (_, Some(q)) => {
                        let sql = read_query(&q)?;
                        let n = name.unwrap_or_else(|| "table.csv".into());
                        ws.output_add_query(&caller, &id, &n, &sql, &note).await.map_err(ws_err)?
                    }
                    (Some(path), None) => {
                        let meta = std::fs::metadata(&path).map_err(|e| CliError::Io { path: path.display().to_string(), source: e })?;
                        if meta.len() > kura_workspace::airlock::MAX_OUTPUT_BYTES {
                            return Err(CliError::Usage(format!(
                                "{}: 出力ファイルは {} MiB までです / an output file is at most {} MiB",
                                path.display(),
                                kura_workspace::airlock::MAX_OUTPUT_BYTES >> 20,
                                kura_workspace::airlock::MAX_OUTPUT_BYTES >> 20
                            )));
                        }
                        let content = std::fs::read(&path).map_err(|e| CliError::Io { path: path.display().to_string(), source: e })?;
                        let file_name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                        ws.output_add_file(&caller, &id, &file_name, &content, &note).await.map_err(ws_err)?
                    }
                    (None, None) => return Err(CliError::Usage("ファイルか --query を指定してください / give a file or --query".into())),
                };
                print_request(&r);
            }
            OutCmd::Check { id, json } => {
                let r = outputs.request(Viewer::Owner, &id).await.map_err(wf_err)?;
                let mut all_pass = true;
                let mut out = Vec::new();
                for f in &r.files {
                    // Every cell as checked, before suppression (the contract: exit 0 only if
                    // every cell passes), and what would leave.
                    let cells_pass = serde_json::from_str::<TableVerdict>(&f.verdict).map_or(true, |v| v.status == Status::Pass);
                    if f.status != Status::Pass.as_str() || !cells_pass {
                        all_pass = false;
                    }
                    if json {
                        let verdict: serde_json::Value = serde_json::from_str(&f.verdict).unwrap_or(serde_json::Value::Null);
                        out.push(serde_json::json!({"n": f.n, "name": f.name, "kind": f.kind, "status": f.status, "sha256": f.sha256, "verdict": verdict}));
                    } else if let Ok(v) = serde_json::from_str::<TableVerdict>(&f.verdict) {
                        print_verdict(&v, &f.name);
                    } else if let Ok(v) = serde_json::from_str::<kura_workspace::values::FileVerdict>(&f.verdict) {
                        println!("{}: {}  {}", f.name, v.status.as_str(), v.rules().join(","));
                        // The releases it was not compared with (ids only).
                        for x in v.findings.iter().filter(|x| x.rule == kura_disclosure::check::rule::DIFFERENCING_UNKNOWN) {
                            println!("      {}", x.message);
                        }
                        for (line, col) in &v.failing_cells {
                            println!("  line {line} column {col}  fail");
                        }
                    }
                }
                if json {
                    let doc = serde_json::json!({"request": r.id, "state": r.state, "policy": r.policy, "pass": all_pass, "files": out});
                    println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| CliError::Usage(e.to_string()))?);
                }
                if !all_pass {
                    return Err(CliError::Usage(format!(
                        "{id}: 合格でないセルがあります（審査・抑制が必要）/ not every cell passes: see the verdicts above"
                    )));
                }
            }
            OutCmd::Exception { id, login, reason } => {
                print_request(&outputs.exception(&Caller::console_as(&login), &id, &reason).await.map_err(wf_err)?);
            }
            OutCmd::Submit { id, login } => {
                print_request(&outputs.submit(&Caller::console_as(&login), &id).await.map_err(wf_err)?);
            }
            OutCmd::Withdraw { id, login } => {
                print_request(&outputs.withdraw(&Caller::console_as(&login), &id).await.map_err(wf_err)?);
            }
            OutCmd::Review { id, login, approve, changes, reject, comment } => {
                let decision = match (approve, changes, reject) {
                    (true, _, _) => ReviewDecision::Approve,
                    (_, true, _) => ReviewDecision::Changes,
                    (_, _, true) => ReviewDecision::Reject,
                    _ => return Err(CliError::Usage("--approve・--changes・--reject のどれかを指定 / give --approve, --changes or --reject".into())),
                };
                let r = outputs.review(&Caller::console_as(&login), &id, decision, &comment).await.map_err(wf_err)?;
                // The reviewer sees what a reviewer sees: not the other vote until both voted;
                // nothing more of a request the votes sent back to its author.
                match outputs.request(Viewer::User(&login), &r.id).await {
                    Ok(seen) => print_request(&seen),
                    Err(kura_workflows::WorkflowError::NotFound { .. }) => {
                        println!("{}  {}（{}）/ {}: 作成者に戻りました / back with its author", r.id, r.state.label_ja(), r.name, r.state)
                    }
                    Err(e) => return Err(wf_err(e)),
                }
            }
            OutCmd::Confirm { id, login, file, exception } => {
                let what = match (file, exception) {
                    (Some(n), _) => format!("file:{n}"),
                    (None, true) => "exception".into(),
                    (None, false) => return Err(CliError::Usage("--file N か --exception を指定 / give --file N or --exception".into())),
                };
                let r = outputs.confirm(&Caller::console_as(&login), &id, &what).await.map_err(wf_err)?;
                print_request(&outputs.request(Viewer::User(&login), &r.id).await.map_err(wf_err)?);
            }
            OutCmd::Release { id, login } => {
                let (r, proof) = ws.output_release(&Caller::console_as(&login), &id).await.map_err(ws_err)?;
                print_request(&r);
                println!("package sha256 {}", r.package_sha256.unwrap_or_default());
                match proof {
                    Ok(p) => println!("証明 / proof: {}", p.display()),
                    Err(why) => eprintln!("証明はまだありません / no proof yet: {why}"),
                }
            }
            OutCmd::Download { id, login, out } => {
                for p in ws.output_download(&Caller::console_as(&login), &id, &out).await.map_err(ws_err)? {
                    println!("{}", p.display());
                }
            }
            OutCmd::Show { id, login } => {
                let viewer = match &login {
                    Some(l) => Viewer::User(l),
                    None => Viewer::Owner,
                };
                print_request(&outputs.request(viewer, &id).await.map_err(wf_err)?);
            }
            OutCmd::Publish { name, project, query } => {
                let sql = read_query(&query)?;
                let caller = Caller::user(kura_accounts::Who::console());
                let n = ws.publish(&caller, &project, &name, &sql).await.map_err(ws_err)?;
                println!(
                    "公表表 {}{name} を記憶しました（{n} 集合）。以後の出力はこれと比較されます / remembered the public table {}{name} ({n} sets): every later output is compared with it",
                    kura_workspace::memory::PUBLIC_PREFIX,
                    kura_workspace::memory::PUBLIC_PREFIX
                );
            }
            OutCmd::List { login } => {
                let viewer = match &login {
                    Some(l) => Viewer::User(l),
                    None => Viewer::Owner,
                };
                for s in outputs.list(viewer).await.map_err(wf_err)? {
                    println!("{}  {}  {}  {}  {} file(s)  {}", s.id, s.state, s.project, s.author, s.files, s.name);
                }
            }
        }
        Ok(())
    })
}
