//! Logical rewrites Kura adds to DataFusion's optimizer, each exact (same answer) and each aimed
//! at a query shape that epidemiological SQL over claims data uses constantly.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchemaRef, HashMap, HashSet, JoinType, Result};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::logical_plan::builder::project;
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, Join, LogicalPlan, col, lit};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use std::sync::Arc;

/// `SELECT k, count(*), sum(v), count(DISTINCT x) … GROUP BY k` as two aggregations:
/// first `GROUP BY k, x` computing `count(*)` and `sum(v)` per (k, x), then `GROUP BY k`
/// computing `sum` of the counts, `sum` of the sums and `count(x)`.
///
/// DataFusion rewrites a single DISTINCT this way only when the other aggregates are sum, min
/// or max; with a `count` beside it (the commonest epidemiological query: receipts and distinct
/// patients per month) it falls back to one hash set per group, which is several times slower
/// and memory-hungry. A count is re-aggregated with `sum` (and `coalesce(…, 0)`), which is exact.
#[derive(Debug, Default)]
pub struct DistinctWithCountToGroupBy;

const GROUP_ALIAS: &str = "__kura_group";
const DISTINCT_ALIAS: &str = "__kura_distinct";
const PARTIAL_ALIAS: &str = "__kura_partial";

fn function(e: &Expr) -> Option<(&AggregateFunction, String)> {
    match e {
        Expr::AggregateFunction(af) if af.params.filter.is_none() && af.params.order_by.is_empty() => {
            Some((af, af.func.name().to_lowercase()))
        }
        _ => None,
    }
}

/// Whether the aggregate has exactly one distinct argument, at least one plain `count`, and
/// only re-aggregatable plain functions (count, sum, min, max).
fn eligible(agg: &Aggregate) -> bool {
    if matches!(agg.group_expr.first(), Some(Expr::GroupingSet(_))) {
        return false;
    }
    let mut distinct_arg: Option<String> = None;
    let mut plain_count = false;
    for e in &agg.aggr_expr {
        let Some((af, name)) = function(e) else { return false };
        let AggregateFunctionParams { distinct, args, .. } = &af.params;
        if *distinct {
            let [only] = args.as_slice() else { return false };
            let arg = only.schema_name().to_string();
            match &distinct_arg {
                Some(a) if *a != arg => return false,
                _ => distinct_arg = Some(arg),
            }
        } else {
            match name.as_str() {
                "count" => plain_count = true,
                "sum" | "min" | "max" => {}
                _ => return false,
            }
        }
    }
    distinct_arg.is_some() && plain_count
}

impl OptimizerRule for DistinctWithCountToGroupBy {
    fn name(&self) -> &str {
        "kura_distinct_with_count_to_group_by"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = plan else { return Ok(Transformed::no(plan)) };
        if !eligible(&agg) {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        let Aggregate { input, group_expr, aggr_expr, schema, .. } = agg;
        let groups = group_expr.len();
        let mut inner_groups: Vec<Expr> = Vec::new();
        let mut outer_groups: Vec<Expr> = Vec::new();
        for (i, g) in group_expr.into_iter().enumerate() {
            let name = format!("{GROUP_ALIAS}{i}");
            inner_groups.push(g.alias(&name));
            outer_groups.push(col(name));
        }
        let mut inner_aggs = Vec::new();
        let mut outer_aggs = Vec::new();
        let mut zero_if_null = Vec::new();
        let mut distinct_added = false;
        for (i, e) in aggr_expr.into_iter().enumerate() {
            let Expr::AggregateFunction(af) = e else { return Err(lost_function()) };
            let AggregateFunction { func, params } = af;
            if params.distinct {
                if !distinct_added {
                    let arg = params
                        .args
                        .into_iter()
                        .next()
                        .ok_or_else(|| datafusion::error::DataFusionError::Internal("DISTINCT without argument".into()))?;
                    inner_groups.push(arg.alias(DISTINCT_ALIAS));
                    distinct_added = true;
                }
                outer_aggs.push(Expr::AggregateFunction(AggregateFunction::new_udf(
                    func,
                    vec![col(DISTINCT_ALIAS)],
                    false,
                    None,
                    vec![],
                    None,
                )));
                zero_if_null.push(false);
            } else {
                let name = format!("{PARTIAL_ALIAS}{i}");
                let is_count = func.name().eq_ignore_ascii_case("count");
                inner_aggs.push(
                    Expr::AggregateFunction(AggregateFunction::new_udf(
                        Arc::clone(&func),
                        params.args,
                        false,
                        None,
                        vec![],
                        params.null_treatment,
                    ))
                    .alias(&name),
                );
                let outer_func = if is_count { sum_udaf() } else { func };
                outer_aggs.push(Expr::AggregateFunction(AggregateFunction::new_udf(
                    outer_func,
                    vec![col(&name)],
                    false,
                    None,
                    vec![],
                    None,
                )));
                zero_if_null.push(is_count);
            }
        }
        let inner = LogicalPlan::Aggregate(Aggregate::try_new(input, inner_groups, inner_aggs)?);
        let outer = LogicalPlan::Aggregate(Aggregate::try_new(Arc::new(inner), outer_groups, outer_aggs)?);
        // Restore the original output names (and a count's zero for empty input).
        let mut exprs = Vec::new();
        for i in 0..schema.fields().len() {
            let (q, f) = outer.schema().qualified_field(i);
            let mut e = Expr::Column(Column::from((q, f)));
            if i.checked_sub(groups).and_then(|k| zero_if_null.get(k)).is_some_and(|z| *z) {
                e = datafusion::functions::expr_fn::coalesce(vec![e, lit(0i64)]);
            }
            let (oq, of) = schema.qualified_field(i);
            exprs.push(e.alias_qualified(oq.cloned(), of.name()));
        }
        Ok(Transformed::yes(project(outer, exprs)?))
    }
}

fn lost_function() -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Internal("eligible aggregate lost a function".into())
}

