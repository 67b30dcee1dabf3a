//! `kura application …` and `kura project …`: the research lifecycle from the command line
//! (WG-6, HIC-P1, HIC-P3). Every rule lives in `kura-workflows`; this module parses, calls and
//! prints. On the home owner's machine, `--as LOGIN` acts for a user; the ledger records that
//! the console did it.

use crate::{CliError, Result, runtime};
use clap::{ArgGroup, Args, Subcommand};
use kura_store::Home;
use kura_workflows::{Application, Caller, ColumnRequest, Decision, NewApplication, Project, Research, Viewer};

/// `kura application`
#[derive(Debug, Args)]
#[command(after_help = "\
流れ / the flow:
  kura application new --as r1 --title T --purpose P --dataset ndb --column re.sex sy.icd10 --member r2   （研究者 / researcher）
  kura application attach APP-000001 --as r1 protocol.pdf                                  （研究計画書 / the protocol PDF）
  kura application join APP-000001 --as r2                                                  （共同研究者の確認 / each member confirms）
  kura application submit APP-000001 --as r1
  kura application check APP-000001 --as c1 --accept                                        （データ管理者 / custodian）
  kura application vote APP-000001 --as v1 --approve --comment \"...\"                        （審査委員 / reviewer）
  kura application decide APP-000001 --as c1 --approve [--column re.sex]                    （列を絞って承認 / fewer columns）
  kura application accept APP-000001 --as r1                                                （利用規約に同意→提供 / agreement, provisioning）")]
pub struct ApplicationArgs {
    #[command(subcommand)]
    what: AppCmd,
}

/// The acting user.
#[derive(Debug, Args)]
struct As {
    /// この利用者として操作（ホームの所有者のみ。台帳に代理と記録）/ act as this user (the home's owner only; the ledger records it)
    #[arg(long = "as", value_name = "LOGIN")]
    login: String,
}

