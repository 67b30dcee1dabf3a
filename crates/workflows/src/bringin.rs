//! Bring-in: files a researcher brings into a project's workspace (issue 17 §4; HIC-IO1,
//! HIC-S1, HIC-P4) — analysis code, SQL files, code masters, small reference tables.
//!
//! The workspace scans each file before it is recorded here ([`Bringins::upload`] takes the
//! scan's outcome): a clean file waits for a custodian outside the project, who approves or
//! rejects it; a file in which malware was found is recorded as `infected` (its hash, the
//! signature, the engine — never kept) and can go no further. Every step changes the state in
//! the same transaction as its ledger entry, whose `object_hash` is the file's SHA-256; a
//! refused step is recorded too. Every malware detection, on the way in or out, is also a row
//! the operators see ([`Research::detections`], HIC-S1).
//!
//! ```text
//!  (upload, scanned clean) ──▶ submitted ──approve (custodian)──▶ approved
//!                                  │ ──reject (custodian)──▶ rejected
//!                                  └──withdraw (author)──▶ withdrawn
//!  (upload, malware found) ──▶ infected
//! ```

use crate::research::{Caller, Research, Viewer, person, text};
use crate::{Result, WorkflowError};
use kura_accounts::Role;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// Longest file name, in characters.
const MAX_NAME: usize = 120;
/// Longest note or comment, in characters.
const MAX_NOTE: usize = 4_000;

/// Where a bring-in request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InState {
    /// Scanned clean; waiting for a custodian.
    Submitted,
    /// Approved: the file is in the workspace, read-only.
    Approved,
    /// Rejected by a custodian.
    Rejected,
    /// Withdrawn by its author.
    Withdrawn,
    /// Malware was found: the file was not kept.
    Infected,
}

impl InState {
    /// Every state.
    pub const ALL: [InState; 5] = [InState::Submitted, InState::Approved, InState::Rejected, InState::Withdrawn, InState::Infected];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            InState::Submitted => "submitted",
            InState::Approved => "approved",
            InState::Rejected => "rejected",
            InState::Withdrawn => "withdrawn",
            InState::Infected => "infected",
        }
    }

    /// The Japanese name shown to users.
    pub fn label_ja(self) -> &'static str {
        match self {
            InState::Submitted => "確認待ち",
            InState::Approved => "承認（作業環境にあり）",
            InState::Rejected => "不承認",
            InState::Withdrawn => "取り下げ",
            InState::Infected => "マルウェア検出",
        }
    }

    /// The state with stored name `s`.
    pub fn parse(s: &str) -> Option<InState> {
        InState::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for InState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of a bring-in request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InStep {
    /// The author uploads a file that was scanned clean.
    Upload,
    /// The scan found malware in the uploaded file.
    Detect,
    /// A custodian approves it.
    Approve,
    /// A custodian rejects it.
    Reject,
    /// Its author withdraws it.
    Withdraw,
}

/// Who may take a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InParty {
    /// An active member of the project (the author, for withdraw).
    Author,
    /// A custodian who is not a member of the project.
    Custodian,
}

impl InStep {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            InStep::Upload => "upload",
            InStep::Detect => "detect",
            InStep::Approve => "approve",
            InStep::Reject => "reject",
            InStep::Withdraw => "withdraw",
        }
    }

    /// Who may take it.
    pub fn party(self) -> InParty {
        match self {
            InStep::Upload | InStep::Detect | InStep::Withdraw => InParty::Author,
            InStep::Approve | InStep::Reject => InParty::Custodian,
        }
    }

    /// Where it leads from `from` (`None`: a new request), if it may be taken there.
    pub fn target(self, from: Option<InState>) -> Option<InState> {
        match (self, from) {
            (InStep::Upload, None) => Some(InState::Submitted),
            (InStep::Detect, None) => Some(InState::Infected),
            (InStep::Approve, Some(InState::Submitted)) => Some(InState::Approved),
            (InStep::Reject, Some(InState::Submitted)) => Some(InState::Rejected),
            (InStep::Withdraw, Some(InState::Submitted)) => Some(InState::Withdrawn),
            _ => None,
        }
    }
}

