//! The portal's pages: plain HTML, Japanese first with an English switch, one stylesheet
//! served by Kura itself, no script and no external asset (the CSP forbids them).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use kura_accounts::session::{Session, SessionState};
use kura_accounts::{Enrolment, InventoryRow, User};

/// The page language: Japanese unless the user chose English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 日本語.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// The language cookie's choice.
    pub fn of(headers: &HeaderMap) -> Lang {
        let en = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|kv| kv.trim() == format!("{}=en", crate::portal::LANG_COOKIE));
        if en { Lang::En } else { Lang::Ja }
    }

    fn t<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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
.inline button{padding:.2em .5em;margin:0;font-size:.85em}";

fn layout(lang: Lang, title: &str, session: Option<&Session>, body: &str, status: StatusCode) -> Response {
    let user = match session {
        Some(s) if s.state == SessionState::Active => format!(
            "<span>{} ({}) · <a href=\"/account\">{}</a> · <form class=\"inline\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">{}</button></form></span>",
            esc(&s.login),
            esc(lang.t(s.role.label_ja(), s.role.as_str())),
            lang.t("アカウント", "Account"),
            esc(&s.csrf),
            lang.t("ログアウト", "Sign out")
        ),
        _ => String::new(),
    };
    let switch = match lang {
        Lang::Ja => "<a href=\"/lang/en\" lang=\"en\">English</a>",
        Lang::En => "<a href=\"/lang/ja\" lang=\"ja\">日本語</a>",
    };
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} — Kura</title><link rel=\"stylesheet\" href=\"/static/kura.css\"></head><body>\
         <header><strong><a href=\"/\">蔵 Kura</a></strong>{user}<span>{switch}</span></header><main><h1>{}</h1>{body}</main></body></html>",
        lang.t("ja", "en"),
        esc(title),
        esc(title)
    );
    (status, Html(html)).into_response()
}

fn message(msg: Option<&str>, error: bool) -> String {
    msg.map(|m| format!("<p class=\"msg{}\" role=\"alert\" id=\"message\">{}</p>", if error { " err" } else { "" }, esc(m)))
        .unwrap_or_default()
}

