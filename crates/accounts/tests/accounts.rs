//! Accounts over the real store of record — SQLite, and PostgreSQL when `KURA_TEST_POSTGRES`
//! is set (CI sets it) — with the real audit log (HX-6, HX-9, HX-11, HIC-U2, HIC-U3, HIC-U4).

use kura_accounts::session::{SessionEnd, SessionState};
use kura_accounts::totp;
use kura_accounts::{
    Accounts, AccountsError, Clock, HashCost, Hasher, LoginRefused, NewUser, Policy, Resetter, Role, Transition, UserState, Weakness, Who,
};
use kura_crypto::SecretKey;
use kura_db::Db;
use kura_ledger::entry::Entry;
use kura_ledger::log::{Log, LogOptions};
use kura_ledger::store::{LedgerStore, SqlStore};
use kura_tlog::tiles::DirTiles;
use kura_tlog::{SigType, SignerKey};
use std::path::Path;
use std::sync::Arc;

const PW: &str = "kaki-no-tane umbrella 83 orbit";
const CERT_A: &str = "sha256:aaaa";
const CERT_B: &str = "sha256:bbbb";
const PORTAL: &str = "portal";

async fn service(db: Db, dir: &Path) -> Accounts {
    let key = SignerKey::generate("kura.test/log", SigType::Ed25519).unwrap();
    let log = Log::open(SqlStore::new(db.clone()), Arc::new(DirTiles::new(&dir.join("log"))), LogOptions::new(key)).await.unwrap();
    Accounts::new(db, log, SecretKey::generate().unwrap(), Policy::default(), Hasher::new(HashCost::TEST, 1, 64), Clock::default())
        .await
        .unwrap()
}

/// Every audit entry's action, object and outcome, in order.
async fn trail(a: &Accounts) -> Vec<(String, String, String)> {
    let n = a.log().store().size().await.unwrap();
    a.log()
        .store()
        .read(0, n)
        .await
        .unwrap()
        .iter()
        .filter_map(|b| match Entry::decode(b).unwrap() {
            Entry::Audit(e) => Some((e.action, e.object, e.outcome)),
            _ => None,
        })
        .collect()
}

async fn setup(db: Db, dir: &Path) -> Accounts {
    let a = service(db, dir).await;
    let who = Who::console();
    a.add_institution(&who, "1310000001", "蔵大学病院").await.unwrap();
    a.add_user(
        &who,
        &NewUser { login: "tanaka.h".into(), institution: "1310000001".into(), role: Role::Researcher, name: "田中 花子".into() },
        Some(PW),
    )
    .await
    .unwrap();
    a.register_certificate(&who, CERT_A, "01", Some("tanaka.h"), "1310000001", i64::MAX).await.unwrap();
    a.register_certificate(&who, CERT_B, "02", Some("tanaka.h"), "1310000001", i64::MAX).await.unwrap();
    a
}

fn code_now(secret_b32: &str, a: &Accounts, offset_steps: i64) -> String {
    let secret = totp::base32_decode(secret_b32).unwrap();
    let step = (a.clock().now() / totp::STEP as i64 + offset_steps) as u64;
    format!("{:06}", totp::code_at_step(&secret, step, totp::DIGITS))
}

/// A six-digit code that no step within the accepted window (±1) of now takes, nor the step
/// after it (the clock may move on before the code is checked).
fn wrong_now(secret_b32: &str, a: &Accounts) -> String {
    let taken: Vec<String> = (-1..=2).map(|o| code_now(secret_b32, a, o)).collect();
    (0..).map(|c| format!("{c:06}")).find(|c| !taken.contains(c)).unwrap()
}

