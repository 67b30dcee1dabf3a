//! Output requests: what a researcher asks to take out of a workspace, and the two-person
//! review it passes before it leaves (issue 17 §3, issue 22 §3–§4; HIC-IO2, HIC-S14).
//!
//! A member of an active project starts a request; its author adds tables (made by a query in
//! the workspace and checked cell by cell at once) and files, each hashed when it is made; asks
//! for an exception for failing cells with a reason, if they want one; and submits it. Two
//! output reviewers, neither a member of the project, each vote — approve, request changes or
//! reject — blind to the other vote until both have voted (OpenSAFELY's rule); the second vote
//! decides in the same transaction. A custodian outside the project releases an approved
//! request through the release gate ([`ReleaseGate`]), which runs under the database's write
//! lock: two requests approved in parallel are checked one after the other, each against
//! everything released before it. A failing cell, and a file no Kura query produced, block the
//! release unless both reviewers confirmed it ([`Outputs::confirm`]).
//!
//! Every step ([`crate::output_state`]) changes the state in the same transaction as its
//! ledger entry, whose `object_hash` is the SHA-256 of the request's content at that moment
//! (its files by their hashes); a refused step is recorded too.

use crate::output_state::{OutParty, OutState, OutStep};
use crate::research::{Caller, Research, Viewer, person, sha256_hex, text};
use crate::{Result, WorkflowError};
use kura_accounts::Role;
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeSet;

/// Longest request or file name, in characters.
const MAX_NAME: usize = 120;
/// Longest context note or comment, in characters.
const MAX_NOTE: usize = 4_000;
/// Most files one request holds.
pub const MAX_FILES: usize = 50;
/// Reviewers a request needs.
pub const REVIEWERS: usize = 2;

/// A reviewer's vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// It may leave.
    Approve,
    /// Back to the author for changes.
    Changes,
    /// It may not leave.
    Reject,
}

impl ReviewDecision {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Approve => "approve",
            ReviewDecision::Changes => "changes",
            ReviewDecision::Reject => "reject",
        }
    }

    fn parse(s: &str) -> Option<ReviewDecision> {
        [ReviewDecision::Approve, ReviewDecision::Changes, ReviewDecision::Reject].into_iter().find(|d| d.as_str() == s)
    }
}

/// A file to add: what it is and its automatic verdict, hashed when it was made.
#[derive(Clone, Debug)]
pub struct NewOutputFile {
    /// `table` (made by a query in the workspace) or `file` (anything else).
    pub kind: String,
    /// Its name in the package.
    pub name: String,
    /// The context note: what it shows, population, period.
    pub note: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, taken when it was made.
    pub sha256: String,
    /// For a table, the SHA-256 of the query that made it.
    pub sql_sha256: Option<String>,
    /// The automatic checks' worst status (`pass`, `review`, `fail`) of what would leave.
    pub status: String,
    /// The automatic verdict (JSON; inside the platform only).
    pub verdict: String,
}

/// A file of a request.
#[derive(Clone, Debug, Serialize)]
pub struct OutputFile {
    /// Its number in the request (1, 2, …).
    pub n: i64,
    /// `table` or `file`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The context note.
    pub note: String,
    /// Its size.
    pub bytes: i64,
    /// Its SHA-256, taken when it was made.
    pub sha256: String,
    /// For a table, the SHA-256 of its query.
    pub sql_sha256: Option<String>,
    /// The automatic checks' status.
    pub status: String,
    /// The automatic verdict (JSON).
    pub verdict: String,
    /// Who made it.
    pub created_by: String,
    /// When (Unix seconds).
    pub created_at: i64,
}

/// A reviewer's vote as the viewer may see it.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewLine {
    /// The submission it was given on.
    pub submission: i64,
    /// The reviewer (a pseudonym for the project's members).
    pub reviewer: String,
    /// `approve`, `changes` or `reject`.
    pub decision: String,
    /// The comment.
    pub comment: String,
    /// When (Unix seconds).
    pub at: i64,
}

/// A reviewer's confirmation of a file no query produced (`file:N`) or of the exception.
#[derive(Clone, Debug, Serialize)]
pub struct ConfirmLine {
    /// The submission.
    pub submission: i64,
    /// The reviewer (a pseudonym for the project's members).
    pub reviewer: String,
    /// `exception` or `file:N`.
    pub what: String,
    /// When (Unix seconds).
    pub at: i64,
}

/// One step in a request's history.
#[derive(Clone, Debug, Serialize)]
pub struct OutputEvent {
    /// When (Unix seconds).
    pub at: i64,
    /// Who (a pseudonym for a reviewer, seen by the project's members).
    pub actor: String,
    /// The step.
    pub step: String,
    /// From state.
    pub from: String,
    /// To state.
    pub to: String,
    /// The ledger entry that records it.
    pub ledger_index: i64,
}

