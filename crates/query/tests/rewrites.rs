//! Kura's plan rewrites give exactly the answers of the unrewritten plans.

use datafusion::arrow::util::display::array_value_to_string;
use kura_query::{EngineSpec, QueryEngine};
use kura_store::{Home, WriteOptions};
use kura_synth::SynthConfig;
use kura_synth_dataset::write_synthetic;

/// One cell as text; floating-point values to 10 significant digits, because a rewrite may
/// legitimately add the same numbers in another order.
fn cell(col: &dyn datafusion::arrow::array::Array, r: usize) -> String {
    use datafusion::arrow::array::{Array, Float64Array};
    match col.as_any().downcast_ref::<Float64Array>() {
        Some(f) if !f.is_null(r) => format!("{:.9e}", f.value(r)),
        _ => array_value_to_string(col, r).unwrap(),
    }
}

fn rows(e: &QueryEngine, rt: &tokio::runtime::Runtime, sql: &str) -> Vec<String> {
    let out = rt.block_on(e.run(sql)).unwrap_or_else(|err| panic!("{sql}: {err}"));
    let o = out.last().unwrap();
    let mut v: Vec<String> = o
        .batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| (0..b.num_columns()).map(|c| cell(b.column(c).as_ref(), r)).collect::<Vec<_>>().join("|"))
        })
        .collect();
    v.sort();
    v
}

fn plan(e: &QueryEngine, rt: &tokio::runtime::Runtime, sql: &str) -> String {
    rows(e, rt, &format!("EXPLAIN {sql}")).join("\n")
}

/// Kura's four rules (crates/query/src/rules.rs), by the names they give the optimizer.
const DISTINCT: &str = "kura_distinct_with_count_to_group_by";
const SEMI: &str = "kura_push_semi_join_below_inner_join";
const SMALL_FIRST: &str = "kura_join_filtered_small_table_first";
const EAGER: &str = "kura_aggregate_before_joining_small_table";

/// Each case and exactly the rules that must change its plan (an empty list: no rule may).
const CASES: &[(&str, &[&str])] = &[
    // DistinctWithCountToGroupBy: count(*) beside count(DISTINCT), with NULL and '9' IDs, empty groups.
    (
        "SELECT service_month, receipt_kind, count(*), count(DISTINCT id5), sum(total_points), min(age), max(age) FROM re GROUP BY service_month, receipt_kind",
        &[DISTINCT],
    ),
    ("SELECT count(*), count(DISTINCT id5), count(id5) FROM re", &[DISTINCT]),
    ("SELECT sex, count(*), count(DISTINCT id5) FROM re WHERE age > 200 GROUP BY sex", &[DISTINCT]),
    ("SELECT count(*), count(DISTINCT id5) FROM re WHERE age > 200", &[DISTINCT]),
    ("SELECT age / 10, count(DISTINCT id1), count(receipt_id) FROM re GROUP BY age / 10", &[DISTINCT]),
    // PushSemiJoinBelowInnerJoin: IN / NOT IN / EXISTS / NOT EXISTS over a join.
    (
        "SELECT count(*) FROM iy i JOIN re r ON r.receipt_id = i.receipt_id WHERE i.drug_code IN (SELECT drug_code FROM m_drug WHERE efficacy_class = '3962')",
        &[SEMI],
    ),
    (
        "SELECT count(*) FROM iy i JOIN re r ON r.receipt_id = i.receipt_id WHERE i.drug_code NOT IN (SELECT drug_code FROM m_drug WHERE efficacy_class = '3962')",
        &[SEMI],
    ),
    (
        "SELECT count(*) FROM iy i JOIN re r ON r.receipt_id = i.receipt_id WHERE EXISTS (SELECT 1 FROM m_drug d WHERE d.drug_code = i.drug_code AND d.route LIKE '注射%')",
        &[SEMI],
    ),
    (
        "SELECT count(*) FROM iy i JOIN re r ON r.receipt_id = i.receipt_id WHERE NOT EXISTS (SELECT 1 FROM m_drug d WHERE d.drug_code = i.drug_code AND d.efficacy_class = '3962')",
        &[SEMI],
    ),
    (
        "SELECT r.sex, count(*) FROM sy s JOIN re r ON r.receipt_id = s.receipt_id WHERE r.id5 IN (SELECT id5 FROM checkup) GROUP BY r.sex",
        &[SEMI],
    ),
    // JoinFilteredSmallTableFirst: a filtered master joined last.
    (
        "SELECT r.prefecture, count(*) FROM iy i JOIN re r ON r.receipt_id = i.receipt_id JOIN m_drug d ON d.drug_code = i.drug_code WHERE d.efficacy_class IN ('2171', '2149') GROUP BY r.prefecture",
        &[SMALL_FIRST],
    ),
    (
        "SELECT c.sex, l.item_key, count(*), avg(i.value) FROM checkup c JOIN checkup_item i ON i.checkup_id = c.checkup_id JOIN m_lab_item l ON l.item_code = i.item_code WHERE l.item_key IN ('hba1c', 'bmi') GROUP BY c.sex, l.item_key",
        &[SMALL_FIRST],
    ),
    // … but not when the master's join condition also reads the other table (c): moving the
    // master next to checkup_item alone would leave that condition without its column.
    (
        "SELECT count(*) FROM checkup c JOIN checkup_item i ON i.checkup_id = c.checkup_id JOIN m_lab_item l ON l.item_code = i.item_code AND l.name_en <> c.institution_code WHERE l.item_key = 'hba1c'",
        &[],
    ),
    // AggregateBeforeJoiningSmallTable: facts aggregated by key before meeting a master.
    (
        "SELECT d.name_ja, d.efficacy_class, sum(i.points * i.count), count(*), min(i.quantity), max(i.count) FROM iy i JOIN m_drug d ON d.drug_code = i.drug_code GROUP BY d.name_ja, d.efficacy_class",
        &[EAGER],
    ),
    ("SELECT p.name_ja, count(*), count(r.id5) FROM m_prefecture p JOIN re r ON r.prefecture = p.prefecture GROUP BY p.name_ja", &[EAGER]),
    (
        "SELECT l.item_key, count(*) FROM checkup_item i JOIN m_lab_item l ON l.item_code = i.item_code WHERE i.value > 100 GROUP BY l.item_key",
        &[EAGER],
    ),
];