/// Password, enrolment and a full sign-in; returns the token and the TOTP secret.
async fn sign_in(a: &Accounts, fp: &str) -> (String, String) {
    let who = Who::default();
    let ok = a.check_password(&who, "tanaka.h", PW, fp).await.unwrap();
    assert!(!ok.enrolled);
    let (token, s) = a.start_session(&who, "tanaka.h", fp, PORTAL, SessionState::Enrol).await.unwrap();
    let e = a.begin_enrolment("tanaka.h").await.unwrap();
    assert!(e.uri.contains("algorithm=SHA256") && e.qr_svg.contains("<svg"));
    let codes = a.finish_enrolment(&who, "tanaka.h", &code_now(&e.secret_base32, a, 0)).await.unwrap();
    assert_eq!(codes.len(), 10);
    let signed_in = a.advance_session(&who, &s, SessionState::Active).await.unwrap();
    // The token changes with the step: the one from before the second factor is worth nothing.
    assert_ne!(signed_in, token);
    assert!(matches!(a.session(&who, &token, fp, PORTAL, true).await.unwrap(), Err(SessionEnd::Unknown)));
    (signed_in, e.secret_base32)
}

#[tokio::test]
async fn lockout_after_five_failures_and_unlock() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let a = setup(db.clone(), scratch.path().join(format!("{:?}", db.backend())).as_path()).await;
        let who = Who::default();
        for i in 1..=5 {
            let e = a.check_password(&who, "tanaka.h", "wrong password", CERT_A).await.unwrap_err();
            assert!(matches!(e, LoginRefused::BadCredentials), "attempt {i}: {e}");
        }
        // The fifth failure locked the account; the answer names a lock as a possible cause
        // (HIC-U3) without telling this login from any other.
        assert!(a.user("tanaka.h").await.unwrap().locked);
        let e = a.check_password(&who, "tanaka.h", PW, CERT_A).await.unwrap_err();
        assert!(matches!(e, LoginRefused::BadCredentials), "locked: even the right password gets the same answer: {e}");
        assert!(e.to_string().contains("ロック") && e.to_string().contains("locks"), "{e}");
        a.unlock(&Who::console(), "tanaka.h").await.unwrap();
        a.check_password(&who, "tanaka.h", PW, CERT_A).await.unwrap();
        // Unknown logins count against nobody; another certificate with the right password is
        // a failed attempt like a wrong password — and answered identically, no sooner than
        // the policy's floor, after one hash.
        let started = std::time::Instant::now();
        assert!(matches!(a.check_password(&who, "nobody", PW, CERT_A).await, Err(LoginRefused::BadCredentials)));
        assert!(started.elapsed() >= Policy::default().failure_floor);
        assert!(matches!(a.check_password(&who, "tanaka.h", PW, "sha256:cccc").await, Err(LoginRefused::BadCredentials)));
        assert!(matches!(a.check_password(&who, &"x".repeat(70_000), PW, CERT_A).await, Err(LoginRefused::BadCredentials)));
        // Five counted failures, and one refusal written for the locked account; the wrong
        // certificate's refusal is a repeat of that kind (same caller, same account): counted,
        // and summarised when its window closes.
        let t = trail(&a).await;
        let denied = t.iter().filter(|(act, obj, out)| act == "auth.password" && obj == "tanaka.h" && out == "denied").count();
        assert_eq!(denied, 5 + 1, "{t:?}");
        assert!(a.flush_refusals(true).await.unwrap() >= 1);
        let t = trail(&a).await;
        let denied = t.iter().filter(|(act, obj, out)| act == "auth.password" && obj == "tanaka.h" && out == "denied").count();
        assert_eq!(denied, 5 + 1 + 1, "with the summary: {t:?}");
        assert!(t.contains(&("user.lock".into(), "tanaka.h".into(), "ok".into())));
        assert!(t.contains(&("user.unlock".into(), "tanaka.h".into(), "ok".into())));
        assert!(t.contains(&("auth.password".into(), "".into(), "denied".into())), "unknown login recorded without its text");
        assert!(!t.iter().any(|(_, o, _)| o.contains("xxxx")), "a malformed login is never recorded");
    }
}

