//! Output tables (集計表): per-cell verdicts for a whole table, the columns' rules, and the
//! mitigations — primary suppression of failing cells, secondary suppression so that totals
//! cannot reveal them (proved by [`crate::audit`]), and rounding.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::audit::{self, Interval, Known, Relation};
use crate::check::{self, Cell, Finding, Statistic, Status, rule};
use crate::policy::{LoadedPolicy, Policy, RoundingMethod};

/// A table: rows of dimension keys and measure cells. A key of `None` is a total over that
/// dimension (as `GROUPING SETS`, `ROLLUP` and `CUBE` print it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// The dimension columns' names.
    pub dims: Vec<String>,
    /// The measure columns' names.
    pub measures: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
    /// False where rows may be missing (a HAVING, a LIMIT): totals then bound their parts from
    /// above only.
    pub complete: bool,
    /// Findings about the whole table from its lineage (for example individual records).
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// One row of a [`Table`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// One key per dimension (`None`: the total over it).
    pub keys: Vec<Option<String>>,
    /// One cell per measure.
    pub cells: Vec<Cell>,
    /// Distinct persons of the row's whole group, where known: a row of 1 to threshold−1
    /// persons shows nothing, not even its keys.
    #[serde(default)]
    pub persons: Option<u64>,
}

/// What is done to a cell before release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Shown as it is.
    Shown,
    /// Shown rounded.
    Rounded,
    /// Suppressed because it fails a rule.
    Suppressed,
    /// Suppressed so that a total cannot reveal a suppressed cell.
    SecondarySuppressed,
}

/// The verdict on one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellVerdict {
    /// Every rule that fired.
    pub findings: Vec<Finding>,
    /// The worst of them, before mitigation.
    pub status: Status,
    /// What mitigation does with the cell.
    pub action: Action,
    /// The value released after mitigation (`None`: suppressed or empty).
    pub released: Option<f64>,
}

/// The verdict on a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableVerdict {
    /// The policy's `name version (sha256 …)`.
    pub policy: String,
    /// Findings about columns and the whole table (these cannot be mitigated by suppression).
    pub table_findings: Vec<Finding>,
    /// `cells[row][measure]`.
    pub cells: Vec<Vec<CellVerdict>>,
    /// The worst status before mitigation.
    pub status: Status,
    /// The worst status of what would be released after mitigation: suppressed cells no longer
    /// count, table findings and cells under review still do.
    pub released_status: Status,
    /// Rows whose keys are not released either (their group holds too few persons).
    #[serde(default)]
    pub masked_rows: Vec<usize>,
    /// The airlock's differencing memory as the table was checked against it: the number of
    /// its newest release then (0: none, or not checked against a memory).
    #[serde(default)]
    pub memory_through: u64,
}

impl TableVerdict {
    /// How many cells have each status before mitigation: (pass, review, fail).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut n = (0, 0, 0);
        for v in self.cells.iter().flatten() {
            match v.status {
                Status::Pass => n.0 += 1,
                Status::Review => n.1 += 1,
                Status::Fail => n.2 += 1,
            }
        }
        n
    }
}

/// The most rounds of secondary suppression before a table goes to review.
const MAX_ROUNDS: usize = 200;

/// The most hidden cells of one measure the audit takes on.
const MAX_HIDDEN: usize = 2000;

/// Whether sums of this statistic over rows add up to the total row.
fn additive(s: &Statistic) -> bool {
    matches!(s, Statistic::Count | Statistic::Sum | Statistic::Prescriptions { .. })
}

/// Whether every cell of measure `m` adds up over rows (only such measures have totals).
fn additive_measure(table: &Table, m: usize) -> bool {
    table.rows.iter().filter_map(|r| r.cells.get(m)).all(|c| additive(&c.statistic))
}