#[derive(Debug, Subcommand)]
enum AppCmd {
    /// 新しい申請（下書き）を作る。最後の行に申請IDを表示 / file a new draft; prints its id on the last line
    New {
        #[command(flatten)]
        who: As,
        #[command(flatten)]
        content: Content,
    },
    /// 下書き・差し戻しの申請を書き換える / change a draft or a returned application
    Edit {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
        #[command(flatten)]
        content: Content,
    },
    /// 提出する（差し戻し後の再提出も）/ submit (or resubmit after a return)
    Submit {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
    },
    /// 共同研究者として参加を確認（提出の前に全員が必要）/ confirm being a co-investigator (every member, before submission)
    Join {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
    },
    /// 取り下げる（提供前ならいつでも）/ withdraw (any time before provisioning)
    Withdraw {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
    },
    /// 形式審査：受理して審査会へ、または差し戻し（データ管理者）/ intake check: to the committee, or back (custodian)
    #[command(group(ArgGroup::new("verdict").required(true).args(["accept", "return_"])))]
    Check {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
        /// 受理 / pass to the committee
        #[arg(long)]
        accept: bool,
        /// 差し戻し / return to the applicant
        #[arg(long = "return")]
        return_: bool,
        /// 申請者への連絡 / a note for the applicant
        #[arg(long, default_value = "")]
        note: String,
    },
    /// 審査会の投票（審査委員、各提出に一回）/ a committee vote (reviewer, once per submission)
    #[command(group(ArgGroup::new("vote").required(true).args(["approve", "reject"])))]
    Vote {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
        /// 賛成 / for
        #[arg(long)]
        approve: bool,
        /// 反対 / against
        #[arg(long)]
        reject: bool,
        /// 意見 / comments
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// 決定（データ管理者、投票の後）。--column で承認する列を絞れる / decide (custodian, after the votes); --column grants fewer columns
    #[command(group(ArgGroup::new("decision").required(true).args(["approve", "reject", "return_"])))]
    Decide {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
        /// 承認 / approve
        #[arg(long)]
        approve: bool,
        /// 不承認 / reject
        #[arg(long)]
        reject: bool,
        /// 修正のため差し戻し / return for changes
        #[arg(long = "return")]
        return_: bool,
        /// 承認する列（省略時は申請どおり）/ columns granted (default: all asked for)
        #[arg(long = "column", value_name = "TABLE.COLUMN", num_args = 1.., requires = "approve")]
        columns: Vec<String>,
        /// 利用条件 / conditions of use
        #[arg(long, default_value = "", requires = "approve")]
        conditions: String,
        /// 理由（不承認・差し戻し）/ reason (reject, return)
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// 利用規約に同意し、プロジェクトを作る。最後の行にプロジェクトIDを表示 / accept the agreement; provisions the project and prints its id on the last line
    Accept {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
    },
    /// 研究計画書などの PDF を添付（下書き・差し戻し中、申請者）/ attach a PDF such as the protocol (draft or returned; the applicant)
    Attach {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
        /// PDF ファイル（[research] attachment_max_mb まで）/ the PDF file (at most [research] attachment_max_mb)
        file: std::path::PathBuf,
    },
    /// 添付を外す（下書き・差し戻し中、申請者）/ remove an attachment (draft or returned; the applicant)
    Detach {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
        /// 添付の番号（show に表示）/ the attachment's number (as show prints it)
        n: i64,
    },
    /// 添付を取り出す（申請を見られる人）/ save an attachment to a file (whoever may see the application)
    Attachment {
        /// 申請ID / application id
        id: String,
        #[command(flatten)]
        who: As,
        /// 添付の番号 / the attachment's number
        n: i64,
        /// 保存先（既存のファイルは上書きしない）/ where to write it (an existing file is never overwritten)
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// 申請の一覧（期限超過が先）/ list applications (overdue first)
    List {
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
    /// 申請の詳細（クロックを含む）/ show an application with its clock
    Show {
        /// 申請ID / application id
        id: String,
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
}

/// What an application says.
#[derive(Debug, Args)]
struct Content {
    /// 題名 / title
    #[arg(long)]
    title: String,
    /// 研究目的 / purpose
    #[arg(long)]
    purpose: String,
    /// 公益性の説明 / public-interest justification
    #[arg(long, default_value = "")]
    justification: String,
    /// 倫理審査の承認番号 / ethics approval reference
    #[arg(long, default_value = "")]
    ethics: String,
    /// データセット / dataset
    #[arg(long)]
    dataset: String,
    /// 必要な列（理由は =理由 で）/ columns needed, each optionally with `=REASON`
    #[arg(long = "column", value_name = "TABLE.COLUMN[=REASON]", num_args = 1.., required = true)]
    columns: Vec<String>,
    /// 共同研究者（研究者のログイン名）/ co-investigators (researcher logins)
    #[arg(long = "member", value_name = "LOGIN", num_args = 1..)]
    members: Vec<String>,
    /// 利用場所（申告するアドレス・CIDR、HIC-U1）/ declared places of use (addresses or CIDR blocks)
    #[arg(long = "place", value_name = "CIDR", num_args = 1..)]
    places: Vec<String>,
    /// 利用期間（日）/ period of use in days [default: [research] default_period_days]
    #[arg(long, value_name = "DAYS")]
    period_days: Option<u32>,
}

impl Content {
    fn into_new(self) -> Result<NewApplication> {
        Ok(NewApplication {
            title: self.title,
            purpose: self.purpose,
            justification: self.justification,
            ethics_ref: self.ethics,
            dataset: self.dataset,
            columns: self.columns.iter().map(|c| ColumnRequest::parse(c)).collect::<kura_workflows::Result<_>>().map_err(app_err)?,
            places: self.places,
            period_days: self.period_days,
            members: self.members,
        })
    }
}

/// `kura project`
#[derive(Debug, Args)]
pub struct ProjectArgs {
    #[command(subcommand)]
    what: ProjectCmd,
}

#[derive(Debug, Subcommand)]
enum ProjectCmd {
    /// プロジェクトの一覧 / list projects
    List {
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
    /// プロジェクトの詳細（メンバー・許可された列）/ show a project: members and its grant
    Show {
        /// プロジェクトID / project id
        id: String,
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
    /// 利用終了の届出（申請者）/ give notice of the end of use (the applicant)
    Notice {
        /// プロジェクトID / project id
        id: String,
        #[command(flatten)]
        who: As,
    },
    /// 利用終了：作業環境を消去し削除証明書を発行（データ管理者）。最後の行に証明（.tlog-proof）のパス /
    /// end the project: destroy its workspace and issue a deletion certificate (a custodian);
    /// prints the path of its .tlog-proof on the last line
    End {
        /// プロジェクトID / project id
        id: String,
        #[command(flatten)]
        who: As,
    },
}

pub(crate) fn app_err(e: kura_workflows::WorkflowError) -> CliError {
    CliError::App(e.into())
}

fn json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v).map_err(|e| CliError::Usage(e.to_string()))?);
    Ok(())
}

pub(crate) async fn service(home: &Home) -> Result<(kura_app::App, Research)> {
    let app = crate::app(home)?;
    let accounts = app.accounts().await?;
    let research = app.research(accounts)?;
    Ok((app, research))
}

/// Runs `kura application …`.
pub fn application(home: &Home, a: ApplicationArgs) -> Result<()> {
    runtime()?.block_on(async {
        let (app, r) = service(home).await?;
        let done = |a: &Application| println!("{}: {}（{}）/ {}", a.id, a.state.label_ja(), a.title, a.state);
        match a.what {
            AppCmd::New { who, content } => {
                let catalogue = app.research_catalogue()?;
                let a = r.create(&Caller::console_as(&who.login), &catalogue, &content.into_new()?).await.map_err(app_err)?;
                println!("申請を作成しました（下書き）/ created a draft application");
                println!("次に / next: kura application submit {} --as {}", a.id, who.login);
                println!("{}", a.id);
            }
            AppCmd::Edit { id, who, content } => {
                let catalogue = app.research_catalogue()?;
                done(&r.edit(&Caller::console_as(&who.login), &catalogue, &id, &content.into_new()?).await.map_err(app_err)?);
            }
            AppCmd::Submit { id, who } => {
                let a = r.submit(&Caller::console_as(&who.login), &id).await.map_err(app_err)?;
                done(&a);
                println!("審査の締切 / review round: {}", a.round);
            }
            AppCmd::Join { id, who } => done(&r.join(&Caller::console_as(&who.login), &id).await.map_err(app_err)?),
            AppCmd::Withdraw { id, who } => done(&r.withdraw(&Caller::console_as(&who.login), &id).await.map_err(app_err)?),
            AppCmd::Check { id, who, accept, return_: _, note } => {
                done(&r.check(&Caller::console_as(&who.login), &id, accept, &note).await.map_err(app_err)?)
            }
            AppCmd::Vote { id, who, approve, reject: _, comment } => {
                done(&r.vote(&Caller::console_as(&who.login), &id, approve, &comment).await.map_err(app_err)?)
            }
            AppCmd::Decide { id, who, approve, reject, return_: _, columns, conditions, reason } => {
                let decision = if approve {
                    let mut granted = Vec::new();
                    for c in &columns {
                        let c = ColumnRequest::parse(c).map_err(app_err)?;
                        granted.push((c.table, c.column));
                    }
                    Decision::Approve { columns: granted, conditions }
                } else if reject {
                    Decision::Reject { reason }
                } else {
                    Decision::Return { reason }
                };
                done(&r.decide(&Caller::console_as(&who.login), &id, &decision).await.map_err(app_err)?);
            }
            AppCmd::Accept { id, who } => {
                let (a, p) = r.accept(&Caller::console_as(&who.login), &id).await.map_err(app_err)?;
                app.workspaces(r.clone())?.prepare(&p.id).map_err(crate::workspace::ws_err)?;
                done(&a);
                println!(
                    "プロジェクトを作成しました / provisioned project {}: {} 列 columns, {} 人 members",
                    p.id,
                    p.columns.len(),
                    p.members.len()
                );
                println!("{}", p.id);
            }
            AppCmd::Attach { id, who, file } => {
                let max = u64::from(r.config().attachment_max_mb) << 20;
                let content = read_limited(&file, max)?;
                let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                // Scanned for malware first (HIC-S1), like every file that comes in.
                let a = app
                    .workspaces(r.clone())?
                    .application_attach(&Caller::console_as(&who.login), &id, &name, &content)
                    .await
                    .map_err(crate::workspace::ws_err)?;
                if let Some(l) = a.attachments.last() {
                    println!("添付しました / attached {} as #{} ({} bytes, sha256 {})", l.name, l.n, l.bytes, l.sha256);
                }
            }
            AppCmd::Detach { id, who, n } => {
                r.detach(&Caller::console_as(&who.login), &id, n).await.map_err(app_err)?;
                println!("添付 #{n} を外しました / removed attachment #{n}");
            }
            AppCmd::Attachment { id, who, n, out } => {
                let (line, content) = r.attachment(Viewer::User(&who.login), &id, n).await.map_err(app_err)?;
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&out).map_err(|e| {
                    CliError::Usage(format!(
                        "{}: {e}（既存のファイルは上書きしません / an existing file is never overwritten）",
                        out.display()
                    ))
                })?;
                std::io::Write::write_all(&mut f, &content).map_err(|e| CliError::Usage(format!("{}: {e}", out.display())))?;
                println!("{} → {} ({} bytes, sha256 {})", line.name, out.display(), line.bytes, line.sha256);
            }
            AppCmd::List { json: true } => json(&r.applications(Viewer::Owner).await.map_err(app_err)?)?,
            AppCmd::List { json: false } => {
                let list = r.applications(Viewer::Owner).await.map_err(app_err)?;
                if list.is_empty() {
                    println!("申請はありません / no applications");
                }
                for s in list {
                    let flag = if s.clock.overdue { " 期限超過 OVERDUE" } else { "" };
                    println!("{}  {:<24}  {:>5.1} 日 days{}  {}  {}", s.id, s.state.as_str(), s.clock.days, flag, s.applicant, s.title);
                }
            }
            AppCmd::Show { id, json: true } => json(&r.application(Viewer::Owner, &id).await.map_err(app_err)?)?,
            AppCmd::Show { id, json: false } => show(&r.application(Viewer::Owner, &id).await.map_err(app_err)?),
        }
        Ok(())
    })
}

/// Reads a file of at most `max` bytes (a larger one is refused before it is read whole).
fn read_limited(path: &std::path::Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    let mut content = Vec::new();
    f.take(max + 1).read_to_end(&mut content).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    if content.len() as u64 > max {
        return Err(CliError::Usage(format!(
            "{}: 添付は {} MiB までです / an attachment takes at most {} MiB",
            path.display(),
            max >> 20,
            max >> 20
        )));
    }
    Ok(content)
}

fn show(a: &Application) {
    let time = kura_ledger::entry::format_seconds;
    println!("{}  {}", a.id, a.title);
    println!("  状態 state: {}（{}）", a.state.label_ja(), a.state);
    println!(
        "  申請者 applicant: {}   共同研究者 members: {}",
        a.applicant,
        if a.members.is_empty() { "-".into() } else { a.members.join(", ") }
    );
    println!("  データセット dataset: {}   利用期間 period: {} 日 days", a.dataset, a.period_days);
    println!("  目的 purpose: {}", a.purpose);
    if !a.justification.is_empty() {
        println!("  公益性 justification: {}", a.justification);
    }
    if !a.ethics_ref.is_empty() {
        println!("  倫理審査 ethics: {}", a.ethics_ref);
    }
    if !a.places.is_empty() {
        println!("  利用場所 places: {}", a.places.join(", "));
    }
    println!("  列 columns:");
    for c in &a.columns {
        let mark = if c.approved { "承認 granted" } else { "" };
        println!("    {}.{}  {}  {}", c.table, c.column, mark, c.reason);
    }
    if !a.conditions.is_empty() {
        println!("  条件・理由 conditions / reason: {}", a.conditions);
    }
    for f in &a.attachments {
        println!("  添付 attachment #{}: {}  {} bytes  sha256 {}  ({}, {})", f.n, f.name, f.bytes, f.sha256, f.added_by, time(f.added_at));
    }
    let c = &a.clock;
    println!(
        "  クロック clock: {:.1} 日 days / 目標 target {} 日 days{}{}",
        c.days,
        c.target_days,
        if c.running { "（進行中 running）" } else { "（停止中 paused）" },
        if c.overdue { " 期限超過 OVERDUE" } else { "" }
    );
    if !a.round.is_empty() {
        println!("  審査の締切 review round: {}（提出 submission {}）", a.round, a.submission);
    }
    for v in &a.votes {
        println!("  投票 vote (#{}): {} {}  {}", v.submission, v.reviewer, if v.approve { "賛成 for" } else { "反対 against" }, v.comment);
    }
    println!("  履歴 history:");
    for e in &a.events {
        println!("    {}  {:<16} {} → {}  {}  (ledger #{})", time(e.at), e.step, e.from, e.to, e.actor, e.ledger_index);
    }
    if let Some(p) = &a.project {
        println!("  プロジェクト project: {p}");
    }
}

/// Runs `kura project …`.
pub fn project(home: &Home, a: ProjectArgs) -> Result<()> {
    runtime()?.block_on(async {
        let (app, r) = service(home).await?;
        match a.what {
            ProjectCmd::List { json: true } => json(&r.projects(Viewer::Owner).await.map_err(app_err)?)?,
            ProjectCmd::List { json: false } => {
                let list = r.projects(Viewer::Owner).await.map_err(app_err)?;
                if list.is_empty() {
                    println!("プロジェクトはありません / no projects");
                }
                for p in list {
                    println!(
                        "{}  {}  {}  {}  {} 列 columns  {}",
                        p.id,
                        p.state,
                        p.application,
                        p.dataset,
                        p.columns.len(),
                        p.members.join(",")
                    );
                }
            }
            ProjectCmd::Show { id, json: true } => json(&r.project(Viewer::Owner, &id).await.map_err(app_err)?)?,
            ProjectCmd::Show { id, json: false } => show_project(&r.project(Viewer::Owner, &id).await.map_err(app_err)?),
            ProjectCmd::Notice { id, who } => {
                let p = r.notice(&Caller::console_as(&who.login), &id).await.map_err(app_err)?;
                println!("{}: 利用終了を届け出ました / notice of the end of use given ({})", p.id, p.state);
                println!("次に（データ管理者）/ next (a custodian): kura project end {} --as CUSTODIAN", p.id);
            }
            ProjectCmd::End { id, who } => {
                let end = app.workspaces(r.clone())?.end(&Caller::console_as(&who.login), &id).await.map_err(crate::workspace::ws_err)?;
                println!(
                    "{}: 利用終了。作業環境の鍵を破棄し、ファイルを削除しました / ended: workspace key destroyed, files deleted",
                    end.project.id
                );
                println!("削除証明書 / deletion certificate: {} (sha256 {})", end.certificate.display(), end.certificate_sha256);
                println!("台帳 / ledger entry: {}", end.entry);
                match &end.proof {
                    Ok(path) => {
                        println!(
                            "検証 / verify: kura proof verify {} --log-key \"$(kura ledger key)\" --data {}",
                            path.display(),
                            end.certificate.display()
                        );
                        println!("{}", path.display());
                    }
                    Err(why) => return Err(CliError::Check(why.clone())),
                }
            }
        }
        Ok(())
    })
}

fn show_project(p: &Project) {
    let time = kura_ledger::entry::format_seconds;
    println!("{}  ({})", p.id, p.state);
    println!("  申請 application: {}   データセット dataset: {}", p.application, p.dataset);
    println!("  開始 created: {}   終了予定 ends: {}", time(p.created_at), time(p.ends_at));
    if let Some(t) = p.notice_at {
        println!("  利用終了の届出 notice given: {}", time(t));
    }
    if let Some(t) = p.ended_at {
        println!("  終了 ended: {} by {}", time(t), p.ended_by.as_deref().unwrap_or("-"));
    }
    if let Some(c) = &p.certificate_sha256 {
        println!("  削除証明書 deletion certificate sha256: {c}");
    }
    println!("  メンバー members: {}", p.members.join(", "));
    println!("  許可された列 grant:");
    for (t, c) in &p.columns {
        println!("    {t}.{c}");
    }
}
