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

/// A result item as read: its line, its (code, code system), its value.
type ScanItem = (u64, Option<(String, String)>, Option<Value>);

/// What is being read at the moment.
#[derive(Default)]
struct Scan {
    report: Option<(String, String)>,
    institution: Option<String>,
    service_date: Option<String>,
    document_date: Option<String>,
    ids: Vec<(String, String)>,
    name: Option<String>,
    sex: Option<String>,
    birth: Option<String>,
    items: Vec<ScanItem>,
    /// Text of the element being read (a name or an `ST` value).
    text: Option<String>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("属性が読めません / an unreadable attribute: {err}"))?;
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

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_owned()
}

/// Reads one CDA document. Every problem found is given, each with its line; `name` is the
/// document's name (its path in the archive).
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
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).map_err(|e| {
        vec![problem(
            line_of(bytes, e.valid_up_to()),
            None,
            "UTF-8 ではありません（CDA 文書は UTF-8 で読みます）/ not UTF-8: CDA documents are read as UTF-8".to_owned(),
        )]
    })?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<String> = Vec::new();
    let mut scan = Scan::default();
    let mut problems = Vec::new();
    loop {
        let event = reader.read_event();
        // The line where the event ends (an element's own line).
        let at = line_of(text.as_bytes(), usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX));
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                problems.push(problem(at, stack.last().map(String::as_str), format!("XML として読めません / not well-formed XML: {e}")));
                return Err(problems);
            }
        };
        match event {
            Event::Decl(d) => {
                if let Some(Ok(enc)) = d.encoding()
                    && !enc.eq_ignore_ascii_case("utf-8")
                {
                    let enc = enc.into_owned();
                    problems.push(problem(
                        at,
                        None,
                        format!("文字コード {enc} は読めません（UTF-8 のみ）/ encoding {enc}: only UTF-8 is read"),
                    ));
                    return Err(problems);
                }
            }
            Event::DocType(_) => {
                problems.push(problem(
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
                        problems.push(problem(
                            at,
                            stack.last().map(String::as_str),
                            format!("実体参照 &{n}; は定義されていません（XML の5つと文字参照のみ）/ the entity &{n}; is not defined: only XML's five and character references are read"),
                        ));
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
                let n = local(&e);
                if stack.len() >= MAX_DEPTH {
                    problems.push(problem(
                        at,
                        Some(&n),
                        format!("要素の入れ子が {MAX_DEPTH} 段を超えます / elements nested deeper than {MAX_DEPTH}"),
                    ));
                    return Err(problems);
                }
                if let Err(m) = element(&mut scan, &stack, &n, &e, at) {
                    problems.push(problem(at, Some(&n), m));
                }
                stack.push(n);
            }
            Event::Empty(e) => {
                let n = local(&e);
                if let Err(m) = element(&mut scan, &stack, &n, &e, at) {
                    problems.push(problem(at, Some(&n), m));
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
                    problems.push(problem(
                        at,
                        Some(open),
                        format!(
                            "文書が </{open}> の前で終わっています（途中で切れている）/ the document ends before </{open}>: it is cut short"
                        ),
                    ));
                    return Err(problems);
                }
                break;
            }
            Event::Comment(_) | Event::PI(_) => {}
        }
        if scan.items.len() > MAX_ITEMS {
            problems.push(problem(at, None, format!("結果項目が {MAX_ITEMS} を超えます / more than {MAX_ITEMS} result items")));
            return Err(problems);
        }
    }
    let checkup = finish(scan, &problem, &mut problems);
    match checkup {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(problems),
    }
}

/// The line of byte `at`.
fn line_of(bytes: &[u8], at: usize) -> u64 {
    bytes.get(..at.min(bytes.len())).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count() as u64) + 1
}

