//! The research service: applications from draft to project, on the store of record, each
//! step committed with its ledger entry.

use crate::clock::{self, ClockReading, Mark};
use crate::state::{AppState, Party, ProjectState, ProjectStep, Step};
use crate::{ResearchConfig, Result, WorkflowError};
use kura_accounts::{Accounts, Role, Who};
use kura_db::Db;
use kura_ledger::entry::{AuditEvent, ENTRY_VERSION, Entry};
use kura_ledger::store::append_in;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Longest title, in characters.
const MAX_TITLE: usize = 200;
/// Longest free text (purpose, justification, conditions, comments), in characters.
const MAX_TEXT: usize = 10_000;
/// Longest short field (ethics reference, a column's reason), in characters.
const MAX_SHORT: usize = 2_000;
/// Most columns one application may ask for.
const MAX_COLUMNS: usize = 1_000;
/// Most members and places.
const MAX_LIST: usize = 100;
/// Most attachments of one application.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest attachment name, in characters.
const MAX_ATTACHMENT_NAME: usize = 120;

/// Who acts: the user (whose login is `who.actor.user`) and, when the home's owner acts for
/// them from the command line (`--as LOGIN`), the console account that did it. The ledger
/// records both.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The acting user, their institution and certificate, and the request.
    pub who: Who,
    /// The console account acting for the user, if any.
    pub proxy: Option<String>,
}

impl Caller {
    /// A signed-in user (the portal or the API).
    pub fn user(who: Who) -> Caller {
        Caller { who, proxy: None }
    }

    /// The home's owner acting for `login` at the command line.
    pub fn console_as(login: &str) -> Caller {
        let console = Who::console();
        let mut who = console.clone();
        who.actor.user = login.to_string();
        Caller { who, proxy: Some(console.actor.user) }
    }

    /// The acting user's login.
    pub fn login(&self) -> &str {
        &self.who.actor.user
    }
}

/// Whose view a read takes.
#[derive(Clone, Copy, Debug)]
pub enum Viewer<'a> {
    /// The home's owner at the command line: everything.
    Owner,
    /// A user: only what their role and team membership show.
    User(&'a str),
}

/// The datasets, tables and columns that may be asked for (from the data catalogue, WG-5).
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    datasets: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Catalogue {
    /// An empty catalogue.
    pub fn new() -> Catalogue {
        Catalogue::default()
    }

    /// Adds a column of a table of a dataset.
    pub fn add(&mut self, dataset: &str, table: &str, column: &str) {
        self.datasets.entry(dataset.into()).or_default().entry(table.into()).or_default().insert(column.into());
    }

    /// Every `(dataset, table, column)`, sorted (for a form to pick from).
    pub fn columns(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.datasets
            .iter()
            .flat_map(|(d, tables)| tables.iter().flat_map(move |(t, cols)| cols.iter().map(move |c| (d.as_str(), t.as_str(), c.as_str()))))
    }

    fn check(&self, dataset: &str, table: &str, column: &str) -> Result<()> {
        let tables = self.datasets.get(dataset).ok_or_else(|| WorkflowError::Invalid {
            field: "dataset",
            detail: format!(
                "データセット '{dataset}' はカタログにありません / no dataset '{dataset}' in the catalogue (`kura catalog` lists them)"
            ),
        })?;
        let columns = tables.get(table).ok_or_else(|| WorkflowError::Invalid {
            field: "column",
            detail: format!(
                "テーブル '{dataset}.{table}' はありません / no table '{table}' in '{dataset}' (`kura catalog --dataset {dataset}`)"
            ),
        })?;
        if !columns.contains(column) {
            return Err(WorkflowError::Invalid {
                field: "column",
                detail: format!(
                    "列 '{table}.{column}' はありません / no column '{column}' in table '{table}' (`kura catalog --dataset {dataset} --table {table}`)"
                ),
            });
        }
        Ok(())
    }
}

/// A column asked for, with the reason it is needed (column-level minimisation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnRequest {
    /// Table.
    pub table: String,
    /// Column.
    pub column: String,
    /// Why the study needs it.
    pub reason: String,
}

impl ColumnRequest {
    /// Reads `TABLE.COLUMN` or `TABLE.COLUMN=REASON`.
    pub fn parse(spec: &str) -> Result<ColumnRequest> {
        let (name, reason) = spec.split_once('=').unwrap_or((spec, ""));
        match name.trim().split_once('.') {
            Some((t, c)) if is_name(t) && is_name(c) => {
                Ok(ColumnRequest { table: t.into(), column: c.into(), reason: text("reason", reason.trim(), MAX_SHORT, false)? })
            }
            _ => Err(WorkflowError::Invalid {
                field: "column",
                detail: format!(
                    "'{spec}': TABLE.COLUMN または TABLE.COLUMN=理由 の形で指定してください / use TABLE.COLUMN or TABLE.COLUMN=REASON"
                ),
            }),
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What an applicant files (or changes while it is a draft or returned).
#[derive(Clone, Debug, Default)]
pub struct NewApplication {
    /// Title of the study.
    pub title: String,
    /// What the study will find out.
    pub purpose: String,
    /// Why it serves the public interest.
    pub justification: String,
    /// The ethics committee's approval reference.
    pub ethics_ref: String,
    /// The dataset asked for.
    pub dataset: String,
    /// The columns asked for, each with its reason.
    pub columns: Vec<ColumnRequest>,
    /// Declared places of use (HIC-U1): addresses or CIDR blocks the work will come from.
    pub places: Vec<String>,
    /// Period of use in days; `None` = the configured default.
    pub period_days: Option<u32>,
    /// Co-investigators (researcher logins, any institution).
    pub members: Vec<String>,
}

/// A column of an application and whether it was approved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnLine {
    /// Table.
    pub table: String,
    /// Column.
    pub column: String,
    /// The applicant's reason.
    pub reason: String,
    /// Whether the decision granted it.
    pub approved: bool,
}

/// A document filed with an application (the protocol): what it is, never its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachmentLine {
    /// Its number in the application (1, 2, …; never reused).
    pub n: i64,
    /// Its file name.
    pub name: String,
    /// Its size in bytes.
    pub bytes: i64,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Who attached it.
    pub added_by: String,
    /// When (Unix seconds).
    pub added_at: i64,
}

/// A committee vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VoteLine {
    /// Which submission of the application it was cast on (1 = the first).
    pub submission: i64,
    /// The reviewer.
    pub reviewer: String,
    /// For or against.
    pub approve: bool,
    /// The reviewer's comments.
    pub comment: String,
    /// When (Unix seconds).
    pub at: i64,
}

/// A step taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When (Unix seconds).
    pub at: i64,
    /// Who (login).
    pub actor: String,
    /// The step.
    pub step: String,
    /// State before.
    pub from: AppState,
    /// State after.
    pub to: AppState,
    /// The note given with it (a return's or a refusal's reason, a check's note).
    pub note: String,
    /// The ledger entry that records it.
    pub ledger_index: i64,
}

/// An application as stored, with its votes, history and clock.
#[derive(Clone, Debug, Serialize)]
pub struct Application {
    /// Identifier, `APP-000001`.
    pub id: String,
    /// The applicant (principal investigator).
    pub applicant: String,
    /// Title.
    pub title: String,
    /// Purpose.
    pub purpose: String,
    /// Public-interest justification.
    pub justification: String,
    /// Ethics approval reference.
    pub ethics_ref: String,
    /// The dataset.
    pub dataset: String,
    /// Declared places of use.
    pub places: Vec<String>,
    /// Period of use in days.
    pub period_days: i64,
    /// Conditions set with the approval.
    pub conditions: String,
    /// State.
    pub state: AppState,
    /// How many times it was submitted.
    pub submission: i64,
    /// The review round (deadline date, `YYYY-MM-DD`) of the latest submission; empty for a draft.
    pub round: String,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
    /// Columns asked for and approved.
    pub columns: Vec<ColumnLine>,
    /// Co-investigators.
    pub members: Vec<String>,
    /// Committee votes on every submission.
    pub votes: Vec<VoteLine>,
    /// Every step taken.
    pub events: Vec<Event>,
    /// The service clock now.
    pub clock: ClockReading,
    /// The project provisioned from it.
    pub project: Option<String>,
    /// Members who have not yet confirmed being members (it cannot be submitted until they do).
    pub unconfirmed: Vec<String>,
    /// Documents filed with it (the protocol).
    pub attachments: Vec<AttachmentLine>,
}

impl Application {
    /// The applicant and the co-investigators.
    pub fn team(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.applicant.as_str()).chain(self.members.iter().map(String::as_str))
    }
}

/// One line of an application list.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Identifier.
    pub id: String,
    /// Applicant.
    pub applicant: String,
    /// Title.
    pub title: String,
    /// Dataset.
    pub dataset: String,
    /// State.
    pub state: AppState,
    /// Review round.
    pub round: String,
    /// The service clock now.
    pub clock: ClockReading,
}

/// A custodian's decision after the committee.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Approve: exactly `columns` (each one asked for; empty = all asked for), under
    /// `conditions` (may be empty).
    Approve {
        /// `(table, column)` pairs granted.
        columns: Vec<(String, String)>,
        /// Conditions of use.
        conditions: String,
    },
    /// Refuse for good.
    Reject {
        /// Why (kept with the application).
        reason: String,
    },
    /// Send back for changes.
    Return {
        /// What to change.
        reason: String,
    },
}

