//! `kura exchange …`: files between institutions (issue 18 §3; HX-7, HX-8, NET-3, NET-4). The
//! command names and options are a contract: `exchange send --as LOGIN --to INSTITUTION|--group G
//! FILE` (prints the transfer id last), `exchange list|get|trail --as LOGIN`; `delete`,
//! `expire` and `group` beside them. The rules are `kura-workflows`'; the sealed files
//! `kura-app`'s.

use crate::{CliError, Result, runtime};
use clap::{Args, Subcommand};
use kura_store::Home;
use kura_workflows::{Caller, NewTransfer, Recipient, Transfer, utc};
use std::path::PathBuf;

/// `kura exchange`
#[derive(Debug, Args)]
#[command(after_help = "\
例 / examples:
  kura exchange send --as h1 --to 1310000002 results_2026.csv --note \"2026年度 健診結果（標準様式）\"
  kura exchange send --as h1 --group tokyo-east results_2026.csv
  kura exchange list --as h2
  kura exchange get XF-0123456789abcdef --as h2 --out ./results_2026.csv
  kura exchange trail XF-0123456789abcdef --as h1 --proofs ./proofs
  kura exchange group set tokyo-east --title \"東部地域連携\" --member 1310000001 --member 1310000002
  kura exchange expire

送ったファイルは送信した機関と、送信時に決めた受信機関だけが一覧・受信・証跡の閲覧をできます。それ以外の機関には
「ありません」と答えます（存在も知らせません）。ファイルは送信ごとの鍵で暗号化して保存し、保存期間
（kura.toml の [exchange] retention_days）が過ぎると鍵ごと削除します。送信・受信・削除はすべて証跡と台帳に
残り、送信側と受信側は同じ証跡を読めます（--proofs で各記録の包含証明を書き出し、kura proof verify で確認）。
Only the sending institution and the receivers fixed at sending can list a file, download it or read its
trail; anyone else is told that it does not exist. Each file is encrypted under a key of its own and deleted
with its key once its retention period ([exchange] retention_days in kura.toml) is over. Sending, every download
and the deletion are in the file's trail and the ledger; sender and receivers read the same trail (--proofs writes
each step's inclusion proof; check it with kura proof verify).")]
pub struct ExchangeArgs {
    #[command(subcommand)]
    what: XCmd,
}