/// Finding 3 (issue 14): guesses that arrive together are counted before any is checked, so at
/// most the threshold of them are ever checked against the password.
#[tokio::test]
async fn concurrent_guesses_are_counted_before_they_are_checked() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let a = setup(db.clone(), scratch.path().join(format!("{:?}", db.backend())).as_path()).await;
        let who = Who::default();
        let guesses = (0..40).map(|i| {
            let a = a.clone();
            let who = who.clone();
            async move { a.check_password(&who, "tanaka.h", &format!("wrong guess {i}"), CERT_A).await }
        });
        let answers = futures::future::join_all(guesses).await;
        assert!(answers.iter().all(|r| matches!(r, Err(LoginRefused::BadCredentials))));
        let t = trail(&a).await;
        let checked = t.iter().filter(|(act, obj, out)| act == "auth.password" && obj == "tanaka.h" && out == "denied").count();
        // Five counted failures, plus at most one written refusal of the locked kind.
        assert!(checked <= 6, "{checked} denials recorded for 40 guesses: {t:?}");
        assert!(a.user("tanaka.h").await.unwrap().locked);
    }
}

#[tokio::test]
async fn time_based_lock_expires_and_starts_counting_again() {
    let scratch = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let key = SignerKey::generate("kura.test/log", SigType::Ed25519).unwrap();
    let log =
        Log::open(SqlStore::new(db.clone()), Arc::new(DirTiles::new(&scratch.path().join("log"))), LogOptions::new(key)).await.unwrap();
    let policy = Policy { lock_for: Some(std::time::Duration::from_secs(600)), lockout_threshold: 2, ..Policy::default() };
    let a =
        Accounts::new(db, log, SecretKey::generate().unwrap(), policy, Hasher::new(HashCost::TEST, 1, 64), Clock::default()).await.unwrap();
    let who = Who::console();
    a.add_institution(&who, "X1", "X").await.unwrap();
    a.add_user(&who, &NewUser { login: "u1".into(), institution: "X1".into(), role: Role::Reviewer, name: "".into() }, Some(PW))
        .await
        .unwrap();
    a.register_certificate(&who, CERT_A, "01", Some("u1"), "X1", i64::MAX).await.unwrap();
    a.check_password(&who, "u1", "nope", CERT_A).await.unwrap_err();
    a.check_password(&who, "u1", "nope", CERT_A).await.unwrap_err();
    assert!(a.user("u1").await.unwrap().locked);
    a.clock().advance(601);
    assert!(!a.user("u1").await.unwrap().locked);
    // A timed lock that ran out starts the count again: one failure does not lock at once.
    a.check_password(&who, "u1", "nope", CERT_A).await.unwrap_err();
    assert!(!a.user("u1").await.unwrap().locked, "one failure after the lock ended locked the account again");
    a.check_password(&who, "u1", PW, CERT_A).await.unwrap();
}

#[tokio::test]
async fn totp_replay_and_recovery_codes() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let a = setup(db.clone(), scratch.path().join(format!("{:?}", db.backend())).as_path()).await;
        let who = Who::default();
        // Enrolment refuses a wrong code, then issues ten recovery codes.
        a.check_password(&who, "tanaka.h", PW, CERT_A).await.unwrap();
        let e = a.begin_enrolment("tanaka.h").await.unwrap();
        assert!(matches!(a.finish_enrolment(&who, "tanaka.h", &wrong_now(&e.secret_base32, &a)).await, Err(LoginRefused::BadCode)));
        let codes = a.finish_enrolment(&who, "tanaka.h", &code_now(&e.secret_base32, &a, 0)).await.unwrap();
        assert!(a.user("tanaka.h").await.unwrap().totp);
        // Next step's code works once; the same code again is a replay.
        a.clock().advance(30);
        let c = code_now(&e.secret_base32, &a, 0);
        a.check_second_factor(&who, "tanaka.h", &c).await.unwrap();
        assert!(matches!(a.check_second_factor(&who, "tanaka.h", &c).await, Err(LoginRefused::BadCode)));
        // An older code (previous step, inside the window) is refused too: its step is used.
        assert!(a.check_second_factor(&who, "tanaka.h", &code_now(&e.secret_base32, &a, -1)).await.is_err());
        // A recovery code works once, in any case and with or without its hyphen.
        a.check_second_factor(&who, "tanaka.h", &codes[0].to_uppercase()).await.unwrap();
        assert!(matches!(a.check_second_factor(&who, "tanaka.h", &codes[0].replace('-', "")).await, Err(LoginRefused::BadCode)));
        a.check_second_factor(&who, "tanaka.h", &codes[1]).await.unwrap();
        let t = trail(&a).await;
        assert!(t.iter().filter(|(act, _, out)| act == "auth.second_factor" && out == "ok").count() == 3, "{t:?}");
        assert!(t.iter().any(|(act, _, out)| act == "auth.second_factor" && out == "denied"));
        // A stolen database row does not open under another accounts key.
        let other = service(a.db().clone(), &scratch.path().join(format!("other-{:?}", db.backend()))).await;
        assert!(matches!(other.check_second_factor(&who, "tanaka.h", "123456").await, Err(LoginRefused::Error(AccountsError::Crypto(_)))));
    }
}

