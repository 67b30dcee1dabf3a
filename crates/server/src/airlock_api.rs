//! The airlock over the JSON API (issue 17, issue 22; HIC-IO1, HIC-IO2, HIC-S1, HIC-S14): every
//! step of `kura output …`, `kura bringin …` and `kura scanner status`, for the signed-in user.
//! The rules are `kura-workflows`' and `kura-workspace`'s: a handler decodes, calls, and
//! answers; refusals carry the rule's own message and status (403 wrong party, 404 not visible,
//! 409 wrong state, 422 a bad field or malware found, 503 a scanner that cannot scan).

use crate::actions::Portal;
use crate::research_api::{research, workflow_error, workspace_error, workspaces};
use crate::web::{JsonBody, Signed, WebError, WebResult};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use kura_workflows::{Caller, OutputRequest, ReviewDecision, Viewer};
use serde::Deserialize;
use serde_json::{Value, json};

fn caller(ctx: &Signed) -> Caller {
    Caller::user(ctx.who.clone())
}

fn bad_field(field: &str, expected: &str) -> WebError {
    WebError::refused(StatusCode::UNPROCESSABLE_ENTITY, format!("{field} は {expected} です"), format!("{field} must be {expected}"))
}

/// A request with each file's automatic verdict as JSON (cell by cell for tables).
fn request_json(r: &OutputRequest) -> Value {
    let mut v = json!(r);
    if let Some(files) = v.get_mut("files").and_then(Value::as_array_mut) {
        for f in files {
            let verdict =
                f.get("verdict").and_then(Value::as_str).and_then(|s| serde_json::from_str::<Value>(s).ok()).unwrap_or(Value::Null);
            f["verdict"] = verdict;
        }
    }
    v
}

/// Body of `POST /api/v1/projects/{id}/outputs` and `…/outputs/{id}/tables`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableJson {
    /// The request's (or the table's file) name.
    pub name: String,
    /// One SELECT run in the workspace.
    pub query: String,
    /// What it shows, population, period.
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/projects/{id}/outputs`: a member starts an output request with a table.
pub(crate) async fn output_new(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(project): Path<String>,
    JsonBody(t): JsonBody<TableJson>,
) -> WebResult {
    let r = workspaces(&portal)?.output_new(&caller(&ctx), &project, &t.name, &t.query, &t.note).await.map_err(workspace_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "output": as_seen(&research(&portal)?.outputs(), &ctx, &r).await? }))).into_response())
}

/// `GET /api/v1/outputs`: the requests the user may see.
pub(crate) async fn outputs(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let list = research(&portal)?.outputs().list(Viewer::User(&ctx.session.login)).await.map_err(workflow_error)?;
    Ok(Json(json!({ "outputs": list })).into_response())
}

/// `GET /api/v1/outputs/{id}`: one request with its files' verdicts (votes blind until both
/// have voted).
pub(crate) async fn output(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let r = research(&portal)?.outputs().request(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    Ok(Json(json!({ "output": request_json(&r) })).into_response())
}

/// `POST /api/v1/outputs/{id}/tables`: the author adds another query's table.
pub(crate) async fn output_table(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(id): Path<String>,
    JsonBody(t): JsonBody<TableJson>,
) -> WebResult {
    let r = workspaces(&portal)?.output_add_query(&caller(&ctx), &id, &t.name, &t.query, &t.note).await.map_err(workspace_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "output": as_seen(&research(&portal)?.outputs(), &ctx, &r).await? }))).into_response())
}

/// Query of the file uploads: `?name=F&note=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// The file's name.
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/outputs/{id}/files?name=F&note=N`: the author adds a file (the body is the
/// file): scanned, checked on its values, always needing both reviewers' confirmation.
pub(crate) async fn output_file(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    body: axum::body::Bytes,
) -> WebResult {
    let r = workspaces(&portal)?.output_add_file(&caller(&ctx), &id, &q.name, &body, &q.note).await.map_err(workspace_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "output": as_seen(&research(&portal)?.outputs(), &ctx, &r).await? }))).into_response())
}

/// Body of `POST /api/v1/outputs/{id}/{step}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutStepJson {
    /// `review`: `approve`, `changes` or `reject`.
    #[serde(default)]
    pub decision: String,
    /// `review`: a comment.
    #[serde(default)]
    pub comment: String,
    /// `exception`: the reason.
    #[serde(default)]
    pub reason: String,
    /// `confirm`: the file's number …
    #[serde(default)]
    pub file: Option<i64>,
    /// … or the exception.
    #[serde(default)]
    pub exception: bool,
}