/// The inner join below `plan`, looking through a projection that only selects columns.
fn peel_inner_join(plan: &LogicalPlan) -> Option<&Join> {
    match plan {
        LogicalPlan::Join(j) if j.join_type == JoinType::Inner => Some(j),
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => match p.input.as_ref() {
            LogicalPlan::Join(j) if j.join_type == JoinType::Inner => Some(j),
            _ => None,
        },
        _ => None,
    }
}

/// Whether every column the expressions use is in `plan`'s output.
fn refers_only_to<'a>(exprs: impl IntoIterator<Item = &'a Expr>, plan: &LogicalPlan) -> bool {
    exprs.into_iter().all(|e| e.column_refs().iter().all(|c| plan.schema().has_column(c)))
}

/// A projection that restores `schema`'s columns (order and qualifiers) over `plan`.
fn restore(schema: &DFSchemaRef, plan: LogicalPlan) -> Result<LogicalPlan> {
    let exprs: Vec<Expr> = schema.iter().map(|(q, f)| Expr::Column(Column::from((q, f)))).collect();
    project(plan, exprs)
}

fn join(left: LogicalPlan, right: LogicalPlan, like: &Join, on: Vec<(Expr, Expr)>, filter: Option<Expr>) -> Result<LogicalPlan> {
    Ok(LogicalPlan::Join(Join::try_new(
        Arc::new(left),
        Arc::new(right),
        on,
        filter,
        like.join_type,
        like.join_constraint,
        like.null_equality,
        like.null_aware,
    )?))
}

/// Moves a semi or anti join (from `IN (subquery)` / `EXISTS`) below an inner join when its keys
/// belong to one side of it: `(A ⋈ B) ⋉ C` becomes `(A ⋉ C) ⋈ B`. The filter then runs before
/// the join instead of after it — e.g. drug lines are restricted to metformin before they are
/// joined to 15 million receipts, not after. Always valid for inner joins; never more work.
#[derive(Debug, Default)]
pub struct PushSemiJoinBelowInnerJoin;

impl OptimizerRule for PushSemiJoinBelowInnerJoin {
    fn name(&self) -> &str {
        "kura_push_semi_join_below_inner_join"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(semi) = &plan else { return Ok(Transformed::no(plan)) };
        if !matches!(semi.join_type, JoinType::LeftSemi | JoinType::LeftAnti) || semi.null_aware || semi.filter.is_some() {
            return Ok(Transformed::no(plan));
        }
        let Some(inner) = peel_inner_join(&semi.left) else { return Ok(Transformed::no(plan)) };
        let keys: Vec<&Expr> = semi.on.iter().map(|(l, _)| l).collect();
        let (a, b) = (inner.left.as_ref().clone(), inner.right.as_ref().clone());
        let new_inner = if refers_only_to(keys.iter().copied(), &a) {
            let filtered = join(a, semi.right.as_ref().clone(), semi, semi.on.clone(), None)?;
            join(filtered, b, inner, inner.on.clone(), inner.filter.clone())?
        } else if refers_only_to(keys.iter().copied(), &b) {
            let filtered = join(b, semi.right.as_ref().clone(), semi, semi.on.clone(), None)?;
            join(a, filtered, inner, inner.on.clone(), inner.filter.clone())?
        } else {
            return Ok(Transformed::no(plan));
        };
        Ok(Transformed::yes(restore(semi.left.schema(), new_inner)?))
    }
}

