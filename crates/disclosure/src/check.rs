//! Per-cell verdicts (セル判定) from evidence.
//!
//! A cell is a value of an output with the evidence behind it. For a table a Kura query
//! produced, the evidence is computed **from the data** (distinct persons, institutions,
//! largest contributions); for anything else only the printed value is known, and the check is
//! value-based and says so. Each rule that fires becomes a [`Finding`]; the cell's [`Status`]
//! is the worst of them.

use serde::{Deserialize, Serialize};

use crate::policy::{Policy, Zeros};

/// A verdict, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// May be released.
    Pass,
    /// A reviewer must look (and approve an exception where the rule asks for one).
    Review,
    /// May not be released as it is.
    Fail,
}

impl Status {
    /// `pass`, `review`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Review => "review",
            Self::Fail => "fail",
        }
    }
}

/// The rules a finding can name (stable identifiers: manifests and tests use them).
pub mod rule {
    /// 1 to threshold−1 distinct persons.
    pub const PERSONS: &str = "persons.threshold";
    /// A cell of zero persons where zeros are not allowed.
    pub const ZEROS: &str = "persons.zeros";
    /// Records without a person key behind a cell below the threshold in known persons.
    pub const UNKNOWN_PERSONS: &str = "persons.unknown";
    /// 1 to threshold−1 institutions, pharmacies or insurers.
    pub const UNITS: &str = "units.threshold";
    /// Prescription counts (oral/topical) without a patient count.
    pub const PRESCRIPTIONS_ORAL: &str = "prescriptions.oral_topical";
    /// Prescription counts (injection) without a patient count.
    pub const PRESCRIPTIONS_INJECTION: &str = "prescriptions.injection";
    /// A maximum or minimum (one person's value).
    pub const EXTREME: &str = "statistics.extreme";
    /// A count of distinct values other than persons.
    pub const DISTINCT_VALUES: &str = "statistics.distinct_values";
    /// An aggregate that selects or orders rows without being shown (HAVING, ORDER BY).
    pub const HIDDEN_AGGREGATE: &str = "lineage.hidden_aggregate";
    /// A row whose group holds 1 to threshold−1 persons: its keys are not shown either.
    pub const SMALL_ROW: &str = "rows.small";
    /// (n, k) dominance.
    pub const DOMINANCE: &str = "dominance.nk";
    /// The p% rule.
    pub const P_PERCENT: &str = "dominance.p_percent";
    /// A sum or mean whose contributions are not known.
    pub const CONTRIBUTIONS_UNKNOWN: &str = "dominance.unknown";
    /// Residual degrees of freedom.
    pub const DOF: &str = "regression.dof";
    /// The lineage could not be established: only the printed value was checked.
    pub const LINEAGE: &str = "lineage.unknown";
    /// An identifier column.
    pub const IDENTIFIER: &str = "columns.identifier";
    /// A geography column finer than permitted.
    pub const GEOGRAPHY: &str = "columns.geography";
    /// Individual records (one row per person, receipt or event).
    pub const RECORDS: &str = "records.individual";
    /// Suppressed so that a primary suppression cannot be recovered from totals.
    pub const SECONDARY: &str = "suppression.secondary";
    /// A file that no Kura query produced: a reviewer must confirm it.
    pub const UNCHECKED_FILE: &str = "file.unchecked";
    /// A file over the size or row limit.
    pub const LIMITS: &str = "file.limits";
    /// Together with what is already released (by the project, or by any of its members in
    /// any project), the cell isolates 1 to threshold−1 persons.
    pub const DIFFERENCING: &str = "differencing.released";
    /// An earlier release of the project or of one of its members holds a file whose persons
    /// are not known (a table whose lineage was lost, a file no Kura query made): the memory
    /// cannot compare with it, so the cell is at best review (issue 22 §3).
    pub const DIFFERENCING_UNKNOWN: &str = "differencing.unknown";
}

