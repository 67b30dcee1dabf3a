//! Exchange between institutions (issue 18 §3; HX-7, HX-8, NET-3, NET-4): an institution
//! sends a file to another institution, or to a closed group an operator defined (a regional
//! network, hospitals of one corporation, a conference); only the sender's institution and the
//! receivers fixed at sending can list it, download it or read its trail. Everyone else is
//! told that it does not exist, exactly as for an identifier nobody ever used (HTTP 404).
//!
//! This module holds the record and the rules; the bytes are kept by a [`FileStore`] (in
//! `kura-app`: each file sealed under a key of its own, whose wrapped form this module keeps
//! and destroys with the file). Every step is a row of the transfer's trail and a ledger entry in
//! the same transaction; the trail is the same for the sender and every receiver.
//!
//! ```text
//!  send ──▶ available ──download (sender or a receiver; any number of times)──▶ available
//!              │ ──delete (the sender's institution)──▶ deleted
//!              └──expire (the retention period is over)──▶ deleted
//! ```
//!
//! An expired file cannot be downloaded even before its deletion has run: every step first
//! deletes what is due.

use crate::bringin::file_name;
use crate::research::{Caller, Research, person, proxy_note, text};
use crate::{Result, WorkflowError};
use kura_accounts::Role;
use kura_accounts::Who;
use kura_ledger::entry::Actor;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

/// Longest note, in characters.
const MAX_NOTE: usize = 2_000;
/// Longest group name, in characters (ASCII letters, digits, `-` and `_`).
const MAX_GROUP: usize = 40;
/// The actor of automatic deletions.
pub const RETENTION_ACTOR: &str = "kura:retention";

/// Rules of the exchange (`[exchange]` in `kura.toml`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Days a file stays available after it was sent; then it is deleted (HX-8).
    pub retention_days: u32,
    /// The largest file, in MiB.
    pub max_mb: u64,
}

impl ExchangeConfig {
    /// The largest file, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_mb.saturating_mul(1 << 20)
    }

    /// Checks the values, naming the setting that is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(1..=3_650).contains(&self.retention_days) {
            return Err("retention_days は 1〜3650 / retention_days must be between 1 and 3650".into());
        }
        if !(1..=4_096).contains(&self.max_mb) {
            return Err("max_mb は 1〜4096 / max_mb must be between 1 and 4096".into());
        }
        Ok(())
    }
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig { retention_days: 30, max_mb: 64 }
    }
}

/// Where a transfer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XState {
    /// Stored, sealed; its sender and receivers may download it.
    Available,
    /// Deleted (by its sender, or when its retention period ended): the file and its key are
    /// gone; the record and the trail stay.
    Deleted,
}

impl XState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            XState::Available => "available",
            XState::Deleted => "deleted",
        }
    }

    /// The Japanese name shown to users.
    pub fn label_ja(self) -> &'static str {
        match self {
            XState::Available => "受信可能",
            XState::Deleted => "削除済み",
        }
    }

    fn parse(s: &str) -> Option<XState> {
        [XState::Available, XState::Deleted].into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for XState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of a transfer's trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XStep {
    /// Sent (stored, sealed).
    Send,
    /// Downloaded by the sender or a receiver.
    Download,
    /// Deleted by the sender's institution.
    Delete,
    /// Deleted at the end of its retention period.
    Expire,
}

impl XStep {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            XStep::Send => "send",
            XStep::Download => "download",
            XStep::Delete => "delete",
            XStep::Expire => "expire",
        }
    }

    /// The Japanese name shown to users.
    pub fn label_ja(self) -> &'static str {
        match self {
            XStep::Send => "送信",
            XStep::Download => "受信（ダウンロード）",
            XStep::Delete => "削除",
            XStep::Expire => "保存期間満了による削除",
        }
    }

    /// The state a transfer in `from` goes to by this step; `None` where the step is not
    /// possible there.
    pub fn target(self, from: Option<XState>) -> Option<XState> {
        match (self, from) {
            (XStep::Send, None) => Some(XState::Available),
            (XStep::Download, Some(XState::Available)) => Some(XState::Available),
            (XStep::Delete | XStep::Expire, Some(XState::Available)) => Some(XState::Deleted),
            _ => None,
        }
    }

    fn parse(s: &str) -> Option<XStep> {
        [XStep::Send, XStep::Download, XStep::Delete, XStep::Expire].into_iter().find(|x| x.as_str() == s)
    }
}