#[tokio::test]
async fn sessions_expire_bind_to_the_certificate_and_confirm_a_second_device() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let a = setup(db.clone(), scratch.path().join(format!("{:?}", db.backend())).as_path()).await;
        let who = Who::default();
        let (token, secret) = sign_in(&a, CERT_A).await;
        let s = a.session(&who, &token, CERT_A, PORTAL, true).await.unwrap().unwrap();
        assert_eq!((s.state, s.role, s.login.as_str()), (SessionState::Active, Role::Researcher, "tanaka.h"));
        assert_eq!(s.csrf.len(), 64);
        assert!(matches!(a.session(&who, "not-a-token", CERT_A, PORTAL, true).await.unwrap(), Err(SessionEnd::Unknown)));
        // A portal session is no session on the operators' listener, and is left alone there.
        assert!(matches!(a.session(&who, &token, CERT_A, "operator", true).await.unwrap(), Err(SessionEnd::Unknown)));
        a.session(&who, &token, CERT_A, PORTAL, true).await.unwrap().unwrap();

        // Idle: 14 minutes is fine, and resets the timer; 16 more minutes is not.
        a.clock().advance(14 * 60);
        a.session(&who, &token, CERT_A, PORTAL, true).await.unwrap().unwrap();
        a.clock().advance(16 * 60);
        assert_eq!(a.session(&who, &token, CERT_A, PORTAL, true).await.unwrap().unwrap_err(), SessionEnd::Idle);
        assert_eq!(a.session(&who, &token, CERT_A, PORTAL, true).await.unwrap().unwrap_err(), SessionEnd::Idle, "stays ended");

        // Absolute: active every 10 minutes, still ended after 12 hours.
        a.check_password(&who, "tanaka.h", PW, CERT_A).await.unwrap();
        let (_, s) = a.start_session(&who, "tanaka.h", CERT_A, PORTAL, SessionState::SecondFactor).await.unwrap();
        a.clock().advance(30);
        a.check_second_factor(&who, "tanaka.h", &code_now(&secret, &a, 0)).await.unwrap();
        let token = a.advance_session(&who, &s, SessionState::Active).await.unwrap();
        let mut ended = None;
        for _ in 0..80 {
            a.clock().advance(600);
            if let Err(e) = a.session(&who, &token, CERT_A, PORTAL, true).await.unwrap() {
                ended = Some(e);
                break;
            }
        }
        assert_eq!(ended, Some(SessionEnd::Absolute));

        // Bound to the certificate: the cookie presented with another certificate ends it.
        let (token, _) = {
            a.check_password(&who, "tanaka.h", PW, CERT_A).await.unwrap();
            let (t, s) = a.start_session(&who, "tanaka.h", CERT_A, PORTAL, SessionState::Active).await.unwrap();
            (t, s)
        };
        assert_eq!(a.session(&who, &token, CERT_B, PORTAL, true).await.unwrap().unwrap_err(), SessionEnd::CertificateMismatch);
        assert_eq!(a.session(&who, &token, CERT_A, PORTAL, true).await.unwrap().unwrap_err(), SessionEnd::CertificateMismatch);

        // Second device: the first session is listed, confirmation ends it, and the first
        // device is told why at its next request (HX-11).
        let (first, _) = a.start_session(&who, "tanaka.h", CERT_A, PORTAL, SessionState::Active).await.unwrap();
        let (_second, s2) = a.start_session(&who, "tanaka.h", CERT_B, PORTAL, SessionState::Confirm).await.unwrap();
        let others = a.other_sessions(&s2).await.unwrap();
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].1, CERT_A);
        assert_eq!(a.confirm_session(&who, &s2).await.unwrap().0, 1);
        let end = a.session(&who, &first, CERT_A, PORTAL, true).await.unwrap().unwrap_err();
        assert!(matches!(end, SessionEnd::Replaced(_)), "{end:?}");
        assert!(end.message().contains("別のブラウザまたは端末") && end.message().contains("another browser or device"));

        // Suspension ends sessions.
        let (third, _) = a.start_session(&who, "tanaka.h", CERT_A, PORTAL, SessionState::Active).await.unwrap();
        a.transition(&Who::console(), "tanaka.h", Transition::Suspend).await.unwrap();
        assert_eq!(a.session(&who, &third, CERT_A, PORTAL, true).await.unwrap().unwrap_err(), SessionEnd::AccountChanged);
    }
}