/// Joins a small, filtered table (a code master restricted by a WHERE clause, e.g. the drugs
/// of one therapeutic class) before a large one: `(A ⋈ B) ⋈ σ(C)` becomes `(A ⋈ σ(C)) ⋈ B` when
/// the join with C only needs A's columns. DataFusion keeps the written join order; this is the
/// one reordering that is nearly always a win, decided from the catalogue's row counts.
#[derive(Debug, Default)]
pub struct JoinFilteredSmallTableFirst {
    /// Tables small enough to count as code masters (from the catalogue).
    pub small_tables: HashSet<String>,
}

impl JoinFilteredSmallTableFirst {
    fn small_and_filtered(&self, plan: &LogicalPlan) -> bool {
        let mut filtered = false;
        let mut p = plan;
        loop {
            match p {
                LogicalPlan::Projection(x) => p = &x.input,
                LogicalPlan::SubqueryAlias(x) => p = &x.input,
                LogicalPlan::Filter(x) => {
                    filtered = true;
                    p = &x.input;
                }
                LogicalPlan::TableScan(t) => {
                    return (filtered || !t.filters.is_empty()) && self.small_tables.contains(t.table_name.table());
                }
                _ => return false,
            }
        }
    }
}

impl OptimizerRule for JoinFilteredSmallTableFirst {
    fn name(&self) -> &str {
        "kura_join_filtered_small_table_first"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(top) = &plan else { return Ok(Transformed::no(plan)) };
        if top.join_type != JoinType::Inner || !self.small_and_filtered(&top.right) {
            return Ok(Transformed::no(plan));
        }
        let Some(inner) = peel_inner_join(&top.left) else { return Ok(Transformed::no(plan)) };
        // The lower join must not already involve a small filtered table on its own (avoid
        // swapping two dimensions back and forth).
        if self.small_and_filtered(&inner.left) || self.small_and_filtered(&inner.right) {
            return Ok(Transformed::no(plan));
        }
        let keys: Vec<&Expr> = top.on.iter().map(|(l, _)| l).collect();
        let c = top.right.as_ref().clone();
        let (a, b) = (inner.left.as_ref().clone(), inner.right.as_ref().clone());
        let filter_ok = |side: &LogicalPlan| {
            top.filter
                .as_ref()
                .is_none_or(|f| f.column_refs().iter().all(|col| side.schema().has_column(col) || c.schema().has_column(col)))
        };
        let new = if refers_only_to(keys.iter().copied(), &a) && filter_ok(&a) {
            let ac = join(a, c, top, top.on.clone(), top.filter.clone())?;
            join(ac, b, inner, inner.on.clone(), inner.filter.clone())?
        } else if refers_only_to(keys.iter().copied(), &b) && filter_ok(&b) {
            let bc = join(b, c, top, top.on.clone(), top.filter.clone())?;
            join(a, bc, inner, inner.on.clone(), inner.filter.clone())?
        } else {
            return Ok(Transformed::no(plan));
        };
        Ok(Transformed::yes(restore(&top.schema, new)?))
    }
}

/// Aggregates a large table by its join key before joining a small one:
/// `SELECT d.name, sum(f.x), count(*) FROM f JOIN d ON f.k = d.k GROUP BY d.name` becomes
/// `… FROM (SELECT k, sum(x) AS p0, count(*) AS p1 FROM f GROUP BY k) f JOIN d … GROUP BY d.name`
/// with the outer aggregate summing the partial results. Twelve million drug lines then meet the
/// drug master as a few dozen partial sums (eager aggregation). Applied only when the grouping
/// uses the small table's columns, every aggregate reads only the large table, and each is
/// count, sum, min or max, and when the catalogue says the large table has at least
/// [`FACT_TO_MASTER_RATIO`] times the small one's rows.
#[derive(Debug, Default)]
pub struct AggregateBeforeJoiningSmallTable {
    /// Tables small enough to count as code masters (from the catalogue).
    pub small_tables: HashSet<String>,
    /// Row counts of every table (from the catalogue).
    pub table_rows: HashMap<String, u64>,
}

/// How many times larger than a master a table must be for eager aggregation to pay.
pub const FACT_TO_MASTER_RATIO: u64 = 16;

fn base_table(plan: &LogicalPlan) -> Option<&str> {
    match plan {
        LogicalPlan::Projection(x) => base_table(&x.input),
        LogicalPlan::SubqueryAlias(x) => base_table(&x.input),
        LogicalPlan::Filter(x) => base_table(&x.input),
        LogicalPlan::TableScan(t) => Some(t.table_name.table()),
        _ => None,
    }
}