/// Takes in element `n` (inside `stack`).
fn element(scan: &mut Scan, stack: &[String], n: &str, e: &BytesStart<'_>, at: u64) -> Result<(), String> {
    let parent = stack.last().map(String::as_str);
    let inside = |x: &str| stack.iter().any(|s| s == x);
    if stack.is_empty() {
        if n != "ClinicalDocument" {
            return Err(format!("最上位の要素が ClinicalDocument ではなく {n} です / the root element is {n}, not ClinicalDocument"));
        }
        let ns = attr(e, "xmlns")?;
        if ns.as_deref() != Some(NS_CDA) {
            return Err(format!("名前空間が {NS_CDA} ではありません / the namespace is not {NS_CDA}"));
        }
        return Ok(());
    }
    match (n, parent) {
        ("code", Some("ClinicalDocument")) => {
            scan.report = Some((attr(e, "code")?.unwrap_or_default(), attr(e, "codeSystem")?.unwrap_or_default()));
        }
        ("effectiveTime", Some("ClinicalDocument")) => scan.document_date = attr(e, "value")?,
        ("effectiveTime", Some("serviceEvent")) => {
            scan.service_date = attr(e, "value")?.or(attr(e, "low")?);
        }
        ("low", Some("effectiveTime")) if inside("serviceEvent") => {
            scan.service_date = scan.service_date.take().or(attr(e, "value")?);
        }
        ("id", Some("patientRole")) => {
            if let (Some(root), Some(ext)) = (attr(e, "root")?, attr(e, "extension")?) {
                scan.ids.push((root, ext));
            }
        }
        ("id", _) if !inside("recordTarget") && scan.institution.is_none() && attr(e, "root")?.as_deref() == Some(OID_INSTITUTION) => {
            scan.institution = attr(e, "extension")?;
        }
        ("name", Some("patient")) => scan.text = Some(String::new()),
        ("administrativeGenderCode", Some("patient")) => scan.sex = attr(e, "code")?,
        ("birthTime", Some("patient")) => scan.birth = attr(e, "value")?,
        ("observation", _) => scan.items.push((at, None, None)),
        ("code", Some("observation")) => {
            let code = (attr(e, "code")?.unwrap_or_default(), attr(e, "codeSystem")?.unwrap_or_default());
            if let Some(item) = scan.items.last_mut() {
                item.1 = Some(code);
            }
        }
        ("value", Some("observation")) => {
            let kind = e
                .attributes()
                .flatten()
                .find(|a| a.key.local_name().as_ref() == "type" && a.key.prefix().is_some())
                .map(|a| a.value.into_owned())
                .unwrap_or_default();
            let value = match kind.as_str() {
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
                        "値の型 '{other}' は読めません（PQ・CD・CO・ST）/ value type '{other}' is not read: PQ, CD, CO or ST expected"
                    ));
                }
            };
            if let Some(item) = scan.items.last_mut() {
                item.2 = Some(value);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Leaves element `n`: the text it gathered goes where it belongs.
fn end(scan: &mut Scan, stack: &[String], n: &str) {
    let parent = stack.last().map(String::as_str);
    match (n, parent) {
        // Values as written, without the indentation around them; a control character (a line
        // break inside included) makes the value unusable, and `finish` refuses it.
        ("name", Some("patient")) => scan.name = scan.text.take().map(|t| t.trim().to_owned()),
        ("value", Some("observation")) => {
            if let Some(t) = scan.text.take()
                && let Some((_, _, Some(Value::Text(v)))) = scan.items.last_mut()
            {
                *v = t.trim().to_owned();
            }
        }
        _ => {}
    }
}

/// Checks what was read and builds the checkup.
fn finish(scan: Scan, problem: &dyn Fn(u64, Option<&str>, String) -> Problem, problems: &mut Vec<Problem>) -> Option<Checkup> {
    let mut need = |what: &str, en: &str| problems.push(problem(0, None, format!("{what}がありません / no {en}")));
    let report = match scan.report {
        Some((code, system)) if system == OID_REPORT && (code == "10" || ("21"..="25").contains(&code.as_str())) => Some(code),
        Some((code, system)) => {
            problems.push(problem(
                0,
                Some("code"),
                format!("報告区分 '{code}'（{system}）が不正です（{OID_REPORT} の 10・21〜25）/ report kind '{code}' ({system}) is not 10 or 21–25 of {OID_REPORT}"),
            ));
            None
        }
        None => {
            need("報告区分（ClinicalDocument/code）", "report kind (ClinicalDocument/code)");
            None
        }
    };
    let id = |root: &str| scan.ids.iter().find(|(r, _)| r == root).map(|(_, e)| e.clone());
    let insurer = id(OID_INSURER);
    let insurer = match insurer {
        Some(i) if !i.is_empty() && i.len() <= 8 && i.bytes().all(|b| b.is_ascii_digit()) => Some(i),
        Some(i) => {
            problems.push(problem(
                0,
                Some("id"),
                format!("保険者番号 '{i}' は8桁までの数字ではありません / insurer number '{i}' is not up to 8 digits"),
            ));
            None
        }
        None => {
            problems.push(problem(0, Some("id"), format!("保険者番号（{OID_INSURER}）がありません / no insurer number ({OID_INSURER})")));
            None
        }
    };
    let institution = match scan.institution {
        Some(i) if i.len() == 10 && i.bytes().all(|b| b.is_ascii_digit()) => Some(i),
        Some(i) => {
            problems.push(problem(
                0,
                Some("id"),
                format!("健診機関番号 '{i}' は10桁の数字ではありません / checkup institution '{i}' is not 10 digits"),
            ));
            None
        }
        None => {
            problems.push(problem(
                0,
                Some("id"),
                format!("健診機関番号（{OID_INSTITUTION}）がありません / no checkup institution ({OID_INSTITUTION})"),
            ));
            None
        }
    };
    let date_of = |v: &Option<String>, what: &str, problems: &mut Vec<Problem>| -> Option<Date> {
        let v = v.as_deref()?;
        match parse_date(v.get(..8).unwrap_or(v)) {
            Ok(d) => Some(d),
            Err(m) => {
                problems.push(problem(0, Some(what), m));
                None
            }
        }
    };
    let date = date_of(&scan.service_date.clone().or(scan.document_date.clone()), "effectiveTime", problems);
    if scan.service_date.is_none() && scan.document_date.is_none() {
        problems.push(problem(0, Some("effectiveTime"), "健診日がありません / no checkup date".to_owned()));
    }
    let birth = date_of(&scan.birth, "birthTime", problems);
    if scan.birth.is_none() {
        problems.push(problem(0, Some("birthTime"), "生年月日がありません / no birth date".to_owned()));
    }
    let sex = match scan.sex.as_deref() {
        Some("1") => Some(1),
        Some("2") => Some(2),
        other => {
            problems.push(problem(
                0,
                Some("administrativeGenderCode"),
                format!("性別 '{}' が 1 か 2 ではありません / sex '{}' is not 1 or 2", other.unwrap_or(""), other.unwrap_or("")),
            ));
            None
        }
    };
    let kana_name = scan.name.filter(|n| !n.trim().is_empty());
    if kana_name.is_none() {
        problems.push(problem(0, Some("name"), "カナ氏名がありません / no kana name".to_owned()));
    }
    if kana_name.as_deref().is_some_and(|n| n.chars().any(char::is_control)) {
        problems.push(problem(
            0,
            Some("name"),
            "カナ氏名に制御文字（改行など）があります / a control character (a line break?) in the kana name".to_owned(),
        ));
    }
    let mut items = Vec::with_capacity(scan.items.len());
    let mut seen = BTreeSet::new();
    for (line, code, value) in scan.items {
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
            Some(Value::Text(t)) if t.chars().any(char::is_control) => {
                problems.push(problem(
                    line,
                    Some("value"),
                    format!(
                        "項目 {code} の値に制御文字（改行など）があります / a control character (a line break?) in the value of {code}"
                    ),
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
        kigo: id(OID_KIGO),
        bango: id(OID_BANGO),
        edaban: id(OID_EDABAN),
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
            Value::Text(t) => check(&item.code, t)?,
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
