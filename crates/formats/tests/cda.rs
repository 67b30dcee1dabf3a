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
        kana_name: "ヤマダ ハナコ".into(),
        sex: 2,
        birth: Date { year: 1970, month: 1, day: 1 },
        items: vec![
            Item { code: "9N001000000000001".into(), value: Value::Quantity { value: "158.2".into(), unit: "cm".into() } },
            Item { code: "9N006000000000001".into(), value: Value::Quantity { value: "61.0".into(), unit: "kg".into() } },
            Item { code: "9A751000000000001".into(), value: Value::Quantity { value: "132".into(), unit: "mm[Hg]".into() } },
            Item { code: "9N736000000000011".into(), value: Value::Coded { code: "2".into(), system: "1.2.392.200119.6.2208".into() } },
            Item { code: "9N511000000000049".into(), value: Value::Text("特記事項なし & <所見> \"要観察\"\n二行目".into()) },
        ],
    }
}

#[test]
fn a_written_document_reads_back() {
    let c = checkup();
    let xml = write_document(&c).unwrap();
    assert!(xml.contains("&amp;") && xml.contains("&lt;所見&gt;"), "escaped: {xml}");
    assert_eq!(read_document("DATA/h1.xml", xml.as_bytes()).unwrap(), c);
    // Character references and the five predefined entities read; a BOM is allowed.
    let xml = xml.replace("ヤマダ ハナコ", "&#x30E4;マダ ハナコ");
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
    assert!(m.contains("no recordTarget/patientRole/patient/birthTime"), "{m}");
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
    assert_eq!(names, ["ヤマダ ハナコ", "スズキ イチロウ"]);
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

#[test]
fn one_person_per_document_read_from_fixed_places() {
    let doc = write_document(&checkup()).unwrap();
    // A second recordTarget, or a second patient's details.
    let second = "<recordTarget><patientRole><id root=\"1.2.392.200119.6.101\" extension=\"01130012\"/><patient><name>ベツジン</name><administrativeGenderCode code=\"1\"/><birthTime value=\"19500101\"/></patient></patientRole></recordTarget>\n<author>";
    let m = refused(&doc.replacen("<author>", second, 1));
    assert!(m.contains("two recordTarget"), "{m}");
    let m = refused(&doc.replace("<birthTime value=\"19700101\"/>", "<birthTime value=\"19700101\"/><birthTime value=\"19500101\"/>"));
    assert!(m.contains("two 生年月日 / birth date values"), "{m}");
    // A second root element.
    let m = refused(&format!("{doc}{}", doc.split_once("?>\n").unwrap().1));
    assert!(m.contains("a second root element") || m.contains("not well-formed"), "{m}");
    // The 健診機関 only from author: an id of that root elsewhere is not taken, two under
    // author that differ are refused.
    let m = refused(&doc.replace(
        "<author><time value=\"20240603\"/><assignedAuthor><id root=\"1.2.392.200119.6.102\" extension=\"1312345678\"/></assignedAuthor></author>",
        "<informant><assignedEntity><id root=\"1.2.392.200119.6.102\" extension=\"1312345678\"/></assignedEntity></informant>",
    ));
    assert!(m.contains("no checkup institution"), "{m}");
    let m = refused(&doc.replace(
        "</assignedAuthor>",
        "<representedOrganization><id root=\"1.2.392.200119.6.102\" extension=\"9999999999\"/></representedOrganization></assignedAuthor>",
    ));
    assert!(m.contains("two 健診機関番号"), "{m}");
    // Two codes or two values in one observation; an observation inside another.
    let m = refused(&doc.replace(
        "<code code=\"9N006000000000001\"",
        "<code code=\"9N001000000000002\" codeSystem=\"1.2.392.200119.6.1005\"/><code code=\"9N006000000000001\"",
    ));
    assert!(m.contains("two codes"), "{m}");
    let m = refused(&doc.replace("unit=\"kg\"/>", "unit=\"kg\"/><value xsi:type=\"PQ\" value=\"99\" unit=\"kg\"/>"));
    assert!(m.contains("two values"), "{m}");
    let m = refused(&doc.replace("unit=\"kg\"/></observation>", "unit=\"kg\"/><entryRelationship><observation><code code=\"9N016160100000001\" codeSystem=\"1.2.392.200119.6.1005\"/><value xsi:type=\"PQ\" value=\"80\" unit=\"cm\"/></observation></entryRelationship></observation>"));
    assert!(m.contains("an observation inside an observation"), "{m}");
    // Namespace tricks: a prefixed element, another default namespace below the root.
    let m = refused(&doc.replace("<patient>", "<x:patient xmlns:x=\"urn:evil\">").replace("</patient>", "</x:patient>"));
    assert!(m.contains("prefixed element"), "{m}");
    let m = refused(&doc.replace("<section>", "<section xmlns=\"urn:other\">"));
    assert!(m.contains("another namespace"), "{m}");
}

#[test]
fn codes_dates_and_names_are_exact() {
    let doc = write_document(&checkup()).unwrap();
    let m = refused(&doc.replace("code=\"10\" codeSystem=\"1.2.392.200119.6.1001\"", "code=\"21x\" codeSystem=\"1.2.392.200119.6.1001\""));
    assert!(m.contains("report kind '21x'"), "{m}");
    let m = refused(&doc.replace("<birthTime value=\"19700101\"/>", "<birthTime value=\"3450101\"/>"));
    assert!(m.contains("'3450101' is not a date"), "{m}");
    let m = refused(&doc.replace("<birthTime value=\"19700101\"/>", "<birthTime value=\"19700101junk\"/>"));
    assert!(m.contains("is not a date"), "{m}");
    let m = refused(&doc.replace("<birthTime value=\"19700101\"/>", "<birthTime value=\"20250101\"/>"));
    assert!(m.contains("after the checkup date"), "{m}");
    let m = refused(&doc.replace("<effectiveTime value=\"20240603\"/></serviceEvent>", "</serviceEvent>"));
    assert!(m.contains("no documentationOf/serviceEvent/effectiveTime"), "{m}");
    let m = refused(&doc.replace("ヤマダ ハナコ", "山田 花子"));
    assert!(m.contains("is not kana"), "{m}");
    let m = refused(&doc.replace("code=\"2\" codeSystem=\"1.2.392.200119.6.2208\"", "code=\"\" codeSystem=\"1.2.392.200119.6.2208\""));
    assert!(m.contains("lacks its code"), "{m}");
    // The header's problems carry their lines.
    let problems =
        read_document("DATA/h1.xml", doc.replace("administrativeGenderCode code=\"2\"", "administrativeGenderCode code=\"9\"").as_bytes())
            .unwrap_err();
    let line = doc.lines().position(|l| l.contains("administrativeGenderCode")).unwrap() as u64 + 1;
    assert_eq!(problems[0].line, line, "{:?}", problems[0]);
    // Size and item limits.
    let big = format!("{doc}<!--{}-->", "x".repeat(kura_formats::cda::MAX_DOCUMENT));
    assert!(refused(&big).contains("larger than"));
    let entry = "<entry><observation><code code=\"9N001000000000001\" codeSystem=\"1.2.392.200119.6.1005\"/><value xsi:type=\"PQ\" value=\"1\" unit=\"cm\"/></observation></entry>\n";
    let many = doc.replace("<section>\n", &format!("<section>\n{}", entry.repeat(kura_formats::cda::MAX_ITEMS + 1)));
    assert!(refused(&many).contains("more than 2000 result items"));
}

#[test]
fn archives_hold_only_what_a_submission_holds() {
    let index = format!("{ROOT}/ix08_V08.xml");
    let refuse = |entries: &[(&str, &[u8])]| open(zip_of(entries), Limits::default()).err().expect("refused").to_string();
    // Names differing only in case, a lower-case data folder, anything but XML in DATA, a
    // nested folder in DATA, a name with a space or non-ASCII, a component ending in a dot.
    for entries in [
        vec![(index.as_str(), INDEX), (&*format!("{ROOT}/DATA/A.xml"), b"a" as &[u8]), (&*format!("{ROOT}/DATA/a.xml"), b"a")],
        vec![(index.as_str(), INDEX), (&*format!("{ROOT}/data/a.xml"), b"a")],
        vec![(index.as_str(), INDEX), (&*format!("{ROOT}/DATA/a.exe"), b"a")],
        vec![(index.as_str(), INDEX), (&*format!("{ROOT}/DATA/sub/a.xml"), b"a")],
        vec![(index.as_str(), INDEX), (&*format!("{ROOT}/DATA/a b.xml"), b"a")],
        vec![(index.as_str(), INDEX), (&*format!("{ROOT}/DATA/ａ.xml"), b"a")],
        vec![(index.as_str(), INDEX), (&*format!("{ROOT}/DATA./a.xml"), b"a")],
        vec![(index.as_str(), INDEX), (&*format!("{ROOT}/extra.txt"), b"a")],
    ] {
        let m = refuse(&entries);
        assert!(m.contains("twice") || m.contains("does not belong") || m.contains("plain relative path"), "{:?}: {m}", entries[1].0);
    }
    // Two entries with one name (written, then renamed in place): refused before unpacking.
    let mut bytes = zip_of(&[(&index, INDEX), (&format!("{ROOT}/DATA/a.xml"), b"first"), (&format!("{ROOT}/DATA/b.xml"), b"other")]);
    let from = format!("{ROOT}/DATA/b.xml").into_bytes();
    let to = format!("{ROOT}/DATA/a.xml").into_bytes();
    let mut at = 0;
    while let Some(p) = bytes[at..].windows(from.len()).position(|w| w == from.as_slice()) {
        bytes[at + p..at + p + from.len()].copy_from_slice(&to);
        at += p + from.len();
    }
    let m = open(bytes, Limits::default()).err().expect("refused").to_string();
    assert!(m.contains("inconsistent") || m.contains("twice"), "{m}");
}

#[test]
fn an_entry_larger_than_its_headers_say_is_not_unpacked_past_them() {
    // A stored document of 100 bytes whose local and central headers both say 50: the
    // headers agree, so the archive opens, but unpacking stops at the stated size and refuses.
    let index = format!("{ROOT}/ix08_V08.xml");
    let doc = format!("{ROOT}/DATA/a.xml");
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file(index.as_str(), stored).unwrap();
    w.write_all(INDEX).unwrap();
    w.start_file(doc.as_str(), stored).unwrap();
    w.write_all(&[b'x'; 100]).unwrap();
    let mut bytes = w.finish().unwrap().into_inner();
    let name = doc.as_bytes();
    let mut patched = 0;
    for (signature, size_at) in [(&b"PK\x03\x04"[..], 22usize), (&b"PK\x01\x02"[..], 24usize)] {
        let name_at = if signature[2] == 3 { 30 } else { 46 };
        let mut at = 0;
        while let Some(p) = bytes[at..].windows(4).position(|w| w == signature) {
            let h = at + p;
            if bytes.get(h + name_at..h + name_at + name.len()) == Some(name) {
                assert_eq!(u32::from_le_bytes(bytes[h + size_at..h + size_at + 4].try_into().unwrap()), 100);
                bytes[h + size_at..h + size_at + 4].copy_from_slice(&50u32.to_le_bytes());
                patched += 1;
            }
            at = h + 4;
        }
    }
    assert_eq!(patched, 2, "both headers of the document");
    let mut archive = open(bytes, Limits::default()).expect("the headers agree");
    let got: Vec<_> = archive.documents().collect();
    assert_eq!(got.len(), 1);
    let err = got.into_iter().next().unwrap().expect_err("never more bytes than stated").to_string();
    assert!(err.contains("a.xml") && (err.contains("says 50") || err.contains("does not unpack")), "{err}");
}
