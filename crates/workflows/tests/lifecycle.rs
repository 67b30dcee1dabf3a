//! The research lifecycle over the real store of record — SQLite, and PostgreSQL when
//! `KURA_TEST_POSTGRES` is set (CI sets it) — with the real audit ledger (WG-6, HIC-P1,
//! HIC-P3, HIC-S5).

use kura_db::Backend;
use kura_ledger::entry::Entry;
use kura_ledger::store::LedgerStore;
use kura_workflows::{AppState, ColumnRequest, Decision, NewApplication, Research, ResearchConfig, Viewer, WorkflowError};
use sqlx::Executor;

mod common;
use common::*;

/// What a test may do to an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Edit,
    Submit,
    CheckAccept,
    CheckReturn,
    Vote,
    Approve,
    Reject,
    DecideReturn,
    Accept,
    Withdraw,
}

const OPS: [Op; 10] =
    [Op::Edit, Op::Submit, Op::CheckAccept, Op::CheckReturn, Op::Vote, Op::Approve, Op::Reject, Op::DecideReturn, Op::Accept, Op::Withdraw];

async fn run(r: &Research, op: Op, login: &str, id: &str) -> Result<AppState, WorkflowError> {
    let c = as_(login);
    let app = match op {
        Op::Edit => r.edit(&c, &catalogue(), id, &new_app()).await?,
        Op::Submit => r.submit(&c, id).await?,
        Op::CheckAccept => r.check(&c, id, true, "").await?,
        Op::CheckReturn => r.check(&c, id, false, "倫理審査の写しを添付してください").await?,
        Op::Vote => r.vote(&c, id, true, "妥当").await?,
        Op::Approve => r.decide(&c, id, &Decision::Approve { columns: vec![], conditions: String::new() }).await?,
        Op::Reject => r.decide(&c, id, &Decision::Reject { reason: "公益性が不明".into() }).await?,
        Op::DecideReturn => r.decide(&c, id, &Decision::Return { reason: "列の理由を詳しく".into() }).await?,
        Op::Accept => r.accept(&c, id).await?.0,
        Op::Withdraw => r.withdraw(&c, id).await?,
    };
    Ok(app.state)
}

/// A new application by r1 (with member r2) brought to `state` along the main path. In
/// committee review, v2 and v3 have voted for it (v1 has not).
async fn make(r: &Research, state: AppState) -> String {
    use AppState as S;
    let id = r.create(&as_("r1"), &catalogue(), &new_app()).await.unwrap().id;
    r.join(&as_("r2"), &id).await.unwrap();
    let path: &[(Op, &str)] = match state {
        S::Draft => &[],
        S::Submitted => &[(Op::Submit, "r1")],
        S::Returned => &[(Op::Submit, "r1"), (Op::CheckReturn, "c1")],
        S::Withdrawn => &[(Op::Withdraw, "r1")],
        S::CommitteeReview => &[(Op::Submit, "r1"), (Op::CheckAccept, "c1"), (Op::Vote, "v2"), (Op::Vote, "v3")],
        S::Approved => &[(Op::Submit, "r1"), (Op::CheckAccept, "c1"), (Op::Vote, "v2"), (Op::Vote, "v3"), (Op::Approve, "c1")],
        S::Rejected => &[(Op::Submit, "r1"), (Op::CheckAccept, "c1"), (Op::Vote, "v2"), (Op::Vote, "v3"), (Op::Reject, "c1")],
        S::Provisioned => {
            &[(Op::Submit, "r1"), (Op::CheckAccept, "c1"), (Op::Vote, "v2"), (Op::Vote, "v3"), (Op::Approve, "c1"), (Op::Accept, "r1")]
        }
        S::ApprovedWithConditions => {
            for (op, who) in [(Op::Submit, "r1"), (Op::CheckAccept, "c1"), (Op::Vote, "v2"), (Op::Vote, "v3")] {
                run(r, op, who, &id).await.unwrap();
            }
            let d = Decision::Approve { columns: vec![("re".into(), "sex".into())], conditions: String::new() };
            assert_eq!(r.decide(&as_("c1"), &id, &d).await.unwrap().state, S::ApprovedWithConditions);
            return id;
        }
        S::AgreementAccepted => unreachable!("provisioning follows the agreement in the same transaction"),
    };
    for (op, who) in path {
        run(r, *op, who, &id).await.unwrap_or_else(|e| panic!("{op:?} by {who} towards {state}: {e}"));
    }
    assert_eq!(r.application(Viewer::Owner, &id).await.unwrap().state, state);
    id
}

