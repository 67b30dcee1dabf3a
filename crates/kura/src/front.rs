//! `kura ca …`, `kura user …` and `kura serve`: the front door from the command line
//! (NET-1, NET-2, HX-5, HX-6, HX-9, HIC-S3, HIC-S4, HIC-U3).
//!
//! Arguments and output only: the parts (accounts, the CA's files, the server) come from the
//! composition root, `kura-app`.

use crate::{CliError, Result, runtime};
use clap::{Args, Subcommand};
use kura_accounts::{Accounts, NewUser, Resetter, Role, Transition, Who};
use kura_pki::{Ca, Subject};
use kura_store::Home;
use std::path::PathBuf;

/// `kura ca …`
#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    what: CaCmd,
}

#[derive(Debug, Subcommand)]
enum CaCmd {
    /// 認証局を作成（ECDSA P-256、鍵は所有者のみ読める）/ create Kura's certificate authority (ECDSA P-256; key readable by its owner only)
    Init {
        /// 認証局の名前 / the CA's name
        #[arg(long, default_value = "Kura CA")]
        name: String,
    },
    /// 利用者または機関のクライアント証明書を発行（PKCS#12 と PEM）/ issue a client certificate for a user or an institution (PKCS#12 and PEM)
    #[command(group(clap::ArgGroup::new("subject").required(true).args(["user", "institution"])))]
    Issue {
        /// 利用者ID / the user's login
        #[arg(long)]
        user: Option<String>,
        /// 機関コード（機関そのものの証明書、機械間アップロード用）/ an institution code (a machine certificate for the institution)
        #[arg(long)]
        institution: Option<String>,
        /// 出力先ディレクトリ（NAME.p12, NAME.crt.pem, NAME.key.pem）/ output directory
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// 有効日数 / days of validity
        #[arg(long, default_value_t = 397)]
        days: u32,
        /// PKCS#12 のパスワードを標準入力から読む（省略時は生成して表示）/ read the PKCS#12 password from standard input (default: generate and print one)
        #[arg(long)]
        password_stdin: bool,
    },
    /// サーバー証明書を先行発行（7日有効、4日ごと。kura serve は認証局の鍵を読まない）/ issue server certificates ahead (7 days each, one every 4 days; `kura serve` never reads the CA key)
    ServerCerts {
        /// 今日から何日分を用意するか / how many days from today to cover
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// 証明書を失効（次のハンドシェイクから拒否）/ revoke certificates (refused from the next handshake on)
    #[command(group(clap::ArgGroup::new("which").required(true).args(["user", "institution"])))]
    Revoke {
        /// この利用者の全証明書 / every certificate of this user
        #[arg(long)]
        user: Option<String>,
        /// この機関の機関証明書 / the institution's machine certificates
        #[arg(long)]
        institution: Option<String>,
    },
}

/// `kura user …`
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    what: UserCmd,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// 利用者を作成（パスワードを与えれば有効、無ければ保留）/ create a user (active with a password, pending without)
    Add {
        /// 利用者ID（a-z 0-9 . _ -）/ login ID
        #[arg(long)]
        login: String,
        /// 役割 / role
        #[arg(long, value_parser = ["researcher", "custodian", "reviewer", "provider", "operator", "auditor"])]
        role: String,
        /// 所属機関コード（未登録なら登録）/ institution code (registered if new)
        #[arg(long)]
        institution: String,
        /// 機関名（新規登録時）/ the institution's name, when it is new
        #[arg(long)]
        institution_name: Option<String>,
        /// 氏名 / the user's name
        #[arg(long, default_value = "")]
        name: String,
        /// 初期パスワードを標準入力から読む / read the initial password from standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// ロック（解除まで）/ lock an account until unlocked
    Lock {
        /// 利用者ID / login
        login: String,
    },
    /// ロック解除（失敗回数も消去）/ unlock an account (and clear its failure count)
    Unlock {
        /// 利用者ID / login
        login: String,
    },
    /// 利用停止（セッションも終了）/ suspend an account (its sessions end)
    Suspend {
        /// 利用者ID / login
        login: String,
    },
    /// 有効化 / activate a pending or suspended account
    Activate {
        /// 利用者ID / login
        login: String,
    },
    /// 廃止（申請による、元に戻せない）/ disable an account for good (on request)
    Disable {
        /// 利用者ID / login
        login: String,
    },
    /// パスワード再設定（正式な依頼に基づく、記録される）/ reset a password on a formal request (recorded)
    ResetPassword {
        /// 利用者ID / login
        login: String,
        /// 新しいパスワードを標準入力から読む / read the new password from standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// 二要素認証をやり直させる（端末紛失時）/ make the user enrol a second factor again (lost device)
    ResetSecondFactor {
        /// 利用者ID / login
        login: String,
    },
    /// 利用者一覧 / list users
    List {
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
    /// 定期棚卸し（HX-9）/ the periodic account inventory (HX-9)
    Inventory {
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
}

/// `kura serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// ポータルとAPIの待ち受けアドレス / the portal and API listener [default: [server] listen, 127.0.0.1:8443]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// 運用管理者用の待ち受けアドレス（既定は閉じる）/ the operators' listener (closed by default)
    #[arg(long, value_name = "ADDR")]
    operator_listen: Option<String>,
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Check(e.to_string())
}

/// The accounts service of a home, composed by [`crate::app`].
async fn accounts(home: &Home) -> Result<Accounts> {
    Ok(crate::app(home)?.accounts().await?)
}

fn read_password_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| CliError::Io { path: "<stdin>".into(), source: e })?;
    let s = s.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        return Err(CliError::Usage("標準入力にパスワードがありません / no password on standard input".into()));
    }
    Ok(s)
}