/// An output request as the viewer may see it.
#[derive(Clone, Debug, Serialize)]
pub struct OutputRequest {
    /// `OUT-000001`.
    pub id: String,
    /// The project.
    pub project: String,
    /// The researcher who made it.
    pub author: String,
    /// Its name.
    pub name: String,
    /// Where it is.
    pub state: OutState,
    /// How many times it was submitted.
    pub submission: i64,
    /// The author's reason for an exception, if they asked for one.
    pub exception: Option<String>,
    /// The disclosure policy its checks used: `name version (sha256 …)`.
    pub policy: String,
    /// The released package's manifest SHA-256.
    pub package_sha256: Option<String>,
    /// When it was released.
    pub released_at: Option<i64>,
    /// When it was made.
    pub created_at: i64,
    /// Its files.
    pub files: Vec<OutputFile>,
    /// The votes the viewer may see.
    pub reviews: Vec<ReviewLine>,
    /// Votes on the current submission the viewer may not see yet (blind review).
    pub hidden_votes: usize,
    /// The confirmations the viewer may see.
    pub confirmations: Vec<ConfirmLine>,
    /// Its history.
    pub events: Vec<OutputEvent>,
}

/// One line of a list of requests.
#[derive(Clone, Debug, Serialize)]
pub struct OutputSummary {
    /// `OUT-000001`.
    pub id: String,
    /// The project.
    pub project: String,
    /// Its author.
    pub author: String,
    /// Its name.
    pub name: String,
    /// Where it is.
    pub state: OutState,
    /// How many files.
    pub files: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

/// The release gate: the checks that run at release under the write lock (issue 22 §4) —
/// each file's hash against what was taken when it was made, the malware scan, the
/// differencing check against everything released so far — and the package. Returns the
/// package manifest's SHA-256, or why the request cannot leave (Japanese, English).
pub trait ReleaseGate {
    /// Checks `request` and writes its package.
    fn check(&self, request: &OutputRequest) -> impl std::future::Future<Output = std::result::Result<String, (String, String)>> + Send;
}

/// The output requests of a home (see the module documentation).
#[derive(Clone, Debug)]
pub struct Outputs {
    research: Research,
}

impl Research {
    /// The airlock's take-out, over the same store, ledger and clock.
    pub fn outputs(&self) -> Outputs {
        Outputs { research: self.clone() }
    }
}

/// What the viewer is to a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seat {
    Owner,
    Member,
    Reviewer,
    Custodian,
}

fn not_found(id: &str) -> WorkflowError {
    WorkflowError::NotFound { what: "出力依頼", what_en: "output request", cmd: "output", id: id.into() }
}

fn check_request_id(id: &str) -> Result<()> {
    let ok = id.len() == 10 && id.starts_with("OUT-") && id[4..].bytes().all(|b| b.is_ascii_digit());
    if ok { Ok(()) } else { Err(not_found(id)) }
}

/// A reviewer's pseudonym in what the project's members see: stable per request, says nothing
/// of who it is — keyed by a secret of the store of record ([`reviewer_key`]), so that nobody
/// can test candidate logins against it.
fn pseudonym(key: &kura_crypto::SecretKey, id: &str, login: &str) -> String {
    let derived = key.derive(format!("kura/output-reviewer/v2\0{id}\0{login}").as_bytes());
    format!("R-{}", hex::encode(derived.expose().get(..4).unwrap_or(&[])))
}

impl Outputs {
    /// The pseudonyms of request `id`'s reviewers `logins` as the project's members see them
    /// (the release's manifest names them so). Call it outside a write transaction: the key
    /// may be made on first use.
    pub async fn reviewer_pseudonyms(&self, id: &str, logins: &[String]) -> Result<Vec<String>> {
        let mut conn = self.research.db().pool().acquire().await?;
        let key = reviewer_key(&mut conn).await?;
        Ok(logins.iter().map(|l| pseudonym(&key, id, l)).collect())
    }
}

/// The key of reviewers' pseudonyms: made at random on first use and kept in the store of record.
async fn reviewer_key(conn: &mut AnyConnection) -> Result<kura_crypto::SecretKey> {
    const NAME: &str = "output-reviewer-pseudonym";
    let read = |v: String| -> Result<kura_crypto::SecretKey> {
        let bytes: [u8; 32] = hex::decode(&v)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| WorkflowError::Internal("the stored pseudonym key is malformed".into()))?;
        Ok(kura_crypto::SecretKey::from_bytes(bytes))
    };
    let stored: Option<String> =
        sqlx::query_scalar("SELECT value FROM workflow_secrets WHERE name = $1").bind(NAME).fetch_optional(&mut *conn).await?;
    if let Some(v) = stored {
        return read(v);
    }
    let fresh = kura_crypto::SecretKey::generate().map_err(|e| WorkflowError::Internal(e.to_string()))?;
    sqlx::query("INSERT INTO workflow_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(NAME)
        .bind(hex::encode(fresh.expose()))
        .execute(&mut *conn)
        .await?;
    // Whoever wrote first wins: read it back.
    let v: String = sqlx::query_scalar("SELECT value FROM workflow_secrets WHERE name = $1").bind(NAME).fetch_one(&mut *conn).await?;
    read(v)
}

