//! The streaming reader.

use super::date::{parse_date, parse_month};
use super::layout::{self, BURDEN_CODES, DPC_RECORDS, Field, FileKind, Kind, Layout, SI_DAYS, TO_DAYS};
use super::{MAX_FIELDS, MAX_LINE, MAX_PROBLEMS, MAX_RECEIPT_BYTES};
use crate::Problem;
use encoding_rs::{DecoderResult, SHIFT_JIS};
use sha2::{Digest, Sha256};
use std::io::BufRead;

/// One record: its line and its fields, field 0 the record type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line it was read from (1-based).
    pub line: u64,
    /// The fields as text (CP932 decoded), field 0 the record type.
    pub fields: Vec<String>,
    /// SHA-256 of the line's bytes as they are in the file, without its CRLF (HX-12: anyone
    /// holding the file can compute it for any record).
    pub sha256: [u8; 32],
}

impl Record {
    /// The record type (`RE`, `SY`, …).
    pub fn id(&self) -> &str {
        self.field(0)
    }

    /// Field `n`; empty where the record has fewer.
    pub fn field(&self, n: usize) -> &str {
        self.fields.get(n).map_or("", String::as_str)
    }

    /// Field `n` as a number, where it is one of at most 12 digits (the longest numeric field,
    /// `GO`'s 総合計点数).
    pub fn number(&self, n: usize) -> Option<u64> {
        number_of(self.field(n))
    }
}

/// A receipt that passed every check: its `RE` record first, then the records that followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `RE` and its records, in file order.
    pub records: Vec<Record>,
    /// Whether it is a DPC receipt (it holds a `BU` 診断群分類 record).
    pub dpc: bool,
}

impl Receipt {
    /// The `RE` record.
    pub fn re(&self) -> Option<&Record> {
        self.records.first()
    }

    /// Its records of type `id`.
    pub fn of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.records.iter().filter(move |r| r.id() == id)
    }
}

/// A receipt refused: listed for the sender, never loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The line of its `RE` record.
    pub line: u64,
    /// Its レセプト番号 as written.
    pub number: String,
    /// Its lines.
    pub records: usize,
    /// What is wrong, each located: the problems of its lines, or — where every line reads —
    /// of the receipt as a whole; at most [`MAX_PROBLEMS`], then one saying how many more.
    pub problems: Vec<Problem>,
}

/// What a whole file held, once `GO` was read and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The file's kind.
    pub kind: Option<FileKind>,
    /// Receipts accepted.
    pub accepted: u64,
    /// Receipts rejected.
    pub rejected: u64,
    /// Lines read (header and `GO` included).
    pub records: u64,
    /// `HO` and `KO` records (`GO`'s 総件数).
    pub payer_records: u64,
    /// Σ of the main payers' 合計点数 (`GO`'s 総合計点数).
    pub total_points: u64,
    /// Whether `GO`'s 総合計点数 was compared: not where a rejected receipt's total could not
    /// be read (the sender is told of that receipt).
    pub total_checked: bool,
    /// `GO`'s マルチボリューム識別 (`99`: the last or only volume).
    pub volume: String,
    /// The file's bytes.
    pub bytes: u64,
    /// SHA-256 of the whole file, every byte read (HX-12).
    pub sha256: [u8; 32],
}

/// A line as read: a record, or a record that cannot be used.
enum Line {
    Good(Record),
    /// A line with problems: its fields as far as they could be read.
    Bad {
        line: u64,
        id: Option<String>,
        fields: Vec<String>,
        problems: Vec<Problem>,
    },
}

impl Line {
    fn id(&self) -> Option<&str> {
        match self {
            Line::Good(r) => Some(r.id()),
            Line::Bad { id, .. } => id.as_deref(),
        }
    }
    fn line(&self) -> u64 {
        match self {
            Line::Good(r) => r.line,
            Line::Bad { line, .. } => *line,
        }
    }
    fn fields(&self) -> &[String] {
        match self {
            Line::Good(r) => &r.fields,
            Line::Bad { fields, .. } => fields,
        }
    }
    fn number(&self, n: usize) -> Option<u64> {
        number_of(self.fields().get(n).map_or("", String::as_str))
    }
}

/// The reader's place in the file (an explicit state machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing read yet.
    Start,
    /// The header read; receipts (or `GO`) follow.
    Receipts,
    /// `GO` read and checked, or the file stopped: nothing more is given.
    Done,
}

/// Reads a UKE file receipt by receipt ([`Reader::next_receipt`]).
pub struct Reader<R> {
    file: String,
    input: R,
    line: u64,
    buf: Vec<u8>,
    state: State,
    kind: Option<FileKind>,
    header: Vec<Record>,
    /// The line that starts the next receipt (or `GO`), read ahead.
    ahead: Option<Line>,
    /// The レセプト番号 the next receipt must have (`None`: a later volume, any start).
    expect: Option<u64>,
    summary: Summary,
    /// Whether some rejected receipt's main payer total could not be read.
    points_unknown: bool,
    /// Every byte read so far.
    file_hash: Sha256,
}

