//! The portal's pages of the airlock (issue 17 "Interfaces", issue 22; HIC-IO1, HIC-IO2,
//! HIC-S1, HIC-S14), Japanese first:
//!
//! - the researcher's **request builder**: a table made from a query in the workspace (project
//!   page), more tables added on the request's page, each shown with its cells coloured by the
//!   automatic verdict (pass, review, fail; suppressed and rounded marked), the exception
//!   request, submit and withdraw;
//! - the **reviewers' queue** and review page: the files, their evidence verdicts, the vote
//!   (approve, changes, reject) — blind: the other reviewer's vote is not on the page until
//!   both have voted, because the domain does not hand it out ([`kura_workflows::Outputs`]);
//!   confirmation of files no query made and of the exception;
//! - the **custodian's release queue** (approved requests first) and the release, and the
//!   package's files for the project's members once released;
//! - **bring-in**: the upload form on the project page, the custodian's queue of files waiting,
//!   approve or reject.
//!
//! Every rule is the domain's, as for the API ([`crate::airlock_api`]); a page only shows what
//! the domain lets the viewer see, and every form posts to a route of its own whose answer is
//! the page again with what happened.

use crate::actions::Portal;
use crate::pages::{csrf_field, layout, message};
use crate::research_api::{research, workflow_error, workspace_error, workspaces};
use crate::web::{FormBody, Lang, Signed, WebError, WebResult, time_text};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use kura_accounts::Role;
use kura_disclosure::table::Action;
use kura_workflows::{Caller, InState, OutState, ReviewDecision, Viewer};
use kura_workspace::airlock::{TableView, table_view};
use maud::{Markup, html};
use serde::Deserialize;

fn out_state(lang: Lang, s: OutState) -> &'static str {
    lang.t(s.label_ja(), s.as_str())
}

fn in_state(lang: Lang, s: InState) -> &'static str {
    lang.t(s.label_ja(), s.as_str())
}

fn status_label(lang: Lang, s: &str) -> &'static str {
    match s {
        "pass" => lang.t("合格", "pass"),
        "review" => lang.t("要確認", "review"),
        _ => lang.t("不合格", "fail"),
    }
}

/// A request's history (output or bring-in: the same lines), each step with its ledger entry.
fn history(lang: Lang, id: &str, events: &[kura_workflows::OutputEvent]) -> Markup {
    html! {
        h3 { (lang.t("履歴", "History")) }
        table id=(id) {
            tr { th { (lang.t("日時", "When")) } th { (lang.t("誰", "Who")) } th { (lang.t("手続き", "Step")) } th { (lang.t("台帳", "Ledger")) } }
            @for e in events {
                tr { td { (time_text(e.at)) } td { (e.actor) } td { (e.step) " " (e.from) " → " (e.to) } td { (e.ledger_index) } }
            }
        }
    }
}

/// `name` as one path segment: every byte but letters, digits and `-._~` percent-encoded.
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn caller(ctx: &Signed) -> Caller {
    Caller::user(ctx.who.clone())
}

/// What happened, as the page shows it: the message and whether it is an error.
type Said = Option<(String, bool)>;

/// A refusal as a message on the page (the status kept); internal errors stay errors.
pub(crate) fn said(lang: Lang, e: WebError) -> std::result::Result<(String, StatusCode), WebError> {
    if matches!(e, WebError::Internal(_)) {
        return Err(e);
    }
    let (ja, en) = e.texts();
    Ok((if lang == Lang::Ja { ja } else { en }.into_owned(), e.status()))
}