#[tokio::test]
async fn passwords_lifecycle_inventory_and_certificates() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let a = setup(db.clone(), scratch.path().join(format!("{:?}", db.backend())).as_path()).await;
        let op = Who::console();
        let who = Who::default();
        // Weak, personal and reused passwords are refused, saying why.
        for (pw, want) in [("sakura", "at least 12"), ("tanaka.h is my login", "login, name or institution"), ("password1234", "")] {
            let e = a.change_password(&who, "tanaka.h", PW, pw).await.unwrap_err().to_string();
            assert!(e.contains("password refused") && e.contains(want), "{pw}: {e}");
        }
        let next = "seventeen lanterns over kamo river";
        a.change_password(&who, "tanaka.h", PW, next).await.unwrap();
        let e = a.reset_password(&op, &Resetter::Console, "tanaka.h", PW).await.unwrap_err();
        assert!(matches!(e, AccountsError::WeakPassword(Weakness::Reused(5))), "{e}");
        a.reset_password(&op, &Resetter::Console, "tanaka.h", "quiet harbour 4 brass kettles").await.unwrap();
        assert!(a.change_password(&who, "tanaka.h", next, "another fine long phrase 77").await.is_err(), "old password no longer valid");

        // Lifecycle: pending without a password; activation needs one; disabled is final.
        let u = a
            .add_user(
                &op,
                &NewUser { login: "sato.k".into(), institution: "1310000001".into(), role: Role::Reviewer, name: "佐藤".into() },
                None,
            )
            .await
            .unwrap();
        assert_eq!(u.state, UserState::Pending);
        assert!(a.transition(&op, "sato.k", Transition::Activate).await.is_err());
        a.reset_password(&op, &Resetter::Console, "sato.k", "wide field of copper poppies").await.unwrap();
        a.register_certificate(&op, "sha256:5a70", "05", Some("sato.k"), "1310000001", i64::MAX).await.unwrap();
        assert_eq!(a.transition(&op, "sato.k", Transition::Activate).await.unwrap().state, UserState::Active);
        assert_eq!(a.transition(&op, "sato.k", Transition::Suspend).await.unwrap().state, UserState::Suspended);
        assert_eq!(a.transition(&op, "sato.k", Transition::Disable).await.unwrap().state, UserState::Disabled);
        let e = a.transition(&op, "sato.k", Transition::Activate).await.unwrap_err().to_string();
        assert!(e.contains("disabled") && e.contains("cannot activate"), "{e}");
        // The right password with the user's own certificate learns the state; anything less
        // gets the same answer as a wrong password.
        assert!(matches!(
            a.check_password(&who, "sato.k", "wide field of copper poppies", "sha256:5a70").await,
            Err(LoginRefused::NotActive("disabled"))
        ));
        assert!(matches!(
            a.check_password(&who, "sato.k", "wide field of copper poppies", CERT_A).await,
            Err(LoginRefused::BadCredentials)
        ));
        assert!(matches!(a.check_password(&who, "sato.k", "not it at all", "sha256:5a70").await, Err(LoginRefused::BadCredentials)));
        assert!(matches!(
            a.add_user(&op, &NewUser { login: "x".into(), institution: "nope".into(), role: Role::Auditor, name: "".into() }, None).await,
            Err(AccountsError::Invalid { .. }) | Err(AccountsError::NoInstitution(_))
        ));
        assert!(matches!(
            a.add_user(
                &op,
                &NewUser { login: "tanaka.h".into(), institution: "1310000001".into(), role: Role::Auditor, name: "".into() },
                None
            )
            .await,
            Err(AccountsError::Exists(_))
        ));

        // Inventory (HX-9).
        let inv = a.inventory().await.unwrap();
        let t = inv.iter().find(|r| r.user.login == "tanaka.h").unwrap();
        assert_eq!(t.certificates, 2);
        assert!(t.flags.contains(&"never_signed_in") && t.flags.contains(&"no_second_factor"), "{:?}", t.flags);

        // Revocation: the serials are listed for the TLS layer, and the certificate no longer
        // signs anyone in.
        let done = a.revoke_certificates(&op, Some("tanaka.h"), None).await.unwrap();
        let mut fps: Vec<&str> = done.iter().map(|r| r.fingerprint.as_str()).collect();
        fps.sort();
        assert_eq!(fps, vec![CERT_A, CERT_B]);
        let mut revoked = a.revoked_serials().await.unwrap();
        revoked.sort();
        assert_eq!(revoked, vec!["01".to_string(), "02".to_string()]);
        assert!(matches!(
            a.check_password(&who, "tanaka.h", "quiet harbour 4 brass kettles", CERT_A).await,
            Err(LoginRefused::BadCredentials)
        ));
        let t = trail(&a).await;
        for action in [
            "user.password_change",
            "user.password_reset",
            "user.create",
            "user.activate",
            "user.suspend",
            "user.disable",
            "cert.issue",
            "cert.revoke",
        ] {
            assert!(t.iter().any(|(act, _, out)| act == action && out == "ok"), "{action} missing from the trail");
        }
    }
}