/// The additivity relations of one measure: each total row equals the sum of the rows that
/// differ from it in one dimension only, where that dimension is given. `None` where rows repeat
/// the same keys (the table is not a hierarchy of totals).
pub fn relations(table: &Table) -> Option<Vec<Relation>> {
    let mut index: HashMap<&[Option<String>], usize> = HashMap::new();
    for (i, row) in table.rows.iter().enumerate() {
        if index.insert(row.keys.as_slice(), i).is_some() {
            return None;
        }
    }
    let mut children: HashMap<(usize, Vec<Option<String>>), Vec<usize>> = HashMap::new();
    for (i, row) in table.rows.iter().enumerate() {
        for (d, key) in row.keys.iter().enumerate() {
            if key.is_some() {
                let mut parent = row.keys.clone();
                if let Some(slot) = parent.get_mut(d) {
                    *slot = None;
                }
                children.entry((d, parent)).or_default().push(i);
            }
        }
    }
    let mut out = Vec::new();
    for (i, row) in table.rows.iter().enumerate() {
        for (d, key) in row.keys.iter().enumerate() {
            if key.is_none()
                && let Some(parts) = children.get(&(d, row.keys.clone()))
            {
                out.push(Relation { total: i, parts: parts.clone(), complete: table.complete });
            }
        }
        // A total over several dimensions also equals the sum of the finest rows below it,
        // whether or not the intermediate margins are shown (GROUPING SETS ((a, b), ())).
        if row.keys.iter().filter(|k| k.is_none()).count() >= 2 {
            let parts: Vec<usize> = table
                .rows
                .iter()
                .enumerate()
                .filter(|(_, other)| {
                    other.keys.iter().zip(&row.keys).all(|(o, t)| match t {
                        Some(t) => o.as_ref() == Some(t),
                        None => o.is_some(),
                    })
                })
                .map(|(j, _)| j)
                .collect();
            if !parts.is_empty() {
                out.push(Relation { total: i, parts, complete: table.complete });
            }
        }
    }
    Some(out)
}

