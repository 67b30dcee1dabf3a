//! 特定健診 results as HL7 CDA R2 documents (`hc08`, one person's checkup per document;
//! `../shared/domain/data.md` §5.1–§5.2; HX-1).
//!
//! [`read_document`] reads what the platform needs — the report kind, the 健診機関, the date,
//! the person's insurer, card numbers, kana name, sex and birth date, and every result item
//! with its JLAC10 code and value — and checks each against the specification's code
//! systems. [`write_document`] writes the same fields back as a CDA document that
//! [`read_document`] reads.
//!
//! XML from outside is an attack surface of its own: the reader refuses any `DOCTYPE` (entity
//! declarations are how external entities reach files and hosts, and how a "billion laughs"
//! expands a few bytes into gigabytes) and any entity reference but XML's five predefined ones
//! and character references, and bounds the document's size ([`MAX_DOCUMENT`]), depth
//! ([`MAX_DEPTH`]) and result items ([`MAX_ITEMS`]). Only UTF-8 documents are read.

use crate::uke::date::{Date, parse_date};
use crate::{FormatError, Problem};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use std::collections::BTreeSet;

/// The CDA namespace.
pub const NS_CDA: &str = "urn:hl7-org:v3";
/// 報告区分 (`ClinicalDocument/code`): 10 特定健診, 21–25 保健指導.
pub const OID_REPORT: &str = "1.2.392.200119.6.1001";
/// 保険者番号.
pub const OID_INSURER: &str = "1.2.392.200119.6.101";
/// 健診機関 (10 digits).
pub const OID_INSTITUTION: &str = "1.2.392.200119.6.102";
/// 被保険者証 記号.
pub const OID_KIGO: &str = "1.2.392.200119.6.204";
/// 被保険者証 番号.
pub const OID_BANGO: &str = "1.2.392.200119.6.205";
/// 被保険者証 枝番.
pub const OID_EDABAN: &str = "1.2.392.200119.6.211";
/// 特定健診項目コード (JLAC10, 17 characters).
pub const OID_ITEM: &str = "1.2.392.200119.6.1005";
/// Sex (男女区分) as real archives write it; `administrativeGenderCode` is 1 or 2.
pub const OID_SEX: &str = "1.2.392.200119.6.1104";
/// The 特定健診 template.
pub const OID_TEMPLATE: &str = "1.2.392.200119.6.1009";

/// The largest document read (bytes): a checkup with every item is a few tens of kilobytes.
pub const MAX_DOCUMENT: usize = 1024 * 1024;
/// The deepest element nesting read.
pub const MAX_DEPTH: usize = 64;
/// The most result items one document may carry.
pub const MAX_ITEMS: usize = 2_000;

/// One person's checkup.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkup {
    /// 報告区分 (`10` = 特定健診).
    pub report: String,
    /// The 健診機関 number (10 digits).
    pub institution: String,
    /// The day of the checkup.
    pub date: Date,
    /// 保険者番号 (up to 8 digits).
    pub insurer: String,
    /// 被保険者証 記号, 番号 and 枝番, where given.
    pub kigo: Option<String>,
    /// 番号.
    pub bango: Option<String>,
    /// 枝番.
    pub edaban: Option<String>,
    /// The person's name in kana.
    pub kana_name: String,
    /// 1 男, 2 女.
    pub sex: u8,
    /// The birth date.
    pub birth: Date,
    /// The result items, in document order.
    pub items: Vec<Item>,
}

/// One result item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Its JLAC10 code (17 characters).
    pub code: String,
    /// Its value.
    pub value: Value,
}

/// A result item's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A measurement (`PQ`): the number as written, and its unit.
    Quantity {
        /// The number as written.
        value: String,
        /// The unit (UCUM), possibly empty.
        unit: String,
    },
    /// A code (`CD`/`CO`): the code and its code system.
    Coded {
        /// The code.
        code: String,
        /// Its code system's OID.
        system: String,
    },
    /// Text (`ST`).
    Text(String),
}

/// The XML Schema instance namespace (`xsi:type`).
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The most problems listed for one document (then one saying how many more).
pub const MAX_PROBLEMS: usize = 100;

/// 報告区分 codes read: 10 特定健診, 21–25 保健指導.
const REPORTS: [&str; 6] = ["10", "21", "22", "23", "24", "25"];

