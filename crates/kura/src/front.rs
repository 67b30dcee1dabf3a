//! `kura ca …`, `kura user …` and `kura serve`: the front door from the command line
//! (NET-1, NET-2, HX-5, HX-6, HX-9, HIC-S3, HIC-S4, HIC-U3).
//!
//! Layout in a home:
//!
//! ```text
//! <home>/ca/ca.crt.pem, ca.key.pem   Kura's certificate authority (key 0600)
//! <home>/state.db                    the store of record (unless [server] database names PostgreSQL)
//! ```

use crate::{CliError, Result, runtime};
use clap::{Args, Subcommand};
use kura_accounts::{Accounts, Clock, HashCost, Hasher, NewUser, Policy, Resetter, Role, Transition, Who};
use kura_crypto::{Purpose, SecretKey};
use kura_db::Db;
use kura_gate::ranges::Cidr;
use kura_gate::{AutoBlockPolicy, Gate, GateConfig};
use kura_pki::{Ca, RevocationSet, Subject};
use kura_store::Home;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// The store of record's URL: `[server] database`, or SQLite in the home.
pub fn database_url(home: &Home) -> String {
    let db = &home.config().server.database;
    if db.is_empty() { format!("sqlite://{}", home.root().join("state.db").display()) } else { db.clone() }
}

/// Opens and migrates the store of record.
pub async fn open_db(home: &Home) -> Result<Db> {
    let db = Db::connect(&database_url(home)).await.map_err(failed)?;
    db.migrate().await.map_err(failed)?;
    Ok(db)
}

/// The accounts key, created in the keyring on first use (wrapped by the master key).
fn accounts_key(home: &Home) -> Result<SecretKey> {
    Ok(home.ensure_key("platform/accounts", Purpose::Accounts)?)
}

/// The account rules from `[server]`.
fn policy(home: &Home) -> Policy {
    let c = &home.config().server;
    Policy {
        lockout_threshold: c.lockout_threshold,
        lock_for: (c.lock_minutes > 0).then(|| Duration::from_secs(c.lock_minutes * 60)),
        idle_timeout: Duration::from_secs(c.idle_timeout_secs),
        absolute_timeout: Duration::from_secs(c.absolute_timeout_secs),
        ..Policy::default()
    }
}

/// The accounts service of a home. `KURA_TEST_FAST_HASH=1` selects a cheap Argon2 cost for
/// the test suite only.
pub async fn accounts(home: &Home) -> Result<Accounts> {
    let log = crate::ledger::open_log(home).await?;
    let cost = if std::env::var("KURA_TEST_FAST_HASH").as_deref() == Ok("1") { HashCost::TEST } else { HashCost::DEFAULT };
    Accounts::new(log.store().db().clone(), log, accounts_key(home)?, policy(home), Hasher::for_this_machine(cost), Clock::default())
        .await
        .map_err(failed)
}

fn ca_dir(home: &Home) -> PathBuf {
    home.root().join("ca")
}

