//! The portal's pages of the exchange between institutions (issue 18 §3; HX-7, HX-8, HX-11),
//! Japanese first, for providers: the files the institution sent and received with a form to
//! send one (to an institution or a closed group), and each transfer's page with its trail
//! (the same for sender and receivers), the download and, for the sender, the deletion.
//! These pages pass the front door like every other: a second concurrent sign-in of the same
//! account asks for confirmation first (HX-11). The rules are the domain's, as for the API
//! ([`crate::exchange_api`]).

use crate::actions::Portal;
use crate::airlock_pages::said;
use crate::exchange_api::{exchanges, recipient};
use crate::pages::{csrf_field, layout, message, post_button};
use crate::research_api::{workflow_error, workspace_error, workspaces};
use crate::web::{Lang, Signed, WebError, WebResult, time_text};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use kura_workflows::{Caller, NewTransfer, XState};
use maud::html;

fn caller(ctx: &Signed) -> Caller {
    Caller::user(ctx.who.clone())
}

fn state(lang: Lang, s: XState) -> &'static str {
    lang.t(s.label_ja(), s.as_str())
}

/// `GET /exchange`: the transfers and the form to send a file.
pub(crate) async fn list(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    list_page(&portal, &ctx, None, StatusCode::OK).await
}

async fn list_page(portal: &Portal, ctx: &Signed, said: Option<(String, bool)>, status: StatusCode) -> WebResult {
    let (lang, s) = (ctx.lang, &ctx.session);
    let x = exchanges(portal)?;
    let list = x.list(&caller(ctx)).await.map_err(workflow_error)?;
    let body = html! {
        @if let Some((m, error)) = &said { (message(Some(m), *error)) }
        h2 { (lang.t("ファイルを送る", "Send a file")) }
        p { (lang.t(
            "送ったファイルは、送信した機関と送信時に指定した受信機関だけが見られます。ウイルス検査のうえ暗号化して保存し、保存期間を過ぎると削除します。",
            "Only your institution and the receivers you name now can see the file. It is scanned for malware, stored encrypted, and deleted when its retention period is over.")) }
        form #exchange-send method="post" action="/exchange" enctype="multipart/form-data" {
            (csrf_field(&s.csrf))
            label for="x-file" { (lang.t("ファイル", "File")) }
            input #x-file type="file" name="file" required;
            label for="x-to" { (lang.t("受信機関のコード（10桁）", "The receiving institution's code (10 digits)")) }
            input #x-to name="to" inputmode="numeric";
            label for="x-group" { (lang.t("または閉域グループ名", "or a closed group")) }
            input #x-group name="group";
            label for="x-note" { (lang.t("説明（受信側に表示）", "Note (shown to the receivers)")) }
            input #x-note name="note";
            button #x-submit type="submit" { (lang.t("送信", "Send")) }
        }
        h2 { (lang.t("送受信したファイル", "Files sent and received")) }
        @if list.is_empty() {
            p #no-transfers { (lang.t("送受信したファイルはありません。", "No file sent or received.")) }
        } @else {
            table #transfers {
                tr {
                    th { "ID" } th { (lang.t("ファイル", "File")) } th { (lang.t("送信元", "From")) } th { (lang.t("宛先", "To")) }
                    th { (lang.t("状態", "State")) } th { (lang.t("送信日時", "Sent")) }
                }
                @for t in &list {
                    tr id=(format!("x-{}", t.id)) {
                        td { a href=(format!("/exchange/{}", t.id)) { (t.id) } }
                        td { (t.name) }
                        td { (t.sender_institution) }
                        td { (t.addressed_to) }
                        td.state { (state(lang, t.state)) }
                        td { (time_text(t.created_at)) }
                    }
                }
            }
        }
    };
    Ok(layout(lang, lang.t("機関間のファイル送受信", "Files between institutions"), Some(s), body, status))
}

