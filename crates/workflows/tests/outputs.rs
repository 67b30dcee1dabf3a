//! Output requests over the real store of record (SQLite, and PostgreSQL when
//! `KURA_TEST_POSTGRES` is set) and the real ledger: the two-person review, blind votes, the
//! release's confirmations and every step in the ledger (issue 17 §3, issue 22 §3; HIC-IO2).

use kura_workflows::{Decision, NewOutputFile, OutState, OutputRequest, ReleaseGate, Research, ReviewDecision, Viewer, WorkflowError};

mod common;
use common::*;

/// A provisioned project of r1 with member r2.
async fn project(r: &Research) -> String {
    let id = r.create(&as_("r1"), &catalogue(), &new_app()).await.unwrap().id;
    r.join(&as_("r2"), &id).await.unwrap();
    r.submit(&as_("r1"), &id).await.unwrap();
    r.check(&as_("c1"), &id, true, "").await.unwrap();
    r.vote(&as_("v2"), &id, true, "").await.unwrap();
    r.vote(&as_("v3"), &id, true, "").await.unwrap();
    r.decide(&as_("c1"), &id, &Decision::Approve { columns: vec![], conditions: String::new() }).await.unwrap();
    r.accept(&as_("r1"), &id).await.unwrap().1.id
}

fn file(kind: &str, name: &str, status: &str) -> NewOutputFile {
    NewOutputFile {
        kind: kind.into(),
        name: name.into(),
        note: "2型糖尿病患者数、都道府県別、2024年度".into(),
        bytes: 10,
        sha256: "ab".repeat(32),
        sql_sha256: (kind == "table").then(|| "cd".repeat(32)),
        status: status.into(),
        verdict: "{}".into(),
    }
}

/// A gate that lets everything through and names its package.
struct Open;

impl ReleaseGate for Open {
    async fn check(&self, request: &OutputRequest) -> Result<String, (String, String)> {
        Ok(format!("{:0>64}", request.files.len()))
    }
}

fn refused(e: &WorkflowError) -> bool {
    matches!(e, WorkflowError::OutputNotPermitted { .. } | WorkflowError::OutputWrongState { .. } | WorkflowError::NotFound { .. })
}

#[tokio::test]
async fn two_independent_blind_reviewers_and_a_custodian_release_it() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let (r, accounts) = world(db, dir.path()).await;
        let o = r.outputs();
        let prj = project(&r).await;
        // Only members of the project start a request.
        let e = o.create(&as_("r3"), &prj, "集計", "ndb 1").await.unwrap_err();
        assert!(matches!(e, WorkflowError::NotMember { .. }), "{e}");
        let req = o.create(&as_("r1"), &prj, "都道府県別の患者数", "ndb 1").await.unwrap();
        assert_eq!((req.id.as_str(), req.state), ("OUT-000001", OutState::Draft));
        let id = req.id;
        // A draft is its project's: reviewers and outsiders do not see it.
        for who in ["v1", "c1", "r3"] {
            assert!(matches!(o.request(Viewer::User(who), &id).await.unwrap_err(), WorkflowError::NotFound { .. }), "{who}");
        }
        // Only the author adds; names are names, not paths.
        assert!(refused(&o.add(&as_("r2"), &id, &file("table", "t.csv", "pass")).await.unwrap_err()));
        let e = o.add(&as_("r1"), &id, &file("table", "../t.csv", "pass")).await.unwrap_err();
        assert!(e.to_string().contains("path separators"), "{e}");
        let (_, n) = o.add(&as_("r1"), &id, &file("table", "patients.csv", "pass")).await.unwrap();
        assert_eq!(n, 1);
        let (_, n) = o.add(&as_("r1"), &id, &file("file", "figure.png", "review")).await.unwrap();
        assert_eq!(n, 2);
        // Nobody reviews a draft.
        assert!(refused(&o.review(&as_("v1"), &id, ReviewDecision::Approve, "").await.unwrap_err()));
        o.submit(&as_("r1"), &id).await.unwrap();
        // Once submitted it cannot change.
        assert!(refused(&o.add(&as_("r1"), &id, &file("table", "more.csv", "pass")).await.unwrap_err()));
        // Members of the project never review their own outputs, whatever their role; a
        // researcher is not a reviewer; a custodian does not vote.
        for who in ["r1", "r2", "r3", "c1"] {
            let e = o.review(&as_(who), &id, ReviewDecision::Approve, "").await.unwrap_err();
            assert!(refused(&e), "{who}: {e}");
        }
        let req = o.review(&as_("v1"), &id, ReviewDecision::Approve, "問題なし").await.unwrap();
        assert_eq!(req.state, OutState::PartiallyReviewed);
        // One vote each.
        let e = o.review(&as_("v1"), &id, ReviewDecision::Reject, "").await.unwrap_err();
        assert!(e.to_string().contains("already voted"), "{e}");
        // Blind: the second reviewer, the custodian and the members see neither the first
        // vote nor its trace in the history; the first reviewer sees their own.
        for who in ["v2", "c1", "r1", "r2"] {
            let seen = o.request(Viewer::User(who), &id).await.unwrap();
            assert!(seen.reviews.is_empty() && seen.hidden_votes == 1, "{who}: {:?}", seen.reviews);
            assert!(seen.events.iter().all(|e| e.step != "review"), "{who}: {:?}", seen.events);
        }
        let own = o.request(Viewer::User("v1"), &id).await.unwrap();
        assert_eq!(own.reviews.len(), 1);
        assert_eq!(own.reviews[0].reviewer, "v1");
        // The file no query produced needs both reviewers' confirmation; so far, one.
        o.confirm(&as_("v1"), &id, "file:2").await.unwrap();
        assert!(o.confirm(&as_("v1"), &id, "file:1").await.is_err(), "a table from a query is not confirmed by hand");
        let req = o.review(&as_("v2"), &id, ReviewDecision::Approve, "").await.unwrap();
        assert_eq!(req.state, OutState::Approved);
        // After both votes the members see them, under pseudonyms.
        let seen = o.request(Viewer::User("r2"), &id).await.unwrap();
        assert_eq!(seen.reviews.len(), 2);
        assert!(seen.reviews.iter().all(|v| v.reviewer.starts_with("R-") && v.reviewer.len() == 10), "{:?}", seen.reviews);
        // The release: only a custodian outside the project, and not before the file is
        // confirmed by both.
        let e = o.release(&as_("v1"), &id, &Open).await.unwrap_err();
        assert!(refused(&e), "{e}");
        let e = o.release(&as_("c1"), &id, &Open).await.unwrap_err();
        assert!(matches!(e, WorkflowError::ReleaseBlocked { .. }) && e.to_string().contains("figure.png"), "{e}");
        o.confirm(&as_("v2"), &id, "file:2").await.unwrap();
        let req = o.release(&as_("c1"), &id, &Open).await.unwrap();
        assert_eq!(req.state, OutState::Released);
        assert_eq!(req.package_sha256.as_deref(), Some(format!("{:0>64}", 2).as_str()));
        // Released is final.
        assert!(refused(&o.withdraw(&as_("r1"), &id).await.unwrap_err()));
        // Every step is in the ledger, at the index its history names; refusals too.
        let steps: Vec<&str> = req.events.iter().map(|e| e.step.as_str()).collect();
        assert_eq!(steps, ["create", "add", "add", "submit", "review", "confirm", "review", "decide", "confirm", "release"]);
        let t = trail(&accounts).await;
        for e in &req.events {
            assert!(t.iter().any(|(a, obj, _)| *a == format!("output.{}", e.step) && obj == &id), "{}", e.step);
        }
        assert!(t.iter().any(|(a, obj, out)| a == "output.review" && obj == &id && out != "ok"), "refused reviews are recorded");
        assert_eq!(o.ledger_index(&id, kura_workflows::OutStep::Release).await.unwrap(), req.events.last().map(|e| e.ledger_index));
    }
}