/// Checks every column and cell of a table and works out the mitigations.
pub fn check_table(loaded: &LoadedPolicy, table: &Table) -> Result<TableVerdict, Error> {
    let policy = &loaded.policy;
    for (r, row) in table.rows.iter().enumerate() {
        if row.keys.len() != table.dims.len() || row.cells.len() != table.measures.len() {
            return Err(Error::Table(format!(
                "row {} has {} keys and {} cells; the table has {} dimensions and {} measures",
                r + 1,
                row.keys.len(),
                row.cells.len(),
                table.dims.len(),
                table.measures.len()
            )));
        }
    }
    let mut table_findings = table.findings.clone();
    column_rules(policy, table, &mut table_findings);

    let t = policy.persons.threshold;
    let masked_rows: Vec<usize> =
        table.rows.iter().enumerate().filter(|(_, r)| r.persons.is_some_and(|p| (1..t).contains(&p))).map(|(i, _)| i).collect();
    let mut cells: Vec<Vec<CellVerdict>> = table
        .rows
        .iter()
        .map(|row| {
            let small = row.persons.is_some_and(|p| (1..t).contains(&p));
            row.cells
                .iter()
                .map(|cell| {
                    let mut findings = check::check_cell(policy, cell);
                    if small {
                        findings.push(Finding {
                            rule: rule::SMALL_ROW.to_owned(),
                            status: Status::Fail,
                            message: format!("行の集団が {t} 人未満（キーも出さない）/ the row's group has fewer than {t} persons: its keys are not shown either"),
                        });
                    }
                    let status = check::worst(&findings);
                    CellVerdict {
                        action: if status == Status::Fail { Action::Suppressed } else { Action::Shown },
                        released: if status == Status::Fail { None } else { cell.value },
                        findings,
                        status,
                    }
                })
                .collect()
        })
        .collect();

    let rels = relations(table);
    for m in 0..table.measures.len() {
        let additive_measure = additive_measure(table, m);
        round_measure(policy, table, m, &mut cells);
        if !additive_measure {
            continue;
        }
        match &rels {
            Some(rels) if !rels.is_empty() => {
                if policy.suppression.secondary {
                    protect(policy, table, m, rels, &mut cells, &mut table_findings)?;
                }
            }
            Some(_) => {}
            None => table_findings.push(Finding {
                rule: rule::SECONDARY.to_owned(),
                status: Status::Review,
                message: "行のキーが重複し合計との関係を確認できない / rows repeat the same keys: totals cannot be checked".to_owned(),
            }),
        }
    }

    // Measures of one row can reveal each other (m + f = total beside them): where a row hides an
    // additive cell, it hides all of them, and each measure is protected again.
    let additive_measures: Vec<usize> = (0..table.measures.len()).filter(|&m| additive_measure(table, m)).collect();
    if additive_measures.len() >= 2 {
        for _ in 0..8 {
            let mut changed = false;
            for row in cells.iter_mut() {
                let hidden = additive_measures
                    .iter()
                    .any(|&m| row.get(m).is_some_and(|v| matches!(v.action, Action::Suppressed | Action::SecondarySuppressed)));
                if !hidden {
                    continue;
                }
                for &m in &additive_measures {
                    if let Some(v) = row.get_mut(m)
                        && !matches!(v.action, Action::Suppressed | Action::SecondarySuppressed)
                    {
                        v.action = Action::SecondarySuppressed;
                        v.released = None;
                        v.findings.push(Finding {
                            rule: rule::SECONDARY.to_owned(),
                            status: Status::Pass,
                            message: "同じ行の他の値から秘匿セルが復元されないよう秘匿 / hidden so that the row's other values cannot reveal a suppressed cell".to_owned(),
                        });
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
            if let (Some(rels), true) = (&rels, policy.suppression.secondary) {
                for &m in &additive_measures {
                    protect(policy, table, m, rels, &mut cells, &mut table_findings)?;
                }
            }
        }
    }

    let status = check::worst(&table_findings).max(cells.iter().flatten().map(|c| c.status).max().unwrap_or(Status::Pass));
    let released_status = check::worst(&table_findings).max(
        cells
            .iter()
            .flatten()
            .filter(|c| !matches!(c.action, Action::Suppressed | Action::SecondarySuppressed))
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass),
    );
    Ok(TableVerdict { policy: loaded.identity(), table_findings, cells, status, released_status, masked_rows, memory_through: 0 })
}

fn column_rules(policy: &Policy, table: &Table, out: &mut Vec<Finding>) {
    for name in table.dims.iter().chain(&table.measures) {
        if policy.is_identifier(name) {
            out.push(Finding {
                rule: rule::IDENTIFIER.to_owned(),
                status: Status::Fail,
                message: format!("識別子の列 {name} / identifier column {name}"),
            });
        }
        if policy.is_too_fine(name) {
            out.push(Finding {
                rule: rule::GEOGRAPHY.to_owned(),
                status: Status::Fail,
                message: format!("細かすぎる地域の列 {name} / geography finer than permitted: {name}"),
            });
        }
    }
    if table.rows.len() as u64 > policy.limits.max_rows {
        out.push(Finding {
            rule: rule::LIMITS.to_owned(),
            status: Status::Fail,
            message: format!(
                "{} 行は上限 {} 行を超える / {} rows exceed the limit of {}",
                table.rows.len(),
                policy.limits.max_rows,
                table.rows.len(),
                policy.limits.max_rows
            ),
        });
    }
}

/// Rounds shown counts as the policy says.
fn round_measure(policy: &Policy, table: &Table, m: usize, cells: &mut [Vec<CellVerdict>]) {
    if policy.rounding.method == RoundingMethod::None {
        return;
    }
    for (row, verdicts) in table.rows.iter().zip(cells.iter_mut()) {
        let (Some(cell), Some(v)) = (row.cells.get(m), verdicts.get_mut(m)) else {
            continue;
        };
        if !matches!(cell.statistic, Statistic::Count | Statistic::Prescriptions { .. }) {
            continue;
        }
        if let (Action::Shown, Some(value)) = (v.action, v.released) {
            v.released = Some(round(policy, value));
            v.action = Action::Rounded;
        }
    }
}

/// A count rounded as the policy says.
pub fn round(policy: &Policy, value: f64) -> f64 {
    match policy.rounding.method {
        RoundingMethod::None => value,
        RoundingMethod::Nearest => {
            let b = policy.rounding.base.unwrap_or(1).max(1) as f64;
            (value / b).round() * b
        }
        RoundingMethod::Midpoint6 => midpoint6(value),
    }
}

/// OpenSAFELY's midpoint-6: 0 → 0, 1–6 → 3, 7–12 → 9, …
pub fn midpoint6(value: f64) -> f64 {
    if value <= 0.0 { 0.0 } else { 6.0 * (value / 6.0).ceil() - 3.0 }
}

/// What a released value tells about the true value.
fn known(policy: &Policy, v: &CellVerdict) -> Known {
    match (v.action, v.released) {
        (Action::Rounded, Some(r)) => match policy.rounding.method {
            RoundingMethod::Nearest => {
                let half = policy.rounding.base.unwrap_or(1) as f64 / 2.0;
                Known::Range(r - half, r + half)
            }
            RoundingMethod::Midpoint6 if r > 0.0 => Known::Range(r - 2.0, r + 3.0),
            _ => Known::Exact(r),
        },
        (Action::Shown, Some(r)) => Known::Exact(r),
        (Action::Shown, None) => Known::Exact(0.0),
        _ => Known::Hidden,
    }
}

/// Secondary suppression of one measure: while the audit finds a suppressed cell whose
/// interval is narrower than the protection width, suppress the smallest shown cell that shares
/// a relation with it (interior cells before totals). Ends when every suppressed cell is
/// protected (each step hides one more cell, and a table with everything hidden is).
fn protect(
    policy: &Policy,
    table: &Table,
    m: usize,
    rels: &[Relation],
    cells: &mut [Vec<CellVerdict>],
    findings: &mut Vec<Finding>,
) -> Result<(), Error> {
    let width = policy.suppression.protection as f64;
    let mut rounds = 0usize;
    let value = |r: usize| table.rows.get(r).and_then(|row| row.cells.get(m)).and_then(|c| c.value).unwrap_or(0.0);
    let is_total = |r: usize| table.rows.get(r).is_some_and(|row| row.keys.iter().any(Option::is_none));
    let mut by_cell: BTreeMap<usize, Vec<&Relation>> = BTreeMap::new();
    for rel in rels {
        for &c in rel.parts.iter().chain(std::iter::once(&rel.total)) {
            by_cell.entry(c).or_default().push(rel);
        }
    }
    loop {
        let known: Vec<Known> = cells.iter().map(|row| row.get(m).map_or(Known::Hidden, |v| known(policy, v))).collect();
        if !known.iter().any(|k| matches!(k, Known::Hidden)) {
            return Ok(());
        }
        let hidden = known.iter().filter(|k| matches!(k, Known::Hidden)).count();
        rounds += 1;
        if rounds > MAX_ROUNDS || hidden > MAX_HIDDEN {
            // A bound on the checker's work: a table this hard goes to a person.
            findings.push(Finding {
                rule: rule::SECONDARY.to_owned(),
                status: Status::Review,
                message: format!("二次秘匿の計算が上限を超えた（秘匿 {hidden} セル）/ secondary suppression exceeded its bounds ({hidden} hidden cells): a reviewer checks the totals"),
            });
            return Ok(());
        }
        let intervals = match audit::intervals(&known, rels) {
            Ok(i) => i,
            Err(e) => {
                // Values that do not add up (a measure that is not a plain sum): the audit cannot
                // prove anything, so a person decides.
                findings.push(Finding {
                    rule: rule::SECONDARY.to_owned(),
                    status: Status::Review,
                    message: format!("合計との関係を監査できない / the totals cannot be audited: {e}"),
                });
                return Ok(());
            }
        };
        let primary = |c: usize| cells.get(c).and_then(|row| row.get(m)).is_some_and(|v| v.action == Action::Suppressed);
        let weak: Vec<usize> = intervals.iter().filter(|(c, i)| primary(**c) && i.width() + 1e-9 < width).map(|(c, _)| *c).collect();
        if weak.is_empty() {
            return Ok(());
        }
        let mut added = BTreeSet::new();
        for c in weak {
            // The shown cells nearest to the weak one: in its own relations first, then in the
            // relations of the hidden cells those reach, and so on outwards.
            let mut frontier = vec![c];
            let mut visited = BTreeSet::from([c]);
            let mut choice = None;
            while choice.is_none() && !frontier.is_empty() {
                let mut shown = Vec::new();
                let mut next = Vec::new();
                for f in &frontier {
                    for rel in by_cell.get(f).into_iter().flatten() {
                        for &o in rel.parts.iter().chain(std::iter::once(&rel.total)) {
                            if added.contains(&o) {
                                continue;
                            }
                            if matches!(known.get(o), Some(Known::Hidden)) {
                                if visited.insert(o) {
                                    next.push(o);
                                }
                            } else {
                                shown.push(o);
                            }
                        }
                    }
                }
                // Interior cells before totals, cells of at least the protection width before
                // smaller ones (a small partner protects little), then the smallest.
                choice = shown.into_iter().min_by(|&a, &b| {
                    let key = |x: usize| (is_total(x), value(x) < width, value(x));
                    key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal)
                });
                frontier = next;
            }
            if let Some(o) = choice {
                added.insert(o);
            }
        }
        if added.is_empty() {
            // Nothing around a weak cell is left to hide: that cannot happen while the relations
            // reach it, but never loop.
            return Err(Error::Audit("secondary suppression could not protect every suppressed cell".to_owned()));
        }
        for o in added {
            if let Some(v) = cells.get_mut(o).and_then(|row| row.get_mut(m)) {
                v.action = Action::SecondarySuppressed;
                v.released = None;
                v.findings.push(Finding {
                    rule: rule::SECONDARY.to_owned(),
                    status: Status::Pass,
                    message: "合計から秘匿セルが復元されないよう秘匿 / hidden so that totals cannot reveal a suppressed cell".to_owned(),
                });
            }
        }
    }
}

/// The audit of a verdict: every hidden cell of every additive measure with its feasible
/// interval, given only what the verdict releases. Used by the release gate and the tests.
pub fn audit_release(loaded: &LoadedPolicy, table: &Table, verdict: &TableVerdict) -> Result<Vec<(usize, usize, Interval)>, Error> {
    let Some(rels) = relations(table) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for m in 0..table.measures.len() {
        if !additive_measure(table, m) {
            continue;
        }
        let known: Vec<Known> = verdict.cells.iter().map(|row| row.get(m).map_or(Known::Hidden, |v| known(&loaded.policy, v))).collect();
        for (r, i) in audit::intervals(&known, &rels)? {
            out.push((r, m, i));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::check::Evidence;
    use rand::{Rng, SeedableRng};

    fn count(n: u64) -> Cell {
        Cell { value: Some(n as f64), statistic: Statistic::Count, evidence: Some(Evidence { persons: Some(n), ..Evidence::default() }) }
    }

    /// A two-way table of person counts with row, column and grand totals.
    fn two_way(values: &[Vec<u64>]) -> Table {
        let mut rows = Vec::new();
        let cols = values[0].len();
        let key = |i: usize| Some(format!("k{i}"));
        for (i, row) in values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                rows.push(Row { keys: vec![key(i), key(j)], cells: vec![count(*v)], persons: None });
            }
            rows.push(Row { keys: vec![key(i), None], cells: vec![count(row.iter().sum())], persons: None });
        }
        for j in 0..cols {
            rows.push(Row { keys: vec![None, key(j)], cells: vec![count(values.iter().map(|r| r[j]).sum())], persons: None });
        }
        rows.push(Row { keys: vec![None, None], cells: vec![count(values.iter().flatten().sum())], persons: None });
        Table { dims: vec!["sex".into(), "age_band".into()], measures: vec!["persons".into()], rows, complete: true, findings: Vec::new() }
    }

    fn assert_protected(policy: &LoadedPolicy, table: &Table, verdict: &TableVerdict) {
        let audit = audit_release(policy, table, verdict).unwrap();
        let width = policy.policy.suppression.protection as f64;
        for (r, m, i) in &audit {
            if verdict.cells[*r][*m].action != Action::Suppressed {
                continue;
            }
            assert!(i.width() + 1e-6 >= width, "row {r} measure {m}: interval {i:?} narrower than {width}");
        }
        // Every failing cell is hidden.
        for row in &verdict.cells {
            for c in row {
                if c.status == Status::Fail {
                    assert!(c.released.is_none());
                }
            }
        }
    }

    /// A one-way table with a total: the suppressed cell needs a partner.
    #[test]
    fn a_total_cannot_reveal_a_suppressed_cell() {
        let policy = LoadedPolicy::default_ndb();
        let table = Table {
            dims: vec!["prefecture".into()],
            measures: vec!["persons".into()],
            rows: [(Some("01"), 3), (Some("02"), 50), (Some("03"), 60), (None, 113)]
                .into_iter()
                .map(|(k, v)| Row { keys: vec![k.map(str::to_owned)], cells: vec![count(v)], persons: None })
                .collect(),
            complete: true,
            findings: Vec::new(),
        };
        let v = check_table(&policy, &table).unwrap();
        assert_eq!(v.cells[0][0].action, Action::Suppressed);
        assert_eq!(v.cells[1][0].action, Action::SecondarySuppressed);
        assert_eq!(v.cells[2][0].action, Action::Shown);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.released_status, Status::Pass);
        assert_protected(&policy, &table, &v);
        // Without secondary suppression the audit recovers the cell exactly.
        let mut off = policy.clone();
        off.policy.suppression.secondary = false;
        let v = check_table(&off, &table).unwrap();
        let audit = audit_release(&off, &table, &v).unwrap();
        assert!(audit[0].2.width() < 1e-6, "{audit:?}");
    }

    /// A two-way table with margins.
    #[test]
    fn two_way_margins() {
        let policy = LoadedPolicy::default_ndb();
        let table = two_way(&[vec![3, 40, 55], vec![20, 31, 44], vec![60, 12, 5]]);
        let v = check_table(&policy, &table).unwrap();
        assert_protected(&policy, &table, &v);
        let hidden = v.cells.iter().filter(|r| r[0].released.is_none()).count();
        assert!(hidden >= 4, "two primaries need at least two partners: {hidden}");
    }

    /// The audit finds no suppressed cell recoverable on random tables either (seeded).
    #[test]
    fn random_tables_are_protected() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        for policy in ["ndb", "cms-vrdc", "opensafely"] {
            let policy = LoadedPolicy::preset(policy).unwrap();
            for _ in 0..25 {
                let rows = rng.random_range(2..6);
                let cols = rng.random_range(2..6);
                let values: Vec<Vec<u64>> = (0..rows)
                    .map(|_| {
                        (0..cols).map(|_| if rng.random_bool(0.3) { rng.random_range(0..10) } else { rng.random_range(10..200) }).collect()
                    })
                    .collect();
                let table = two_way(&values);
                let v = check_table(&policy, &table).unwrap();
                assert_protected(&policy, &table, &v);
            }
        }
    }

    /// Measures of one row (men, women, all) cannot reveal each other; a grand total without
    /// margins still protects the detail cells; a row of too few persons hides its keys too.
    #[test]
    fn rows_and_grand_totals() {
        let policy = LoadedPolicy::default_ndb();
        let row =
            |k: &str, m: u64, f: u64| Row { keys: vec![Some(k.to_owned())], cells: vec![count(m), count(f), count(m + f)], persons: None };
        let table = Table {
            dims: vec!["prefecture".into()],
            measures: vec!["men".into(), "women".into(), "all".into()],
            rows: vec![row("01", 3, 40), row("02", 50, 60), row("03", 70, 80)],
            complete: true,
            findings: Vec::new(),
        };
        let v = check_table(&policy, &table).unwrap();
        assert_eq!(v.cells[0][0].action, Action::Suppressed);
        assert!(v.cells[0][1].released.is_none() && v.cells[0][2].released.is_none(), "{:?}", v.cells[0]);

        // GROUPING SETS ((sex, age_band), ()): the grand total relates to the finest cells.
        let mut t = two_way(&[vec![3, 40, 55], vec![20, 31, 44]]);
        t.rows.retain(|r| r.keys.iter().all(Option::is_some) || r.keys.iter().all(Option::is_none));
        let v = check_table(&policy, &t).unwrap();
        assert_protected(&policy, &t, &v);
        assert!(v.cells.iter().filter(|r| r[0].released.is_none()).count() >= 2);

        let mut t = two_way(&[vec![30, 40], vec![50, 60]]);
        t.rows[0].persons = Some(4);
        let v = check_table(&policy, &t).unwrap();
        assert_eq!(v.masked_rows, vec![0]);
        assert!(v.cells[0][0].released.is_none());
        assert_protected(&policy, &t, &v);
    }

    /// Identifier and too-fine geography columns fail the table, whatever the cells.
    #[test]
    fn columns() {
        let policy = LoadedPolicy::default_ndb();
        let mut table = two_way(&[vec![30, 40], vec![50, 60]]);
        table.dims[0] = "ID5".into();
        let v = check_table(&policy, &table).unwrap();
        assert_eq!(v.table_findings[0].rule, rule::IDENTIFIER);
        assert_eq!(v.released_status, Status::Fail);
        table.dims[0] = "postal_code".into();
        let v = check_table(&policy, &table).unwrap();
        assert_eq!(v.table_findings[0].rule, rule::GEOGRAPHY);
    }

    /// OpenSAFELY: counts rounded to 5; midpoint-6 bins.
    #[test]
    fn rounding() {
        let os = LoadedPolicy::preset("opensafely").unwrap();
        assert_eq!(round(&os.policy, 12.0), 10.0);
        assert_eq!(round(&os.policy, 13.0), 15.0);
        assert_eq!(round(&os.policy, 8.0), 10.0);
        for (v, m) in [(0.0, 0.0), (1.0, 3.0), (6.0, 3.0), (7.0, 9.0), (12.0, 9.0), (13.0, 15.0)] {
            assert_eq!(midpoint6(v), m, "{v}");
        }
        let table = two_way(&[vec![12, 40], vec![50, 61]]);
        let v = check_table(&os, &table).unwrap();
        assert_eq!(v.cells[0][0].released, Some(10.0));
        assert_eq!(v.cells[0][0].action, Action::Rounded);
        assert_protected(&os, &table, &v);
    }

    /// Rows that repeat keys cannot be audited: said, not passed silently.
    #[test]
    fn repeated_keys_go_to_review() {
        let policy = LoadedPolicy::default_ndb();
        let mut table = two_way(&[vec![30, 40], vec![50, 60]]);
        let first = table.rows[0].clone();
        table.rows.push(first);
        let v = check_table(&policy, &table).unwrap();
        assert!(v.table_findings.iter().any(|f| f.rule == rule::SECONDARY && f.status == Status::Review));
    }
}
