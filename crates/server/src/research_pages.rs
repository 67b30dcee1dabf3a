//! The portal's pages of the research lifecycle (WG-6, HIC-P1, HIC-P3, HIC-IO3), Japanese first:
//! applications (apply with the catalogue's columns, follow one with its clock and history,
//! the custodian's dashboard of open applications, the intake check, votes, decisions, the
//! agreement) and the workspace (SQL, results, saved tables, end of use). Every form posts to
//! a route of its own and the answer is the page again with what happened; the rules are the
//! domain's, exactly as for the API ([`crate::research_api`]).

use crate::actions::Portal;
use crate::pages::{csrf_field, layout, message};
use crate::research_api::{research, workflow_error, workflow_status, workspace_error, workspaces};
use crate::web::{FormBody, Lang, Signed, WebError, WebResult, time_text};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use kura_accounts::Role;
use kura_accounts::session::Session;
use kura_workflows::{AppState, Application, Caller, ColumnRequest, Decision, NewApplication, Project, Summary, Viewer, WorkflowError};
use maud::{Markup, html};
use serde::Deserialize;

fn state_label(lang: Lang, s: AppState) -> &'static str {
    lang.t(s.label_ja(), s.as_str())
}

fn project_state(lang: Lang, state: &str) -> String {
    match kura_workflows::ProjectState::parse(state) {
        Some(s) => lang.t(s.label_ja(), s.as_str()).to_string(),
        None => state.to_string(),
    }
}

fn clock_cell(lang: Lang, c: &kura_workflows::clock::ClockReading) -> Markup {
    html! {
        span.overdue[c.overdue] {
            (format!("{:.1}", c.days)) " / " (c.target_days) (lang.t(" 日", " days"))
            @if c.overdue { " " (lang.t("超過", "overdue")) }
            @if !c.running && c.provisioned_after_secs.is_none() { " " (lang.t("（停止中）", "(paused)")) }
        }
    }
}

/// `GET /applications`: the applications the user may see — for custodians, every open one
/// with its clock, overdue first (the dashboard).
pub(crate) async fn list(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let s = &ctx.session;
    let list = research(&portal)?.applications(Viewer::User(&s.login)).await.map_err(workflow_error)?;
    Ok(list_page(ctx.lang, s, &list))
}

fn list_page(lang: Lang, s: &Session, list: &[Summary]) -> Response {
    let body = html! {
        @if s.role == Role::Researcher {
            p { a #new-application href="/applications/new" { (lang.t("新しい利用申請", "New application")) } }
        }
        @if list.is_empty() {
            p { (lang.t("申請はありません。", "No applications.")) }
        } @else {
            table #applications {
                tr {
                    th { "ID" } th { (lang.t("題名", "Title")) } th { (lang.t("申請者", "Applicant")) }
                    th { (lang.t("状態", "State")) } th { (lang.t("経過日数 / 目標", "Days / target")) } th { (lang.t("締切", "Round")) }
                }
                @for a in list {
                    tr id=(format!("app-{}", a.id)) {
                        td { a href=(format!("/applications/{}", a.id)) { (a.id) } }
                        td { (a.title) }
                        td { (a.applicant) }
                        td.state { (state_label(lang, a.state)) }
                        td { (clock_cell(lang, &a.clock)) }
                        td { (a.round) }
                    }
                }
            }
        }
    };
    layout(lang, lang.t("利用申請", "Applications"), Some(s), body, StatusCode::OK)
}

/// `GET /applications/new`: the application form, columns picked from the catalogue.
pub(crate) async fn new_page(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    Ok(new_form(&portal, ctx.lang, &ctx.session, None))
}