impl<R: BufRead> Reader<R> {
    /// A reader of `input`, whose problems name `file`.
    pub fn new(file: &str, input: R) -> Reader<R> {
        Reader {
            file: file.to_owned(),
            input,
            line: 0,
            buf: Vec::new(),
            state: State::Start,
            kind: None,
            header: Vec::new(),
            ahead: None,
            expect: None,
            summary: Summary::default(),
            points_unknown: false,
            file_hash: Sha256::new(),
        }
    }

    /// The file's kind, once its header was read.
    pub fn kind(&self) -> Option<FileKind> {
        self.kind
    }

    /// The header records (`IR`; `YK`; `UK` and `IR`), once read.
    pub fn header(&self) -> &[Record] {
        &self.header
    }

    /// What the file held; complete once [`Reader::next_receipt`] gave `Ok(None)`.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    fn problem(&self, line: u64, record: Option<&str>, field: Option<(usize, &'static str)>, message: impl Into<String>) -> Problem {
        Problem { file: self.file.clone(), line, record: record.map(str::to_owned), field, message: message.into() }
    }

    /// The next receipt: `Ok(Some(Ok(receipt)))`, `Ok(Some(Err(rejected)))` for a receipt with
    /// problems (the reader goes on), `Ok(None)` once `GO` was read and the file checked whole,
    /// and `Err` for a problem that stops the file (after which the reader gives nothing more).
    ///
    /// Receipts given before `Ok(None)` are provisional: a problem that stops the file later
    /// (a missing receipt, a wrong `GO`, a truncated end) means none of the file is to be
    /// loaded. Stage them and commit only after `Ok(None)`.
    pub fn next_receipt(&mut self) -> Result<Option<Result<Receipt, Rejected>>, Problem> {
        let out = self.step();
        if out.is_err() {
            self.state = State::Done;
        }
        out
    }

    fn step(&mut self) -> Result<Option<Result<Receipt, Rejected>>, Problem> {
        match self.state {
            State::Done => return Ok(None),
            State::Start => self.read_header()?,
            State::Receipts => {}
        }
        let first = match self.ahead.take() {
            Some(l) => l,
            None => self.next_line()?.ok_or_else(|| self.truncated())?,
        };
        match first.id() {
            Some("GO") => {
                self.finish(first)?;
                Ok(None)
            }
            Some("RE") => self.receipt(first).map(Some),
            Some(other) => Err(self.problem(
                first.line(),
                Some(other),
                None,
                format!(
                    "RE の前に {other} があります（レセプトの外）/ {other} before any RE: outside a receipt, where RE or GO was expected"
                ),
            )),
            None => Err(self.unreadable(first)),
        }
    }

    fn truncated(&self) -> Problem {
        self.problem(
            self.line,
            None,
            None,
            format!(
                "ファイルが途中で終わっています（{} 行目の後に GO レコードがない）。送信元で作り直してください / the file ends at line {} without a GO record: it is truncated; have the sender produce it again",
                self.line, self.line
            ),
        )
    }

    fn unreadable(&self, line: Line) -> Problem {
        match line {
            Line::Bad { problems, line, .. } => {
                problems.into_iter().next().unwrap_or_else(|| self.problem(line, None, None, "読めない行 / an unreadable line"))
            }
            Line::Good(r) => self.problem(r.line, Some(r.id()), None, "予期しないレコード / an unexpected record"),
        }
    }

    /// Reads the header: `IR` (医科, 歯科 or 訪問看護), `YK` (調剤), or `UK` then `IR` (歯科).
    fn read_header(&mut self) -> Result<(), Problem> {
        let first = self.next_raw()?.ok_or_else(|| {
            self.problem(0, None, None, "空のファイルです。レセコンが出力した UKE ファイルを送ってください / the file is empty: send the UKE file the claims system wrote")
        })?;
        if let Some(p) = first.problem {
            return Err(p);
        }
        let id = first.fields.first().map(String::as_str).unwrap_or_default();
        let kind = match id {
            "IR" => match first.fields.get(3).map(String::as_str).and_then(FileKind::from_ir_table) {
                Some(kind) => kind,
                None => {
                    let v = first.fields.get(3).map_or("", String::as_str);
                    return Err(self.problem(
                        first.line,
                        Some("IR"),
                        Some((3, "点数表")),
                        format!(
                            "点数表 '{v}' は 1 医科・3 歯科・6 訪問看護 のいずれでもありません（調剤は YK で始まります）/ '{v}' is not 1 (medical), 3 (dental) or 6 (visiting nursing); pharmacy files start with YK"
                        ),
                    ));
                }
            },
            "YK" => FileKind::Pharmacy,
            "UK" => FileKind::Dental,
            _ if id.len() == 2 && id.bytes().all(|b| b.is_ascii_uppercase()) => {
                return Err(self.problem(
                    first.line,
                    Some(id),
                    None,
                    format!(
                        "最初のレコードが IR・YK・UK ではなく {id} です（請求ファイルではない）/ the file starts with {id}, not IR, YK or UK: not a claim file"
                    ),
                ));
            }
            _ => {
                return Err(self.problem(
                    first.line,
                    None,
                    Some((0, "レコード識別")),
                    "項目 0 が2文字のレコード識別ではありません（審査支払機関側の形式など、請求ファイルではない）/ field 0 is not a two-letter record type: not a claim file (a payer-side format?)",
                ));
            }
        };
        self.kind = Some(kind);
        self.summary.kind = Some(kind);
        let first = self.check(first);
        let first = self.header_record(first)?;
        let dental_uk = first.id() == "UK";
        self.header.push(first);
        if dental_uk {
            let ir = self.next_line()?.ok_or_else(|| self.truncated())?;
            let ir = self.header_record(ir)?;
            if ir.id() != "IR" {
                return Err(self.problem(
                    ir.line,
                    Some(ir.id()),
                    None,
                    format!("UK の次が IR ではなく {} です / UK is followed by {}, where IR was expected", ir.id(), ir.id()),
                ));
            }
            self.header.push(ir);
        }
        // The first volume numbers its receipts from 1; a later one goes on from the last.
        let volume = self.header.last().map(|h| if h.id() == "YK" { h.field(7) } else { h.field(8) }).unwrap_or("");
        self.expect = matches!(volume, "" | "00" | "01").then_some(1);
        self.state = State::Receipts;
        Ok(())
    }

    fn header_record(&self, line: Line) -> Result<Record, Problem> {
        match line {
            Line::Good(r) => Ok(r),
            bad => Err(self.unreadable(bad)),
        }
    }

    /// Reads one receipt from its `RE` line up to the next `RE` or `GO` (read ahead). Payer
    /// records count toward `GO` as they arrive; past [`MAX_RECEIPT_BYTES`] the receipt's
    /// lines are no longer kept (it is rejected) but still read and counted.
    fn receipt(&mut self, re: Line) -> Result<Result<Receipt, Rejected>, Problem> {
        let re_line = re.line();
        let number = re.fields().get(1).cloned().unwrap_or_default();
        // Receipts are numbered 1, 2, 3 … in a file: a gap or a repeat means records were lost.
        let n = re.number(1);
        match (n, self.expect) {
            (Some(0), _) => {
                return Err(self.problem(
                    re_line,
                    Some("RE"),
                    Some((1, "レセプト番号")),
                    "レセプト番号 0 はありません（1 から）/ receipt number 0: receipts are numbered from 1",
                ));
            }
            (Some(n), Some(want)) if n != want => {
                return Err(self.problem(
                    re_line,
                    Some("RE"),
                    Some((1, "レセプト番号")),
                    format!(
                        "レセプト番号が {want} ではなく {n} です（レセプトの欠落または重複）/ receipt number {n} where {want} was expected: a receipt is missing or repeated"
                    ),
                ));
            }
            _ => {}
        }
        self.expect = n.or(self.expect).and_then(|n| n.checked_add(1));
        let mut got = Gathered::default();
        got.take(re);
        let mut too_big = false;
        loop {
            let Some(line) = self.next_line()? else { return Err(self.truncated()) };
            match line.id() {
                Some("RE") | Some("GO") => {
                    self.ahead = Some(line);
                    break;
                }
                Some(id @ ("IR" | "YK" | "UK")) => {
                    return Err(self.problem(
                        line.line(),
                        Some(id),
                        None,
                        format!("{id} が2度目です（ファイルの連結？）/ a second {id}: two files joined?"),
                    ));
                }
                _ => {}
            }
            if too_big {
                // Counted toward GO, not kept.
                got.payers.see(&line);
                got.lines += 1;
                continue;
            }
            got.take(line);
            if got.bytes > MAX_RECEIPT_BYTES {
                too_big = true;
                got.records.clear();
                got.problems.push(self.problem(
                    re_line,
                    Some("RE"),
                    None,
                    format!(
                        "レセプトが {MAX_RECEIPT_BYTES} バイトを超えます（レコードが多すぎる）/ the receipt holds more than {MAX_RECEIPT_BYTES} bytes of records: far more than any claim"
                    ),
                ));
            }
        }
        let Gathered { mut problems, dropped, records, lines, payers, .. } = got;
        self.summary.payer_records += payers.count;
        match payers.main_total {
            Some(Some(p)) => self.summary.total_points = self.summary.total_points.saturating_add(p),
            Some(None) => self.points_unknown = true,
            None => {}
        }
        if dropped > 0 {
            problems.push(self.problem(re_line, Some("RE"), None, format!("ほか {dropped} 件の問題 / and {dropped} more problems")));
        }
        if problems.is_empty() {
            problems.extend(self.receipt_checks(&records));
        }
        if problems.is_empty() {
            self.summary.accepted += 1;
            let dpc = records.iter().any(|r| r.id() == "BU");
            Ok(Ok(Receipt { records, dpc }))
        } else {
            self.summary.rejected += 1;
            Ok(Err(Rejected { line: re_line, number, records: lines, problems }))
        }
    }

    /// The checks of a receipt as a whole (every line of it read).
    fn receipt_checks(&self, records: &[Record]) -> Vec<Problem> {
        let mut out = Vec::new();
        let Some(re) = records.first() else { return out };
        let kind = self.kind.unwrap_or(FileKind::Medical);
        let ho = records.iter().filter(|r| r.id() == "HO").count();
        let ko = records.iter().filter(|r| r.id() == "KO").count();
        let rtype = re.field(2).as_bytes();
        let type_problem = |msg: String| self.problem(re.line, Some("RE"), Some((2, "レセプト種別")), msg);
        if let [table, payer, count, _] = rtype {
            let stated = usize::from(count.wrapping_sub(b'0'));
            if stated != ho + ko {
                out.push(type_problem(format!(
                    "種別の3桁目は支払者 {stated} 件ですが、HO・KO は {} 件です / the type's third digit says {stated} payer(s), the receipt has {} HO/KO record(s)",
                    ho + ko,
                    ho + ko
                )));
            }
            // 医保・後期・退職 are paid by an insurer (one HO); 公費単独 by public funds alone.
            let insured = matches!(payer, b'1' | b'3' | b'4');
            if ho > 1 || (insured && ho == 0) || (!insured && ho > 0) {
                out.push(type_problem(format!(
                    "HO が {ho} 件です（種別の2桁目 {} では {} 件のはず）/ {ho} HO record(s): the type's second digit {} needs {}",
                    char::from(*payer),
                    usize::from(insured),
                    char::from(*payer),
                    usize::from(insured)
                )));
            }
            let want = kind.table();
            if *table != want {
                out.push(type_problem(format!(
                    "種別の1桁目 {} が {} ファイルの点数表 {} と違います / the type's first digit {} is not the {} file's table {}",
                    char::from(*table),
                    kind.name_ja(),
                    char::from(want),
                    char::from(*table),
                    kind.name_ja(),
                    char::from(want)
                )));
            }
        }
        let main = main_payer(records);
        if let Some(payer) = main
            && payer.number(5).is_none()
        {
            out.push(self.problem(
                payer.line,
                Some(payer.id()),
                Some((5, "合計点数")),
                "主たる支払者の合計点数が空です（数字が必要）/ the main payer's total is empty: a number is expected",
            ));
        }
        if kind != FileKind::Medical {
            return out;
        }
        // Days add up to the count, where days are written (from 2012-04 on); a blank 診療識別
        // is the one before (a CO's included).
        let mut sum = 0u64;
        let mut class = String::new();
        for r in records {
            let (first_day, count_at) = match r.id() {
                "SI" | "IY" => (SI_DAYS, 6),
                "TO" => (TO_DAYS, 6),
                "CO" => {
                    if !r.field(1).is_empty() {
                        class = r.field(1).to_owned();
                    }
                    continue;
                }
                _ => continue,
            };
            if !r.field(1).is_empty() {
                class = r.field(1).to_owned();
            }
            let days: Vec<u64> = (first_day..first_day + 31).filter_map(|i| r.number(i)).collect();
            let total: u64 = days.iter().sum();
            let count = r.number(count_at).unwrap_or(0);
            if !days.is_empty() && total != count {
                out.push(self.problem(
                    r.line,
                    Some(r.id()),
                    Some((count_at, "回数")),
                    format!("算定日の回数の和 {total} が回数 {count} と違います / the days add up to {total}, the count is {count}"),
                ));
            }
            // 食事・生活療養 (97) is priced in yen, outside the points.
            if class != "97"
                && let Some(points) = r.number(5)
            {
                sum = sum.saturating_add(points.saturating_mul(count));
            }
        }
        let dpc = records.iter().any(|r| r.id() == "BU");
        let stray: Vec<&str> = records.iter().map(Record::id).filter(|id| DPC_RECORDS.contains(id) && !dpc).collect();
        if let Some(id) = stray.first() {
            out.push(self.problem(
                re.line,
                Some("RE"),
                None,
                format!(
                    "DPC の {id} レコードがあるのに BU（診断群分類）がありません / a DPC {id} record without a BU (diagnosis group) record"
                ),
            ));
        }
        if !dpc
            && let Some(payer) = main
            && let Some(total) = payer.number(5)
            && total != sum
        {
            out.push(self.problem(
                payer.line,
                Some(payer.id()),
                Some((5, "合計点数")),
                format!(
                    "合計点数 {total} が明細の点数×回数の和 {sum} と違います / the total {total} is not the lines' points × counts, {sum}"
                ),
            ));
        }
        out
    }

    /// Checks `GO` against the file.
    fn finish(&mut self, go: Line) -> Result<(), Problem> {
        let go = match go {
            Line::Good(r) => r,
            bad => return Err(self.unreadable(bad)),
        };
        let s = &self.summary;
        if s.accepted + s.rejected == 0 {
            return Err(self.problem(go.line, Some("GO"), None, "レセプトが1件もありません / the file holds no receipt"));
        }
        if go.number(1) != Some(s.payer_records) {
            return Err(self.problem(
                go.line,
                Some("GO"),
                Some((1, "総件数")),
                format!(
                    "総件数 {} がファイルの HO・KO レコード数 {} と違います / the count {} is not the file's {} HO/KO records",
                    go.field(1),
                    s.payer_records,
                    go.field(1),
                    s.payer_records
                ),
            ));
        }
        if !self.points_unknown && go.number(2) != Some(s.total_points) {
            return Err(self.problem(
                go.line,
                Some("GO"),
                Some((2, "総合計点数")),
                format!(
                    "総合計点数 {} が各レセプトの合計点数の和 {} と違います / the total {} is not the receipts' sum {}",
                    go.field(2),
                    s.total_points,
                    go.field(2),
                    s.total_points
                ),
            ));
        }
        self.summary.total_checked = !self.points_unknown;
        self.summary.volume = go.field(3).to_owned();
        self.state = State::Done;
        // Nothing but the end-of-file byte may follow.
        if let Some(after) = self.next_raw()? {
            let id = after.fields.first().cloned().unwrap_or_default();
            return Err(self.problem(
                after.line,
                Some(&id),
                None,
                format!("GO の後に {id} があります（GO が最後のはず）/ {id} after GO, which must be last"),
            ));
        }
        Ok(())
    }

    /// The next line, checked as a record of the file's kind; `None` at the end.
    fn next_line(&mut self) -> Result<Option<Line>, Problem> {
        Ok(self.next_raw()?.map(|raw| self.check(raw)))
    }

    /// Checks a raw line against its layout.
    fn check(&self, raw: Raw) -> Line {
        if let Some(p) = raw.problem {
            return Line::Bad { line: raw.line, id: raw.fields.first().cloned(), fields: raw.fields, problems: vec![p] };
        }
        let sha256 = raw.sha256;
        let id = raw.fields.first().cloned().unwrap_or_default();
        let kind = self.kind.unwrap_or(FileKind::Medical);
        let Some(layout) = layout::layout(kind, &id) else {
            // Field 0 is quoted only where it looks like a record type: a line split in the
            // wrong place may start with a name.
            let shown = (id.len() == 2 && id.bytes().all(|b| b.is_ascii_uppercase())).then_some(id.as_str());
            let problem = self.problem(
                raw.line,
                shown,
                Some((0, "レコード識別")),
                match shown {
                    Some(id) => format!(
                        "{} ファイルにないレコード識別 '{id}' です / '{id}' is not a record type of a {} file",
                        kind.name_ja(),
                        kind.name_ja()
                    ),
                    None => format!(
                        "項目 0 がレコード識別（英大文字2文字）ではありません（値は表示しません）/ field 0 is not a record type (two capital letters); its value is not shown — was a line broken inside a record? ({} file)",
                        kind.name_ja()
                    ),
                },
            );
            let known = (id.len() == 2).then_some(id);
            return Line::Bad { line: raw.line, id: known, fields: raw.fields, problems: vec![problem] };
        };
        let problems = self.check_fields(&layout, raw.line, &raw.fields);
        let record = Record { line: raw.line, fields: raw.fields, sha256 };
        if problems.is_empty() {
            Line::Good(record)
        } else {
            Line::Bad { line: record.line, id: Some(id), fields: record.fields, problems }
        }
    }

    fn check_fields(&self, layout: &Layout, line: u64, fields: &[String]) -> Vec<Problem> {
        let mut out = Vec::new();
        if !layout.counts.is_empty() && !layout.counts.contains(&fields.len()) {
            let want: Vec<String> = layout.counts.iter().map(usize::to_string).collect();
            out.push(self.problem(
                line,
                Some(layout.id),
                None,
                format!(
                    "項目数が {} です（{}レコードは {} 項目）/ {} fields where a {} record has {}",
                    fields.len(),
                    layout.name,
                    want.join("・"),
                    fields.len(),
                    layout.id,
                    want.join(" or ")
                ),
            ));
            return out;
        }
        for (i, value) in fields.iter().enumerate() {
            let name = layout.fields.iter().find(|f| f.at == i).map_or("", |f| f.name);
            if let Some(c) = value.chars().find(|c| c.is_control()) {
                out.push(self.problem(
                    line,
                    Some(layout.id),
                    Some((i, name)),
                    format!(
                        "制御文字 U+{:04X} があります（取り除いてください）/ a control character U+{:04X}: remove it",
                        u32::from(c),
                        u32::from(c)
                    ),
                ));
            }
            // CP932's user-defined area (0xF040–0xF9FC) decodes to private-use characters whose
            // meaning only the sender's machine knows: the specification has no 外字.
            if let Some(c) = value.chars().find(|c| is_private(*c)) {
                out.push(self.problem(
                    line,
                    Some(layout.id),
                    Some((i, name)),
                    format!(
                        "外字（利用者定義文字 U+{:04X}）は使えません。仕様の文字に置き換えてください / a user-defined character (U+{:04X}): UKE files carry none; replace it as the specification says",
                        u32::from(c),
                        u32::from(c)
                    ),
                ));
            }
        }
        for field in layout.fields {
            let value = fields.get(field.at).map_or("", String::as_str);
            if let Err(why) = check_value(field, value) {
                // A field that identifies a person is named, never quoted: problems go back to
                // the sender and into the operator's reports (HX-2).
                let why = if identifying(field.name) && !value.is_empty() {
                    format!(
                        "{} が不正です（{}）。個人を特定する項目のため値は表示しません / {} is not valid ({}); its value is not shown: it identifies a person",
                        field.name,
                        expectation_ja(field.kind),
                        field.name,
                        expectation_en(field.kind)
                    )
                } else {
                    why
                };
                out.push(self.problem(line, Some(layout.id), Some((field.at, field.name)), why));
            }
        }
        out.truncate(MAX_PROBLEMS);
        out
    }

    /// The next line's bytes, decoded and split; `None` at the end of the file.
    fn next_raw(&mut self) -> Result<Option<Raw>, Problem> {
        self.buf.clear();
        let read = std::io::Read::take(&mut self.input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| self.problem(self.line + 1, None, None, format!("読めません / cannot read: {e}")))?;
        if read == 0 {
            self.summary.sha256 = self.file_hash.clone().finalize().into();
            return Ok(None);
        }
        self.file_hash.update(&self.buf);
        self.summary.bytes += read as u64;
        self.line += 1;
        let line = self.line;
        if self.buf.len() > MAX_LINE {
            return Err(self.problem(
                line,
                None,
                None,
                format!("行が {MAX_LINE} バイトを超えます（改行がない？）/ a line longer than {MAX_LINE} bytes: no line ends?"),
            ));
        }
        // The end-of-file byte, last in the file.
        if self.buf.first() == Some(&0x1A) {
            let mut rest = [0u8; 1];
            return match (self.buf.len(), std::io::Read::read(&mut self.input, &mut rest)) {
                (1, Ok(0)) => {
                    self.line -= 1;
                    self.summary.sha256 = self.file_hash.clone().finalize().into();
                    Ok(None)
                }
                _ => Err(self.problem(
                    line,
                    None,
                    None,
                    "0x1A の後にデータがあります（0x1A は最後のはず）/ data after the end-of-file byte 0x1A, which must be last",
                )),
            };
        }
        let Some(body) = self.buf.strip_suffix(b"\r\n") else {
            let message = if self.buf.ends_with(b"\n") {
                "行末が LF だけです（CRLF のはず）。送信元の出力のまま送ってください / the line ends in LF alone, not CRLF: send the file as the claims system wrote it"
            } else {
                "最後の行に改行がありません（途中で切れている）/ the last line has no CRLF: the file is cut short"
            };
            return Err(self.problem(line, None, None, message));
        };
        self.summary.records += 1;
        let sha256: [u8; 32] = Sha256::digest(body).into();
        if looks_like_utf8(body) {
            return Err(self.problem(
                line,
                None,
                None,
                "UTF-8 の文字があります。UKE は Shift_JIS（CP932）です：レセコンの出力をそのまま送ってください / UTF-8 text: UKE files are Shift_JIS (CP932); send the file as the claims system wrote it",
            ));
        }
        let id = body.get(..2).and_then(|b| std::str::from_utf8(b).ok()).map(str::to_owned);
        let text = match decode(body) {
            Ok(t) => t,
            Err(at) => {
                let field = body.get(..at).map_or(0, |b| b.iter().filter(|c| **c == b',').count());
                let problem = self.problem(
                    line,
                    id.as_deref(),
                    Some((field, "")),
                    format!("{} バイト目が Shift_JIS（CP932）として読めません / byte {} is not Shift_JIS (CP932)", at + 1, at + 1),
                );
                return Ok(Some(Raw { line, fields: id.into_iter().collect(), problem: Some(problem), sha256 }));
            }
        };
        let fields: Vec<String> = text.split(',').take(MAX_FIELDS + 1).map(str::to_owned).collect();
        if fields.len() > MAX_FIELDS {
            let problem = self.problem(
                line,
                id.as_deref(),
                None,
                format!("項目が {MAX_FIELDS} を超えます（どのレコードより多い）/ more than {MAX_FIELDS} fields: more than any record has"),
            );
            return Ok(Some(Raw { line, fields: id.into_iter().collect(), problem: Some(problem), sha256 }));
        }
        Ok(Some(Raw { line, fields, problem: None, sha256 }))
    }
}