impl std::fmt::Display for InStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file to record: what it is, its hash, and what the scan said.
#[derive(Clone, Debug)]
pub struct NewBringin {
    /// Its file name.
    pub name: String,
    /// `table` (a CSV master that becomes a table) or `file`.
    pub kind: String,
    /// What it is, from the researcher.
    pub note: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// The engine that scanned it (`ClamAV 1.4.3/…`).
    pub engine: String,
    /// The signature found, if any.
    pub found: Option<String>,
}

/// A bring-in request as the viewer may see it.
#[derive(Clone, Debug, Serialize)]
pub struct Bringin {
    /// `IN-000001`.
    pub id: String,
    /// The project.
    pub project: String,
    /// Who brought it.
    pub author: String,
    /// Its file name.
    pub name: String,
    /// `table` or `file`.
    pub kind: String,
    /// What it is.
    pub note: String,
    /// Its size.
    pub bytes: i64,
    /// Its SHA-256.
    pub sha256: String,
    /// Where it is.
    pub state: InState,
    /// The scan: `clean (engine)` or `found SIGNATURE (engine)`.
    pub scan: String,
    /// The custodian's comment.
    pub comment: String,
    /// When it was uploaded (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
    /// Its history: (at, actor, step, from, to, ledger index).
    pub events: Vec<InEvent>,
}

/// One step in a bring-in request's history: the same line as an output request's.
pub type InEvent = crate::OutputEvent;

/// Malware a scan found, as it is recorded.
#[derive(Clone, Copy, Debug)]
pub struct Found<'a> {
    /// `in` (bring-in), `out` (take-out), `intake` (a provider's file, `kura intake`) or
    /// `exchange` (a file one institution sends another).
    pub direction: &'a str,
    /// The request (`IN-…` or `OUT-…`).
    pub object: &'a str,
    /// The file's name.
    pub file_name: &'a str,
    /// The file's SHA-256.
    pub sha256: &'a str,
    /// The engine's version line.
    pub engine: &'a str,
    /// The signature found.
    pub signature: &'a str,
}

/// A malware detection as operators see it (HIC-S1).
#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    /// When (Unix seconds).
    pub at: i64,
    /// `in` (bring-in) or `out` (take-out).
    pub direction: String,
    /// The request (`IN-…` or `OUT-…`).
    pub object: String,
    /// The file's name.
    pub file_name: String,
    /// The file's SHA-256.
    pub sha256: String,
    /// The engine.
    pub engine: String,
    /// The signature found.
    pub signature: String,
    /// Who brought the file.
    pub actor: String,
    /// The ledger entry.
    pub ledger_index: i64,
}

/// The bring-in requests of a home (see the module documentation).
#[derive(Clone, Debug)]
pub struct Bringins {
    research: Research,
}

impl Research {
    /// The airlock's bring-in, over the same store, ledger and clock.
    pub fn bringins(&self) -> Bringins {
        Bringins { research: self.clone() }
    }

    /// Records malware `found` (HIC-S1) inside `conn`'s transaction: a row the operators see
    /// and a ledger entry. Returns the entry's index.
    pub(crate) async fn record_detection_in(&self, conn: &mut AnyConnection, caller: &Caller, found: &Found<'_>) -> Result<i64> {
        let Found { direction, object, file_name, sha256, engine, signature } = *found;
        if !matches!(direction, "in" | "out" | "intake" | "exchange") {
            return Err(WorkflowError::Internal(format!("scan direction '{direction}'")));
        }
        // A file between institutions is named in the operators' row only: the public ledger
        // carries neither its name nor its plain hash (README, "Exchange").
        let (detail, hash) = if direction == "exchange" {
            (format!("{direction}: {signature} ({engine})"), None)
        } else {
            (format!("{direction} {file_name}: {signature} ({engine})"), Some(sha256.into()))
        };
        let idx = self.append_entry(conn, caller, "scan.detected".into(), object, hash, "refused", &detail).await?;
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM scan_detections").fetch_one(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO scan_detections (seq, at, direction, object, file_name, sha256, engine, signature, actor, ledger_idx) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(seq)
        .bind(self.now())
        .bind(direction)
        .bind(object)
        .bind(file_name)
        .bind(sha256)
        .bind(engine)
        .bind(signature)
        .bind(caller.login())
        .bind(idx)
        .execute(&mut *conn)
        .await?;
        Ok(idx)
    }