/// `GET /outputs`: the requests the user may see — the researcher's own projects', the
/// reviewers' queue (waiting for a vote first), the custodians' release queue (approved first).
pub(crate) async fn outputs(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let (lang, s) = (ctx.lang, &ctx.session);
    let mut list = research(&portal)?.outputs().list(Viewer::User(&s.login)).await.map_err(workflow_error)?;
    let first = |st: OutState| match s.role {
        Role::Reviewer => !st.in_review(),
        Role::Custodian => st != OutState::Approved,
        _ => !st.is_editable(),
    };
    list.sort_by_key(|o| (first(o.state), std::cmp::Reverse(o.updated_at)));
    let title = match s.role {
        Role::Reviewer => lang.t("持ち出し審査の待ち行列", "Outputs to review"),
        Role::Custodian => lang.t("持ち出しの待ち行列", "Outputs to release"),
        _ => lang.t("持ち出し依頼", "Output requests"),
    };
    let body = html! {
        @if list.is_empty() {
            p #no-outputs { (lang.t("持ち出し依頼はありません。", "No output requests.")) }
        } @else {
            table #outputs {
                tr {
                    th { "ID" } th { (lang.t("名前", "Name")) } th { (lang.t("プロジェクト", "Project")) }
                    th { (lang.t("状態", "State")) } th { (lang.t("ファイル", "Files")) } th { (lang.t("更新", "Updated")) }
                }
                @for o in &list {
                    tr id=(format!("out-{}", o.id)) {
                        td { a href=(format!("/outputs/{}", o.id)) { (o.id) } }
                        td { (o.name) }
                        td { (o.project) }
                        td.state { (out_state(lang, o.state)) }
                        td { (o.files) }
                        td { (time_text(o.updated_at)) }
                    }
                }
            }
        }
    };
    Ok(layout(lang, title, Some(s), body, StatusCode::OK))
}

/// `GET /outputs/{id}`: one request with its files and their verdicts, and the forms the viewer
/// may use.
pub(crate) async fn output(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    output_page(&portal, &ctx, &id, None, StatusCode::OK).await
}

/// One table's cells coloured by verdict: each cell's class names its status and action, its
/// title the rules that fired (rule names only — the evidence stays inside, issue 22 §8).
fn table_grid(lang: Lang, n: i64, view: &TableView) -> Markup {
    html! {
        @let (pass, review, fail) = view.verdict.counts();
        p.counts id=(format!("table-{n}-counts")) {
            (lang.t("セルの判定", "Cells")) ": "
            span.cell.pass { (pass) } " " span.cell.review { (review) } " " span.cell.fail { (fail) }
            " · " (lang.t("抑制後に持ち出す内容", "what leaves after suppression")) ": "
            span class=(format!("badge {}", view.verdict.released_status.as_str())) { (status_label(lang, view.verdict.released_status.as_str())) }
        }
        table.verdict id=(format!("table-{n}")) {
            tr { @for h in &view.header { th { (h) } } }
            @for (r, row) in view.rows.iter().enumerate() {
                @match &row.keys {
                    Some(keys) => {
                        tr {
                            @for k in keys { th.key { (k) } }
                            @for (m, (value, v)) in row.cells.iter().enumerate() {
                                @let status = v.status.as_str();
                                @let action = match v.action {
                                    Action::Shown => "shown",
                                    Action::Rounded => "rounded",
                                    Action::Suppressed => "suppressed",
                                    Action::SecondarySuppressed => "secondary",
                                };
                                @let rules: Vec<&str> = v.findings.iter().map(|f| f.rule.as_str()).collect();
                                td class=(format!("cell {status} {action}")) id=(format!("cell-{n}-{r}-{m}")) title=(rules.join(", ")) {
                                    @if value.is_empty() { "—" } @else { (value) }
                                }
                            }
                        }
                    }
                    None => {
                        tr.masked {
                            td colspan=(view.header.len()) { (lang.t("（人数が少ないため行ごと非公開）", "(row withheld: too few persons)")) }
                        }
                    }
                }
            }
        }
        @if !view.verdict.table_findings.is_empty() {
            ul.findings {
                // Rule names and statuses only, as in the CLI (a message may carry evidence),
                // except the releases a table was not compared with (ids only).
                @for f in &view.verdict.table_findings {
                    li class=(f.status.as_str()) {
                        code { (f.rule) } " " (status_label(lang, f.status.as_str()))
                        @if f.rule == kura_disclosure::check::rule::DIFFERENCING_UNKNOWN { " — " (f.message) }
                    }
                }
            }
        }
    }
}