/// To whom a file is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// One institution, by its code.
    Institution(String),
    /// Every other member of a closed group the sender's institution belongs to.
    Group(String),
}

impl Recipient {
    fn label(&self) -> String {
        match self {
            Recipient::Institution(c) => c.clone(),
            Recipient::Group(g) => format!("group:{g}"),
        }
    }
}

/// A file about to be sent (scanned clean by the caller).
#[derive(Clone, Debug)]
pub struct NewTransfer {
    /// The file's name.
    pub name: String,
    /// What it is, for the receivers.
    pub note: String,
    /// To whom.
    pub to: Recipient,
}

/// Where the files' bytes are kept. Errors are short reasons (no content, no key).
pub trait FileStore: Send + Sync + std::fmt::Debug {
    /// Stores `content` as transfer `id`; returns the wrapped key that opens it (kept with
    /// the transfer's record, destroyed with the file).
    fn seal(&self, id: &str, sha256: &str, content: &[u8]) -> std::result::Result<String, String>;
    /// The bytes of `t`, opened with its wrapped key and checked against its SHA-256.
    fn open(&self, t: &Transfer, wrapped_key: &str) -> std::result::Result<Vec<u8>, String>;
    /// Removes the stored bytes of transfer `id` (nothing to do where there are none).
    fn remove(&self, id: &str) -> std::result::Result<(), String>;
    /// Every transfer whose bytes are stored, with the age of its file in seconds.
    fn leftovers(&self) -> std::result::Result<Vec<(String, u64)>, String>;
}

/// A transfer as its sender and receivers see it.
#[derive(Clone, Debug, Serialize)]
pub struct Transfer {
    /// `XF-` and 16 random hex digits: not guessable, and saying nothing of how many exist.
    pub id: String,
    /// The sending institution's code.
    pub sender_institution: String,
    /// The sending user.
    pub sender: String,
    /// What it was addressed to: an institution's code or `group:NAME`.
    pub addressed_to: String,
    /// The receiving institutions, fixed at sending (HX-7).
    pub receivers: Vec<String>,
    /// The file's name.
    pub name: String,
    /// The sender's note.
    pub note: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// The salt of the content digest its ledger entries carry ([`salted_digest`]), hex.
    pub salt: String,
    /// Its state.
    pub state: XState,
    /// When it was sent (Unix seconds).
    pub created_at: i64,
    /// When it is deleted at the latest (Unix seconds).
    pub expires_at: i64,
    /// When it was deleted.
    pub deleted_at: Option<i64>,
}

/// One step of a transfer's trail.
#[derive(Clone, Debug, Serialize)]
pub struct TrailEvent {
    /// Its number in the trail (1, 2, …).
    pub seq: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// Who (a login, or [`RETENTION_ACTOR`]).
    pub actor: String,
    /// Their institution (empty for the retention).
    pub institution: String,
    /// The step.
    pub step: XStep,
    /// Its ledger entry: `kura exchange trail --proofs DIR` proves it.
    pub ledger_index: i64,
}

/// A closed group of institutions (NET-4).
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// What it is.
    pub title: String,
    /// Its member institutions' codes.
    pub members: Vec<String>,
}

/// The exchange of a home (see the module documentation).
#[derive(Clone, Debug)]
pub struct Exchanges {
    research: Research,
    config: ExchangeConfig,
    files: std::sync::Arc<dyn FileStore>,
}

impl Research {
    /// The exchange between institutions, over the same store, ledger and clock, its files
    /// kept by `files`.
    pub fn exchanges(&self, config: ExchangeConfig, files: std::sync::Arc<dyn FileStore>) -> Exchanges {
        Exchanges { research: self.clone(), config, files }
    }
}

fn not_found(id: &str) -> WorkflowError {
    WorkflowError::NotFound { what: "送信ファイル", what_en: "transfer", cmd: "exchange", id: id.into() }
}

fn refused(id: &str, why_ja: &str, why_en: &str) -> WorkflowError {
    WorkflowError::ExchangeRefused { id: id.into(), why_ja: why_ja.into(), why_en: why_en.into() }
}

