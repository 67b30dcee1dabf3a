//! The research lifecycle and the workspaces over the JSON API (WG-6, HIC-P1, HIC-P3, HIC-IO3):
//! every step of `kura application …`, `kura project …` and `kura workspace …`, for the
//! signed-in user. The rules are `kura-workflows`' and `kura-workspace`'s: a handler decodes,
//! calls, and answers; a refusal is the rule's own message with its status (403 for the wrong
//! party or a non-member, 404 for what the user may not see, 409 for the wrong state, 410 after
//! the end of use).

use crate::actions::Portal;
use crate::web::{JsonBody, Signed, WebError, WebResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use kura_workflows::{Caller, ColumnRequest, Decision, NewApplication, Research, Viewer, WorkflowError};
use kura_workspace::{WorkspaceError, Workspaces};
use serde::Deserialize;
use serde_json::json;

/// A workflow error as the API answers it.
pub fn workflow_error(e: WorkflowError) -> WebError {
    if e.is_internal() {
        return WebError::internal(&e);
    }
    WebError::bilingual(workflow_status(&e), e.to_string())
}

/// The status a refusal of the research lifecycle answers with.
pub fn workflow_status(e: &WorkflowError) -> StatusCode {
    match e {
        WorkflowError::NotFound { .. } => StatusCode::NOT_FOUND,
        WorkflowError::NotPermitted { .. }
        | WorkflowError::ProjectNotPermitted { .. }
        | WorkflowError::OutputNotPermitted { .. }
        | WorkflowError::NotMember { .. }
        | WorkflowError::ExchangeRefused { .. }
        | WorkflowError::PeriodOver { .. } => StatusCode::FORBIDDEN,
        WorkflowError::WrongState { .. }
        | WorkflowError::ProjectWrongState { .. }
        | WorkflowError::OutputWrongState { .. }
        | WorkflowError::ReleaseBlocked { .. }
        | WorkflowError::BringinRefused { .. } => StatusCode::CONFLICT,
        WorkflowError::Ended { .. } => StatusCode::GONE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// A workspace error as the API answers it: the rules' refusals as above, a statement's
/// error (refused, not granted, a limit) as 422 with its message, Kura's own failures
/// generically.
pub fn workspace_error(e: WorkspaceError) -> WebError {
    match e {
        WorkspaceError::Workflow(w) => workflow_error(w),
        WorkspaceError::Query(q) => match q {
            kura_query::QueryError::Store(_) | kura_query::QueryError::Config(_) => WebError::internal(&q),
            kura_query::QueryError::Timeout(_) => WebError::bilingual(StatusCode::REQUEST_TIMEOUT, q.to_string()),
            other => WebError::bilingual(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
        },
        WorkspaceError::Unusable(m) => WebError::bilingual(StatusCode::CONFLICT, m),
        // A scanner that cannot scan blocks, and says so (issue 17 §4); malware is the
        // upload's fault.
        e @ WorkspaceError::Scan(_) => WebError::bilingual(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        e @ WorkspaceError::Malware { .. } => WebError::bilingual(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        WorkspaceError::Blocked(m) => WebError::bilingual(StatusCode::TOO_MANY_REQUESTS, m),
        other => WebError::internal(&other),
    }
}

/// The research service of this server, or 404 where it has none.
pub(crate) fn research(portal: &Portal) -> Result<&Research, WebError> {
    portal.research.as_ref().ok_or_else(|| {
        WebError::refused(StatusCode::NOT_FOUND, "このサーバーでは申請を扱いません", "this server does not handle applications")
    })
}

/// The workspaces of this server, or 404 where it runs none.
pub(crate) fn workspaces(portal: &Portal) -> Result<&Workspaces, WebError> {
    portal.workspaces.as_ref().ok_or_else(|| {
        WebError::refused(StatusCode::NOT_FOUND, "このサーバーでは作業環境を扱いません", "this server does not run workspaces")
    })
}

fn caller(ctx: &Signed) -> Caller {
    Caller::user(ctx.who.clone())
}

/// One requested column of `POST /api/v1/applications`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnJson {
    /// Table.
    pub table: String,
    /// Column.
    pub column: String,
    /// Why the study needs it.
    #[serde(default)]
    pub reason: String,
}

/// Body of `POST /api/v1/applications` and `…/{id}/edit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationJson {
    /// Title.
    pub title: String,
    /// Purpose.
    pub purpose: String,
    /// Public-interest justification.
    #[serde(default)]
    pub justification: String,
    /// Ethics approval reference.
    #[serde(default)]
    pub ethics_ref: String,
    /// Dataset.
    pub dataset: String,
    /// Columns asked for.
    pub columns: Vec<ColumnJson>,
    /// Places of use.
    #[serde(default)]
    pub places: Vec<String>,
    /// Period of use in days.
    #[serde(default)]
    pub period_days: Option<u32>,
    /// Co-investigators.
    #[serde(default)]
    pub members: Vec<String>,
}

impl ApplicationJson {
    fn into_new(self) -> NewApplication {
        NewApplication {
            title: self.title,
            purpose: self.purpose,
            justification: self.justification,
            ethics_ref: self.ethics_ref,
            dataset: self.dataset,
            columns: self.columns.into_iter().map(|c| ColumnRequest { table: c.table, column: c.column, reason: c.reason }).collect(),
            places: self.places,
            period_days: self.period_days,
            members: self.members,
        }
    }
}

/// `GET /api/v1/applications`: the applications the user may see, open ones first, overdue
/// first (custodians see every one with its clock).
pub(crate) async fn list(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let list = research(&portal)?.applications(Viewer::User(&ctx.session.login)).await.map_err(workflow_error)?;
    Ok(Json(json!({ "applications": list })).into_response())
}

/// `POST /api/v1/applications`: a researcher files a draft.
pub(crate) async fn create(State(portal): State<Portal>, ctx: Signed, JsonBody(f): JsonBody<ApplicationJson>) -> WebResult {
    let a = research(&portal)?.create(&caller(&ctx), &portal.catalogue, &f.into_new()).await.map_err(workflow_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "application": a }))).into_response())
}

