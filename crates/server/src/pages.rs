//! The portal's pages: plain HTML, Japanese first with an English switch, one stylesheet
//! served by Kura itself, no script and no external asset (the CSP forbids them).
//!
//! Every page is a compile-time checked [`maud`] template: text and attribute values are
//! escaped by the template engine, never by hand; the one piece of markup inserted as it is is
//! the TOTP QR code's SVG, which Kura draws itself from the secret.

use crate::web::{Lang, time_text};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use kura_accounts::session::{Session, SessionState};
use kura_accounts::{Enrolment, InventoryRow, Role, User};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The stylesheet.
pub const CSS: &str = "\
body{font-family:system-ui,'Hiragino Sans','Noto Sans JP',sans-serif;margin:0;background:#f6f5f1;color:#222}\
header{background:#3b3a36;color:#fff;padding:.6em 1.2em;display:flex;justify-content:space-between;align-items:center}\
header a{color:#fff}main{max-width:52em;margin:1.5em auto;padding:0 1em}\
form{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}\
label{display:block;margin:.6em 0 .2em}input,select{font-size:1em;padding:.4em;width:100%;box-sizing:border-box}\
button{font-size:1em;padding:.5em 1.2em;margin-top:.8em;background:#6b4f2a;color:#fff;border:0;border-radius:4px}\
.msg{padding:.7em;border-radius:4px;background:#fff3cd;border:1px solid #e0c36c}.err{background:#f8d7da;border-color:#e39ba3}\
table{border-collapse:collapse;width:100%;background:#fff}td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left}\
.codes{font-family:monospace;font-size:1.2em}.inline{display:inline;background:none;border:0;padding:0;margin:0}\
.inline button{padding:.2em .5em;margin:0;font-size:.85em}\
textarea{font-size:1em;width:100%;box-sizing:border-box;font-family:monospace}.overdue{color:#a00;font-weight:bold}\
.cols label{display:inline-block;margin:.2em .8em .2em 0}.cols input{width:auto}\
.cell{text-align:right;font-variant-numeric:tabular-nums}.cell.pass{background:#e3f1e3}.cell.review{background:#fff1c2}\
.cell.fail{background:#f6c9cd;font-weight:bold}.cell.suppressed,.cell.secondary{color:#777;font-style:italic}\
.cell.rounded{text-decoration:underline dotted}span.cell{display:inline-block;padding:.1em .5em;border:1px solid #ccc}\
th.key{background:#faf9f6;font-weight:normal}tr.masked td{color:#777;font-style:italic}\
.badge{font-size:.8em;padding:.1em .5em;border-radius:3px;border:1px solid #ccc}.badge.pass{background:#e3f1e3}\
.badge.review{background:#fff1c2}.badge.fail{background:#f6c9cd}";

