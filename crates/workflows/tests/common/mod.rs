//! What the tests of kura-workflows share: a world of users over a real store and ledger.

#![allow(dead_code)] // each test file uses its part

use kura_accounts::{Accounts, Clock, HashCost, Hasher, NewUser, Policy, Role, Who};
use kura_crypto::SecretKey;
use kura_db::Db;
use kura_ledger::entry::Entry;
use kura_ledger::log::{Log, LogOptions};
use kura_ledger::store::{LedgerStore, SqlStore};
use kura_tlog::tiles::DirTiles;
use kura_tlog::{SigType, SignerKey};
use kura_workflows::{Caller, Catalogue, ColumnRequest, NewApplication, Research, ResearchConfig};
use std::path::Path;
use std::sync::Arc;

pub const PW: &str = "kaki-no-tane umbrella 83 orbit";
pub const DAY: i64 = 86_400;

/// Researchers r1 (the applicant) and r3 of one university, r2 (r1's co-investigator) of
/// another; custodian c1 and auditor a1 of the ministry; reviewers v1..v3 of a third
/// university, and v0 of r1's university (a conflict of interest).
pub async fn world(db: Db, dir: &Path) -> (Research, Accounts) {
    let key = SignerKey::generate("kura.test/log", SigType::Ed25519).unwrap();
    let log = Log::open(
        SqlStore::new(db.clone()),
        Arc::new(DirTiles::new(&dir.join(format!("log-{}", db.backend().name())))),
        LogOptions::new(key),
    )
    .await
    .unwrap();
    let accounts =
        Accounts::new(db, log, SecretKey::generate().unwrap(), Policy::default(), Hasher::new(HashCost::TEST, 1, 64), Clock::default())
            .await
            .unwrap();
    let who = Who::console();
    for (code, name) in [("1310000001", "蔵大学"), ("2710000002", "難波医科大学"), ("1300000000", "厚生労働省"), ("3310000003", "吉備大学")]
    {
        accounts.add_institution(&who, code, name).await.unwrap();
    }
    for (login, inst, role) in [
        ("r1", "1310000001", Role::Researcher),
        ("r2", "2710000002", Role::Researcher),
        ("r3", "1310000001", Role::Researcher),
        ("c1", "1300000000", Role::Custodian),
        ("a1", "1300000000", Role::Auditor),
        ("v0", "1310000001", Role::Reviewer),
        ("v1", "3310000003", Role::Reviewer),
        ("v2", "3310000003", Role::Reviewer),
        ("v3", "3310000003", Role::Reviewer),
    ] {
        let new = NewUser { login: login.into(), institution: inst.into(), role, name: login.into() };
        accounts.add_user(&who, &new, Some(PW)).await.unwrap();
    }
    let research = Research::new(accounts.clone(), ResearchConfig::default()).unwrap();
    (research, accounts)
}

pub fn catalogue() -> Catalogue {
    let mut c = Catalogue::new();
    for (t, col) in [("re", "person_id"), ("re", "sex"), ("re", "age_band"), ("sy", "icd10"), ("sy", "receipt_id")] {
        c.add("ndb", t, col);
    }
    c
}

pub fn as_(login: &str) -> Caller {
    Caller::console_as(login)
}

pub fn new_app() -> NewApplication {
    NewApplication {
        title: "糖尿病患者の受療動向".into(),
        purpose: "2型糖尿病の受療の地域差を調べる".into(),
        justification: "医療計画の基礎資料".into(),
        ethics_ref: "蔵大学倫理 2026-041".into(),
        dataset: "ndb".into(),
        columns: ["re.sex=性別による層別", "re.age_band=年齢調整", "sy.icd10=対象疾患の特定"]
            .iter()
            .map(|s| ColumnRequest::parse(s).unwrap())
            .collect(),
        places: vec!["192.0.2.0/24".into()],
        period_days: Some(180),
        members: vec!["r2".into()],
    }
}

/// Every audit entry's action, object and outcome, in order.
pub async fn trail(a: &Accounts) -> Vec<(String, String, String)> {
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
