//! The exchange's sealed files and retention (issue 18 §3; HX-7, HX-8) over a real home, store
//! of record and ledger, the clock moved forward: after the retention period the file is gone
//! with its key, nobody downloads it, and the deletion is a step of the trail that the sender
//! and the receiver read alike, with its ledger entry. A sealed file put in another transfer's
//! place does not open.

use kura_accounts::{Accounts, Clock, HashCost, Hasher, NewUser, Policy, Role, Who};
use kura_app::{App, Options};
use kura_crypto::SecretKey;
use kura_ledger::entry::Entry;
use kura_store::Home;
use kura_workflows::{Caller, NewTransfer, Recipient, WorkflowError, XState, XStep};

const DAY: i64 = 86_400;

#[tokio::test]
async fn retention_deletes_the_file_and_its_key_and_the_trail_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("home")).unwrap();
    let app = App::new(home.clone(), Options { hash_cost: HashCost::TEST }).unwrap();
    let log = app.open_log().await.unwrap();
    let db = log.store().db().clone();
    let clock = Clock::default();
    let accounts = Accounts::new(
        db.clone(),
        log,
        SecretKey::generate().unwrap(),
        Policy::default(),
        Hasher::new(HashCost::TEST, 1, 64),
        clock.clone(),
    )
    .await
    .unwrap();
    let who = Who::console();
    for (code, login) in [("1310000001", "ha"), ("1310000002", "hb")] {
        accounts.add_institution(&who, code, code).await.unwrap();
        accounts
            .add_user(
                &who,
                &NewUser { login: login.into(), institution: code.into(), role: Role::Provider, name: login.into() },
                Some("kaki-no-tane umbrella 83 orbit"),
            )
            .await
            .unwrap();
    }
    let research = app.research(accounts.clone()).unwrap();
    let x = app.exchanges(&research);
    assert_eq!(x.config().retention_days, 30);
    let (ha, hb) = (Caller::console_as("ha"), Caller::console_as("hb"));
    let send = |name: &str| NewTransfer { name: name.into(), note: String::new(), to: Recipient::Institution("1310000002".into()) };
    let t1 = x.send(&ha, &send("one.csv"), b"first file\n").await.unwrap();
    let t2 = x.send(&ha, &send("two.csv"), b"second file\n").await.unwrap();
    let sealed = |id: &str| home.root().join("exchange").join(format!("{id}.sealed"));

    // A sealed file moved into another transfer's place does not open.
    let kept = std::fs::read(sealed(&t2.id)).unwrap();
    std::fs::copy(sealed(&t1.id), sealed(&t2.id)).unwrap();
    let e = x.download(&hb, &t2.id).await.unwrap_err();
    assert!(matches!(e, WorkflowError::Internal(_)) && e.to_string().contains("altered or replaced"), "{e}");
    std::fs::write(sealed(&t2.id), kept).unwrap();
    assert_eq!(x.download(&hb, &t2.id).await.unwrap().1, b"second file\n");

    // One day before the end: still there. After it: deleted, with its key, for everyone.
    clock.advance(29 * DAY);
    assert_eq!(x.download(&hb, &t1.id).await.unwrap().1, b"first file\n");
    clock.advance(DAY + 1);
    let e = x.download(&hb, &t1.id).await.unwrap_err();
    assert!(e.to_string().contains("deleted"), "{e}");
    assert!(!sealed(&t1.id).exists() && !sealed(&t2.id).exists());
    let mut conn = db.pool().acquire().await.unwrap();
    let keys: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM exchange_transfers WHERE wrapped_key IS NOT NULL").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(keys, 0, "the wrapped keys are destroyed with the files");
    drop(conn);

    // The trail: the same for both, the deletion its last step, by the retention.
    let (ta, ea) = x.trail(&ha, &t1.id).await.unwrap();
    let (_, eb) = x.trail(&hb, &t1.id).await.unwrap();
    assert_eq!(ta.state, XState::Deleted);
    assert_eq!(serde_json::to_string(&ea).unwrap(), serde_json::to_string(&eb).unwrap());
    let steps: Vec<XStep> = ea.iter().map(|e| e.step).collect();
    assert_eq!(steps, [XStep::Send, XStep::Download, XStep::Expire]);
    let last = ea.last().unwrap();
    assert_eq!(last.actor, kura_workflows::exchange::RETENTION_ACTOR);
    // … and in the ledger, at the index the trail gives.
    let bytes = research.log().store_read(u64::try_from(last.ledger_index).unwrap()).await.unwrap();
    match Entry::decode(&bytes).unwrap() {
        Entry::Audit(a) => {
            assert_eq!((a.action.as_str(), a.object.as_str()), ("exchange.expire", t1.id.as_str()));
            // The salted digest, never the file's plain SHA-256 (nobody can test a guess).
            let salted = kura_workflows::exchange::salted_digest(&t1.salt, &t1.sha256);
            assert_eq!(a.object_hash.as_deref(), Some(salted.as_str()));
            assert!(!String::from_utf8_lossy(&bytes).contains(&t1.sha256), "no plain hash in the entry");
            assert!(a.detail.as_deref().is_some_and(|d| !d.contains("1310000002")), "no receivers in the entry: {:?}", a.detail);
        }
        other => panic!("{other:?}"),
    }
    // The send's entry: the actor as the transfer's pseudonyms, never the account or the
    // institution (the public log does not tell who sent or received).
    let first = research.log().store_read(u64::try_from(ea[0].ledger_index).unwrap()).await.unwrap();
    match Entry::decode(&first).unwrap() {
        Entry::Audit(a) => {
            use kura_workflows::exchange::actor_pseudonym;
            assert_eq!(a.action, "exchange.send");
            assert_eq!(a.actor.user, actor_pseudonym(&t1.salt, "ha"));
            assert_eq!(a.actor.institution, actor_pseudonym(&t1.salt, "1310000001"));
            let text = String::from_utf8_lossy(&first);
            assert!(!text.contains("\"ha\"") && !text.contains("1310000001") && !text.contains("1310000002"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // Running it again deletes nothing twice.
    assert!(x.expire().await.unwrap().is_empty());
}