/// The only allowed (state, operation, caller) combinations and where each leads; every other
/// combination must be refused and change nothing. Written out here as the specification,
/// not derived from the code under test.
fn allowed(state: AppState, op: Op, who: &str) -> Option<AppState> {
    use AppState as S;
    let to = match (state, op, who) {
        (S::Draft | S::Returned, Op::Edit, "r1") => state,
        (S::Draft | S::Returned, Op::Submit, "r1") => S::Submitted,
        (S::Submitted, Op::CheckAccept, "c1") => S::CommitteeReview,
        (S::Submitted, Op::CheckReturn, "c1") => S::Returned,
        (S::CommitteeReview, Op::Vote, "v1") => S::CommitteeReview,
        (S::CommitteeReview, Op::Approve, "c1") => S::Approved,
        (S::CommitteeReview, Op::Reject, "c1") => S::Rejected,
        (S::CommitteeReview, Op::DecideReturn, "c1") => S::Returned,
        (S::Approved | S::ApprovedWithConditions, Op::Accept, "r1") => S::Provisioned,
        (S::Draft | S::Submitted | S::CommitteeReview | S::Returned | S::Approved | S::ApprovedWithConditions, Op::Withdraw, "r1") => {
            S::Withdrawn
        }
        _ => return None,
    };
    Some(to)
}

const STATES: [AppState; 9] = [
    AppState::Draft,
    AppState::Submitted,
    AppState::CommitteeReview,
    AppState::Approved,
    AppState::ApprovedWithConditions,
    AppState::Returned,
    AppState::Rejected,
    AppState::Provisioned,
    AppState::Withdrawn,
];
/// The applicant, a co-investigator, an outsider researcher, the custodian, a reviewer, a
/// reviewer of the applicant's university, an auditor.
const CALLERS: [&str; 7] = ["r1", "r2", "r3", "c1", "v1", "v0", "a1"];

#[tokio::test]
async fn every_forbidden_transition_and_every_wrong_role_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let backend = db.backend().name();
        let (r, _) = world(db, dir.path()).await;
        let mut checked = (0, 0);
        for state in STATES {
            // One application in this state takes every refused attempt: none may change it.
            let base = make(&r, state).await;
            let before = r.application(Viewer::Owner, &base).await.unwrap();
            for op in OPS {
                for who in CALLERS {
                    match allowed(state, op, who) {
                        Some(to) => {
                            let id = make(&r, state).await;
                            let got = run(&r, op, who, &id).await;
                            assert_eq!(got.as_ref().ok(), Some(&to), "{backend}: {op:?} by {who} in {state}: {got:?}");
                            checked.0 += 1;
                        }
                        None => {
                            let got = run(&r, op, who, &base).await;
                            let err = got.expect_err(&format!("{backend}: {op:?} by {who} in {state} must be refused"));
                            assert!(!err.is_internal(), "{backend}: {op:?} by {who} in {state}: {err}");
                            // The message says what was wrong, in Japanese first.
                            let text = err.to_string();
                            let (ja, en) = text.split_once("/ ").unwrap_or_else(|| panic!("not bilingual: {text}"));
                            assert!(!ja.is_ascii() && !en.is_empty(), "{text}");
                            checked.1 += 1;
                        }
                    }
                }
            }
            let after = r.application(Viewer::Owner, &base).await.unwrap();
            assert_eq!(
                (after.state, after.events.len(), after.votes.len()),
                (before.state, before.events.len(), before.votes.len()),
                "{backend}: {state}"
            );
        }
        assert_eq!(checked, (18, 9 * 10 * 7 - 18), "{backend}");
    }
}