#[tokio::test]
async fn a_failing_cell_leaves_only_with_an_exception_both_reviewers_approved() {
    let dir = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(dir.path()).await {
        let (r, _) = world(db, dir.path()).await;
        let o = r.outputs();
        let prj = project(&r).await;
        let id = o.create(&as_("r1"), &prj, "少数セル", "ndb 1").await.unwrap().id;
        o.add(&as_("r1"), &id, &file("table", "small.csv", "fail")).await.unwrap();
        o.submit(&as_("r1"), &id).await.unwrap();
        // A request for changes sends it back; a new submission starts the votes afresh.
        o.review(&as_("v1"), &id, ReviewDecision::Changes, "少数セルがあります").await.unwrap();
        let req = o.review(&as_("v2"), &id, ReviewDecision::Approve, "").await.unwrap();
        assert_eq!(req.state, OutState::Returned);
        // No exception yet: nothing to confirm.
        let e = o.exception(&as_("r2"), &id, "理由").await.unwrap_err();
        assert!(refused(&e), "only the author asks: {e}");
        o.exception(&as_("r1"), &id, "希少疾患の全国値であり、公表済みの値と一致する").await.unwrap();
        o.submit(&as_("r1"), &id).await.unwrap();
        o.review(&as_("v1"), &id, ReviewDecision::Approve, "").await.unwrap();
        o.confirm(&as_("v1"), &id, "exception").await.unwrap();
        let req = o.review(&as_("v2"), &id, ReviewDecision::Approve, "").await.unwrap();
        assert_eq!((req.state, req.submission), (OutState::Approved, 2));
        // One reviewer's approval of the exception is not enough.
        let e = o.release(&as_("c1"), &id, &Open).await.unwrap_err();
        assert!(e.to_string().contains("both reviewers"), "{e}");
        o.confirm(&as_("v2"), &id, "exception").await.unwrap();
        assert_eq!(o.release(&as_("c1"), &id, &Open).await.unwrap().state, OutState::Released);

        // A reject ends a request; a withdrawn one is closed too.
        let id = o.create(&as_("r2"), &prj, "却下", "ndb 1").await.unwrap().id;
        o.add(&as_("r2"), &id, &file("table", "x.csv", "pass")).await.unwrap();
        o.submit(&as_("r2"), &id).await.unwrap();
        o.review(&as_("v1"), &id, ReviewDecision::Reject, "個票に近い").await.unwrap();
        assert_eq!(o.review(&as_("v3"), &id, ReviewDecision::Approve, "").await.unwrap().state, OutState::Rejected);
        assert!(refused(&o.submit(&as_("r2"), &id).await.unwrap_err()));
        let id = o.create(&as_("r2"), &prj, "取り下げ", "ndb 1").await.unwrap().id;
        assert!(refused(&o.withdraw(&as_("r1"), &id).await.unwrap_err()), "only the author withdraws");
        assert_eq!(o.withdraw(&as_("r2"), &id).await.unwrap().state, OutState::Withdrawn);
        assert!(refused(&o.submit(&as_("r2"), &id).await.unwrap_err()));
        // An empty request is not submitted.
        let id = o.create(&as_("r1"), &prj, "空", "ndb 1").await.unwrap().id;
        assert!(o.submit(&as_("r1"), &id).await.unwrap_err().to_string().contains("no file"));
    }
}