/// One rule that fired on a cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's identifier (see [`rule`]).
    pub rule: String,
    /// What the rule decided.
    pub status: Status,
    /// Why, in Japanese then English. Inside the platform only: it may name evidence.
    pub message: String,
}

/// The kind of drug a prescription count is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// 内服・外用.
    OralTopical,
    /// 注射.
    Injection,
}

/// What statistic a cell holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Statistic {
    /// A count of persons, records or events.
    Count,
    /// A sum of amounts.
    Sum,
    /// A mean of amounts.
    Mean,
    /// A minimum or maximum: one person's value.
    Extreme,
    /// A percentile or median.
    Percentile,
    /// A share, rate, ratio or difference: built from several person sets (each in
    /// [`Evidence::parts`]).
    Composite,
    /// A prescription count in a drug table, where the patient count may be unknown.
    Prescriptions {
        /// The drug's route.
        route: Route,
    },
    /// Residual degrees of freedom of a model.
    ResidualDof,
    /// One record's value (`first_value`, `last_value`, `nth_value`): never released.
    Record,
    /// A label or anything else that is not a number about persons.
    Label,
}

/// Per-person contributions to a sum or mean (for dominance and p%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Contributions {
    /// The cell's total of absolute contributions.
    pub total: f64,
    /// The largest person's contribution (absolute).
    pub largest: f64,
    /// The second largest person's contribution (absolute).
    pub second: f64,
}

/// What is known about the data behind a cell — never released (issue 22 §8).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Distinct persons with a valid person key; `None` where the lineage is unknown.
    pub persons: Option<u64>,
    /// Records behind the cell without a valid person key (never counted as persons).
    #[serde(default)]
    pub unknown_person_records: u64,
    /// Distinct medical institutions, pharmacies and insurers behind the cell (each kind
    /// separately), where known.
    #[serde(default)]
    pub units: Vec<(String, u64)>,
    /// Per-person contributions, for sums and means.
    #[serde(default)]
    pub contributions: Option<Contributions>,
    /// The evidence of every person set the value is built from: the numerator and denominator
    /// of a share, the branches of a CASE inside an aggregate.
    #[serde(default)]
    pub parts: Vec<Evidence>,
    /// A count of distinct values other than persons.
    #[serde(default)]
    pub distinct_values: bool,
}

/// A cell to check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The printed value (`None` for an empty or non-numeric cell).
    pub value: Option<f64>,
    /// What it is.
    pub statistic: Statistic,
    /// What is known from the data (`None`: only the value is known).
    pub evidence: Option<Evidence>,
}

/// The worst status of a list of findings (`Pass` for none).
pub fn worst(findings: &[Finding]) -> Status {
    findings.iter().map(|f| f.status).max().unwrap_or(Status::Pass)
}