/// `GET /api/v1/applications/{id}`: one application with its clock and history.
pub(crate) async fn show(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let a = research(&portal)?.application(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    Ok(Json(json!({ "application": a })).into_response())
}

/// `POST /api/v1/applications/{id}/edit`: the applicant changes a draft or a returned one.
pub(crate) async fn edit(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(id): Path<String>,
    JsonBody(f): JsonBody<ApplicationJson>,
) -> WebResult {
    let a = research(&portal)?.edit(&caller(&ctx), &portal.catalogue, &id, &f.into_new()).await.map_err(workflow_error)?;
    Ok(Json(json!({ "application": a })).into_response())
}

/// Query of `POST /api/v1/applications/{id}/attachments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachQuery {
    /// The file's name (ending in `.pdf`).
    pub name: String,
}

/// `POST /api/v1/applications/{id}/attachments?name=protocol.pdf`: the applicant attaches a PDF
/// (the body is the file itself) to a draft or returned application.
pub(crate) async fn attach(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<AttachQuery>,
    body: axum::body::Bytes,
) -> WebResult {
    let a = workspaces(&portal)?.application_attach(&caller(&ctx), &id, &q.name, &body).await.map_err(workspace_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "application": a }))).into_response())
}

/// `POST /api/v1/applications/{id}/attachments/{n}/remove`: the applicant removes one.
pub(crate) async fn detach(State(portal): State<Portal>, ctx: Signed, Path((id, n)): Path<(String, i64)>) -> WebResult {
    let a = research(&portal)?.detach(&caller(&ctx), &id, n).await.map_err(workflow_error)?;
    Ok(Json(json!({ "application": a })).into_response())
}

/// `GET /api/v1/applications/{id}/attachments/{n}` (and the portal's
/// `/applications/{id}/attachments/{n}`): the PDF, for whoever may see the application, as a
/// download — never shown in the portal's own origin.
pub(crate) async fn attachment(State(portal): State<Portal>, ctx: Signed, Path((id, n)): Path<(String, i64)>) -> WebResult {
    let (line, content) = research(&portal)?.attachment(Viewer::User(&ctx.session.login), &id, n).await.map_err(workflow_error)?;
    // The stored name is plain text (checked when attached); the header still gets only
    // ASCII letters, digits and a few marks, the full name in RFC 5987 form.
    let ascii: String = line.name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let encoded: String = line
        .name
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"._-".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut res = content.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("content-security-policy", HeaderValue::from_static("sandbox; default-src 'none'"));
    if let Ok(v) = HeaderValue::from_str(&line.sha256) {
        h.insert("x-kura-sha256", v);
    }
    Ok(res)
}

/// Body of the steps that take a note: `check` (`verdict`: `accept` or `return`), `vote`
/// (`approve`), `decide` (`decision`: `approve`, `reject` or `return`; `columns` as
/// `TABLE.COLUMN`; `conditions`; `reason`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepJson {
    /// `accept` or `return` (check).
    #[serde(default)]
    pub verdict: String,
    /// For a vote.
    #[serde(default)]
    pub approve: Option<bool>,
    /// `approve`, `reject` or `return` (decide).
    #[serde(default)]
    pub decision: String,
    /// Granted columns, `TABLE.COLUMN` (decide; empty = all asked for).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Conditions of use (decide).
    #[serde(default)]
    pub conditions: String,
    /// A note, comment or reason.
    #[serde(default)]
    pub note: String,
}