fn generated_password() -> Result<String> {
    let mut b = [0u8; 12];
    kura_crypto::random_bytes(&mut b).map_err(failed)?;
    Ok(hex::encode(b))
}

/// Runs `kura ca …`.
pub fn ca(home: &Home, a: CaArgs) -> Result<()> {
    let app = crate::app(home)?;
    match a.what {
        CaCmd::Init { name } => {
            let ca = app.init_ca(&name)?;
            println!("認証局を作成しました / created the CA: {}", app.layout().ca_dir().display());
            println!("  指紋 fingerprint: {}", ca.fingerprint());
            server_certs(&app, &ca, 90)?;
            println!("次に / next: kura user add … ; kura ca issue --user LOGIN --out DIR");
            Ok(())
        }
        CaCmd::ServerCerts { days } => server_certs(&app, &app.open_ca()?, i64::from(days)),
        CaCmd::Issue { user, institution, out, days, password_stdin } => runtime()?.block_on(async {
            let ca = app.open_ca()?;
            let acc = app.accounts().await?;
            let (subject, name, login, inst) = match (&user, &institution) {
                (Some(login), _) => {
                    let u = acc.user(login).await.map_err(failed)?;
                    (
                        Subject::User { login: u.login.clone(), institution: u.institution.clone() },
                        u.login.clone(),
                        Some(u.login),
                        u.institution,
                    )
                }
                (None, Some(code)) => {
                    if !acc.institution_exists(code).await.map_err(failed)? {
                        return Err(CliError::Usage(format!(
                            "機関 '{code}' は未登録です / no institution '{code}': add a user of it first"
                        )));
                    }
                    (Subject::Institution { code: code.clone() }, code.clone(), None, code.clone())
                }
                (None, None) => unreachable!("clap requires --user or --institution"),
            };
            let password = if password_stdin { read_password_stdin()? } else { generated_password()? };
            let issued = ca.issue(&subject, days).map_err(failed)?;
            let paths = ca.export(&issued, &out, &name, &password).map_err(failed)?;
            acc.register_certificate(
                &Who::console(),
                &issued.fingerprint.to_string(),
                &issued.serial,
                login.as_deref(),
                &inst,
                issued.not_after,
            )
            .await
            .map_err(failed)?;
            println!("証明書を発行しました / issued: {}", issued.fingerprint);
            for p in &paths {
                println!("  {}", p.display());
            }
            if !password_stdin {
                println!("PKCS#12 のパスワード / PKCS#12 password: {password}");
                println!("（本人に別経路で伝えてください / give it to the holder by another channel）");
            }
            Ok(())
        }),
        CaCmd::Revoke { user, institution } => runtime()?.block_on(async {
            let acc = app.accounts().await?;
            let revoked = acc.revoke_certificates(&Who::console(), user.as_deref(), institution.as_deref()).await.map_err(failed)?;
            if revoked.is_empty() {
                println!("失効させる証明書はありません / no unrevoked certificate found");
            }
            for r in revoked {
                println!("失効 / revoked: {} (serial {})", r.fingerprint, r.serial);
            }
            println!(
                "稼働中のサーバーは再読込の間隔（[server] reload_secs）以内に拒否を始めます。即時に止めるには運用管理者用の画面・API で失効させてください / a running server refuses them within its reload interval ([server] reload_secs); revoke through the operators' listener to stop them at once"
            );
            Ok(())
        }),
    }
}