/// A project provisioned from an approved application (HIC-P3).
#[derive(Clone, Debug, Serialize)]
pub struct Project {
    /// Identifier, `PRJ-000001`.
    pub id: String,
    /// The application it came from.
    pub application: String,
    /// The dataset.
    pub dataset: String,
    /// `active` or `ended`.
    pub state: String,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// When the period of use ends (Unix seconds).
    pub ends_at: i64,
    /// When it was ended, if it was.
    pub ended_at: Option<i64>,
    /// When the applicant gave notice of the end of use, if they did.
    pub notice_at: Option<i64>,
    /// Who ended it.
    pub ended_by: Option<String>,
    /// The SHA-256 of its deletion certificate (recorded in the ledger).
    pub certificate_sha256: Option<String>,
    /// The applicant (principal investigator).
    pub applicant: String,
    /// Who may work in it.
    pub members: Vec<String>,
    /// The grant: `(table, column)` pairs, exactly what was approved.
    pub columns: Vec<(String, String)>,
}

/// A sample or trial dataset that every signed-in researcher may query without an
/// application (HIC-P2), so that people can learn the data before they apply.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// The dataset.
    pub dataset: String,
    /// The custodian who published it.
    pub published_by: String,
    /// When (Unix seconds).
    pub published_at: i64,
    /// What it is for.
    pub note: String,
}

/// A user as the rules need them, read on the connection of the step that asks.
pub(crate) struct Person {
    pub(crate) login: String,
    pub(crate) role: Role,
    pub(crate) state: String,
    pub(crate) institution: String,
    pub(crate) locked_until: Option<i64>,
}

impl Person {
    pub(crate) fn active(&self) -> bool {
        self.state == "active"
    }

    /// Active and not locked at `now` (a workspace, a sample dataset).
    fn usable(&self, now: i64) -> bool {
        self.active() && self.locked_until.is_none_or(|t| t <= now)
    }
}

/// A step about to be recorded.
struct Change {
    step: Step,
    from: AppState,
    to: AppState,
    /// For the ledger entry: no personal data, no free text.
    detail: String,
    /// For the history the applicant and the reviewers read.
    note: String,
}

impl Change {
    fn new(step: Step, from: AppState, to: AppState, detail: impl Into<String>) -> Change {
        Change { step, from, to, detail: detail.into(), note: String::new() }
    }

    fn with_note(mut self, note: &str) -> Change {
        self.note = note.into();
        self
    }
}

pub(crate) struct Inner {
    pub(crate) accounts: Accounts,
    config: ResearchConfig,
}

/// Applications and projects (see the crate documentation).
#[derive(Clone)]
pub struct Research {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Research {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Research").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Research {
    /// The service over the accounts' store of record, ledger and clock.
    pub fn new(accounts: Accounts, config: ResearchConfig) -> Result<Research> {
        config.check().map_err(|detail| WorkflowError::Invalid { field: "[research]", detail })?;
        Ok(Research { inner: Arc::new(Inner { accounts, config }) })
    }

    /// The rules in force.
    pub fn config(&self) -> &ResearchConfig {
        &self.inner.config
    }

    pub(crate) fn accounts(&self) -> &kura_accounts::Accounts {
        &self.inner.accounts
    }

    pub(crate) fn db(&self) -> &Db {
        self.inner.accounts.db()
    }

    pub(crate) fn now(&self) -> i64 {
        self.inner.accounts.clock().now()
    }

    /// The service's clock: now, in Unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.now()
    }

    /// The audit ledger the steps are recorded in.
    pub fn log(&self) -> &kura_ledger::log::Log<kura_ledger::store::SqlStore> {
        self.inner.accounts.log()
    }

    // ----- steps -----
    //
    // Each step opens one write transaction and does everything on its connection: the
    // application, the acting user and the team are read there (never from the pool while the
    // transaction holds a connection), the change and its ledger entry are written there.