/// An identifier as given, safe to repeat in an answer or the ledger: at most 40 characters,
/// escaped.
fn shown(id: &str) -> String {
    id.chars().take(40).flat_map(char::escape_debug).collect()
}

/// SHA-256 of `salt` (hex) and `sha256` (hex): the content digest the ledger carries.
pub fn salted_digest(salt: &str, sha256: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"kura/exchange-digest/v1\0");
    h.update(salt.as_bytes());
    h.update(b"\0");
    h.update(sha256.as_bytes());
    hex::encode(h.finalize())
}

/// The pseudonym of `name` (an account or an institution) in a transfer's ledger entries:
/// `x-` and the first 16 hex digits of SHA-256 of the transfer's salt and the name.
pub fn actor_pseudonym(salt: &str, name: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"kura/exchange-actor/v1\0");
    h.update(salt.as_bytes());
    h.update(b"\0");
    h.update(name.as_bytes());
    let d = hex::encode(h.finalize());
    format!("x-{}", d.get(..16).unwrap_or(&d))
}

/// A transfer's identifier and what its ledger entries' digest is made of.
struct Keyed<'a> {
    id: &'a str,
    sha256: &'a str,
    salt: &'a str,
}

impl<'a> Keyed<'a> {
    fn of(t: &'a Transfer) -> Keyed<'a> {
        Keyed { id: &t.id, sha256: &t.sha256, salt: &t.salt }
    }
}

/// A sealed file about to be recorded.
struct Stored<'a> {
    id: &'a str,
    name: &'a str,
    note: &'a str,
    bytes: u64,
    sha256: &'a str,
    salt: &'a str,
    wrapped: &'a str,
}

/// Whether `id` has the form of a transfer's identifier (`XF-` and 16 lower-case hex digits):
/// what a file store may build a path from.
pub fn is_transfer_id(id: &str) -> bool {
    check_id(id).is_ok()
}

fn check_id(id: &str) -> Result<()> {
    let ok =
        id.len() == 19 && id.starts_with("XF-") && id.get(3..).is_some_and(|d| d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if ok { Ok(()) } else { Err(not_found(id)) }
}

/// A group's name: ASCII letters, digits, `-`, `_`.
pub fn check_group_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_GROUP
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        && name.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(WorkflowError::Invalid {
            field: "group",
            detail: format!(
                "英数字・-・_ で{MAX_GROUP}文字までの名前にしてください / use up to {MAX_GROUP} ASCII letters, digits, '-' or '_', starting with a letter or digit"
            ),
        })
    }
}

async fn institution_exists(conn: &mut AnyConnection, code: &str) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM institutions WHERE code = $1").bind(code).fetch_one(&mut *conn).await? > 0)
}

async fn group_members(conn: &mut AnyConnection, group: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT institution FROM exchange_group_members WHERE group_name = $1 ORDER BY institution")
        .bind(group)
        .fetch_all(&mut *conn)
        .await?)
}