/// Finding 2 (issue 14): who may reset whose password, the change a reset forces, and which
/// users an institution's machine certificate signs in.
#[tokio::test]
async fn resets_by_role_force_a_change_and_machine_certificates_sign_in_providers_only() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let a = setup(db.clone(), scratch.path().join(format!("{:?}", db.backend())).as_path()).await;
        let op = Who::console();
        a.add_institution(&op, "9900000001", "Other").await.unwrap();
        for (login, role, inst) in [
            ("cust1", Role::Custodian, "1310000001"),
            ("cust2", Role::Custodian, "1310000001"),
            ("rev1", Role::Reviewer, "1310000001"),
            ("prov1", Role::Provider, "1310000001"),
            ("op1", Role::Operator, "1310000001"),
            ("op2", Role::Operator, "1310000001"),
            ("aud1", Role::Auditor, "1310000001"),
            ("far1", Role::Researcher, "9900000001"),
        ] {
            a.add_user(&op, &NewUser { login: login.into(), institution: inst.into(), role, name: String::new() }, Some(PW)).await.unwrap();
        }
        let by = |login: &str, role: Role| Resetter::User { login: login.into(), role, institution: "1310000001".into() };
        let custodian = by("cust1", Role::Custodian);
        let new_pw = "tako-yaki lantern 51 harbour";
        for (target, allowed) in [
            ("tanaka.h", true),
            ("rev1", true),
            ("prov1", true),
            ("op1", false),
            ("aud1", false),
            ("cust2", false),
            ("cust1", false),
            ("far1", false),
        ] {
            let r = a.reset_password(&op, &custodian, target, new_pw).await;
            assert_eq!(r.is_ok(), allowed, "custodian resets {target}: {r:?}");
            if target == "cust1" {
                // Their own: told where their own password is changed.
                assert!(matches!(r, Err(AccountsError::NotPermitted(_))), "{r:?}");
            } else if !allowed {
                // Told the same as for a login that does not exist.
                assert!(matches!(r, Err(AccountsError::NoUser(_))), "{r:?}");
            }
        }
        assert!(matches!(a.reset_password(&op, &by("op1", Role::Operator), "op1", new_pw).await, Err(AccountsError::NotPermitted(_))));
        a.reset_password(&op, &by("op1", Role::Operator), "op2", new_pw).await.unwrap();
        assert!(matches!(
            a.reset_password(&op, &by("tanaka.h", Role::Researcher), "rev1", new_pw).await,
            Err(AccountsError::NotPermitted(_))
        ));
        assert!(matches!(a.reset_password(&op, &by("aud1", Role::Auditor), "rev1", new_pw).await, Err(AccountsError::NotPermitted(_))));

        // After a reset the user signs in, does the second factor, then must choose a new
        // password (not the reset one) before the session is usable.
        let ok = a.check_password(&Who::default(), "tanaka.h", new_pw, CERT_A).await.unwrap();
        assert!(ok.must_change && !ok.enrolled);
        let (_, s) = a.start_session(&Who::default(), "tanaka.h", CERT_A, PORTAL, SessionState::NewPassword).await.unwrap();
        let e = a.set_new_password(&Who::default(), &s, new_pw).await.unwrap_err();
        assert!(matches!(e, AccountsError::WeakPassword(Weakness::Reused(_))), "{e}");
        a.set_new_password(&Who::default(), &s, "mine alone: 7 quiet otters").await.unwrap();
        assert!(!a.check_password(&Who::default(), "tanaka.h", "mine alone: 7 quiet otters", CERT_A).await.unwrap().must_change);

        // An institution's machine certificate signs in its providers, and nobody else.
        a.register_certificate(&op, "sha256:3ac1", "09", None, "1310000001", i64::MAX).await.unwrap();
        a.check_password(&Who::default(), "prov1", new_pw, "sha256:3ac1").await.unwrap();
        a.add_user(
            &op,
            &NewUser { login: "op3".into(), institution: "1310000001".into(), role: Role::Operator, name: String::new() },
            Some(PW),
        )
        .await
        .unwrap();
        for login in ["op3", "aud1", "cust2"] {
            assert!(
                matches!(a.check_password(&Who::default(), login, PW, "sha256:3ac1").await, Err(LoginRefused::BadCredentials)),
                "the machine certificate signed in {login}"
            );
        }
    }
}

/// Review of the hardening: a sign-in whose request goes away half-way (a closed tab, a
/// client time-out) still finishes, so its counted attempt is given back: the right password
/// never locks an account, however often it is interrupted.
#[tokio::test]
async fn an_interrupted_sign_in_finishes_and_counts_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let a = setup(db, scratch.path()).await;
    let who = Who::default();
    for i in 0..8 {
        // Polled once (the step is under way), then dropped.
        let step = a.check_password(&who, "tanaka.h", PW, CERT_A);
        let _ = tokio::time::timeout(std::time::Duration::ZERO, step).await;
        // The step ends on its own: its "ok" entry is the last thing it writes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while trail(&a).await.iter().filter(|(act, obj, out)| act == "auth.password" && obj == "tanaka.h" && out == "ok").count() <= i {
            assert!(std::time::Instant::now() < deadline, "the interrupted sign-in {i} never finished");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(a.user("tanaka.h").await.unwrap().failed_logins, 0, "after interruption {i}");
    }
    assert!(!a.user("tanaka.h").await.unwrap().locked);
}
