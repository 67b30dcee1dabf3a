//! How a benchmark reports: a table of figures with their targets, and its working directory.

use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use kura::{CliError, Result};

/// One figure of a benchmark: what was measured, the result, the target and whether it is met.
pub struct Figure {
    /// What was measured.
    pub what: &'static str,
    /// The result, formatted.
    pub value: String,
    /// The target, if there is one.
    pub target: &'static str,
    /// Whether the target is met (`None`: no target).
    pub met: Option<bool>,
}

/// Prints a benchmark's figures as a table; an error naming every missed target if any was
/// missed (a benchmark that misses its target exits non-zero).
pub fn figures(figures: &[Figure]) -> Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["測定 / measure", "結果 / result", "目標 / target", ""]);
    for f in figures {
        let mark = match f.met {
            Some(true) => "✓",
            Some(false) => "✗",
            None => "",
        };
        table.add_row(vec![f.what.to_string(), f.value.clone(), f.target.to_string(), mark.to_string()]);
    }
    if let Some(c) = table.column_mut(1) {
        c.set_cell_alignment(CellAlignment::Right);
    }
    println!("{table}");
    let missed: Vec<String> =
        figures.iter().filter(|f| f.met == Some(false)).map(|f| format!("{} ({}, {})", f.what.trim(), f.value, f.target)).collect();
    if missed.is_empty() { Ok(()) } else { Err(CliError::TargetMissed(missed.join("; "))) }
}

/// A benchmark's working directory: `given`, which must be new or empty (a benchmark never
/// deletes or overwrites anything it did not create), or a temporary one removed when the
/// returned guard drops.
pub fn bench_dir(given: Option<&std::path::Path>, prefix: &str) -> Result<(std::path::PathBuf, Option<tempfile::TempDir>)> {
    match given {
        Some(d) => {
            let busy = match std::fs::read_dir(d) {
                Ok(mut entries) => entries.next().is_some(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(CliError::Io { path: d.display().to_string(), source: e }),
            };
            if busy {
                return Err(CliError::Usage(format!(
                    "{} は空ではありません（前回の実行結果など）。新しいか空のディレクトリを指定してください / {} is not empty (an earlier run?): give a new or empty directory",
                    d.display(),
                    d.display()
                )));
            }
            std::fs::create_dir_all(d).map_err(|e| CliError::Io { path: d.display().to_string(), source: e })?;
            Ok((d.to_path_buf(), None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .map_err(|e| CliError::Io { path: std::env::temp_dir().display().to_string(), source: e })?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A benchmark that misses a target ends in an error naming it (the process exits with 3).
    #[test]
    fn a_missed_target_is_an_error_naming_it() {
        let f = |met| Figure { what: "  handshakes per core", value: "900 /s".into(), target: "≥ 1,000 /s", met };
        assert!(figures(&[f(Some(true)), f(None)]).is_ok());
        let err = figures(&[f(Some(true)), f(Some(false))]).unwrap_err().to_string();
        assert!(err.contains("missed target(s): handshakes per core (900 /s, ≥ 1,000 /s)"), "{err}");
        assert!(matches!(figures(&[f(Some(false))]), Err(CliError::TargetMissed(_))));
    }
}