/// Checks one cell against the policy.
pub fn check_cell(policy: &Policy, cell: &Cell) -> Vec<Finding> {
    let mut out = Vec::new();
    match &cell.statistic {
        Statistic::Label => {}
        Statistic::ResidualDof => {
            if let (Some(rule), Some(v)) = (&policy.regression, cell.value)
                && v < rule.min_residual_dof as f64
            {
                out.push(finding(
                    rule::DOF,
                    Status::Fail,
                    format!(
                        "残差自由度 {v} は {} 未満 / residual degrees of freedom {v} below {}",
                        rule.min_residual_dof, rule.min_residual_dof
                    ),
                ));
            }
        }
        Statistic::Prescriptions { route } => match &cell.evidence {
            Some(e) if e.persons.is_some() => persons_rules(policy, e, &mut out),
            _ => prescription_rule(policy, *route, cell.value, &mut out),
        },
        Statistic::Record => out.push(finding(
            rule::RECORDS,
            Status::Fail,
            "一人の記録の値（first_value など）/ one record's value (first_value, last_value, nth_value)".to_owned(),
        )),
        statistic => match &cell.evidence {
            Some(e) => {
                persons_rules(policy, e, &mut out);
                units_rule(policy, e, &mut out);
                if matches!(statistic, Statistic::Sum | Statistic::Mean) {
                    dominance_rules(policy, e, &mut out);
                }
                // Every person set the value is built from: the parts of a share, the branches
                // of a CASE inside an aggregate (issue 22 §5).
                for part in &e.parts {
                    if part.persons.is_some() || matches!(statistic, Statistic::Composite) {
                        persons_rules(policy, part, &mut out);
                    }
                    units_rule(policy, part, &mut out);
                    if part.contributions.is_some() {
                        dominance_rules(policy, part, &mut out);
                    }
                }
                if matches!(statistic, Statistic::Composite) && e.parts.is_empty() {
                    out.push(finding(
                        rule::LINEAGE,
                        Status::Review,
                        "比・率の分子と分母が特定できない / the person sets of this share or rate are unknown".to_owned(),
                    ));
                }
                if matches!(statistic, Statistic::Extreme) {
                    // A maximum or minimum is one person's value, whoever else is in the cell.
                    out.push(finding(
                        rule::EXTREME,
                        Status::Review,
                        "最大・最小は一人の値 / a maximum or minimum is one person's value: a reviewer confirms it".to_owned(),
                    ));
                }
                if e.distinct_values {
                    out.push(finding(
                        rule::DISTINCT_VALUES,
                        Status::Review,
                        "異なる値の数は値ごとの人数を示さない / a count of distinct values says nothing of each value's persons".to_owned(),
                    ));
                }
            }
            None => value_rules(policy, statistic, cell.value, &mut out),
        },
    }
    dedup(out)
}

fn finding(rule: &str, status: Status, message: String) -> Finding {
    Finding { rule: rule.to_owned(), status, message }
}

fn dedup(mut findings: Vec<Finding>) -> Vec<Finding> {
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.rule.clone(), f.status)));
    findings
}

/// Persons: 1..t−1 fails; 0 by the zeros rule; unknown persons never count (issue 22 §6).
fn persons_rules(policy: &Policy, e: &Evidence, out: &mut Vec<Finding>) {
    let t = policy.persons.threshold;
    let Some(persons) = e.persons else {
        out.push(finding(rule::LINEAGE, Status::Review, "人数を特定できない / the persons behind this cell are unknown".to_owned()));
        return;
    };
    if (1..t).contains(&persons) {
        out.push(finding(rule::PERSONS, Status::Fail, format!("{t} 人未満 / fewer than {t} persons")));
    } else if persons == 0 && e.unknown_person_records > 0 {
        out.push(finding(
            rule::UNKNOWN_PERSONS,
            Status::Review,
            "個人キーのない記録だけのセル / only records without a person key".to_owned(),
        ));
    } else if persons == 0 {
        match policy.persons.zeros {
            Zeros::Allow => {}
            Zeros::Review => out.push(finding(rule::ZEROS, Status::Review, "0 のセル / a zero cell".to_owned())),
            Zeros::Fail => out.push(finding(rule::ZEROS, Status::Fail, "0 のセル / a zero cell".to_owned())),
        }
    }
}

fn units_rule(policy: &Policy, e: &Evidence, out: &mut Vec<Finding>) {
    if !policy.units.enabled {
        return;
    }
    let u = policy.units.threshold;
    for (kind, n) in &e.units {
        if (1..u).contains(n) {
            out.push(finding(rule::UNITS, Status::Fail, format!("{kind} が {u} 未満 / fewer than {u} of {kind}")));
        }
    }
}

