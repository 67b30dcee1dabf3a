//! 特定健診 CDA documents and submission archives: written, read back, and attacked (issue 18:
//! an external entity, a billion laughs, a zip with path traversal, a zip bomb — each refused
//! with its location).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use kura_formats::archive::{Archive, Limits};
use kura_formats::cda::{Checkup, Item, Value, read_document, write_document};
use kura_formats::uke::date::Date;
use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;

fn checkup() -> Checkup {
    Checkup {
        report: "10".into(),
        institution: "1312345678".into(),
        date: Date { year: 2024, month: 6, day: 3 },
        insurer: "06130015".into(),
        kigo: Some("１９Ｄ".into()),
        bango: Some("０００１－２".into()),
        edaban: Some("00".into()),
        kana_name: "ヤマダ ハナコ & <テスト>".into(),
        sex: 2,
        birth: Date { year: 1970, month: 1, day: 1 },
        items: vec![
            Item { code: "9N001000000000001".into(), value: Value::Quantity { value: "158.2".into(), unit: "cm".into() } },
            Item { code: "9N006000000000001".into(), value: Value::Quantity { value: "61.0".into(), unit: "kg".into() } },
            Item { code: "9A751000000000001".into(), value: Value::Quantity { value: "132".into(), unit: "mm[Hg]".into() } },
            Item { code: "9N736000000000011".into(), value: Value::Coded { code: "2".into(), system: "1.2.392.200119.6.2208".into() } },
            Item { code: "9N511000000000049".into(), value: Value::Text("特記事項なし \"所見\"".into()) },
        ],
    }
}

#[test]
fn a_written_document_reads_back() {
    let c = checkup();
    let xml = write_document(&c).unwrap();
    assert!(xml.contains("&amp;") && xml.contains("&lt;テスト&gt;"), "escaped: {xml}");
    assert_eq!(read_document("DATA/h1.xml", xml.as_bytes()).unwrap(), c);
    // Character references and the five predefined entities read; a BOM is allowed.
    let xml = xml.replace("ヤマダ ハナコ &amp;", "&#x30E4;マダ ハナコ &amp;");
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(xml.as_bytes());
    assert_eq!(read_document("DATA/h1.xml", &with_bom).unwrap().kana_name, c.kana_name);
}

fn refused(xml: &str) -> String {
    let problems = read_document("DATA/h1.xml", xml.as_bytes()).expect_err("refused");
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

#[test]
fn entities_from_outside_are_refused() {
    let doc = write_document(&checkup()).unwrap();
    let body = doc.split_once("?>\n").unwrap().1;
    // An external entity (XXE).
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n{}",
        body.replace("ヤマダ ハナコ", "&x;")
    );
    let m = refused(&xxe);
    assert!(m.contains("DOCTYPE") && m.contains("DATA/h1.xml:2"), "{m}");
    // A billion laughs.
    let mut laughs = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        laughs.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&lol{};", if i == 1 { String::new() } else { (i - 1).to_string() }).repeat(10)
        ));
    }
    laughs.push_str("]>\n");
    laughs.push_str(&body.replace("ヤマダ ハナコ", "&lol9;"));
    assert!(refused(&laughs).contains("billion laughs"));
    // An entity nobody declared.
    let m = refused(&doc.replace("ヤマダ ハナコ", "&x;"));
    assert!(m.contains("&x; is not defined"), "{m}");
    // Another encoding, or bytes that are not UTF-8.
    assert!(refused(&doc.replace("encoding=\"UTF-8\"", "encoding=\"Shift_JIS\"")).contains("only UTF-8"));
    let mut bytes = doc.clone().into_bytes();
    let at = doc.find("ヤマダ").unwrap();
    bytes[at] = 0xFF;
    let problems = read_document("DATA/h1.xml", &bytes).unwrap_err();
    assert!(problems[0].message.contains("not UTF-8") && problems[0].line > 1, "{:?}", problems[0]);
}

#[test]
fn required_items_and_code_systems_are_checked() {
    let doc = write_document(&checkup()).unwrap();
    let m = refused(&doc.replace("<birthTime value=\"19700101\"/>", ""));
    assert!(m.contains("no birth date"), "{m}");
    let m = refused(&doc.replace(
        "codeSystem=\"1.2.392.200119.6.1005\"/><value xsi:type=\"PQ\" value=\"61.0\"",
        "codeSystem=\"9.9\"/><value xsi:type=\"PQ\" value=\"61.0\"",
    ));
    assert!(m.contains("is not a 17-character JLAC10 code") && m.contains("(observation)"), "{m}");
    let line = doc.lines().position(|l| l.contains("9N006000000000001")).unwrap() + 1;
    assert!(m.contains(&format!("DATA/h1.xml:{line}")), "{m}");
    let m = refused(&doc.replace("value=\"132\"", "value=\"abc\""));
    assert!(m.contains("'abc'") && m.contains("not a number"), "{m}");
    let m = refused(&doc.replace("9N006000000000001", "9N001000000000001"));
    assert!(m.contains("twice"), "{m}");
    let m = refused(&doc.replace("code=\"10\" codeSystem=\"1.2.392.200119.6.1001\"", "code=\"99\" codeSystem=\"1.2.392.200119.6.1001\""));
    assert!(m.contains("report kind '99'"), "{m}");
    let m = refused(&doc.replace("extension=\"1312345678\"", "extension=\"13\""));
    assert!(m.contains("not 10 digits"), "{m}");
    let m = refused(&doc.replace("administrativeGenderCode code=\"2\"", "administrativeGenderCode code=\"9\""));
    assert!(m.contains("sex '9'"), "{m}");
    let m = refused(&doc.replace("xmlns=\"urn:hl7-org:v3\"", "xmlns=\"urn:other\""));
    assert!(m.contains("namespace"), "{m}");
    let m = refused(&doc.replace("</ClinicalDocument>", ""));
    assert!(m.contains("cut short"), "{m}");
    let m = refused(&doc.replace("</patient>", "</patientx>"));
    assert!(m.contains("not well-formed"), "{m}");
    let deep = doc.replace("<section>", &"<section>".repeat(80)).replace("</section>", &"</section>".repeat(80));
    assert!(refused(&deep).contains("nested deeper"));
}

