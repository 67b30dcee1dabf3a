//! The disclosure policy (公表基準): one versioned, machine-readable file (HIC-IO2).
//!
//! The same [`Policy`] value is applied by the workspace (warnings while the researcher works),
//! the automatic checker and the release gate, so that the three can never disagree
//! (`../shared/domain/disclosure.md`, "Rules that differ between the query tool, the checker and
//! the release gate"). A policy is identified by its name, its version and the SHA-256 of the
//! file's bytes; every release records all three.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

/// The presets shipped with Kura: name and file text. The first is the default.
const PRESETS: [(&str, &str); 4] = [
    ("ndb", include_str!("../policies/ndb.toml")),
    ("opensafely", include_str!("../policies/opensafely.toml")),
    ("acro", include_str!("../policies/acro.toml")),
    ("cms-vrdc", include_str!("../policies/cms-vrdc.toml")),
];

/// The policy file format this build reads.
pub const FORMAT: u32 = 1;

/// Names of the shipped presets, the default (`ndb`) first.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|(name, _)| *name).collect()
}

/// What a cell of zero persons is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zeros {
    /// 0 may be shown (the NDB rules).
    Allow,
    /// A zero goes to the reviewers (ACRO: structural zeros can disclose).
    Review,
    /// A zero is treated as disclosive.
    Fail,
}

/// Persons (患者数・人数): the primary threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persons {
    /// A cell built from 1 to `threshold - 1` distinct persons fails.
    pub threshold: u64,
    /// What a cell of zero persons is.
    pub zeros: Zeros,
}

/// The highest `units.threshold` a policy may set: the checker counts distinct institutions,
/// pharmacies and insurers exactly up to this many per cell, and "at least this many" beyond.
pub const MAX_UNITS_THRESHOLD: u64 = 16;

/// Medical institutions, pharmacies and insurers (医療機関・薬局・保険者; issue 22 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Units {
    /// Whether the rule applies.
    pub enabled: bool,
    /// A cell built from 1 to `threshold - 1` of them fails.
    pub threshold: u64,
}

/// Prescription counts in drug tables where the number of patients is unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prescriptions {
    /// Oral and topical drugs: counts below this fail.
    pub oral_topical_min: u64,
    /// Injections: counts below this fail.
    pub injection_min: u64,
}

/// The (n, k) dominance rule for sums and means: the `n` largest persons' contributions may
/// not exceed `k` of the cell's total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dominance {
    /// How many of the largest contributions count (1 or 2).
    pub n: u32,
    /// Their largest permitted share of the total, in (0, 1).
    pub k: f64,
    /// True where the rule is Kura's addition to the source rules (shown by `kura policy show`).
    #[serde(default)]
    pub kura_addition: bool,
}

/// The p% rule: the second largest contributor must not be able to estimate the largest to
/// within `p` of its value (`total - x1 - x2 >= p * x1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PPercent {
    /// The protection ratio, in (0, 1).
    pub p: f64,
}

/// Regression-style outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    /// Residual degrees of freedom below this fail.
    pub min_residual_dof: u64,
}

/// Secondary suppression (二次秘匿).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// Whether complementary cells are suppressed so that totals cannot reveal a suppressed one.
    pub secondary: bool,
    /// The least width of a suppressed cell's feasible interval, given everything released.
    pub protection: u64,
}

/// How released values are rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoundingMethod {
    /// Values are shown as they are.
    None,
    /// To the nearest multiple of the base (halves away from zero).
    Nearest,
    /// OpenSAFELY's midpoint-6: 0 → 0, 1–6 → 3, 7–12 → 9, … (bins of 6, shown at their middle).
    Midpoint6,
}

/// Rounding of released values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rounding {
    /// How counts are rounded.
    pub method: RoundingMethod,
    /// The base of `nearest` rounding.
    #[serde(default)]
    pub base: Option<u64>,
    /// How counts that rates are built from are rounded (OpenSAFELY: midpoint-6).
    #[serde(default)]
    pub rates: Option<RoundingMethod>,
}

/// Limits on files and column rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The largest output file.
    pub max_file_bytes: u64,
    /// The most rows of an output table.
    pub max_rows: u64,
    /// The largest file brought in (HIC-IO1).
    pub bringin_max_bytes: u64,
    /// Column names that are identifiers (compared without case): such a column never leaves.
    pub identifier_columns: Vec<String>,
}