/// The Kura rules that changed the logical plan of `sql`: `EXPLAIN VERBOSE` lists the plan after
/// every optimizer rule, and "SAME TEXT AS ABOVE" where a rule changed nothing.
fn fired(e: &QueryEngine, rt: &tokio::runtime::Runtime, sql: &str) -> std::collections::BTreeSet<String> {
    let out = rt.block_on(e.run(&format!("EXPLAIN VERBOSE {sql}"))).unwrap_or_else(|err| panic!("{sql}: {err}"));
    let mut rules = std::collections::BTreeSet::new();
    for b in &out.last().unwrap().batches {
        for r in 0..b.num_rows() {
            let (kind, plan) = (array_value_to_string(b.column(0), r).unwrap(), array_value_to_string(b.column(1), r).unwrap());
            if let Some(rule) = kind.strip_prefix("logical_plan after ").filter(|k| k.starts_with("kura_"))
                && plan.trim() != "SAME TEXT AS ABOVE"
            {
                rules.insert(rule.to_string());
            }
        }
    }
    rules
}

#[test]
fn rewrites_preserve_answers_and_each_rule_fires_where_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    write_synthetic(&home, SynthConfig::new(4000, 17), &WriteOptions::from_home(&home, "ndb"), &|_| {}).unwrap();
    let engine = |rewrites: bool| {
        let mut spec = EngineSpec::from_home(&home, "ndb", None).unwrap();
        spec.limits.rewrites = rewrites;
        QueryEngine::new(spec).unwrap()
    };
    let (with, without) = (engine(true), engine(false));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut non_empty, mut wrong) = (0, Vec::new());
    for (sql, rules) in CASES {
        let a = rows(&with, &rt, sql);
        non_empty += usize::from(!a.is_empty());
        assert_eq!(a, rows(&without, &rt, sql), "{sql}");
        let want: std::collections::BTreeSet<String> = rules.iter().map(|r| r.to_string()).collect();
        let got = fired(&with, &rt, sql);
        if got != want {
            wrong.push(format!("{sql}\n  expected {want:?}, fired {got:?}"));
        }
        assert!(fired(&without, &rt, sql).is_empty(), "with rewrites off no Kura rule runs: {sql}");
        // The plans differ exactly when a rule fired.
        assert_eq!(plan(&with, &rt, sql) != plan(&without, &rt, sql), !got.is_empty(), "{sql}");
    }
    assert!(wrong.is_empty(), "rules that changed the plans:\n{}", wrong.join("\n"));
    // Every rule is exercised.
    for rule in [DISTINCT, SEMI, SMALL_FIRST, EAGER] {
        assert!(CASES.iter().any(|(_, r)| r.contains(&rule)), "no case for {rule}");
    }
    assert!(non_empty >= CASES.len() - 1);
    // A global count over no rows stays 0, not NULL.
    assert_eq!(rows(&with, &rt, CASES[3].0), ["0|0"]);
    // The count-distinct rewrite shows up by name in the plan.
    assert!(plan(&with, &rt, CASES[0].0).contains("__kura_distinct"));
    assert!(!plan(&without, &rt, CASES[0].0).contains("__kura_distinct"));
    // Eager aggregation: the drug lines are summed per drug code before meeting the master.
    let eager = CASES.iter().position(|(c, _)| c.starts_with("SELECT d.name_ja")).unwrap();
    assert!(plan(&with, &rt, CASES[eager].0).contains("__kura_partial"));
    assert!(!plan(&without, &rt, CASES[eager].0).contains("__kura_partial"));
}