/// A receipt's lines as they are read.
#[derive(Default)]
struct Gathered {
    problems: Vec<Problem>,
    /// Problems past [`MAX_PROBLEMS`], counted.
    dropped: usize,
    records: Vec<Record>,
    /// About the memory its records take.
    bytes: usize,
    lines: usize,
    payers: Payers,
}

impl Gathered {
    fn take(&mut self, line: Line) {
        self.lines += 1;
        self.payers.see(&line);
        self.bytes += line.fields().iter().map(|f| f.len() + 24).sum::<usize>();
        match line {
            Line::Good(r) => self.records.push(r),
            Line::Bad { problems, .. } => {
                for p in problems {
                    if self.problems.len() < MAX_PROBLEMS {
                        self.problems.push(p);
                    } else {
                        self.dropped += 1;
                    }
                }
            }
        }
    }
}

/// A receipt's payer records as they arrive: their count, and its main payer's total (`HO`, else
/// the first `KO`): `Some(None)` where that total does not read.
#[derive(Default)]
struct Payers {
    count: u64,
    ho_seen: bool,
    main_total: Option<Option<u64>>,
}

impl Payers {
    fn see(&mut self, line: &Line) {
        match line.id() {
            Some("HO") => {
                self.count += 1;
                if !self.ho_seen {
                    self.ho_seen = true;
                    self.main_total = Some(line.number(5));
                }
            }
            Some("KO") => {
                self.count += 1;
                if self.main_total.is_none() {
                    self.main_total = Some(line.number(5));
                }
            }
            _ => {}
        }
    }
}