fn open_ca(home: &Home) -> Result<Ca> {
    Ca::open(&ca_dir(home))
        .map_err(|e| CliError::Usage(format!("{e}\n認証局がありません: `kura ca init` を実行してください / no CA yet: run `kura ca init`")))
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
    match a.what {
        CaCmd::Init { name } => {
            let ca = Ca::init(&ca_dir(home), &name).map_err(failed)?;
            println!("認証局を作成しました / created the CA: {}", ca_dir(home).display());
            println!("  指紋 fingerprint: {}", ca.fingerprint());
            server_certs(home, &ca, 90)?;
            println!("次に / next: kura user add … ; kura ca issue --user LOGIN --out DIR");
            Ok(())
        }
        CaCmd::ServerCerts { days } => server_certs(home, &open_ca(home)?, i64::from(days)),
        CaCmd::Issue { user, institution, out, days, password_stdin } => runtime()?.block_on(async {
            let ca = open_ca(home)?;
            let acc = accounts(home).await?;
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
            let acc = accounts(home).await?;
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
                            u.last_login_at.map(kura_server::api::time_text).unwrap_or_default(),
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

fn cidrs(what: &str, list: &[String]) -> Result<Vec<Cidr>> {
    list.iter().map(|c| Cidr::parse(c).map_err(|e| CliError::Usage(format!("[server] {what}: '{c}': {e}")))).collect()
}

/// The gate of `[server]`.
pub fn gate(home: &Home) -> Result<Gate> {
    let c = &home.config().server;
    let countries = c
        .countries
        .iter()
        .map(|s| {
            kura_gate::geo::Country::parse(s)
                .ok_or_else(|| CliError::Usage(format!("[server] countries: '{s}' is not a two-letter country code")))
        })
        .collect::<Result<Vec<_>>>()?;
    let rel = |p: &String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { home.root().join(p) }
    };
    let config = GateConfig {
        countries,
        internal: cidrs("internal", &c.internal)?,
        geo_files: c.geo_files.iter().map(rel).collect(),
        ip_blocklists: c.ip_blocklists.iter().map(rel).collect(),
        domain_blocklists: c.domain_blocklists.iter().map(rel).collect(),
        trusted_proxies: cidrs("trusted_proxies", &c.trusted_proxies)?,
        autoblock: AutoBlockPolicy {
            threshold: c.autoblock_threshold,
            window: Duration::from_secs(c.autoblock_window_secs),
            block_for: Duration::from_secs(c.autoblock_secs),
            ..AutoBlockPolicy::default()
        },
    };
    Gate::load(config).map_err(failed)
}

fn server_cert_dir(home: &Home) -> PathBuf {
    ca_dir(home).join("server")
}

/// Issues server certificates ahead of time for `[server] server_names` (with the CA key, in
/// this command, never in `kura serve`).
fn server_certs(home: &Home, ca: &Ca, days: i64) -> Result<()> {
    let names = &home.config().server.server_names;
    let now = kura_tlog::note::unix_now() as i64;
    let dir = server_cert_dir(home);
    let written = kura_pki::server_certs::issue_ahead(ca, names, &dir, now, days).map_err(failed)?;
    let certs = kura_pki::server_certs::load(&dir).map_err(failed)?;
    let until = kura_pki::server_certs::covered_until(&certs, now).unwrap_or(now);
    println!(
        "サーバー証明書 {} 枚を発行しました（{} まで有効）/ issued {} server certificate(s) for {}; covered until {}",
        written.len(),
        kura_server::api::time_text(until),
        written.len(),
        names.join(", "),
        kura_server::api::time_text(until)
    );
    Ok(())
}

/// Whether Kura may call `url` (a witness, a mirror): never a host on a domain blocklist, nor
/// an address on an IP blocklist (HIC-S9). Checked when the URL is taken into use.
pub fn outbound_allowed(home: &Home, url: &str) -> Result<()> {
    let c = &home.config().server;
    if c.domain_blocklists.is_empty() && c.ip_blocklists.is_empty() {
        return Ok(());
    }
    if gate(home)?.blocks_url(url) {
        return Err(CliError::Usage(format!(
            "{url}: 遮断リストにあるため接続しません（[server] domain_blocklists / ip_blocklists）/ refusing to call {url}: it is on a blocklist"
        )));
    }
    Ok(())
}

type ServerChain = (Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>, i64);

/// The server certificate to present now, from those issued ahead, with the CA certificate.
fn current_server_certificate(home: &Home, ca_cert: &rustls::pki_types::CertificateDer<'static>) -> Result<ServerChain> {
    let now = kura_tlog::note::unix_now() as i64;
    let certs = kura_pki::server_certs::load(&server_cert_dir(home)).map_err(failed)?;
    let Some(c) = kura_pki::server_certs::pick(&certs, now) else {
        return Err(CliError::Usage(
            "有効なサーバー証明書がありません: `kura ca server-certs` を実行してください / no valid server certificate: run `kura ca server-certs`".into(),
        ));
    };
    if kura_pki::server_certs::covered_until(&certs, now).is_some_and(|u| u - now < 14 * 86_400) {
        tracing::warn!("server certificates run out within 14 days: run `kura ca server-certs`");
    }
    Ok((vec![c.cert.clone(), ca_cert.clone()], c.key.clone_key(), c.not_after))
}

/// Checks hourly for the next server certificate issued ahead and puts it in place when it
/// becomes valid; the CA key is never read here.
async fn renew_server_certificate(home: Home, ca_cert: rustls::pki_types::CertificateDer<'static>, cert: Arc<kura_pki::tls::ServerCert>) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match current_server_certificate(&home, &ca_cert) {
            Ok((chain, key, end)) if end != cert.not_after() => match cert.replace(chain, key, end) {
                Ok(()) => tracing::info!(not_after = end, "server certificate renewed"),
                Err(e) => tracing::error!("server certificate renewal failed (retried in an hour): {e}"),
            },
            Ok(_) => {}
            Err(e) => tracing::error!("server certificate renewal failed (retried in an hour): {e}"),
        }
    }
}

/// Runs `kura serve` until interrupted.
pub fn serve(home: &Home, a: ServeArgs) -> Result<()> {
    let c = home.config().server.clone();
    runtime()?.block_on(async {
        // The CA's certificate only: this process faces the network and never loads the key
        // that signs certificates (server certificates were issued ahead, kura_pki::server_certs).
        let ca_cert = Ca::certificate(&ca_dir(home)).map_err(|e| {
            CliError::Usage(format!("{e}\n認証局がありません: `kura ca init` を実行してください / no CA yet: run `kura ca init`"))
        })?;
        let acc = accounts(home).await?;
        // A short-lived server certificate (no revocation information needed; see
        // kura_pki::tls::SERVER_CERT_DAYS), replaced by the next one while running.
        let (chain, key, not_after) = current_server_certificate(home, &ca_cert)?;
        let cert = kura_pki::tls::ServerCert::new(chain, key, not_after).map_err(failed)?;
        tokio::spawn(renew_server_certificate(home.clone(), ca_cert.clone(), cert.clone()));
        let revoked = Arc::new(RevocationSet::default());
        let tls = kura_pki::tls::server_config(&ca_cert, cert, revoked.clone()).map_err(failed)?;
        let datasets = home.catalog().map(|c| c.datasets.keys().cloned().collect()).unwrap_or_default();
        let operator_listen = a.operator_listen.or_else(|| (!c.operator_listen.is_empty()).then(|| c.operator_listen.clone()));
        let running = kura_server::serve::start(kura_server::serve::Settings {
            listen: a.listen.unwrap_or(c.listen.clone()),
            operator_listen,
            tls: Arc::new(tls),
            revoked,
            gate: Arc::new(gate(home)?),
            limits: kura_server::front::FrontLimits {
                max_connections: c.max_connections,
                max_per_address: c.max_connections_per_address,
                ..kura_server::front::FrontLimits::default()
            },
            accounts: acc,
            datasets,
            reload_every: Duration::from_secs(c.reload_secs.max(1)),
        })
        .await
        .map_err(failed)?;
        // A server keeps running if whoever started it stops reading its output.
        let say = |line: String| {
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "{line}");
        };
        say(format!("Kura を起動しました / serving on https://{} (クライアント証明書必須 / client certificate required)", running.addr));
        if let Some(op) = running.operator_addr {
            say(format!("運用管理者用 / operators: https://{op}"));
        }
        say(format!("認証局の証明書 / CA certificate: {}", ca_dir(home).join("ca.crt.pem").display()));
        say(format!("データベース / database: {}", kura_db::redact(&database_url(home))));
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