#[tokio::test]
async fn the_main_path_grants_exactly_what_was_approved_and_the_ledger_holds_every_step() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let (r, accounts) = world(db, dir.path()).await;
        let app = r.create(&as_("r1"), &catalogue(), &new_app()).await.unwrap();
        assert_eq!((app.id.as_str(), app.state, app.members.clone()), ("APP-000001", AppState::Draft, vec!["r2".to_string()]));
        let id = app.id;
        r.join(&as_("r2"), &id).await.unwrap();
        r.submit(&as_("r1"), &id).await.unwrap();
        r.check(&as_("c1"), &id, true, "").await.unwrap();
        // Before the committee has voted, no decision.
        let d = Decision::Approve { columns: vec![("re".into(), "sex".into()), ("sy".into(), "icd10".into())], conditions: String::new() };
        let early = r.decide(&as_("c1"), &id, &d).await.unwrap_err();
        assert!(early.to_string().contains("0 of the 2 votes"), "{early}");
        r.vote(&as_("v1"), &id, true, "公益性あり").await.unwrap();
        // One vote each.
        let twice = r.vote(&as_("v1"), &id, false, "").await.unwrap_err();
        assert!(matches!(twice, WorkflowError::NotPermitted { .. }) && twice.to_string().contains("already voted"), "{twice}");
        r.vote(&as_("v2"), &id, false, "年齢は不要では").await.unwrap();
        // One for, one against: no majority for approval.
        let tie = r.decide(&as_("c1"), &id, &d).await.unwrap_err();
        assert!(tie.to_string().contains("1 for and 1 against"), "{tie}");
        // A third reviewer tips it; a column nobody asked for cannot be granted.
        r.vote(&as_("v3"), &id, true, "").await.unwrap();
        let more = Decision::Approve { columns: vec![("re".into(), "person_id".into())], conditions: String::new() };
        let err = r.decide(&as_("c1"), &id, &more).await.unwrap_err();
        assert!(err.to_string().contains("re.person_id' was not asked for"), "{err}");
        // Minimisation: two of the three columns.
        let app = r.decide(&as_("c1"), &id, &d).await.unwrap();
        assert_eq!(app.state, AppState::ApprovedWithConditions);
        let granted: Vec<(&str, &str)> = app.columns.iter().filter(|c| c.approved).map(|c| (c.table.as_str(), c.column.as_str())).collect();
        assert_eq!(granted, [("re", "sex"), ("sy", "icd10")]);
        let (app, project) = r.accept(&as_("r1"), &id).await.unwrap();
        assert_eq!(app.state, AppState::Provisioned);
        assert_eq!(app.project.as_deref(), Some("PRJ-000001"));
        assert_eq!(project.columns, [("re".to_string(), "sex".to_string()), ("sy".to_string(), "icd10".to_string())]);
        assert_eq!(project.members, ["r1", "r2"]);
        assert_eq!(project.ends_at - project.created_at, 180 * DAY);
        // Every step is an entry, at the index the history names, with the step and the object.
        let n = accounts.log().store().size().await.unwrap();
        let entries = accounts.log().store().read(0, n).await.unwrap();
        let steps: Vec<&str> = app.events.iter().map(|e| e.step.as_str()).collect();
        assert_eq!(steps, ["create", "join", "submit", "check_accept", "vote", "vote", "vote", "approve", "accept_agreement", "provision"]);
        let mut hashes = Vec::new();
        for e in &app.events {
            let Entry::Audit(a) = Entry::decode(&entries[e.ledger_index as usize]).unwrap() else { panic!("not an audit entry") };
            assert_eq!((a.action, a.object.as_str(), a.outcome.as_str()), (format!("application.{}", e.step), id.as_str(), "ok"));
            assert_eq!(a.actor.user, e.actor);
            // The console acted for the user, and the ledger says so.
            assert!(a.detail.unwrap().contains("[--as: console:"));
            hashes.push(a.object_hash.unwrap());
        }
        // The content hash changes when the grant does (approve), not when a vote is cast.
        assert_eq!(hashes[4], hashes[5]);
        assert_ne!(hashes[6], hashes[7]);
        // Refusals were recorded as denied entries.
        let denied: Vec<_> = trail(&accounts).await.into_iter().filter(|(_, o, out)| o == &id && out == "denied").collect();
        assert!(denied.iter().any(|(a, _, _)| a == "application.vote"), "{denied:?}");
        // Each member sees the project; another researcher does not, nor its application, and
        // probing it is refused as if it did not exist, and recorded.
        assert_eq!(r.projects(Viewer::User("r2")).await.unwrap().len(), 1);
        assert!(r.projects(Viewer::User("r3")).await.unwrap().is_empty());
        assert!(matches!(r.application(Viewer::User("r3"), &id).await, Err(WorkflowError::NotFound { .. })));
        assert!(matches!(r.withdraw(&as_("r3"), &id).await, Err(WorkflowError::NotFound { .. })));
        let probes: Vec<_> =
            trail(&accounts).await.into_iter().filter(|(a, o, out)| a == "application.withdraw" && o == &id && out == "denied").collect();
        assert_eq!(probes.len(), 1);
        // A made-up identifier is refused before it reaches the store or the ledger.
        let err = r.withdraw(&as_("r3"), "APP-1'; DROP TABLE applications; --").await.unwrap_err();
        assert!(err.to_string().contains("looks like APP-000001"), "{err}");
        // The team reads the committee's comments without the reviewers' names.
        let seen = r.application(Viewer::User("r2"), &id).await.unwrap();
        assert!(seen.votes.iter().all(|v| v.reviewer.starts_with("審査委員 reviewer ")), "{:?}", seen.votes);
        assert!(seen.events.iter().all(|e| !["v1", "v2", "v3"].contains(&e.actor.as_str())));
        assert!(seen.votes.iter().any(|v| v.comment == "年齢は不要では"));
        assert_eq!(r.application(Viewer::User("c1"), &id).await.unwrap().votes[0].reviewer, "v1");
    }
}