fn dominance_rules(policy: &Policy, e: &Evidence, out: &mut Vec<Finding>) {
    if policy.dominance.is_none() && policy.p_percent.is_none() {
        return;
    }
    let Some(c) = e.contributions else {
        out.push(finding(
            rule::CONTRIBUTIONS_UNKNOWN,
            Status::Review,
            "寄与の内訳が不明 / the contributions behind this sum are unknown".to_owned(),
        ));
        return;
    };
    if c.total <= 0.0 {
        return;
    }
    if let Some(d) = &policy.dominance {
        let top = if d.n >= 2 { c.largest + c.second } else { c.largest };
        if top > d.k * c.total {
            out.push(finding(
                rule::DOMINANCE,
                Status::Fail,
                format!("上位 {} 人が合計の {:.0}% 超 / the {} largest exceed {:.0}% of the total", d.n, d.k * 100.0, d.n, d.k * 100.0),
            ));
        }
    }
    if let Some(p) = &policy.p_percent
        && c.total - c.largest - c.second < p.p * c.largest
    {
        out.push(finding(
            rule::P_PERCENT,
            Status::Fail,
            format!(
                "2 位が 1 位を {:.0}% 以内で推定できる / the second largest can estimate the largest within {:.0}%",
                p.p * 100.0,
                p.p * 100.0
            ),
        ));
    }
}

fn prescription_rule(policy: &Policy, route: Route, value: Option<f64>, out: &mut Vec<Finding>) {
    let (Some(rule), Some(v)) = (&policy.prescriptions, value) else {
        // No prescription rule: fall back on the persons threshold applied to the value.
        value_rules(policy, &Statistic::Count, value, out);
        return;
    };
    let (min, id) = match route {
        Route::OralTopical => (rule.oral_topical_min, rule::PRESCRIPTIONS_ORAL),
        Route::Injection => (rule.injection_min, rule::PRESCRIPTIONS_INJECTION),
    };
    if v > 0.0 && v < min as f64 {
        out.push(finding(id, Status::Fail, format!("処方数 {min} 未満（患者数不明）/ fewer than {min} prescriptions, patients unknown")));
    }
}