/// A page that only says what went wrong.
pub fn error(lang: Lang, status: StatusCode, ja: &str, en: &str) -> Response {
    let text = match lang {
        Lang::Ja if ja != en => format!("{ja} / {en}"),
        Lang::Ja => ja.to_string(),
        Lang::En => en.to_string(),
    };
    layout(
        lang,
        lang.t("エラー", "Error"),
        None,
        &format!("{}<p><a href=\"/\">{}</a></p>", message(Some(&text), true), lang.t("トップへ", "Home")),
        status,
    )
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

/// The sign-in form.
pub fn login(lang: Lang, pre: &str, notice: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let body = format!(
        "{}{}<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"login\">{}</label><input id=\"login\" name=\"login\" autocomplete=\"username\" required>\
         <label for=\"password\">{}</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" id=\"submit\">{}</button></form><p>{}</p>",
        message(notice, false),
        message(error, true),
        esc(pre),
        lang.t("利用者ID", "Login ID"),
        lang.t("パスワード", "Password"),
        lang.t("次へ", "Next"),
        lang.t(
            "パスワードを忘れた場合は、所属機関のデータ管理者または運用管理者に再設定を依頼してください。",
            "Forgot your password? Ask your institution's custodian or the operator to reset it."
        ),
    );
    layout(lang, lang.t("ログイン", "Sign in"), None, &body, status)
}

/// The second-factor form.
pub fn second_factor(lang: Lang, csrf: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = format!(
        "{}<form method=\"post\" action=\"/login/second\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"code\">{}</label><input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required>\
         <button type=\"submit\" id=\"submit\">{}</button></form>\
         <form class=\"inline\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">{}</button></form>",
        message(error, true),
        esc(csrf),
        lang.t("認証アプリの6桁の確認コード（または回復コード）", "The 6-digit code from your authenticator app (or a recovery code)"),
        lang.t("ログイン", "Sign in"),
        esc(csrf),
        lang.t("中止", "Cancel"),
    );
    layout(lang, lang.t("確認コード", "Second factor"), None, &body, status)
}

/// TOTP enrolment: the QR code, the secret for typing, and the form.
pub fn enrol(lang: Lang, csrf: &str, e: &Enrolment, error: Option<&str>, status: StatusCode) -> Response {
    let body = format!(
        "{}<p>{}</p><div id=\"qr\">{}</div><p>{} <code id=\"secret\">{}</code></p>\
         <form method=\"post\" action=\"/login/enrol\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"code\">{}</label><input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required>\
         <button type=\"submit\" id=\"submit\">{}</button></form>",
        message(error, true),
        lang.t(
            "二要素認証を設定します。認証アプリ（FreeOTP、Aegis、Google Authenticator など）でQRコードを読み取ってください。",
            "Set up your second factor: scan the QR code with an authenticator app (FreeOTP, Aegis, Google Authenticator, …)."
        ),
        // The SVG is generated by Kura from the URI; it contains no script or link.
        e.qr_svg.trim_start_matches(|c| c != '<').split_once("?>").map_or(e.qr_svg.as_str(), |(_, svg)| svg),
        lang.t("手入力する場合の鍵:", "Or type this key:"),
        esc(&e.secret_base32),
        esc(csrf),
        lang.t("アプリに表示された6桁のコード", "The 6-digit code the app shows"),
        lang.t("設定する", "Confirm"),
    );
    layout(lang, lang.t("二要素認証の設定", "Set up two-factor sign-in"), None, &body, status)
}

/// The new password a user must choose after a reset.
pub fn new_password(lang: Lang, csrf: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = format!(
        "{}<p>{}</p><form method=\"post\" action=\"/login/password\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"new\">{}</label><input id=\"new\" name=\"new\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\" id=\"submit\">{}</button></form>",
        message(error, true),
        lang.t(
            "パスワードは再設定されました。ご自身だけが知る新しいパスワードを決めてください。",
            "Your password was reset: choose a new one that only you know."
        ),
        esc(csrf),
        lang.t("新しいパスワード（12文字以上、推測されにくいもの）", "New password (12+ characters, hard to guess)"),
        lang.t("設定する", "Set password"),
    );
    layout(lang, lang.t("新しいパスワード", "New password"), None, &body, status)
}

/// The recovery codes, shown once.
pub fn recovery_codes(lang: Lang, codes: &[String], next: &str) -> Response {
    let list: String = codes.iter().map(|c| format!("<li>{}</li>", esc(c))).collect();
    let body = format!(
        "<p>{}</p><ol class=\"codes\" id=\"recovery-codes\">{list}</ol><p><a id=\"continue\" href=\"{next}\">{}</a></p>",
        lang.t(
            "回復コードです。認証アプリを使えないときに1回ずつ使えます。安全な場所に控えてください。この画面は二度と表示されません。",
            "Your recovery codes: each works once when you cannot use the app. Keep them somewhere safe; this page is shown only once."
        ),
        lang.t("続ける", "Continue"),
    );
    layout(lang, lang.t("回復コード", "Recovery codes"), None, &body, StatusCode::OK)
}

/// The second-device confirmation (HX-11).
pub fn confirm(lang: Lang, csrf: &str, others: &[(i64, String)]) -> Response {
    let list: String = others
        .iter()
        .map(|(at, fp)| {
            format!(
                "<li>{} — {} <code>{}</code></li>",
                esc(&crate::api::time_text(*at)),
                lang.t("証明書", "certificate"),
                esc(&fp[..fp.len().min(23)])
            )
        })
        .collect();
    let body = format!(
        "<p>{}</p><ul>{list}</ul><form method=\"post\" action=\"/login/confirm\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" id=\"confirm\">{}</button></form>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">{}</button></form>",
        lang.t(
            "このIDは別のブラウザまたは端末でログイン中です。ここでログインを続けると、そちらはログアウトされ、その旨が表示されます。",
            "This ID is signed in on another browser or device. If you continue here, that session is signed out and told why."
        ),
        esc(csrf),
        lang.t("ここでログインを続ける", "Continue here"),
        esc(csrf),
        lang.t("中止", "Cancel"),
    );
    layout(lang, lang.t("別の端末でログイン中です", "Signed in elsewhere"), None, &body, StatusCode::OK)
}

/// The signed-in home page.
pub fn home(lang: Lang, s: &Session, operator_listener: bool) -> Response {
    let admin = if operator_listener && s.role == kura_accounts::Role::Operator {
        format!("<li><a href=\"/admin/users\">{}</a></li>", lang.t("利用者の管理", "Manage users"))
    } else {
        String::new()
    };
    let body = format!(
        "<p id=\"welcome\">{} {}</p><ul><li><a href=\"/account\">{}</a></li>{admin}</ul>",
        esc(if s.name.is_empty() { &s.login } else { &s.name }),
        lang.t("さん、ようこそ。", "— welcome."),
        lang.t("アカウント", "Your account"),
    );
    layout(lang, lang.t("ホーム", "Home"), Some(s), &body, StatusCode::OK)
}

/// The account page with the password form.
pub fn account(lang: Lang, s: &Session, u: &User, msg: Option<&str>) -> Response {
    let body = format!(
        "{}<table><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr>\
         <tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td><code>{}</code></td></tr></table>\
         <form method=\"post\" action=\"/account/password\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"current\">{}</label><input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"new\">{}</label><input id=\"new\" name=\"new\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">{}</button></form>",
        message(msg, false),
        lang.t("利用者ID", "Login"),
        esc(&u.login),
        lang.t("所属機関", "Institution"),
        esc(&u.institution),
        lang.t("役割", "Role"),
        esc(lang.t(u.role.label_ja(), u.role.as_str())),
        lang.t("二要素認証", "Second factor"),
        if u.totp { lang.t("設定済み", "enrolled") } else { lang.t("未設定", "not enrolled") },
        lang.t("この端末の証明書", "This device's certificate"),
        esc(&s.fingerprint),
        esc(&s.csrf),
        lang.t("現在のパスワード", "Current password"),
        lang.t("新しいパスワード（12文字以上、推測されにくいもの）", "New password (12+ characters, hard to guess)"),
        lang.t("パスワードを変更", "Change password"),
    );
    layout(lang, lang.t("アカウント", "Account"), Some(s), &body, StatusCode::OK)
}

/// The operators' user list and forms.
pub fn admin_users(lang: Lang, s: &Session, rows: &[InventoryRow], msg: Option<&str>) -> Response {
    let csrf = esc(&s.csrf);
    let action = |login: &str, a: &str, label: &str| {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"/admin/users/{}/{a}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">{}</button></form> ",
            esc(login),
            esc(label)
        )
    };
    let rows: String = rows
        .iter()
        .map(|r| {
            let u = &r.user;
            format!(
                "<tr id=\"user-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}{}{}{}</td></tr>",
                esc(&u.login),
                esc(&u.login),
                esc(&u.institution),
                esc(u.role.as_str()),
                esc(u.state.as_str()),
                if u.locked { lang.t("ロック中", "locked") } else { "" },
                esc(&r.flags.join(" ")),
                action(
                    &u.login,
                    if u.locked { "unlock" } else { "lock" },
                    if u.locked { lang.t("解除", "unlock") } else { lang.t("ロック", "lock") }
                ),
                action(&u.login, "activate", lang.t("有効化", "activate")),
                action(&u.login, "suspend", lang.t("停止", "suspend")),
                action(&u.login, "disable", lang.t("廃止", "disable")),
                action(&u.login, "revoke-certificates", lang.t("証明書失効", "revoke certificates")),
            )
        })
        .collect();
    let body = format!(
        "{}<table id=\"users\"><tr><th>ID</th><th>{}</th><th>{}</th><th>{}</th><th></th><th>{}</th><th></th></tr>{rows}</table>\
         <form method=\"post\" action=\"/admin/users\"><h2>{}</h2><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"login\">{}</label><input id=\"login\" name=\"login\" required>\
         <label for=\"institution\">{}</label><input id=\"institution\" name=\"institution\" required>\
         <label for=\"role\">{}</label><select id=\"role\" name=\"role\">{}</select>\
         <label for=\"name\">{}</label><input id=\"name\" name=\"name\">\
         <label for=\"password\">{}</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\">\
         <button type=\"submit\">{}</button></form>",
        message(msg, false),
        lang.t("機関", "Institution"),
        lang.t("役割", "Role"),
        lang.t("状態", "State"),
        lang.t("要確認", "Flags"),
        lang.t("利用者の追加", "Add a user"),
        lang.t("利用者ID", "Login"),
        lang.t("機関コード", "Institution code"),
        lang.t("役割", "Role"),
        kura_accounts::Role::ALL
            .iter()
            .map(|r| format!("<option value=\"{}\">{}</option>", r.as_str(), esc(lang.t(r.label_ja(), r.as_str()))))
            .collect::<String>(),
        lang.t("氏名", "Name"),
        lang.t("初期パスワード（空なら保留状態で作成）", "Initial password (empty: created pending)"),
        lang.t("追加", "Add"),
    );
    layout(lang, lang.t("利用者の管理", "Users"), Some(s), &body, StatusCode::OK)
}