    /// Files a new draft for `caller`, a researcher (WG-6). Returns it; its id is `APP-nnnnnn`.
    pub async fn create(&self, caller: &Caller, catalogue: &Catalogue, new: &NewApplication) -> Result<Application> {
        let content = self.validated(caller.login(), catalogue, new).await?;
        let now = self.now();
        let mut tx = self.db().begin_write().await?;
        let user = match active(&mut tx, caller.login(), Step::Create).await {
            Ok(u) if u.role != Role::Researcher => Err(WorkflowError::NotPermitted {
                id: "-".into(),
                step: Step::Create,
                party: Party::Applicant,
                why_ja: format!("申請できるのは研究者だけです。あなたの役割は{}です", u.role.label_ja()),
                why_en: format!("only researchers apply, your role is {}", u.role),
            }),
            other => other,
        };
        if let Err(e) = user {
            return Err(self.refused_step(tx, caller, "-", Step::Create, e).await);
        }
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM applications").fetch_one(&mut *tx).await?;
        let id = format!("APP-{seq:06}");
        sqlx::query(
            "INSERT INTO applications (id, seq, applicant, title, purpose, justification, ethics_ref, dataset, places, period_days, \
             conditions, state, submission, round, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', $11, 0, '', $12, $12)",
        )
        .bind(&id)
        .bind(seq)
        .bind(caller.login())
        .bind(&content.title)
        .bind(&content.purpose)
        .bind(&content.justification)
        .bind(&content.ethics_ref)
        .bind(&content.dataset)
        .bind(places_json(&content.places)?)
        .bind(content.period_days)
        .bind(AppState::Draft.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        write_lists(&mut tx, &id, &content).await?;
        self.finish(tx, caller, &id, Change::new(Step::Create, AppState::Draft, AppState::Draft, "created")).await?;
        self.application(Viewer::Owner, &id).await
    }

    /// Replaces the content of a draft or of a returned application (the applicant only).
    pub async fn edit(&self, caller: &Caller, catalogue: &Catalogue, id: &str, new: &NewApplication) -> Result<Application> {
        let content = self.validated(caller.login(), catalogue, new).await?;
        let (mut tx, app, to) = self.begin(caller, id, Step::Edit).await?;
        sqlx::query(
            "UPDATE applications SET title = $1, purpose = $2, justification = $3, ethics_ref = $4, dataset = $5, places = $6, \
             period_days = $7 WHERE id = $8",
        )
        .bind(&content.title)
        .bind(&content.purpose)
        .bind(&content.justification)
        .bind(&content.ethics_ref)
        .bind(&content.dataset)
        .bind(places_json(&content.places)?)
        .bind(content.period_days)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM application_columns WHERE application_id = $1").bind(id).execute(&mut *tx).await?;
        // Members who confirmed and stay keep their confirmation; new ones confirm afresh.
        let joined: Vec<String> =
            sqlx::query_scalar("SELECT login FROM application_members WHERE application_id = $1 AND joined_at IS NOT NULL")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM application_members WHERE application_id = $1").bind(id).execute(&mut *tx).await?;
        write_lists(&mut tx, id, &content).await?;
        for m in joined.iter().filter(|m| content.members.contains(*m)) {
            sqlx::query("UPDATE application_members SET joined_at = $1 WHERE application_id = $2 AND login = $3")
                .bind(self.now())
                .bind(id)
                .bind(m)
                .execute(&mut *tx)
                .await?;
        }
        self.finish(tx, caller, id, Change::new(Step::Edit, app.state, to, "edited")).await?;
        self.application(Viewer::Owner, id).await
    }

    /// Attaches a document (the protocol, a PDF of at most `[research] attachment_max_mb`) to
    /// a draft or a returned application (the applicant, as an edit): its SHA-256 becomes part
    /// of the application's content hash, recorded in the ledger in the same transaction. The
    /// ledger names it by number, size and hash, never by its name.
    pub async fn attach(&self, caller: &Caller, id: &str, name: &str, content: &[u8]) -> Result<Application> {
        let max = u64::from(self.inner.config.attachment_max_mb) << 20;
        let name = checked_attachment(name, content, max)?;
        let (mut tx, app, to) = self.begin(caller, id, Step::Edit).await?;
        if app.attachments.len() >= MAX_ATTACHMENTS {
            return Err(WorkflowError::Invalid {
                field: "attachment",
                detail: format!("添付は {MAX_ATTACHMENTS} 件までです / at most {MAX_ATTACHMENTS} attachments"),
            });
        }
        let n: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM application_attachments WHERE application_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let sha256 = hex::encode(Sha256::digest(content));
        sqlx::query(
            "INSERT INTO application_attachments (application_id, seq, name, bytes, sha256, added_by, added_at, content) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(n)
        .bind(&name)
        .bind(content.len() as i64)
        .bind(&sha256)
        .bind(caller.login())
        .bind(self.now())
        .bind(content.to_vec())
        .execute(&mut *tx)
        .await?;
        let detail = format!("attachment {n} added ({} bytes, sha256 {sha256})", content.len());
        self.finish(tx, caller, id, Change::new(Step::Edit, app.state, to, detail)).await?;
        self.application(Viewer::Owner, id).await
    }

    /// Removes attachment `n` of a draft or a returned application (the applicant, as an edit).
    pub async fn detach(&self, caller: &Caller, id: &str, n: i64) -> Result<Application> {
        let (mut tx, app, to) = self.begin(caller, id, Step::Edit).await?;
        let Some(line) = app.attachments.iter().find(|a| a.n == n) else {
            return Err(WorkflowError::Invalid {
                field: "attachment", detail: format!("添付 {n} はありません / no attachment {n}")
            });
        };
        let detail = format!("attachment {n} removed (sha256 {})", line.sha256);
        sqlx::query("DELETE FROM application_attachments WHERE application_id = $1 AND seq = $2")
            .bind(id)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        self.finish(tx, caller, id, Change::new(Step::Edit, app.state, to, detail)).await?;
        self.application(Viewer::Owner, id).await
    }

    /// Attachment `n` of application `id` as `viewer` may see it (whoever may see the
    /// application: its team, custodians, reviewers, auditors): its line and its content.
    pub async fn attachment(&self, viewer: Viewer<'_>, id: &str, n: i64) -> Result<(AttachmentLine, Vec<u8>)> {
        let app = self.application(viewer, id).await?;
        let not_found =
            || WorkflowError::Invalid { field: "attachment", detail: format!("添付 {n} はありません / no attachment {n}") };
        let line = app.attachments.into_iter().find(|a| a.n == n).ok_or_else(not_found)?;
        let content: Vec<u8> = sqlx::query_scalar("SELECT content FROM application_attachments WHERE application_id = $1 AND seq = $2")
            .bind(id)
            .bind(n)
            .fetch_optional(self.db().pool())
            .await?
            .ok_or_else(not_found)?;
        Ok((line, content))
    }

    /// Files a draft, or a returned application again (the applicant). Its review round is
    /// the next deadline; its committee votes start afresh.
    pub async fn submit(&self, caller: &Caller, id: &str) -> Result<Application> {
        let (mut tx, app, to) = self.begin(caller, id, Step::Submit).await?;
        let waiting: Vec<String> =
            sqlx::query_scalar("SELECT login FROM application_members WHERE application_id = $1 AND joined_at IS NULL ORDER BY login")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        if !waiting.is_empty() {
            tx.rollback().await?;
            let list = waiting.join(", ");
            return Err(WorkflowError::Invalid {
                field: "members",
                detail: format!(
                    "メンバー {list} が参加を確認していません（kura application join {id} --as LOGIN）/ member(s) {list} have not confirmed (kura application join {id} --as LOGIN)"
                ),
            });
        }
        let round = clock::round(&self.inner.config.deadline_days, self.now()).map(|d| d.to_string()).unwrap_or_default();
        sqlx::query("UPDATE applications SET submission = submission + 1, round = $1, conditions = '' WHERE id = $2")
            .bind(&round)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE application_columns SET approved = 0 WHERE application_id = $1").bind(id).execute(&mut *tx).await?;
        let detail = format!("submission {}, round {round}", app.submission + 1);
        self.finish(tx, caller, id, Change::new(Step::Submit, app.state, to, detail)).await?;
        self.application(Viewer::Owner, id).await
    }

    /// The custodian's intake check: `accept` passes it to the committee, otherwise it goes
    /// back to the applicant with `note` (kept in the history the applicant reads).
    pub async fn check(&self, caller: &Caller, id: &str, accept: bool, note: &str) -> Result<Application> {
        let step = if accept { Step::PassCheck } else { Step::Return };
        let note = text("note", note, MAX_TEXT, true)?;
        // The intake check returns only from `submitted`; after it, returning is a decision.
        let (tx, app, to) = self.begin_where(caller, id, step, |app| app.state == AppState::Submitted).await?;
        let change =
            Change::new(step, app.state, to, format!("intake check; note sha256:{}", sha256_hex(note.as_bytes()))).with_note(&note);
        self.finish(tx, caller, id, change).await?;
        self.application(Viewer::Owner, id).await
    }

    /// A committee member's vote on the current submission: once each, never by someone of
    /// the applying team or of its institutions.
    pub async fn vote(&self, caller: &Caller, id: &str, approve: bool, comment: &str) -> Result<Application> {
        let comment = text("comment", comment, MAX_TEXT, true)?;
        let (mut tx, app, to) = self.begin(caller, id, Step::Vote).await?;
        if app.votes.iter().any(|v| v.submission == app.submission && v.reviewer == caller.login()) {
            let e = WorkflowError::NotPermitted {
                id: id.into(),
                step: Step::Vote,
                party: Party::Reviewer,
                why_ja: "この提出にはすでに投票しています".into(),
                why_en: "you have already voted on this submission".into(),
            };
            return Err(self.refused_step(tx, caller, id, Step::Vote, e).await);
        }
        sqlx::query(
            "INSERT INTO application_votes (application_id, submission, reviewer, approve, comment, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(app.submission)
        .bind(caller.login())
        .bind(i64::from(approve))
        .bind(&comment)
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        let detail = format!("{} on submission {}", if approve { "for" } else { "against" }, app.submission);
        self.finish(tx, caller, id, Change::new(Step::Vote, app.state, to, detail)).await?;
        self.application(Viewer::Owner, id).await
    }

    /// The custodian's decision once the committee has voted ([`ResearchConfig::committee_size`]
    /// votes on this submission; approval needs more votes for than against). Approval may
    /// grant fewer columns than were asked for (column-level minimisation): the grant is
    /// exactly what is approved here.
    pub async fn decide(&self, caller: &Caller, id: &str, decision: &Decision) -> Result<Application> {
        let step = match decision {
            Decision::Approve { .. } => Step::Approve,
            Decision::Reject { .. } => Step::Reject,
            Decision::Return { .. } => Step::Return,
        };
        let (mut tx, app, mut to) = self.begin_where(caller, id, step, |app| app.state == AppState::CommitteeReview).await?;
        let votes: Vec<&VoteLine> = app.votes.iter().filter(|v| v.submission == app.submission).collect();
        let (for_, against) = (votes.iter().filter(|v| v.approve).count(), votes.iter().filter(|v| !v.approve).count());
        let needed = self.inner.config.committee_size as usize;
        if step != Step::Return && votes.len() < needed {
            return Err(WorkflowError::Invalid {
                field: "votes",
                detail: format!(
                    "決定には審査委員 {needed} 人の投票が必要です（現在 {} 人）/ the committee has cast {} of the {needed} votes needed before a decision",
                    votes.len(),
                    votes.len()
                ),
            });
        }
        let (detail, note) = match decision {
            Decision::Approve { columns, conditions } => {
                if for_ <= against {
                    return Err(WorkflowError::Invalid {
                        field: "votes",
                        detail: format!(
                            "賛成 {for_} 票・反対 {against} 票では承認できません / {for_} for and {against} against: approval needs a majority for"
                        ),
                    });
                }
                let conditions = text("conditions", conditions, MAX_TEXT, true)?;
                let asked: BTreeSet<(&str, &str)> = app.columns.iter().map(|c| (c.table.as_str(), c.column.as_str())).collect();
                let granted: BTreeSet<(&str, &str)> =
                    if columns.is_empty() { asked.clone() } else { columns.iter().map(|(t, c)| (t.as_str(), c.as_str())).collect() };
                if let Some((t, c)) = granted.iter().find(|tc| !asked.contains(*tc)) {
                    return Err(WorkflowError::Invalid {
                        field: "column",
                        detail: format!(
                            "'{t}.{c}' は申請されていません。申請された列だけを承認できます / '{t}.{c}' was not asked for: only columns asked for can be approved"
                        ),
                    });
                }
                for (t, c) in &granted {
                    sqlx::query(
                        "UPDATE application_columns SET approved = 1 WHERE application_id = $1 AND table_name = $2 AND column_name = $3",
                    )
                    .bind(id)
                    .bind(*t)
                    .bind(*c)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("UPDATE applications SET conditions = $1 WHERE id = $2").bind(&conditions).bind(id).execute(&mut *tx).await?;
                if granted.len() < asked.len() || !conditions.is_empty() {
                    to = AppState::ApprovedWithConditions;
                }
                (format!("{} of {} columns granted; votes {for_} for, {against} against", granted.len(), asked.len()), conditions)
            }
            Decision::Reject { reason } | Decision::Return { reason } => {
                (format!("votes {for_} for, {against} against"), text("reason", reason, MAX_TEXT, true)?)
            }
        };
        self.finish(tx, caller, id, Change::new(step, app.state, to, detail).with_note(&note)).await?;
        self.application(Viewer::Owner, id).await
    }

    /// The applicant accepts the agreement; Kura provisions the project at once, in the same
    /// transaction: its members are the team, its grant exactly the approved columns.
    pub async fn accept(&self, caller: &Caller, id: &str) -> Result<(Application, Project)> {
        let (mut tx, app, to) = self.begin(caller, id, Step::AcceptAgreement).await?;
        // Every member must still be able to work: a disabled account is not given access.
        for m in app.team() {
            if person(&mut tx, m).await?.is_none_or(|p| p.state == "disabled") {
                return Err(WorkflowError::Invalid {
                    field: "members",
                    detail: format!(
                        "メンバー '{m}' のアカウントは停止されています。申請を取り下げて出し直してください / member '{m}' is disabled: withdraw and apply again without them"
                    ),
                });
            }
        }
        self.record(&mut tx, caller, id, &Change::new(Step::AcceptAgreement, app.state, to, "agreement accepted")).await?;
        let now = self.now();
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM projects").fetch_one(&mut *tx).await?;
        let project = format!("PRJ-{seq:06}");
        let ends_at = now.saturating_add(app.period_days.saturating_mul(86_400));
        sqlx::query(
            "INSERT INTO projects (id, seq, application_id, dataset, state, created_at, ends_at) VALUES ($1, $2, $3, $4, 'active', $5, $6)",
        )
        .bind(&project)
        .bind(seq)
        .bind(id)
        .bind(&app.dataset)
        .bind(now)
        .bind(ends_at)
        .execute(&mut *tx)
        .await?;
        for m in app.team() {
            sqlx::query("INSERT INTO project_members (project_id, login) VALUES ($1, $2)").bind(&project).bind(m).execute(&mut *tx).await?;
        }
        for c in app.columns.iter().filter(|c| c.approved) {
            sqlx::query("INSERT INTO project_columns (project_id, table_name, column_name) VALUES ($1, $2, $3)")
                .bind(&project)
                .bind(&c.table)
                .bind(&c.column)
                .execute(&mut *tx)
                .await?;
        }
        self.finish(tx, caller, id, Change::new(Step::Provision, to, AppState::Provisioned, format!("project {project}"))).await?;
        let app = self.application(Viewer::Owner, id).await?;
        let project = self.project(Viewer::Owner, &project).await?;
        Ok((app, project))
    }

    /// A co-investigator named in a draft (or a returned application) confirms being a member.
    pub async fn join(&self, caller: &Caller, id: &str) -> Result<Application> {
        let (mut tx, app, to) = self.begin(caller, id, Step::Join).await?;
        sqlx::query("UPDATE application_members SET joined_at = $1 WHERE application_id = $2 AND login = $3")
            .bind(self.now())
            .bind(id)
            .bind(caller.login())
            .execute(&mut *tx)
            .await?;
        self.finish(tx, caller, id, Change::new(Step::Join, app.state, to, "membership confirmed")).await?;
        self.application(Viewer::Owner, id).await
    }

    /// The applicant withdraws the application (any time before provisioning).
    pub async fn withdraw(&self, caller: &Caller, id: &str) -> Result<Application> {
        let (tx, app, to) = self.begin(caller, id, Step::Withdraw).await?;
        self.finish(tx, caller, id, Change::new(Step::Withdraw, app.state, to, "withdrawn")).await?;
        self.application(Viewer::Owner, id).await
    }

    // ----- reads -----

    /// One application as `viewer` may see it (not found otherwise, so that existence is not
    /// revealed).
    pub async fn application(&self, viewer: Viewer<'_>, id: &str) -> Result<Application> {
        let mut conn = self.db().pool().acquire().await?;
        self.load(&mut conn, viewer, id).await
    }

    /// The applications `viewer` may see: open ones first, overdue first, then by how long
    /// their clock has run; closed ones after, newest first.
    pub async fn applications(&self, viewer: Viewer<'_>) -> Result<Vec<Summary>> {
        let mut conn = self.db().pool().acquire().await?;
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM applications ORDER BY seq DESC").fetch_all(&mut *conn).await?;
        let mut out = Vec::new();
        for id in ids {
            match self.load(&mut conn, viewer, &id).await {
                Ok(a) => out.push(Summary {
                    id: a.id,
                    applicant: a.applicant,
                    title: a.title,
                    dataset: a.dataset,
                    state: a.state,
                    round: a.round,
                    clock: a.clock,
                }),
                Err(WorkflowError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // Stable: closed applications keep the newest-first order.
        let key = |s: &Summary| if s.state.is_open() { (true, s.clock.overdue, s.clock.running_secs) } else { (false, false, 0) };
        out.sort_by_key(|s| std::cmp::Reverse(key(s)));
        Ok(out)
    }

    /// One project as `viewer` may see it: its members, custodians and auditors.
    pub async fn project(&self, viewer: Viewer<'_>, id: &str) -> Result<Project> {
        let mut conn = self.db().pool().acquire().await?;
        let not_found = || WorkflowError::NotFound { what: "プロジェクト", what_en: "project", cmd: "project", id: id.into() };
        check_project_id(id)?;
        let row = sqlx::query(
            "SELECT p.id, p.application_id, p.dataset, p.state, p.created_at, p.ends_at, p.ended_at, p.notice_at, p.ended_by, \
             p.certificate_sha256, a.applicant FROM projects p JOIN applications a ON a.id = p.application_id WHERE p.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(not_found)?;
        let members: Vec<String> = sqlx::query_scalar("SELECT login FROM project_members WHERE project_id = $1 ORDER BY login")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        let columns =
            sqlx::query("SELECT table_name, column_name FROM project_columns WHERE project_id = $1 ORDER BY table_name, column_name")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("table_name")?, r.try_get("column_name")?)))
                .collect::<std::result::Result<Vec<(String, String)>, sqlx::Error>>()?;
        if let Viewer::User(login) = viewer
            && !members.iter().any(|m| m == login)
            && !person(&mut conn, login).await?.is_some_and(|p| matches!(p.role, Role::Custodian | Role::Auditor))
        {
            return Err(not_found());
        }
        Ok(Project {
            id: row.try_get("id")?,
            application: row.try_get("application_id")?,
            dataset: row.try_get("dataset")?,
            state: row.try_get("state")?,
            created_at: row.try_get("created_at")?,
            ends_at: row.try_get("ends_at")?,
            ended_at: row.try_get("ended_at")?,
            notice_at: row.try_get("notice_at")?,
            ended_by: row.try_get("ended_by")?,
            certificate_sha256: row.try_get("certificate_sha256")?,
            applicant: row.try_get("applicant")?,
            members,
            columns,
        })
    }

    /// The project state of `p`.
    fn project_state(p: &Project) -> Result<ProjectState> {
        ProjectState::parse(&p.state).ok_or_else(|| WorkflowError::Internal(format!("stored project state '{}'", p.state)))
    }

    /// Opens the workspace of project `id` for `caller` (HIC-P3, HIC-S13): an active member,
    /// in a project that has not ended. Anyone else is refused — a user of another project
    /// with [`WorkflowError::NotMember`] (403), after the end with [`WorkflowError::Ended`] —
    /// and the refusal is recorded.
    pub async fn workspace(&self, caller: &Caller, id: &str) -> Result<Project> {
        let checked = async {
            let mut conn = self.db().pool().acquire().await?;
            let now = self.now();
            let user = match person(&mut conn, caller.login()).await? {
                Some(p) if p.usable(now) => p,
                Some(p) => {
                    let state = if p.active() { "locked" } else { p.state.as_str() };
                    return Err(WorkflowError::Invalid {
                        field: "user",
                        detail: format!("利用者 '{}' は有効ではありません（{state}）/ user '{}' is not active ({state})", p.login, p.login),
                    });
                }
                None => return Err(kura_accounts::AccountsError::NoUser(caller.login().into()).into()),
            };
            drop(conn);
            let project = match self.project(Viewer::Owner, id).await {
                Ok(p) => p,
                // A project id that does not exist is refused as not being a member: the
                // answer does not say which projects exist.
                Err(WorkflowError::NotFound { .. }) => return Err(WorkflowError::NotMember { id: id.into() }),
                Err(e) => return Err(e),
            };
            if !project.members.contains(&user.login) {
                return Err(WorkflowError::NotMember { id: id.into() });
            }
            if Self::project_state(&project)? == ProjectState::Ended {
                let ended = project.ended_at.map(kura_ledger::entry::format_seconds).unwrap_or_default();
                return Err(WorkflowError::Ended { id: id.into(), ended: ended.chars().take(10).collect() });
            }
            // The approved period of use (HIC-P1): past its end nobody works in the workspace;
            // a custodian ends the project.
            if project.ends_at <= now {
                let ends = kura_ledger::entry::format_seconds(project.ends_at);
                return Err(WorkflowError::PeriodOver { id: id.into(), ends: ends.chars().take(10).collect() });
            }
            Ok(project)
        };
        match checked.await {
            Ok(p) => Ok(p),
            Err(e) if e.is_refusal() => {
                if let Err(le) =
                    self.inner.accounts.record_refusal(&caller.who, "workspace.open", id, &proxy_note(caller, &e.to_string())).await
                {
                    return Err(le.into());
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Records what a member did in a workspace (`workspace.query`, `workspace.save`), with the
    /// SHA-256 of what they ran; never the SQL or its results.
    pub async fn record_workspace(
        &self,
        caller: &Caller,
        id: &str,
        action: &str,
        object_hash: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<()> {
        let entry = Entry::Audit(AuditEvent {
            v: ENTRY_VERSION,
            time: self.inner.accounts.log().now(),
            actor: caller.who.actor.clone(),
            action: action.into(),
            object: id.into(),
            object_hash: (!object_hash.is_empty()).then(|| object_hash.into()),
            outcome: outcome.into(),
            request: caller.who.request.clone(),
            detail: Some(proxy_note(caller, detail)),
        });
        let mut tx = self.db().begin_write().await?;
        append_in(&mut tx, &entry.encode()?).await?;
        tx.commit().await?;
        self.inner.accounts.log().sync().await?;
        Ok(())
    }

    /// Whether `caller` may take project step `step` on project `p`; the state it leads to.
    async fn allow_project(&self, conn: &mut AnyConnection, caller: &Caller, p: &Project, step: ProjectStep) -> Result<ProjectState> {
        let refuse = |why_ja: String, why_en: String| WorkflowError::ProjectNotPermitted { id: p.id.clone(), step, why_ja, why_en };
        let user = match person(conn, caller.login()).await? {
            Some(u) if u.active() => u,
            Some(u) => {
                return Err(refuse(format!("利用者 '{}' は有効ではありません", u.login), format!("user '{}' is not active", u.login)));
            }
            None => return Err(kura_accounts::AccountsError::NoUser(caller.login().into()).into()),
        };
        match step.party() {
            Party::Applicant if user.login != p.applicant => {
                return Err(refuse(format!("申請者は '{}' です", p.applicant), format!("the applicant is '{}'", p.applicant)));
            }
            Party::Custodian if user.role != Role::Custodian => {
                return Err(refuse(format!("あなたの役割は{}です", user.role.label_ja()), format!("your role is {}", user.role)));
            }
            _ => {}
        }
        let from = Self::project_state(p)?;
        let to = step.target(from).ok_or_else(|| WorkflowError::ProjectWrongState { id: p.id.clone(), from, step })?;
        // The end follows the applicant's notice, or the end of the period of use (HIC-IO3):
        // a custodian cannot destroy a running project's work at will.
        if step == ProjectStep::End && from == ProjectState::Active && p.ends_at > self.now() {
            return Err(refuse(
                "申請者の利用終了の届出の後か、利用期間の終了後にだけ終了できます".into(),
                "a project ends after its applicant's notice of the end of use, or once its period of use is over".into(),
            ));
        }
        Ok(to)
    }

    /// Loads project `id` for a step by `caller`, checking party and state; a refusal is
    /// recorded.
    async fn begin_project(
        &self,
        caller: &Caller,
        id: &str,
        step: ProjectStep,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Any>, Project, ProjectState)> {
        let viewer = Viewer::User(caller.login());
        let loaded = self.project(viewer, id).await;
        let mut tx = self.db().begin_write().await?;
        let allowed = match loaded {
            Ok(p) => self.allow_project(&mut tx, caller, &p, step).await.map(|to| (p, to)),
            Err(e) => Err(e),
        };
        match allowed {
            Ok((p, to)) => Ok((tx, p, to)),
            Err(e) => {
                if let Err(re) = tx.rollback().await {
                    return Err(re.into());
                }
                if e.is_refusal() {
                    self.inner
                        .accounts
                        .record_refusal(&caller.who, &format!("project.{step}"), id, &proxy_note(caller, &e.to_string()))
                        .await?;
                }
                Err(e)
            }
        }
    }

    /// The applicant gives notice of the end of use (HIC-IO3); the custodian then closes the
    /// workspace ([`Research::end`]).
    pub async fn notice(&self, caller: &Caller, id: &str) -> Result<Project> {
        let (mut tx, p, to) = self.begin_project(caller, id, ProjectStep::Notice).await?;
        let now = self.now();
        let changed = sqlx::query("UPDATE projects SET state = $1, notice_at = $2 WHERE id = $3 AND state = $4")
            .bind(to.as_str())
            .bind(now)
            .bind(id)
            .bind(&p.state)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        self.finish_step(tx, changed, caller, id, ProjectStep::Notice, None, &format!("{} -> {to}", p.state)).await?;
        self.project(Viewer::Owner, id).await
    }

    /// Checks that `caller` may end project `id` now, without changing anything (the caller
    /// then destroys the workspace and calls [`Research::end`]); a refusal is recorded.
    pub async fn may_end(&self, caller: &Caller, id: &str) -> Result<Project> {
        let (tx, p, _) = self.begin_project(caller, id, ProjectStep::End).await?;
        tx.rollback().await?;
        Ok(p)
    }

    /// Ends project `id` (HIC-IO3, CLD-5): its state, who ended it and the SHA-256 of its
    /// deletion certificate change in the same transaction as the ledger entry
    /// `project.end`, whose `object_hash` is that SHA-256. Call it once the workspace is
    /// destroyed. Returns the project and the entry's index (for its `.tlog-proof`).
    pub async fn end(&self, caller: &Caller, id: &str, certificate_sha256: &str, detail: &str) -> Result<(Project, u64)> {
        let (mut tx, p, to) = self.begin_project(caller, id, ProjectStep::End).await?;
        let now = self.now();
        let changed = sqlx::query(
            "UPDATE projects SET state = $1, ended_at = $2, ended_by = $3, certificate_sha256 = $4 WHERE id = $5 AND state = $6",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(caller.login())
        .bind(certificate_sha256)
        .bind(id)
        .bind(&p.state)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let idx = self.finish_step(tx, changed, caller, id, ProjectStep::End, Some(certificate_sha256), detail).await?;
        Ok((self.project(Viewer::Owner, id).await?, idx))
    }

    /// The end of a project step: the state changed in exactly one row (`changed`), its ledger
    /// entry appended in the same transaction, committed, the log synced. Returns the entry's
    /// index.
    #[allow(clippy::too_many_arguments, reason = "one step's facts, passed once")]
    async fn finish_step(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        changed: u64,
        caller: &Caller,
        id: &str,
        step: ProjectStep,
        object_hash: Option<&str>,
        detail: &str,
    ) -> Result<u64> {
        if changed != 1 {
            return Err(WorkflowError::Internal(format!("project {id} changed meanwhile")));
        }
        let idx = self.project_entry(&mut tx, caller, id, step, object_hash, detail).await?;
        tx.commit().await?;
        self.inner.accounts.log().sync().await?;
        Ok(idx)
    }

    async fn project_entry(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        id: &str,
        step: ProjectStep,
        object_hash: Option<&str>,
        detail: &str,
    ) -> Result<u64> {
        let entry = Entry::Audit(AuditEvent {
            v: ENTRY_VERSION,
            time: self.inner.accounts.log().now(),
            actor: caller.who.actor.clone(),
            action: format!("project.{step}"),
            object: id.into(),
            object_hash: object_hash.map(str::to_string),
            outcome: "ok".into(),
            request: caller.who.request.clone(),
            detail: Some(proxy_note(caller, detail)),
        });
        Ok(append_in(conn, &entry.encode()?).await?)
    }

    // ----- sample and trial datasets (HIC-P2) -----

    /// A custodian publishes `dataset` as a sample that any signed-in researcher may query
    /// without an application. Only a synthetic dataset (`synthetic`, from the catalogue) may
    /// be published: real data needs an application. Recorded in the ledger.
    pub async fn publish_sample(&self, caller: &Caller, dataset: &str, synthetic: bool, note: &str) -> Result<Sample> {
        let note = text("note", note, MAX_SHORT, false)?;
        if !synthetic {
            return Err(WorkflowError::Invalid {
                field: "dataset",
                detail: format!(
                    "'{}' は合成データではありません。実データは利用申請が必要です / '{}' is not synthetic: real data is used through an application",
                    printable_short(dataset),
                    printable_short(dataset)
                ),
            });
        }
        let mut tx = self.db().begin_write().await?;
        if let Err(e) = self.custodian(&mut tx, caller, dataset, "publish").await {
            tx.rollback().await?;
            return Err(self.refused_sample(caller, dataset, "publish", e).await);
        }
        let exists: Option<String> =
            sqlx::query_scalar("SELECT dataset FROM sample_datasets WHERE dataset = $1").bind(dataset).fetch_optional(&mut *tx).await?;
        if exists.is_some() {
            return Err(WorkflowError::Invalid {
                field: "dataset",
                detail: format!("'{dataset}' は既に見本データです / '{dataset}' is already a sample dataset"),
            });
        }
        let now = self.now();
        sqlx::query("INSERT INTO sample_datasets (dataset, published_by, published_at, note) VALUES ($1, $2, $3, $4)")
            .bind(dataset)
            .bind(caller.login())
            .bind(now)
            .bind(&note)
            .execute(&mut *tx)
            .await?;
        self.sample_entry(&mut tx, caller, dataset, "sample.publish").await?;
        tx.commit().await?;
        self.inner.accounts.log().sync().await?;
        Ok(Sample { dataset: dataset.into(), published_by: caller.login().into(), published_at: now, note })
    }

    /// A custodian withdraws a sample dataset; researchers lose its built-in grant at once.
    pub async fn withdraw_sample(&self, caller: &Caller, dataset: &str) -> Result<()> {
        let mut tx = self.db().begin_write().await?;
        if let Err(e) = self.custodian(&mut tx, caller, dataset, "withdraw").await {
            tx.rollback().await?;
            return Err(self.refused_sample(caller, dataset, "withdraw", e).await);
        }
        let gone = sqlx::query("DELETE FROM sample_datasets WHERE dataset = $1").bind(dataset).execute(&mut *tx).await?.rows_affected();
        if gone == 0 {
            return Err(not_a_sample(dataset));
        }
        self.sample_entry(&mut tx, caller, dataset, "sample.withdraw").await?;
        tx.commit().await?;
        self.inner.accounts.log().sync().await?;
        Ok(())
    }

    /// The sample datasets.
    pub async fn samples(&self) -> Result<Vec<Sample>> {
        let rows = sqlx::query("SELECT dataset, published_by, published_at, note FROM sample_datasets ORDER BY dataset")
            .fetch_all(self.db().pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Sample {
                    dataset: r.try_get("dataset")?,
                    published_by: r.try_get("published_by")?,
                    published_at: r.try_get("published_at")?,
                    note: r.try_get("note")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Sample dataset `dataset` for `caller`, an active researcher (its built-in grant). Anyone
    /// else, or a dataset that is not a sample, is refused and the refusal recorded.
    pub async fn sample(&self, caller: &Caller, dataset: &str) -> Result<Sample> {
        let checked = async {
            let mut conn = self.db().pool().acquire().await?;
            match person(&mut conn, caller.login()).await? {
                Some(p) if p.usable(self.now()) && p.role == Role::Researcher => {}
                Some(p) => {
                    return Err(WorkflowError::Invalid {
                        field: "user",
                        detail: format!(
                            "見本データは有効な研究者が使えます（'{}' は {}・{}）/ sample datasets are for active researchers ('{}' is {}, {})",
                            p.login, p.role, p.state, p.login, p.role, p.state
                        ),
                    });
                }
                None => return Err(kura_accounts::AccountsError::NoUser(caller.login().into()).into()),
            }
            drop(conn);
            self.samples().await?.into_iter().find(|s| s.dataset == dataset).ok_or_else(|| not_a_sample(dataset))
        };
        match checked.await {
            Err(e) if e.is_refusal() || matches!(e, WorkflowError::Invalid { .. }) => {
                Err(self.refused_sample(caller, dataset, "query", e).await)
            }
            other => other,
        }
    }

    async fn custodian(&self, conn: &mut AnyConnection, caller: &Caller, dataset: &str, what: &str) -> Result<()> {
        match person(conn, caller.login()).await? {
            Some(p) if p.active() && p.role == Role::Custodian => Ok(()),
            Some(p) => Err(WorkflowError::Invalid {
                field: "user",
                detail: format!(
                    "見本データの{what}はデータ管理者だけができます（'{}' は {}）/ only a custodian may {what} a sample dataset ('{dataset}'); '{}' is {}",
                    p.login, p.role, p.login, p.role
                ),
            }),
            None => Err(kura_accounts::AccountsError::NoUser(caller.login().into()).into()),
        }
    }

    async fn refused_sample(&self, caller: &Caller, dataset: &str, what: &str, e: WorkflowError) -> WorkflowError {
        let recorded =
            self.inner.accounts.record_refusal(&caller.who, &format!("sample.{what}"), dataset, &proxy_note(caller, &e.to_string())).await;
        match recorded {
            Ok(()) => e,
            Err(le) => le.into(),
        }
    }

    /// Appends the ledger entry of `caller`'s `action` on `object` inside `conn`'s transaction
    /// (its `detail` noted as done by proxy where it was); returns its index.
    #[allow(clippy::too_many_arguments)] // an entry's fields, each named where it is made
    pub(crate) async fn append_entry(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        action: String,
        object: &str,
        object_hash: Option<String>,
        outcome: &str,
        detail: &str,
    ) -> Result<i64> {
        let entry = Entry::Audit(AuditEvent {
            v: ENTRY_VERSION,
            time: self.inner.accounts.log().now(),
            actor: caller.who.actor.clone(),
            action,
            object: object.into(),
            object_hash,
            outcome: outcome.into(),
            request: caller.who.request.clone(),
            detail: Some(proxy_note(caller, detail)),
        });
        let idx = append_in(conn, &entry.encode()?).await?;
        i64::try_from(idx).map_err(|e| WorkflowError::Internal(format!("ledger index: {e}")))
    }

    async fn sample_entry(&self, conn: &mut AnyConnection, caller: &Caller, dataset: &str, action: &str) -> Result<u64> {
        let entry = Entry::Audit(AuditEvent {
            v: ENTRY_VERSION,
            time: self.inner.accounts.log().now(),
            actor: caller.who.actor.clone(),
            action: action.into(),
            object: dataset.into(),
            object_hash: None,
            outcome: "ok".into(),
            request: caller.who.request.clone(),
            detail: Some(proxy_note(caller, "")),
        });
        Ok(append_in(conn, &entry.encode()?).await?)
    }

    /// The projects `viewer` may see, newest first.
    pub async fn projects(&self, viewer: Viewer<'_>) -> Result<Vec<Project>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM projects ORDER BY seq DESC").fetch_all(self.db().pool()).await?;
        let mut out = Vec::new();
        for id in ids {
            match self.project(viewer, &id).await {
                Ok(p) => out.push(p),
                Err(WorkflowError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    // ----- the machinery -----

    /// Opens the step's transaction and loads the application as the caller sees it; checks
    /// that the caller is the step's party and the state allows it. On refusal the transaction
    /// is rolled back and the refusal recorded.
    async fn begin(&self, caller: &Caller, id: &str, step: Step) -> Result<(sqlx::Transaction<'static, sqlx::Any>, Application, AppState)> {
        self.begin_where(caller, id, step, |_| true).await
    }

    /// [`Research::begin`] with a further condition on the state (a return at the intake check
    /// only from `submitted`, a decision only in committee review).
    async fn begin_where(
        &self,
        caller: &Caller,
        id: &str,
        step: Step,
        state_ok: impl Fn(&Application) -> bool,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Any>, Application, AppState)> {
        check_id(id)?;
        let mut tx = self.db().begin_write().await?;
        let allowed = match self.load(&mut tx, Viewer::User(caller.login()), id).await {
            Ok(app) => match self.allow(&mut tx, caller, &app, step).await {
                Ok(_) if !state_ok(&app) => Err(WorkflowError::WrongState { id: id.into(), from: app.state, step }),
                Ok(to) => Ok((app, to)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match allowed {
            Ok((app, to)) => Ok((tx, app, to)),
            Err(e) => Err(self.refused_step(tx, caller, id, step, e).await),
        }
    }

    /// Whether `caller` is the party of `step` and the step can be taken in the application's
    /// state; the state it leads to. The party is checked first, so a caller who may never take
    /// the step learns nothing more about the state. Custodians and reviewers are refused for
    /// an application of their own institution (a conflict of interest) as for their own team.
    async fn allow(&self, conn: &mut AnyConnection, caller: &Caller, app: &Application, step: Step) -> Result<AppState> {
        let user = active(conn, caller.login(), step).await?;
        let refuse =
            |why_ja: String, why_en: String| WorkflowError::NotPermitted { id: app.id.clone(), step, party: step.party(), why_ja, why_en };
        match step.party() {
            Party::Applicant if user.login != app.applicant => {
                return Err(refuse(format!("申請者は '{}' です", app.applicant), format!("the applicant is '{}'", app.applicant)));
            }
            Party::Custodian | Party::Reviewer => {
                let role = if step.party() == Party::Custodian { Role::Custodian } else { Role::Reviewer };
                if user.role != role {
                    return Err(refuse(format!("あなたの役割は{}です", user.role.label_ja()), format!("your role is {}", user.role)));
                }
                for m in app.team() {
                    let same = m == user.login || person(conn, m).await?.is_some_and(|p| p.institution == user.institution);
                    if same {
                        return Err(refuse(
                            "申請チームの一員やその所属機関の者は、この申請を審査・決定できません（利益相反）".into(),
                            "no member of the applying team, nor anyone of their institutions, may review or decide it (conflict of interest)"
                                .into(),
                        ));
                    }
                }
            }
            Party::System => return Err(refuse("Kura が自動で行う手順です".into(), "Kura takes this step itself".into())),
            Party::Member if !app.members.contains(&user.login) => {
                return Err(refuse("この申請のメンバーではありません".into(), "you are not named in this application".into()));
            }
            Party::Applicant | Party::Member => {}
        }
        step.target(app.state).ok_or_else(|| WorkflowError::WrongState { id: app.id.clone(), from: app.state, step })
    }

    /// Rolls `tx` back, records the refusal and gives the error back.
    async fn refused_step(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        caller: &Caller,
        id: &str,
        step: Step,
        err: WorkflowError,
    ) -> WorkflowError {
        self.refused(tx, caller, &format!("application.{step}"), id, err).await
    }

    /// Rolls `tx` back, records the refusal of `action` on `id` (when `err` is one) and gives
    /// the error back: one path for applications and output requests alike.
    pub(crate) async fn refused(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        caller: &Caller,
        action: &str,
        id: &str,
        err: WorkflowError,
    ) -> WorkflowError {
        if let Err(e) = tx.rollback().await {
            return e.into();
        }
        if err.is_refusal()
            && let Err(e) = self.inner.accounts.record_refusal(&caller.who, action, id, &proxy_note(caller, &err.to_string())).await
        {
            return e.into();
        }
        err
    }

    /// Records a step (state, history, ledger entry) inside `conn`'s transaction.
    async fn record(&self, conn: &mut AnyConnection, caller: &Caller, id: &str, c: &Change) -> Result<()> {
        let now = self.now();
        let changed = sqlx::query("UPDATE applications SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(c.to.as_str())
            .bind(now)
            .bind(id)
            .bind(c.from.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if changed != 1 {
            return Err(WorkflowError::Internal(format!("application {id} was not in state {}", c.from)));
        }
        let content = self.load(conn, Viewer::Owner, id).await?;
        let entry = Entry::Audit(AuditEvent {
            v: ENTRY_VERSION,
            time: self.inner.accounts.log().now(),
            actor: caller.who.actor.clone(),
            action: format!("application.{}", c.step),
            object: id.into(),
            object_hash: Some(content_hash(&content)?),
            outcome: "ok".into(),
            request: caller.who.request.clone(),
            detail: Some(proxy_note(caller, &format!("{} -> {}; {}", c.from, c.to, c.detail))),
        });
        let idx = append_in(conn, &entry.encode()?).await?;
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM application_events WHERE application_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO application_events (application_id, seq, at, actor, step, from_state, to_state, note, ledger_idx) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(seq)
        .bind(now)
        .bind(caller.login())
        .bind(c.step.as_str())
        .bind(c.from.as_str())
        .bind(c.to.as_str())
        .bind(&c.note)
        .bind(i64::try_from(idx).map_err(|e| WorkflowError::Internal(format!("ledger index: {e}")))?)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Records the last step of `tx`, commits, and has the log integrate the entries. The step
    /// has taken effect once the commit returns; a failure of the log's integration after it
    /// is reported, and the entry is integrated at the next sync.
    async fn finish(&self, mut tx: sqlx::Transaction<'static, sqlx::Any>, caller: &Caller, id: &str, change: Change) -> Result<()> {
        self.record(&mut tx, caller, id, &change).await?;
        tx.commit().await?;
        self.inner.accounts.log().sync().await?;
        Ok(())
    }

    /// Checks and normalises an application's content: text, the catalogue, members. Runs
    /// before the step's transaction (it reads the users from the pool).
    async fn validated(&self, applicant: &str, catalogue: &Catalogue, new: &NewApplication) -> Result<Content> {
        let title = text("title", &new.title, MAX_TITLE, false)?;
        if title.is_empty() {
            return Err(WorkflowError::Invalid { field: "title", detail: "題名を入れてください / give a title".into() });
        }
        let purpose = text("purpose", &new.purpose, MAX_TEXT, true)?;
        if purpose.is_empty() {
            return Err(WorkflowError::Invalid {
                field: "purpose", detail: "研究目的を入れてください / give the purpose".into()
            });
        }
        if new.columns.is_empty() {
            return Err(WorkflowError::Invalid {
                field: "column",
                detail: "必要な列を一つ以上指定してください（--column TABLE.COLUMN）/ ask for at least one column (--column TABLE.COLUMN)"
                    .into(),
            });
        }
        if new.columns.len() > MAX_COLUMNS || new.members.len() > MAX_LIST || new.places.len() > MAX_LIST {
            return Err(WorkflowError::Invalid {
                field: "application",
                detail: format!(
                    "列は {MAX_COLUMNS} まで、メンバー・利用場所は {MAX_LIST} までです / at most {MAX_COLUMNS} columns and {MAX_LIST} members or places"
                ),
            });
        }
        let mut columns: BTreeMap<(String, String), String> = BTreeMap::new();
        for c in &new.columns {
            catalogue.check(&new.dataset, &c.table, &c.column)?;
            let reason = text("reason", &c.reason, MAX_SHORT, false)?;
            if columns.insert((c.table.clone(), c.column.clone()), reason).is_some() {
                return Err(WorkflowError::Invalid {
                    field: "column",
                    detail: format!("'{}.{}' が二回あります / '{}.{}' is asked for twice", c.table, c.column, c.table, c.column),
                });
            }
        }
        let mut places = Vec::new();
        for p in &new.places {
            let cidr = kura_gate::ranges::Cidr::parse(p.trim()).map_err(|e| WorkflowError::Invalid {
                field: "place",
                detail: format!("利用場所はアドレスか CIDR（例 192.0.2.0/24）で指定してください / place of use: {e}"),
            })?;
            places.push(cidr.to_string());
        }
        let max = self.inner.config.max_period_days;
        let period_days = new.period_days.unwrap_or(self.inner.config.default_period_days);
        if period_days == 0 || period_days > max {
            return Err(WorkflowError::Invalid {
                field: "period",
                detail: format!("利用期間は 1〜{max} 日です / the period of use is 1 to {max} days"),
            });
        }
        let mut members = BTreeSet::new();
        let mut conn = self.db().pool().acquire().await?;
        for m in &new.members {
            if m == applicant {
                continue;
            }
            if !person(&mut conn, m).await?.is_some_and(|p| p.role == Role::Researcher && p.state != "disabled") {
                return Err(WorkflowError::Invalid {
                    field: "member",
                    detail: format!(
                        "'{m}' は有効な研究者ではありません。メンバーは研究者です / '{m}' is not an enabled researcher: members must be researchers"
                    ),
                });
            }
            members.insert(m.clone());
        }
        Ok(Content {
            title,
            purpose,
            justification: text("justification", &new.justification, MAX_TEXT, true)?,
            ethics_ref: text("ethics_ref", &new.ethics_ref, MAX_SHORT, false)?,
            dataset: new.dataset.clone(),
            columns,
            places,
            period_days: i64::from(period_days),
            members,
        })
    }

    /// Loads an application with its lists and clock, as `viewer` may see it. Its applying
    /// team reads the committee's votes and comments without the reviewers' names.
    async fn load(&self, conn: &mut AnyConnection, viewer: Viewer<'_>, id: &str) -> Result<Application> {
        let not_found = || WorkflowError::NotFound { what: "申請", what_en: "application", cmd: "application", id: id.into() };
        let row = sqlx::query(
            "SELECT id, applicant, title, purpose, justification, ethics_ref, dataset, places, period_days, conditions, state, \
             submission, round, created_at, updated_at FROM applications WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(not_found)?;
        let state_name: String = row.try_get("state")?;
        let state =
            AppState::parse(&state_name).ok_or_else(|| WorkflowError::Internal(format!("stored application state '{state_name}'")))?;
        let applicant: String = row.try_get("applicant")?;
        let members: Vec<String> = sqlx::query_scalar("SELECT login FROM application_members WHERE application_id = $1 ORDER BY login")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        let unconfirmed: Vec<String> =
            sqlx::query_scalar("SELECT login FROM application_members WHERE application_id = $1 AND joined_at IS NULL ORDER BY login")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
        let in_team = |login: &str| login == applicant || members.iter().any(|m| m == login);
        let team_view = match viewer {
            Viewer::Owner => false,
            Viewer::User(login) if in_team(login) => true,
            Viewer::User(_) if state == AppState::Draft => return Err(not_found()),
            Viewer::User(login) => {
                if !person(conn, login).await?.is_some_and(|p| matches!(p.role, Role::Custodian | Role::Reviewer | Role::Auditor)) {
                    return Err(not_found());
                }
                false
            }
        };
        let places: String = row.try_get("places")?;
        let columns = sqlx::query(
            "SELECT table_name, column_name, reason, approved FROM application_columns WHERE application_id = $1 ORDER BY table_name, column_name",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(ColumnLine {
                table: r.try_get("table_name")?,
                column: r.try_get("column_name")?,
                reason: r.try_get("reason")?,
                approved: r.try_get::<i64, _>("approved")? != 0,
            })
        })
        .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
        let mut votes = sqlx::query(
            "SELECT submission, reviewer, approve, comment, at FROM application_votes WHERE application_id = $1 ORDER BY submission, at, reviewer",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(VoteLine {
                submission: r.try_get("submission")?,
                reviewer: r.try_get("reviewer")?,
                approve: r.try_get::<i64, _>("approve")? != 0,
                comment: r.try_get("comment")?,
                at: r.try_get("at")?,
            })
        })
        .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
        let mut events = Vec::new();
        for r in sqlx::query(
            "SELECT at, actor, step, from_state, to_state, note, ledger_idx FROM application_events WHERE application_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        {
            let state = |col: &str| -> Result<AppState> {
                let s: String = r.try_get(col)?;
                AppState::parse(&s).ok_or_else(|| WorkflowError::Internal(format!("stored event state '{s}'")))
            };
            events.push(Event {
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                step: r.try_get("step")?,
                from: state("from_state")?,
                to: state("to_state")?,
                note: r.try_get("note")?,
                ledger_index: r.try_get("ledger_idx")?,
            });
        }
        if team_view {
            // The committee is anonymous to the team: reviewers become 審査委員 1, 2, … in the
            // order they first voted.
            let mut names: Vec<String> = Vec::new();
            let mut alias = |login: &str| {
                let n = names.iter().position(|x| x == login).unwrap_or_else(|| {
                    names.push(login.to_string());
                    names.len() - 1
                });
                format!("審査委員 reviewer {}", n + 1)
            };
            for v in &mut votes {
                v.reviewer = alias(&v.reviewer);
            }
            for e in events.iter_mut().filter(|e| e.step == Step::Vote.as_str()) {
                e.actor = alias(&e.actor);
            }
        }
        let attachments = sqlx::query(
            "SELECT seq, name, bytes, sha256, added_by, added_at FROM application_attachments WHERE application_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(AttachmentLine {
                n: r.try_get("seq")?,
                name: r.try_get("name")?,
                bytes: r.try_get("bytes")?,
                sha256: r.try_get("sha256")?,
                added_by: r.try_get("added_by")?,
                added_at: r.try_get("added_at")?,
            })
        })
        .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
        let project: Option<String> =
            sqlx::query_scalar("SELECT id FROM projects WHERE application_id = $1").bind(id).fetch_optional(&mut *conn).await?;
        let marks: Vec<Mark> = events.iter().map(|e| Mark { at: e.at, state: e.to }).collect();
        Ok(Application {
            id: row.try_get("id")?,
            applicant,
            title: row.try_get("title")?,
            purpose: row.try_get("purpose")?,
            justification: row.try_get("justification")?,
            ethics_ref: row.try_get("ethics_ref")?,
            dataset: row.try_get("dataset")?,
            places: serde_json::from_str(&places).map_err(|e| WorkflowError::Internal(format!("stored places: {e}")))?,
            period_days: row.try_get("period_days")?,
            conditions: row.try_get("conditions")?,
            state,
            submission: row.try_get("submission")?,
            round: row.try_get("round")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            columns,
            members,
            votes,
            events,
            clock: clock::read(&marks, self.now(), self.inner.config.service_target_days),
            project,
            unconfirmed,
            attachments,
        })
    }
}

/// Checks an attachment: a PDF (its header and its end-of-file marker) of at most `max`
/// bytes, under a plain file name ending in `.pdf`. Returns the name as stored.
/// Checks an application attachment as [`Research::attach`] will (its name, size, that it is a
/// PDF), so that a file can be refused — or scanned and its scan recorded — before the step.
pub fn check_attachment(name: &str, content: &[u8], max: u64) -> Result<String> {
    checked_attachment(name, content, max)
}

fn checked_attachment(name: &str, content: &[u8], max: u64) -> Result<String> {
    let invalid = |detail: String| WorkflowError::Invalid { field: "attachment", detail };
    // Only the last component of a path the client sent.
    let name = text("attachment", name.rsplit(['/', '\\']).next().unwrap_or(""), MAX_ATTACHMENT_NAME, false)?;
    if name.is_empty() || name.starts_with('.') || !name.to_ascii_lowercase().ends_with(".pdf") {
        return Err(invalid("ファイル名は .pdf で終わる名前にしてください / the file name must end in .pdf".into()));
    }
    if content.is_empty() || content.len() as u64 > max {
        return Err(invalid(format!(
            "添付は 1 バイト以上 {} MiB までです（{} バイト）/ an attachment takes 1 byte to {} MiB ({} bytes)",
            max >> 20,
            content.len(),
            max >> 20,
            content.len()
        )));
    }
    let tail = content.get(content.len().saturating_sub(1024)..).unwrap_or_default();
    if !content.starts_with(b"%PDF-") || !tail.windows(5).any(|w| w == b"%%EOF") {
        return Err(invalid(
            "PDF ではありません（%PDF- で始まり %%EOF で終わるファイルのみ）/ not a PDF: a file that starts with %PDF- and ends with %%EOF"
                .into(),
        ));
    }
    Ok(name)
}

/// The user `login` as the rules need them, read on `conn` (`None` if there is none).
pub(crate) async fn person(conn: &mut AnyConnection, login: &str) -> Result<Option<Person>> {
    let Some(r) = sqlx::query("SELECT login, role, state, institution, locked_until FROM users WHERE login = $1")
        .bind(login)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let role: String = r.try_get("role")?;
    Ok(Some(Person {
        login: r.try_get("login")?,
        role: role.parse().map_err(|_| WorkflowError::Internal(format!("stored role '{role}'")))?,
        state: r.try_get("state")?,
        institution: r.try_get("institution")?,
        locked_until: r.try_get("locked_until")?,
    }))
}

/// The acting user, who must exist and be active to take `step`.
async fn active(conn: &mut AnyConnection, login: &str, step: Step) -> Result<Person> {
    match person(conn, login).await? {
        Some(p) if p.active() => Ok(p),
        Some(p) => Err(WorkflowError::NotPermitted {
            id: "-".into(),
            step,
            party: step.party(),
            why_ja: format!("利用者 '{login}' は有効ではありません（{}）", p.state),
            why_en: format!("user '{login}' is not active ({})", p.state),
        }),
        None => Err(kura_accounts::AccountsError::NoUser(login.into()).into()),
    }
}

fn not_a_sample(dataset: &str) -> WorkflowError {
    WorkflowError::NotFound { what: "見本データ", what_en: "sample dataset", cmd: "sample", id: printable_short(dataset) }
}

/// Project identifiers are `PRJ-` and digits; anything else is refused before it reaches the
/// store or the ledger.
fn check_project_id(id: &str) -> Result<()> {
    match id.strip_prefix("PRJ-") {
        Some(n) if !n.is_empty() && n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(WorkflowError::Invalid {
            field: "id",
            detail: format!("プロジェクトIDは PRJ-000001 の形です / a project id looks like PRJ-000001, not '{}'", printable_short(id)),
        }),
    }
}

/// Identifiers are `APP-` and digits; anything else is refused before it reaches the store or
/// the ledger.
fn check_id(id: &str) -> Result<()> {
    match id.strip_prefix("APP-") {
        Some(n) if !n.is_empty() && n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(WorkflowError::Invalid {
            field: "id",
            detail: format!("申請IDは APP-000001 の形です / an application id looks like APP-000001, not '{}'", printable_short(id)),
        }),
    }
}

fn printable_short(s: &str) -> String {
    kura_ledger::entry::printable(&s.chars().take(40).collect::<String>())
}

/// Checked content of an application.
struct Content {
    title: String,
    purpose: String,
    justification: String,
    ethics_ref: String,
    dataset: String,
    columns: BTreeMap<(String, String), String>,
    places: Vec<String>,
    period_days: i64,
    members: BTreeSet<String>,
}

async fn write_lists(conn: &mut AnyConnection, id: &str, content: &Content) -> Result<()> {
    for ((t, c), reason) in &content.columns {
        sqlx::query(
            "INSERT INTO application_columns (application_id, table_name, column_name, reason, approved) VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(id)
        .bind(t)
        .bind(c)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    }
    for m in &content.members {
        sqlx::query("INSERT INTO application_members (application_id, login) VALUES ($1, $2)").bind(id).bind(m).execute(&mut *conn).await?;
    }
    Ok(())
}

fn places_json(places: &[String]) -> Result<String> {
    serde_json::to_string(places).map_err(|e| WorkflowError::Internal(format!("places: {e}")))
}

/// Trimmed `value`, refused when longer than `max` characters, when it holds control
/// characters (line breaks and tabs only where `multiline`), or characters that reorder or
/// hide text (bidirectional overrides, zero-width marks), which could disguise what a reviewer
/// reads.
pub(crate) fn text(field: &'static str, value: &str, max: usize, multiline: bool) -> Result<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(WorkflowError::Invalid { field, detail: format!("{max} 文字までです / at most {max} characters") });
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\t' | '\r');
    // Characters that show nothing or change how text around them reads: zero-width and
    // direction marks, line and paragraph separators, the soft hyphen, Hangul fillers, tags.
    let hidden = |c: char| {
        matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{061c}'
                | '\u{00ad}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{3164}'
                | '\u{ffa0}'
                | '\u{e0000}'..='\u{e007f}'
        )
    };
    if v.chars().any(|c| (c.is_control() && !allowed(c)) || hidden(c)) {
        let what = if multiline {
            "制御文字や文字の向きを変える文字"
        } else {
            "改行・制御文字や文字の向きを変える文字"
        };
        return Err(WorkflowError::Invalid {
            field,
            detail: format!(
                "{what}は使えません / control characters, line breaks (in one-line fields) and text-direction characters are not allowed"
            ),
        });
    }
    Ok(v.to_string())
}

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// `detail`, with the console account named when it acted for the user.
pub(crate) fn proxy_note(caller: &Caller, detail: &str) -> String {
    match &caller.proxy {
        Some(p) => format!("{detail} [--as: {p}]"),
        None => detail.to_string(),
    }
}

/// SHA-256 of the application's content as it stands (what was filed and what was granted),
/// for the ledger entry's `object_hash`.
fn content_hash(app: &Application) -> Result<String> {
    #[derive(Serialize)]
    struct Canonical<'a> {
        id: &'a str,
        applicant: &'a str,
        title: &'a str,
        purpose: &'a str,
        justification: &'a str,
        ethics_ref: &'a str,
        dataset: &'a str,
        places: &'a [String],
        period_days: i64,
        members: &'a [String],
        columns: &'a [ColumnLine],
        conditions: &'a str,
        submission: i64,
    }
    let c = Canonical {
        id: &app.id,
        applicant: &app.applicant,
        title: &app.title,
        purpose: &app.purpose,
        justification: &app.justification,
        ethics_ref: &app.ethics_ref,
        dataset: &app.dataset,
        places: &app.places,
        period_days: app.period_days,
        members: &app.members,
        columns: &app.columns,
        conditions: &app.conditions,
        submission: app.submission,
    };
    let bytes = serde_json::to_vec(&c).map_err(|e| WorkflowError::Internal(format!("content: {e}")))?;
    Ok(sha256_hex(&bytes))
}
