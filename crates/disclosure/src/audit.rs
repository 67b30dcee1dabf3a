//! The suppression audit (秘匿監査): what an attacker can still learn about a suppressed cell.
//!
//! For every suppressed cell the audit solves two linear programs over everything the table
//! releases — the shown cells, the totals and margins that must add up, rounded values as the
//! ranges they stand for, and that counts and amounts are never negative — and reports the
//! interval the cell's value must lie in. A suppression protects only if that interval is at
//! least the policy's protection width (`../shared/domain/disclosure.md`: "Margins and totals that
//! reveal a suppressed cell", the weakness reported against ACRO).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use microlp::{ComparisonOp, OptimizationDirection, Problem};

use crate::Error;

/// One additivity relation: `total = Σ parts` (or `≥` where rows may be missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The index of the total cell.
    pub total: usize,
    /// The indices of the cells it adds up.
    pub parts: Vec<usize>,
    /// False where the parts may not be all the rows of the total (a HAVING or a LIMIT could
    /// have dropped some): then only `Σ parts ≤ total` is known.
    pub complete: bool,
}

/// What is released about one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Known {
    /// Shown exactly.
    Exact(f64),
    /// Shown rounded: the true value lies in `[lo, hi]`.
    Range(f64, f64),
    /// Suppressed: only that it is not negative.
    Hidden,
}

/// The feasible interval of a suppressed cell; `hi` is infinite where nothing bounds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The least value consistent with the release.
    pub lo: f64,
    /// The greatest value consistent with the release.
    pub hi: f64,
}

impl Interval {
    /// `hi - lo` (infinite when unbounded).
    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }
}

/// The feasible interval of every hidden cell, given what is known of every cell and the
/// relations between them. Cells take part only through the relations that reach them.
pub fn intervals(known: &[Known], relations: &[Relation]) -> Result<BTreeMap<usize, Interval>, Error> {
    // Relations by cell, to walk the connected part of the table around a hidden cell.
    let mut by_cell: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (r, rel) in relations.iter().enumerate() {
        for &c in rel.parts.iter().chain(std::iter::once(&rel.total)) {
            if c >= known.len() {
                return Err(Error::Table(format!("relation {r} names cell {c}, which does not exist")));
            }
            by_cell.entry(c).or_default().push(r);
        }
    }
    let mut out = BTreeMap::new();
    for (cell, k) in known.iter().enumerate() {
        if !matches!(k, Known::Hidden) {
            continue;
        }
        // The relations reachable from this cell through cells that are not shown exactly.
        let mut rels = BTreeSet::new();
        let mut seen = BTreeSet::from([cell]);
        let mut queue = VecDeque::from([cell]);
        while let Some(c) = queue.pop_front() {
            for &r in by_cell.get(&c).map(Vec::as_slice).unwrap_or(&[]) {
                if !rels.insert(r) {
                    continue;
                }
                let Some(rel) = relations.get(r) else { continue };
                for &other in rel.parts.iter().chain(std::iter::once(&rel.total)) {
                    let free = !matches!(known.get(other), Some(Known::Exact(_)));
                    if free && seen.insert(other) {
                        queue.push_back(other);
                    }
                }
            }
        }
        let lo = solve(known, relations, &rels, cell, OptimizationDirection::Minimize)?;
        let hi = solve(known, relations, &rels, cell, OptimizationDirection::Maximize)?;
        out.insert(cell, Interval { lo, hi });
    }
    Ok(out)
}