/// Value-based checks where the lineage is unknown: never better than review (issue 22 §3).
fn value_rules(policy: &Policy, statistic: &Statistic, value: Option<f64>, out: &mut Vec<Finding>) {
    let t = policy.persons.threshold as f64;
    if let (Statistic::Count, Some(v)) = (statistic, value)
        && v > 0.0
        && v < t
    {
        out.push(finding(
            rule::PERSONS,
            Status::Fail,
            format!("値が {t} 未満（値による判定）/ the value is below {t} (checked on the value only)"),
        ));
        return;
    }
    out.push(finding(
        rule::LINEAGE,
        Status::Review,
        "由来を特定できず値のみで判定 / lineage unknown: checked on the value only".to_owned(),
    ));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::policy::LoadedPolicy;

    fn policy(name: &str) -> Policy {
        LoadedPolicy::preset(name).unwrap().policy
    }

    fn count(persons: u64) -> Cell {
        Cell {
            value: Some(persons as f64),
            statistic: Statistic::Count,
            evidence: Some(Evidence { persons: Some(persons), ..Evidence::default() }),
        }
    }

    fn status(p: &Policy, c: &Cell) -> Status {
        worst(&check_cell(p, c))
    }

    fn rules(p: &Policy, c: &Cell) -> Vec<String> {
        check_cell(p, c).into_iter().map(|f| f.rule).collect()
    }

    /// NDB: 1–9 persons fail, 0 and 10+ pass (HIC-IO2).
    #[test]
    fn ndb_persons() {
        let p = policy("ndb");
        assert_eq!(status(&p, &count(0)), Status::Pass);
        for n in 1..=9 {
            assert_eq!(status(&p, &count(n)), Status::Fail, "{n}");
            assert_eq!(rules(&p, &count(n)), vec![rule::PERSONS]);
        }
        assert_eq!(status(&p, &count(10)), Status::Pass);
    }

    /// Each preset's threshold and zeros rule.
    #[test]
    fn preset_thresholds() {
        for (name, threshold, zero) in [("opensafely", 8, Status::Pass), ("acro", 10, Status::Review), ("cms-vrdc", 11, Status::Pass)] {
            let p = policy(name);
            assert_eq!(status(&p, &count(threshold - 1)), Status::Fail, "{name}");
            assert_eq!(status(&p, &count(threshold)), Status::Pass, "{name}");
            assert_eq!(status(&p, &count(0)), zero, "{name}");
        }
    }

    /// A count whose printed value is large but whose persons are few fails: the evidence,
    /// not the value, decides.
    #[test]
    fn evidence_not_value() {
        let p = policy("ndb");
        let mut c = count(3);
        c.value = Some(250.0);
        assert_eq!(rules(&p, &c), vec![rule::PERSONS]);
    }

    /// Institutions, pharmacies and insurers: 1–2 fail under the NDB rules (issue 22 §7).
    #[test]
    fn ndb_units() {
        let p = policy("ndb");
        for kind in ["institution", "pharmacy", "insurer"] {
            let mut c = count(50);
            c.evidence.as_mut().unwrap().units = vec![(kind.to_owned(), 2)];
            assert_eq!(rules(&p, &c), vec![rule::UNITS], "{kind}");
            c.evidence.as_mut().unwrap().units = vec![(kind.to_owned(), 3)];
            assert_eq!(status(&p, &c), Status::Pass, "{kind}");
        }
        let mut off = p.clone();
        off.units.enabled = false;
        let mut c = count(50);
        c.evidence.as_mut().unwrap().units = vec![("institution".to_owned(), 1)];
        assert_eq!(status(&off, &c), Status::Pass);
    }

    /// NDB drug tables without a patient count: oral/topical below 1,000, injections below 400.
    #[test]
    fn ndb_prescriptions() {
        let p = policy("ndb");
        let rx = |route, v: f64| Cell { value: Some(v), statistic: Statistic::Prescriptions { route }, evidence: None };
        assert_eq!(rules(&p, &rx(Route::OralTopical, 999.0)), vec![rule::PRESCRIPTIONS_ORAL]);
        assert_eq!(status(&p, &rx(Route::OralTopical, 1000.0)), Status::Pass);
        assert_eq!(rules(&p, &rx(Route::Injection, 399.0)), vec![rule::PRESCRIPTIONS_INJECTION]);
        assert_eq!(status(&p, &rx(Route::Injection, 400.0)), Status::Pass);
        assert_eq!(status(&p, &rx(Route::Injection, 0.0)), Status::Pass);
    }

    fn sum(persons: u64, total: f64, largest: f64, second: f64) -> Cell {
        Cell {
            value: Some(total),
            statistic: Statistic::Sum,
            evidence: Some(Evidence {
                persons: Some(persons),
                contributions: Some(Contributions { total, largest, second }),
                ..Evidence::default()
            }),
        }
    }

    /// ACRO: N-K (n=2, k=0.9) and p% (p=0.1); NDB: N-K as Kura's addition.
    #[test]
    fn dominance_and_p_percent() {
        let acro = policy("acro");
        // top two 91 of 100: N-K fails; remainder 9 ≥ 0.1·90: p% passes.
        assert_eq!(rules(&acro, &sum(20, 100.0, 90.0, 1.0)), vec![rule::DOMINANCE]);
        // top two 80 of 100 and remainder 20 ≥ 0.1·70: passes both.
        assert_eq!(status(&acro, &sum(20, 100.0, 70.0, 10.0)), Status::Pass);
        // largest 60, second 35, remainder 5 < 6: p% fails; top two 95 %: N-K fails too.
        let r = rules(&acro, &sum(20, 100.0, 60.0, 35.0));
        assert!(r.contains(&rule::P_PERCENT.to_owned()), "{r:?}");
        // p% alone: 1000 total, largest 500, second 390, rest 110 ≥ 50 passes p%; N-K 89 % passes.
        assert_eq!(status(&acro, &sum(20, 1000.0, 500.0, 390.0)), Status::Pass);
        let mut c = sum(20, 1000.0, 500.0, 460.0);
        assert_eq!(rules(&acro, &c), vec![rule::DOMINANCE, rule::P_PERCENT]);
        let ndb = policy("ndb");
        assert_eq!(rules(&ndb, &c), vec![rule::DOMINANCE]);
        c.evidence.as_mut().unwrap().contributions = None;
        assert_eq!(rules(&ndb, &c), vec![rule::CONTRIBUTIONS_UNKNOWN]);
        // OpenSAFELY and CMS have no dominance rule.
        assert_eq!(status(&policy("opensafely"), &c), Status::Pass);
    }

    /// ACRO: residual degrees of freedom ≥ 10.
    #[test]
    fn regression_dof() {
        let acro = policy("acro");
        let dof = |v: f64| Cell { value: Some(v), statistic: Statistic::ResidualDof, evidence: None };
        assert_eq!(rules(&acro, &dof(9.0)), vec![rule::DOF]);
        assert_eq!(status(&acro, &dof(10.0)), Status::Pass);
    }

    /// Min and max of fewer than the threshold of persons are disclosive.
    #[test]
    fn extremes_and_percentiles() {
        let p = policy("ndb");
        for statistic in [Statistic::Extreme, Statistic::Percentile, Statistic::Mean] {
            let mut c = count(9);
            c.statistic = statistic.clone();
            assert!(rules(&p, &c).contains(&rule::PERSONS.to_owned()), "{statistic:?}");
        }
        // A maximum is one person's value however many are in the cell: a reviewer looks.
        let mut c = count(500);
        c.statistic = Statistic::Extreme;
        assert_eq!(rules(&p, &c), vec![rule::EXTREME]);
        c.statistic = Statistic::Record;
        assert_eq!(status(&p, &c), Status::Fail);
        // A CASE branch of one person inside a count of 500 fails.
        let mut c = count(500);
        c.evidence.as_mut().unwrap().parts = vec![Evidence { persons: Some(1), ..Evidence::default() }];
        assert_eq!(rules(&p, &c), vec![rule::PERSONS]);
    }

    /// A share whose numerator has 1–9 persons fails over a large denominator (issue 22 §5).
    #[test]
    fn shares_check_every_part() {
        let p = policy("ndb");
        let part = |n| Evidence { persons: Some(n), ..Evidence::default() };
        let share = |num, den| Cell {
            value: Some(0.001),
            statistic: Statistic::Composite,
            evidence: Some(Evidence { persons: Some(den), parts: vec![part(num), part(den)], ..Evidence::default() }),
        };
        assert_eq!(rules(&p, &share(3, 100_000)), vec![rule::PERSONS]);
        assert_eq!(status(&p, &share(10, 100_000)), Status::Pass);
    }

    /// Records without a person key never count (issue 22 §6); lineage lost is review at best
    /// (issue 22 §3).
    #[test]
    fn unknown_persons_and_lineage() {
        let p = policy("ndb");
        let mut c = count(0);
        c.value = Some(40.0);
        c.evidence.as_mut().unwrap().unknown_person_records = 40;
        assert_eq!(rules(&p, &c), vec![rule::UNKNOWN_PERSONS]);
        let mut c = count(4);
        c.evidence.as_mut().unwrap().unknown_person_records = 100;
        assert_eq!(status(&p, &c), Status::Fail);
        let value_only = |v: f64| Cell { value: Some(v), statistic: Statistic::Count, evidence: None };
        assert_eq!(rules(&p, &value_only(5.0)), vec![rule::PERSONS]);
        assert_eq!(rules(&p, &value_only(5000.0)), vec![rule::LINEAGE]);
        assert_eq!(status(&p, &value_only(5000.0)), Status::Review);
    }
}
