//! Value-based checks of files that no Kura query produced (issue 17 §2): a figure, a model
//! summary, text. Nothing is known of the persons behind them, so the best such a file gets is
//! review, and a reviewer must always confirm it (`file.unchecked`). Where the file is a
//! table of numbers (CSV), each number is also checked as a count by its value: a count
//! between 1 and the threshold fails.

use kura_disclosure::LoadedPolicy;
use kura_disclosure::check::{Cell, Finding, Statistic, Status, check_cell, rule};
use serde::{Deserialize, Serialize};

/// How many numbers of one file are checked one by one; past it the file fails the limits.
const MAX_CELLS: usize = 200_000;

/// The verdict on a file no query produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileVerdict {
    /// The worst status.
    pub status: Status,
    /// The findings: about the file, then per numeric cell as `(line, column, finding)`.
    pub findings: Vec<Finding>,
    /// Cells whose value alone fails, as (line, column) counted from 1.
    pub failing_cells: Vec<(usize, usize)>,
    /// The differencing memory's newest release when the file was added (see
    /// `TableVerdict::memory_through`).
    #[serde(default)]
    pub memory_through: u64,
}

impl FileVerdict {
    /// The rule names that fired.
    pub fn rules(&self) -> Vec<String> {
        let mut r: Vec<String> = self.findings.iter().map(|f| f.rule.clone()).collect();
        r.sort();
        r.dedup();
        r
    }
}

/// Checks `content` (named `name`) by its values under `policy`.
pub fn check_file(policy: &LoadedPolicy, name: &str, content: &[u8]) -> FileVerdict {
    let mut findings = vec![Finding {
        rule: rule::UNCHECKED_FILE.into(),
        status: Status::Review,
        message: "Kura の問い合わせで作られていないファイルです。審査者二人の確認が必要です / a file no Kura query produced: both reviewers must confirm it"
            .into(),
    }];
    let mut failing_cells = Vec::new();
    let is_csv = name.to_ascii_lowercase().ends_with(".csv");
    if let (true, Ok(text)) = (is_csv, std::str::from_utf8(content)) {
        let mut checked = 0usize;
        'lines: for (i, line) in text.lines().enumerate() {
            for (j, field) in line.split(',').enumerate() {
                let Ok(v) = field.trim().trim_matches('"').parse::<f64>() else { continue };
                checked += 1;
                if checked > MAX_CELLS {
                    findings.push(Finding {
                        rule: rule::LIMITS.into(),
                        status: Status::Fail,
                        message: format!("数値が多すぎます（{MAX_CELLS} まで）/ more than {MAX_CELLS} numbers"),
                    });
                    break 'lines;
                }
                let cell = Cell { value: Some(v), statistic: Statistic::Count, evidence: None };
                let fired: Vec<Finding> = check_cell(&policy.policy, &cell).into_iter().filter(|f| f.status == Status::Fail).collect();
                if !fired.is_empty() {
                    failing_cells.push((i + 1, j + 1));
                    findings.extend(fired);
                }
            }
        }
    }
    let status = kura_disclosure::check::worst(&findings);
    FileVerdict { status, findings, failing_cells, memory_through: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_count_in_a_csv_fails_and_every_file_needs_review() {
        let policy = LoadedPolicy::default_ndb();
        let v = check_file(&policy, "t.csv", b"pref,n\nTokyo,120\nTottori,3\n");
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.failing_cells, vec![(3, 2)]);
        assert!(v.rules().contains(&rule::UNCHECKED_FILE.to_string()));
        let v = check_file(&policy, "t.csv", b"pref,n\nTokyo,120\nOsaka,0\n");
        assert_eq!(v.status, Status::Review, "{:?}", v.findings);
        let v = check_file(&policy, "figure.png", &[0x89, b'P', b'N', b'G', 3, 1]);
        assert_eq!((v.status, v.rules()), (Status::Review, vec![rule::UNCHECKED_FILE.to_string()]));
    }
}