fn solve(
    known: &[Known],
    relations: &[Relation],
    rels: &BTreeSet<usize>,
    target: usize,
    direction: OptimizationDirection,
) -> Result<f64, Error> {
    let mut problem = Problem::new(direction);
    let mut vars = BTreeMap::new();
    let mut var = |problem: &mut Problem, c: usize| -> Option<microlp::Variable> {
        let bounds = match known.get(c)? {
            Known::Exact(_) => return None,
            Known::Range(lo, hi) => (lo.max(0.0), *hi),
            Known::Hidden => (0.0, f64::INFINITY),
        };
        Some(*vars.entry(c).or_insert_with(|| problem.add_var(if c == target { 1.0 } else { 0.0 }, bounds)))
    };
    var(&mut problem, target);
    for &r in rels {
        let Some(rel) = relations.get(r) else { continue };
        let mut terms = Vec::new();
        let mut rhs = 0.0;
        for (c, coeff) in rel.parts.iter().map(|&c| (c, 1.0)).chain(std::iter::once((rel.total, -1.0))) {
            match known.get(c) {
                Some(Known::Exact(v)) => rhs -= coeff * v,
                Some(_) => {
                    if let Some(v) = var(&mut problem, c) {
                        terms.push((v, coeff));
                    }
                }
                None => {}
            }
        }
        if terms.is_empty() {
            continue;
        }
        let op = if rel.complete { ComparisonOp::Eq } else { ComparisonOp::Le };
        problem.add_constraint(terms.as_slice(), op, rhs);
    }
    match problem.solve() {
        Ok(outcome) => match outcome.into_solution() {
            Ok(solution) => Ok(solution.objective()),
            Err(_) => Err(Error::Audit(format!("the audit of cell {target} did not finish"))),
        },
        Err(microlp::Error::Unbounded) => Ok(match direction {
            OptimizationDirection::Maximize => f64::INFINITY,
            OptimizationDirection::Minimize => 0.0,
        }),
        Err(microlp::Error::Infeasible) => Err(Error::Audit(format!("the released values around cell {target} do not add up"))),
        Err(e) => Err(Error::Audit(format!("cell {target}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    /// `a b c | total`: hiding one cell alone reveals it; hiding two gives a range.
    #[test]
    fn one_dimension() {
        let rel = vec![Relation { total: 3, parts: vec![0, 1, 2], complete: true }];
        let known = [Known::Hidden, Known::Exact(50.0), Known::Exact(60.0), Known::Exact(113.0)];
        let i = intervals(&known, &rel).unwrap();
        assert!((i[&0].lo - 3.0).abs() < 1e-6 && (i[&0].hi - 3.0).abs() < 1e-6);
        let known = [Known::Hidden, Known::Hidden, Known::Exact(60.0), Known::Exact(113.0)];
        let i = intervals(&known, &rel).unwrap();
        assert!((i[&0].lo).abs() < 1e-6 && (i[&0].hi - 53.0).abs() < 1e-6, "{i:?}");
        // Rounded neighbours widen the range; an incomplete relation bounds from above only.
        let known = [Known::Hidden, Known::Range(48.0, 52.0), Known::Exact(60.0), Known::Exact(113.0)];
        let i = intervals(&known, &rel).unwrap();
        assert!((i[&0].lo - 1.0).abs() < 1e-6 && (i[&0].hi - 5.0).abs() < 1e-6, "{i:?}");
        let mut open = rel.clone();
        open[0].complete = false;
        let known = [Known::Hidden, Known::Exact(50.0), Known::Exact(60.0), Known::Exact(113.0)];
        let i = intervals(&known, &open).unwrap();
        assert!(i[&0].lo.abs() < 1e-6 && (i[&0].hi - 3.0).abs() < 1e-6, "{i:?}");
        // Nothing bounds a hidden total.
        let known = [Known::Hidden, Known::Hidden, Known::Exact(60.0), Known::Hidden];
        assert!(intervals(&known, &rel).unwrap()[&3].hi.is_infinite());
    }

    /// Released values that cannot add up are an error, not an answer.
    #[test]
    fn inconsistent() {
        let rel = vec![Relation { total: 2, parts: vec![0, 1], complete: true }];
        let known = [Known::Hidden, Known::Exact(50.0), Known::Exact(10.0)];
        assert!(intervals(&known, &rel).is_err());
    }
}