async fn output_page(portal: &Portal, ctx: &Signed, id: &str, said: Said, status: StatusCode) -> WebResult {
    let (lang, s) = (ctx.lang, &ctx.session);
    let r = research(portal)?.outputs().request(Viewer::User(&s.login), id).await.map_err(workflow_error)?;
    let project = research(portal)?.project(Viewer::Owner, &r.project).await.map_err(workflow_error)?;
    let member = project.members.iter().any(|m| m == &s.login);
    let author = r.author == s.login;
    // Each table with its values beside its verdict (the content opened for this viewer).
    let mut grids = Vec::new();
    for f in r.files.iter().filter(|f| f.kind == "table") {
        let view = match workspaces(portal)?.output_file(&caller(ctx), id, f.n).await {
            Ok((_, csv)) => table_view(&csv, &f.verdict),
            Err(_) => None,
        };
        grids.push((f.n, view));
    }
    let path = |what: &str| format!("/outputs/{id}/{what}");
    let reviewer = s.role == Role::Reviewer && !member && r.state.in_review();
    // Files no query made and the exception are confirmed until the request leaves (the domain
    // takes confirmations after the votes too: the release waits for them).
    let confirmer = s.role == Role::Reviewer
        && !member
        && matches!(r.state, OutState::Submitted | OutState::PartiallyReviewed | OutState::Reviewed | OutState::Approved);
    let body = html! {
        @if let Some((m, error)) = &said { (message(Some(m), *error)) }
        table #output {
            tr { th { "ID" } td { (r.id) } }
            tr { th { (lang.t("名前", "Name")) } td { (r.name) } }
            tr { th { (lang.t("状態", "State")) } td #out-state { (out_state(lang, r.state)) } }
            tr { th { (lang.t("プロジェクト", "Project")) } td { (r.project) } }
            tr { th { (lang.t("作成者", "Author")) } td { (r.author) } }
            tr { th { (lang.t("公表基準", "Policy")) } td { code { (r.policy) } } }
            @if let Some(e) = &r.exception {
                tr { th { (lang.t("例外の申請", "Exception asked")) } td #exception { (e) } }
            }
            @if let Some(p) = &r.package_sha256 {
                tr { th { (lang.t("パッケージ SHA-256", "Package SHA-256")) } td #package { code { (p) } } }
            }
        }
        p.legend {
            span.cell.pass { (lang.t("合格", "pass")) } " "
            span.cell.review { (lang.t("要確認", "review")) } " "
            span.cell.fail { (lang.t("不合格", "fail")) } " "
            (lang.t("— は秘匿（抑制）されたセル。セルにポインタを置くと判定の規則名が出ます。", "— marks a suppressed cell; hover a cell for the rules that fired."))
        }
        @for f in &r.files {
            section.file id=(format!("file-{}", f.n)) {
                h3 { (f.n) ". " (f.name) " " span class=(format!("badge {}", f.status)) id=(format!("file-{}-status", f.n)) title=(lang.t("持ち出す内容の判定", "verdict on what leaves")) { (status_label(lang, &f.status)) } }
                p.note { (f.note) }
                p.meta {
                    (f.kind) " · " (f.bytes) " bytes · SHA-256 " code { (f.sha256) } " · "
                    a id=(format!("open-file-{}", f.n)) href=(format!("/outputs/{id}/files/{}", f.n)) download=(f.name) { (lang.t("ファイルを開く", "Open the file")) }
                }
                @if f.kind == "table" {
                    @match grids.iter().find(|(n, _)| *n == f.n).and_then(|(_, v)| v.as_ref()) {
                        Some(view) => { (table_grid(lang, f.n, view)) }
                        None => { p.msg.error { (lang.t("表を開けません（改変の疑い）。", "The table does not open (it may have been altered).")) } }
                    }
                    @if f.status == "review" {
                        p { (lang.t("自動検査が「要確認」とした表：審査者二人の確認が必要です。", "The checks say review: both reviewers must confirm this table.")) }
                    }
                } @else {
                    p { (lang.t("Kura の問い合わせで作られていないファイル：審査者二人の確認が必要です。", "A file no Kura query made: both reviewers must confirm it.")) }
                    // The releases it was not compared with (ids only).
                    @for x in serde_json::from_str::<kura_workspace::values::FileVerdict>(&f.verdict).map(|v| v.findings).unwrap_or_default() {
                        @if x.rule == kura_disclosure::check::rule::DIFFERENCING_UNKNOWN {
                            p.finding.review { code { (x.rule) } " — " (x.message) }
                        }
                    }
                }
                // What the release waits for: both reviewers' confirmation of files no query
                // made and of tables the checks say review.
                @if confirmer && (f.kind != "table" || f.status == "review") {
                    form method="post" action=(path("confirm")) {
                        (csrf_field(&s.csrf))
                        input type="hidden" name="file" value=(f.n);
                        button id=(format!("confirm-file-{}", f.n)) type="submit" { (lang.t("このファイルを確認した", "I have checked this file")) }
                    }
                }
            }
        }
        @if !r.reviews.is_empty() || r.hidden_votes > 0 {
            h3 { (lang.t("審査", "Reviews")) }
            ul #reviews {
                @for v in &r.reviews {
                    li { (v.reviewer) " (" (v.submission) "): " strong { (v.decision) } " " (v.comment) }
                }
            }
            @if r.hidden_votes > 0 {
                p #hidden-votes { (lang.t("もう一人の審査者の票は、両者が投票するまで表示しません。", "The other reviewer's vote is not shown until both have voted.")) }
            }
        }
        @if !r.confirmations.is_empty() {
            ul #confirmations { @for c in &r.confirmations { li { (c.reviewer) ": " (c.what) } } }
        }
        @if author && r.state.is_editable() {
            h3 { (lang.t("表を追加", "Add a table")) }
            form method="post" action=(path("tables")) {
                (csrf_field(&s.csrf))
                label for="table-name" { (lang.t("ファイル名（.csv）", "File name (.csv)")) }
                input #table-name name="name" required;
                label for="table-query" { (lang.t("SQL（作業環境で実行し、セルごとに自動検査します）", "SQL (run in the workspace; every cell is checked)")) }
                textarea #table-query name="query" rows="4" required {}
                label for="table-note" { (lang.t("説明（何を示すか、対象集団、期間）", "Note (what it shows, population, period)")) }
                input #table-note name="note";
                button #add-table type="submit" { (lang.t("表を追加", "Add the table")) }
            }
            form method="post" action=(path("exception")) {
                (csrf_field(&s.csrf))
                label for="exception-reason" { (lang.t("例外の申請（不合格のセルを持ち出す理由。審査者二人の承認が必要）", "Ask for an exception (why failing cells should leave; both reviewers must approve)")) }
                input #exception-reason name="reason";
                button #ask-exception type="submit" { (lang.t("例外を申請", "Ask for an exception")) }
            }
            form method="post" action=(path("submit")) {
                (csrf_field(&s.csrf))
                button #submit-output type="submit" { (lang.t("審査に提出", "Submit for review")) }
            }
        }
        @if author && !matches!(r.state, OutState::Released | OutState::Rejected | OutState::Withdrawn) {
            form method="post" action=(path("withdraw")) {
                (csrf_field(&s.csrf))
                button #withdraw-output type="submit" { (lang.t("取り下げ", "Withdraw")) }
            }
        }
        @if reviewer {
            h3 { (lang.t("審査する", "Review")) }
            form method="post" action=(path("review")) {
                (csrf_field(&s.csrf))
                label for="review-comment" { (lang.t("コメント", "Comment")) }
                textarea #review-comment name="comment" rows="2" {}
                button #review-approve type="submit" name="decision" value="approve" { (lang.t("承認", "Approve")) }
                " "
                button #review-changes type="submit" name="decision" value="changes" { (lang.t("修正を依頼", "Request changes")) }
                " "
                button #review-reject type="submit" name="decision" value="reject" { (lang.t("不承認", "Reject")) }
            }
        }
        @if confirmer && r.exception.is_some() {
            form method="post" action=(path("confirm")) {
                (csrf_field(&s.csrf))
                input type="hidden" name="exception" value="true";
                button #confirm-exception type="submit" { (lang.t("例外を認める", "Approve the exception")) }
            }
        }
        @if s.role == Role::Custodian && !member && r.state == OutState::Approved {
            form method="post" action=(path("release")) {
                (csrf_field(&s.csrf))
                p { (lang.t("ファイルのハッシュ、マルウェア、過去の持ち出しとの差分をもう一度確かめてから持ち出します。", "Checks the files' hashes, malware and differencing against every earlier release once more, then releases.")) }
                button #release-output type="submit" { (lang.t("持ち出しを許可", "Release")) }
            }
        }
        @if member && r.state == OutState::Released {
            h3 { (lang.t("パッケージ", "Package")) }
            ul #package-files {
                @for name in r.files.iter().map(|f| f.name.as_str()).chain(["manifest.json", "release.tlog-proof"]) {
                    li { a href=(format!("/api/v1/outputs/{id}/package/{}", path_segment(name))) download=(name) { (name) } }
                }
            }
        }
        (history(lang, "out-history", &r.events))
    };
    Ok(layout(lang, &format!("{} — {}", r.id, lang.t("持ち出し依頼", "output request")), Some(s), body, status))
}