/// A value read once, with its line.
type Once = Option<(String, u64)>;

/// A result item as it is read.
#[derive(Default)]
struct Frame {
    line: u64,
    code: Option<(String, String)>,
    value: Option<Value>,
}

/// What has been read so far.
#[derive(Default)]
struct Scan {
    report: Option<((String, String), u64)>,
    institution: Once,
    service_date: Once,
    ids: Vec<(String, String, u64)>,
    name: Once,
    sex: Once,
    birth: Once,
    record_targets: usize,
    items: Vec<Frame>,
    /// The observation being read.
    open: Option<Frame>,
    /// Text of the element being read (a name or an `ST` value).
    text: Option<String>,
    roots: usize,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("属性が読めません（{err}）/ an unreadable attribute ({err}): name=\"value\" expected"))?;
        if a.key.as_ref() == name {
            let v = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| format!("属性 {name} の値が読めません（定義のない実体参照など）/ the value of {name} does not read (an undefined entity?): {err}"))?;
            if v.chars().any(char::is_control) {
                return Err(format!("属性 {name} に制御文字があります / a control character in {name}"));
            }
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// Sets `slot` once; a second, different value is a problem (two persons in one document).
fn once(slot: &mut Once, value: Option<String>, line: u64, what: &str) -> Result<(), String> {
    let Some(value) = value else { return Ok(()) };
    match slot {
        Some((v, _)) if *v != value => Err(format!(
            "{what} が2つあります（'{v}' と '{value}'）：1文書は1人分のはず / two {what} values ('{v}' and '{value}'): a document holds one person"
        )),
        Some(_) => Ok(()),
        None => {
            *slot = Some((value, line));
            Ok(())
        }
    }
}