/// The frame of every page: header (who is signed in, the language switch) and the title.
pub(crate) fn layout(lang: Lang, title: &str, session: Option<&Session>, body: Markup, status: StatusCode) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width";
                title { (title) " — Kura" }
                link rel="stylesheet" href="/static/kura.css";
            }
            body {
                header {
                    strong { a href="/" { "蔵 Kura" } }
                    @if let Some(s) = session.filter(|s| s.state == SessionState::Active) {
                        span {
                            (s.login) " (" (lang.t(s.role.label_ja(), s.role.as_str())) ") · "
                            a href="/account" { (lang.t("アカウント", "Account")) }
                            " · "
                            (post_button("/logout", &s.csrf, lang.t("ログアウト", "Sign out"), true))
                        }
                    }
                    span {
                        @match lang {
                            Lang::Ja => a href="/lang/en" lang="en" { "English" },
                            Lang::En => a href="/lang/ja" lang="ja" { "日本語" },
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    (status, Html(page.into_string())).into_response()
}

/// The session's CSRF token as the hidden field every form carries.
pub(crate) fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A form that is only a button posting to `action` (inline in text when `inline`).
pub(crate) fn post_button(action: &str, csrf: &str, label: &str, inline: bool) -> Markup {
    html! {
        form.inline[inline] method="post" action=(action) {
            (csrf_field(csrf))
            button type="submit" { (label) }
        }
    }
}

/// A notice (or, if `error`, an error) at the top of a form.
pub(crate) fn message(msg: Option<&str>, error: bool) -> Markup {
    html! {
        @if let Some(m) = msg {
            p.msg.err[error] role="alert" #message { (m) }
        }
    }
}

/// A page that only says what went wrong (both languages on a Japanese page).
pub fn error(lang: Lang, status: StatusCode, ja: &str, en: &str) -> Response {
    let text = match lang {
        Lang::Ja if ja != en => format!("{ja} / {en}"),
        Lang::Ja => ja.to_string(),
        Lang::En => en.to_string(),
    };
    let body = html! {
        (message(Some(&text), true))
        p { a href="/" { (lang.t("トップへ", "Home")) } }
    };
    layout(lang, lang.t("エラー", "Error"), None, body, status)
}

/// Where a session part-way through signing in goes next.
pub fn step_path(state: SessionState) -> &'static str {
    match state {
        SessionState::SecondFactor => "/login/second",
        SessionState::Enrol => "/login/enrol",
        SessionState::NewPassword => "/login/password",
        SessionState::Confirm => "/login/confirm",
        SessionState::Active => "/",
    }
}

/// A code field (TOTP or recovery code).
fn code_input(label: &str) -> Markup {
    html! {
        label for="code" { (label) }
        input #code name="code" autocomplete="one-time-code" inputmode="numeric" required;
    }
}

/// The new-password field.
fn new_password_input(lang: Lang) -> Markup {
    html! {
        label for="new" { (lang.t("新しいパスワード（12文字以上、推測されにくいもの）", "New password (12+ characters, hard to guess)")) }
        input #new name="new" type="password" autocomplete="new-password" required;
    }
}

/// The sign-in form (`pre`: the double-submit token before there is a session).
pub fn login(lang: Lang, pre: &str, notice: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        (message(notice, false))
        (message(error, true))
        form method="post" action="/login" {
            (csrf_field(pre))
            label for="login" { (lang.t("利用者ID", "Login ID")) }
            input #login name="login" autocomplete="username" required;
            label for="password" { (lang.t("パスワード", "Password")) }
            input #password name="password" type="password" autocomplete="current-password" required;
            button type="submit" #submit { (lang.t("次へ", "Next")) }
        }
        p { (lang.t(
            "パスワードを忘れた場合は、所属機関のデータ管理者または運用管理者に再設定を依頼してください。",
            "Forgot your password? Ask your institution's custodian or the operator to reset it."
        )) }
    };
    layout(lang, lang.t("ログイン", "Sign in"), None, body, status)
}

/// The second-factor form.
pub fn second_factor(lang: Lang, csrf: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        (message(error, true))
        form method="post" action="/login/second" {
            (csrf_field(csrf))
            (code_input(lang.t("認証アプリの6桁の確認コード（または回復コード）", "The 6-digit code from your authenticator app (or a recovery code)")))
            button type="submit" #submit { (lang.t("ログイン", "Sign in")) }
        }
        (post_button("/logout", csrf, lang.t("中止", "Cancel"), true))
    };
    layout(lang, lang.t("確認コード", "Second factor"), None, body, status)
}

/// The SVG element of a QR code, without an XML declaration before it.
fn svg_element(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |at| &svg[at..])
}

/// TOTP enrolment: the QR code, the secret for typing, and the form.
pub fn enrol(lang: Lang, csrf: &str, e: &Enrolment, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        (message(error, true))
        p { (lang.t(
            "二要素認証を設定します。認証アプリ（FreeOTP、Aegis、Google Authenticator など）でQRコードを読み取ってください。",
            "Set up your second factor: scan the QR code with an authenticator app (FreeOTP, Aegis, Google Authenticator, …)."
        )) }
        // Kura draws the SVG itself from the otpauth URI (kura_accounts::totp): it holds
        // rectangles only, no script and no link, and is the one markup not escaped here.
        div #qr { (PreEscaped(svg_element(&e.qr_svg))) }
        p { (lang.t("手入力する場合の鍵:", "Or type this key:")) " " code #secret { (e.secret_base32) } }
        form method="post" action="/login/enrol" {
            (csrf_field(csrf))
            (code_input(lang.t("アプリに表示された6桁のコード", "The 6-digit code the app shows")))
            button type="submit" #submit { (lang.t("設定する", "Confirm")) }
        }
    };
    layout(lang, lang.t("二要素認証の設定", "Set up two-factor sign-in"), None, body, status)
}