/// Geography: how fine a released table may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geography {
    /// The finest units permitted (documentation for reviewers).
    pub finest: Vec<String>,
    /// Column names that are finer than permitted (compared without case): such a column fails.
    pub too_fine_columns: Vec<String>,
}

/// A disclosure policy: the rules every output is checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The file format (must be [`FORMAT`]).
    pub format: u32,
    /// A short name (`ndb`).
    pub name: String,
    /// The policy's version; a release records it.
    pub version: String,
    /// Title in Japanese.
    pub title_ja: String,
    /// Title in English.
    pub title_en: String,
    /// The persons threshold.
    pub persons: Persons,
    /// The institutions, pharmacies and insurers threshold.
    pub units: Units,
    /// Prescription counts without a patient count.
    #[serde(default)]
    pub prescriptions: Option<Prescriptions>,
    /// Dominance for sums and means.
    #[serde(default)]
    pub dominance: Option<Dominance>,
    /// The p% rule for sums and means.
    #[serde(default)]
    pub p_percent: Option<PPercent>,
    /// Regression outputs.
    #[serde(default)]
    pub regression: Option<Regression>,
    /// Secondary suppression.
    pub suppression: Suppression,
    /// Rounding of released values.
    pub rounding: Rounding,
    /// File limits and identifier columns.
    pub limits: Limits,
    /// Geography.
    #[serde(default)]
    pub geography: Option<Geography>,
}

/// A policy with the identity of the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPolicy {
    /// The rules.
    pub policy: Policy,
    /// SHA-256 of the file's bytes, in lowercase hex.
    pub sha256: String,
    /// The file's text (shown by `kura policy show`).
    pub text: String,
}