/// Reads one CDA document. Every problem found is given (at most [`MAX_PROBLEMS`]), each with
/// its line; `name` is the document's name (its path in the archive).
pub fn read_document(name: &str, bytes: &[u8]) -> Result<Checkup, Vec<Problem>> {
    let problem = |line: u64, element: Option<&str>, message: String| Problem {
        file: name.to_owned(),
        line,
        record: element.map(str::to_owned),
        field: None,
        message,
    };
    if bytes.len() > MAX_DOCUMENT {
        return Err(vec![problem(
            0,
            None,
            format!("文書が {MAX_DOCUMENT} バイトを超えます / the document is larger than {MAX_DOCUMENT} bytes"),
        )]);
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body.get(..e.valid_up_to()).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count() as u64) + 1;
        vec![problem(
            line,
            None,
            "UTF-8 ではありません（CDA 文書は UTF-8 で読みます）/ not UTF-8: CDA documents are read as UTF-8".to_owned(),
        )]
    })?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<String> = Vec::new();
    let mut scan = Scan::default();
    let mut problems = Vec::new();
    let mut more = 0usize;
    let mut push = |problems: &mut Vec<Problem>, p: Problem| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(p);
        } else {
            more += 1;
        }
    };
    // Lines counted as the reader moves on (never from the start again).
    let (mut counted, mut line) = (0usize, 1u64);
    loop {
        let event = reader.read_event();
        let now = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX).min(text.len());
        line += text.as_bytes().get(counted..now).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count() as u64);
        counted = counted.max(now);
        let at = line;
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                push(
                    &mut problems,
                    problem(at, stack.last().map(String::as_str), format!("XML として読めません（{e}）/ not well-formed XML: {e}")),
                );
                return Err(problems);
            }
        };
        match event {
            Event::Decl(d) => {
                if let Some(Ok(enc)) = d.encoding()
                    && !enc.eq_ignore_ascii_case("utf-8")
                {
                    let enc = enc.into_owned();
                    push(
                        &mut problems,
                        problem(at, None, format!("文字コード {enc} は読めません（UTF-8 のみ）/ encoding {enc}: only UTF-8 is read")),
                    );
                    return Err(problems);
                }
            }
            Event::DocType(_) => {
                push(&mut problems, problem(
                    at,
                    None,
                    "DOCTYPE は受け付けません（外部実体・実体展開の攻撃を防ぐため。CDA 文書には不要）/ a DOCTYPE is refused: CDA documents need none, and its entity declarations can reach outside (external entities) or expand without bound (billion laughs)".to_owned(),
                ));
                return Err(problems);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r.xml_content(XmlVersion::Implicit1_0)).map(str::to_owned),
                    Err(_) => None,
                };
                match resolved {
                    Some(s) => {
                        if let Some(t) = scan.text.as_mut() {
                            t.push_str(&s);
                        }
                    }
                    None => {
                        let n = r.xml_content(XmlVersion::Implicit1_0).into_owned();
                        push(
                            &mut problems,
                            problem(
                                at,
                                stack.last().map(String::as_str),
                                format!(
                                    "実体参照 &{n}; は定義されていません（XML の5つと文字参照のみ）/ the entity &{n}; is not defined: only XML's five and character references are read"
                                ),
                            ),
                        );
                        return Err(problems);
                    }
                }
            }
            Event::Text(t) => {
                if let Some(s) = scan.text.as_mut() {
                    s.push_str(&t.xml_content(XmlVersion::Implicit1_0));
                }
            }
            Event::CData(c) => {
                if let Some(s) = scan.text.as_mut() {
                    s.push_str(&c.xml_content(XmlVersion::Implicit1_0));
                }
            }
            Event::Start(e) => {
                let n = e.name().as_ref().to_owned();
                if stack.len() >= MAX_DEPTH {
                    push(
                        &mut problems,
                        problem(at, Some(&n), format!("要素の入れ子が {MAX_DEPTH} 段を超えます / elements nested deeper than {MAX_DEPTH}")),
                    );
                    return Err(problems);
                }
                if let Err(m) = element(&mut scan, &stack, &n, &e, at) {
                    push(&mut problems, problem(at, Some(&n), m));
                }
                stack.push(n);
            }
            Event::Empty(e) => {
                let n = e.name().as_ref().to_owned();
                if let Err(m) = element(&mut scan, &stack, &n, &e, at) {
                    push(&mut problems, problem(at, Some(&n), m));
                }
                end(&mut scan, &stack, &n);
            }
            Event::End(_) => {
                if let Some(n) = stack.pop() {
                    end(&mut scan, &stack, &n);
                }
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    push(
                        &mut problems,
                        problem(
                            at,
                            Some(open),
                            format!(
                                "文書が </{open}> の前で終わっています（途中で切れている）/ the document ends before </{open}>: it is cut short"
                            ),
                        ),
                    );
                    return Err(problems);
                }
                break;
            }
            Event::Comment(_) | Event::PI(_) => {}
        }
        if scan.items.len() > MAX_ITEMS {
            push(&mut problems, problem(at, None, format!("結果項目が {MAX_ITEMS} を超えます / more than {MAX_ITEMS} result items")));
            return Err(problems);
        }
    }
    let checkup = finish(scan, &problem, &mut problems);
    if more > 0 {
        problems.push(problem(0, None, format!("ほか {more} 件の問題 / and {more} more problems")));
    }
    match checkup {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(problems),
    }
}
/// Takes in element `n` (its ancestors in `stack`).
fn element(scan: &mut Scan, stack: &[String], n: &str, e: &BytesStart<'_>, at: u64) -> Result<(), String> {
    // Elements are CDA's own: no prefixed names, no other default namespace below the root.
    if n.contains(':') {
        return Err(format!(
            "接頭辞付きの要素 {n} は読めません（CDA の名前空間のみ）/ a prefixed element {n}: only unprefixed CDA elements are read"
        ));
    }
    if stack.is_empty() {
        scan.roots += 1;
        if scan.roots > 1 {
            return Err(format!("2つ目の最上位要素 {n} があります / a second root element {n}"));
        }
        if n != "ClinicalDocument" {
            return Err(format!("最上位の要素が ClinicalDocument ではなく {n} です / the root element is {n}, not ClinicalDocument"));
        }
        if attr(e, "xmlns")?.as_deref() != Some(NS_CDA) {
            return Err(format!("名前空間が {NS_CDA} ではありません / the namespace is not {NS_CDA}"));
        }
        if let Some(xsi) = attr(e, "xmlns:xsi")?
            && xsi != NS_XSI
        {
            return Err(format!("xmlns:xsi が {NS_XSI} ではありません / xmlns:xsi is not {NS_XSI}"));
        }
        return Ok(());
    }
    if let Some(ns) = attr(e, "xmlns")?
        && ns != NS_CDA
    {
        return Err(format!("要素 {n} が別の名前空間 {ns} を宣言しています / element {n} declares another namespace, {ns}"));
    }
    let path = stack.iter().skip(1).map(String::as_str).chain(std::iter::once(n)).collect::<Vec<_>>().join("/");
    let in_observation = stack.iter().any(|s| s == "observation");
    match path.as_str() {
        "code" => {
            let code = (attr(e, "code")?.unwrap_or_default(), attr(e, "codeSystem")?.unwrap_or_default());
            if scan.report.is_some() {
                return Err("報告区分が2つあります / two report kinds".to_owned());
            }
            scan.report = Some((code, at));
        }
        "recordTarget" => {
            scan.record_targets += 1;
            if scan.record_targets > 1 {
                return Err(
                    "recordTarget が2つあります：1文書は1人分のはず / two recordTarget elements: a document holds one person".to_owned()
                );
            }
        }
        "recordTarget/patientRole/id" => {
            if let (Some(root), Some(ext)) = (attr(e, "root")?, attr(e, "extension")?) {
                if scan.ids.iter().any(|(r, _, _)| *r == root) {
                    return Err(format!("id {root} が2つあります / two ids of {root}"));
                }
                scan.ids.push((root, ext, at));
            }
        }
        "recordTarget/patientRole/patient/name" => scan.text = Some(String::new()),
        "recordTarget/patientRole/patient/administrativeGenderCode" => once(&mut scan.sex, attr(e, "code")?, at, "性別 / sex")?,
        "recordTarget/patientRole/patient/birthTime" => once(&mut scan.birth, attr(e, "value")?, at, "生年月日 / birth date")?,
        "documentationOf/serviceEvent/effectiveTime" => once(&mut scan.service_date, attr(e, "value")?, at, "健診日 / checkup date")?,
        "documentationOf/serviceEvent/effectiveTime/low" => once(&mut scan.service_date, attr(e, "value")?, at, "健診日 / checkup date")?,
        p if p.starts_with("author/") && n == "id" && attr(e, "root")?.as_deref() == Some(OID_INSTITUTION) => {
            once(&mut scan.institution, attr(e, "extension")?, at, "健診機関番号 / checkup institution")?;
        }
        _ if n == "observation" => {
            if in_observation {
                return Err(
                    "結果項目の中の結果項目は読めません（entryRelationship など）/ an observation inside an observation is not read"
                        .to_owned(),
                );
            }
            scan.open = Some(Frame { line: at, ..Frame::default() });
        }
        _ if stack.last().is_some_and(|p| p == "observation") && (n == "code" || n == "value") => {
            let Some(frame) = scan.open.as_mut() else { return Ok(()) };
            if n == "code" {
                if frame.code.is_some() {
                    return Err("結果項目に code が2つあります / an observation with two codes".to_owned());
                }
                frame.code = Some((attr(e, "code")?.unwrap_or_default(), attr(e, "codeSystem")?.unwrap_or_default()));
                return Ok(());
            }
            if frame.value.is_some() {
                return Err("結果項目に value が2つあります / an observation with two values".to_owned());
            }
            let kind = attr(e, "xsi:type")?.unwrap_or_default();
            frame.value = Some(match kind.as_str() {
                "PQ" => Value::Quantity { value: attr(e, "value")?.unwrap_or_default(), unit: attr(e, "unit")?.unwrap_or_default() },
                "CD" | "CO" | "CE" => {
                    Value::Coded { code: attr(e, "code")?.unwrap_or_default(), system: attr(e, "codeSystem")?.unwrap_or_default() }
                }
                "ST" => {
                    scan.text = Some(String::new());
                    Value::Text(String::new())
                }
                other => {
                    return Err(format!(
                        "値の型 xsi:type='{other}' は読めません（PQ・CD・CO・CE・ST）/ value type xsi:type='{other}' is not read: PQ, CD, CO, CE or ST expected"
                    ));
                }
            });
        }
        _ => {}
    }
    Ok(())
}