/// A line split into fields, or a problem that made its fields unreadable.
struct Raw {
    line: u64,
    fields: Vec<String>,
    problem: Option<Problem>,
    sha256: [u8; 32],
}

/// Whether `c` is in a private-use area (CP932's user-defined characters decode there).
pub(super) fn is_private(c: char) -> bool {
    ('\u{E000}'..='\u{F8FF}').contains(&c)
}

/// A line of UTF-8 Japanese: valid UTF-8 with at least two characters of three bytes or more.
/// CP932 text is seldom valid UTF-8 at all; two such characters by chance are far rarer still
/// (one can be a kanji followed by half-width kana), while any Japanese word in UTF-8 has them.
fn looks_like_utf8(bytes: &[u8]) -> bool {
    bytes.iter().any(|b| *b >= 0x80) && std::str::from_utf8(bytes).is_ok_and(|s| s.chars().filter(|c| c.len_utf8() >= 3).nth(1).is_some())
}

/// Decodes CP932; the offset of the first byte that is not, on failure.
fn decode(bytes: &[u8]) -> Result<String, usize> {
    let mut decoder = SHIFT_JIS.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(decoder.max_utf8_buffer_length_without_replacement(bytes.len()).unwrap_or(bytes.len() * 3));
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut out, true);
    match result {
        DecoderResult::InputEmpty => Ok(out),
        DecoderResult::Malformed(bad, extra) => Err(read.saturating_sub(usize::from(bad) + usize::from(extra))),
        DecoderResult::OutputFull => Err(read),
    }
}