/// A file or request name: one line, no path.
fn name(field: &'static str, value: &str) -> Result<String> {
    let v = text(field, value, MAX_NAME, false)?;
    // The package's own files are named by Kura.
    let reserved = field == "file" && matches!(v.as_str(), "manifest.json" | "release.tlog-proof");
    if v.is_empty() || v.contains('/') || v.contains('\\') || v == "." || v == ".." || v.starts_with('.') || reserved {
        return Err(WorkflowError::Invalid {
            field,
            detail: "空でない、パス区切りを含まず、manifest.json・release.tlog-proof でない名前にしてください / give a name without path separators that does not start with a dot and is not manifest.json or release.tlog-proof"
                .into(),
        });
    }
    Ok(v)
}

async fn project_members(conn: &mut AnyConnection, project: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT login FROM project_members WHERE project_id = $1 ORDER BY login")
        .bind(project)
        .fetch_all(&mut *conn)
        .await?)
}

impl Outputs {
    fn now(&self) -> i64 {
        self.research.now()
    }

    /// Starts a request in project `project` for `caller`, an active member of it (the
    /// workspace's own rule). `policy` names the policy its checks use.
    pub async fn create(&self, caller: &Caller, project: &str, request_name: &str, policy: &str) -> Result<OutputRequest> {
        let request_name = name("name", request_name)?;
        self.research.workspace(caller, project).await?;
        let now = self.now();
        let mut tx = self.research.db().begin_write().await?;
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM output_requests").fetch_one(&mut *tx).await?;
        let id = format!("OUT-{seq:06}");
        sqlx::query(
            "INSERT INTO output_requests (id, seq, project_id, author, name, state, submission, policy, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8)",
        )
        .bind(&id)
        .bind(seq)
        .bind(project)
        .bind(caller.login())
        .bind(&request_name)
        .bind(OutState::Draft.as_str())
        .bind(policy)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.finish(tx, caller, &id, OutStep::Create, OutState::Draft, OutState::Draft, &format!("project {project}")).await?;
        self.request(Viewer::Owner, &id).await
    }