/// `POST /exchange`: the send form (multipart: `file`, `to` or `group`, `note`).
pub(crate) async fn send(
    State(portal): State<Portal>,
    ctx: Signed,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> WebResult {
    let mut form = form.map_err(|_| crate::web::malformed())?;
    let (mut file, mut to, mut group, mut note) = (None, String::new(), String::new(), String::new());
    while let Some(field) = form.next_field().await.map_err(|_| crate::web::malformed())? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_string();
                file = Some((name, field.bytes().await.map_err(|_| crate::web::malformed())?));
            }
            Some("to") => to = field.text().await.map_err(|_| crate::web::malformed())?.trim().to_string(),
            Some("group") => group = field.text().await.map_err(|_| crate::web::malformed())?.trim().to_string(),
            Some("note") => note = field.text().await.map_err(|_| crate::web::malformed())?,
            _ => {}
        }
    }
    let outcome = async {
        let (name, content) = file
            .filter(|(_, c)| !c.is_empty())
            .ok_or_else(|| WebError::refused(StatusCode::UNPROCESSABLE_ENTITY, "ファイルを選んでください", "choose a file"))?;
        let to = recipient(Some(to), Some(group))?;
        let x = exchanges(&portal)?;
        workspaces(&portal)?.exchange_send(x, &caller(&ctx), &NewTransfer { name, note, to }, &content).await.map_err(workspace_error)
    }
    .await;
    match outcome {
        Ok(t) => Ok(Redirect::to(&format!("/exchange/{}", t.id)).into_response()),
        Err(e) => {
            let (text, status) = said(ctx.lang, e)?;
            list_page(&portal, &ctx, Some((text, true)), status).await
        }
    }
}

/// `GET /exchange/{id}`: one transfer and its trail.
pub(crate) async fn show(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    show_page(&portal, &ctx, &id, None, StatusCode::OK).await
}

async fn show_page(portal: &Portal, ctx: &Signed, id: &str, said: Option<(String, bool)>, status: StatusCode) -> WebResult {
    let (lang, s) = (ctx.lang, &ctx.session);
    let (t, trail) = exchanges(portal)?.trail(&caller(ctx), id).await.map_err(workflow_error)?;
    let own = ctx.who.actor.institution == t.sender_institution;
    let body = html! {
        @if let Some((m, error)) = &said { (message(Some(m), *error)) }
        table #transfer {
            tr { th { "ID" } td { (t.id) } }
            tr { th { (lang.t("ファイル", "File")) } td #x-name { (t.name) " (" (t.bytes) " bytes)" } }
            tr { th { (lang.t("状態", "State")) } td #x-state { (state(lang, t.state)) } }
            tr { th { (lang.t("送信元", "From")) } td { (t.sender_institution) " (" (t.sender) ")" } }
            tr { th { (lang.t("宛先", "To")) } td { (t.addressed_to) } }
            tr { th { (lang.t("受信機関", "Receivers")) } td #x-receivers { (t.receivers.join(", ")) } }
            tr { th { "SHA-256" } td { code { (t.sha256) } } }
            tr { th { (lang.t("説明", "Note")) } td { (t.note) } }
            tr { th { (lang.t("削除予定", "Deleted by")) } td { (time_text(t.expires_at)) } }
        }
        @if t.state == XState::Available {
            p { a #x-content href=(format!("/api/v1/exchange/{id}/content")) download=(t.name) { (lang.t("ファイルを受け取る（証跡に残ります）", "Download the file (recorded in its trail)")) } }
            @if own {
                (post_button(&format!("/exchange/{id}/delete"), &s.csrf, lang.t("今すぐ削除", "Delete now"), false))
            }
        }
        h2 { (lang.t("証跡（送信側・受信側で同じ）", "Trail (the same for sender and receivers)")) }
        table #x-trail {
            tr { th { "#" } th { (lang.t("日時", "When")) } th { (lang.t("操作", "Step")) } th { (lang.t("操作者", "By")) } th { (lang.t("台帳", "Ledger")) } }
            @for e in &trail {
                tr {
                    td { (e.seq) }
                    td { (time_text(e.at)) }
                    td.step { (lang.t(e.step.label_ja(), e.step.as_str())) }
                    td { (e.actor) @if !e.institution.is_empty() { " (" (e.institution) ")" } }
                    td { (e.ledger_index) }
                }
            }
        }
        p { a href="/exchange" { (lang.t("一覧へ", "Back to the list")) } }
    };
    Ok(layout(lang, lang.t("送受信ファイル", "Transfer"), Some(s), body, status))
}

/// `POST /exchange/{id}/delete`: the sender's institution deletes it.
pub(crate) async fn delete(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    match exchanges(&portal)?.delete(&caller(&ctx), &id).await.map_err(workflow_error) {
        Ok(_) => show_page(&portal, &ctx, &id, Some((ctx.lang.t("削除しました。", "Deleted.").into(), false)), StatusCode::OK).await,
        Err(e) => {
            let (text, status) = said(ctx.lang, e)?;
            if status == StatusCode::NOT_FOUND {
                return Err(WebError::refused(status, text.clone(), text));
            }
            show_page(&portal, &ctx, &id, Some((text, true)), status).await
        }
    }
}