fn new_form(portal: &Portal, lang: Lang, s: &Session, error: Option<&str>) -> Response {
    let columns: Vec<(&str, &str, &str)> = portal.catalogue.columns().collect();
    let datasets: std::collections::BTreeSet<&str> = columns.iter().map(|(d, _, _)| *d).collect();
    let body = html! {
        (message(error, true))
        form method="post" action="/applications" {
            (csrf_field(&s.csrf))
            label for="title" { (lang.t("研究課題名", "Title")) }
            input #title name="title" required;
            label for="purpose" { (lang.t("研究の目的", "Purpose")) }
            textarea #purpose name="purpose" rows="3" required {}
            label for="justification" { (lang.t("公益性の説明", "Public-interest justification")) }
            textarea #justification name="justification" rows="3" {}
            label for="ethics_ref" { (lang.t("倫理審査の承認番号", "Ethics approval reference")) }
            input #ethics_ref name="ethics_ref";
            label for="dataset" { (lang.t("データセット", "Dataset")) }
            select #dataset name="dataset" {
                @for d in &datasets { option value=(d) { (d) } }
            }
            fieldset.cols #columns {
                legend { (lang.t("必要な列（最小限に）", "Columns needed (as few as possible)")) }
                @for (d, t, c) in &columns {
                    label { input type="checkbox" name="column" value=(format!("{d}.{t}.{c}")) id=(format!("col-{t}-{c}")); " " (t) "." (c) }
                }
            }
            label for="reason" { (lang.t("列が必要な理由", "Why these columns are needed")) }
            input #reason name="reason";
            label for="members" { (lang.t("共同研究者（利用者ID、カンマ区切り）", "Co-investigators (logins, comma-separated)")) }
            input #members name="members";
            label for="places" { (lang.t("利用場所（IPアドレス・CIDR、カンマ区切り）", "Places of use (IP addresses or CIDR, comma-separated)")) }
            input #places name="places";
            label for="period_days" { (lang.t("利用期間（日、空欄で既定）", "Period of use in days (empty: the default)")) }
            input #period_days name="period_days" inputmode="numeric";
            button #submit type="submit" { (lang.t("下書きを保存", "Save the draft")) }
        }
    };
    layout(
        lang,
        lang.t("新しい利用申請", "New application"),
        Some(s),
        body,
        if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK },
    )
}

/// The application form as posted (checkbox `column` repeats).
#[derive(Debug, Deserialize)]
pub struct NewForm {
    title: String,
    purpose: String,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    ethics_ref: String,
    dataset: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    members: String,
    #[serde(default)]
    places: String,
    #[serde(default)]
    period_days: String,
}

fn list_field(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

/// `POST /applications`: files the draft; the answer is its page.
pub(crate) async fn create(State(portal): State<Portal>, ctx: Signed, body: axum::body::Bytes) -> WebResult {
    let f: NewForm = serde_urlencoded::from_bytes(&body).map_err(|_| crate::web::malformed())?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|_| crate::web::malformed())?;
    let mut columns = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "column") {
        // `dataset.table.column`, from the dataset chosen.
        let rest = v.strip_prefix(&format!("{}.", f.dataset)).unwrap_or("");
        if let Some((t, c)) = rest.split_once('.') {
            columns.push(ColumnRequest { table: t.into(), column: c.into(), reason: f.reason.clone() });
        }
    }
    let period_days = match f.period_days.trim() {
        "" => None,
        d => Some(d.parse::<u32>().map_err(|_| {
            WebError::refused(StatusCode::UNPROCESSABLE_ENTITY, "利用期間は日数（整数）で", "the period of use is a number of days")
        })?),
    };
    let new = NewApplication {
        title: f.title,
        purpose: f.purpose,
        justification: f.justification,
        ethics_ref: f.ethics_ref,
        dataset: f.dataset,
        columns,
        places: list_field(&f.places),
        period_days,
        members: list_field(&f.members),
    };
    match research(&portal)?.create(&Caller::user(ctx.who.clone()), &portal.catalogue, &new).await {
        Ok(a) => Ok(Redirect::to(&format!("/applications/{}", a.id)).into_response()),
        Err(e) if !e.is_internal() => Ok(new_form(&portal, ctx.lang, &ctx.session, Some(&e.to_string()))),
        Err(e) => Err(workflow_error(e)),
    }
}