impl OptimizerRule for AggregateBeforeJoiningSmallTable {
    fn name(&self) -> &str {
        "kura_aggregate_before_joining_small_table"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else { return Ok(Transformed::no(plan)) };
        if matches!(agg.group_expr.first(), Some(Expr::GroupingSet(_))) || agg.aggr_expr.is_empty() {
            return Ok(Transformed::no(plan));
        }
        let Some(j) = peel_inner_join(&agg.input) else { return Ok(Transformed::no(plan)) };
        if j.filter.is_some() {
            return Ok(Transformed::no(plan));
        }
        // Only scans of catalogued tables qualify, so an aggregate this rule already built (or a
        // join, …) is left alone. The dimension D must be a master; the fact F much larger.
        let fact_over = |fact: &LogicalPlan, dim: &LogicalPlan| {
            let (Some(ft), Some(dt)) = (base_table(fact), base_table(dim)) else { return false };
            match (self.table_rows.get(ft), self.table_rows.get(dt)) {
                (Some(&f), Some(&d)) => self.small_tables.contains(dt) && f >= d.max(1).saturating_mul(FACT_TO_MASTER_RATIO),
                _ => false,
            }
        };
        // Which side is the large fact table (F) and which the small dimension (D)?
        let (f, d, f_keys, d_keys, fact_left) = match (fact_over(&j.left, &j.right), fact_over(&j.right, &j.left)) {
            (true, false) => (
                &j.left,
                &j.right,
                j.on.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
                j.on.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
                true,
            ),
            (false, true) => {
                (&j.right, &j.left, j.on.iter().map(|(_, r)| r.clone()).collect(), j.on.iter().map(|(l, _)| l.clone()).collect(), false)
            }
            _ => return Ok(Transformed::no(plan)),
        };
        if !f_keys.iter().all(|k| matches!(k, Expr::Column(_))) || !refers_only_to(agg.group_expr.iter(), d) {
            return Ok(Transformed::no(plan));
        }
        for e in &agg.aggr_expr {
            let Some((af, name)) = function(e) else { return Ok(Transformed::no(plan)) };
            if af.params.distinct || !matches!(name.as_str(), "count" | "sum" | "min" | "max") || !refers_only_to(af.params.args.iter(), f)
            {
                return Ok(Transformed::no(plan));
            }
            // A sum of sums keeps its type only for integers and Float64 (decimals widen).
            if name == "sum" {
                let arg_type = af.params.args.first().and_then(|a| a.get_type(f.schema()).ok());
                if !arg_type.is_some_and(|t| t.is_integer() || t == DataType::Float64) {
                    return Ok(Transformed::no(plan));
                }
            }
        }
        let (f, d, j) = (Arc::clone(f), Arc::clone(d), j.clone());
        let LogicalPlan::Aggregate(Aggregate { group_expr, aggr_expr, schema, .. }) = plan else { return Err(lost_function()) };
        let mut partial = Vec::new();
        let mut outer = Vec::new();
        let mut zero_if_null = Vec::new();
        for (i, e) in aggr_expr.into_iter().enumerate() {
            let Expr::AggregateFunction(AggregateFunction { func, params }) = e else { return Err(lost_function()) };
            let name = format!("{PARTIAL_ALIAS}{i}");
            let is_count = func.name().eq_ignore_ascii_case("count");
            partial.push(
                Expr::AggregateFunction(AggregateFunction::new_udf(
                    Arc::clone(&func),
                    params.args,
                    false,
                    None,
                    vec![],
                    params.null_treatment,
                ))
                .alias(&name),
            );
            let outer_func = if is_count { sum_udaf() } else { func };
            outer.push(Expr::AggregateFunction(AggregateFunction::new_udf(outer_func, vec![col(&name)], false, None, vec![], None)));
            zero_if_null.push(is_count);
        }
        let pre = LogicalPlan::Aggregate(Aggregate::try_new(f, f_keys.clone(), partial)?);
        let on: Vec<(Expr, Expr)> =
            if fact_left { f_keys.into_iter().zip(d_keys).collect() } else { d_keys.into_iter().zip(f_keys).collect() };
        let joined = if fact_left { join(pre, d.as_ref().clone(), &j, on, None)? } else { join(d.as_ref().clone(), pre, &j, on, None)? };
        let groups = group_expr.len();
        let outer_plan = LogicalPlan::Aggregate(Aggregate::try_new(Arc::new(joined), group_expr, outer)?);
        let mut exprs = Vec::new();
        for i in 0..schema.fields().len() {
            let (q, fld) = outer_plan.schema().qualified_field(i);
            let mut e = Expr::Column(Column::from((q, fld)));
            if i.checked_sub(groups).and_then(|k| zero_if_null.get(k)).is_some_and(|z| *z) {
                e = datafusion::functions::expr_fn::coalesce(vec![e, lit(0i64)]);
            }
            let (oq, of) = schema.qualified_field(i);
            exprs.push(e.alias_qualified(oq.cloned(), of.name()));
        }
        Ok(Transformed::yes(project(outer_plan, exprs)?))
    }
}