/// `POST /api/v1/outputs/{id}/{step}`: submit, withdraw, exception, review, confirm, release.
pub(crate) async fn output_step(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((id, step)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> WebResult {
    let f: OutStepJson =
        if body.is_empty() { OutStepJson::default() } else { serde_json::from_slice(&body).map_err(|_| crate::web::malformed())? };
    let outputs = research(&portal)?.outputs();
    let c = caller(&ctx);
    let r = match step.as_str() {
        "submit" => outputs.submit(&c, &id).await.map_err(workflow_error)?,
        "withdraw" => outputs.withdraw(&c, &id).await.map_err(workflow_error)?,
        "exception" => outputs.exception(&c, &id, &f.reason).await.map_err(workflow_error)?,
        "review" => {
            let decision = match f.decision.as_str() {
                "approve" => ReviewDecision::Approve,
                "changes" => ReviewDecision::Changes,
                "reject" => ReviewDecision::Reject,
                _ => return Err(bad_field("decision", "approve, changes, reject")),
            };
            outputs.review(&c, &id, decision, &f.comment).await.map_err(workflow_error)?
        }
        "confirm" => {
            let what = match (f.file, f.exception) {
                (Some(n), false) => format!("file:{n}"),
                (None, true) => "exception".to_string(),
                _ => return Err(bad_field("file / exception", "one of a file number or exception: true")),
            };
            outputs.confirm(&c, &id, &what).await.map_err(workflow_error)?
        }
        "release" => {
            let (r, proof) = workspaces(&portal)?.output_release(&c, &id).await.map_err(workspace_error)?;
            return Ok(Json(json!({ "output": as_seen(&outputs, &ctx, &r).await?, "proof": proof.is_ok() })).into_response());
        }
        _ => return Err(WebError::refused(StatusCode::NOT_FOUND, "その手続きはありません", "no such step")),
    };
    Ok(Json(json!({ "output": as_seen(&outputs, &ctx, &r).await? })).into_response())
}

/// The request after a step as the caller may see it (reviewers by pseudonym for the
/// project's members, votes blind): only its id and state where the step took it out of the
/// caller's sight (votes that sent it back to its author).
async fn as_seen(outputs: &kura_workflows::Outputs, ctx: &Signed, r: &OutputRequest) -> std::result::Result<Value, WebError> {
    match outputs.request(Viewer::User(&ctx.session.login), &r.id).await {
        Ok(seen) => Ok(request_json(&seen)),
        Err(kura_workflows::WorkflowError::NotFound { .. }) => Ok(json!({ "id": r.id, "state": r.state })),
        Err(e) => Err(workflow_error(e)),
    }
}

/// `GET /api/v1/outputs/{id}/package/{name}`: one file of a released package (its files,
/// `manifest.json`, `release.tlog-proof`), for the project's members, as a download.
pub(crate) async fn output_package(State(portal): State<Portal>, ctx: Signed, Path((id, name)): Path<(String, String)>) -> WebResult {
    let content = workspaces(&portal)?.output_package_file(&caller(&ctx), &id, &name).await.map_err(workspace_error)?;
    Ok(download(&name, content))
}

/// `GET /api/v1/outputs/{id}/files/{n}` (and the portal's `/outputs/{id}/files/{n}`): file `n`
/// of a request, for whoever may see the request (its members; reviewers and custodians once it
/// is submitted), as a download; recorded in the ledger.
pub(crate) async fn output_file_content(State(portal): State<Portal>, ctx: Signed, Path((id, n)): Path<(String, i64)>) -> WebResult {
    let (req, content) = workspaces(&portal)?.output_file(&caller(&ctx), &id, n).await.map_err(workspace_error)?;
    let name = req.files.iter().find(|f| f.n == n).map_or("file", |f| f.name.as_str());
    Ok(download(name, content))
}

/// A file as a download, never shown in the portal's origin.
pub(crate) fn download(name: &str, content: Vec<u8>) -> axum::response::Response {
    let ascii: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let mut res = content.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("content-security-policy", HeaderValue::from_static("sandbox; default-src 'none'"));
    res
}

/// `POST /api/v1/projects/{id}/bringin?name=F&note=N`: a member brings a file in (the body is
/// the file): scanned at once; malware is refused (422) and recorded.
pub(crate) async fn bringin_upload(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(project): Path<String>,
    Query(q): Query<FileQuery>,
    body: axum::body::Bytes,
) -> WebResult {
    let r = workspaces(&portal)?.bringin_upload(&caller(&ctx), &project, &q.name, &body, &q.note).await.map_err(workspace_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "bringin": r }))).into_response())
}