#[derive(Debug, Subcommand)]
enum XCmd {
    /// ファイルを送る（ウイルス検査のうえ暗号化して保存、送信IDを最後に表示）/ send a file (scanned, sealed; prints the
    /// transfer id last)
    Send {
        /// この利用者（医療機関等の提供者アカウント）として操作 / act as this user (an institution's provider account)
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 受信機関のコード / the receiving institution's code
        #[arg(long, value_name = "INSTITUTION", group = "receiver", required = true)]
        to: Option<String>,
        /// 受信する閉域グループ（自機関が属するもの）/ a closed group your institution belongs to
        #[arg(long, value_name = "G", group = "receiver")]
        group: Option<String>,
        /// 何のファイルか（受信側に表示）/ what it is (shown to the receivers)
        #[arg(long, default_value = "")]
        note: String,
        /// 送るファイル / the file
        file: PathBuf,
    },
    /// 送受信したファイルの一覧（新しい順）/ the files your institution sent or received, newest first
    List {
        /// この利用者として / as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
    /// ファイルを受け取る（受信として証跡に残る）/ download a file (recorded in its trail)
    Get {
        /// 送信ID / transfer id
        id: String,
        /// この利用者として / as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 書き出し先（既存のファイルは上書きしない）/ where to write it (never over an existing file)
        #[arg(long)]
        out: PathBuf,
    },
    /// 証跡：送信・受信・削除の記録（送信側・受信側で同じ）/ the trail: sent, downloaded, deleted (the same for sender
    /// and receivers)
    Trail {
        /// 送信ID / transfer id
        id: String,
        /// この利用者として / as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
        /// 各記録の包含証明（.tlog-proof）の書き出し先 / write each step's inclusion proof (.tlog-proof) here
        #[arg(long, value_name = "DIR")]
        proofs: Option<PathBuf>,
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
    /// 保存期間の前に削除（送信した機関）/ delete before the retention period ends (the sending institution)
    Delete {
        /// 送信ID / transfer id
        id: String,
        /// この利用者として / as this user
        #[arg(long = "as", value_name = "LOGIN")]
        login: String,
    },
    /// 保存期間を過ぎたファイルを削除（定期実行用）/ delete the files whose retention period is over (for a schedule)
    Expire,
    /// 閉域グループ（地域連携・同一法人・学会など）/ closed groups (regional networks, one corporation, conferences)
    Group {
        #[command(subcommand)]
        what: GroupCmd,
    },
}

#[derive(Debug, Subcommand)]
enum GroupCmd {
    /// グループを作成・置き換え（運用者）/ define or replace a group (operators)
    Set {
        /// グループ名（英数字・-・_）/ its name (ASCII letters, digits, '-', '_')
        name: String,
        /// 説明 / what it is
        #[arg(long, default_value = "")]
        title: String,
        /// 参加機関のコード（2つ以上）/ a member institution's code (two or more)
        #[arg(long = "member", value_name = "INSTITUTION", required = true)]
        members: Vec<String>,
    },
    /// グループの一覧 / list the groups
    List,
}

/// Text from a sender, shown on one line: escaped, so that none can pose as a line Kura printed
/// or drive a terminal.
fn one_line(t: &str) -> String {
    t.chars().flat_map(char::escape_debug).collect()
}

fn print_transfer(t: &Transfer) {
    println!("{}  {} / {}  {} bytes  sha256 {}", t.id, t.state.label_ja(), t.state, t.bytes, t.sha256);
    println!("  from {} ({})  to {}  receivers {}", t.sender_institution, t.sender, t.addressed_to, t.receivers.join(","));
    println!("  name: {}", one_line(&t.name));
    if !t.note.is_empty() {
        println!("  note: {}", one_line(&t.note));
    }
    match t.deleted_at {
        Some(d) => println!("  sent {}  deleted {}", utc(t.created_at), utc(d)),
        None => println!("  sent {}  deleted by {} at the latest", utc(t.created_at), utc(t.expires_at)),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v).map_err(|e| CliError::Usage(e.to_string()))?);
    Ok(())
}

/// Runs `kura exchange …`.
pub fn exchange(home: &Home, a: ExchangeArgs) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let (app, research) = crate::research::service(home).await?;
        let x = app.exchanges(&research);
        let wf = crate::research::app_err;
        match a.what {
            XCmd::Send { login, to, group, note, file } => {
                let meta = std::fs::symlink_metadata(&file).map_err(|e| CliError::Io { path: file.display().to_string(), source: e })?;
                if !meta.file_type().is_file() {
                    return Err(CliError::Usage(format!("{}: 通常のファイルではありません / not a regular file", file.display())));
                }
                let max = x.config().max_bytes();
                if meta.len() > max {
                    return Err(CliError::Usage(format!(
                        "{}: {} MiB までです（{} バイト）/ at most {} MiB ({} bytes; [exchange] max_mb)",
                        file.display(),
                        x.config().max_mb,
                        meta.len(),
                        x.config().max_mb,
                        meta.len()
                    )));
                }
                let content = std::fs::read(&file).map_err(|e| CliError::Io { path: file.display().to_string(), source: e })?;
                let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let to = match (to, group) {
                    (Some(code), _) => Recipient::Institution(code),
                    (None, Some(g)) => Recipient::Group(g),
                    (None, None) => return Err(CliError::Usage("--to か --group を指定してください / give --to or --group".into())),
                };
                let t = app.exchange_send(&research, &Caller::console_as(&login), &NewTransfer { name, note, to }, &content).await?;
                print_transfer(&t);
                println!("{}", t.id);
            }
            XCmd::List { login, json: as_json } => {
                let list = x.list(&Caller::console_as(&login)).await.map_err(wf)?;
                if as_json {
                    return json(&list);
                }
                if list.is_empty() {
                    println!("送受信したファイルはありません / no file sent or received");
                }
                for t in &list {
                    println!(
                        "{}  {}  from {}  to {}  {} bytes  {}",
                        t.id,
                        t.state,
                        t.sender_institution,
                        t.addressed_to,
                        t.bytes,
                        one_line(&t.name)
                    );
                }
            }
            XCmd::Get { id, login, out } => {
                // Never over an existing file, never through a link.
                let mut f = std::os::unix::fs::OpenOptionsExt::mode(std::fs::OpenOptions::new().write(true).create_new(true), 0o600)
                    .open(&out)
                    .map_err(|e| CliError::Io { path: out.display().to_string(), source: e })?;
                let got = x.download(&Caller::console_as(&login), &id).await;
                let (t, content) = match got {
                    Ok(x) => x,
                    Err(e) => {
                        drop(f);
                        let _ = std::fs::remove_file(&out);
                        return Err(wf(e));
                    }
                };
                std::io::Write::write_all(&mut f, &content)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| CliError::Io { path: out.display().to_string(), source: e })?;
                print_transfer(&t);
                println!("書き出しました / written: {} ({} bytes, sha256 {})", out.display(), content.len(), t.sha256);
            }
            XCmd::Trail { id, login, proofs, json: as_json } => {
                let (t, events) = x.trail(&Caller::console_as(&login), &id).await.map_err(wf)?;
                if as_json {
                    return json(&serde_json::json!({ "transfer": t, "trail": events }));
                }
                print_transfer(&t);
                println!(
                    "  台帳の内容ダイジェスト / the ledger's content digest: {} (salt {})",
                    kura_workflows::exchange::salted_digest(&t.salt, &t.sha256),
                    t.salt
                );
                for e in &events {
                    let by = if e.institution.is_empty() { e.actor.clone() } else { format!("{} ({})", e.actor, e.institution) };
                    println!(
                        "  {}  {}  {} / {}  by {}  (ledger {})",
                        e.seq,
                        utc(e.at),
                        e.step.label_ja(),
                        e.step.as_str(),
                        by,
                        e.ledger_index
                    );
                }
                if let Some(dir) = proofs {
                    std::fs::create_dir_all(&dir).map_err(|e| CliError::Io { path: dir.display().to_string(), source: e })?;
                    let log = research.log();
                    for e in &events {
                        let index =
                            u64::try_from(e.ledger_index).map_err(|_| CliError::Check(format!("ledger index {}", e.ledger_index)))?;
                        let entry = log.store_read(index).await?;
                        let proof = log.prove(index, Some(entry)).await?;
                        let path = dir.join(format!("{}-{}-{}.tlog-proof", t.id, e.seq, e.step.as_str()));
                        let mut f = std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(&path)
                            .map_err(|err| CliError::Io { path: path.display().to_string(), source: err })?;
                        std::io::Write::write_all(&mut f, &proof.to_bytes())
                            .map_err(|err| CliError::Io { path: path.display().to_string(), source: err })?;
                        println!("証明 / proof: {}", path.display());
                    }
                }
            }
            XCmd::Delete { id, login } => {
                let t = x.delete(&Caller::console_as(&login), &id).await.map_err(wf)?;
                print_transfer(&t);
            }
            XCmd::Expire => {
                let gone = x.expire().await.map_err(wf)?;
                for t in &gone {
                    println!("削除 deleted {}  (sent {}, retention over {})", t.id, utc(t.created_at), utc(t.expires_at));
                }
                println!("保存期間を過ぎて削除したファイル / files deleted after their retention period: {}", gone.len());
                let swept = x.sweep().await.map_err(wf)?;
                println!("不要になった保存ファイルの削除 / stored files no transfer needs, removed: {swept}");
            }
            XCmd::Group { what: GroupCmd::Set { name, title, members } } => {
                let g = x.set_group(&Caller::user(kura_accounts::Who::console()), &name, &title, &members).await.map_err(wf)?;
                println!("グループ / group {}: {}  members {}", g.name, one_line(&g.title), g.members.join(","));
            }
            XCmd::Group { what: GroupCmd::List } => {
                for g in x.groups().await.map_err(wf)? {
                    println!("{}  {}  members {}", g.name, one_line(&g.title), g.members.join(","));
                }
            }
        }
        Ok(())
    })
}