#[tokio::test]
async fn a_failed_ledger_write_leaves_neither_the_state_nor_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let (r, accounts) = world(db.clone(), dir.path()).await;
        let id = r.create(&as_("r1"), &catalogue(), &new_app()).await.unwrap().id;
        r.join(&as_("r2"), &id).await.unwrap();
        let entries_before = accounts.log().store().size().await.unwrap();
        // The store itself refuses the ledger row: the failure falls between the state change
        // (written first in the transaction) and the commit.
        match db.backend() {
            Backend::Sqlite => {
                db.pool()
                    .execute("CREATE TRIGGER no_ledger BEFORE INSERT ON ledger_entries BEGIN SELECT RAISE(ABORT, 'injected'); END")
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                db.pool()
                    .execute(
                        "CREATE FUNCTION no_ledger() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql; \
                         CREATE TRIGGER no_ledger BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION no_ledger();",
                    )
                    .await
                    .unwrap();
            }
        }
        let err = r.submit(&as_("r1"), &id).await.unwrap_err();
        assert!(err.is_internal() && err.to_string().contains("injected"), "{err}");
        let app = r.application(Viewer::Owner, &id).await.unwrap();
        assert_eq!((app.state, app.submission, app.round.as_str(), app.events.len()), (AppState::Draft, 0, "", 2));
        assert_eq!(accounts.log().store().size().await.unwrap(), entries_before);
        let drop = if db.backend() == Backend::Sqlite { "DROP TRIGGER no_ledger" } else { "DROP TRIGGER no_ledger ON ledger_entries" };
        db.pool().execute(drop).await.unwrap();
        let app = r.submit(&as_("r1"), &id).await.unwrap();
        assert_eq!((app.state, app.submission, app.events.len()), (AppState::Submitted, 1, 3));
        assert_eq!(accounts.log().store().size().await.unwrap(), entries_before + 1);
    }
}