/// The new-output and add-table form.
#[derive(Debug, Deserialize)]
pub struct TableForm {
    name: String,
    query: String,
    #[serde(default)]
    note: String,
}

/// `POST /projects/{id}/outputs`: a member starts a request with a table from a query; the
/// answer is the request's page (or the project page with why not).
pub(crate) async fn output_new(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(project): Path<String>,
    FormBody(f): FormBody<TableForm>,
) -> WebResult {
    match workspaces(&portal)?.output_new(&caller(&ctx), &project, &f.name, &f.query, &f.note).await {
        Ok(r) => Ok(Redirect::to(&format!("/outputs/{}", r.id)).into_response()),
        Err(e) => {
            let (text, status) = said(ctx.lang, workspace_error(e))?;
            crate::research_pages::project_with(&portal, &ctx, &project, Some((text, true)), status).await
        }
    }
}

/// `POST /outputs/{id}/tables`: the author adds a table.
pub(crate) async fn output_table(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(id): Path<String>,
    FormBody(f): FormBody<TableForm>,
) -> WebResult {
    let lang = ctx.lang;
    match workspaces(&portal)?.output_add_query(&caller(&ctx), &id, &f.name, &f.query, &f.note).await {
        Ok(_) => output_page(&portal, &ctx, &id, Some((lang.t("表を追加しました", "Table added").into(), false)), StatusCode::OK).await,
        Err(e) => {
            let (text, status) = said(lang, workspace_error(e))?;
            output_page(&portal, &ctx, &id, Some((text, true)), status).await
        }
    }
}

