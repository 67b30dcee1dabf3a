//! Lineage-aware evidence for output tables (issue 17 §2, issue 22 §5–§8; HIC-IO2).
//!
//! An output table is the result of a researcher's SELECT. What decides whether a cell may leave
//! is not the printed number but **who is behind it**: how many distinct persons, institutions,
//! pharmacies and insurers, and for sums and means how much the largest two persons contribute.
//! This module computes that from the data, by rewriting the query's logical plan:
//!
//! - Below the outermost aggregate, every projection carries the hidden lineage columns
//!   (`__kura_person`, `__kura_institution`, `__kura_pharmacy`, `__kura_insurer`: the
//!   platform's own keys, present only in the checker's tables — never in the researcher's
//!   worker, issue 22 §8) up to the aggregate; an inner aggregate keeps them only where it
//!   groups by the person (`GROUP BY id5`), which leaves its rows as they were.
//! - The outermost aggregate node gains, for each of its aggregates, the evidence aggregates
//!   over exactly the rows that contribute to it (its own FILTER, and non-null arguments;
//!   non-zero ones for sums): the distinct persons, the records without a person key, the
//!   distinct units per kind, for sums and means the per-person contributions, and the person
//!   set — all of them from one aggregate, [`crate::evidence`], in one pass over the rows.
//! - The nodes above (HAVING, window functions, projections, ORDER BY, LIMIT) pass the evidence
//!   columns through, so each output row carries the evidence of its own group — the values
//!   and the evidence come from one execution and cannot be misaligned.
//!
//! Where the rewrite cannot follow the persons (a UNION, a DISTINCT or a LIMIT below the
//! aggregate, an inner aggregate that does not group by the person, a table without persons),
//! it says so: the cells carry no evidence and are checked on their values only, which is
//! never better than review (issue 22 §3). A SELECT without an aggregate is individual
//! records and fails.

use crate::evidence::{AggShape, EvidenceUdaf, GroupEvidence, Shape};
use crate::{QueryError, Result};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchemaRef};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{AggregateUDF, Expr, LogicalPlan, Projection, lit};
use datafusion::prelude::SessionContext;
use kura_disclosure::Cell;
use kura_disclosure::check::{Contributions, Evidence, Finding, Statistic, Status, rule};
use kura_disclosure::table::{Row, Table};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The prefix of the hidden lineage columns; researchers' SQL may not name it.
pub const HIDDEN_PREFIX: &str = "__kura_";

/// The hidden column of the platform's person key (a keyed hash of ID5; null where the record
/// has no valid person ID).
pub const PERSON: &str = "__kura_person";

/// The hidden unit columns and the kind each names.
pub const UNITS: [(&str, &str); 3] =
    [("institution", "__kura_institution"), ("pharmacy", "__kura_pharmacy"), ("insurer", "__kura_insurer")];

/// Columns by which an inner aggregate groups per person (the project pseudonym).
pub const PSEUDONYM_COLUMNS: [&str; 1] = ["id5"];

const EVIDENCE_PREFIX: &str = "__kura_ev";

/// The column of the evidence aggregate ([`crate::evidence`]).
const EVIDENCE_COLUMN: &str = "__kura_ev";

/// A table with its evidence, ready for [`kura_disclosure::check_table`].
#[derive(Debug, Clone)]
pub struct Evidenced {
    /// The table: the query's columns as dimensions and measures, each measure cell with the
    /// evidence behind it (or none where the lineage is unknown).
    pub table: Table,
    /// The query's result as it would be released, before mitigation.
    pub batches: Vec<RecordBatch>,
    /// Whether the evidence comes from the data (false: value-based checks only).
    pub lineage: bool,
    /// The persons behind every cell, `sets[row][measure]`: one sorted set of platform person
    /// keys (the hidden column's hashes) per aggregate the cell is built from — what the
    /// differencing memory compares (issue 17 §2, issue 22 §1–§2). Empty without lineage.
    /// These never leave the platform.
    pub sets: Vec<Vec<CellSets>>,
}

/// The person sets of one cell: one per aggregate it is built from (a share has two).
pub type CellSets = Vec<Vec<u64>>;