#[tokio::test]
async fn the_clock_pauses_while_returned_and_overdue_applications_come_first() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let (r, accounts) = world(db, dir.path()).await;
        let clock = accounts.clock().clone();
        let a = make(&r, AppState::Draft).await;
        let b = make(&r, AppState::Draft).await;
        let c = make(&r, AppState::Draft).await;
        r.submit(&as_("r1"), &a).await.unwrap();
        clock.advance(2 * DAY);
        let returned = r.check(&as_("c1"), &a, false, "倫理審査の承認書を添えてください").await.unwrap();
        assert_eq!(returned.events.last().unwrap().note, "倫理審査の承認書を添えてください", "the applicant reads why");
        r.submit(&as_("r1"), &b).await.unwrap();
        // Returned for three days: a's clock does not move.
        clock.advance(3 * DAY);
        assert_eq!(r.application(Viewer::Owner, &a).await.unwrap().clock.running_secs / DAY, 2);
        r.submit(&as_("r1"), &a).await.unwrap();
        r.submit(&as_("r1"), &c).await.unwrap();
        clock.advance(3 * DAY);
        // a: 2 + 3 = 5 days; b: 6 days; c: 3 days. Nothing overdue yet: longest first.
        let order: Vec<String> = r.applications(Viewer::User("c1")).await.unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(order, [b.clone(), a.clone(), c.clone()]);
        clock.advance(DAY + 3600);
        // b: 7 days and an hour, overdue; a draft is invisible to custodians.
        let d = make(&r, AppState::Draft).await;
        let list = r.applications(Viewer::User("c1")).await.unwrap();
        assert_eq!(
            list.iter().map(|s| (s.id.as_str(), s.clock.overdue)).collect::<Vec<_>>(),
            [(b.as_str(), true), (a.as_str(), false), (c.as_str(), false)]
        );
        assert!(list.iter().all(|s| s.id != d));
        // The resubmission counts as the second, with its own review round.
        let app = r.application(Viewer::Owner, &a).await.unwrap();
        assert_eq!(app.submission, 2);
        assert!(!app.round.is_empty());
    }
}

#[tokio::test]
async fn bad_applications_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let (r, _) = world(db, dir.path()).await;
        let cases: Vec<(NewApplication, &str)> = vec![
            (NewApplication { title: " ".into(), ..new_app() }, "give a title"),
            (NewApplication { dataset: "dpc".into(), ..new_app() }, "no dataset 'dpc'"),
            (NewApplication { columns: vec![ColumnRequest::parse("re.name").unwrap()], ..new_app() }, "no column 'name'"),
            (NewApplication { columns: vec![], ..new_app() }, "at least one column"),
            (NewApplication { places: vec!["10.0.0.1/8".into()], ..new_app() }, "place of use"),
            (NewApplication { period_days: Some(5000), ..new_app() }, "period of use"),
            (NewApplication { members: vec!["v1".into()], ..new_app() }, "'v1' is not an enabled researcher"),
            (NewApplication { purpose: "a\u{1b}[2J".into(), ..new_app() }, "control characters"),
            (NewApplication { title: "一行目\n偽の二行目".into(), ..new_app() }, "line breaks"),
            (NewApplication { justification: "safe \u{202e}evil".into(), ..new_app() }, "text-direction"),
        ];
        for (app, want) in cases {
            let err = r.create(&as_("r1"), &catalogue(), &app).await.unwrap_err();
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
        assert!(ColumnRequest::parse("re").is_err() && ColumnRequest::parse("re.sex;drop").is_err());
        // A reviewer of the applicant's university may not vote on it (conflict of interest).
        let id = make(&r, AppState::CommitteeReview).await;
        let err = r.vote(&as_("v0"), &id, true, "").await.unwrap_err();
        assert!(err.to_string().contains("conflict of interest"), "{err}");
        r.withdraw(&as_("r1"), &id).await.unwrap();
        // Only researchers apply; nothing was filed.
        let err = r.create(&as_("c1"), &catalogue(), &new_app()).await.unwrap_err();
        assert!(matches!(err, WorkflowError::NotPermitted { .. }), "{err}");
        assert!(r.applications(Viewer::Owner).await.unwrap().iter().all(|a| a.state == AppState::Withdrawn));
    }
}