/// The main payer of a receipt: its `HO`, else its first `KO`.
fn main_payer(records: &[Record]) -> Option<&Record> {
    records.iter().find(|r| r.id() == "HO").or_else(|| records.iter().find(|r| r.id() == "KO"))
}

/// `s` as a number, where it is one of at most 12 digits (the longest numeric field, `GO`'s
/// 総合計点数): arithmetic on it cannot overflow.
fn number_of(s: &str) -> Option<u64> {
    (s.len() <= 12 && all_digits(s)).then(|| s.parse().ok()).flatten()
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a field names or numbers a person (its value never appears in a problem).
pub fn identifying(name: &str) -> bool {
    matches!(name, "氏名" | "カタカナ氏名" | "生年月日" | "記号" | "番号" | "公費受給者番号" | "枝番")
}

fn expectation_ja(kind: Kind) -> &'static str {
    match kind {
        Kind::Date => "西暦 YYYYMMDD か和暦 GYYMMDD の実在する日付のはず",
        Kind::Number(_) | Kind::Digits(_) => "数字のはず",
        _ => "仕様の形式のはず",
    }
}

fn expectation_en(kind: Kind) -> &'static str {
    match kind {
        Kind::Date => "a real date, YYYYMMDD or GYYMMDD, expected",
        Kind::Number(_) | Kind::Digits(_) => "digits expected",
        _ => "the specification's form expected",
    }
}

