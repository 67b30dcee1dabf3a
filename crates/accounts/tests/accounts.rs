//! Accounts over the real store of record — SQLite, and PostgreSQL when `KURA_TEST_POSTGRES`
//! is set (CI sets it) — with the real audit log (HX-6, HX-9, HX-11, HIC-U2, HIC-U3, HIC-U4).

use kura_accounts::session::{SessionEnd, SessionState};
use kura_accounts::totp;
use kura_accounts::{
    Accounts, AccountsError, Clock, HashCost, Hasher, LoginRefused, NewUser, Policy, Role, Transition, UserState, Weakness, Who,
};
use kura_crypto::SecretKey;
use kura_db::Db;
use kura_ledger::entry::Entry;
use kura_ledger::log::{Log, LogOptions};
use kura_ledger::store::{LedgerStore, SqlStore};
use kura_ledger::tiles::DirTiles;
use kura_ledger::{SigType, SignerKey};
use std::path::Path;
use std::sync::Arc;

const PW: &str = "kaki-no-tane umbrella 83 orbit";
const CERT_A: &str = "sha256:aaaa";
const CERT_B: &str = "sha256:bbbb";

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

/// Password, enrolment and a full sign-in; returns the token and the TOTP secret.
async fn sign_in(a: &Accounts, fp: &str) -> (String, String) {
    let who = Who::default();
    let ok = a.check_password(&who, "tanaka.h", PW, fp).await.unwrap();
    assert!(!ok.enrolled);
    let (token, s) = a.start_session(&who, "tanaka.h", fp, SessionState::Enrol).await.unwrap();
    let e = a.begin_enrolment("tanaka.h").await.unwrap();
    assert!(e.uri.contains("algorithm=SHA256") && e.qr_svg.contains("<svg"));
    let codes = a.finish_enrolment(&who, "tanaka.h", &code_now(&e.secret_base32, a, 0)).await.unwrap();
    assert_eq!(codes.len(), 10);
    a.advance_session(&who, &s, SessionState::Active).await.unwrap();
    (token, e.secret_base32)
}

#[tokio::test]
async fn lockout_after_five_failures_and_unlock() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let a = setup(db.clone(), scratch.path().join(format!("{:?}", db.backend())).as_path()).await;
        let who = Who::default();
        for i in 1..=4 {
            let e = a.check_password(&who, "tanaka.h", "wrong password", CERT_A).await.unwrap_err();
            assert!(matches!(e, LoginRefused::BadCredentials), "attempt {i}: {e}");
        }
        // The fifth failure locks, and the user is told plainly.
        let e = a.check_password(&who, "tanaka.h", "wrong password", CERT_A).await.unwrap_err();
        assert!(matches!(e, LoginRefused::Locked { until: None }), "{e}");
        assert!(e.to_string().contains("ロック") && e.to_string().contains("locked"), "{e}");
        // Locked: even the right password is refused.
        assert!(matches!(a.check_password(&who, "tanaka.h", PW, CERT_A).await, Err(LoginRefused::Locked { .. })));
        assert!(a.user("tanaka.h").await.unwrap().locked);
        a.unlock(&Who::console(), "tanaka.h").await.unwrap();
        a.check_password(&who, "tanaka.h", PW, CERT_A).await.unwrap();
        // Unknown logins and foreign certificates are refused without counting against anyone.
        assert!(matches!(a.check_password(&who, "nobody", PW, CERT_A).await, Err(LoginRefused::BadCredentials)));
        assert!(matches!(a.check_password(&who, "tanaka.h", PW, "sha256:cccc").await, Err(LoginRefused::WrongCertificate)));
        let t = trail(&a).await;
        let denied = t.iter().filter(|(act, obj, out)| act == "auth.password" && obj == "tanaka.h" && out == "denied").count();
        assert_eq!(denied, 5 + 1 + 1, "five failures, one refusal while locked, one wrong certificate: {t:?}");
        assert!(t.contains(&("user.lock".into(), "tanaka.h".into(), "ok".into())));
        assert!(t.contains(&("user.unlock".into(), "tanaka.h".into(), "ok".into())));
        assert!(t.contains(&("auth.password".into(), "".into(), "denied".into())), "unknown login recorded without its text");
    }
}

