//! The airlock's checker (issue 17 §2, issue 22 §6–§8): the evidence behind each cell comes
//! from the data — the platform's persons and units — through hidden columns of the project's
//! extract that the checker reads and the researcher's worker cannot, even where the grant
//! holds no person ID or institution code.

use kura_disclosure::LoadedPolicy;
use kura_disclosure::check::{Status, rule};
use kura_query::evidence::UNIT_CAP;
use kura_query::worker::{Session, WORKER_ARG, WorkerCommand};
use kura_query::{EngineSpec, Grant, QueryEngine, WorkspaceSpec};
use kura_store::{Home, WriteOptions};
use std::collections::HashMap;
use std::path::Path;

/// The grant of the project: no person ID, no institution code, no insurer number.
const GRANT: &[&str] = &["re.receipt_id", "re.sex", "re.age", "re.prefecture", "re.total_points", "sy.receipt_id", "sy.disease_code"];

fn home(dir: &Path) -> Home {
    let home = Home::init(&dir.join("h")).unwrap();
    let opts = WriteOptions { threads: 2, ..WriteOptions::from_home(&home, "ndb") };
    let cfg = kura_synth::SynthConfig { chunk_persons: 500, ..kura_synth::SynthConfig::new(1500, 11) };
    kura_synth_dataset::write_synthetic(&home, cfg, &opts, &|_| {}).unwrap();
    home
}

fn cmd() -> WorkerCommand {
    WorkerCommand { program: env!("CARGO_BIN_EXE_kura").into(), args: vec![WORKER_ARG.into()] }
}

fn spec(home: &Home, dir: &Path, project: &str) -> EngineSpec {
    let entry = home.catalog().unwrap().datasets["ndb"].clone();
    let mut spec = EngineSpec::from_home(home, "ndb", Some(Grant::parse(&entry, GRANT).unwrap())).unwrap();
    let ws = dir.join("workspaces").join(project);
    std::fs::create_dir_all(&ws).unwrap();
    spec.workspace = Some(WorkspaceSpec {
        project: project.into(),
        dir: ws,
        key: kura_crypto::SecretKey::from_bytes([project.len() as u8; 32]),
        pseudonym: home.platform_pseudonym_key().unwrap().for_project(project),
        extract: None,
        lineage: None,
    });
    spec.with_lineage(home).unwrap()
}