/// Checks one field's value; the message says what was expected.
fn check_value(field: &Field, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return if field.required {
            Err(format!("必須項目が空です（{} が必要）/ a required field is empty: a value is expected", field.name))
        } else {
            Ok(())
        };
    }
    let bad = |ja: &str, en: &str| Err(format!("'{value}' は不正です（{ja}）/ '{value}' is not valid: {en}"));
    match field.kind {
        Kind::Text => Ok(()),
        Kind::Digits(n) if value.len() == n && all_digits(value) => Ok(()),
        Kind::Digits(n) => bad(&format!("数字 {n} 桁のはず"), &format!("{n} digits expected")),
        Kind::Number(n) if value.len() <= n && all_digits(value) => Ok(()),
        Kind::Number(n) => bad(&format!("数字 1〜{n} 桁のはず"), &format!("1 to {n} digits expected")),
        Kind::Decimal => {
            let mut parts = value.splitn(3, '.');
            let whole = parts.next().unwrap_or("");
            let frac = parts.next();
            let ok = parts.next().is_none() && value.len() <= 16 && all_digits(whole) && frac.is_none_or(all_digits);
            if ok {
                Ok(())
            } else {
                bad("数字と小数点1つまでの数量のはず", "a quantity (digits, at most one point) expected")
            }
        }
        Kind::Date => parse_date(value).map(|_| ()),
        Kind::Month => parse_month(value).map(|_| ()),
        Kind::OneOf(list) if list.contains(&value) => Ok(()),
        Kind::OneOf(list) => bad(&format!("{} のいずれかのはず", list.join("・")), &format!("one of {} expected", list.join(", "))),
        Kind::Prefecture => match value.parse::<u8>() {
            Ok(1..=47) if value.len() == 2 && all_digits(value) => Ok(()),
            _ => bad("都道府県番号 01〜47 のはず", "a prefecture number 01–47 expected"),
        },
        Kind::ReceiptType => check_receipt_type(value),
        Kind::Insurer => check_insurer(value),
        Kind::Modifiers if value.len().is_multiple_of(4) && value.len() <= 80 && all_digits(value) => Ok(()),
        Kind::Modifiers => bad("4桁の修飾語コードを20個まで連結したもののはず", "4-digit modifier codes joined, at most 20, expected"),
        Kind::Burden if BURDEN_CODES.contains(&value) => Ok(()),
        Kind::Burden => bad("負担区分コード（1〜7, 9, B, C, E, G〜Z）のはず", "a burden code (1–7, 9, B, C, E, G–Z) expected"),
        Kind::Code { lead } if value.len() == 9 && all_digits(value) && value.as_bytes().first() == Some(&lead) => Ok(()),
        Kind::Code { lead } => bad(
            &format!("{} で始まる9桁のコードのはず", char::from(lead)),
            &format!("a 9-digit code beginning with {} expected", char::from(lead)),
        ),
    }
}