/// `GET /applications/{id}`: one application with its clock, history and the forms its viewer
/// may use.
pub(crate) async fn show(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let a = research(&portal)?.application(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    Ok(app_page(ctx.lang, &ctx.session, &a, None, StatusCode::OK))
}

fn app_page(lang: Lang, s: &Session, a: &Application, msg: Option<&str>, status: StatusCode) -> Response {
    let path = |step: &str| format!("/applications/{}/{step}", a.id);
    let mine = a.applicant == s.login;
    let body = html! {
        (message(msg, status != StatusCode::OK))
        p { strong #app-state { (state_label(lang, a.state)) } " · " (a.id) }
        table #application {
            tr { th { (lang.t("研究課題名", "Title")) } td { (a.title) } }
            tr { th { (lang.t("申請者", "Applicant")) } td { (a.applicant) } }
            tr { th { (lang.t("共同研究者", "Co-investigators")) } td { (a.members.join(", ")) } }
            tr { th { (lang.t("研究の目的", "Purpose")) } td { (a.purpose) } }
            tr { th { (lang.t("公益性", "Public interest")) } td { (a.justification) } }
            tr { th { (lang.t("倫理審査", "Ethics approval")) } td { (a.ethics_ref) } }
            tr { th { (lang.t("データセット", "Dataset")) } td { (a.dataset) } }
            tr { th { (lang.t("利用期間", "Period of use")) } td { (a.period_days) (lang.t(" 日", " days")) } }
            tr { th { (lang.t("経過日数（申請者の手元にある間は停止）", "Clock (paused while with the applicant)")) } td #clock { (clock_cell(lang, &a.clock)) } }
            @if !a.conditions.is_empty() { tr { th { (lang.t("条件", "Conditions")) } td { (a.conditions) } } }
            @if let Some(p) = &a.project {
                tr { th { (lang.t("プロジェクト", "Project")) } td { a #project-link href=(format!("/projects/{p}")) { (p) } } }
            }
        }
        h2 { (lang.t("列", "Columns")) }
        table #columns {
            tr { th { (lang.t("列", "Column")) } th { (lang.t("理由", "Reason")) } th { (lang.t("承認", "Approved")) } }
            @for c in &a.columns {
                tr { td { (c.table) "." (c.column) } td { (c.reason) } td { @if c.approved { "✓" } } }
            }
        }
        @if !a.unconfirmed.is_empty() {
            p #unconfirmed { (lang.t("参加の確認待ち: ", "Waiting for confirmation: ")) (a.unconfirmed.join(", ")) }
        }
        h2 { (lang.t("添付（研究計画書など）", "Attachments (the protocol)")) }
        @if a.attachments.is_empty() { p #no-attachments { (lang.t("添付はありません。", "No attachments.")) } }
        @else {
            table #attachments {
                @for f in &a.attachments {
                    tr {
                        td { a href=(format!("/applications/{}/attachments/{}", a.id, f.n)) download { (f.name) } }
                        td { (f.bytes) (lang.t(" バイト", " bytes")) }
                        td { code { (f.sha256) } }
                        @if mine && matches!(a.state, AppState::Draft | AppState::Returned) {
                            td {
                                form method="post" action=(path("detach")) {
                                    (csrf_field(&s.csrf))
                                    input type="hidden" name="note" value=(f.n);
                                    button type="submit" { (lang.t("外す", "Remove")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if mine && matches!(a.state, AppState::Draft | AppState::Returned) {
            form #attach-form method="post" enctype="multipart/form-data" action=(format!("/applications/{}/attachments", a.id)) {
                (csrf_field(&s.csrf))
                label for="attachment" { (lang.t("PDF を添付", "Attach a PDF")) }
                input #attachment type="file" name="file" accept=".pdf,application/pdf";
                button #attach type="submit" { (lang.t("添付する", "Attach")) }
            }
        }
        h2 { (lang.t("手続き", "Actions")) }
        @if a.unconfirmed.contains(&s.login) && matches!(a.state, AppState::Draft | AppState::Returned) {
            form method="post" action=(path("join")) { (csrf_field(&s.csrf)) button #join type="submit" { (lang.t("共同研究者として参加する", "Confirm I am a member")) } }
        }
        @if mine && matches!(a.state, AppState::Draft | AppState::Returned) {
            form method="post" action=(path("submit")) { (csrf_field(&s.csrf)) button #submit-application type="submit" { (lang.t("提出する", "Submit")) } }
        }
        @if mine && matches!(a.state, AppState::Approved | AppState::ApprovedWithConditions) {
            form method="post" action=(path("accept")) {
                (csrf_field(&s.csrf))
                p { (lang.t("利用規約と誓約事項に同意すると、プロジェクトと作業環境が作られます。", "Accepting the agreement provisions the project and its workspace.")) }
                button #accept type="submit" { (lang.t("利用規約に同意する", "Accept the agreement")) }
            }
        }
        @if s.role == Role::Custodian && a.state == AppState::Submitted {
            form method="post" action=(path("check")) {
                (csrf_field(&s.csrf))
                label for="note" { (lang.t("申請者への連絡", "Note for the applicant")) }
                input #note name="note";
                button #check-accept type="submit" name="verdict" value="accept" { (lang.t("受理して審査会へ", "Pass to the committee")) }
                " "
                button #check-return type="submit" name="verdict" value="return" { (lang.t("差し戻す", "Return")) }
            }
        }
        @if s.role == Role::Reviewer && a.state == AppState::CommitteeReview {
            form method="post" action=(path("vote")) {
                (csrf_field(&s.csrf))
                label for="comment" { (lang.t("意見", "Comment")) }
                input #comment name="note";
                button #vote-approve type="submit" name="verdict" value="approve" { (lang.t("承認に投票", "Vote to approve")) }
                " "
                button #vote-reject type="submit" name="verdict" value="reject" { (lang.t("不承認に投票", "Vote to reject")) }
            }
        }
        @if s.role == Role::Custodian && a.state == AppState::CommitteeReview {
            form method="post" action=(path("decide")) {
                (csrf_field(&s.csrf))
                fieldset.cols #grant {
                    legend { (lang.t("承認する列（外すと最小化）", "Columns to grant (untick to grant fewer)")) }
                    @for c in &a.columns {
                        label { input type="checkbox" name="column" checked value=(format!("{}.{}", c.table, c.column)) id=(format!("grant-{}-{}", c.table, c.column)); " " (c.table) "." (c.column) }
                    }
                }
                label for="conditions" { (lang.t("条件・理由", "Conditions or reason")) }
                input #conditions name="note";
                button #decide-approve type="submit" name="verdict" value="approve" { (lang.t("承認", "Approve")) }
                " "
                button #decide-return type="submit" name="verdict" value="return" { (lang.t("差し戻し", "Return")) }
                " "
                button #decide-reject type="submit" name="verdict" value="reject" { (lang.t("不承認", "Reject")) }
            }
        }
        @if mine && a.state.is_open() && a.state != AppState::Draft {
            form method="post" action=(path("withdraw")) { (csrf_field(&s.csrf)) button #withdraw type="submit" { (lang.t("取り下げる", "Withdraw")) } }
        }
        @if !a.votes.is_empty() {
            h2 { (lang.t("審査会の投票", "Committee votes")) }
            table #votes {
                @for v in &a.votes {
                    tr { td { (v.reviewer) } td { (if v.approve { lang.t("承認", "approve") } else { lang.t("不承認", "reject") }) } td { (v.comment) } }
                }
            }
        }
        h2 { (lang.t("経過", "History")) }
        table #history {
            @for e in &a.events {
                tr { td { (time_text(e.at)) } td { (e.actor) } td { (e.step) } td { (state_label(lang, e.to)) } td { (e.note) } }
            }
        }
    };
    layout(lang, &a.title, Some(s), body, status)
}

/// A step's form: `verdict` (the button pressed), `note`, and the ticked `column`s.
#[derive(Debug, Default, Deserialize)]
pub struct StepForm {
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    note: String,
}

/// `POST /applications/{id}/{step}`: a step from the portal; the answer is the page with
/// what happened (a refusal in the rule's words).
pub(crate) async fn step(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((id, step)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> WebResult {
    let f: StepForm = serde_urlencoded::from_bytes(&body).map_err(|_| crate::web::malformed())?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|_| crate::web::malformed())?;
    let r = research(&portal)?;
    let c = Caller::user(ctx.who.clone());
    let lang = ctx.lang;
    let outcome = match step.as_str() {
        "submit" => r.submit(&c, &id).await.map(|_| lang.t("提出しました", "Submitted")),
        "withdraw" => r.withdraw(&c, &id).await.map(|_| lang.t("取り下げました", "Withdrawn")),
        "join" => r.join(&c, &id).await.map(|_| lang.t("参加を確認しました", "Membership confirmed")),
        "detach" => r.detach(&c, &id, f.note.trim().parse().unwrap_or(0)).await.map(|_| lang.t("添付を外しました", "Attachment removed")),
        "check" => {
            r.check(&c, &id, f.verdict == "accept", &f.note).await.map(|_| lang.t("形式審査を記録しました", "Intake check recorded"))
        }
        "vote" => r.vote(&c, &id, f.verdict == "approve", &f.note).await.map(|_| lang.t("投票しました", "Vote recorded")),
        "decide" => {
            let decision = match f.verdict.as_str() {
                "approve" => {
                    let columns: Vec<(String, String)> = pairs
                        .iter()
                        .filter(|(k, _)| k == "column")
                        .filter_map(|(_, v)| v.split_once('.').map(|(t, c)| (t.to_string(), c.to_string())))
                        .collect();
                    // No column ticked is no column granted — never "all of them" (the API's
                    // empty list): the custodian rejects instead.
                    if columns.is_empty() {
                        let a = r.application(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
                        let msg = lang.t(
                            "承認する列を一つ以上選んでください（何も許可しないなら不承認に）",
                            "tick at least one column to grant (to grant none, reject)",
                        );
                        return Ok(app_page(lang, &ctx.session, &a, Some(msg), StatusCode::UNPROCESSABLE_ENTITY));
                    }
                    Decision::Approve { columns, conditions: f.note.clone() }
                }
                "reject" => Decision::Reject { reason: f.note.clone() },
                _ => Decision::Return { reason: f.note.clone() },
            };
            r.decide(&c, &id, &decision).await.map(|_| lang.t("決定を記録しました", "Decision recorded"))
        }
        "accept" => match r.accept(&c, &id).await {
            Ok((_, p)) => {
                workspaces(&portal)?.prepare(&p.id).map_err(workspace_error)?;
                return Ok(Redirect::to(&format!("/projects/{}", p.id)).into_response());
            }
            Err(e) => Err(e),
        },
        _ => return Err(WebError::refused(StatusCode::NOT_FOUND, "その操作はありません", "no such step")),
    };
    answer(&portal, &ctx, &id, outcome).await
}

/// The application's page after a step: what happened, or the refusal in the rule's words.
async fn answer(portal: &Portal, ctx: &Signed, id: &str, outcome: Result<&str, WorkflowError>) -> WebResult {
    let a = research(portal)?.application(Viewer::User(&ctx.session.login), id).await;
    match (outcome, a) {
        (Ok(msg), Ok(a)) => Ok(app_page(ctx.lang, &ctx.session, &a, Some(msg), StatusCode::OK)),
        (Err(e), Ok(a)) if !e.is_internal() => Ok(app_page(ctx.lang, &ctx.session, &a, Some(&e.to_string()), workflow_status(&e))),
        (Err(e), _) => Err(workflow_error(e)),
        (Ok(_), Err(e)) => Err(workflow_error(e)),
    }
}

/// `POST /applications/{id}/attachments`: the portal's upload form (multipart: `csrf`, then
/// `file`); the answer is the application's page.
pub(crate) async fn attach(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(id): Path<String>,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> WebResult {
    let mut form = form.map_err(|_| crate::web::malformed())?;
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(|_| crate::web::malformed())? {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or_default().to_string();
            let bytes = field.bytes().await.map_err(|_| crate::web::malformed())?;
            file = Some((name, bytes));
        }
    }
    let lang = ctx.lang;
    let outcome = match &file {
        Some((name, content)) if !content.is_empty() => {
            // Scanned for malware first (HIC-S1), then the domain's rules.
            workspaces(&portal)?.application_attach(&Caller::user(ctx.who.clone()), &id, name, content).await.map_err(workspace_error)
        }
        _ => Err(workflow_error(WorkflowError::Invalid {
            field: "attachment",
            detail: "PDF ファイルを選んでください / choose a PDF file".into(),
        })),
    };
    match outcome {
        Ok(_) => answer(&portal, &ctx, &id, Ok(lang.t("添付しました", "Attached"))).await,
        Err(WebError::Internal(e)) => Err(WebError::Internal(e)),
        Err(e) => {
            let a = research(&portal)?.application(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
            let (ja, en) = e.texts();
            Ok(app_page(lang, &ctx.session, &a, Some(if lang == Lang::Ja { &ja } else { &en }), e.status()))
        }
    }
}

/// `GET /projects`: the projects the user may see.
pub(crate) async fn projects(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let lang = ctx.lang;
    let list = research(&portal)?.projects(Viewer::User(&ctx.session.login)).await.map_err(workflow_error)?;
    let body = html! {
        @if list.is_empty() { p { (lang.t("プロジェクトはありません。", "No projects.")) } }
        @else {
            table #project-list {
                tr { th { "ID" } th { (lang.t("申請", "Application")) } th { (lang.t("状態", "State")) } th { (lang.t("終了予定", "Ends")) } }
                @for p in &list {
                    tr { td { a href=(format!("/projects/{}", p.id)) { (p.id) } } td { (p.application) } td { (project_state(lang, &p.state)) } td { (time_text(p.ends_at)) } }
                }
            }
        }
    };
    Ok(layout(lang, lang.t("プロジェクト", "Projects"), Some(&ctx.session), body, StatusCode::OK))
}

/// What the workspace page shows below its form: a result, or what went wrong.
struct Shown {
    msg: Option<String>,
    error: bool,
    sql: String,
    results: Vec<kura_query::StatementOutput>,
}

/// `GET /projects/{id}`: the workspace page (members) or the project's page (custodians,
/// auditors).
pub(crate) async fn project(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    let p = research(&portal)?.project(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    let shown = Shown { msg: None, error: false, sql: String::new(), results: Vec::new() };
    project_page(&portal, &ctx, &p, shown, StatusCode::OK).await
}

/// The project page with a message (the airlock's forms answer with it when they refuse).
pub(crate) async fn project_with(portal: &Portal, ctx: &Signed, id: &str, said: Option<(String, bool)>, status: StatusCode) -> WebResult {
    let p = research(portal)?.project(Viewer::User(&ctx.session.login), id).await.map_err(workflow_error)?;
    let (msg, error) = said.map_or((None, false), |(m, e)| (Some(m), e));
    project_page(portal, ctx, &p, Shown { msg, error, sql: String::new(), results: Vec::new() }, status).await
}

async fn project_page(portal: &Portal, ctx: &Signed, p: &Project, shown: Shown, status: StatusCode) -> WebResult {
    let (lang, s) = (ctx.lang, &ctx.session);
    let member = p.members.contains(&s.login);
    let ended = kura_workflows::ProjectState::parse(&p.state) == Some(kura_workflows::ProjectState::Ended);
    let saved = if member && !ended {
        workspaces(portal)?.saved_tables(&Caller::user(ctx.who.clone()), &p.id).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let path = |what: &str| format!("/projects/{}/{what}", p.id);
    let body = html! {
        (message(shown.msg.as_deref(), shown.error))
        table #project {
            tr { th { (lang.t("状態", "State")) } td #project-state { (project_state(lang, &p.state)) } }
            tr { th { (lang.t("申請", "Application")) } td { a href=(format!("/applications/{}", p.application)) { (p.application) } } }
            tr { th { (lang.t("メンバー", "Members")) } td { (p.members.join(", ")) } }
            tr { th { (lang.t("許可された列", "Granted columns")) } td { @for (t, c) in &p.columns { code { (t) "." (c) } " " } } }
            tr { th { (lang.t("終了予定", "Ends")) } td { (time_text(p.ends_at)) } }
            @if let Some(c) = &p.certificate_sha256 {
                tr { th { (lang.t("削除証明書 SHA-256", "Deletion certificate SHA-256")) } td #certificate { code { (c) } } }
            }
        }
        @if ended {
            p #ended.msg { (lang.t("このプロジェクトは利用終了しました。作業環境と保存した表は消去されています。", "This project has ended: its workspace and saved tables were destroyed.")) }
        }
        @if member && !ended {
            form method="post" action=(path("sql")) {
                (csrf_field(&s.csrf))
                label for="sql" { (lang.t("SQL（人を表す ID はこのプロジェクト専用の仮名です）", "SQL (person IDs are this project's own pseudonyms)")) }
                textarea #sql name="sql" rows="6" { (shown.sql) }
                label for="save_as" { (lang.t("結果を表として保存（任意、英小文字）", "Save the result as a table (optional, lower case)")) }
                input #save_as name="save_as";
                button #run type="submit" { (lang.t("実行", "Run")) }
            }
            p #saved-tables { (lang.t("保存した表: ", "Saved tables: ")) @if saved.is_empty() { "-" } @else { (saved.join(", ")) } }
        }
        @for (i, o) in shown.results.iter().enumerate() {
            table.result id=(format!("result-{i}")) {
                tr { @for f in o.schema.fields() { th { (f.name()) } } }
                @for b in &o.batches {
                    @for r in 0..b.num_rows().min(500) {
                        tr { @for c in b.columns() { td { (kura_query::json::cell_text(c.as_ref(), r)) } } }
                    }
                }
            }
        }
        @if member && !ended {
            (crate::airlock_pages::project_forms(lang, &s.csrf, &p.id))
        }
        @if member && !ended && s.login == p.applicant && p.state == "active" {
            form method="post" action=(path("notice")) {
                (csrf_field(&s.csrf))
                button #notice type="submit" { (lang.t("利用終了を届け出る", "Give notice of the end of use")) }
            }
        }
        @if s.role == Role::Custodian && !ended {
            form method="post" action=(path("end")) {
                (csrf_field(&s.csrf))
                p { (lang.t("作業環境の鍵を破棄し、ファイルを削除して削除証明書を発行します。元に戻せません。", "Destroys the workspace key and files and issues a deletion certificate. This cannot be undone.")) }
                button #end type="submit" { (lang.t("利用終了（消去）", "End the project (destroy)")) }
            }
        }
    };
    Ok(layout(lang, &format!("{} — {}", p.id, lang.t("作業環境", "workspace")), Some(s), body, status))
}

/// The SQL form.
#[derive(Debug, Deserialize)]
pub struct SqlForm {
    sql: String,
    #[serde(default)]
    save_as: String,
}

/// `POST /projects/{id}/sql`: runs the SQL in the project's worker; the answer is the page with
/// the results (or the statement's error).
pub(crate) async fn sql(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>, FormBody(f): FormBody<SqlForm>) -> WebResult {
    let lang = ctx.lang;
    let save = Some(f.save_as.trim()).filter(|n| !n.is_empty());
    let run = workspaces(&portal)?.run(&Caller::user(ctx.who.clone()), &id, &f.sql, save).await;
    let p = research(&portal)?.project(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    match run {
        Ok(results) => {
            let msg = save.map(|n| format!("{}{n}", lang.t("保存しました: ", "Saved as ")));
            project_page(&portal, &ctx, &p, Shown { msg, error: false, sql: f.sql, results }, StatusCode::OK).await
        }
        Err(e) => {
            let w = workspace_error(e);
            if matches!(w, WebError::Internal(_)) {
                return Err(w);
            }
            let (ja, en) = w.texts();
            let text = if lang == Lang::Ja { ja } else { en };
            project_page(
                &portal,
                &ctx,
                &p,
                Shown { msg: Some(text.into_owned()), error: true, sql: f.sql, results: Vec::new() },
                w.status(),
            )
            .await
        }
    }
}

/// `POST /projects/{id}/notice` and `…/end`.
pub(crate) async fn project_step(State(portal): State<Portal>, ctx: Signed, Path((id, step)): Path<(String, String)>) -> WebResult {
    let lang = ctx.lang;
    let c = Caller::user(ctx.who.clone());
    let msg = match step.as_str() {
        "notice" => research(&portal)?
            .notice(&c, &id)
            .await
            .map(|_| lang.t("利用終了を届け出ました", "Notice given").to_string())
            .map_err(workflow_error),
        "end" => workspaces(&portal)?
            .end(&c, &id)
            .await
            .map(|e| format!("{} {}", lang.t("利用終了しました。削除証明書:", "Ended. Deletion certificate:"), e.certificate_sha256))
            .map_err(workspace_error),
        _ => return Err(WebError::refused(StatusCode::NOT_FOUND, "その操作はありません", "no such step")),
    }?;
    let p = research(&portal)?.project(Viewer::User(&ctx.session.login), &id).await.map_err(workflow_error)?;
    project_page(&portal, &ctx, &p, Shown { msg: Some(msg), error: false, sql: String::new(), results: Vec::new() }, StatusCode::OK).await
}
