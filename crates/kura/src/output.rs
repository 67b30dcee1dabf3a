//! Printing: result tables, CSV, JSON lines, and the catalogue.

use crate::{CliError, Format, Result};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use kura_query::{StatementKind, StatementOutput};
use kura_store::Home;
use kura_store::verify::verify_dataset;

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

/// Formats every cell of the batches as text (nulls as empty).
pub fn cells(batches: &[RecordBatch], max_rows: usize) -> Result<Vec<Vec<String>>> {
    let opts = FormatOptions::default().with_null("");
    let mut out = Vec::new();
    for b in batches {
        let fmts = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        for r in 0..b.num_rows() {
            if out.len() >= max_rows {
                return Ok(out);
            }
            out.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    Ok(out)
}

/// A comfy table of a result.
pub fn result_table(o: &StatementOutput, max_rows: usize) -> Result<Table> {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    // Headers are cut like values (an alias can be as long as the statement).
    t.set_header(o.schema.fields().iter().map(|f| shorten(f.name().clone(), TABLE_CELL_CHARS)));
    let numeric: Vec<bool> = o.schema.fields().iter().map(|f| is_numeric(f.data_type())).collect();
    // A table is for reading: a long value is cut (whole values: `--format csv` or `json`).
    for row in cells(&o.batches, max_rows)? {
        t.add_row(row.into_iter().map(|c| shorten(c, TABLE_CELL_CHARS)));
    }
    for (i, n) in numeric.iter().enumerate() {
        if *n && let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    Ok(t)
}

/// Longest value shown whole in a table.
const TABLE_CELL_CHARS: usize = 200;

fn shorten(cell: String, max: usize) -> String {
    match cell.char_indices().nth(max) {
        Some((at, _)) => format!("{}…（{} 文字 chars）", &cell[..at], cell.chars().count()),
        None => cell,
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// A numeric cell as a JSON number: integers exactly (an `i64` or `u64` above 2^53 would lose
/// digits through `f64`), other numbers as `f64`; text if it is neither.
fn json_number(t: &datafusion::arrow::datatypes::DataType, cell: &str) -> serde_json::Value {
    let n = if t.is_integer() {
        cell.parse::<i64>().ok().map(serde_json::Number::from).or_else(|| cell.parse::<u64>().ok().map(serde_json::Number::from))
    } else {
        cell.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    };
    n.map_or_else(|| serde_json::Value::String(cell.to_string()), serde_json::Value::Number)
}

/// Prints one statement's output.
pub fn statement(o: &StatementOutput, format: Format, max_rows: usize) -> Result<()> {
    match &o.kind {
        StatementKind::View(name) => {
            println!("一時ビュー '{name}' を作成しました / created temporary view '{name}'");
            return Ok(());
        }
        StatementKind::Explain => {
            for row in cells(&o.batches, usize::MAX)? {
                for cell in row {
                    println!("{cell}");
                }
            }
            return Ok(());
        }
        _ => {}
    }
    match format {
        Format::Table => {
            println!("{}", result_table(o, max_rows)?);
            let shown = o.rows().min(max_rows);
            let more = if o.rows() > shown { format!("、先頭 {shown} 行を表示 / first {shown} shown") } else { String::new() };
            println!("({} 行 rows{more}, {:.3} s)", o.rows(), o.elapsed.as_secs_f64());
        }
        Format::Csv => {
            println!("{}", o.schema.fields().iter().map(|f| csv_field(f.name())).collect::<Vec<_>>().join(","));
            for row in cells(&o.batches, usize::MAX)? {
                println!("{}", row.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            }
        }
        Format::Json => {
            let names: Vec<&String> = o.schema.fields().iter().map(|f| f.name()).collect();
            let numeric: Vec<bool> = o.schema.fields().iter().map(|f| is_numeric(f.data_type())).collect();
            for b in &o.batches {
                let rows = cells(std::slice::from_ref(b), usize::MAX)?;
                for (r, row) in rows.iter().enumerate() {
                    let mut obj = serde_json::Map::new();
                    for (i, cell) in row.iter().enumerate() {
                        let v = if b.column(i).is_null(r) {
                            serde_json::Value::Null
                        } else if numeric[i] {
                            json_number(b.column(i).data_type(), cell)
                        } else {
                            serde_json::Value::String(cell.clone())
                        };
                        obj.insert(names[i].clone(), v);
                    }
                    println!("{}", serde_json::Value::Object(obj));
                }
            }
        }
    }
    Ok(())
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// `kura catalog`.
pub fn catalog(home: &Home, dataset: Option<&str>, table: Option<&str>, verify: bool, json: bool) -> Result<()> {
    // Verifying reads the keys and the catalogue as one view (a rewrite in between shreds keys).
    let (cat, keys) = if verify {
        let (master, keyring, cat) = home.snapshot()?;
        (cat, Some((master, keyring)))
    } else {
        (home.catalog()?, None)
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&cat).map_err(|e| CliError::Usage(e.to_string()))?);
        return Ok(());
    }
    if cat.datasets.is_empty() {
        println!("データセットはまだありません。`kura synth` で作成してください / no datasets yet: create one with `kura synth`");
        return Ok(());
    }
    let mut problems = 0;
    for d in cat.datasets.values().filter(|d| dataset.is_none_or(|n| n == d.name)) {
        println!("■ {} — {}", d.name, d.title_ja);
        println!("  {}", d.title_en);
        println!("  {}", d.description_ja);
        println!(
            "  期間 period: {}–{}  人数 persons: {}  行数 rows: {}  サイズ size: {}  {}",
            d.period_from,
            d.period_to,
            d.persons,
            d.rows(),
            human_bytes(d.bytes()),
            if d.synthetic { "合成データ synthetic" } else { "" }
        );
        println!("  作成 created: {} by {}  世代 generation: {}", d.created_at, d.created_by, d.generation);
        match table {
            None => {
                let mut t = Table::new();
                t.load_preset(UTF8_FULL_CONDENSED);
                t.set_header(["テーブル table", "内容", "contents", "行数 rows", "列 cols", "サイズ size", "元の形式 source"]);
                for tb in &d.tables {
                    t.add_row([
                        tb.name.clone(),
                        tb.title_ja.clone(),
                        tb.title_en.clone(),
                        tb.rows.to_string(),
                        tb.columns.len().to_string(),
                        human_bytes(tb.bytes()),
                        tb.source_format.clone(),
                    ]);
                }
                if let Some(c) = t.column_mut(3) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
                println!("{t}");
                println!("列の一覧 / columns: kura catalog --table re");
            }
            Some(name) => {
                let tb = d.table(name).ok_or_else(|| CliError::Usage(format!("テーブル '{name}' はありません / no table '{name}'")))?;
                println!("  {} — {} / {} ({} 行 rows)", tb.name, tb.title_ja, tb.title_en, tb.rows);
                let mut t = Table::new();
                t.load_preset(UTF8_FULL_CONDENSED);
                t.set_header(["列 column", "型 type", "説明", "description", "コード体系 code system", "機微度 sensitivity"]);
                for c in &tb.columns {
                    let sens = serde_json::to_value(c.sensitivity).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                    t.add_row([
                        c.name.clone(),
                        format!("{}{}", c.data_type, if c.nullable { "?" } else { "" }),
                        c.title_ja.clone(),
                        c.title_en.clone(),
                        c.code_system.clone().unwrap_or_default(),
                        sens,
                    ]);
                }
                println!("{t}");
            }
        }
        if let Some((master, keyring)) = &keys {
            let mut findings = kura_store::verify::verify_keys(master, keyring, d);
            findings.extend(verify_dataset(home, d));
            // A rewrite that finished meanwhile deletes the generation being checked (its files
            // and keys): not damage. The new generation is checked instead, from a new view.
            let mut generation = d.generation.clone();
            for _ in 0..3 {
                if findings.is_empty() {
                    break;
                }
                let (master, keyring, now) = home.snapshot()?;
                let Some(now) = now.datasets.get(&d.name).filter(|n| n.generation != generation) else { break };
                findings = kura_store::verify::verify_keys(&master, &keyring, now);
                findings.extend(verify_dataset(home, now));
                generation = now.generation.clone();
                println!(
                    "  （検証中に書き換えられたため世代 {generation} を検証 / rewritten meanwhile: generation {generation} verified）"
                );
            }
            if findings.is_empty() {
                let files: usize = d.tables.iter().map(|t| t.files.len()).sum();
                println!(
                    "  検証OK / verified: カタログの認証と {files} ファイルのサイズ・SHA-256 が一致 / catalogue authenticated; {files} files, sizes and SHA-256 match"
                );
            }
            for f in &findings {
                println!("  ✗ {}: {}", f.file, f.problem);
            }
            problems += findings.len();
        }
        println!();
    }
    if problems > 0 {
        return Err(CliError::Usage(format!("{problems} 件の問題 / problem(s) found")));
    }
    Ok(())
}