/// レセプト種別, digit by digit (data.md §1.3).
fn check_receipt_type(value: &str) -> Result<(), String> {
    let fail = |ja: &str, en: &str| {
        Err(format!(
            "レセプト種別 '{value}' が不正です（{ja}）/ receipt type '{value}' is not valid ({en}): 4 digits — table, main payer 1–4, payers 1–5, patient class"
        ))
    };
    if value.len() != 4 || !all_digits(value) {
        return fail("4桁の数字でない", "not 4 digits");
    }
    let d: Vec<u8> = value.bytes().map(|b| b - b'0').collect();
    let [table, payer, count, class] = d.as_slice() else { return fail("4桁の数字でない", "not 4 digits") };
    if ![1, 3, 4, 6].contains(table) {
        return fail("1桁目は 1・3・4・6", "the first digit is 1, 3, 4 or 6");
    }
    if !(1..=4).contains(payer) {
        return fail("2桁目は 1〜4", "the second digit is 1–4");
    }
    if !(1..=5).contains(count) {
        return fail("3桁目は 1〜5", "the third digit is 1–5");
    }
    if *payer == 2 && !(1..=2).contains(class) {
        return fail("公費単独の4桁目は 1 か 2", "a public-expense type ends in 1 or 2");
    }
    if *table == 4 && class % 2 == 1 {
        return fail("調剤の4桁目は偶数", "a pharmacy type ends in an even digit");
    }
    Ok(())
}

/// 保険者番号: 8 digits, or 6 right-aligned with spaces; the last digit checks the others.
fn check_insurer(value: &str) -> Result<(), String> {
    let digits = value.trim_start_matches(' ');
    if !(all_digits(digits) && (digits.len() == 8 || digits.len() == 6) && value.len() <= 8) {
        return Err(format!(
            "保険者番号 '{value}' は8桁（国保は右寄せの6桁）の数字ではありません / insurer number '{value}' is not 8 digits (or 6, right-aligned, for 国保)"
        ));
    }
    let (body, check) = digits.split_at(digits.len() - 1);
    let want = layout::insurer_check_digit(body).unwrap_or(0);
    if check != char::from(b'0' + want).to_string() {
        return Err(format!(
            "保険者番号 '{value}' の検証番号が合いません（{want} のはず）：番号の写し誤り / the check digit of insurer number '{value}' is wrong ({want} expected): a mistyped number"
        ));
    }
    Ok(())
}