/// The step forms.
#[derive(Debug, Default, Deserialize)]
pub struct StepForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    file: Option<i64>,
    #[serde(default)]
    exception: Option<String>,
}

/// `POST /outputs/{id}/{step}`: submit, withdraw, exception, review, confirm, release.
pub(crate) async fn output_step(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((id, step)): Path<(String, String)>,
    FormBody(f): FormBody<StepForm>,
) -> WebResult {
    let lang = ctx.lang;
    let outputs = research(&portal)?.outputs();
    let c = caller(&ctx);
    let done: std::result::Result<&str, WebError> = match step.as_str() {
        "submit" => outputs.submit(&c, &id).await.map(|_| lang.t("審査に提出しました", "Submitted for review")).map_err(workflow_error),
        "withdraw" => outputs.withdraw(&c, &id).await.map(|_| lang.t("取り下げました", "Withdrawn")).map_err(workflow_error),
        "exception" => {
            outputs.exception(&c, &id, &f.reason).await.map(|_| lang.t("例外を申請しました", "Exception asked")).map_err(workflow_error)
        }
        "review" => {
            let decision = match f.decision.as_str() {
                "approve" => Some(ReviewDecision::Approve),
                "changes" => Some(ReviewDecision::Changes),
                "reject" => Some(ReviewDecision::Reject),
                _ => None,
            };
            match decision {
                Some(d) => {
                    outputs.review(&c, &id, d, &f.comment).await.map(|_| lang.t("投票しました", "Vote recorded")).map_err(workflow_error)
                }
                None => Err(WebError::refused(StatusCode::UNPROCESSABLE_ENTITY, "判断を選んでください", "choose a decision")),
            }
        }
        "confirm" => {
            let what = match (f.file, f.exception.as_deref()) {
                (Some(n), None) => Some(format!("file:{n}")),
                (None, Some("true")) => Some("exception".to_string()),
                _ => None,
            };
            match what {
                Some(w) => outputs.confirm(&c, &id, &w).await.map(|_| lang.t("確認しました", "Confirmed")).map_err(workflow_error),
                None => Err(WebError::refused(StatusCode::UNPROCESSABLE_ENTITY, "確認するものを選んでください", "choose what to confirm")),
            }
        }
        "release" => match workspaces(&portal)?.output_release(&c, &id).await {
            Ok(_) => Ok(lang.t("持ち出しました", "Released")),
            Err(e) => Err(workspace_error(e)),
        },
        _ => return Err(WebError::refused(StatusCode::NOT_FOUND, "その手続きはありません", "no such step")),
    };
    match done {
        Ok(m) => match output_page(&portal, &ctx, &id, Some((m.to_string(), false)), StatusCode::OK).await {
            // The votes sent it back to its author: it is the project's own again.
            Err(e) if e.status() == StatusCode::NOT_FOUND => Ok(Redirect::to("/outputs").into_response()),
            page => page,
        },
        Err(e) => {
            let (text, status) = said(lang, e)?;
            output_page(&portal, &ctx, &id, Some((text, true)), status).await
        }
    }
}

