//! Logical rewrites Kura adds to DataFusion's optimizer, each exact (same answer) and each aimed
//! at a query shape that epidemiological SQL over claims data uses constantly.

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchemaRef, HashSet, JoinType, Result};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::logical_plan::builder::project;
use datafusion::logical_expr::{Aggregate, Expr, Join, LogicalPlan, col, lit};
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
            if args.len() != 1 {
                return false;
            }
            let arg = args[0].schema_name().to_string();
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
            if i >= groups && zero_if_null[i - groups] {
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
