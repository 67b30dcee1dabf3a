//! Files between institutions over the JSON API (issue 18 §3; HX-7, HX-8, NET-3, NET-4): every
//! step of `kura exchange send|list|get|trail|delete` for a signed-in provider. The rules are
//! `kura-workflows`'; a transfer the caller's institution neither sent nor received answers 404
//! with the same words as an identifier nobody used.
//!
//! - `POST /api/v1/exchange?name=F&to=INSTITUTION|group=G&note=N` (the body is the file):
//!   scanned, sealed, recorded; 201 with the transfer.
//! - `GET /api/v1/exchange`: the transfers the institution sent or received.
//! - `GET /api/v1/exchange/{id}`: one transfer and its trail (each step with its ledger entry).
//! - `GET /api/v1/exchange/{id}/content`: the file (a download, recorded in the trail).
//! - `POST /api/v1/exchange/{id}/delete`: the sender's institution deletes it.

use crate::actions::Portal;
use crate::airlock_api::download;
use crate::research_api::{workflow_error, workspace_error, workspaces};
use crate::web::{Signed, WebError, WebResult};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use kura_workflows::{Caller, Exchanges, NewTransfer, Recipient};
use serde::Deserialize;
use serde_json::json;

fn caller(ctx: &Signed) -> Caller {
    Caller::user(ctx.who.clone())
}

/// The exchange of this server, or 404 where it has none.
pub(crate) fn exchanges(portal: &Portal) -> Result<&Exchanges, WebError> {
    portal.exchanges.as_ref().ok_or_else(|| {
        WebError::refused(StatusCode::NOT_FOUND, "このサーバーではファイルの送受信を扱いません", "this server does not exchange files")
    })
}

/// Query of `POST /api/v1/exchange`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendQuery {
    /// The file's name.
    pub name: String,
    /// The receiving institution's code.
    #[serde(default)]
    pub to: Option<String>,
    /// Or a closed group the sender's institution belongs to.
    #[serde(default)]
    pub group: Option<String>,
    /// What it is.
    #[serde(default)]
    pub note: String,
}

/// The receiver of a send: exactly one of `to` and `group`.
pub(crate) fn recipient(to: Option<String>, group: Option<String>) -> Result<Recipient, WebError> {
    match (to.filter(|t| !t.is_empty()), group.filter(|g| !g.is_empty())) {
        (Some(code), None) => Ok(Recipient::Institution(code)),
        (None, Some(g)) => Ok(Recipient::Group(g)),
        _ => Err(WebError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "受信機関（to）か閉域グループ（group）のどちらか一方を指定してください",
            "give either the receiving institution (to) or a closed group (group), not both",
        )),
    }
}

/// `POST /api/v1/exchange?…`: sends the body as a file.
pub(crate) async fn send(State(portal): State<Portal>, ctx: Signed, Query(q): Query<SendQuery>, body: axum::body::Bytes) -> WebResult {
    let to = recipient(q.to, q.group)?;
    let file = NewTransfer { name: q.name, note: q.note, to };
    let t = workspaces(&portal)?.exchange_send(exchanges(&portal)?, &caller(&ctx), &file, &body).await.map_err(workspace_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "transfer": t }))).into_response())
}

/// `GET /api/v1/exchange`: the transfers the caller's institution sent or received.
pub(crate) async fn list(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let list = exchanges(&portal)?.list(&caller(&ctx)).await.map_err(workflow_error)?;
    Ok(Json(json!({ "transfers": list })).into_response())
}

/// `GET /api/v1/exchange/{id}`: a transfer and its trail.
pub(crate) async fn show(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let (t, trail) = exchanges(&portal)?.trail(&caller(&ctx), &id).await.map_err(workflow_error)?;
    Ok(Json(json!({ "transfer": t, "trail": trail })).into_response())
}

/// `GET /api/v1/exchange/{id}/content`: the file, recorded as downloaded.
pub(crate) async fn content(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let (t, bytes) = exchanges(&portal)?.download(&caller(&ctx), &id).await.map_err(workflow_error)?;
    Ok(download(&t.name, bytes))
}

/// `POST /api/v1/exchange/{id}/delete`: the sender's institution deletes it.
pub(crate) async fn delete(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let t = exchanges(&portal)?.delete(&caller(&ctx), &id).await.map_err(workflow_error)?;
    Ok(Json(json!({ "transfer": t })).into_response())
}