/// `GET /bringin`: the bring-in requests the user may see; files waiting for a custodian first.
pub(crate) async fn bringins(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let (lang, s) = (ctx.lang, &ctx.session);
    let list = research(&portal)?.bringins().list(Viewer::User(&s.login), None).await.map_err(workflow_error)?;
    let body = html! {
        @if list.is_empty() {
            p #no-bringin { (lang.t("持ち込み依頼はありません。", "No bring-in requests.")) }
        } @else {
            table #bringins {
                tr {
                    th { "ID" } th { (lang.t("ファイル", "File")) } th { (lang.t("プロジェクト", "Project")) }
                    th { (lang.t("状態", "State")) } th { (lang.t("更新", "Updated")) }
                }
                @for b in &list {
                    tr id=(format!("in-{}", b.id)) {
                        td { a href=(format!("/bringin/{}", b.id)) { (b.id) } }
                        td { (b.name) }
                        td { (b.project) }
                        td.state { (in_state(lang, b.state)) }
                        td { (time_text(b.updated_at)) }
                    }
                }
            }
        }
    };
    Ok(layout(lang, lang.t("持ち込み", "Bring-in"), Some(s), body, StatusCode::OK))
}

/// `GET /bringin/{id}`: one request.
pub(crate) async fn bringin(State(portal): State<Portal>, ctx: Signed, Path(id): Path<String>) -> WebResult {
    bringin_page(&portal, &ctx, &id, None, StatusCode::OK).await
}