/// The new password a user must choose after a reset.
pub fn new_password(lang: Lang, csrf: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        (message(error, true))
        p { (lang.t(
            "パスワードは再設定されました。ご自身だけが知る新しいパスワードを決めてください。",
            "Your password was reset: choose a new one that only you know."
        )) }
        form method="post" action="/login/password" {
            (csrf_field(csrf))
            (new_password_input(lang))
            button type="submit" #submit { (lang.t("設定する", "Set password")) }
        }
    };
    layout(lang, lang.t("新しいパスワード", "New password"), None, body, status)
}

/// The recovery codes, shown once; `next` is where the user goes on.
pub fn recovery_codes(lang: Lang, codes: &[String], next: &str) -> Response {
    let body = html! {
        p { (lang.t(
            "回復コードです。認証アプリを使えないときに1回ずつ使えます。安全な場所に控えてください。この画面は二度と表示されません。",
            "Your recovery codes: each works once when you cannot use the app. Keep them somewhere safe; this page is shown only once."
        )) }
        ol.codes #recovery-codes { @for c in codes { li { (c) } } }
        p { a #continue href=(next) { (lang.t("続ける", "Continue")) } }
    };
    layout(lang, lang.t("回復コード", "Recovery codes"), None, body, StatusCode::OK)
}

/// The second-device confirmation (HX-11): when and with which certificate the other
/// sessions began.
pub fn confirm(lang: Lang, csrf: &str, others: &[(i64, String)]) -> Response {
    let body = html! {
        p { (lang.t(
            "このIDは別のブラウザまたは端末でログイン中です。ここでログインを続けると、そちらはログアウトされ、その旨が表示されます。",
            "This ID is signed in on another browser or device. If you continue here, that session is signed out and told why."
        )) }
        ul {
            @for (at, fp) in others {
                li { (time_text(*at)) " — " (lang.t("証明書", "certificate")) " " code { (fp.chars().take(23).collect::<String>()) } }
            }
        }
        form method="post" action="/login/confirm" {
            (csrf_field(csrf))
            button type="submit" #confirm { (lang.t("ここでログインを続ける", "Continue here")) }
        }
        (post_button("/logout", csrf, lang.t("中止", "Cancel"), false))
    };
    layout(lang, lang.t("別の端末でログイン中です", "Signed in elsewhere"), None, body, StatusCode::OK)
}

/// The signed-in home page (the operators' links only on their own listener).
pub fn home(lang: Lang, s: &Session, operator_listener: bool) -> Response {
    let body = html! {
        p #welcome { (if s.name.is_empty() { &s.login } else { &s.name }) " " (lang.t("さん、ようこそ。", "— welcome.")) }
        ul {
            @if matches!(s.role, Role::Researcher | Role::Custodian | Role::Reviewer | Role::Auditor) {
                li { a #applications href="/applications" { (lang.t("利用申請", "Applications")) } }
                li { a #projects href="/projects" { (lang.t("プロジェクト（作業環境）", "Projects (workspaces)")) } }
            }
            @if matches!(s.role, Role::Researcher | Role::Custodian | Role::Reviewer) {
                li { a #outputs href="/outputs" { (lang.t("持ち出し依頼（審査・持ち出し）", "Output requests (review, release)")) } }
            }
            @if matches!(s.role, Role::Researcher | Role::Custodian) {
                li { a #bringin href="/bringin" { (lang.t("持ち込み依頼", "Bring-in requests")) } }
            }
            @if s.role == Role::Provider {
                li { a #exchange href="/exchange" { (lang.t("機関間のファイル送受信", "Files between institutions")) } }
            }
            li { a href="/account" { (lang.t("アカウント", "Your account")) } }
            @if operator_listener && s.role == Role::Operator {
                li { a href="/admin/users" { (lang.t("利用者の管理", "Manage users")) } }
            }
        }
    };
    layout(lang, lang.t("ホーム", "Home"), Some(s), body, StatusCode::OK)
}

/// The account page with the password form.
pub fn account(lang: Lang, s: &Session, u: &User, msg: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        (message(msg, false))
        table {
            tr { th { (lang.t("利用者ID", "Login")) } td { (u.login) } }
            tr { th { (lang.t("所属機関", "Institution")) } td { (u.institution) } }
            tr { th { (lang.t("役割", "Role")) } td { (lang.t(u.role.label_ja(), u.role.as_str())) } }
            tr { th { (lang.t("二要素認証", "Second factor")) } td { (if u.totp { lang.t("設定済み", "enrolled") } else { lang.t("未設定", "not enrolled") }) } }
            tr { th { (lang.t("この端末の証明書", "This device's certificate")) } td { code { (s.fingerprint) } } }
        }
        form method="post" action="/account/password" {
            (csrf_field(&s.csrf))
            label for="current" { (lang.t("現在のパスワード", "Current password")) }
            input #current name="current" type="password" autocomplete="current-password" required;
            (new_password_input(lang))
            button type="submit" { (lang.t("パスワードを変更", "Change password")) }
        }
    };
    layout(lang, lang.t("アカウント", "Account"), Some(s), body, status)
}

/// The operators' user list and forms.
pub fn admin_users(lang: Lang, s: &Session, rows: &[InventoryRow], msg: Option<&str>) -> Response {
    let action = |login: &str, a: &str, label: &str| {
        html! {
            (post_button(&format!("/admin/users/{login}/{a}"), &s.csrf, label, true)) " "
        }
    };
    let body = html! {
        (message(msg, false))
        table #users {
            tr {
                th { "ID" } th { (lang.t("機関", "Institution")) } th { (lang.t("役割", "Role")) }
                th { (lang.t("状態", "State")) } th {} th { (lang.t("要確認", "Flags")) } th {}
            }
            @for r in rows {
                @let u = &r.user;
                tr id=(format!("user-{}", u.login)) {
                    td { (u.login) }
                    td { (u.institution) }
                    td { (u.role.as_str()) }
                    td { (u.state.as_str()) }
                    td { @if u.locked { (lang.t("ロック中", "locked")) } }
                    td { (r.flags.join(" ")) }
                    td {
                        @if u.locked { (action(&u.login, "unlock", lang.t("解除", "unlock"))) }
                        @else { (action(&u.login, "lock", lang.t("ロック", "lock"))) }
                        (action(&u.login, "activate", lang.t("有効化", "activate")))
                        (action(&u.login, "suspend", lang.t("停止", "suspend")))
                        (action(&u.login, "disable", lang.t("廃止", "disable")))
                        (action(&u.login, "revoke-certificates", lang.t("証明書失効", "revoke certificates")))
                    }
                }
            }
        }
        form method="post" action="/admin/users" {
            h2 { (lang.t("利用者の追加", "Add a user")) }
            (csrf_field(&s.csrf))
            label for="login" { (lang.t("利用者ID", "Login")) }
            input #login name="login" required;
            label for="institution" { (lang.t("機関コード", "Institution code")) }
            input #institution name="institution" required;
            label for="role" { (lang.t("役割", "Role")) }
            select #role name="role" {
                @for r in Role::ALL { option value=(r.as_str()) { (lang.t(r.label_ja(), r.as_str())) } }
            }
            label for="name" { (lang.t("氏名", "Name")) }
            input #name name="name";
            label for="password" { (lang.t("初期パスワード（空なら保留状態で作成）", "Initial password (empty: created pending)")) }
            input #password name="password" type="password" autocomplete="new-password";
            button type="submit" { (lang.t("追加", "Add")) }
        }
    };
    layout(lang, lang.t("利用者の管理", "Users"), Some(s), body, StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a user or a certificate can put in a page is escaped by the template engine.
    #[test]
    fn text_and_attributes_are_escaped() {
        let hostile = "\"><script>alert(1)</script>'&";
        let page = html! { p title=(hostile) { (hostile) } (csrf_field(hostile)) }.into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;") && page.contains("&quot;&gt;"), "{page}");
        assert!(page.contains(r#"name="csrf" value="&quot;&gt;"#), "{page}");
    }

    /// The QR code's markup is inserted from its `<svg` element on.
    #[test]
    fn svg_without_declaration() {
        assert_eq!(svg_element("<?xml version=\"1.0\"?><svg a=\"b\"></svg>"), "<svg a=\"b\"></svg>");
        assert_eq!(svg_element("<svg/>"), "<svg/>");
    }
}