#[tokio::test]
async fn time_based_lock_expires() {
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
    let e = a.check_password(&who, "u1", "nope", CERT_A).await.unwrap_err();
    assert!(matches!(e, LoginRefused::Locked { until: Some(_) }), "{e}");
    a.clock().advance(601);
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
        assert!(
            matches!(a.finish_enrolment(&who, "tanaka.h", "000000").await, Err(LoginRefused::BadCode))
                || code_now(&e.secret_base32, &a, 0) == "000000"
        );
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
        let s = a.session(&who, &token, CERT_A, true).await.unwrap().unwrap();
        assert_eq!((s.state, s.role, s.login.as_str()), (SessionState::Active, Role::Researcher, "tanaka.h"));
        assert_eq!(s.csrf.len(), 64);
        assert!(matches!(a.session(&who, "not-a-token", CERT_A, true).await.unwrap(), Err(SessionEnd::Unknown)));

        // Idle: 14 minutes is fine, and resets the timer; 16 more minutes is not.
        a.clock().advance(14 * 60);
        a.session(&who, &token, CERT_A, true).await.unwrap().unwrap();
        a.clock().advance(16 * 60);
        assert_eq!(a.session(&who, &token, CERT_A, true).await.unwrap().unwrap_err(), SessionEnd::Idle);
        assert_eq!(a.session(&who, &token, CERT_A, true).await.unwrap().unwrap_err(), SessionEnd::Idle, "stays ended");

        // Absolute: active every 10 minutes, still ended after 12 hours.
        a.check_password(&who, "tanaka.h", PW, CERT_A).await.unwrap();
        let (token, s) = a.start_session(&who, "tanaka.h", CERT_A, SessionState::SecondFactor).await.unwrap();
        a.clock().advance(30);
        a.check_second_factor(&who, "tanaka.h", &code_now(&secret, &a, 0)).await.unwrap();
        a.advance_session(&who, &s, SessionState::Active).await.unwrap();
        let mut ended = None;
        for _ in 0..80 {
            a.clock().advance(600);
            if let Err(e) = a.session(&who, &token, CERT_A, true).await.unwrap() {
                ended = Some(e);
                break;
            }
        }
        assert_eq!(ended, Some(SessionEnd::Absolute));

        // Bound to the certificate: the cookie presented with another certificate ends it.
        let (token, _) = {
            a.check_password(&who, "tanaka.h", PW, CERT_A).await.unwrap();
            let (t, s) = a.start_session(&who, "tanaka.h", CERT_A, SessionState::Active).await.unwrap();
            (t, s)
        };
        assert_eq!(a.session(&who, &token, CERT_B, true).await.unwrap().unwrap_err(), SessionEnd::CertificateMismatch);
        assert_eq!(a.session(&who, &token, CERT_A, true).await.unwrap().unwrap_err(), SessionEnd::CertificateMismatch);

        // Second device: the first session is listed, confirmation ends it, and the first
        // device is told why at its next request (HX-11).
        let (first, _) = a.start_session(&who, "tanaka.h", CERT_A, SessionState::Active).await.unwrap();
        let (_second, s2) = a.start_session(&who, "tanaka.h", CERT_B, SessionState::Confirm).await.unwrap();
        let others = a.other_sessions(&s2).await.unwrap();
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].1, CERT_A);
        assert_eq!(a.confirm_session(&who, &s2).await.unwrap(), 1);
        let end = a.session(&who, &first, CERT_A, true).await.unwrap().unwrap_err();
        assert!(matches!(end, SessionEnd::Replaced(_)), "{end:?}");
        assert!(end.message().contains("別のブラウザまたは端末") && end.message().contains("another browser or device"));

        // Suspension ends sessions.
        let (third, _) = a.start_session(&who, "tanaka.h", CERT_A, SessionState::Active).await.unwrap();
        a.transition(&Who::console(), "tanaka.h", Transition::Suspend).await.unwrap();
        assert_eq!(a.session(&who, &third, CERT_A, true).await.unwrap().unwrap_err(), SessionEnd::AccountChanged);
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
        let e = a.reset_password(&op, "tanaka.h", PW).await.unwrap_err();
        assert!(matches!(e, AccountsError::WeakPassword(Weakness::Reused(5))), "{e}");
        a.reset_password(&op, "tanaka.h", "quiet harbour 4 brass kettles").await.unwrap();
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
        a.reset_password(&op, "sato.k", "wide field of copper poppies").await.unwrap();
        assert_eq!(a.transition(&op, "sato.k", Transition::Activate).await.unwrap().state, UserState::Active);
        assert_eq!(a.transition(&op, "sato.k", Transition::Suspend).await.unwrap().state, UserState::Suspended);
        assert_eq!(a.transition(&op, "sato.k", Transition::Disable).await.unwrap().state, UserState::Disabled);
        let e = a.transition(&op, "sato.k", Transition::Activate).await.unwrap_err().to_string();
        assert!(e.contains("disabled") && e.contains("cannot activate"), "{e}");
        assert!(matches!(
            a.check_password(&who, "sato.k", "wide field of copper poppies", CERT_A).await,
            Err(LoginRefused::NotActive("disabled"))
        ));
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

        // Revocation: the fingerprints are listed for the TLS layer, and the certificate no
        // longer signs anyone in.
        let fps = a.revoke_certificates(&op, Some("tanaka.h"), None).await.unwrap();
        assert_eq!(fps.len(), 2);
        let mut revoked = a.revoked_fingerprints().await.unwrap();
        revoked.sort();
        assert_eq!(revoked, vec![CERT_A.to_string(), CERT_B.to_string()]);
        assert!(matches!(
            a.check_password(&who, "tanaka.h", "quiet harbour 4 brass kettles", CERT_A).await,
            Err(LoginRefused::WrongCertificate)
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