/// Leaves element `n`: the text it gathered goes where it belongs.
fn end(scan: &mut Scan, stack: &[String], n: &str) {
    let parent = stack.last().map(String::as_str);
    match (n, parent) {
        // Values as written, without the indentation around them.
        ("name", Some("patient")) if stack.len() == 4 => {
            let t = scan.text.take().map(|t| t.trim().to_owned()).unwrap_or_default();
            if scan.name.is_none() {
                scan.name = Some((t, 0));
            }
        }
        ("value", Some("observation")) => {
            if let Some(t) = scan.text.take()
                && let Some(Frame { value: Some(Value::Text(v)), .. }) = scan.open.as_mut()
            {
                *v = t.trim().to_owned();
            }
        }
        ("observation", _) => {
            if let Some(frame) = scan.open.take() {
                scan.items.push(frame);
            }
        }
        _ => {}
    }
}

/// Whether `s` is a kana name: katakana (full- or half-width), the long vowel mark, the middle
/// dot and spaces.
fn is_kana_name(s: &str) -> bool {
    s.chars().all(|c| matches!(c, '\u{30A1}'..='\u{30FC}' | '\u{FF66}'..='\u{FF9F}' | ' ' | '\u{3000}'))
}

/// An HL7 TS value as a date: `YYYYMMDD`, optionally followed by a time and zone.
fn ts_date(v: &str) -> Result<Date, String> {
    let ok = v.len() >= 8
        && v.bytes().take(8).all(|b| b.is_ascii_digit())
        && v.bytes().skip(8).all(|b| b.is_ascii_digit() || b == b'+' || b == b'-' || b == b'.');
    if !ok {
        return Err(format!("'{v}' は日付ではありません（YYYYMMDD のはず）/ '{v}' is not a date: YYYYMMDD expected"));
    }
    parse_date(v.get(..8).unwrap_or(v))
}