    /// Records that the platform published table `name` (the airlock remembers it as
    /// `PUB-name`, released to everyone; issue 22 §2), with its ledger entry, in one transaction.
    pub async fn record_public_table(&self, caller: &Caller, project: &str, name: &str, script_digest: &str, detail: &str) -> Result<()> {
        let mut tx = self.db().begin_write().await?;
        let idx = self.append_entry(&mut tx, caller, "airlock.publish".into(), project, Some(script_digest.into()), "ok", detail).await?;
        sqlx::query("DELETE FROM airlock_public_tables WHERE name = $1").bind(name).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO airlock_public_tables (name, published_at, ledger_idx) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(self.now())
            .bind(idx)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.log().sync().await?;
        Ok(())
    }

    /// The names of the tables the platform published (see [`Research::record_public_table`]).
    pub async fn public_tables(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM airlock_public_tables ORDER BY name").fetch_all(self.db().pool()).await?)
    }

    /// How many malware detections were recorded in files `login` brought, added or attached
    /// since `since` (Unix seconds): what blocks a user's uploads (HIC-S1).
    pub async fn detections_by(&self, login: &str, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM scan_detections WHERE actor = $1 AND at >= $2")
            .bind(login)
            .bind(since)
            .fetch_one(self.db().pool())
            .await?)
    }

    /// Records malware `found` in its own transaction (the scan of an added output file, of
    /// the release gate, of a bring-in's approval).
    pub async fn record_detection(&self, caller: &Caller, found: &Found<'_>) -> Result<()> {
        let mut tx = self.db().begin_write().await?;
        self.record_detection_in(&mut tx, caller, found).await?;
        tx.commit().await?;
        self.log().sync().await?;
        Ok(())
    }

    /// Whether `login` is an active custodian who is not a member of `project`: the only one
    /// who approves a bring-in or releases an output of it (checked again by the step itself;
    /// this lets the airlock scan only for such a caller).
    pub async fn custodian_outside(&self, login: &str, project: &str) -> Result<bool> {
        let mut conn = self.db().pool().acquire().await?;
        let custodian = matches!(person(&mut conn, login).await?, Some(p) if p.active() && p.role == Role::Custodian);
        Ok(custodian && !members(&mut conn, project).await?.iter().any(|m| m == login))
    }

    /// The latest `limit` malware detections, newest first: custodians and operators only
    /// (`Viewer::Owner` at the command line).
    pub async fn detections(&self, viewer: Viewer<'_>, limit: i64) -> Result<Vec<Detection>> {
        let mut conn = self.db().pool().acquire().await?;
        if let Viewer::User(login) = viewer
            && !matches!(person(&mut conn, login).await?.map(|p| p.role), Some(Role::Custodian | Role::Operator))
        {
            return Err(WorkflowError::Invalid {
                field: "role",
                detail: "検出記録はデータ管理者と運用者だけが見られます / only custodians and operators see detections".into(),
            });
        }
        let rows = sqlx::query(
            "SELECT at, direction, object, file_name, sha256, engine, signature, actor, ledger_idx FROM scan_detections ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Detection {
                    at: r.try_get("at")?,
                    direction: r.try_get("direction")?,
                    object: r.try_get("object")?,
                    file_name: r.try_get("file_name")?,
                    sha256: r.try_get("sha256")?,
                    engine: r.try_get("engine")?,
                    signature: r.try_get("signature")?,
                    actor: r.try_get("actor")?,
                    ledger_index: r.try_get("ledger_idx")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

fn not_found(id: &str) -> WorkflowError {
    WorkflowError::NotFound { what: "持込み依頼", what_en: "bring-in request", cmd: "bringin", id: id.into() }
}

fn check_id(id: &str) -> Result<()> {
    let ok = id.len() == 9 && id.starts_with("IN-") && id.get(3..).is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    if ok { Ok(()) } else { Err(not_found(id)) }
}

/// Checks a file's name and note as an upload (bring-in, or a file added to an output) will
/// record them, before anything is scanned or recorded: what a detection names is clean text.
pub fn check_upload(name: &str, note: &str) -> Result<()> {
    file_name(name)?;
    text("note", note, MAX_NOTE, true)?;
    Ok(())
}

/// A file name: one line, no path, not hidden (bring-in, output files, the exchange).
pub(crate) fn file_name(value: &str) -> Result<String> {
    let v = text("file", value, MAX_NAME, false)?;
    if v.is_empty() || v.contains('/') || v.contains('\\') || v.starts_with('.') {
        return Err(WorkflowError::Invalid {
            field: "file",
            detail: "パス区切りを含まず、ドットで始まらない名前にしてください / give a name without path separators that does not start with a dot".into(),
        });
    }
    Ok(v)
}

async fn members(conn: &mut AnyConnection, project: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT login FROM project_members WHERE project_id = $1 ORDER BY login")
        .bind(project)
        .fetch_all(&mut *conn)
        .await?)
}

impl Bringins {
    /// Records a file `caller`, an active member of `project`, brought in, with its scan's
    /// outcome: `submitted` when clean, `infected` when malware was found (with the detection
    /// for the operators, in the same transaction).
    pub async fn upload(&self, caller: &Caller, project: &str, file: &NewBringin) -> Result<Bringin> {
        let name = file_name(&file.name)?;
        let note = text("note", &file.note, MAX_NOTE, true)?;
        if !matches!(file.kind.as_str(), "table" | "file") {
            return Err(WorkflowError::Internal(format!("bring-in kind '{}'", file.kind)));
        }
        self.research.workspace(caller, project).await?;
        let (step, scan) = match &file.found {
            None => (InStep::Upload, format!("clean ({})", file.engine)),
            Some(sig) => (InStep::Detect, format!("found {sig} ({})", file.engine)),
        };
        let to = step.target(None).ok_or_else(|| WorkflowError::Internal("bring-in upload".into()))?;
        let now = self.research.now();
        let mut tx = self.research.db().begin_write().await?;
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM bringin_requests").fetch_one(&mut *tx).await?;
        let id = format!("IN-{seq:06}");
        sqlx::query(
            "INSERT INTO bringin_requests (id, seq, project_id, author, name, kind, note, bytes, sha256, state, scan, comment, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', $12, $12)",
        )
        .bind(&id)
        .bind(seq)
        .bind(project)
        .bind(caller.login())
        .bind(&name)
        .bind(&file.kind)
        .bind(&note)
        .bind(i64::try_from(file.bytes).unwrap_or(i64::MAX))
        .bind(&file.sha256)
        .bind(to.as_str())
        .bind(&scan)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(sig) = &file.found {
            let found =
                Found { direction: "in", object: &id, file_name: &name, sha256: &file.sha256, engine: &file.engine, signature: sig };
            self.research.record_detection_in(&mut tx, caller, &found).await?;
        }
        self.record(&mut tx, caller, &id, step, None, to, &format!("project {project} {} {} bytes; {scan}", file.kind, file.bytes)).await?;
        tx.commit().await?;
        self.research.log().sync().await?;
        self.request(Viewer::Owner, &id).await
    }

    /// A custodian outside the project approves request `id`. `place` puts the file into the
    /// workspace (scanned again, with the signatures of this moment); it runs inside the
    /// step's transaction, so that a file that could not be placed is not approved.
    pub async fn approve<F, Fut>(&self, caller: &Caller, id: &str, comment: &str, place: F) -> Result<Bringin>
    where
        F: FnOnce(Bringin) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), (String, String)>>,
    {
        let comment = text("comment", comment, MAX_NOTE, true)?;
        let (mut tx, req, to) = self.begin(caller, id, InStep::Approve).await?;
        if let Err((why_ja, why_en)) = place(req.clone()).await {
            let e = WorkflowError::BringinRefused { id: id.into(), why_ja, why_en };
            return Err(self.research.refused(tx, caller, "bringin.approve", id, e).await);
        }
        sqlx::query("UPDATE bringin_requests SET comment = $1 WHERE id = $2").bind(&comment).bind(id).execute(&mut *tx).await?;
        self.record(&mut tx, caller, id, InStep::Approve, Some(req.state), to, "approved").await?;
        tx.commit().await?;
        self.research.log().sync().await?;
        self.request(Viewer::Owner, id).await
    }

    /// A custodian outside the project rejects request `id`, or its author withdraws it.
    pub async fn close(&self, caller: &Caller, id: &str, step: InStep, comment: &str) -> Result<Bringin> {
        if !matches!(step, InStep::Reject | InStep::Withdraw) {
            return Err(WorkflowError::Internal(format!("bring-in close by {step}")));
        }
        let comment = text("comment", comment, MAX_NOTE, true)?;
        let (mut tx, req, to) = self.begin(caller, id, step).await?;
        sqlx::query("UPDATE bringin_requests SET comment = $1 WHERE id = $2").bind(&comment).bind(id).execute(&mut *tx).await?;
        self.record(&mut tx, caller, id, step, Some(req.state), to, step.as_str()).await?;
        tx.commit().await?;
        self.research.log().sync().await?;
        self.request(Viewer::Owner, id).await
    }

    /// A request as `viewer` may see it: the project's members, and custodians.
    pub async fn request(&self, viewer: Viewer<'_>, id: &str) -> Result<Bringin> {
        check_id(id)?;
        let mut conn = self.research.db().pool().acquire().await?;
        let req = load(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
        if let Viewer::User(login) = viewer {
            let member = members(&mut conn, &req.project).await?.iter().any(|m| m == login);
            let custodian = matches!(person(&mut conn, login).await?.map(|p| p.role), Some(Role::Custodian));
            if !member && !custodian {
                return Err(not_found(id));
            }
        }
        Ok(req)
    }

    /// The requests `viewer` may see (of `project` only, if given), waiting ones first, then
    /// the most recently changed.
    pub async fn list(&self, viewer: Viewer<'_>, project: Option<&str>) -> Result<Vec<Bringin>> {
        let mut conn = self.research.db().pool().acquire().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM bringin_requests ORDER BY CASE WHEN state = 'submitted' THEN 0 ELSE 1 END, updated_at DESC, seq DESC",
        )
        .fetch_all(&mut *conn)
        .await?;
        drop(conn);
        let mut out = Vec::new();
        for id in ids {
            match self.request(viewer, &id).await {
                Ok(r) if project.is_none_or(|p| p == r.project) => out.push(r),
                Ok(_) => {}
                Err(WorkflowError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Opens the write transaction of a step on an existing request: the caller checked for
    /// the step's party, the state for the step. A refusal is recorded.
    async fn begin(&self, caller: &Caller, id: &str, step: InStep) -> Result<(sqlx::Transaction<'static, sqlx::Any>, Bringin, InState)> {
        check_id(id)?;
        let mut tx = self.research.db().begin_write().await?;
        let allowed = match load(&mut tx, id).await {
            Ok(Some(req)) => self.allow(&mut tx, caller, &req, step).await.map(|to| (req, to)),
            Ok(None) => Err(not_found(id)),
            Err(e) => Err(e),
        };
        match allowed {
            Ok((req, to)) => Ok((tx, req, to)),
            Err(e) => Err(self.research.refused(tx, caller, &format!("bringin.{step}"), id, e).await),
        }
    }

    async fn allow(&self, conn: &mut AnyConnection, caller: &Caller, req: &Bringin, step: InStep) -> Result<InState> {
        let user = match person(conn, caller.login()).await? {
            Some(p) if p.active() => p,
            Some(p) => {
                return Err(WorkflowError::BringinRefused {
                    id: req.id.clone(),
                    why_ja: format!("利用者 '{}' は有効ではありません", p.login),
                    why_en: format!("user '{}' is not active", p.login),
                });
            }
            None => return Err(kura_accounts::AccountsError::NoUser(caller.login().into()).into()),
        };
        let member = members(conn, &req.project).await?.contains(&user.login);
        if !member && user.role != Role::Custodian {
            return Err(not_found(&req.id));
        }
        let refuse = |why_ja: String, why_en: String| WorkflowError::BringinRefused { id: req.id.clone(), why_ja, why_en };
        match step.party() {
            InParty::Author if user.login != req.author => {
                return Err(refuse(format!("持込み依頼者は '{}' です", req.author), format!("the request's author is '{}'", req.author)));
            }
            InParty::Custodian if user.role != Role::Custodian => {
                return Err(refuse(
                    format!("持込みの承認はデータ管理者だけができます（あなたの役割は{}です）", user.role.label_ja()),
                    format!("only a custodian approves or rejects a bring-in (your role is {})", user.role),
                ));
            }
            InParty::Custodian if member || user.login == req.author => {
                return Err(refuse(
                    "プロジェクトのメンバーは自分たちの持込みを承認できません（二者確認）".into(),
                    "no member of the project may approve its own bring-in (two-person rule)".into(),
                ));
            }
            _ => {}
        }
        step.target(Some(req.state)).ok_or_else(|| {
            refuse(
                format!("持込み依頼 {} は「{}」のため、{step} はできません", req.id, req.state.label_ja()),
                format!("bring-in request {} is {}: cannot {step} it now", req.id, req.state),
            )
        })
    }

    /// Records a step (state, history, ledger entry) inside `conn`'s transaction.
    #[allow(clippy::too_many_arguments)] // a step's facts, each named where it is recorded
    async fn record(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        id: &str,
        step: InStep,
        from: Option<InState>,
        to: InState,
        detail: &str,
    ) -> Result<()> {
        let now = self.research.now();
        if let Some(from) = from {
            let changed = sqlx::query("UPDATE bringin_requests SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
                .bind(to.as_str())
                .bind(now)
                .bind(id)
                .bind(from.as_str())
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if changed != 1 {
                return Err(WorkflowError::Internal(format!("bring-in request {id} was not in state {from}")));
            }
        }
        let req = load(conn, id).await?.ok_or_else(|| not_found(id))?;
        let from_s = from.map_or("-", InState::as_str);
        let outcome = if to == InState::Infected { "refused" } else { "ok" };
        let detail = format!("{from_s} -> {to}; {detail}");
        let idx =
            self.research.append_entry(conn, caller, format!("bringin.{step}"), id, Some(req.sha256.clone()), outcome, &detail).await?;
        let line = InEvent {
            at: now,
            actor: caller.login().into(),
            step: step.as_str().into(),
            from: from_s.into(),
            to: to.as_str().into(),
            ledger_index: idx,
        };
        crate::outputs::append_event(conn, crate::outputs::History::Bringin, id, &line).await
    }
}

async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<Bringin>> {
    let Some(r) = sqlx::query(
        "SELECT id, project_id, author, name, kind, note, bytes, sha256, state, scan, comment, created_at, updated_at FROM bringin_requests WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let events = crate::outputs::load_events(conn, crate::outputs::History::Bringin, id).await?;
    let state: String = r.try_get("state")?;
    Ok(Some(Bringin {
        id: r.try_get("id")?,
        project: r.try_get("project_id")?,
        author: r.try_get("author")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        note: r.try_get("note")?,
        bytes: r.try_get("bytes")?,
        sha256: r.try_get("sha256")?,
        state: InState::parse(&state).ok_or_else(|| WorkflowError::Internal(format!("stored bring-in state '{state}'")))?,
        scan: r.try_get("scan")?,
        comment: r.try_get("comment")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        events,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_leads_where_the_diagram_says() {
        for from in [None, Some(InState::Submitted)] {
            for step in [InStep::Upload, InStep::Detect, InStep::Approve, InStep::Reject, InStep::Withdraw] {
                let to = step.target(from);
                match (step, from) {
                    (InStep::Upload, None) => assert_eq!(to, Some(InState::Submitted)),
                    (InStep::Detect, None) => assert_eq!(to, Some(InState::Infected)),
                    (InStep::Approve, Some(_)) => assert_eq!(to, Some(InState::Approved)),
                    (InStep::Reject, Some(_)) => assert_eq!(to, Some(InState::Rejected)),
                    (InStep::Withdraw, Some(_)) => assert_eq!(to, Some(InState::Withdrawn)),
                    _ => assert_eq!(to, None, "{step} from {from:?}"),
                }
            }
        }
        // Nothing leaves a closed state, least of all an infected file.
        for s in [InState::Approved, InState::Rejected, InState::Withdrawn, InState::Infected] {
            for step in [InStep::Upload, InStep::Detect, InStep::Approve, InStep::Reject, InStep::Withdraw] {
                assert_eq!(step.target(Some(s)), None, "{step} from {s}");
            }
            assert_eq!(InState::parse(s.as_str()), Some(s));
        }
    }
}