/// `GET /api/v1/bringin`: the requests the user may see, waiting ones first.
pub(crate) async fn bringins(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let list = research(&portal)?.bringins().list(Viewer::User(&ctx.session.login), None).await.map_err(workflow_error)?;
    Ok(Json(json!({ "bringin": list })).into_response())
}

/// `GET /api/v1/bringin/{id}`: one request.
pub(crate) async fn bringin(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let r = research(&portal)?.bringins().request(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    Ok(Json(json!({ "bringin": r })).into_response())
}

/// Body of `POST /api/v1/bringin/{id}/{step}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InStepJson {
    /// `review`: approve (true) or reject (false).
    #[serde(default)]
    pub approve: Option<bool>,
    /// A comment.
    #[serde(default)]
    pub comment: String,
}

/// `POST /api/v1/bringin/{id}/{step}`: `review` (a custodian outside the project) or
/// `withdraw` (its author).
pub(crate) async fn bringin_step(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((id, step)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> WebResult {
    let f: InStepJson =
        if body.is_empty() { InStepJson::default() } else { serde_json::from_slice(&body).map_err(|_| crate::web::malformed())? };
    let c = caller(&ctx);
    let r = match step.as_str() {
        "review" => {
            let approve = f.approve.ok_or_else(|| bad_field("approve", "true or false"))?;
            workspaces(&portal)?.bringin_review(&c, &id, approve, &f.comment).await.map_err(workspace_error)?
        }
        "withdraw" => workspaces(&portal)?.bringin_withdraw(&c, &id).await.map_err(workspace_error)?,
        _ => return Err(WebError::refused(StatusCode::NOT_FOUND, "その手続きはありません", "no such step")),
    };
    Ok(Json(json!({ "bringin": r })).into_response())
}

/// `GET /api/v1/bringin/{id}/content`: an approved file, for the project's members.
pub(crate) async fn bringin_content(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let (r, content) = workspaces(&portal)?.bringin_content(&caller(&ctx), &id).await.map_err(workspace_error)?;
    Ok(download(&r.name, content))
}

/// `GET /api/v1/scanner`: the malware scanner's engine, signatures and self-test, and the
/// latest detections (custodians and operators; HIC-S1). 503 when it cannot scan.
pub(crate) async fn scanner(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let detections = research(&portal)?.detections(Viewer::User(&ctx.session.login), 50).await.map_err(workflow_error)?;
    let status = workspaces(&portal)?.scanner_status().await;
    let code = if status.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "ok": status.is_ok(),
        "engine": status.as_ref().ok(),
        "error": status.as_ref().err().map(|e| e.to_string()),
        "detections": detections,
    });
    Ok((code, Json(body)).into_response())
}