    /// Adds a table or file to a draft or returned request (its author, still a member of an
    /// open project). Returns the request and the file's number.
    pub async fn add(&self, caller: &Caller, id: &str, file: &NewOutputFile) -> Result<(OutputRequest, i64)> {
        let file_name = name("file", &file.name)?;
        let note = text("note", &file.note, MAX_NOTE, true)?;
        if !matches!(file.kind.as_str(), "table" | "file") || !matches!(file.status.as_str(), "pass" | "review" | "fail") {
            return Err(WorkflowError::Internal(format!("output file kind '{}' status '{}'", file.kind, file.status)));
        }
        let project = self.request(Viewer::Owner, id).await?.project;
        self.research.workspace(caller, &project).await?;
        let (mut tx, req, to) = self.begin(caller, id, OutStep::Add).await?;
        if req.files.len() >= MAX_FILES {
            return Err(self
                .refused(
                    tx,
                    WorkflowError::Invalid {
                        field: "file",
                        detail: format!("一つの依頼は {MAX_FILES} ファイルまでです / at most {MAX_FILES} files per request"),
                    },
                )
                .await);
        }
        if req.files.iter().any(|f| f.name == file_name) {
            return Err(self
                .refused(
                    tx,
                    WorkflowError::Invalid {
                        field: "file",
                        detail: format!("'{file_name}' はすでにあります / '{file_name}' is already in the request"),
                    },
                )
                .await);
        }
        let n = req.files.iter().map(|f| f.n).max().unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO output_files (request_id, n, kind, name, note, bytes, sha256, sql_sha256, status, verdict, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(id)
        .bind(n)
        .bind(&file.kind)
        .bind(&file_name)
        .bind(&note)
        .bind(i64::try_from(file.bytes).unwrap_or(i64::MAX))
        .bind(&file.sha256)
        .bind(&file.sql_sha256)
        .bind(&file.status)
        .bind(&file.verdict)
        .bind(caller.login())
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        let detail = format!("file {n} {} sha256:{} {}", file.kind, file.sha256, file.status);
        self.finish(tx, caller, id, OutStep::Add, req.state, to, &detail).await?;
        Ok((self.request(Viewer::Owner, id).await?, n))
    }

    /// The author asks for an exception for the request's failing cells, with a reason: both
    /// reviewers must confirm it before such a request can leave (issue 22 §3).
    pub async fn exception(&self, caller: &Caller, id: &str, reason: &str) -> Result<OutputRequest> {
        let reason = text("reason", reason, MAX_NOTE, true)?;
        if reason.is_empty() {
            return Err(WorkflowError::Invalid { field: "reason", detail: "理由を入れてください / give the reason".into() });
        }
        let (mut tx, req, to) = self.begin(caller, id, OutStep::Exception).await?;
        sqlx::query("UPDATE output_requests SET exception_reason = $1 WHERE id = $2").bind(&reason).bind(id).execute(&mut *tx).await?;
        let detail = format!("reason sha256:{}", sha256_hex(reason.as_bytes()));
        self.finish(tx, caller, id, OutStep::Exception, req.state, to, &detail).await?;
        self.request(Viewer::Owner, id).await
    }

    /// The author submits the request (again, after changes): the votes start afresh.
    pub async fn submit(&self, caller: &Caller, id: &str) -> Result<OutputRequest> {
        let (mut tx, req, to) = self.begin(caller, id, OutStep::Submit).await?;
        if req.files.is_empty() {
            return Err(self
                .refused(
                    tx,
                    WorkflowError::Invalid {
                        field: "file",
                        detail: format!(
                            "ファイルがありません（kura output new / add）/ the request has no file: add one first (kura output add {id})"
                        ),
                    },
                )
                .await);
        }
        sqlx::query("UPDATE output_requests SET submission = submission + 1 WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let detail = format!("submission {}, {} file(s)", req.submission + 1, req.files.len());
        self.finish(tx, caller, id, OutStep::Submit, req.state, to, &detail).await?;
        self.request(Viewer::Owner, id).await
    }

    /// A reviewer's vote on the current submission: once each, never by a member of the
    /// project. The second vote decides: both approve → approved; a reject → rejected;
    /// otherwise back to the author.
    pub async fn review(&self, caller: &Caller, id: &str, decision: ReviewDecision, comment: &str) -> Result<OutputRequest> {
        let comment = text("comment", comment, MAX_NOTE, true)?;
        let (mut tx, req, to) = self.begin(caller, id, OutStep::Review).await?;
        let voted: Vec<(String, String)> =
            sqlx::query("SELECT reviewer, decision FROM output_reviews WHERE request_id = $1 AND submission = $2 ORDER BY at, reviewer")
                .bind(id)
                .bind(req.submission)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("reviewer")?, r.try_get("decision")?)))
                .collect::<std::result::Result<_, sqlx::Error>>()?;
        if voted.iter().any(|(r, _)| r == caller.login()) {
            let e = WorkflowError::OutputNotPermitted {
                id: id.into(),
                step: OutStep::Review,
                why_ja: "この提出にはすでに投票しています。二人目は別の審査者です".into(),
                why_en: "you have already voted on this submission: the second vote is another reviewer's".into(),
            };
            return Err(self.refused_step(tx, caller, id, OutStep::Review, e).await);
        }
        sqlx::query("INSERT INTO output_reviews (request_id, submission, reviewer, decision, comment, at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(req.submission)
            .bind(caller.login())
            .bind(decision.as_str())
            .bind(&comment)
            .bind(self.now())
            .execute(&mut *tx)
            .await?;
        let detail = format!("vote {} of {REVIEWERS} on submission {}", voted.len() + 1, req.submission);
        self.record(&mut tx, caller, id, OutStep::Review, req.state, to, &detail).await?;
        if to == OutState::Reviewed {
            let mut all: Vec<ReviewDecision> = voted.iter().filter_map(|(_, d)| ReviewDecision::parse(d)).collect();
            all.push(decision);
            let outcome = if all.contains(&ReviewDecision::Reject) {
                OutState::Rejected
            } else if all.iter().all(|d| *d == ReviewDecision::Approve) {
                OutState::Approved
            } else {
                OutState::Returned
            };
            let votes: Vec<&str> = all.iter().map(|d| d.as_str()).collect();
            self.record(&mut tx, caller, id, OutStep::Decide, OutState::Reviewed, outcome, &format!("votes {}", votes.join(", "))).await?;
        }
        tx.commit().await?;
        self.research.log().sync().await?;
        self.request(Viewer::Owner, id).await
    }