/// Runs `kura user …`.
pub fn user(home: &Home, a: UserArgs) -> Result<()> {
    runtime()?.block_on(async {
        let acc = accounts(home).await?;
        let who = Who::console();
        let done = |login: &str, what: &str| println!("{login}: {what}");
        match a.what {
            UserCmd::Add { login, role, institution, institution_name, name, password_stdin } => {
                let role: Role = role.parse().map_err(failed)?;
                if !acc.institution_exists(&institution).await.map_err(failed)? {
                    acc.add_institution(&who, &institution, institution_name.as_deref().unwrap_or(&institution)).await.map_err(failed)?;
                    println!("機関を登録しました / registered institution {institution}");
                }
                let pw = if password_stdin { Some(read_password_stdin()?) } else { None };
                let u = acc.add_user(&who, &NewUser { login, institution, role, name }, pw.as_deref()).await.map_err(failed)?;
                println!("利用者を作成しました / created user {} ({}, {})", u.login, u.role, u.state.as_str());
                if pw.is_none() {
                    println!("パスワード未設定のため保留です / pending: set a password with `kura user reset-password {} --password-stdin`, then `kura user activate {}`", u.login, u.login);
                }
            }
            UserCmd::Lock { login } => {
                acc.lock(&who, &login).await.map_err(failed)?;
                done(&login, "ロックしました / locked");
            }
            UserCmd::Unlock { login } => {
                acc.unlock(&who, &login).await.map_err(failed)?;
                done(&login, "ロックを解除しました / unlocked");
            }
            UserCmd::Suspend { login } => {
                acc.transition(&who, &login, Transition::Suspend).await.map_err(failed)?;
                done(&login, "利用停止しました / suspended");
            }
            UserCmd::Activate { login } => {
                acc.transition(&who, &login, Transition::Activate).await.map_err(failed)?;
                done(&login, "有効にしました / activated");
            }
            UserCmd::Disable { login } => {
                acc.transition(&who, &login, Transition::Disable).await.map_err(failed)?;
                done(&login, "廃止しました / disabled");
            }
            UserCmd::ResetPassword { login, password_stdin } => {
                if !password_stdin {
                    return Err(CliError::Usage("--password-stdin で新しいパスワードを渡してください / pass the new password with --password-stdin".into()));
                }
                acc.reset_password(&who, &Resetter::Console, &login, &read_password_stdin()?).await.map_err(failed)?;
                done(&login, "パスワードを再設定しました（次回ログイン時に変更が必要、記録済み）/ password reset (to be changed at the next sign-in; recorded)");
            }
            UserCmd::ResetSecondFactor { login } => {
                acc.reset_second_factor(&who, &login).await.map_err(failed)?;
                done(&login, "次回ログイン時に二要素認証を再設定します / will enrol a second factor at the next sign-in");
            }
            UserCmd::List { json } => {
                let users = acc.users().await.map_err(failed)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&users).map_err(failed)?);
                } else {
                    let mut t = comfy_table::Table::new();
                    t.set_header(["ID login", "機関 institution", "役割 role", "状態 state", "ロック locked", "2FA", "最終ログイン last sign-in"]);
                    for u in users {
                        t.add_row([
                            u.login,
                            u.institution,
                            u.role.to_string(),
                            u.state.as_str().to_string(),
                            if u.locked { "yes".into() } else { String::new() },
                            if u.totp { "yes".into() } else { String::new() },
                            u.last_login_at.map(kura_server::web::time_text).unwrap_or_default(),
                        ]);
                    }
                    println!("{t}");
                }
            }
            UserCmd::Inventory { json } => {
                let rows = acc.inventory().await.map_err(failed)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&rows).map_err(failed)?);
                } else {
                    let mut t = comfy_table::Table::new();
                    t.set_header(["ID login", "状態 state", "証明書 certs", "無操作日数 idle days", "要確認 flags"]);
                    for r in rows {
                        t.add_row([r.user.login, r.user.state.as_str().into(), r.certificates.to_string(), r.idle_days.to_string(), r.flags.join(" ")]);
                    }
                    println!("{t}");
                }
            }
        }
        Ok(())
    })
}

/// Issues server certificates ahead of time for `[server] server_names` (with the CA key, in
/// this command, never in `kura serve`) and says until when they cover.
fn server_certs(app: &kura_app::App, ca: &Ca, days: i64) -> Result<()> {
    let (written, until) = app.issue_server_certs(ca, days)?;
    let names = app.config().server.server_names.join(", ");
    let until = kura_server::web::time_text(until);
    println!(
        "サーバー証明書 {written} 枚を発行しました（{until} まで有効）/ issued {written} server certificate(s) for {names}; covered until {until}"
    );
    Ok(())
}

/// Runs `kura serve` until interrupted.
pub fn serve(home: &Home, a: ServeArgs) -> Result<()> {
    let app = crate::app(home)?;
    runtime()?.block_on(async {
        let running = app.start_server(kura_app::front::Listeners { listen: a.listen, operator_listen: a.operator_listen }).await?;
        // A server keeps running if whoever started it stops reading its output.
        let say = |line: String| {
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "{line}");
        };
        say(format!("Kura を起動しました / serving on https://{} (クライアント証明書必須 / client certificate required)", running.addr));
        if let Some(op) = running.operator_addr {
            say(format!("運用管理者用 / operators: https://{op}"));
        }
        say(format!("認証局の証明書 / CA certificate: {}", app.layout().ca_cert().display()));
        say(format!("データベース / database: {}", kura_db::redact(&app.database_url())));
        say("停止は Ctrl-C / stop with Ctrl-C".into());
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate() => {}
        }
        running.stop().await;
        Ok(())
    })
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}