/// Encodes a sorted person set compactly: each key's difference from the one before as a
/// LEB128 varint (sets are stored and cross the checker's pipe this way).
pub fn encode_set(set: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(set.len() * 8);
    let mut prev = 0u64;
    for &x in set {
        let mut d = x.wrapping_sub(prev);
        prev = x;
        loop {
            let byte = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// Decodes [`encode_set`]'s bytes; `None` where they are cut off, not ascending, or not the
/// one encoding [`encode_set`] writes (a padded varint, bits beyond 64).
pub fn decode_set(bytes: &[u8]) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    let (mut prev, mut d, mut shift) = (0u64, 0u64, 0u32);
    for &b in bytes {
        if shift > 63 || (shift == 63 && b > 1) || (shift > 0 && b == 0) {
            return None;
        }
        d |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            let x = prev.wrapping_add(d);
            if !out.is_empty() && x <= prev {
                return None;
            }
            out.push(x);
            prev = x;
            (d, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(out)
}

/// Refuses SQL that names the hidden columns (the researcher's worker does not have them; the
/// checker must not let a query read them either).
pub fn refuse_hidden(sql: &str) -> Result<()> {
    if sql.to_ascii_lowercase().contains(HIDDEN_PREFIX) {
        return Err(QueryError::Refused {
            class: HIDDEN_PREFIX.to_owned(),
            reason: "Kura の内部の列名は使えません / names beginning with __kura_ are Kura's own".to_owned(),
        });
    }
    Ok(())
}

/// Refuses a plan in which any expression the researcher wrote reads a hidden column, however
/// it was reached: by name (refused before planning), through `*`, or renamed by a derived
/// table's column list (`(SELECT * FROM re) AS t(a, b, p)`). Hidden columns are followed by
/// position from the scans up; a node that passes its input's columns on keeps their taint;
/// an expression that reads a tainted column is refused, so nothing computed from one exists.
pub fn refuse_hidden_in_plan(plan: &LogicalPlan) -> Result<()> {
    taint(plan).map(|_| ())
}

fn hidden_refused() -> QueryError {
    QueryError::Refused {
        class: HIDDEN_PREFIX.to_owned(),
        reason: "問い合わせが Kura の内部の列を読みます。* ではなく列を名前で選んでください / the query reads Kura's own columns: name the columns instead of *".to_owned(),
    }
}

/// Which columns of `plan`'s output carry a hidden column as it is.
fn taint(plan: &LogicalPlan) -> Result<Vec<bool>> {
    let inputs = plan.inputs();
    let input_taints = inputs.iter().map(|p| taint(p)).collect::<Result<Vec<_>>>()?;
    // Every expression of this node: none may read a tainted column of an input.
    let mut bad = false;
    for e in plan.expressions() {
        e.apply(|x| {
            match x {
                Expr::Column(c) => {
                    for (input, t) in inputs.iter().zip(&input_taints) {
                        if let Ok(i) = input.schema().index_of_column(c)
                            && t.get(i).copied().unwrap_or(false)
                        {
                            bad = true;
                        }
                    }
                }
                Expr::ScalarSubquery(q) | Expr::Exists(datafusion::logical_expr::expr::Exists { subquery: q, .. })
                    if taint(&q.subquery).is_err() =>
                {
                    bad = true;
                }
                Expr::InSubquery(q) if taint(&q.subquery.subquery).is_err() => bad = true,
                _ => {}
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .map_err(df)?;
    }
    if bad {
        return Err(hidden_refused());
    }
    let n = plan.schema().fields().len();
    let concat = || input_taints.iter().flatten().copied().collect::<Vec<bool>>();
    Ok(match plan {
        LogicalPlan::TableScan(scan) => {
            let names: Vec<bool> = scan.projected_schema.fields().iter().map(|f| f.name().starts_with(HIDDEN_PREFIX)).collect();
            names
        }
        // Expressions: none read a tainted column, so nothing they make is tainted.
        LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_) | LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => vec![false; n],
        LogicalPlan::Window(_) => {
            let mut t = concat();
            t.resize(n, false);
            t
        }
        LogicalPlan::Union(_) => {
            let mut t = vec![false; n];
            for it in &input_taints {
                for (i, v) in it.iter().enumerate() {
                    if let Some(slot) = t.get_mut(i) {
                        *slot |= *v;
                    }
                }
            }
            t
        }
        _ => {
            // Filters, sorts, limits, aliases, joins, DISTINCT: the inputs' columns in order.
            let t = concat();
            if t.len() == n {
                t
            } else if t.iter().any(|x| *x) {
                // A node Kura does not follow over columns that hold hidden ones.
                return Err(hidden_refused());
            } else {
                vec![false; n]
            }
        }
    })
}

/// Where an output column comes from.
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    /// A group key (or an expression of group keys only): a dimension, with the group
    /// expressions it is built from (its total rows are known by the grouping id).
    Dim(BTreeSet<usize>),
    /// Built from these aggregates of the outermost aggregate; `windowed` where a window
    /// function over rows (a share of a total) is part of it.
    /// `bare` where the column is the aggregate itself (aliased or not), not arithmetic on it.
    Agg { aggs: BTreeSet<usize>, windowed: bool, bare: bool },
    /// Neither (a literal).
    Other,
}

/// What one aggregate of the outermost aggregate is.
#[derive(Debug, Clone)]
struct AggInfo {
    statistic: Statistic,
    contributions: bool,
    distinct_values: bool,
}

/// Runs `sql` in `ctx` (whose tables carry the hidden lineage columns) and returns its result
/// with the evidence of every cell.
pub async fn evidence(ctx: &SessionContext, sql: &str) -> Result<Evidenced> {
    refuse_hidden(sql)?;
    let state = ctx.state();
    let plan = state.create_logical_plan(sql).await.map_err(df)?;
    refuse_hidden_in_plan(&plan)?;
    if !matches!(plan, LogicalPlan::Projection(_) | LogicalPlan::Sort(_) | LogicalPlan::Limit(_) | LogicalPlan::Aggregate(_)) {
        // Not a query (the workspace's statement policy refuses the rest anyway).
        if !matches!(plan, LogicalPlan::Filter(_) | LogicalPlan::Window(_) | LogicalPlan::SubqueryAlias(_) | LogicalPlan::Distinct(_)) {
            return Err(QueryError::Refused {
                class: "output".to_owned(),
                reason: "出力は SELECT 文一つから作ります / an output is made from one SELECT".to_owned(),
            });
        }
    }
    let output_fields: Vec<String> = plan.schema().fields().iter().map(|f| f.name().clone()).collect();
    // A wildcard expands to the hidden columns too: an output never shows them (issue 22 §8).
    if output_fields.iter().any(|f| f.to_ascii_lowercase().starts_with(HIDDEN_PREFIX)) {
        return Err(QueryError::Refused {
            class: "output".to_owned(),
            reason: "出力に Kura の内部の列が含まれます。列を名前で選んでください / the output would hold Kura's own columns: name the columns instead of *".to_owned(),
        });
    }
    let rewritten = if has_subquery(&plan) { Err(lost("a subquery")) } else { rewrite(plan.clone()) };
    match rewritten {
        Ok(Rewritten { plan: rewritten, origins, aggs, complete, grouping, shape, kinds }) => {
            let batches = ctx.execute_logical_plan(rewritten).await.map_err(df)?.collect().await.map_err(df)?;
            let (mut table, sets) = build_table(&output_fields, &origins, &aggs, (&shape, &kinds), &batches, complete, grouping)?;
            // Aggregates the output does not show but that choose or order its rows (HAVING,
            // ORDER BY … LIMIT): their persons are not in any cell.
            let shown: BTreeSet<usize> = origins
                .iter()
                .take(output_fields.len())
                .flat_map(|o| match o {
                    Origin::Agg { aggs, .. } => aggs.iter().copied().collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
                .collect();
            if (0..aggs.len()).any(|i| !shown.contains(&i)) {
                table.findings.push(Finding {
                    rule: rule::HIDDEN_AGGREGATE.to_owned(),
                    status: Status::Review,
                    message: "表示しない集計で行を選別・並べ替えている（HAVING、ORDER BY）/ rows are chosen or ordered by an aggregate that is not shown (HAVING, ORDER BY)".to_owned(),
                });
            }
            if grouping.is_some() && !complete {
                table.findings.push(Finding {
                    rule: rule::SECONDARY.to_owned(),
                    status: Status::Review,
                    message: "合計があるのに行が欠けている（HAVING、LIMIT）/ totals are shown while rows are missing (HAVING, LIMIT): the difference is a cell".to_owned(),
                });
            }
            let batches = batches
                .iter()
                .map(|b| b.project(&(0..output_fields.len()).collect::<Vec<_>>()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| df(e.into()))?;
            Ok(Evidenced { table, batches, lineage: true, sets })
        }
        Err(lost) => {
            // Lineage unknown: the query's own result, checked on its values.
            let batches = ctx.execute_logical_plan(plan).await.map_err(df)?.collect().await.map_err(df)?;
            let table = value_table(&output_fields, &batches, lost)?;
            Ok(Evidenced { table, batches, lineage: false, sets: Vec::new() })
        }
    }
}

/// Whether any node of the plan holds a subquery (scalar, EXISTS, IN, ANY/ALL) that reads a
/// table with persons: its rows are not the outer rows, so the rewrite cannot follow their
/// persons (a value of one person can be carried anywhere). A subquery over reference tables
/// only (code masters: no persons) is harmless — `drug_code IN (SELECT drug_code FROM m_drug …)`.
fn has_subquery(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut found = false;
    let _ = plan.apply(|node| {
        let mut subqueries: Vec<Arc<LogicalPlan>> = Vec::new();
        if let LogicalPlan::Subquery(s) = node {
            subqueries.push(s.subquery.clone());
        }
        for e in node.expressions() {
            let _ = e.apply(|e| {
                match e {
                    Expr::ScalarSubquery(s) => subqueries.push(s.subquery.clone()),
                    Expr::Exists(x) => subqueries.push(x.subquery.subquery.clone()),
                    Expr::InSubquery(x) => subqueries.push(x.subquery.subquery.clone()),
                    Expr::SetComparison(x) => subqueries.push(x.subquery.subquery.clone()),
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        if subqueries.iter().any(|p| reads_persons(p)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Whether a plan (its subqueries included) scans a table that has the hidden lineage columns.
fn reads_persons(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut found = false;
    let _ = plan.apply_with_subqueries(|n| {
        if let LogicalPlan::TableScan(t) = n
            && t.source.schema().fields().iter().any(|f| f.name().starts_with(HIDDEN_PREFIX))
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn df(e: DataFusionError) -> QueryError {
    QueryError::Engine(e.to_string())
}

/// Why the lineage could not be followed.
#[derive(Debug, Clone)]
enum Lost {
    /// No aggregate: one row per record.
    Records,
    /// Something the rewrite cannot follow.
    Unknown(String),
}

struct Rewritten {
    plan: LogicalPlan,
    origins: Vec<Origin>,
    aggs: Vec<AggInfo>,
    complete: bool,
    /// With grouping sets (ROLLUP, CUBE, GROUPING SETS): how many group expressions there are.
    grouping: Option<usize>,
    /// The evidence aggregate's argument layout.
    shape: Shape,
    /// The unit kinds among its arguments, in order.
    kinds: Vec<&'static str>,
}

/// The evidence column that carries the grouping id of grouping sets.
const GROUPING_ID: &str = "__kura_evgid";

fn lost(what: &str) -> Lost {
    Lost::Unknown(what.to_owned())
}

/// Rewrites the plan so that its output gains the evidence columns.
fn rewrite(plan: LogicalPlan) -> std::result::Result<Rewritten, Lost> {
    match plan {
        LogicalPlan::Aggregate(agg) => {
            if agg.aggr_expr.is_empty() {
                // GROUP BY without an aggregate: one row per distinct combination of values.
                return Err(Lost::Records);
            }
            let input = carry(Arc::unwrap_or_clone(agg.input))?;
            let n_groups = agg.schema.fields().len() - agg.aggr_expr.len();
            let grouping_sets = matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]);
            // Every person column that reaches the aggregate (a join brings one per side): the
            // cell's persons are the fewest of them.
            let persons = find_all(input.schema(), PERSON);
            if persons.is_empty() {
                return Err(lost("no persons behind the aggregate"));
            }
            let units: Vec<(&str, Column)> =
                UNITS.iter().filter_map(|(kind, name)| find_all(input.schema(), name).into_iter().next().map(|c| (*kind, c))).collect();
            // One evidence aggregate for the whole node (crate::evidence): the person and unit
            // columns, then per aggregate the condition under which a row is behind it, its
            // CASE branches, and its value where contributions are kept.
            let mut args: Vec<Expr> = persons.iter().map(|p| Expr::Column(p.clone())).collect();
            args.extend(units.iter().map(|(_, c)| Expr::Column(c.clone())));
            let mut shape = Shape { persons: persons.len(), units: units.len(), aggs: Vec::new() };
            let mut infos = Vec::new();
            for e in &agg.aggr_expr {
                let Some(af) = aggregate_of(e) else { return Err(lost("an aggregate expression Kura cannot read")) };
                // A count's persons are those of the rows it counts; any other aggregate's value
                // can be weighted by its argument (`avg(x * CAST(age = 94 AS DOUBLE) + 1000)`
                // is one person's x among everyone), so its argument must be one column under
                // linear arithmetic with constants, or a CASE whose branches are such (each
                // branch is a person set of its own).
                if !af.func.name().eq_ignore_ascii_case("count") && !af.params.args.iter().all(|a| linear_argument(a, true)) {
                    return Err(lost(
                        "an aggregate's argument that is not one column with constant arithmetic (write conditions as CASE or FILTER)",
                    ));
                }
                let class = classify(af);
                let mut cond = class.contributes.clone();
                if let Some(f) = &af.params.filter {
                    cond = cond.and((**f).clone());
                }
                args.push(cond);
                args.extend(class.branches.iter().cloned());
                let value = if class.contributions { af.params.args.first().cloned() } else { None };
                shape.aggs.push(AggShape { branches: class.branches.len(), contributions: value.is_some() });
                args.extend(value);
                infos.push(AggInfo {
                    statistic: class.statistic,
                    contributions: class.contributions,
                    distinct_values: class.distinct_values,
                });
            }
            let kinds: Vec<&'static str> = units.iter().map(|(k, _)| *k).collect();
            if shape.bits() > crate::evidence::MAX_BITS {
                return Err(lost("more than 64 aggregates and CASE branches in one query"));
            }
            let mut aggr_expr = agg.aggr_expr.clone();
            aggr_expr.push(
                Expr::AggregateFunction(AggregateFunction::new_udf(
                    Arc::new(AggregateUDF::from(EvidenceUdaf::new(shape.clone()))),
                    args,
                    false,
                    None,
                    vec![],
                    None,
                ))
                .alias(EVIDENCE_COLUMN),
            );
            let new = datafusion::logical_expr::Aggregate::try_new(Arc::new(input), agg.group_expr.clone(), aggr_expr)
                .map_err(|e| lost(&format!("the rewritten aggregate does not plan: {e}")))?;
            let mut origins: Vec<Origin> = (0..n_groups).map(|i| Origin::Dim(BTreeSet::from([i]))).collect();
            origins.extend((0..agg.aggr_expr.len()).map(|i| Origin::Agg { aggs: BTreeSet::from([i]), windowed: false, bare: true }));
            let grouping = grouping_sets.then(|| n_groups.saturating_sub(1));
            if grouping_sets {
                // `__grouping_id` is the last group field: not an output column of its own.
                if let Some(last) = origins.get_mut(n_groups.saturating_sub(1)) {
                    *last = Origin::Other;
                }
            }
            Ok(Rewritten { plan: LogicalPlan::Aggregate(new), origins, aggs: infos, complete: true, grouping, shape, kinds })
        }
        LogicalPlan::Projection(p) => {
            let input_schema = p.input.schema().clone();
            let below = rewrite(Arc::unwrap_or_clone(p.input))?;
            let mut exprs = p.expr.clone();
            let mut origins = Vec::new();
            for e in &p.expr {
                origins.push(origin_of(e, &input_schema, &below.origins));
            }
            // Pass the evidence columns (and the grouping id) through.
            for f in below.plan.schema().columns() {
                if f.name.starts_with(EVIDENCE_PREFIX) {
                    exprs.push(Expr::Column(f));
                } else if f.name == datafusion::logical_expr::Aggregate::INTERNAL_GROUPING_ID {
                    exprs.push(Expr::Column(f).alias(GROUPING_ID));
                }
            }
            let proj = Projection::try_new(exprs, Arc::new(below.plan))
                .map_err(|e| lost(&format!("the rewritten projection does not plan: {e}")))?;
            Ok(Rewritten { plan: LogicalPlan::Projection(proj), origins, ..below })
        }
        LogicalPlan::Window(w) => {
            let input_schema = w.input.schema().clone();
            let below = rewrite(Arc::unwrap_or_clone(w.input.clone()))?;
            // Origins are indexed by the original node's columns: its input's, then one per
            // window expression (a window over rows: a share of a total, say).
            let mut origins = below.origins.clone();
            for e in &w.window_expr {
                let mut o = origin_of(e, &input_schema, &below.origins);
                if let Origin::Agg { windowed, bare, .. } = &mut o {
                    *windowed = true;
                    *bare = false;
                } else if o == Origin::Other {
                    o = Origin::Agg { aggs: BTreeSet::new(), windowed: true, bare: false };
                }
                origins.push(o);
            }
            let node = datafusion::logical_expr::Window::try_new(w.window_expr.clone(), Arc::new(below.plan))
                .map_err(|e| lost(&format!("the rewritten window does not plan: {e}")))?;
            Ok(Rewritten { plan: LogicalPlan::Window(node), origins, ..below })
        }
        LogicalPlan::Filter(f) => {
            let below = rewrite(Arc::unwrap_or_clone(f.input))?;
            let node = datafusion::logical_expr::Filter::try_new(f.predicate, Arc::new(below.plan)).map_err(|e| lost(&format!("{e}")))?;
            // A HAVING drops groups: totals may no longer add up over the rows shown.
            Ok(Rewritten { plan: LogicalPlan::Filter(node), complete: false, ..below })
        }
        LogicalPlan::Sort(s) => {
            let below = rewrite(Arc::unwrap_or_clone(s.input))?;
            let node = LogicalPlan::Sort(datafusion::logical_expr::Sort { expr: s.expr, input: Arc::new(below.plan), fetch: s.fetch });
            let complete = below.complete && s.fetch.is_none();
            Ok(Rewritten { plan: node, complete, ..below })
        }
        LogicalPlan::Limit(l) => {
            let below = rewrite(Arc::unwrap_or_clone(l.input))?;
            let node = LogicalPlan::Limit(datafusion::logical_expr::Limit { skip: l.skip, fetch: l.fetch, input: Arc::new(below.plan) });
            Ok(Rewritten { plan: node, complete: false, ..below })
        }
        LogicalPlan::SubqueryAlias(a) => {
            let below = rewrite(Arc::unwrap_or_clone(a.input))?;
            let node =
                datafusion::logical_expr::SubqueryAlias::try_new(Arc::new(below.plan), a.alias).map_err(|e| lost(&format!("{e}")))?;
            Ok(Rewritten { plan: LogicalPlan::SubqueryAlias(node), ..below })
        }
        LogicalPlan::Distinct(d) => {
            let below_has_aggregate =
                d.input().exists(|n| Ok(matches!(n, LogicalPlan::Aggregate(a) if !a.aggr_expr.is_empty()))).unwrap_or(false);
            Err(if below_has_aggregate { lost("DISTINCT above the aggregate") } else { Lost::Records })
        }
        LogicalPlan::Union(_) => Err(lost("UNION of outputs")),
        _ => Err(Lost::Records),
    }
}

/// Carries the hidden lineage columns from the scans up through the input of the outermost
/// aggregate.
fn carry(plan: LogicalPlan) -> std::result::Result<LogicalPlan, Lost> {
    let mut failure: Option<Lost> = None;
    let out = plan
        .transform_up(|node| {
            if failure.is_some() {
                return Ok(Transformed::no(node));
            }
            match node {
                LogicalPlan::Projection(p) => {
                    let mut exprs = p.expr.clone();
                    let present: BTreeSet<String> = p.schema.fields().iter().map(|f| f.name().clone()).collect();
                    // Every person column below (one per side of a join), each under a name of
                    // its own; the first unit column of each kind.
                    for (j, c) in find_all(p.input.schema(), PERSON).into_iter().enumerate() {
                        let name = if j == 0 { PERSON.to_owned() } else { format!("{PERSON}_{j}") };
                        if !present.contains(&name) {
                            exprs.push(Expr::Column(c).alias(name));
                        }
                    }
                    for (_, name) in UNITS {
                        if present.contains(name) {
                            continue;
                        }
                        if let Some(c) = find_all(p.input.schema(), name).into_iter().next() {
                            exprs.push(Expr::Column(c).alias(name));
                        }
                    }
                    let node = Projection::try_new(exprs, p.input)?;
                    Ok(Transformed::yes(LogicalPlan::Projection(node)))
                }
                LogicalPlan::Aggregate(a) => {
                    let by_person = a
                        .group_expr
                        .iter()
                        .any(|g| matches!(g, Expr::Column(c) if PSEUDONYM_COLUMNS.iter().any(|p| c.name.eq_ignore_ascii_case(p))));
                    match (by_person, find_all(a.input.schema(), PERSON).into_iter().next()) {
                        (true, Some(person)) => {
                            let mut group_expr = a.group_expr.clone();
                            group_expr.push(Expr::Column(person).alias(PERSON));
                            let node = datafusion::logical_expr::Aggregate::try_new(a.input, group_expr, a.aggr_expr)?;
                            Ok(Transformed::yes(LogicalPlan::Aggregate(node)))
                        }
                        _ => {
                            failure = Some(lost("an inner aggregate that does not group by person"));
                            Ok(Transformed::no(LogicalPlan::Aggregate(a)))
                        }
                    }
                }
                LogicalPlan::Distinct(_) => {
                    failure = Some(lost("DISTINCT below the aggregate"));
                    Ok(Transformed::no(node))
                }
                LogicalPlan::Union(_) => {
                    failure = Some(lost("UNION below the aggregate"));
                    Ok(Transformed::no(node))
                }
                LogicalPlan::Limit(_) => {
                    failure = Some(lost("LIMIT below the aggregate"));
                    Ok(Transformed::no(node))
                }
                LogicalPlan::Window(_) => {
                    // A window function moves values between rows (one person's value onto
                    // everyone's): the persons behind a row are no longer its own.
                    failure = Some(lost("a window function below the aggregate"));
                    Ok(Transformed::no(node))
                }
                LogicalPlan::TableScan(_) | LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => Ok(Transformed::no(node)),
                LogicalPlan::Filter(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Repartition(_)
                | LogicalPlan::Unnest(_)
                | LogicalPlan::Subquery(_) => Ok(Transformed::yes(node.recompute_schema()?)),
                other => {
                    failure = Some(lost(&format!("{} below the aggregate", other.display())));
                    Ok(Transformed::no(other))
                }
            }
        })
        .map_err(|e| lost(&format!("the lineage rewrite failed: {e}")))?;
    match failure {
        Some(f) => Err(f),
        None => Ok(out.data),
    }
}

/// The columns of `schema` with this (unqualified) name, or this name and a `_N` suffix.
fn find_all(schema: &DFSchemaRef, name: &str) -> Vec<Column> {
    schema
        .columns()
        .into_iter()
        .filter(|c| c.name == name || c.name.strip_prefix(name).and_then(|r| r.strip_prefix('_')).is_some_and(|n| n.parse::<u32>().is_ok()))
        .collect()
}

/// Whether `e` is a column under `+`, `-`, `*` with constants (and casts), or — where
/// `case_allowed` — a CASE whose results are such: an aggregate of it carries nothing but that
/// column's values, linearly.
fn linear_argument(e: &Expr, case_allowed: bool) -> bool {
    use datafusion::logical_expr::Operator;
    fn columns(e: &Expr) -> usize {
        e.column_refs().len()
    }
    match e {
        Expr::Column(_) | Expr::Literal(..) => true,
        Expr::Alias(a) => linear_argument(&a.expr, case_allowed),
        Expr::Cast(c) => linear_argument(&c.expr, case_allowed),
        Expr::TryCast(c) => linear_argument(&c.expr, case_allowed),
        Expr::Negative(x) => linear_argument(x, case_allowed),
        Expr::BinaryExpr(b) => {
            matches!(b.op, Operator::Plus | Operator::Minus | Operator::Multiply)
                && linear_argument(&b.left, false)
                && linear_argument(&b.right, false)
                && (columns(&b.left) == 0 || columns(&b.right) == 0)
        }
        Expr::Case(c) if case_allowed => {
            c.expr.is_none()
                && c.when_then_expr.iter().all(|(_, then)| linear_argument(then, false))
                && c.else_expr.as_deref().is_none_or(|x| linear_argument(x, false))
        }
        _ => false,
    }
}

fn aggregate_of(e: &Expr) -> Option<&AggregateFunction> {
    match e {
        Expr::AggregateFunction(af) => Some(af),
        Expr::Alias(a) => aggregate_of(&a.expr),
        _ => None,
    }
}

/// What an aggregate is, for its evidence.
struct Class {
    statistic: Statistic,
    /// The condition under which a row contributes to it.
    contributes: Expr,
    /// Whether per-person contributions are needed (sums, means).
    contributions: bool,
    /// One condition per branch of every CASE in its arguments.
    branches: Vec<Expr>,
    /// A count of distinct values other than the person.
    distinct_values: bool,
}

fn classify(af: &AggregateFunction) -> Class {
    let name = af.func.name().to_ascii_lowercase();
    let args = &af.params.args;
    let not_null = || {
        args.iter()
            .filter(|a| !matches!(a, Expr::Literal(..)))
            .map(|a| a.clone().is_not_null())
            .reduce(|a, b| a.and(b))
            .unwrap_or(lit(true))
    };
    let (statistic, contributes, contributions) = match name.as_str() {
        "count" => (Statistic::Count, not_null(), false),
        "sum" => {
            let cond = match args.first() {
                Some(a) => a.clone().is_not_null().and(a.clone().not_eq(lit(0i64))),
                None => lit(true),
            };
            (Statistic::Sum, cond, true)
        }
        "avg" | "mean" => (Statistic::Mean, not_null(), true),
        "min" | "max" => (Statistic::Extreme, not_null(), false),
        "first_value" | "last_value" | "nth_value" | "array_agg" | "string_agg" => (Statistic::Record, not_null(), false),
        "median" | "approx_median" | "percentile_cont" | "approx_percentile_cont" | "approx_percentile_cont_with_weight" => {
            (Statistic::Percentile, not_null(), false)
        }
        "stddev" | "stddev_pop" | "stddev_samp" | "var" | "var_pop" | "var_samp" | "variance" => (Statistic::Mean, not_null(), true),
        _ => (Statistic::Composite, not_null(), false),
    };
    let mut branches = Vec::new();
    for a in args {
        let _ = a.apply(|e| {
            if let Expr::Case(case) = e {
                let mut earlier: Option<Expr> = None;
                for (when, _) in &case.when_then_expr {
                    let when = match &case.expr {
                        Some(base) => base.as_ref().clone().eq(when.as_ref().clone()),
                        None => when.as_ref().clone(),
                    };
                    // A row takes the first branch whose condition holds.
                    let branch = match &earlier {
                        Some(prev) => when.clone().and(prev.clone().is_not_true()),
                        None => when.clone(),
                    };
                    branches.push(branch);
                    earlier = Some(match earlier {
                        Some(prev) => prev.or(when),
                        None => when,
                    });
                }
                if let Some(prev) = earlier {
                    branches.push(prev.is_not_true());
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
    }
    let distinct_values = af.params.distinct
        && name == "count"
        && !args.iter().all(|a| matches!(a, Expr::Column(c) if PSEUDONYM_COLUMNS.iter().any(|p| c.name.eq_ignore_ascii_case(p))));
    Class { statistic, contributes, contributions, branches, distinct_values }
}

/// The origin of an expression over an input whose columns have `origins`.
fn origin_of(e: &Expr, schema: &DFSchemaRef, origins: &[Origin]) -> Origin {
    // A column as it is (aliased or not) keeps its origin.
    let mut bare = e;
    while let Expr::Alias(a) = bare {
        bare = &a.expr;
    }
    if let Expr::Column(c) = bare
        && let Ok(i) = schema.index_of_column(c)
        && let Some(o) = origins.get(i)
    {
        return o.clone();
    }
    let mut aggs = BTreeSet::new();
    let mut deps = BTreeSet::new();
    let mut windowed = false;
    let mut any_agg = false;
    let mut any_dim = false;
    for c in e.column_refs() {
        let Ok(i) = schema.index_of_column(c) else { continue };
        match origins.get(i) {
            Some(Origin::Dim(d)) => {
                any_dim = true;
                deps.extend(d.iter().copied());
            }
            Some(Origin::Agg { aggs: a, windowed: w, .. }) => {
                any_agg = true;
                aggs.extend(a.iter().copied());
                windowed |= *w;
            }
            _ => {}
        }
    }
    if any_agg {
        Origin::Agg { aggs, windowed, bare: false }
    } else if any_dim {
        Origin::Dim(deps)
    } else {
        Origin::Other
    }
}

/// The evidence of aggregate `i` of a group.
fn evidence_at(group: Option<&GroupEvidence>, kinds: &[&str], info: Option<&AggInfo>, i: usize) -> Evidence {
    let Some(ev) = group.and_then(|g| g.aggs.get(i)) else { return Evidence::default() };
    Evidence {
        // The fewest persons of any person column (the sides of a join).
        persons: ev.persons.iter().copied().min(),
        unknown_person_records: ev.unknown,
        units: kinds.iter().zip(&ev.units).map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        contributions: ev.contributions.map(|(total, largest, second)| Contributions { total, largest, second }),
        parts: ev.branches.iter().map(|&n| Evidence { persons: Some(n), ..Evidence::default() }).collect(),
        distinct_values: info.is_some_and(|a| a.distinct_values),
    }
}

fn value_at(a: &ArrayRef, r: usize) -> (Option<f64>, Option<String>) {
    if a.is_null(r) {
        return (None, None);
    }
    let text = datafusion::arrow::util::display::array_value_to_string(a, r).ok();
    let number = match a.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => datafusion::arrow::compute::cast(&a.slice(r, 1), &DataType::Float64)
            .ok()
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>().map(|f| f.value(0))),
        _ => None,
    };
    (number, text)
}

fn build_table(
    names: &[String],
    origins: &[Origin],
    aggs: &[AggInfo],
    (shape, kinds): (&Shape, &[&'static str]),
    batches: &[RecordBatch],
    complete: bool,
    grouping: Option<usize>,
) -> Result<(Table, Vec<Vec<CellSets>>)> {
    let dims: Vec<usize> = (0..names.len()).filter(|i| matches!(origins.get(*i), Some(Origin::Dim(_)))).collect();
    let measures: Vec<usize> = (0..names.len()).filter(|i| !matches!(origins.get(*i), Some(Origin::Dim(_)))).collect();
    let mut rows = Vec::new();
    let mut sets = Vec::new();
    for batch in batches {
        let gid = batch.column_by_name(GROUPING_ID).and_then(|a| datafusion::arrow::compute::cast(a, &DataType::UInt64).ok());
        let evidence = batch
            .column_by_name(EVIDENCE_COLUMN)
            .and_then(|a| a.as_any().downcast_ref::<BinaryArray>())
            .ok_or_else(|| QueryError::Engine("lineage: the evidence column is missing".to_owned()))?;
        for r in 0..batch.num_rows() {
            let group = if evidence.is_null(r) {
                None
            } else {
                Some(
                    crate::evidence::decode(shape, evidence.value(r))
                        .ok_or_else(|| QueryError::Engine("lineage: the evidence of a row does not decode".to_owned()))?,
                )
            };
            let id = gid.as_ref().and_then(|a| a.as_primitive_opt::<datafusion::arrow::datatypes::UInt64Type>().map(|a| a.value(r)));
            let keys = dims
                .iter()
                .map(|&d| {
                    // A total of grouping sets: the grouping id's bit of this key is set.
                    if let (Some(Origin::Dim(deps)), Some(n), Some(id)) = (origins.get(d), grouping, id)
                        && deps.iter().any(|&g| g < n && (id >> (n - 1 - g)) & 1 == 1)
                    {
                        return None;
                    }
                    let (_, text) = value_at(batch.column(d), r);
                    Some(text.unwrap_or_else(|| "NULL".to_owned()))
                })
                .collect();
            let cells = measures
                .iter()
                .map(|&m| {
                    let (value, _) = value_at(batch.column(m), r);
                    match origins.get(m) {
                        Some(Origin::Agg { aggs: set, windowed, bare }) => {
                            let parts: Vec<Evidence> = set.iter().map(|&i| evidence_at(group.as_ref(), kinds, aggs.get(i), i)).collect();
                            // Arithmetic on an aggregate (`count(*) * 1000`) is not a count:
                            // neither rounded as one nor summed into totals.
                            let single = set.len() == 1 && !windowed && *bare;
                            if single {
                                let i = set.iter().next().copied().unwrap_or(0);
                                let info = aggs.get(i);
                                let mut statistic = info.map(|a| a.statistic.clone()).unwrap_or(Statistic::Composite);
                                if info.is_some_and(|a| a.contributions) && !matches!(statistic, Statistic::Sum | Statistic::Mean) {
                                    statistic = Statistic::Mean;
                                }
                                Cell { value, statistic, evidence: parts.into_iter().next() }
                            } else {
                                let mut parts = parts;
                                if *windowed {
                                    // A window over rows (a share of a total): the other person
                                    // set is not followed.
                                    parts.push(Evidence::default());
                                }
                                let persons = parts.iter().filter_map(|p| p.persons).min();
                                let evidence = Evidence { persons, parts, ..Evidence::default() };
                                Cell { value, statistic: Statistic::Composite, evidence: Some(evidence) }
                            }
                        }
                        _ => Cell { value, statistic: Statistic::Label, evidence: None },
                    }
                })
                .collect();
            // The fewest persons of the row's whole group over its person columns.
            let persons = group.as_ref().and_then(|g| g.row_persons.iter().copied().min());
            rows.push(Row { keys, cells, persons });
            sets.push(
                measures
                    .iter()
                    .map(|&m| match origins.get(m) {
                        Some(Origin::Agg { aggs: set, .. }) => set
                            .iter()
                            .map(|&i| group.as_ref().and_then(|g| g.aggs.get(i)).map(|a| a.set.clone()).unwrap_or_default())
                            .collect(),
                        _ => Vec::new(),
                    })
                    .collect(),
            );
        }
    }
    let table = Table {
        dims: dims.iter().filter_map(|&i| names.get(i).cloned()).collect(),
        measures: measures.iter().filter_map(|&i| names.get(i).cloned()).collect(),
        rows,
        complete,
        findings: Vec::new(),
    };
    Ok((table, sets))
}

/// A table checked on its values only: numbers are counts of unknown lineage.
fn value_table(names: &[String], batches: &[RecordBatch], lost: Lost) -> Result<Table> {
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            let cells = (0..names.len())
                .map(|c| {
                    let (value, _) = value_at(batch.column(c), r);
                    Cell { value, statistic: if value.is_some() { Statistic::Count } else { Statistic::Label }, evidence: None }
                })
                .collect();
            rows.push(Row { keys: Vec::new(), cells, persons: None });
        }
    }
    let finding = match lost {
        Lost::Records => Finding {
            rule: rule::RECORDS.to_owned(),
            status: Status::Fail,
            message: "集計されていない（個票）/ not aggregated: one row per record".to_owned(),
        },
        Lost::Unknown(why) => Finding {
            rule: rule::LINEAGE.to_owned(),
            status: Status::Review,
            message: format!("人数の由来を追えない（{why}）ため値のみで判定 / lineage lost ({why}): checked on values only"),
        },
    };
    Ok(Table { dims: Vec::new(), measures: names.to_vec(), rows, complete: false, findings: vec![finding] })
}

#[cfg(test)]
mod tests {
    #[test]
    fn person_sets_encode_and_decode() {
        for set in [vec![], vec![0], vec![1, 2, 3], vec![5, 1 << 40, u64::MAX - 1, u64::MAX]] {
            assert_eq!(super::decode_set(&super::encode_set(&set)), Some(set.clone()));
        }
        // Cut off, or not ascending: refused.
        assert_eq!(super::decode_set(&[0x80]), None);
        assert_eq!(super::decode_set(&[5, 0]), None);
        // Only the encoding encode_set writes: no padded varint, no bits beyond 64.
        assert_eq!(super::decode_set(&[0x83, 0x00]), None);
        let max = super::encode_set(&[u64::MAX]);
        assert_eq!(super::decode_set(&max), Some(vec![u64::MAX]));
        let mut over = max.clone();
        if let Some(last) = over.last_mut() {
            *last = 0x03;
        }
        assert_eq!(super::decode_set(&over), None);
    }

    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use kura_disclosure::check::Status;
    use kura_disclosure::{LoadedPolicy, check_table};

    /// A receipts table `re` of 10 persons with 3 receipts each in prefecture 01, 3 persons with
    /// 10 receipts each in 02 (30 receipts, 3 persons), and 12 persons with one receipt and no
    /// valid person key in 03 — with points, an institution and the hidden lineage columns.
    fn context() -> SessionContext {
        let mut id5 = Vec::new();
        let mut person: Vec<Option<String>> = Vec::new();
        let mut pref = Vec::new();
        let mut points = Vec::new();
        let mut inst = Vec::new();
        let mut push = |p: Option<String>, f: &str, pts: i64, i: &str| {
            id5.push(p.clone().map(|p| format!("pseud-{p}")));
            person.push(p);
            pref.push(f.to_owned());
            points.push(pts);
            inst.push(i.to_owned());
        };
        for p in 0..10 {
            for _ in 0..3 {
                push(Some(format!("a{p}")), "01", 100, &format!("H{}", p % 4));
            }
        }
        for p in 0..3 {
            for _ in 0..10 {
                push(Some(format!("b{p}")), "02", if p == 0 { 10_000 } else { 10 }, "H9");
            }
        }
        for i in 0..12 {
            push(None, "03", 50, &format!("H{}", 5 + i % 3));
        }
        // The hidden columns hold keyed 64-bit hashes: here a fixed stand-in for the key.
        let key = |s: &str| s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) as i64;
        let person: Vec<Option<i64>> = person.iter().map(|p| p.as_deref().map(key)).collect();
        let inst: Vec<i64> = inst.iter().map(|i| key(i)).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id5", DataType::Utf8, true),
            Field::new("prefecture", DataType::Utf8, false),
            Field::new("points", DataType::Int64, false),
            Field::new(PERSON, DataType::Int64, true),
            Field::new("__kura_institution", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(id5)),
                Arc::new(StringArray::from(pref)),
                Arc::new(Int64Array::from(points)),
                Arc::new(Int64Array::from(person)),
                Arc::new(Int64Array::from(inst)),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("re", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
        ctx
    }

    async fn verdict(sql: &str) -> (Evidenced, kura_disclosure::TableVerdict) {
        let ctx = context();
        let ev = evidence(&ctx, sql).await.unwrap();
        let v = check_table(&LoadedPolicy::default_ndb(), &ev.table).unwrap();
        (ev, v)
    }

    fn row(ev: &Evidenced, key: &str) -> usize {
        ev.table.rows.iter().position(|r| r.keys.first().cloned().flatten().as_deref() == Some(key)).unwrap()
    }

    /// Counts of receipts ≥ 10 whose persons are fewer than 10 fail; 30 receipts of 10
    /// persons pass (issue 17, "Lineage").
    #[tokio::test]
    async fn receipts_are_not_persons() {
        let (ev, v) = verdict("SELECT prefecture, count(*) AS receipts FROM re GROUP BY prefecture ORDER BY prefecture").await;
        assert!(ev.lineage);
        assert_eq!(ev.table.dims, vec!["prefecture"]);
        let a = row(&ev, "01");
        let b = row(&ev, "02");
        assert_eq!(ev.table.rows[a].cells[0].value, Some(30.0));
        assert_eq!(ev.table.rows[b].cells[0].value, Some(30.0));
        assert_eq!(ev.table.rows[a].cells[0].evidence.as_ref().unwrap().persons, Some(10));
        assert_eq!(v.cells[a][0].status, Status::Pass);
        assert_eq!(ev.table.rows[b].cells[0].evidence.as_ref().unwrap().persons, Some(3));
        assert_eq!(v.cells[b][0].status, Status::Fail);
        assert!(v.cells[b][0].findings.iter().any(|f| f.rule == rule::PERSONS));
        // Records without a person key never count as persons (issue 22 §6).
        let c = row(&ev, "03");
        let e = ev.table.rows[c].cells[0].evidence.as_ref().unwrap();
        assert_eq!((e.persons, e.unknown_person_records), (Some(0), 12));
        assert_eq!(v.cells[c][0].status, Status::Review);
        // The released batches hold only the query's columns.
        assert_eq!(ev.batches[0].num_columns(), 2);
    }

    /// The persons of a cell are those of the rows that contribute to it: a FILTER or a CASE
    /// that selects a few persons is judged on those few.
    #[tokio::test]
    async fn conditional_aggregates() {
        let (ev, v) = verdict(
            "SELECT prefecture, count(*) FILTER (WHERE points > 1000) AS big, sum(CASE WHEN points > 1000 THEN 1 ELSE 0 END) AS big2, count(*) AS all_rows FROM re GROUP BY prefecture",
        )
        .await;
        let b = row(&ev, "02");
        assert_eq!(ev.table.rows[b].cells[0].evidence.as_ref().unwrap().persons, Some(1));
        assert_eq!(ev.table.rows[b].cells[1].evidence.as_ref().unwrap().persons, Some(1));
        assert_eq!(v.cells[b][0].status, Status::Fail);
        assert_eq!(v.cells[b][1].status, Status::Fail);
        let a = row(&ev, "01");
        // No big receipts in 01: zero persons, shown as 0 (allowed).
        assert_eq!(ev.table.rows[a].cells[0].evidence.as_ref().unwrap().persons, Some(0));
        assert_eq!(v.cells[a][0].status, Status::Pass);
    }

    /// Sums get the largest contributions: one person dominating fails; institutions are
    /// counted (issue 22 §7).
    #[tokio::test]
    async fn sums_and_units() {
        let (ev, v) = verdict("SELECT prefecture, sum(points) AS pts, count(DISTINCT id5) AS persons FROM re GROUP BY prefecture").await;
        let a = row(&ev, "01");
        let e = ev.table.rows[a].cells[0].evidence.as_ref().unwrap();
        let c = e.contributions.unwrap();
        assert_eq!((c.total, c.largest, c.second), (3000.0, 300.0, 300.0));
        assert_eq!(e.units, vec![("institution".to_owned(), 4)]);
        assert_eq!(v.cells[a][0].status, Status::Pass);
        let b = row(&ev, "02");
        let e = ev.table.rows[b].cells[0].evidence.as_ref().unwrap();
        assert_eq!(e.units, vec![("institution".to_owned(), 1)]);
        let rules: Vec<&str> = v.cells[b][0].findings.iter().map(|f| f.rule.as_str()).collect();
        assert!(rules.contains(&rule::DOMINANCE) && rules.contains(&rule::UNITS) && rules.contains(&rule::PERSONS), "{rules:?}");
    }

    /// Per-person inner aggregates keep the lineage; a share's numerator is judged on its own
    /// persons (issue 22 §5); a query without an aggregate is individual records.
    #[tokio::test]
    async fn nested_shares_and_records() {
        let (ev, v) = verdict(
            "SELECT n_receipts, count(*) AS persons FROM (SELECT id5, count(*) AS n_receipts FROM re WHERE id5 IS NOT NULL GROUP BY id5) GROUP BY n_receipts",
        )
        .await;
        assert!(ev.lineage);
        let three = row(&ev, "3");
        assert_eq!(ev.table.rows[three].cells[0].evidence.as_ref().unwrap().persons, Some(10));
        let ten = row(&ev, "10");
        assert_eq!(v.cells[ten][0].status, Status::Fail);

        let (ev, v) =
            verdict("SELECT prefecture, count(*) FILTER (WHERE points > 1000) * 1.0 / count(*) AS share FROM re GROUP BY prefecture").await;
        let b = row(&ev, "02");
        assert!(matches!(ev.table.rows[b].cells[0].statistic, Statistic::Composite));
        assert_eq!(v.cells[b][0].status, Status::Fail);

        let (ev, v) = verdict("SELECT id5, points FROM re").await;
        assert!(!ev.lineage);
        assert_eq!(v.table_findings[0].rule, rule::RECORDS);
        assert_eq!(v.status, Status::Fail);

        let (ev, v) = verdict("SELECT count(*) AS n FROM (SELECT prefecture FROM re UNION ALL SELECT prefecture FROM re)").await;
        assert!(!ev.lineage);
        assert_eq!(v.status, Status::Review);

        let err = evidence(&context(), "SELECT count(DISTINCT __kura_person) FROM re").await.unwrap_err();
        assert!(err.to_string().contains("__kura_"), "{err}");
    }

    /// ROLLUP's total row is a total (from the grouping id), so secondary suppression protects
    /// the failing cell against it, and the LP audit confirms it.
    #[tokio::test]
    async fn rollup_totals_are_protected() {
        let sql = "SELECT prefecture, count(DISTINCT id5) AS persons FROM re WHERE id5 IS NOT NULL GROUP BY ROLLUP(prefecture)";
        let ctx = context();
        let ev = evidence(&ctx, sql).await.unwrap();
        assert!(ev.lineage);
        assert_eq!(ev.table.rows.len(), 3);
        let total = ev.table.rows.iter().position(|r| r.keys == vec![None]).expect("a total row");
        assert_eq!(ev.table.rows[total].cells[0].value, Some(13.0));
        let policy = LoadedPolicy::default_ndb();
        let v = check_table(&policy, &ev.table).unwrap();
        let b = row(&ev, "02");
        let a = row(&ev, "01");
        assert_eq!(v.cells[b][0].action, kura_disclosure::table::Action::Suppressed);
        assert!(v.cells[a][0].released.is_none() || v.cells[total][0].released.is_none(), "a partner is hidden");
        for (r, _, i) in kura_disclosure::table::audit_release(&policy, &ev.table, &v).unwrap() {
            if r == b {
                assert!(i.width() >= 10.0, "{i:?}");
            }
        }
    }

    /// The attacks of the review (helper findings on issue 17's first increment): each gets a
    /// fail or a review, never a pass.
    #[tokio::test]
    async fn attacks_are_not_passed() {
        let ctx = context();
        let policy = LoadedPolicy::default_ndb();
        let check = |ev: &Evidenced| check_table(&policy, &ev.table).unwrap();
        // A wildcard would show the hidden columns: refused.
        assert!(evidence(&ctx, "SELECT * FROM re").await.is_err());
        // GROUP BY without an aggregate, and DISTINCT: individual records.
        for sql in ["SELECT prefecture, points FROM re GROUP BY prefecture, points", "SELECT DISTINCT prefecture, points FROM re"] {
            let ev = evidence(&ctx, sql).await.unwrap();
            assert_eq!(check(&ev).table_findings[0].rule, rule::RECORDS, "{sql}");
            assert_eq!(check(&ev).status, Status::Fail, "{sql}");
        }
        // A scalar subquery beside the aggregates: lineage lost, review at best.
        let ev = evidence(
            &ctx,
            "SELECT prefecture, count(*) AS n, (SELECT max(points) FROM re WHERE id5 = 'pseud-b0') AS v FROM re GROUP BY prefecture",
        )
        .await
        .unwrap();
        assert!(!ev.lineage);
        assert_ne!(check(&ev).status, Status::Pass);
        // One person's flag through CASE inside max / sum: the branch of one person fails.
        for sql in [
            "SELECT max(CASE WHEN id5 = 'pseud-b0' AND points > 5000 THEN 1 ELSE 0 END) AS flag FROM re",
            "SELECT sum(CASE WHEN id5 = 'pseud-b0' AND points > 5000 THEN 2 ELSE 1 END) AS s, count(*) AS n FROM re",
        ] {
            let ev = evidence(&ctx, sql).await.unwrap();
            assert_eq!(check(&ev).status, Status::Fail, "{sql}");
        }
        // A join that copies one person's value onto everyone: the fewest persons count.
        let ev = evidence(
            &ctx,
            "SELECT b.prefecture, avg(s.points) AS v FROM re b CROSS JOIN (SELECT points FROM re WHERE id5 = 'pseud-b0') s GROUP BY b.prefecture",
        )
        .await
        .unwrap();
        let a = row(&ev, "01");
        assert_eq!(ev.table.rows[a].cells[0].evidence.as_ref().unwrap().persons, Some(1));
        assert_eq!(check(&ev).cells[a][0].status, Status::Fail);
        // A window function below the aggregate: lineage lost.
        let ev = evidence(
            &ctx,
            "SELECT prefecture, max(x) AS v FROM (SELECT prefecture, max(CASE WHEN id5 = 'pseud-b0' THEN points END) OVER () AS x FROM re) GROUP BY prefecture",
        )
        .await
        .unwrap();
        assert!(!ev.lineage);
        // Rows chosen by an aggregate that is not shown: review.
        let ev = evidence(
            &ctx,
            "SELECT prefecture, count(DISTINCT id5) AS n FROM re GROUP BY prefecture HAVING count(*) FILTER (WHERE id5 = 'pseud-a1') > 0",
        )
        .await
        .unwrap();
        assert!(check(&ev).table_findings.iter().any(|f| f.rule == rule::HIDDEN_AGGREGATE));
        // A labelled ROLLUP total is still a total.
        let ev = evidence(
            &ctx,
            "SELECT COALESCE(prefecture, '合計') AS p, count(DISTINCT id5) AS n FROM re WHERE id5 IS NOT NULL GROUP BY ROLLUP(prefecture)",
        )
        .await
        .unwrap();
        assert!(ev.table.rows.iter().any(|r| r.keys == vec![None]));
        // Arithmetic on a count is not a count (no rounding, no totals).
        let ev = evidence(&ctx, "SELECT prefecture, count(*) * 1000 AS n FROM re GROUP BY prefecture").await.unwrap();
        assert!(matches!(ev.table.rows[0].cells[0].statistic, Statistic::Composite));
        // Per-person values as keys: rows of too few persons hide their keys.
        let ev = evidence(&ctx, "SELECT tot AS x, count(*) AS n FROM (SELECT id5, sum(points) AS tot FROM re GROUP BY id5) GROUP BY tot")
            .await
            .unwrap();
        let v = check(&ev);
        assert!(!v.masked_rows.is_empty());
        for r in &v.masked_rows {
            assert!(ev.table.rows[*r].persons.unwrap() < 10);
        }
        // first_value is one record.
        let ev =
            evidence(&ctx, "SELECT prefecture, first_value(points ORDER BY points DESC) AS top FROM re GROUP BY prefecture").await.unwrap();
        assert_eq!(check(&ev).status, Status::Fail);
    }

    /// A subquery over a reference table (no persons) keeps the lineage; one over persons loses
    /// it.
    #[tokio::test]
    async fn subqueries_over_masters() {
        let ctx = context();
        let schema = Arc::new(Schema::new(vec![Field::new("prefecture", DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["01", "02"]))]).unwrap();
        ctx.register_table("m_pref", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
        let ev = evidence(
            &ctx,
            "SELECT prefecture, count(*) AS n FROM re WHERE prefecture IN (SELECT prefecture FROM m_pref) GROUP BY prefecture",
        )
        .await
        .unwrap();
        assert!(ev.lineage);
        assert_eq!(ev.table.rows.len(), 2);
        let ev = evidence(
            &ctx,
            "SELECT prefecture, count(*) AS n FROM re WHERE id5 IN (SELECT id5 FROM re WHERE points > 1000) GROUP BY prefecture",
        )
        .await
        .unwrap();
        assert!(!ev.lineage);
    }

    /// HAVING and LIMIT mark the table incomplete; window shares are composite.
    #[tokio::test]
    async fn having_windows() {
        let (ev, _) = verdict("SELECT prefecture, count(*) AS n FROM re GROUP BY prefecture HAVING count(*) > 20").await;
        assert!(!ev.table.complete);
        assert_eq!(ev.table.rows.len(), 2);
        let (ev, v) = verdict("SELECT prefecture, count(*) * 1.0 / sum(count(*)) OVER () AS share FROM re GROUP BY prefecture").await;
        assert!(ev.lineage, "{:?}", ev.table.findings);
        let b = row(&ev, "02");
        assert!(matches!(ev.table.rows[b].cells[0].statistic, Statistic::Composite));
        assert_eq!(v.cells[b][0].status, Status::Fail);
    }
}