/// What the platform's owner counts directly: the first column as text → the second as a number.
fn owner_counts(home: &Home, sql: &str) -> HashMap<String, u64> {
    let engine = QueryEngine::new(EngineSpec::from_home(home, "ndb", None).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let out = rt.block_on(engine.run(sql)).unwrap();
    let mut m = HashMap::new();
    for b in &out.last().unwrap().batches {
        for r in 0..b.num_rows() {
            let k = datafusion::arrow::util::display::array_value_to_string(b.column(0), r).unwrap();
            let v = datafusion::arrow::util::display::array_value_to_string(b.column(1), r).unwrap();
            m.insert(k, v.parse().unwrap());
        }
    }
    m
}

/// A valid ID5 in `column` (issue 22 §6: null, empty and the placeholder `9` are no person).
fn valid(column: &str) -> String {
    format!("length({column}) = 64")
}

#[test]
fn the_checker_counts_persons_and_units_the_grant_does_not_show() {
    let dir = tempfile::tempdir().unwrap();
    let home = home(dir.path());

    // The checker: evidence of every cell, from the platform's persons and units.
    let mut checker = Session::start_checker(&cmd(), spec(&home, dir.path(), "PRJ-000001")).unwrap();
    let ev = checker.evidence("SELECT sex, count(*) AS receipts, sum(total_points) AS points FROM re GROUP BY sex").unwrap();
    assert!(ev.lineage, "the lineage is established");
    let persons =
        owner_counts(&home, &format!("SELECT CAST(sex AS VARCHAR), count(DISTINCT id5) FROM re WHERE {} GROUP BY sex", valid("id5")));
    let unknown = owner_counts(
        &home,
        &format!("SELECT CAST(sex AS VARCHAR), count(*) FROM re WHERE NOT ({}) OR id5 IS NULL GROUP BY sex", valid("id5")),
    );
    let institutions = owner_counts(
        &home,
        "SELECT CAST(sex AS VARCHAR), count(DISTINCT institution_code) FROM re WHERE receipt_kind <> '調剤' GROUP BY sex",
    );
    let pharmacies = owner_counts(
        &home,
        "SELECT CAST(sex AS VARCHAR), count(DISTINCT institution_code) FROM re WHERE receipt_kind = '調剤' GROUP BY sex",
    );
    let insurers = owner_counts(&home, "SELECT CAST(sex AS VARCHAR), count(DISTINCT insurer_number) FROM re GROUP BY sex");
    assert_eq!(ev.table.rows.len(), 2, "{:?}", ev.table.dims);
    assert!(unknown.values().sum::<u64>() > 0, "the population has receipts without a valid ID5");
    for row in &ev.table.rows {
        let sex = row.keys[0].clone().unwrap();
        let e = row.cells[0].evidence.as_ref().unwrap();
        assert_eq!(e.persons, Some(persons[&sex]), "persons behind sex {sex}");
        assert_eq!(e.unknown_person_records, unknown.get(&sex).copied().unwrap_or(0), "records without a person, sex {sex}");
        let unit = |k: &str| e.units.iter().find(|(kind, _)| kind == k).map(|(_, n)| *n);
        // Counted exactly up to UNIT_CAP (a count of UNIT_CAP means at least that many).
        assert!(institutions[&sex] > UNIT_CAP, "the test crosses the cap");
        assert_eq!(unit("institution"), Some(institutions[&sex].min(UNIT_CAP)), "institutions, sex {sex}");
        assert_eq!(unit("pharmacy"), Some(pharmacies[&sex].min(UNIT_CAP)), "pharmacies, sex {sex}");
        assert_eq!(unit("insurer"), Some(insurers[&sex].min(UNIT_CAP)), "insurers, sex {sex}");
        // The sum of points: its largest contributor is known.
        let points = row.cells[1].evidence.as_ref().unwrap();
        assert!(points.contributions.is_some_and(|c| c.largest > 0.0 && c.largest >= c.second), "{points:?}");
    }

    // Small cells hold fewer institutions than the cap: counted exactly, cell by cell.
    let ev = checker.evidence("SELECT prefecture, age, count(*) AS receipts FROM re GROUP BY prefecture, age").unwrap();
    let institutions = owner_counts(
        &home,
        "SELECT CAST(prefecture AS VARCHAR) || '/' || CAST(age AS VARCHAR), count(DISTINCT institution_code) FROM re WHERE receipt_kind <> '調剤' GROUP BY prefecture, age",
    );
    let mut below = 0;
    for row in &ev.table.rows {
        let key = format!("{}/{}", row.keys[0].clone().unwrap(), row.keys[1].clone().unwrap());
        let want = institutions.get(&key).copied().unwrap_or(0);
        let e = row.cells[0].evidence.as_ref().unwrap();
        let got = e.units.iter().find(|(kind, _)| kind == "institution").map(|(_, n)| *n);
        assert_eq!(got, Some(want.min(UNIT_CAP)), "institutions of {key}");
        below += usize::from(want < UNIT_CAP);
    }
    assert!(below > 10, "cells below the cap: {below} of {}", ev.table.rows.len());

    // A detail table reaches its persons through its receipt.
    let ev = checker.evidence("SELECT disease_code, count(*) AS n FROM sy GROUP BY disease_code").unwrap();
    let persons = owner_counts(
        &home,
        &format!(
            "SELECT sy.disease_code, count(DISTINCT re.id5) FROM sy JOIN re ON sy.receipt_id = re.receipt_id WHERE {} GROUP BY sy.disease_code",
            valid("re.id5")
        ),
    );
    assert!(ev.table.rows.len() > 20);
    for row in &ev.table.rows {
        let code = row.keys[0].clone().unwrap();
        assert_eq!(row.cells[0].evidence.as_ref().unwrap().persons, Some(persons.get(&code).copied().unwrap_or(0)), "{code}");
    }

    // Printed counts all ≥ 10 (receipts), persons behind some cells fewer: those cells fail
    // under the NDB rules, whatever the printed number says (issue 17's lineage test).
    let sql = "SELECT prefecture, age, count(*) AS receipts FROM re GROUP BY prefecture, age HAVING count(*) >= 10";
    let ev = checker.evidence(sql).unwrap();
    let verdict = kura_disclosure::table::check_table(&LoadedPolicy::default_ndb(), &ev.table).unwrap();
    let mut failed_few = 0;
    for (row, v) in ev.table.rows.iter().zip(&verdict.cells) {
        let cell = &row.cells[0];
        assert!(cell.value.unwrap() >= 10.0);
        let persons = cell.evidence.as_ref().unwrap().persons.unwrap();
        if (1..10).contains(&persons) {
            assert_eq!(v[0].status, Status::Fail, "{row:?}");
            assert!(v[0].findings.iter().any(|f| f.rule == rule::PERSONS), "{:?}", v[0].findings);
            failed_few += 1;
        }
    }
    assert!(failed_few > 0, "the population has cells of ≥ 10 receipts from fewer than 10 persons");

    // The checker names no hidden column either.
    let e = checker.evidence("SELECT count(DISTINCT __kura_person) FROM re").unwrap_err().to_string();
    assert!(e.contains("__kura_"), "{e}");
    // Nor reaches one unnamed: through `*` renamed by a derived table's column list, or a
    // wildcard inside a subquery (an insider's attack on the platform's person key).
    for sql in [
        "SELECT max(p) AS maxp, count(DISTINCT p) AS persons FROM (SELECT * FROM re) AS t(a, b, c, d, e, p, i, ph, ins)",
        "SELECT count(DISTINCT i) AS institutions FROM (SELECT * FROM re) AS t(a, b, c, d, e, p, i, ph, ins)",
        "SELECT count(*) AS n FROM re WHERE receipt_id IN (SELECT x FROM (SELECT * FROM re) AS t(x, b, c, d, e, p, i, ph, ins))",
    ] {
        let e = checker.evidence(sql).map(|ev| format!("{:?}", ev.table.rows)).unwrap_err().to_string();
        assert!(e.contains("Kura's own columns"), "{sql}: {e}");
    }
    // Naming the columns still works.
    assert!(checker.evidence("SELECT count(*) AS n FROM (SELECT sex, age FROM re) AS t(s, a) WHERE a > 20").is_ok());
    drop(checker);

    // The researcher's worker over the same extract: no hidden column in its tables, no way to
    // name one, and no evidence.
    let mut worker = Session::start(&cmd(), spec(&home, dir.path(), "PRJ-000001")).unwrap();
    let out = worker.run("SELECT * FROM re LIMIT 1", None).unwrap();
    let names: Vec<String> = out[0].schema.fields().iter().map(|f| f.name().clone()).collect();
    assert!(names.iter().all(|n| !n.starts_with("__kura")), "{names:?}");
    assert_eq!(names.len(), 5, "{names:?}");
    let e = worker.run("SELECT __kura_person FROM re", None).unwrap_err().to_string();
    assert!(e.contains("__kura_"), "{e}");
    // Nor make one: a saved table or a view whose column poses as the platform's persons
    // would choose who the checker counts (an insider's attack).
    for sql in [
        "SELECT receipt_id AS \"__kura_person\", total_points FROM re WHERE age > 90",
        "CREATE TEMPORARY VIEW fake AS SELECT receipt_id AS \"__KURA_PERSON\" FROM re",
    ] {
        let e = worker.run(sql, Some("fake")).unwrap_err().to_string();
        assert!(e.contains("__kura_"), "{sql}: {e}");
    }
    let e = worker.evidence("SELECT sex, count(*) FROM re GROUP BY sex").unwrap_err().to_string();
    assert!(e.contains("checker"), "{e}");
}