/// Sample datasets (HIC-P2): only a custodian publishes or withdraws one, only a synthetic
/// dataset may be one, and any active researcher may use it without an application; others
/// are refused and the refusal recorded.
#[tokio::test]
async fn sample_datasets_are_published_by_custodians_and_open_to_researchers() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let (r, a) = world(db, dir.path()).await;
        let e = r.publish_sample(&as_("r1"), "ndb", true, "").await.unwrap_err();
        assert!(e.to_string().contains("only a custodian may publish a sample dataset"), "{e}");
        let e = r.publish_sample(&as_("c1"), "ndb", false, "").await.unwrap_err();
        assert!(e.to_string().contains("is not synthetic"), "{e}");
        let e = r.sample(&as_("r2"), "ndb").await.unwrap_err();
        assert!(e.to_string().contains("no sample dataset 'ndb'"), "{e}");
        let s = r.publish_sample(&as_("c1"), "ndb", true, "学習用 / for learning").await.unwrap();
        assert_eq!((s.dataset.as_str(), s.published_by.as_str()), ("ndb", "c1"));
        assert!(r.publish_sample(&as_("c1"), "ndb", true, "").await.is_err(), "published once");
        // Any researcher, of any institution, without an application.
        for login in ["r1", "r2", "r3"] {
            assert_eq!(r.sample(&as_(login), "ndb").await.unwrap().dataset, "ndb");
        }
        // Not reviewers, custodians or auditors: the sample is for learning the data.
        for login in ["v1", "c1", "a1"] {
            assert!(r.sample(&as_(login), "ndb").await.is_err(), "{login}");
        }
        assert_eq!(r.samples().await.unwrap().len(), 1);
        assert!(r.withdraw_sample(&as_("r1"), "ndb").await.is_err());
        r.withdraw_sample(&as_("c1"), "ndb").await.unwrap();
        assert!(r.sample(&as_("r1"), "ndb").await.is_err(), "withdrawn at once");
        let t = trail(&a).await;
        for action in ["sample.publish", "sample.withdraw"] {
            assert!(t.iter().any(|(act, _, outcome)| act == action && outcome == "ok"), "{action}: {t:?}");
        }
        assert!(t.iter().any(|(act, _, outcome)| act == "sample.query" && outcome == "denied"), "{t:?}");
    }
}

/// Nobody is on a team without saying so (a co-investigator of a reviewer's institution keeps
/// that reviewer out): an application is submitted only once every member has confirmed;
/// only the members named confirm, and an edit keeps the confirmations of those who stay.
#[tokio::test]
async fn members_confirm_before_an_application_is_submitted() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let (r, _) = world(db, dir.path()).await;
        let id = r.create(&as_("r1"), &catalogue(), &new_app()).await.unwrap().id;
        assert_eq!(r.application(Viewer::Owner, &id).await.unwrap().unconfirmed, vec!["r2".to_string()]);
        let e = r.submit(&as_("r1"), &id).await.unwrap_err();
        assert!(e.to_string().contains("member(s) r2 have not confirmed"), "{e}");
        for who in ["r1", "r3", "v1"] {
            let e = r.join(&as_(who), &id).await.unwrap_err();
            assert!(matches!(e, WorkflowError::NotPermitted { .. } | WorkflowError::NotFound { .. }), "{who}: {e}");
        }
        r.join(&as_("r2"), &id).await.unwrap();
        r.edit(&as_("r1"), &catalogue(), &id, &new_app()).await.unwrap();
        assert!(r.application(Viewer::Owner, &id).await.unwrap().unconfirmed.is_empty(), "kept over an edit");
        assert_eq!(r.submit(&as_("r1"), &id).await.unwrap().state, AppState::Submitted);
        let e = r.join(&as_("r2"), &id).await.unwrap_err();
        assert!(matches!(e, WorkflowError::WrongState { .. }), "{e}");
    }
}

/// A small PDF: its header, a body and the end-of-file marker.
fn pdf(body: &str) -> Vec<u8> {
    format!("%PDF-1.7\n{body}\n%%EOF\n").into_bytes()
}