async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<Transfer>> {
    let Some(r) = sqlx::query(
        "SELECT id, sender_institution, sender, addressed_to, name, note, bytes, sha256, salt, state, created_at, expires_at, deleted_at \
         FROM exchange_transfers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let state: String = r.try_get("state")?;
    let receivers: Vec<String> =
        sqlx::query_scalar("SELECT institution FROM exchange_recipients WHERE transfer_id = $1 ORDER BY institution")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(Some(Transfer {
        id: r.try_get("id")?,
        sender_institution: r.try_get("sender_institution")?,
        sender: r.try_get("sender")?,
        addressed_to: r.try_get("addressed_to")?,
        receivers,
        name: r.try_get("name")?,
        note: r.try_get("note")?,
        bytes: u64::try_from(r.try_get::<i64, _>("bytes")?).unwrap_or(0),
        sha256: r.try_get("sha256")?,
        salt: r.try_get("salt")?,
        state: XState::parse(&state).ok_or_else(|| WorkflowError::Internal(format!("stored transfer state '{state}'")))?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        deleted_at: r.try_get("deleted_at")?,
    }))
}

impl Transfer {
    /// Whether `institution` is the sender's or a receiver's.
    pub fn party(&self, institution: &str) -> bool {
        !institution.is_empty() && (self.sender_institution == institution || self.receivers.iter().any(|r| r == institution))
    }
}

impl Exchanges {
    /// The rules in force.
    pub fn config(&self) -> &ExchangeConfig {
        &self.config
    }

    /// The acting user, who must be an active, unlocked provider (an institution's account),
    /// with the caller's actor naming that institution in the ledger.
    async fn provider(&self, conn: &mut AnyConnection, caller: &Caller, id: &str) -> Result<(Caller, String)> {
        let now = self.research.now();
        match person(conn, caller.login()).await? {
            Some(p) if p.active() && p.locked_until.is_none_or(|t| t <= now) && p.role == Role::Provider => {
                let mut c = caller.clone();
                c.who.actor.institution = p.institution.clone();
                Ok((c, p.institution))
            }
            Some(p) if p.active() && p.locked_until.is_none_or(|t| t <= now) => Err(refused(
                id,
                "ファイルの送受信は医療機関等の提供者アカウントだけができます",
                "only an institution's provider account sends and receives files",
            )),
            _ => Err(refused(id, "利用者が有効ではありません", "the user is not active")),
        }
    }

    /// The receivers of `to` for the sender's institution `own`.
    async fn receivers(conn: &mut AnyConnection, own: &str, to: &Recipient) -> Result<Vec<String>> {
        match to {
            Recipient::Institution(code) => {
                if code == own {
                    return Err(WorkflowError::Invalid {
                        field: "to",
                        detail: "自機関には送れません / you cannot send a file to your own institution".into(),
                    });
                }
                if !institution_exists(conn, code).await? {
                    return Err(WorkflowError::Invalid {
                        field: "to",
                        detail: format!(
                            "医療機関等 '{}' は登録されていません / no institution '{}' is registered (ask an operator)",
                            shown(code),
                            shown(code)
                        ),
                    });
                }
                Ok(vec![code.clone()])
            }
            Recipient::Group(g) => {
                check_group_name(g)?;
                let members = group_members(conn, g).await?;
                // A group the sender's institution is not in is one it does not know of.
                if !members.iter().any(|m| m == own) {
                    return Err(WorkflowError::Invalid {
                        field: "to",
                        detail: format!("グループ '{g}' に自機関は入っていません / your institution is not a member of a group '{g}'"),
                    });
                }
                let others: Vec<String> = members.into_iter().filter(|m| m != own).collect();
                if others.is_empty() {
                    return Err(WorkflowError::Invalid {
                        field: "to",
                        detail: format!("グループ '{g}' に他の機関がありません / group '{g}' has no other member"),
                    });
                }
                Ok(others)
            }
        }
    }

    /// Checks everything about a file to be sent that does not need its bytes — the caller (an
    /// active provider), the receivers, the name, the note and the size — before it is scanned,
    /// so that nobody else makes scans and nothing is scanned that would be refused anyway.
    /// Returns the name as it will be recorded. A refusal of the caller is recorded.
    pub async fn prepare(&self, caller: &Caller, file: &NewTransfer, bytes: u64) -> Result<String> {
        let name = file_name(&file.name)?;
        text("note", &file.note, MAX_NOTE, true)?;
        if bytes > self.config.max_bytes() {
            return Err(WorkflowError::Invalid {
                field: "file",
                detail: format!("{} MiB までです / at most {} MiB ([exchange] max_mb)", self.config.max_mb, self.config.max_mb),
            });
        }
        let checked = {
            let mut conn = self.research.db().pool().acquire().await?;
            match self.provider(&mut conn, caller, "-").await {
                Ok((_, own)) => Ok(Self::receivers(&mut conn, &own, &file.to).await),
                Err(e) => Err(e),
            }
        };
        match checked {
            Ok(r) => r.map(|_| name),
            Err(e) if e.is_refusal() => Err(self.refusal(caller, "exchange.send", e).await),
            Err(e) => Err(e),
        }
    }

    /// `caller`'s institution sends `content` (already scanned clean) to `file.to`. The bytes
    /// are sealed first, outside the step's transaction (no lock is held while a large file is
    /// encrypted and written); the record then refers to them, and a step that fails removes
    /// them, so that nothing is kept that is not recorded.
    pub async fn send(&self, caller: &Caller, file: &NewTransfer, content: &[u8]) -> Result<Transfer> {
        self.expire().await?;
        let name = self.prepare(caller, file, content.len() as u64).await?;
        let note = text("note", &file.note, MAX_NOTE, true)?;
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content));
        let mut random = [0u8; 8];
        kura_crypto::random_bytes(&mut random).map_err(|e| WorkflowError::Internal(e.to_string()))?;
        let id = format!("XF-{}", hex::encode(random));
        let mut salt = [0u8; 32];
        kura_crypto::random_bytes(&mut salt).map_err(|e| WorkflowError::Internal(e.to_string()))?;
        let salt = hex::encode(salt);
        let wrapped = self.files.seal(&id, &sha256, content).map_err(|why| WorkflowError::Internal(format!("{id}: {why}")))?;
        let stored =
            Stored { id: &id, name: &name, note: &note, bytes: content.len() as u64, sha256: &sha256, salt: &salt, wrapped: &wrapped };
        if let Err(e) = self.insert(caller, file, &stored).await {
            // Nothing recorded: nothing kept.
            let _ = self.files.remove(&id);
            return Err(e);
        }
        self.research.log().sync().await?;
        let mut conn = self.research.db().pool().acquire().await?;
        load(&mut conn, &id).await?.ok_or_else(|| not_found(&id))
    }

    /// Records a sealed file as sent, with its receivers and the trail's first step.
    async fn insert(&self, caller: &Caller, file: &NewTransfer, s: &Stored<'_>) -> Result<()> {
        let now = self.research.now();
        let mut tx = self.research.db().begin_write().await?;
        let (caller, own) = self.provider(&mut tx, caller, "-").await?;
        let receivers = Self::receivers(&mut tx, &own, &file.to).await?;
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM exchange_transfers").fetch_one(&mut *tx).await?;
        let expires = now + i64::from(self.config.retention_days) * 86_400;
        sqlx::query(
            "INSERT INTO exchange_transfers (id, seq, sender_institution, sender, addressed_to, name, note, bytes, sha256, salt, state, wrapped_key, created_at, expires_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL)",
        )
        .bind(s.id)
        .bind(seq)
        .bind(&own)
        .bind(caller.login())
        .bind(file.to.label())
        .bind(s.name)
        .bind(s.note)
        .bind(i64::try_from(s.bytes).unwrap_or(i64::MAX))
        .bind(s.sha256)
        .bind(s.salt)
        .bind(XState::Available.as_str())
        .bind(s.wrapped)
        .bind(now)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        for r in &receivers {
            sqlx::query("INSERT INTO exchange_recipients (transfer_id, institution) VALUES ($1, $2)")
                .bind(s.id)
                .bind(r)
                .execute(&mut *tx)
                .await?;
        }
        let t = Keyed { id: s.id, sha256: s.sha256, salt: s.salt };
        self.record(&mut tx, &caller, &own, &t, XStep::Send, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends a step to a transfer's trail with its ledger entry. The entry names the
    /// transfer and carries its **salted** content digest (SHA-256 of the salt and the file's
    /// SHA-256) and its actor as **salted pseudonyms** of the account and the institution
    /// ([`actor_pseudonym`]): the public log lets nobody test a guess of a file's content nor
    /// tell who sent or received it, while sender and receivers, who see the salt, can check
    /// each. Receivers, name and size stay out of it; the trail in the store of record holds
    /// the real names.
    async fn record(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        institution: &str,
        t: &Keyed<'_>,
        step: XStep,
        detail: &str,
    ) -> Result<i64> {
        let mut masked = caller.clone();
        masked.who.actor = Actor {
            user: actor_pseudonym(t.salt, caller.login()),
            institution: if institution.is_empty() { String::new() } else { actor_pseudonym(t.salt, institution) },
            cert: String::new(),
        };
        masked.who.request = String::new();
        let idx = self
            .research
            .append_entry(conn, &masked, format!("exchange.{}", step.as_str()), t.id, Some(salted_digest(t.salt, t.sha256)), "ok", detail)
            .await?;
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM exchange_events WHERE transfer_id = $1")
            .bind(t.id)
            .fetch_one(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO exchange_events (transfer_id, seq, at, actor, institution, step, ledger_idx) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id)
        .bind(seq)
        .bind(self.research.now())
        .bind(caller.login())
        .bind(institution)
        .bind(step.as_str())
        .bind(idx)
        .execute(&mut *conn)
        .await?;
        Ok(idx)
    }

    /// Records a refusal (rate-limited, as every refusal) and gives back the error. The entry
    /// names the action only — one fixed object, no identifier the caller typed, no reason —
    /// so that the log neither tells a party's refusal from a stranger's nor lets anyone fill
    /// it with identifiers of their choosing.
    async fn refusal(&self, caller: &Caller, action: &str, e: WorkflowError) -> WorkflowError {
        let note = proxy_note(caller, "refused");
        match self.research.accounts().record_refusal(&caller.who, action, "exchange", &note).await {
            Ok(()) => e,
            Err(le) => le.into(),
        }
    }

    /// The transfer `id` if `caller`'s institution is its sender or a receiver; otherwise the
    /// same answer as for an identifier that does not exist.
    async fn visible_in(&self, conn: &mut AnyConnection, caller: &Caller, id: &str) -> Result<(Caller, String, Transfer)> {
        let (caller, own) = self.provider(conn, caller, &shown(id)).await?;
        let t = match check_id(id) {
            Ok(()) => load(conn, id).await?,
            Err(_) => None,
        };
        match t {
            Some(t) if t.party(&own) => Ok((caller, own, t)),
            _ => Err(not_found(&shown(id))),
        }
    }

    /// [`Exchanges::visible_in`] on a connection of its own, with `allowed` checked on what is
    /// seen; a refusal is recorded (outside any transaction: the ledger that records it must
    /// not wait for a transaction's lock).
    async fn visible_now<F>(&self, caller: &Caller, id: &str, action: &str, allowed: F) -> Result<(Caller, String, Transfer)>
    where
        F: FnOnce(&str, &Transfer) -> Result<()>,
    {
        let got = {
            let mut conn = self.research.db().pool().acquire().await?;
            self.visible_in(&mut conn, caller, id).await
        };
        let got = got.and_then(|(c, own, t)| allowed(&own, &t).map(|()| (c, own, t)));
        match got {
            Ok(x) => Ok(x),
            Err(e) if e.is_refusal() => Err(self.refusal(caller, action, e).await),
            Err(e) => Err(e),
        }
    }

    /// The transfers `caller`'s institution sent or received, newest first (deleted ones too,
    /// for their trail).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Transfer>> {
        self.expire().await?;
        let mut conn = self.research.db().pool().acquire().await?;
        let (_, own) = self.provider(&mut conn, caller, "-").await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM exchange_transfers WHERE sender_institution = $1 \
             OR id IN (SELECT transfer_id FROM exchange_recipients WHERE institution = $1) ORDER BY seq DESC",
        )
        .bind(&own)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(t) = load(&mut conn, &id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Transfer `id` as `caller` (its sender's institution or a receiver) sees it.
    pub async fn transfer(&self, caller: &Caller, id: &str) -> Result<Transfer> {
        self.expire().await?;
        Ok(self.visible_now(caller, id, "exchange.show", |_, _| Ok(())).await?.2)
    }

    /// `caller` downloads transfer `id`. The bytes are opened first, outside the step's
    /// transaction; the step then checks again that the file is still there and within its
    /// retention period and records the download, and only then are the bytes handed out.
    pub async fn download(&self, caller: &Caller, id: &str) -> Result<(Transfer, Vec<u8>)> {
        self.expire().await?;
        let now = self.research.now();
        let gone = |id: &str| refused(id, "削除済みのため受信できません", "the file was deleted: it can no longer be downloaded");
        let available = |t: &Transfer| t.state == XState::Available && t.expires_at > now;
        let (_, _, t) =
            self.visible_now(caller, id, "exchange.download", |_, t| if available(t) { Ok(()) } else { Err(gone(&t.id)) }).await?;
        let wrapped: Option<String> = {
            let mut conn = self.research.db().pool().acquire().await?;
            sqlx::query_scalar("SELECT wrapped_key FROM exchange_transfers WHERE id = $1").bind(&t.id).fetch_one(&mut *conn).await?
        };
        let wrapped = wrapped.ok_or_else(|| gone(&t.id))?;
        let bytes = self.files.open(&t, &wrapped).map_err(|why| WorkflowError::Internal(format!("{}: {why}", t.id)))?;
        let mut tx = self.research.db().begin_write().await?;
        let (caller, own, t) = self.visible_in(&mut tx, caller, &t.id).await?;
        if !available(&t) {
            return Err(gone(&t.id));
        }
        self.record(&mut tx, &caller, &own, &Keyed::of(&t), XStep::Download, "").await?;
        tx.commit().await?;
        self.research.log().sync().await?;
        Ok((t, bytes))
    }

    /// The trail of transfer `id`: the same rows for the sender and every receiver (HX-8),
    /// and the salt that opens the ledger entries' content digest.
    pub async fn trail(&self, caller: &Caller, id: &str) -> Result<(Transfer, Vec<TrailEvent>)> {
        self.expire().await?;
        let (_, _, t) = self.visible_now(caller, id, "exchange.trail", |_, _| Ok(())).await?;
        let mut conn = self.research.db().pool().acquire().await?;
        let rows =
            sqlx::query("SELECT seq, at, actor, institution, step, ledger_idx FROM exchange_events WHERE transfer_id = $1 ORDER BY seq")
                .bind(&t.id)
                .fetch_all(&mut *conn)
                .await?;
        let mut out = Vec::new();
        for r in rows {
            let step: String = r.try_get("step")?;
            out.push(TrailEvent {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                institution: r.try_get("institution")?,
                step: XStep::parse(&step).ok_or_else(|| WorkflowError::Internal(format!("stored exchange step '{step}'")))?,
                ledger_index: r.try_get("ledger_idx")?,
            });
        }
        Ok((t, out))
    }

    /// The sender's institution deletes transfer `id` before its retention period ends: the
    /// wrapped key is destroyed and the note cleared with the step, the sealed bytes removed
    /// once it committed.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<Transfer> {
        self.expire().await?;
        let sender_only = |own: &str, t: &Transfer| {
            if t.sender_institution != own {
                Err(refused(&t.id, "削除できるのは送信した機関だけです", "only the sending institution deletes a file"))
            } else if XStep::Delete.target(Some(t.state)).is_none() {
                Err(refused(&t.id, "削除済みです", "the file is already deleted"))
            } else {
                Ok(())
            }
        };
        self.visible_now(caller, id, "exchange.delete", sender_only).await?;
        let mut tx = self.research.db().begin_write().await?;
        let (caller, own, t) = self.visible_in(&mut tx, caller, id).await?;
        sender_only(&own, &t)?;
        let keyed = Keyed::of(&t);
        self.shred(&mut tx, &t).await?;
        self.record(&mut tx, &caller, &own, &keyed, XStep::Delete, "deleted by its sender").await?;
        tx.commit().await?;
        self.remove_file(&t.id);
        self.research.log().sync().await?;
        let mut conn = self.research.db().pool().acquire().await?;
        load(&mut conn, &t.id).await?.ok_or_else(|| not_found(&t.id))
    }

    /// Marks `t` deleted, destroys its wrapped key and clears its name and note, inside the step's
    /// transaction; the sealed bytes are removed once it committed ([`Exchanges::remove_file`]).
    async fn shred(&self, conn: &mut AnyConnection, t: &Transfer) -> Result<()> {
        sqlx::query("UPDATE exchange_transfers SET state = $1, wrapped_key = NULL, name = '', note = '', deleted_at = $2 WHERE id = $3")
            .bind(XState::Deleted.as_str())
            .bind(self.research.now())
            .bind(&t.id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Removes a deleted transfer's sealed bytes. Its key is already destroyed, so bytes a
    /// failed removal leaves behind open for nobody; [`Exchanges::sweep`] removes them later.
    fn remove_file(&self, id: &str) {
        let _ = self.files.remove(id);
    }

    /// Deletes every available transfer whose retention period is over (HX-8): its key
    /// destroyed with the step, its bytes removed, each deletion a step of the trail (by
    /// [`RETENTION_ACTOR`]) with its ledger entry. Returns the transfers deleted. Run before
    /// every send, list, show, download, trail and deletion, and by `kura exchange expire`.
    pub async fn expire(&self) -> Result<Vec<Transfer>> {
        let now = self.research.now();
        let due: Vec<String> = {
            let mut conn = self.research.db().pool().acquire().await?;
            sqlx::query_scalar("SELECT id FROM exchange_transfers WHERE state = $1 AND expires_at <= $2 ORDER BY seq")
                .bind(XState::Available.as_str())
                .bind(now)
                .fetch_all(&mut *conn)
                .await?
        };
        let mut out = Vec::new();
        for id in due {
            let mut tx = self.research.db().begin_write().await?;
            // Another process may have deleted it meanwhile.
            let Some(t) = load(&mut tx, &id).await?.filter(|t| t.state == XState::Available) else { continue };
            let keyed = Keyed::of(&t);
            self.shred(&mut tx, &t).await?;
            let system = Caller {
                who: Who {
                    actor: Actor { user: RETENTION_ACTOR.into(), institution: String::new(), cert: String::new() },
                    request: String::new(),
                },
                proxy: None,
            };
            self.record(&mut tx, &system, "", &keyed, XStep::Expire, &format!("retention of {} days over", self.config.retention_days))
                .await?;
            tx.commit().await?;
            self.remove_file(&id);
            out.push(t);
        }
        if !out.is_empty() {
            self.research.log().sync().await?;
        }
        Ok(out)
    }

    /// Removes stored bytes that no available transfer needs: those of deleted transfers
    /// whose removal failed, and those a send that failed before it was recorded left (older
    /// than an hour, so that a send under way is never touched). Returns how many were
    /// removed. Run by `kura exchange expire`.
    pub async fn sweep(&self) -> Result<usize> {
        let stored = self.files.leftovers().map_err(WorkflowError::Internal)?;
        let mut conn = self.research.db().pool().acquire().await?;
        let mut removed = 0;
        for (id, age_secs) in stored {
            if check_id(&id).is_err() {
                continue;
            }
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM exchange_transfers WHERE id = $1").bind(&id).fetch_optional(&mut *conn).await?;
            let unneeded = match state.as_deref() {
                Some(s) => s == XState::Deleted.as_str(),
                None => age_secs > 3_600,
            };
            if unneeded && self.files.remove(&id).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Defines or replaces closed group `name` (NET-4) with its member institutions; recorded
    /// in the ledger. For the home's owner at the console (`kura exchange group set`): no route
    /// of the server calls it. Transfers already sent keep their receivers.
    pub async fn set_group(&self, caller: &Caller, name: &str, title: &str, members: &[String]) -> Result<Group> {
        check_group_name(name)?;
        let title = text("title", title, MAX_NOTE, false)?;
        let mut members: Vec<String> = members.iter().map(|m| m.trim().to_string()).collect();
        members.sort();
        members.dedup();
        if members.len() < 2 {
            return Err(WorkflowError::Invalid {
                field: "member",
                detail: "2機関以上を指定してください / give at least two institutions".into(),
            });
        }
        let mut tx = self.research.db().begin_write().await?;
        for m in &members {
            if !institution_exists(&mut tx, m).await? {
                return Err(WorkflowError::Invalid {
                    field: "member",
                    detail: format!(
                        "医療機関等 '{}' は登録されていません / no institution '{}' is registered (add a user of it: kura user add --institution CODE …)",
                        shown(m),
                        shown(m)
                    ),
                });
            }
        }
        sqlx::query("DELETE FROM exchange_group_members WHERE group_name = $1").bind(name).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM exchange_groups WHERE name = $1").bind(name).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO exchange_groups (name, title, updated_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(&title)
            .bind(self.research.now())
            .execute(&mut *tx)
            .await?;
        for m in &members {
            sqlx::query("INSERT INTO exchange_group_members (group_name, institution) VALUES ($1, $2)")
                .bind(name)
                .bind(m)
                .execute(&mut *tx)
                .await?;
        }
        self.research
            .append_entry(&mut tx, caller, "exchange.group".into(), &format!("group:{name}"), None, "ok", &members.join(","))
            .await?;
        tx.commit().await?;
        self.research.log().sync().await?;
        Ok(Group { name: name.into(), title, members })
    }

    /// Every closed group (for operators).
    pub async fn groups(&self) -> Result<Vec<Group>> {
        let mut conn = self.research.db().pool().acquire().await?;
        let rows = sqlx::query("SELECT name, title FROM exchange_groups ORDER BY name").fetch_all(&mut *conn).await?;
        let mut out = Vec::new();
        for r in rows {
            let name: String = r.try_get("name")?;
            let members = group_members(&mut conn, &name).await?;
            out.push(Group { name, title: r.try_get("title")?, members });
        }
        Ok(out)
    }
}

/// `at` (Unix seconds) as UTC, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(at: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(at) {
        Ok(t) => format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()),
        Err(_) => at.to_string(),
    }
}