impl LoadedPolicy {
    /// Reads a policy from a file's text; `source` names the file in errors.
    pub fn parse(source: &str, text: &str) -> Result<Self, Error> {
        let policy: Policy = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|span| line_column(text, span.start)).unwrap_or((0, 0));
            Error::Policy { source_name: source.to_owned(), line, column, message: e.message().to_owned() }
        })?;
        policy.validate().map_err(|(field, message)| Error::PolicyField { source_name: source.to_owned(), field, message })?;
        Ok(Self { sha256: hex::encode(Sha256::digest(text.as_bytes())), text: text.to_owned(), policy })
    }

    /// A shipped preset by name (`ndb`, `opensafely`, `acro`, `cms-vrdc`).
    pub fn preset(name: &str) -> Result<Self, Error> {
        let (_, text) = PRESETS.iter().find(|(preset, _)| *preset == name).ok_or_else(|| Error::UnknownPreset(name.to_owned()))?;
        Self::parse(&format!("preset {name}"), text)
    }

    /// The default policy: the NDB publication rules.
    pub fn default_ndb() -> Self {
        match Self::preset("ndb") {
            Ok(policy) => policy,
            // The shipped file is tested (`presets_parse`); reaching here is a build defect.
            Err(e) => unreachable!("the shipped NDB policy is invalid: {e}"),
        }
    }

    /// `name version (sha256 …)`, as a release records it.
    pub fn identity(&self) -> String {
        format!("{} {} (sha256 {})", self.policy.name, self.policy.version, self.sha256)
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Policy {
    /// Checks values serde cannot: returns the field and what is wrong.
    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, message: &str| Err((field.to_owned(), message.to_owned()));
        if self.format != FORMAT {
            return bad("format", &format!("this Kura reads policy format {FORMAT}, the file says {}", self.format));
        }
        if self.name.trim().is_empty() || self.version.trim().is_empty() {
            return bad("name/version", "a policy needs a name and a version");
        }
        if self.persons.threshold < 2 {
            return bad("persons.threshold", "must be at least 2");
        }
        if self.units.enabled && self.units.threshold < 2 {
            return bad("units.threshold", "must be at least 2 when the rule is enabled");
        }
        if self.units.enabled && self.units.threshold > MAX_UNITS_THRESHOLD {
            return bad(
                "units.threshold",
                &format!(
                    "must be at most {MAX_UNITS_THRESHOLD} (Kura counts institutions, pharmacies and insurers per cell up to that many)"
                ),
            );
        }
        if let Some(d) = &self.dominance {
            if !(1..=2).contains(&d.n) {
                return bad("dominance.n", "must be 1 or 2");
            }
            if !(d.k > 0.0 && d.k < 1.0) {
                return bad("dominance.k", "must be between 0 and 1");
            }
        }
        if let Some(p) = &self.p_percent
            && !(p.p > 0.0 && p.p < 1.0)
        {
            return bad("p_percent.p", "must be between 0 and 1");
        }
        if self.suppression.protection == 0 {
            return bad("suppression.protection", "must be at least 1");
        }
        if self.rounding.method == RoundingMethod::Nearest && !matches!(self.rounding.base, Some(b) if b >= 2) {
            return bad("rounding.base", "nearest rounding needs a base of 2 or more");
        }
        if self.rounding.rates == Some(RoundingMethod::Nearest) && !matches!(self.rounding.base, Some(b) if b >= 2) {
            return bad("rounding.base", "nearest rounding needs a base of 2 or more");
        }
        if self.limits.max_file_bytes == 0 || self.limits.max_rows == 0 {
            return bad("limits", "file and row limits must be above 0");
        }
        Ok(())
    }

    /// Whether a column name is an identifier under this policy.
    pub fn is_identifier(&self, column: &str) -> bool {
        self.limits.identifier_columns.iter().any(|c| c.eq_ignore_ascii_case(column))
    }

    /// Whether a column name is geography finer than permitted.
    pub fn is_too_fine(&self, column: &str) -> bool {
        self.geography.as_ref().is_some_and(|g| g.too_fine_columns.iter().any(|c| c.eq_ignore_ascii_case(column)))
    }

    /// The rules in words, Japanese then English, one line each (`kura policy show`).
    pub fn explain(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let t = self.persons.threshold;
        lines.push(format!(
            "人数 / persons: 1〜{} 人のセルは不可 / a cell of 1 to {} persons fails; 0 は{} / zeros {}",
            t - 1,
            t - 1,
            match self.persons.zeros {
                Zeros::Allow => "可",
                Zeros::Review => "審査",
                Zeros::Fail => "不可",
            },
            match self.persons.zeros {
                Zeros::Allow => "allowed",
                Zeros::Review => "go to review",
                Zeros::Fail => "fail",
            }
        ));
        lines.push(
            "ID 不明 / unknown persons: 個人キーのない記録は人数に数えない（既知の人数が基準未満なら審査以上）/ records without a person key never count as persons (below the threshold in known persons: review at best)".to_owned(),
        );
        if self.units.enabled {
            let u = self.units.threshold;
            lines.push(format!("医療機関・薬局・保険者 / institutions, pharmacies, insurers: 1〜{} は不可 / 1 to {} fails", u - 1, u - 1));
        }
        if let Some(p) = &self.prescriptions {
            lines.push(format!(
                "処方数（患者数不明）/ prescription counts without a patient count: 内服・外用 {} 未満、注射 {} 未満は不可 / oral and topical below {}, injections below {} fail",
                p.oral_topical_min, p.injection_min, p.oral_topical_min, p.injection_min
            ));
        }
        if let Some(d) = &self.dominance {
            lines.push(format!(
                "優越 / dominance: 合計・平均で上位 {} 人の寄与が {:.0}% を超えるセルは不可 / sums and means whose {} largest persons exceed {:.0}% of the total fail{}",
                d.n,
                d.k * 100.0,
                d.n,
                d.k * 100.0,
                if d.kura_addition {
                    "（Kura による追加規則 / Kura's addition to these rules）"
                } else {
                    ""
                }
            ));
        }
        if let Some(p) = &self.p_percent {
            lines.push(format!(
                "p% 規則 / p% rule: p = {} — 2 位が 1 位を {:.0}% 以内で推定できるセルは不可 / fails where the second largest can estimate the largest within {:.0}%",
                p.p,
                p.p * 100.0,
                p.p * 100.0
            ));
        }
        if let Some(r) = &self.regression {
            lines.push(format!(
                "回帰 / regression: 残差自由度 {} 未満は不可 / residual degrees of freedom below {} fail",
                r.min_residual_dof, r.min_residual_dof
            ));
        }
        lines.push(format!(
            "二次秘匿 / secondary suppression: {} — 秘匿セルの取りうる幅は {} 以上 / each suppressed cell's feasible interval at least {} wide",
            if self.suppression.secondary { "あり / on" } else { "なし / off" },
            self.suppression.protection,
            self.suppression.protection
        ));
        lines.push(match self.rounding.method {
            RoundingMethod::None => "丸め / rounding: なし / none".to_owned(),
            RoundingMethod::Nearest => format!(
                "丸め / rounding: {} の倍数に丸める / to the nearest {}",
                self.rounding.base.unwrap_or(0),
                self.rounding.base.unwrap_or(0)
            ),
            RoundingMethod::Midpoint6 => "丸め / rounding: midpoint-6".to_owned(),
        });
        lines.push(format!(
            "個票・識別子 / records and identifiers: 個票は不可、識別子列 {} は不可 / no individual records; identifier columns fail",
            self.limits.identifier_columns.join(", ")
        ));
        lines.push(format!(
            "上限 / limits: ファイル {} バイト、{} 行、持込み {} バイト / files {} bytes, {} rows, bring-in {} bytes",
            self.limits.max_file_bytes,
            self.limits.max_rows,
            self.limits.bringin_max_bytes,
            self.limits.max_file_bytes,
            self.limits.max_rows,
            self.limits.bringin_max_bytes
        ));
        if let Some(g) = &self.geography {
            lines.push(format!(
                "地域 / geography: 最小単位 {} — 列 {} は不可 / finest {}; columns {} fail",
                g.finest.join(", "),
                g.too_fine_columns.join(", "),
                g.finest.join(", "),
                g.too_fine_columns.join(", ")
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn presets_parse_and_differ() {
        let mut hashes = Vec::new();
        for name in preset_names() {
            let p = LoadedPolicy::preset(name).unwrap();
            assert_eq!(p.policy.name, name);
            hashes.push(p.sha256.clone());
        }
        hashes.dedup();
        assert_eq!(hashes.len(), 4);
        let ndb = LoadedPolicy::default_ndb().policy;
        assert_eq!(ndb.persons.threshold, 10);
        assert_eq!(ndb.persons.zeros, Zeros::Allow);
        assert!(ndb.units.enabled && ndb.units.threshold == 3);
        assert!(ndb.dominance.as_ref().unwrap().kura_addition);
        let explained = ndb.explain().join("\n");
        assert!(explained.contains("Kura's addition"), "{explained}");
        assert!(explained.contains("1〜9"), "{explained}");
    }

    #[test]
    fn a_bad_file_names_line_and_field() {
        let text = LoadedPolicy::preset("ndb").unwrap().text.replace("threshold = 10", "threshold = \"ten\"");
        let err = LoadedPolicy::parse("p.toml", &text).unwrap_err().to_string();
        assert!(err.contains("p.toml:"), "{err}");
        let line = text.lines().position(|l| l.contains("\"ten\"")).unwrap() + 1;
        assert!(err.contains(&format!(":{line}:")), "{err}");

        let text = LoadedPolicy::preset("ndb").unwrap().text.replace("k = 0.9", "k = 1.5");
        let err = LoadedPolicy::parse("p.toml", &text).unwrap_err().to_string();
        assert!(err.contains("dominance.k"), "{err}");

        // Institutions are counted up to MAX_UNITS_THRESHOLD: a higher threshold is refused.
        let ndb = LoadedPolicy::preset("ndb").unwrap().text;
        assert!(ndb.contains("enabled = true\nthreshold = 3\n"), "the test edits the units table");
        let text = ndb.replace("enabled = true\nthreshold = 3\n", "enabled = true\nthreshold = 17\n");
        let err = LoadedPolicy::parse("p.toml", &text).unwrap_err().to_string();
        assert!(err.contains("units.threshold") && err.contains("16"), "{err}");
        let text = ndb.replace("enabled = true\nthreshold = 3\n", "enabled = true\nthreshold = 16\n");
        assert!(LoadedPolicy::parse("p.toml", &text).is_ok());

        let text = LoadedPolicy::preset("ndb").unwrap().text + "\n[surprise]\nx = 1\n";
        let err = LoadedPolicy::parse("p.toml", &text).unwrap_err().to_string();
        assert!(err.contains("surprise"), "{err}");
        assert!(LoadedPolicy::preset("nope").is_err());
    }
}