/// Attachments (WG-6): the applicant attaches PDFs to a draft or a returned application, as an
/// edit recorded in the ledger with the file's hash; nobody else, never after submission,
/// never anything but a PDF of at most the configured size; whoever may see the application
/// may read them, and nobody else learns they exist.
#[tokio::test]
async fn attachments_are_pdfs_of_the_applicant_recorded_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let backend = db.backend().name();
        let (_, accounts) = world(db, dir.path()).await;
        let config = ResearchConfig { attachment_max_mb: 1, ..ResearchConfig::default() };
        let r = Research::new(accounts.clone(), config).unwrap();
        let id = r.create(&as_("r1"), &catalogue(), &new_app()).await.unwrap().id;
        r.join(&as_("r2"), &id).await.unwrap();
        let protocol = pdf("研究計画書 protocol v1");
        let a = r.attach(&as_("r1"), &id, "C:\\Users\\r1\\protocol.pdf", &protocol).await.unwrap();
        let line = a.attachments.first().unwrap().clone();
        assert_eq!((line.n, line.name.as_str(), line.bytes), (1, "protocol.pdf", protocol.len() as i64), "{backend}");
        use sha2::Digest;
        assert_eq!(line.sha256, hex::encode(sha2::Sha256::digest(&protocol)));
        // Recorded as an edit, in the same transaction, naming the hash and not the file.
        let last = trail(&accounts).await.pop().unwrap();
        assert_eq!((last.0.as_str(), last.1.as_str(), last.2.as_str()), ("application.edit", id.as_str(), "ok"), "{backend}");
        // Refused: another user (even a member), not a PDF, too large, no name, too many.
        for (who, name, content, needle) in [
            ("r2", "p.pdf", pdf("x"), "applicant"),
            ("c1", "p.pdf", pdf("x"), "no application"),
            ("r1", "p.pdf", b"<html><script>alert(1)</script></html>".to_vec(), "not a PDF"),
            ("r1", "p.pdf", [pdf("x"), vec![b' '; 2048]].concat(), "not a PDF"),
            ("r1", "p.pdf", pdf(&"x".repeat(1 << 20)), "to 1 MiB"),
            ("r1", "p.exe", pdf("x"), "must end in .pdf"),
            ("r1", "../", pdf("x"), "must end in .pdf"),
            ("r1", "a\u{202e}fdp.exe.pdf", pdf("x"), "text-direction"),
        ] {
            let e = r.attach(&as_(who), &id, name, &content).await.unwrap_err();
            assert!(e.to_string().contains(needle), "{backend} {who} {name}: {e}");
        }
        for i in 2..=kura_workflows::MAX_ATTACHMENTS {
            r.attach(&as_("r1"), &id, &format!("p{i}.pdf"), &pdf("x")).await.unwrap();
        }
        let e = r.attach(&as_("r1"), &id, "one-more.pdf", &pdf("x")).await.unwrap_err();
        assert!(e.to_string().contains("at most 10 attachments"), "{e}");
        let a = r.detach(&as_("r1"), &id, 2).await.unwrap();
        assert_eq!(a.attachments.len(), kura_workflows::MAX_ATTACHMENTS - 1);
        assert!(a.attachments.iter().all(|l| l.n != 2));
        // Readable by the team, and after submission by custodians and reviewers; an
        // unrelated researcher is told nothing exists.
        let (got, content) = r.attachment(Viewer::User("r2"), &id, 1).await.unwrap();
        assert_eq!((got, content), (line.clone(), protocol.clone()));
        assert!(matches!(r.attachment(Viewer::User("r3"), &id, 1).await, Err(WorkflowError::NotFound { .. })));
        assert!(matches!(r.attachment(Viewer::User("v1"), &id, 1).await, Err(WorkflowError::NotFound { .. })), "a draft is the team's");
        r.submit(&as_("r1"), &id).await.unwrap();
        assert_eq!(r.attachment(Viewer::User("v1"), &id, 1).await.unwrap().1, protocol);
        assert_eq!(r.attachment(Viewer::User("c1"), &id, 1).await.unwrap().1, protocol);
        assert!(matches!(r.attachment(Viewer::User("r3"), &id, 1).await, Err(WorkflowError::NotFound { .. })));
        // Submitted: no more changes, by anyone.
        let e = r.attach(&as_("r1"), &id, "late.pdf", &pdf("x")).await.unwrap_err();
        assert!(matches!(e, WorkflowError::WrongState { .. }), "{e}");
        assert!(r.detach(&as_("r1"), &id, 1).await.is_err());
        assert_eq!(r.application(Viewer::Owner, &id).await.unwrap().attachments.len(), kura_workflows::MAX_ATTACHMENTS - 1);
    }
}
