//! Printing: result tables, CSV, JSON lines, and the catalogue.

use crate::{CliError, Format, Result};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use kura_query::{StatementKind, StatementOutput};
use kura_store::Home;
use kura_store::verify::verify_dataset;
use std::io::Write;
use std::sync::Arc;

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

/// The batches with every nested column (lists, structs, maps, unions) turned into its text,
/// for CSV, whose writer takes flat columns only.
fn flat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    if !schema.fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok((schema.clone(), batches.to_vec()));
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| if f.data_type().is_nested() { Field::new(f.name(), DataType::Utf8, true) } else { f.as_ref().clone() })
        .collect();
    let flat_schema = Arc::new(Schema::new(fields));
    let opts = FormatOptions::default();
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let mut columns = Vec::with_capacity(b.num_columns());
        for c in b.columns() {
            if !c.data_type().is_nested() {
                columns.push(c.clone());
                continue;
            }
            let f = ArrayFormatter::try_new(c.as_ref(), &opts)?;
            let text: StringArray = (0..c.len()).map(|r| (!c.is_null(r)).then(|| f.value(r).to_string())).collect();
            columns.push(Arc::new(text) as ArrayRef);
        }
        out.push(RecordBatch::try_new(flat_schema.clone(), columns)?);
    }
    Ok((flat_schema, out))
}

/// Writes a result as CSV (RFC 4180 quoting, a header line even without rows, nulls empty).
pub fn write_csv(out: impl Write, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    let (schema, batches) = flat(schema, batches)?;
    let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).with_null(String::new()).build(out);
    // The header is written with the first batch: an empty one writes it when there are no rows.
    w.write(&RecordBatch::new_empty(schema))?;
    for b in &batches {
        w.write(b)?;
    }
    Ok(())
}

/// Writes a result as JSON lines ([`kura_query::json::write_json_lines`]).
pub fn write_json_lines(out: impl Write, batches: &[RecordBatch]) -> Result<()> {
    Ok(kura_query::json::write_json_lines(out, batches)?)
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
        // The whole result is formatted before a byte is printed (it is bounded by the result
        // cap): a value that cannot be written leaves no partial output behind.
        Format::Csv | Format::Json => {
            let mut text = Vec::new();
            if format == Format::Csv {
                write_csv(&mut text, &o.schema, &o.batches)?;
            } else {
                write_json_lines(&mut text, &o.batches)?;
            }
            let mut out = std::io::stdout().lock();
            out.write_all(&text).and_then(|()| out.flush()).map_err(|e| CliError::Output(e.into()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, ListArray, UInt64Array};
    use datafusion::arrow::datatypes::Int32Type;

    fn batch() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("big", DataType::Int64, true),
            Field::new("u", DataType::UInt64, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("list", DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))), true),
        ]));
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None]), None]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(9_007_199_254_740_993), None])),
            Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(0)])),
            Arc::new(StringArray::from(vec![Some("a,\"b\"\nc"), None])),
            Arc::new(list),
        ];
        let b = RecordBatch::try_new(schema.clone(), columns).unwrap();
        (schema, b)
    }

    /// CSV through arrow-csv: quoting of commas, quotes and line breaks, nulls empty, nested
    /// columns as their text, and the header even when there is no row.
    #[test]
    fn csv_quotes_and_flattens() {
        let (schema, b) = batch();
        let mut out = Vec::new();
        write_csv(&mut out, &schema, &[b]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "big,u,text,list\n9007199254740993,18446744073709551615,\"a,\"\"b\"\"\nc\",\"[1, ]\"\n,0,,\n");
        let mut out = Vec::new();
        write_csv(&mut out, &schema, &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "big,u,text,list\n");
    }

    /// JSON lines through arrow-json: integers keep every digit, nulls are written, lists are
    /// arrays.
    #[test]
    fn json_lines_keep_integers_and_nulls() {
        let (_, b) = batch();
        let mut out = Vec::new();
        write_json_lines(&mut out, &[b]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"big":9007199254740993,"u":18446744073709551615,"text":"a,\"b\"\nc","list":[1,null]}"#);
        assert_eq!(lines[1], r#"{"big":null,"u":0,"text":null,"list":null}"#);
    }

    /// A float that is not finite is a string, never `null` (which reads as SQL NULL); finite
    /// floats are numbers as arrow-json writes them.
    #[test]
    fn json_lines_name_non_finite_floats() {
        use datafusion::arrow::array::{Float32Array, Float64Array};
        let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Float64, true), Field::new("f", DataType::Float32, true)]));
        let d = Float64Array::from(vec![Some(0.5), Some(f64::NAN), Some(f64::INFINITY), Some(f64::NEG_INFINITY), None]);
        let f = Float32Array::from(vec![Some(0.1), Some(f32::NAN), None, Some(f32::NEG_INFINITY), Some(2.0)]);
        let b = RecordBatch::try_new(schema, vec![Arc::new(d), Arc::new(f)]).unwrap();
        let mut out = Vec::new();
        write_json_lines(&mut out, &[b]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"d":0.5,"f":0.1}"#,
                r#"{"d":"NaN","f":"NaN"}"#,
                r#"{"d":"Infinity","f":null}"#,
                r#"{"d":"-Infinity","f":"-Infinity"}"#,
                r#"{"d":null,"f":2.0}"#,
            ]
        );
    }
}