/// Checks what was read and builds the checkup.
fn finish(scan: Scan, problem: &dyn Fn(u64, Option<&str>, String) -> Problem, problems: &mut Vec<Problem>) -> Option<Checkup> {
    let report = match scan.report {
        Some(((code, system), _)) if system == OID_REPORT && REPORTS.contains(&code.as_str()) => Some(code),
        Some(((code, system), line)) => {
            problems.push(problem(
                line,
                Some("code"),
                format!("報告区分 '{code}'（{system}）が不正です（{OID_REPORT} の 10・21〜25 のはず）/ report kind '{code}' ({system}) is not 10 or 21–25 of {OID_REPORT}"),
            ));
            None
        }
        None => {
            problems.push(problem(
                0,
                Some("code"),
                "報告区分（ClinicalDocument/code）がありません / no report kind: ClinicalDocument/code expected".to_owned(),
            ));
            None
        }
    };
    let id = |root: &str| scan.ids.iter().find(|(r, _, _)| r == root).map(|(_, e, l)| (e.clone(), *l));
    let insurer = match id(OID_INSURER) {
        Some((i, _)) if !i.is_empty() && i.len() <= 8 && i.bytes().all(|b| b.is_ascii_digit()) => Some(i),
        Some((i, line)) => {
            problems.push(problem(
                line,
                Some("id"),
                format!("保険者番号 '{i}' は8桁までの数字ではありません / insurer number '{i}' is not up to 8 digits"),
            ));
            None
        }
        None => {
            problems.push(problem(
                0,
                Some("id"),
                format!("保険者番号（recordTarget/patientRole/id root={OID_INSURER}）がありません / no insurer number: recordTarget/patientRole/id root={OID_INSURER} expected"),
            ));
            None
        }
    };
    let institution = match scan.institution {
        Some((i, _)) if i.len() == 10 && i.bytes().all(|b| b.is_ascii_digit()) => Some(i),
        Some((i, line)) => {
            problems.push(problem(
                line,
                Some("id"),
                format!("健診機関番号 '{i}' は10桁の数字ではありません / checkup institution '{i}' is not 10 digits"),
            ));
            None
        }
        None => {
            problems.push(problem(
                0,
                Some("id"),
                format!("健診機関番号（author の id root={OID_INSTITUTION}）がありません / no checkup institution: an id root={OID_INSTITUTION} under author expected"),
            ));
            None
        }
    };
    let mut date_of = |v: Once, what: &str, expected: &str| -> Option<Date> {
        let Some((v, line)) = v else {
            problems.push(problem(0, Some(what), format!("{expected} がありません / no {expected}")));
            return None;
        };
        match ts_date(&v) {
            Ok(d) => Some(d),
            Err(m) => {
                problems.push(problem(line, Some(what), m));
                None
            }
        }
    };
    let date = date_of(scan.service_date, "effectiveTime", "documentationOf/serviceEvent/effectiveTime");
    let birth = date_of(scan.birth.clone(), "birthTime", "recordTarget/patientRole/patient/birthTime");
    if let (Some(d), Some(b)) = (date, birth)
        && b > d
    {
        problems.push(problem(
            scan.birth.as_ref().map_or(0, |(_, l)| *l),
            Some("birthTime"),
            format!("生年月日 {b} が健診日 {d} より後です / the birth date {b} is after the checkup date {d}"),
        ));
    }
    let sex = match scan.sex.as_ref().map(|(v, l)| (v.as_str(), *l)) {
        Some(("1", _)) => Some(1),
        Some(("2", _)) => Some(2),
        other => {
            let (v, line) = other.unwrap_or(("", 0));
            problems.push(problem(
                line,
                Some("administrativeGenderCode"),
                format!("性別 '{v}' が 1 か 2 ではありません / sex '{v}' is not 1 or 2"),
            ));
            None
        }
    };
    let kana_name = match scan.name {
        Some((n, _)) if !n.is_empty() && is_kana_name(&n) => Some(n),
        Some((n, _)) if !n.is_empty() => {
            problems.push(problem(0, Some("name"), format!("氏名 '{n}' がカナではありません / the name '{n}' is not kana")));
            None
        }
        _ => {
            problems.push(problem(
                0,
                Some("name"),
                "カナ氏名（patient/name）がありません / no kana name: patient/name expected".to_owned(),
            ));
            None
        }
    };
    let mut items = Vec::with_capacity(scan.items.len());
    let mut seen = BTreeSet::new();
    for Frame { line, code, value } in scan.items {
        let Some((code, system)) = code else {
            problems.push(problem(line, Some("observation"), "結果項目に code がありません / a result item without a code".to_owned()));
            continue;
        };
        if system != OID_ITEM || code.len() != 17 || !code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
            problems.push(problem(
                line,
                Some("observation"),
                format!("項目コード '{code}'（{system}）が JLAC10（{OID_ITEM} の17桁）ではありません / item code '{code}' ({system}) is not a 17-character JLAC10 code of {OID_ITEM}"),
            ));
            continue;
        }
        if !seen.insert(code.clone()) {
            problems.push(problem(line, Some("observation"), format!("項目 {code} が2度あります / item {code} twice")));
            continue;
        }
        match value {
            Some(Value::Quantity { value, unit }) => {
                if value.parse::<f64>().map_or(true, |v| !v.is_finite()) {
                    problems.push(problem(
                        line,
                        Some("value"),
                        format!("項目 {code} の値 '{value}' は数値ではありません / the value '{value}' of {code} is not a number"),
                    ));
                    continue;
                }
                items.push(Item { code, value: Value::Quantity { value, unit } });
            }
            Some(Value::Coded { code: c, system: s }) if c.is_empty() || s.is_empty() => {
                problems.push(problem(
                    line,
                    Some("value"),
                    format!(
                        "項目 {code} のコード値に code か codeSystem がありません / the coded value of {code} lacks its code or codeSystem"
                    ),
                ));
            }
            Some(Value::Text(t)) if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
                problems.push(problem(
                    line,
                    Some("value"),
                    format!("項目 {code} の値に制御文字があります / a control character in the value of {code}"),
                ));
            }
            Some(v) => items.push(Item { code, value: v }),
            None => problems.push(problem(line, Some("observation"), format!("項目 {code} に値がありません / item {code} has no value"))),
        }
    }
    Some(Checkup {
        report: report?,
        institution: institution?,
        date: date?,
        insurer: insurer?,
        kigo: id(OID_KIGO).map(|(v, _)| v),
        bango: id(OID_BANGO).map(|(v, _)| v),
        edaban: id(OID_EDABAN).map(|(v, _)| v),
        kana_name: kana_name?,
        sex: sex?,
        birth: birth?,
        items,
    })
}