/// An archive of `entries` (name, bytes), deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const ROOT: &str = "1312345678_06130015_2024060301_1";
const INDEX: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<index xmlns=\"http://tokuteikenshin.jp/checkup/2007\"/>\n";

fn open(bytes: Vec<u8>, limits: Limits) -> Result<Archive<Cursor<Vec<u8>>>, kura_formats::Problem> {
    Archive::open("submission.zip", Cursor::new(bytes), limits)
}

#[test]
fn an_archive_opens_and_gives_its_documents() {
    let a = write_document(&checkup()).unwrap();
    let mut other = checkup();
    other.kana_name = "スズキ イチロウ".into();
    let b = write_document(&other).unwrap();
    let zip = zip_of(&[
        (&format!("{ROOT}/ix08_V08.xml"), INDEX),
        (&format!("{ROOT}/su08_V08.xml"), INDEX),
        (&format!("{ROOT}/DATA/h1312345678202406031100001.xml"), a.as_bytes()),
        (&format!("{ROOT}/DATA/h1312345678202406031100002.xml"), b.as_bytes()),
        (&format!("{ROOT}/XSD/hc08_V08.xsd"), b"<schema/>"),
    ]);
    let mut archive = open(zip, Limits::default()).unwrap();
    assert_eq!(archive.root(), ROOT);
    assert_eq!(archive.document_count(), 2);
    assert!(archive.index().is_ok() && archive.summary().unwrap().is_some());
    let names: Vec<String> = archive
        .documents()
        .map(|d| {
            let (name, bytes) = d.unwrap();
            read_document(&name, &bytes).unwrap().kana_name
        })
        .collect();
    assert_eq!(names, ["ヤマダ ハナコ & <テスト>", "スズキ イチロウ"]);
}

#[test]
fn hostile_archives_are_refused() {
    let index = format!("{ROOT}/ix08_V08.xml");
    let refuse = |entries: &[(&str, &[u8])], limits: Limits| open(zip_of(entries), limits).err().expect("refused").to_string();
    // Path traversal, an absolute path, a backslash.
    for evil in ["1312345678_06130015_2024060301_1/../../etc/cron.d/x", "/etc/passwd", "1312345678_06130015_2024060301_1\\..\\x"] {
        let m = refuse(&[(&index, INDEX), (evil, b"x")], Limits::default());
        assert!(m.contains("leaves the archive") && m.starts_with("submission.zip:0 ("), "{evil}: {m}");
    }
    // A zip bomb: 50 MiB of zeros in a few kilobytes. Above the entry size…
    let zeros = vec![0u8; 50 << 20];
    let bomb = format!("{ROOT}/DATA/h1.xml");
    let m = refuse(&[(&index, INDEX), (&bomb, &zeros)], Limits::default());
    assert!(m.contains("above the limit"), "{m}");
    // … and, where entries may be that large, by its ratio.
    let roomy = Limits { entry_bytes: 1 << 30, ..Limits::default() };
    let m = refuse(&[(&index, INDEX), (&bomb, &zeros)], roomy);
    assert!(m.contains("zip bomb") && m.contains(&bomb), "{m}");
    // Too much in all, too many entries.
    let small = Limits { total_bytes: 100, ..Limits::default() };
    assert!(refuse(&[(&index, INDEX), (&format!("{ROOT}/DATA/a.xml"), &[b'a'; 200])], small).contains("in all"));
    let few = Limits { entries: 1, ..Limits::default() };
    assert!(refuse(&[(&index, INDEX), (&format!("{ROOT}/DATA/a.xml"), b"a")], few).contains("more than 1 entries"));
    // No index, two roots.
    assert!(refuse(&[(&format!("{ROOT}/DATA/a.xml"), b"a")], Limits::default()).contains("no index"));
    assert!(refuse(&[(&index, INDEX), ("other/x.xml", b"a")], Limits::default()).contains("one root folder"));
    // A symbolic link.
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(index.as_str(), SimpleFileOptions::default()).unwrap();
    w.write_all(INDEX).unwrap();
    w.add_symlink(format!("{ROOT}/DATA/link.xml"), "/etc/passwd", SimpleFileOptions::default()).unwrap();
    let m = open(w.finish().unwrap().into_inner(), Limits::default()).err().unwrap().to_string();
    assert!(m.contains("symbolic link"), "{m}");
    // Not a zip at all.
    assert!(open(b"PK\x03\x04 nothing".to_vec(), Limits::default()).err().unwrap().to_string().contains("not a readable zip"));
    // An index with a DOCTYPE.
    let evil_index = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"http://example.invalid/\">]><index>&e;</index>";
    let mut archive = open(zip_of(&[(&index, evil_index)]), Limits::default()).unwrap();
    assert!(archive.index().unwrap_err().to_string().contains("DOCTYPE"));
}