fn bad_field(field: &str, expected: &str) -> WebError {
    WebError::refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("{field} は {expected} のどれかです"),
        format!("{field} must be one of {expected}"),
    )
}

/// `POST /api/v1/applications/{id}/{step}`: submit, withdraw, check, vote, decide, accept.
pub(crate) async fn step(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((id, step)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> WebResult {
    let f: StepJson =
        if body.is_empty() { StepJson::default() } else { serde_json::from_slice(&body).map_err(|_| crate::web::malformed())? };
    let r = research(&portal)?;
    let c = caller(&ctx);
    let app = match step.as_str() {
        "submit" => r.submit(&c, &id).await,
        "withdraw" => r.withdraw(&c, &id).await,
        "join" => r.join(&c, &id).await,
        "check" => match f.verdict.as_str() {
            "accept" => r.check(&c, &id, true, &f.note).await,
            "return" => r.check(&c, &id, false, &f.note).await,
            _ => return Err(bad_field("verdict", "accept, return")),
        },
        "vote" => match f.approve {
            Some(approve) => r.vote(&c, &id, approve, &f.note).await,
            None => return Err(bad_field("approve", "true, false")),
        },
        "decide" => {
            let decision = match f.decision.as_str() {
                "approve" => {
                    let mut columns = Vec::new();
                    for spec in &f.columns {
                        let (t, col) = spec.split_once('.').ok_or_else(|| bad_field("columns", "TABLE.COLUMN"))?;
                        columns.push((t.to_string(), col.to_string()));
                    }
                    Decision::Approve { columns, conditions: f.conditions }
                }
                "reject" => Decision::Reject { reason: f.note },
                "return" => Decision::Return { reason: f.note },
                _ => return Err(bad_field("decision", "approve, reject, return")),
            };
            r.decide(&c, &id, &decision).await
        }
        "accept" => {
            let (a, p) = r.accept(&c, &id).await.map_err(workflow_error)?;
            workspaces(&portal)?.prepare(&p.id).map_err(workspace_error)?;
            return Ok(Json(json!({ "application": a, "project": p })).into_response());
        }
        _ => return Err(WebError::refused(StatusCode::NOT_FOUND, "その操作はありません", "no such step")),
    };
    Ok(Json(json!({ "application": app.map_err(workflow_error)? })).into_response())
}

/// `GET /api/v1/projects`: the projects the user may see.
pub(crate) async fn projects(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let list = research(&portal)?.projects(Viewer::User(&ctx.session.login)).await.map_err(workflow_error)?;
    Ok(Json(json!({ "projects": list })).into_response())
}

/// `GET /api/v1/projects/{id}`: one project (its members, custodians and auditors).
pub(crate) async fn project(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let p = research(&portal)?.project(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    Ok(Json(json!({ "project": p })).into_response())
}

/// `POST /api/v1/projects/{id}/notice`: the applicant gives notice of the end of use.
pub(crate) async fn notice(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let p = research(&portal)?.notice(&caller(&ctx), &id).await.map_err(workflow_error)?;
    Ok(Json(json!({ "project": p })).into_response())
}

/// `POST /api/v1/projects/{id}/end`: a custodian ends the project; the answer carries the
/// deletion certificate and its `.tlog-proof` (text).
pub(crate) async fn end(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let w = workspaces(&portal)?;
    let end = w.end(&caller(&ctx), &id).await.map_err(workspace_error)?;
    let (certificate, proof) = w.certificate(&id).map_err(workspace_error)?;
    Ok(Json(json!({
        "project": end.project,
        "certificate_sha256": end.certificate_sha256,
        "ledger_entry": end.entry,
        "certificate": String::from_utf8_lossy(&certificate),
        "proof": proof.map(|p| String::from_utf8_lossy(&p).into_owned()),
    }))
    .into_response())
}

/// `GET /api/v1/projects/{id}/certificate`: the deletion certificate of an ended project and
/// its `.tlog-proof`, for its members, custodians and auditors.
pub(crate) async fn certificate(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let p = research(&portal)?.project(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    if p.certificate_sha256.is_none() {
        return Err(WebError::refused(StatusCode::NOT_FOUND, "削除証明書はまだありません", "the project has no deletion certificate yet"));
    }
    let (certificate, proof) = workspaces(&portal)?.certificate(&p.id).map_err(workspace_error)?;
    Ok(Json(json!({
        "certificate": String::from_utf8_lossy(&certificate),
        "proof": proof.map(|p| String::from_utf8_lossy(&p).into_owned()),
    }))
    .into_response())
}

/// Body of `POST /api/v1/projects/{id}/sql`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlJson {
    /// The script (`;`-separated statements).
    pub sql: String,
    /// Save the last result as this workspace table.
    #[serde(default)]
    pub save_as: Option<String>,
}

/// `POST /api/v1/projects/{id}/sql`: runs SQL in the project's workspace (members only); each
/// statement's columns and rows (JSON as `kura sql --format json` writes them).
pub(crate) async fn sql(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>, JsonBody(f): JsonBody<SqlJson>) -> WebResult {
    let w = workspaces(&portal)?;
    let outputs = w.run(&caller(&ctx), &id, &f.sql, f.save_as.as_deref()).await.map_err(workspace_error)?;
    Ok(Json(json!({ "statements": statements_json(&outputs)?, "saved_tables": w.saved_tables(&caller(&ctx), &id).await.map_err(workspace_error)? }))
        .into_response())
}

/// Each statement's output as JSON.
pub fn statements_json(outputs: &[kura_query::StatementOutput]) -> Result<Vec<serde_json::Value>, WebError> {
    outputs
        .iter()
        .map(|o| {
            let columns: Vec<&str> = o.schema.fields().iter().map(|f| f.name().as_str()).collect();
            let rows = kura_query::json::rows(&o.batches).map_err(|e| WebError::internal(&e))?;
            let kind = match &o.kind {
                kura_query::StatementKind::Query => "query".to_string(),
                kura_query::StatementKind::Explain => "explain".to_string(),
                kura_query::StatementKind::Introspection => "introspection".to_string(),
                kura_query::StatementKind::View(v) => format!("view {v}"),
            };
            Ok(json!({ "sql": o.sql, "kind": kind, "columns": columns, "rows": rows, "elapsed_ms": o.elapsed.as_millis() as u64 }))
        })
        .collect()
}

/// `GET /api/v1/projects/{id}/tables`: the workspace's saved tables (members only).
pub(crate) async fn tables(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let t = workspaces(&portal)?.saved_tables(&caller(&ctx), &id).await.map_err(workspace_error)?;
    Ok(Json(json!({ "saved_tables": t })).into_response())
}

/// `GET /api/v1/projects/{id}/workspace`: the worker's confinement (members only).
pub(crate) async fn status(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let w = workspaces(&portal)?;
    research(&portal)?.workspace(&caller(&ctx), &id).await.map_err(workflow_error)?;
    let s = w.status(&id).await.map_err(workspace_error)?;
    Ok(Json(json!({ "status": s })).into_response())
}

/// `GET /api/v1/samples`: the sample datasets (HIC-P2).
pub(crate) async fn samples(State(portal): State<Portal>) -> WebResult {
    let list = research(&portal)?.samples().await.map_err(workflow_error)?;
    Ok(Json(json!({ "samples": list })).into_response())
}

/// Body of `POST /api/v1/samples/{dataset}/publish`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishJson {
    /// What the sample is for.
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/samples/{dataset}/{action}`: a custodian publishes (`publish`, body
/// `{"note": …}`) or withdraws (`withdraw`) a sample dataset.
pub(crate) async fn sample_action(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((dataset, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> WebResult {
    let f: PublishJson =
        if body.is_empty() { PublishJson::default() } else { serde_json::from_slice(&body).map_err(|_| crate::web::malformed())? };
    match action.as_str() {
        "publish" => {
            let s = workspaces(&portal)?.publish_sample(&caller(&ctx), &dataset, &f.note).await.map_err(workspace_error)?;
            Ok((StatusCode::CREATED, Json(json!({ "sample": s }))).into_response())
        }
        "withdraw" => {
            research(&portal)?.withdraw_sample(&caller(&ctx), &dataset).await.map_err(workflow_error)?;
            Ok(Json(json!({ "withdrawn": dataset })).into_response())
        }
        _ => Err(WebError::refused(StatusCode::NOT_FOUND, "その操作はありません", "no such action")),
    }
}

/// `POST /api/v1/samples/{dataset}/sql`: SQL on a sample dataset, for any researcher.
pub(crate) async fn sample_sql(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(dataset): Path<String>,
    JsonBody(f): JsonBody<SqlJson>,
) -> WebResult {
    if f.save_as.is_some() {
        return Err(WebError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "見本データでは表を保存できません",
            "tables cannot be saved with a sample dataset",
        ));
    }
    let outputs = workspaces(&portal)?.run_sample(&caller(&ctx), &dataset, &f.sql).await.map_err(workspace_error)?;
    Ok(Json(json!({ "statements": statements_json(&outputs)? })).into_response())
}

/// `POST /api/v1/projects/{id}/tables/{name}/drop`: a member removes a saved table.
pub(crate) async fn drop_table(State(portal): State<Portal>, ctx: Signed, Path((id, name)): Path<(String, String)>) -> WebResult {
    let w = workspaces(&portal)?;
    w.drop_table(&caller(&ctx), &id, &name).await.map_err(workspace_error)?;
    Ok(Json(json!({ "saved_tables": w.saved_tables(&caller(&ctx), &id).await.map_err(workspace_error)? })).into_response())
}