/// Writes a checkup as a CDA document (UTF-8) that [`read_document`] reads back.
pub fn write_document(c: &Checkup) -> Result<String, FormatError> {
    use quick_xml::escape::escape;
    use std::fmt::Write;
    let e = |s: &str| escape(s).into_owned();
    let check = |what: &str, s: &str| {
        if s.chars().any(char::is_control) {
            Err(FormatError::Value(format!("{what}: 制御文字は書けません / a control character cannot be written")))
        } else {
            Ok(())
        }
    };
    for (what, v) in [("report", &c.report), ("institution", &c.institution), ("insurer", &c.insurer), ("kana_name", &c.kana_name)] {
        check(what, v)?;
    }
    if !is_kana_name(&c.kana_name) {
        return Err(FormatError::Value("kana_name: カナ以外の文字 / characters other than kana".to_owned()));
    }
    for item in &c.items {
        check(&item.code, &item.code)?;
        match &item.value {
            Value::Quantity { value, unit } => {
                check(&item.code, value)?;
                check(&item.code, unit)?;
            }
            Value::Coded { code, system } => {
                check(&item.code, code)?;
                check(&item.code, system)?;
            }
            Value::Text(t) if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
                return Err(FormatError::Value(format!("{}: 制御文字は書けません / a control character cannot be written", item.code)));
            }
            Value::Text(_) => {}
        }
    }
    let mut x = String::with_capacity(4096 + 256 * c.items.len());
    let w = |x: &mut String, s: std::fmt::Arguments<'_>| x.write_fmt(s).map_err(|e| FormatError::Value(e.to_string()));
    w(&mut x, format_args!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"))?;
    w(
        &mut x,
        format_args!(
            "<ClinicalDocument xmlns=\"{NS_CDA}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n<typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_HD000040\"/>\n<templateId root=\"{OID_TEMPLATE}\"/>\n<code code=\"{}\" codeSystem=\"{OID_REPORT}\"/>\n<effectiveTime value=\"{}\"/>\n",
            e(&c.report),
            c.date.seireki()
        ),
    )?;
    w(&mut x, format_args!("<recordTarget><patientRole>\n<id root=\"{OID_INSURER}\" extension=\"{}\"/>\n", e(&c.insurer)))?;
    for (oid, v) in [(OID_KIGO, &c.kigo), (OID_BANGO, &c.bango), (OID_EDABAN, &c.edaban)] {
        if let Some(v) = v {
            check(oid, v)?;
            w(&mut x, format_args!("<id root=\"{oid}\" extension=\"{}\"/>\n", e(v)))?;
        }
    }
    w(
        &mut x,
        format_args!(
            "<patient><name>{}</name><administrativeGenderCode code=\"{}\" codeSystem=\"{OID_SEX}\"/><birthTime value=\"{}\"/></patient>\n</patientRole></recordTarget>\n",
            e(&c.kana_name),
            c.sex,
            c.birth.seireki()
        ),
    )?;
    w(
        &mut x,
        format_args!(
            "<author><time value=\"{}\"/><assignedAuthor><id root=\"{OID_INSTITUTION}\" extension=\"{}\"/></assignedAuthor></author>\n<documentationOf><serviceEvent><code code=\"010\" codeSystem=\"1.2.392.200119.6.1002\"/><effectiveTime value=\"{}\"/></serviceEvent></documentationOf>\n<component><structuredBody><component><section>\n",
            c.date.seireki(),
            e(&c.institution),
            c.date.seireki()
        ),
    )?;
    for item in &c.items {
        let value = match &item.value {
            Value::Quantity { value, unit } => format!("<value xsi:type=\"PQ\" value=\"{}\" unit=\"{}\"/>", e(value), e(unit)),
            Value::Coded { code, system } => format!("<value xsi:type=\"CD\" code=\"{}\" codeSystem=\"{}\"/>", e(code), e(system)),
            Value::Text(t) => format!("<value xsi:type=\"ST\">{}</value>", e(t)),
        };
        w(
            &mut x,
            format_args!(
                "<entry><observation classCode=\"OBS\" moodCode=\"EVN\"><code code=\"{}\" codeSystem=\"{OID_ITEM}\"/>{value}</observation></entry>\n",
                e(&item.code)
            ),
        )?;
    }
    w(&mut x, format_args!("</section></component></structuredBody></component>\n</ClinicalDocument>\n"))?;
    Ok(x)
}