async fn bringin_page(portal: &Portal, ctx: &Signed, id: &str, said: Said, status: StatusCode) -> WebResult {
    let (lang, s) = (ctx.lang, &ctx.session);
    let b = research(portal)?.bringins().request(Viewer::User(&s.login), id).await.map_err(workflow_error)?;
    let project = research(portal)?.project(Viewer::Owner, &b.project).await.map_err(workflow_error)?;
    let member = project.members.iter().any(|m| m == &s.login);
    let path = |what: &str| format!("/bringin/{id}/{what}");
    let body = html! {
        @if let Some((m, error)) = &said { (message(Some(m), *error)) }
        table #bringin {
            tr { th { "ID" } td { (b.id) } }
            tr { th { (lang.t("ファイル", "File")) } td #in-name { (b.name) " (" (b.kind) ", " (b.bytes) " bytes)" } }
            tr { th { (lang.t("状態", "State")) } td #in-state { (in_state(lang, b.state)) } }
            tr { th { (lang.t("プロジェクト", "Project")) } td { (b.project) } }
            tr { th { (lang.t("依頼者", "Author")) } td { (b.author) } }
            tr { th { "SHA-256" } td { code { (b.sha256) } } }
            tr { th { (lang.t("マルウェア検査", "Malware scan")) } td #in-scan { (b.scan) } }
            tr { th { (lang.t("説明", "Note")) } td { (b.note) } }
            @if !b.comment.is_empty() {
                tr { th { (lang.t("コメント", "Comment")) } td { (b.comment) } }
            }
        }
        @if s.role == Role::Custodian && !member && b.state == InState::Submitted {
            form method="post" action=(path("review")) {
                (csrf_field(&s.csrf))
                label for="in-comment" { (lang.t("コメント", "Comment")) }
                input #in-comment name="comment";
                button #in-approve type="submit" name="approve" value="true" { (lang.t("承認（もう一度検査して作業環境へ）", "Approve (scanned again, then placed in the workspace)")) }
                " "
                button #in-reject type="submit" name="approve" value="false" { (lang.t("不承認", "Reject")) }
            }
        }
        @if b.author == s.login && b.state == InState::Submitted {
            form method="post" action=(path("withdraw")) {
                (csrf_field(&s.csrf))
                button #in-withdraw type="submit" { (lang.t("取り下げ", "Withdraw")) }
            }
        }
        @if member && b.state == InState::Approved && b.kind == "file" {
            p { a #in-content href=(format!("/api/v1/bringin/{id}/content")) download=(b.name) { (lang.t("承認されたファイル", "The approved file")) } }
        }
        (history(lang, "in-history", &b.events))
    };
    Ok(layout(lang, &format!("{} — {}", b.id, lang.t("持ち込み", "bring-in")), Some(s), body, status))
}

/// The bring-in review form.
#[derive(Debug, Default, Deserialize)]
pub struct InForm {
    #[serde(default)]
    approve: Option<String>,
    #[serde(default)]
    comment: String,
}

/// `POST /bringin/{id}/{step}`: `review` (a custodian outside the project) or `withdraw`.
pub(crate) async fn bringin_step(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((id, step)): Path<(String, String)>,
    FormBody(f): FormBody<InForm>,
) -> WebResult {
    let lang = ctx.lang;
    let c = caller(&ctx);
    let ws = workspaces(&portal)?;
    let done = match (step.as_str(), f.approve.as_deref()) {
        ("review", Some("true")) => ws.bringin_review(&c, &id, true, &f.comment).await.map(|_| lang.t("承認しました", "Approved")),
        ("review", Some("false")) => ws.bringin_review(&c, &id, false, &f.comment).await.map(|_| lang.t("不承認にしました", "Rejected")),
        ("review", _) => {
            let (text, status) = said(
                lang,
                WebError::refused(StatusCode::UNPROCESSABLE_ENTITY, "承認か不承認を選んでください", "choose approve or reject"),
            )?;
            return bringin_page(&portal, &ctx, &id, Some((text, true)), status).await;
        }
        ("withdraw", _) => ws.bringin_withdraw(&c, &id).await.map(|_| lang.t("取り下げました", "Withdrawn")),
        _ => return Err(WebError::refused(StatusCode::NOT_FOUND, "その手続きはありません", "no such step")),
    };
    match done {
        Ok(m) => bringin_page(&portal, &ctx, &id, Some((m.to_string(), false)), StatusCode::OK).await,
        Err(e) => {
            let (text, status) = said(lang, workspace_error(e))?;
            bringin_page(&portal, &ctx, &id, Some((text, true)), status).await
        }
    }
}

/// `POST /projects/{id}/bringin` (multipart: `file`, `note`): a member brings a file in,
/// scanned at once; the answer is the request's page, or the project page with why not
/// (malware is refused and recorded).
pub(crate) async fn bringin_upload(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(project): Path<String>,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> WebResult {
    let mut form = form.map_err(|_| crate::web::malformed())?;
    let (mut file, mut note) = (None, String::new());
    while let Some(field) = form.next_field().await.map_err(|_| crate::web::malformed())? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_string();
                file = Some((name, field.bytes().await.map_err(|_| crate::web::malformed())?));
            }
            Some("note") => note = field.text().await.map_err(|_| crate::web::malformed())?,
            _ => {}
        }
    }
    let lang = ctx.lang;
    let outcome = match &file {
        Some((name, content)) if !content.is_empty() => {
            workspaces(&portal)?.bringin_upload(&caller(&ctx), &project, name, content, &note).await.map_err(workspace_error)
        }
        _ => Err(WebError::refused(StatusCode::UNPROCESSABLE_ENTITY, "ファイルを選んでください", "choose a file")),
    };
    match outcome {
        Ok(b) => Ok(Redirect::to(&format!("/bringin/{}", b.id)).into_response()),
        Err(e) => {
            let (text, status) = said(lang, e)?;
            crate::research_pages::project_with(&portal, &ctx, &project, Some((text, true)), status).await
        }
    }
}

/// The airlock's forms on a project's page, for its members while it runs: a new output
/// request from a query, and a file to bring in.
pub(crate) fn project_forms(lang: Lang, csrf: &str, project: &str) -> Markup {
    html! {
        h3 { (lang.t("持ち出し依頼を作る", "Start an output request")) }
        form method="post" action=(format!("/projects/{project}/outputs")) {
            (csrf_field(csrf))
            label for="output-name" { (lang.t("依頼の名前", "Request name")) }
            input #output-name name="name" required;
            label for="output-query" { (lang.t("表を作る SQL（セルごとに自動検査します）", "SQL of the table (every cell is checked)")) }
            textarea #output-query name="query" rows="4" required {}
            label for="output-note" { (lang.t("説明（何を示すか、対象集団、期間）", "Note (what it shows, population, period)")) }
            input #output-note name="note";
            button #new-output type="submit" { (lang.t("依頼を作る", "Start the request")) }
        }
        h3 { (lang.t("ファイルを持ち込む", "Bring a file in")) }
        form #bringin-form method="post" action=(format!("/projects/{project}/bringin")) enctype="multipart/form-data" {
            (csrf_field(csrf))
            label for="bringin-file" { (lang.t("ファイル（コード、SQL、コードマスター CSV など。検査され、管理者の承認後に読み取り専用で入ります）", "File (code, SQL, a code master CSV …: scanned, then read-only in the workspace once a custodian approves)")) }
            input #bringin-file type="file" name="file" required;
            label for="bringin-note" { (lang.t("説明", "Note")) }
            input #bringin-note name="note";
            button #upload-bringin type="submit" { (lang.t("持ち込みを依頼", "Ask to bring it in")) }
        }
        p { a #project-outputs href="/outputs" { (lang.t("持ち出し依頼の一覧", "Output requests")) } " · " a #project-bringin href="/bringin" { (lang.t("持ち込み依頼の一覧", "Bring-in requests")) } }
    }
}