    /// A reviewer confirms a file no Kura query produced (`file:N`) or approves the author's
    /// exception (`exception`) on the current submission (issue 17 §2, issue 22 §3).
    pub async fn confirm(&self, caller: &Caller, id: &str, what: &str) -> Result<OutputRequest> {
        let (mut tx, req, to) = self.begin(caller, id, OutStep::Confirm).await?;
        let valid = match what {
            "exception" => req.exception.is_some(),
            w => w
                .strip_prefix("file:")
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|n| req.files.iter().any(|f| f.n == n && (f.kind == "file" || f.status == "review"))),
        };
        if !valid {
            let detail = if what == "exception" {
                "この依頼には例外の申請がありません / the request asks for no exception".to_string()
            } else {
                format!(
                    "'{what}' は確認が必要なこの依頼のファイルではありません / '{what}' is not a file of this request that needs confirmation (made by no query, or checked as review)"
                )
            };
            return Err(self.refused(tx, WorkflowError::Invalid { field: "confirm", detail }).await);
        }
        let done: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM output_confirmations WHERE request_id = $1 AND submission = $2 AND reviewer = $3 AND what = $4",
        )
        .bind(id)
        .bind(req.submission)
        .bind(caller.login())
        .bind(what)
        .fetch_one(&mut *tx)
        .await?;
        if done == 0 {
            sqlx::query("INSERT INTO output_confirmations (request_id, submission, reviewer, what, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(req.submission)
                .bind(caller.login())
                .bind(what)
                .bind(self.now())
                .execute(&mut *tx)
                .await?;
        }
        self.finish(tx, caller, id, OutStep::Confirm, req.state, to, &format!("{what} on submission {}", req.submission)).await?;
        self.request(Viewer::Owner, id).await
    }

    /// A custodian outside the project releases an approved request. A failing file needs the
    /// author's exception and both reviewers' confirmation of it; a file no query produced,
    /// both reviewers' confirmation; then the gate runs under the write lock (issue 22 §4).
    pub async fn release<G: ReleaseGate>(&self, caller: &Caller, id: &str, gate: &G) -> Result<OutputRequest> {
        let (mut tx, req, to) = self.begin(caller, id, OutStep::Release).await?;
        let confirmed = |what: &str| -> usize {
            req.confirmations
                .iter()
                .filter(|c| c.submission == req.submission && c.what == what)
                .map(|c| c.reviewer.as_str())
                .collect::<BTreeSet<_>>()
                .len()
        };
        let failing: Vec<String> = req.files.iter().filter(|f| f.status == "fail").map(|f| format!("{} {}", f.n, f.name)).collect();
        if !failing.is_empty() && (req.exception.is_none() || confirmed("exception") < REVIEWERS) {
            let list = failing.join(", ");
            let e = WorkflowError::ReleaseBlocked {
                id: id.into(),
                why_ja: format!("基準を満たさないセルがあります（{list}）。例外の申請と審査者二人の承認が必要です"),
                why_en: format!(
                    "cells fail the policy ({list}): release needs the author's exception (kura output exception {id}) approved by both reviewers (kura output confirm {id} --exception)"
                ),
            };
            return Err(self.refused_step(tx, caller, id, OutStep::Release, e).await);
        }
        let unconfirmed: Vec<String> = req
            .files
            .iter()
            // Files no query produced, and tables the checks could not settle (lineage lost,
            // a statistic to look at): both reviewers confirm each (issue 22 §3).
            .filter(|f| (f.kind == "file" || f.status == "review") && confirmed(&format!("file:{}", f.n)) < REVIEWERS)
            .map(|f| format!("{} {}", f.n, f.name))
            .collect();
        if !unconfirmed.is_empty() {
            let list = unconfirmed.join(", ");
            let e = WorkflowError::ReleaseBlocked {
                id: id.into(),
                why_ja: format!("クエリで作られていないファイル・審査が必要な表（{list}）は審査者二人の確認が必要です"),
                why_en: format!(
                    "files no query produced and tables whose checks say review ({list}) need both reviewers' confirmation (kura output confirm {id} --file N)"
                ),
            };
            return Err(self.refused_step(tx, caller, id, OutStep::Release, e).await);
        }
        let package = match gate.check(&req).await {
            Ok(p) => p,
            Err((why_ja, why_en)) => {
                let e = WorkflowError::ReleaseBlocked { id: id.into(), why_ja, why_en };
                return Err(self.refused_step(tx, caller, id, OutStep::Release, e).await);
            }
        };
        sqlx::query("UPDATE output_requests SET package_sha256 = $1, released_at = $2 WHERE id = $3")
            .bind(&package)
            .bind(self.now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.finish(tx, caller, id, OutStep::Release, req.state, to, &format!("package sha256:{package}")).await?;
        self.request(Viewer::Owner, id).await
    }

    /// The author withdraws the request.
    pub async fn withdraw(&self, caller: &Caller, id: &str) -> Result<OutputRequest> {
        let (tx, req, to) = self.begin(caller, id, OutStep::Withdraw).await?;
        self.finish(tx, caller, id, OutStep::Withdraw, req.state, to, "withdrawn").await?;
        self.request(Viewer::Owner, id).await
    }

    /// The ledger index of the entry that recorded `step` last on request `id`.
    pub async fn ledger_index(&self, id: &str, step: OutStep) -> Result<Option<i64>> {
        check_request_id(id)?;
        Ok(sqlx::query_scalar("SELECT MAX(ledger_idx) FROM output_events WHERE request_id = $1 AND step = $2")
            .bind(id)
            .bind(step.as_str())
            .fetch_one(self.research.db().pool())
            .await?)
    }

    /// A request as `viewer` may see it: the project's members, reviewers and custodians
    /// outside it once submitted; votes on the current submission stay hidden from everyone
    /// but the home's owner and the reviewer who gave them until both have voted.
    pub async fn request(&self, viewer: Viewer<'_>, id: &str) -> Result<OutputRequest> {
        check_request_id(id)?;
        let mut conn = self.research.db().pool().acquire().await?;
        let req = load(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
        let seat = match viewer {
            Viewer::Owner => Seat::Owner,
            Viewer::User(login) => seat(&mut conn, &req, login).await?.ok_or_else(|| not_found(id))?,
        };
        let key = if seat == Seat::Member { Some(reviewer_key(&mut conn).await?) } else { None };
        drop(conn);
        Ok(shown(
            req,
            seat,
            match viewer {
                Viewer::Owner => "",
                Viewer::User(l) => l,
            },
            key.as_ref(),
        ))
    }

    /// The requests `viewer` may see, most recently changed first.
    pub async fn list(&self, viewer: Viewer<'_>) -> Result<Vec<OutputSummary>> {
        let mut conn = self.research.db().pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT r.id, r.project_id, r.author, r.name, r.state, r.updated_at, r.submission, \
             (SELECT COUNT(*) FROM output_files f WHERE f.request_id = r.id) AS files FROM output_requests r ORDER BY r.updated_at DESC, r.seq DESC",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let state: String = r.try_get("state")?;
            let s = OutputSummary {
                id: r.try_get("id")?,
                project: r.try_get("project_id")?,
                author: r.try_get("author")?,
                name: r.try_get("name")?,
                state: OutState::parse(&state).ok_or_else(|| WorkflowError::Internal(format!("stored output state '{state}'")))?,
                files: r.try_get("files")?,
                updated_at: r.try_get("updated_at")?,
            };
            let visible = match viewer {
                Viewer::Owner => true,
                Viewer::User(login) => {
                    let members = project_members(&mut conn, &s.project).await?;
                    let role = person(&mut conn, login).await?.map(|p| p.role);
                    let submission: i64 = r.try_get("submission")?;
                    members.iter().any(|m| m == login)
                        || (staff_may_see(s.state, submission) && matches!(role, Some(Role::Reviewer | Role::Custodian)))
                }
            };
            if visible {
                out.push(s);
            }
        }
        Ok(out)
    }

    // ----- the steps' machinery -----

    /// Opens the write transaction of a step: the request read there, the caller checked for
    /// the step's party and the state for the step. A refusal is recorded.
    async fn begin(
        &self,
        caller: &Caller,
        id: &str,
        step: OutStep,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Any>, OutputRequest, OutState)> {
        check_request_id(id)?;
        let mut tx = self.research.db().begin_write().await?;
        let allowed = match load(&mut tx, id).await {
            Ok(Some(req)) => match self.allow(&mut tx, caller, &req, step).await {
                Ok(to) => Ok((req, to)),
                Err(e) => Err(e),
            },
            Ok(None) => Err(not_found(id)),
            Err(e) => Err(e),
        };
        match allowed {
            Ok((req, to)) => Ok((tx, req, to)),
            Err(e) => Err(self.refused_step(tx, caller, id, step, e).await),
        }
    }

    async fn allow(&self, conn: &mut AnyConnection, caller: &Caller, req: &OutputRequest, step: OutStep) -> Result<OutState> {
        let user = match person(conn, caller.login()).await? {
            Some(p) if p.active() => p,
            Some(p) => {
                return Err(WorkflowError::OutputNotPermitted {
                    id: req.id.clone(),
                    step,
                    why_ja: format!("利用者 '{}' は有効ではありません（{}）", p.login, p.state),
                    why_en: format!("user '{}' is not active ({})", p.login, p.state),
                });
            }
            None => return Err(kura_accounts::AccountsError::NoUser(caller.login().into()).into()),
        };
        let members = project_members(conn, &req.project).await?;
        // Someone who is neither of the project nor a reviewer or custodian learns nothing,
        // not even that the request exists.
        let member = members.contains(&user.login);
        let staff = matches!(user.role, Role::Reviewer | Role::Custodian) && staff_may_see(req.state, req.submission);
        if !member && !staff {
            return Err(not_found(&req.id));
        }
        let refuse = |why_ja: String, why_en: String| WorkflowError::OutputNotPermitted { id: req.id.clone(), step, why_ja, why_en };
        match step.party() {
            OutParty::Author if user.login != req.author => {
                return Err(refuse(format!("依頼者は '{}' です", req.author), format!("the request's author is '{}'", req.author)));
            }
            OutParty::Reviewer | OutParty::Custodian => {
                let role = if step.party() == OutParty::Custodian { Role::Custodian } else { Role::Reviewer };
                if user.role != role {
                    return Err(refuse(format!("あなたの役割は{}です", user.role.label_ja()), format!("your role is {}", user.role)));
                }
                if member || user.login == req.author {
                    return Err(refuse(
                        "プロジェクトのメンバーは自分たちの出力を審査・持ち出し許可できません（二者確認）".into(),
                        "no member of the project may review or release its outputs (two-person rule)".into(),
                    ));
                }
            }
            OutParty::System => return Err(refuse("Kura が自動で行う手順です".into(), "Kura takes this step itself".into())),
            OutParty::Author => {}
        }
        step.target(req.state).ok_or_else(|| WorkflowError::OutputWrongState { id: req.id.clone(), from: req.state, step })
    }

    /// Rolls `tx` back and gives `err` back (a request that is not refused as such).
    async fn refused(&self, tx: sqlx::Transaction<'static, sqlx::Any>, err: WorkflowError) -> WorkflowError {
        if let Err(e) = tx.rollback().await {
            return e.into();
        }
        err
    }

    /// Rolls `tx` back, records the refusal and gives the error back.
    async fn refused_step(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        caller: &Caller,
        id: &str,
        step: OutStep,
        err: WorkflowError,
    ) -> WorkflowError {
        self.research.refused(tx, caller, &format!("output.{step}"), id, err).await
    }

    /// Records a step (state, history, ledger entry) inside `conn`'s transaction.
    #[allow(clippy::too_many_arguments)] // a step's facts, each named where it is recorded
    async fn record(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        id: &str,
        step: OutStep,
        from: OutState,
        to: OutState,
        detail: &str,
    ) -> Result<()> {
        let now = self.now();
        let changed = sqlx::query("UPDATE output_requests SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(to.as_str())
            .bind(now)
            .bind(id)
            .bind(from.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if changed != 1 {
            return Err(WorkflowError::Internal(format!("output request {id} was not in state {from}")));
        }
        let content = load(conn, id).await?.ok_or_else(|| not_found(id))?;
        // The release names its package by the manifest's hash: `kura proof verify --data
        // manifest.json` checks a downloaded package against the ledger.
        let hash = match (step, &content.package_sha256) {
            (OutStep::Release, Some(p)) => p.clone(),
            _ => content_hash(&content)?,
        };
        let detail = format!("{from} -> {to}; {detail}");
        let idx = self.research.append_entry(conn, caller, format!("output.{step}"), id, Some(hash), "ok", &detail).await?;
        let line = OutputEvent {
            at: now,
            actor: caller.login().into(),
            step: step.as_str().into(),
            from: from.as_str().into(),
            to: to.as_str().into(),
            ledger_index: idx,
        };
        append_event(conn, History::Outputs, id, &line).await
    }

    /// Records the last step of `tx`, commits, and has the log integrate the entries.
    #[allow(clippy::too_many_arguments)] // as record
    async fn finish(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        caller: &Caller,
        id: &str,
        step: OutStep,
        from: OutState,
        to: OutState,
        detail: &str,
    ) -> Result<()> {
        self.record(&mut tx, caller, id, step, from, to, detail).await?;
        tx.commit().await?;
        self.research.log().sync().await?;
        Ok(())
    }
}

/// The viewer's seat at a request, or `None` where they may not see it.
/// Whether reviewers and custodians see a request at all: only what its author has submitted
/// and not taken back. A request never submitted, one back with its author for changes (its new
/// files are work in progress) and a withdrawn one (it may have been withdrawn while back with
/// its author) are the project's own.
fn staff_may_see(state: OutState, submission: i64) -> bool {
    submission > 0 && !state.is_editable() && state != OutState::Withdrawn
}

async fn seat(conn: &mut AnyConnection, req: &OutputRequest, login: &str) -> Result<Option<Seat>> {
    let members = project_members(conn, &req.project).await?;
    if members.iter().any(|m| m == login) {
        return Ok(Some(Seat::Member));
    }
    if !staff_may_see(req.state, req.submission) {
        return Ok(None);
    }
    Ok(match person(conn, login).await?.map(|p| p.role) {
        Some(Role::Reviewer) => Some(Seat::Reviewer),
        Some(Role::Custodian) => Some(Seat::Custodian),
        _ => None,
    })
}

/// What `seat` sees of `req`: votes and confirmations on the current submission, and the
/// history entries that would betray them, are the owner's and their giver's only until both
/// have voted (blind review); the project's members see reviewers by pseudonym.
fn shown(mut req: OutputRequest, seat: Seat, login: &str, key: Option<&kura_crypto::SecretKey>) -> OutputRequest {
    if seat != Seat::Owner && req.state.in_review() {
        let current = req.submission;
        let before = req.reviews.len();
        req.reviews.retain(|r| r.submission != current || r.reviewer == login);
        req.hidden_votes = before - req.reviews.len();
        req.confirmations.retain(|c| c.submission != current || c.reviewer == login);
        req.events.retain(|e| !matches!(e.step.as_str(), "review" | "confirm") || e.actor == login);
    }
    if seat == Seat::Member
        && let Some(key) = key
    {
        let id = req.id.clone();
        for r in &mut req.reviews {
            r.reviewer = pseudonym(key, &id, &r.reviewer);
        }
        for c in &mut req.confirmations {
            c.reviewer = pseudonym(key, &id, &c.reviewer);
        }
        for e in &mut req.events {
            if matches!(e.step.as_str(), "review" | "confirm" | "decide" | "release") {
                e.actor = pseudonym(key, &id, &e.actor);
            }
        }
    }
    req
}

/// The history tables of the airlock's requests (both hold the same lines).
#[derive(Clone, Copy)]
pub(crate) enum History {
    /// `output_events`.
    Outputs,
    /// `bringin_events`.
    Bringin,
}

/// Appends `line` to request `id`'s history (in the step's transaction).
pub(crate) async fn append_event(conn: &mut AnyConnection, table: History, id: &str, line: &OutputEvent) -> Result<()> {
    let (next, insert) = match table {
        History::Outputs => (
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM output_events WHERE request_id = $1",
            "INSERT INTO output_events (request_id, seq, at, actor, step, from_state, to_state, note, ledger_idx) VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8)",
        ),
        History::Bringin => (
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM bringin_events WHERE request_id = $1",
            "INSERT INTO bringin_events (request_id, seq, at, actor, step, from_state, to_state, ledger_idx) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        ),
    };
    let seq: i64 = sqlx::query_scalar(next).bind(id).fetch_one(&mut *conn).await?;
    sqlx::query(insert)
        .bind(id)
        .bind(seq)
        .bind(line.at)
        .bind(&line.actor)
        .bind(&line.step)
        .bind(&line.from)
        .bind(&line.to)
        .bind(line.ledger_index)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The history of request `id`, in order.
pub(crate) async fn load_events(conn: &mut AnyConnection, table: History, id: &str) -> Result<Vec<OutputEvent>> {
    let sql = match table {
        History::Outputs => {
            "SELECT at, actor, step, from_state, to_state, ledger_idx FROM output_events WHERE request_id = $1 ORDER BY seq"
        }
        History::Bringin => {
            "SELECT at, actor, step, from_state, to_state, ledger_idx FROM bringin_events WHERE request_id = $1 ORDER BY seq"
        }
    };
    Ok(sqlx::query(sql)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|e| {
            Ok(OutputEvent {
                at: e.try_get("at")?,
                actor: e.try_get("actor")?,
                step: e.try_get("step")?,
                from: e.try_get("from_state")?,
                to: e.try_get("to_state")?,
                ledger_index: e.try_get("ledger_idx")?,
            })
        })
        .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?)
}

/// The whole request as stored (the owner's view).
async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<OutputRequest>> {
    let Some(r) = sqlx::query(
        "SELECT id, project_id, author, name, state, submission, exception_reason, policy, package_sha256, released_at, created_at \
         FROM output_requests WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let state: String = r.try_get("state")?;
    let files = sqlx::query(
        "SELECT n, kind, name, note, bytes, sha256, sql_sha256, status, verdict, created_by, created_at FROM output_files WHERE request_id = $1 ORDER BY n",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|f| {
        Ok(OutputFile {
            n: f.try_get("n")?,
            kind: f.try_get("kind")?,
            name: f.try_get("name")?,
            note: f.try_get("note")?,
            bytes: f.try_get("bytes")?,
            sha256: f.try_get("sha256")?,
            sql_sha256: f.try_get("sql_sha256")?,
            status: f.try_get("status")?,
            verdict: f.try_get("verdict")?,
            created_by: f.try_get("created_by")?,
            created_at: f.try_get("created_at")?,
        })
    })
    .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
    let reviews = sqlx::query(
        "SELECT submission, reviewer, decision, comment, at FROM output_reviews WHERE request_id = $1 ORDER BY submission, at, reviewer",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|v| {
        Ok(ReviewLine {
            submission: v.try_get("submission")?,
            reviewer: v.try_get("reviewer")?,
            decision: v.try_get("decision")?,
            comment: v.try_get("comment")?,
            at: v.try_get("at")?,
        })
    })
    .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
    let confirmations = sqlx::query(
        "SELECT submission, reviewer, what, at FROM output_confirmations WHERE request_id = $1 ORDER BY submission, at, reviewer, what",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|c| {
        Ok(ConfirmLine {
            submission: c.try_get("submission")?,
            reviewer: c.try_get("reviewer")?,
            what: c.try_get("what")?,
            at: c.try_get("at")?,
        })
    })
    .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
    let events = load_events(conn, History::Outputs, id).await?;
    Ok(Some(OutputRequest {
        id: r.try_get("id")?,
        project: r.try_get("project_id")?,
        author: r.try_get("author")?,
        name: r.try_get("name")?,
        state: OutState::parse(&state).ok_or_else(|| WorkflowError::Internal(format!("stored output state '{state}'")))?,
        submission: r.try_get("submission")?,
        exception: r.try_get("exception_reason")?,
        policy: r.try_get("policy")?,
        package_sha256: r.try_get("package_sha256")?,
        released_at: r.try_get("released_at")?,
        created_at: r.try_get("created_at")?,
        files,
        reviews,
        hidden_votes: 0,
        confirmations,
        events,
    }))
}

/// SHA-256 of the request's content as it stands (its files by their hashes), for the ledger.
fn content_hash(req: &OutputRequest) -> Result<String> {
    #[derive(Serialize)]
    struct Canonical<'a> {
        id: &'a str,
        project: &'a str,
        author: &'a str,
        name: &'a str,
        state: &'a str,
        submission: i64,
        exception_sha256: Option<String>,
        policy: &'a str,
        files: Vec<(i64, &'a str, &'a str, &'a str, &'a str)>,
        package_sha256: Option<&'a str>,
    }
    let c = Canonical {
        id: &req.id,
        project: &req.project,
        author: &req.author,
        name: &req.name,
        state: req.state.as_str(),
        submission: req.submission,
        exception_sha256: req.exception.as_ref().map(|e| sha256_hex(e.as_bytes())),
        policy: &req.policy,
        files: req.files.iter().map(|f| (f.n, f.kind.as_str(), f.name.as_str(), f.sha256.as_str(), f.status.as_str())).collect(),
        package_sha256: req.package_sha256.as_deref(),
    };
    let json = serde_json::to_vec(&c).map_err(|e| WorkflowError::Internal(e.to_string()))?;
    Ok(sha256_hex(&json))
}
