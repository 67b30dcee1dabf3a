//! UKE files written, read back, and broken in every way the reader must catch (issue 18
//! "Tests that must exist": wrong encoding, truncated file, missing end record, bad date,
//! unknown record type, field count mismatch, bad check digit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use kura_formats::Problem;
use kura_formats::uke::layout::insurer_check_digit;
use kura_formats::uke::{FileKind, Reader, Receipt, Rejected, Summary, Writer};

/// A record of `n` fields, the given ones set.
fn rec(n: usize, set: &[(usize, &str)]) -> Vec<String> {
    let mut f = vec![String::new(); n];
    for (i, v) in set {
        f[*i] = (*v).to_owned();
    }
    f
}

fn insurer(body: &str) -> String {
    format!("{body}{}", insurer_check_digit(body).unwrap())
}

/// One 医科 receipt: number `n`, a visit (288 points) and a drug for 14 days (10 points a day).
fn receipt(n: u32, birth: &str) -> Vec<Vec<String>> {
    let number = n.to_string();
    let ins = insurer("0613001");
    let mut si = rec(44, &[(0, "SI"), (1, "12"), (2, "1"), (3, "112007410"), (5, "73"), (6, "2")]);
    si[13] = "1".into();
    si[20] = "1".into();
    let mut iy = rec(44, &[(0, "IY"), (1, "21"), (2, "1"), (3, "620000001"), (4, "3"), (5, "10"), (6, "14")]);
    iy[13] = "14".into();
    vec![
        rec(38, &[(0, "RE"), (1, &number), (2, "1112"), (3, "202404"), (4, "山田　花子"), (5, "2"), (6, birth), (36, "ヤマダ　ハナコ")]),
        rec(15, &[(0, "HO"), (1, &ins), (2, "１９Ｄ"), (3, "０００１－２"), (4, "2"), (5, "286")]),
        rec(8, &[(0, "SY"), (1, "8830052"), (2, "20240401"), (3, "1"), (6, "01")]),
        rec(5, &[(0, "CO"), (1, "21"), (2, "1"), (3, "810000001"), (4, "疼痛時～")]),
        si,
        iy,
    ]
}

fn file(receipts: &[Vec<Vec<String>>]) -> Vec<Vec<String>> {
    let mut out = vec![rec(10, &[(0, "IR"), (1, "1"), (2, "13"), (3, "1"), (4, "1234567"), (6, "テスト医院"), (7, "202405"), (8, "00")])];
    let mut payers = 0;
    let mut points = 0;
    for r in receipts {
        for x in r {
            if x[0] == "HO" || x[0] == "KO" {
                payers += 1;
            }
            if x[0] == "HO" {
                points += x[5].parse::<u64>().unwrap();
            }
        }
        out.extend(r.iter().cloned());
    }
    out.push(rec(4, &[(0, "GO"), (1, &payers.to_string()), (2, &points.to_string()), (3, "99")]));
    out
}

fn write(records: &[Vec<String>], eof: bool) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for r in records {
        w.record(r).unwrap();
    }
    w.finish(eof).unwrap()
}

struct Outcome {
    accepted: Vec<Receipt>,
    rejected: Vec<Rejected>,
    fatal: Option<Problem>,
    summary: Summary,
}

fn read(bytes: &[u8]) -> Outcome {
    let mut r = Reader::new("RECEIPTC.UKE", bytes);
    let (mut accepted, mut rejected, mut fatal) = (Vec::new(), Vec::new(), None);
    loop {
        match r.next_receipt() {
            Ok(Some(Ok(x))) => accepted.push(x),
            Ok(Some(Err(x))) => rejected.push(x),
            Ok(None) => break,
            Err(p) => {
                fatal = Some(p);
                break;
            }
        }
    }
    // After the end or a stop, nothing more comes.
    assert!(matches!(r.next_receipt(), Ok(None)));
    Outcome { accepted, rejected, fatal, summary: r.summary().clone() }
}

fn three() -> Vec<Vec<String>> {
    file(&[receipt(1, "19700101"), receipt(2, "3450102"), receipt(3, "20010228")])
}

#[test]
fn a_written_file_reads_back_field_for_field() {
    let records = three();
    for eof in [false, true] {
        let bytes = write(&records, eof);
        // CP932 on the wire: 0x817C is the full-width hyphen-minus of the card number.
        assert!(bytes.windows(2).any(|w| w == [0x81, 0x7C]));
        assert!(!bytes.windows(2).any(|w| w == [b'\n', b'\n']) && bytes.ends_with(if eof { b"\r\n\x1a" } else { b"\r\n" }));
        let out = read(&bytes);
        assert!(out.fatal.is_none(), "{:?}", out.fatal);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(out.accepted.len(), 3);
        let back: Vec<Vec<String>> = out.accepted.iter().flat_map(|r| r.records.iter().map(|x| x.fields.clone())).collect();
        assert_eq!(back, records[1..records.len() - 1].to_vec());
        assert_eq!(out.summary.kind, Some(FileKind::Medical));
        assert_eq!((out.summary.accepted, out.summary.rejected, out.summary.payer_records), (3, 0, 3));
        assert_eq!(out.summary.total_points, 3 * 286);
        assert_eq!(out.summary.records, records.len() as u64);
        assert_eq!(out.summary.volume, "99");
        assert_eq!(out.accepted[1].re().unwrap().line, 8);
        // Every record's hash is SHA-256 of its line as in the file; the file's, of every byte.
        use sha2::{Digest, Sha256};
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        for r in out.accepted.iter().flat_map(|r| &r.records) {
            let line = lines[(r.line - 1) as usize].strip_suffix(b"\r").unwrap();
            assert_eq!(r.sha256, <[u8; 32]>::from(Sha256::digest(line)), "line {}", r.line);
        }
        assert_eq!(out.summary.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
        assert_eq!(out.summary.bytes, bytes.len() as u64);
    }
}

/// Breaks line `line` (1-based) of the three-receipt file with `f` and reads it.
fn broken(line: usize, f: impl Fn(&mut Vec<String>)) -> Outcome {
    let mut records = three();
    f(&mut records[line - 1]);
    read(&write(&rego(records), false))
}

/// `GO` written again over the records as they are (a sender's GO matches its HO records).
fn rego(mut records: Vec<Vec<String>>) -> Vec<Vec<String>> {
    records.pop();
    let payers = records.iter().filter(|r| r[0] == "HO" || r[0] == "KO").count();
    // Each receipt's main payer: its HO, else its first KO.
    let mut points = 0u64;
    let starts: Vec<usize> = records.iter().enumerate().filter(|(_, r)| r[0] == "RE").map(|(i, _)| i).collect();
    for (k, &at) in starts.iter().enumerate() {
        let receipt = &records[at..starts.get(k + 1).copied().unwrap_or(records.len())];
        let main = receipt.iter().find(|r| r[0] == "HO").or_else(|| receipt.iter().find(|r| r[0] == "KO"));
        points += main.and_then(|r| r[5].parse::<u64>().ok()).unwrap_or(0);
    }
    records.push(rec(4, &[(0, "GO"), (1, &payers.to_string()), (2, &points.to_string()), (3, "99")]));
    records
}

/// The one rejected receipt's problems, the other two receipts accepted.
fn one_rejected(out: &Outcome) -> &[Problem] {
    assert!(out.fatal.is_none(), "{:?}", out.fatal);
    assert_eq!(out.accepted.len(), 2, "the other receipts are loaded");
    assert_eq!(out.rejected.len(), 1);
    assert_eq!((out.summary.accepted, out.summary.rejected), (2, 1));
    &out.rejected[0].problems
}

#[test]
fn a_bad_date_rejects_its_receipt_and_says_where() {
    // Line 8 is the second receipt's RE.
    let out = broken(8, |r| r[6] = "19701301".into());
    let p = one_rejected(&out);
    assert_eq!(p.len(), 1);
    let text = p[0].to_string();
    assert!(text.starts_with("RECEIPTC.UKE:8 (RE, 項目 field 6 生年月日): "), "{text}");
    // The birth date identifies a person: named and explained, never quoted (HX-2).
    assert!(!text.contains("19701301") && text.contains("YYYYMMDD") && text.contains("not shown"), "{text}");
    assert_eq!(out.rejected[0].number, "2");
    assert_eq!(out.rejected[0].records, 6);
    // An era date outside its era.
    let out = broken(8, |r| r[6] = "4310501".into());
    let text = one_rejected(&out)[0].to_string();
    assert!(text.contains("生年月日") && !text.contains("4310501"), "{text}");
}

#[test]
fn an_unknown_record_type_rejects_its_receipt() {
    let out = broken(10, |r| *r = rec(8, &[(0, "ZZ")]));
    let p = one_rejected(&out);
    assert_eq!(p[0].line, 10);
    assert!(p[0].message.contains("'ZZ' is not a record type of a 医科 file"), "{}", p[0]);
}

#[test]
fn a_field_count_mismatch_rejects_its_receipt() {
    let out = broken(10, |r| {
        r.pop();
    });
    let p = one_rejected(&out);
    assert_eq!((p[0].line, p[0].record.as_deref()), (10, Some("SY")));
    assert!(p[0].message.contains("7 fields where a SY record has 8"), "{}", p[0]);
}

#[test]
fn a_bad_check_digit_rejects_its_receipt() {
    let out = broken(9, |r| {
        let mut d = r[1].clone().into_bytes();
        d[7] = if d[7] == b'9' { b'0' } else { d[7] + 1 };
        r[1] = String::from_utf8(d).unwrap();
    });
    let p = one_rejected(&out);
    assert_eq!(p[0].field, Some((1, "保険者番号")));
    assert!(p[0].message.contains("check digit"), "{}", p[0]);
    // A 6-digit 国保 number, right-aligned, checks too.
    let good = format!("  {}", insurer("13306"));
    let out = broken(9, |r| r[1] = good.clone());
    assert!(out.rejected.is_empty() && out.fatal.is_none(), "{:?}", out.rejected);
}

#[test]
fn totals_that_do_not_add_up_reject_the_receipt() {
    // The main payer's total against the lines.
    let out = broken(9, |r| r[5] = "287".into());
    let p = one_rejected(&out);
    assert!(p[0].message.contains("287") && p[0].message.contains("286"), "{}", p[0]);
    // The days of a line against its count.
    let mut records = three();
    records[12][13] = "13".into();
    let out = read(&write(&records, false));
    let p = one_rejected(&out);
    assert_eq!((p[0].line, p[0].field), (13, Some((6, "回数"))));
    // The type's payer count against the HO/KO records.
    let out = broken(8, |r| r[2] = "1122".into());
    assert!(one_rejected(&out)[0].message.contains("2 payer(s)"));
}

#[test]
fn wrong_encoding_is_refused() {
    // The same records as UTF-8: refused outright, at the first line with non-ASCII text.
    let mut utf8 = Vec::new();
    for r in three() {
        utf8.extend_from_slice(r.join(",").as_bytes());
        utf8.extend_from_slice(b"\r\n");
    }
    let out = read(&utf8);
    let p = out.fatal.expect("UTF-8 is refused");
    assert_eq!(p.line, 1);
    assert!(p.message.contains("UTF-8") && p.message.contains("CP932"), "{p}");
    assert!(out.accepted.is_empty());
    // A byte that is no CP932 inside a receipt: that receipt is rejected, naming the byte.
    let mut bytes = write(&three(), false);
    let at = bytes.windows(4).position(|w| w == b"SY,8").unwrap();
    bytes[at + 3] = 0x85;
    bytes[at + 4] = 0x20;
    let out = read(&bytes);
    let p = one_rejected(&out);
    assert!(p[0].message.contains("byte 4 is not Shift_JIS"), "{}", p[0]);
    // A 外字 (CP932's user-defined area, 0xF040): rejected, naming the field.
    let mut bytes = write(&three(), false);
    let at = bytes.windows(3).position(|w| w == b"CO,").unwrap();
    let end = at + bytes[at..].windows(2).position(|w| w == b"\r\n").unwrap();
    bytes.splice(end..end, [0xF0, 0x40]);
    let out = read(&bytes);
    let p = one_rejected(&out);
    assert!(p[0].message.contains("user-defined character (U+E000)") && p[0].field == Some((4, "")), "{}", p[0]);
}

#[test]
fn a_truncated_file_or_a_missing_end_record_stops_the_file() {
    let bytes = write(&three(), false);
    // Without GO.
    let mut records = three();
    records.pop();
    let out = read(&write(&records, false));
    assert!(out.fatal.as_ref().unwrap().message.contains("without a GO record"), "{:?}", out.fatal);
    // Cut in the middle of a line.
    let cut = &bytes[..bytes.len() - 5];
    let out = read(cut);
    assert!(out.fatal.as_ref().unwrap().message.contains("no CRLF"), "{:?}", out.fatal);
    // LF line ends.
    let out = read(&crlf_to_lf(&bytes));
    assert!(out.fatal.as_ref().unwrap().message.contains("LF alone"), "{:?}", out.fatal);
    // An empty file.
    assert!(read(b"").fatal.unwrap().message.contains("empty"));
}

/// `bytes` with every CRLF turned into LF (byte for byte, whatever the encoding).
fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[test]
fn the_file_as_a_whole_is_checked() {
    // GO's count and total.
    let mut records = three();
    let n = records.len();
    records[n - 1][1] = "4".into();
    let p = read(&write(&records, false)).fatal.unwrap();
    assert_eq!(p.field, Some((1, "総件数")));
    let mut records = three();
    records[n - 1][2] = "1".into();
    assert_eq!(read(&write(&records, false)).fatal.unwrap().field, Some((2, "総合計点数")));
    // A receipt missing from the numbering.
    let records = file(&[receipt(1, "19700101"), receipt(3, "19700101")]);
    let p = read(&write(&records, false)).fatal.unwrap();
    assert!(p.message.contains("receipt number 3 where 2 was expected"), "{p}");
    // Records after GO, and data after the end-of-file byte.
    let mut bytes = write(&three(), false);
    bytes.extend_from_slice(b"RE,4\r\n");
    assert!(read(&bytes).fatal.unwrap().message.contains("after GO"));
    let mut bytes = write(&three(), true);
    bytes.push(b'x');
    assert!(read(&bytes).fatal.unwrap().message.contains("0x1A"));
    // A file that does not start with a header, or is not a claim file at all.
    let mut records = three();
    records.remove(0);
    assert!(read(&write(&records, false)).fatal.unwrap().message.contains("starts with RE"));
    assert!(read(b"1,2,3\r\n").fatal.unwrap().message.contains("not a two-letter record type"));
    // A second IR (two files joined).
    let mut records = three();
    let ir = records[0].clone();
    records.insert(9, ir);
    assert!(read(&write(&records, false)).fatal.unwrap().message.contains("a second IR"));
    // A line without any line end.
    let long = vec![b'A'; kura_formats::uke::MAX_LINE + 10];
    assert!(read(&long).fatal.unwrap().message.contains("longer than"));
}

#[test]
fn older_files_with_era_dates_read() {
    let mut records = three();
    records[0][7] = "50605".into(); // 請求年月 R06-05
    for r in records.iter_mut().filter(|r| r[0] == "RE") {
        r[3] = "50604".into();
    }
    let out = read(&write(&records, false));
    assert!(out.fatal.is_none() && out.rejected.is_empty(), "{:?} {:?}", out.fatal, out.rejected);
}

#[test]
fn the_writer_refuses_what_the_format_cannot_carry() {
    let mut w = Writer::new(Vec::new());
    assert!(w.record(&["CO", "a,b"]).is_err());
    assert!(w.record(&["CO", "a\r\nb"]).is_err());
    assert!(w.record(&["CO", "😀"]).is_err());
    w.record(&["CO", "－～"]).unwrap();
    assert_eq!(w.finish(false).unwrap(), b"CO,\x81\x7c\x81\x60\r\n");
}

#[test]
fn rejected_lines_never_reach_a_neighbouring_receipt() {
    let out = broken(8, |r| r[6] = "19701301".into());
    let lines: Vec<u64> = out.accepted.iter().flat_map(|r| r.records.iter().map(|x| x.line)).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 14, 15, 16, 17, 18, 19]);
    assert_eq!(out.rejected[0].line, 8);
}

#[test]
fn each_receipt_is_checked_as_a_whole() {
    // Two HO records, or an HO on a public-expense-only receipt, or none on an insured one.
    let mut records = three();
    let ho = records[8].clone();
    records.insert(9, ho);
    records[7][2] = "1122".into();
    let out = read(&write(&rego(records), false));
    assert!(one_rejected(&out)[0].message.contains("2 HO record(s)"), "{:?}", out.rejected);
    let out = broken(8, |r| r[2] = "1212".into());
    assert!(one_rejected(&out).iter().any(|p| p.message.contains("1 HO record(s): the type's second digit 2 needs 0")));
    // A receipt of another table than the file's.
    let out = broken(8, |r| r[2] = "3112".into());
    assert!(one_rejected(&out)[0].message.contains("not the 医科 file's table 1"));
    // A burden code that does not exist (8 is unused).
    let out = broken(12, |r| r[2] = "8".into());
    assert_eq!(one_rejected(&out)[0].field, Some((2, "負担区分")));
    // A drug code from another master (a procedure's leading 1).
    let out = broken(13, |r| r[3] = "112007410".into());
    assert!(one_rejected(&out)[0].message.contains("beginning with 6"));
}

#[test]
fn control_characters_reject_the_receipt() {
    let mut bytes = write(&three(), false);
    let at = bytes.windows(3).position(|w| w == b"CO,").unwrap();
    bytes.insert(at + 6, 0x07);
    let out = read(&bytes);
    let p = one_rejected(&out);
    assert!(p[0].message.contains("control character U+0007"), "{}", p[0]);
}

#[test]
fn meals_are_priced_apart_and_dpc_receipts_need_their_group() {
    // A 食事 line (97) with its own price leaves the points total as it was; a blank 診療識別
    // after a CO of class 97 is 97 too.
    let mut records = three();
    let meal = rec(44, &[(0, "SI"), (1, "97"), (2, "1"), (3, "197000470"), (5, "640"), (6, "3")]);
    let co = rec(5, &[(0, "CO"), (1, "97"), (2, "1"), (3, "810000001")]);
    let after = rec(44, &[(0, "SI"), (2, "1"), (3, "197000470"), (5, "110"), (6, "1")]);
    records.splice(13..13, [meal, co, after]);
    let out = read(&write(&rego(records), false));
    assert!(out.fatal.is_none() && out.rejected.is_empty(), "{:?} {:?}", out.fatal, out.rejected);
    // A DPC receipt (BU) is priced by its group: its lines need not add up to the total.
    let mut records = three();
    records[8][5] = "99999".into();
    records.insert(9, rec(6, &[(0, "BU"), (1, "04008")]));
    let out = read(&write(&rego(records.clone()), false));
    assert!(out.fatal.is_none() && out.rejected.is_empty(), "{:?} {:?}", out.fatal, out.rejected);
    assert!(out.accepted[1].dpc && !out.accepted[0].dpc);
    // A DPC record without BU does not make a receipt DPC: refused.
    records[9] = rec(3, &[(0, "GT"), (1, "1")]);
    let out = read(&write(&rego(records), false));
    assert!(one_rejected(&out).iter().any(|p| p.message.contains("without a BU")), "{:?}", out.rejected);
}

#[test]
fn receipt_numbers_run_from_one_without_gaps() {
    // A repeat.
    let records = file(&[receipt(1, "19700101"), receipt(1, "19700101")]);
    assert!(read(&write(&records, false)).fatal.unwrap().message.contains("number 1 where 2 was expected"));
    // A first volume starting elsewhere: receipts 1–6 are missing.
    let records = file(&[receipt(7, "19700101")]);
    assert!(read(&write(&records, false)).fatal.unwrap().message.contains("number 7 where 1 was expected"));
    // A later volume goes on from the earlier one.
    let mut records = file(&[receipt(7, "19700101"), receipt(8, "19700101")]);
    records[0][8] = "02".into();
    let out = read(&write(&records, false));
    assert!(out.fatal.is_none() && out.accepted.len() == 2, "{:?}", out.fatal);
    // Receipt 0, and a file without receipts.
    let records = file(&[receipt(0, "19700101")]);
    assert!(read(&write(&records, false)).fatal.unwrap().message.contains("receipt number 0"));
    assert!(read(&write(&file(&[]), false)).fatal.unwrap().message.contains("no receipt"));
}

#[test]
fn the_header_decides_the_kind_and_is_checked() {
    // A bad prefecture in IR stops the file, naming the field.
    let mut records = three();
    records[0][2] = "48".into();
    let p = read(&write(&records, false)).fatal.unwrap();
    assert_eq!((p.line, p.field), (1, Some((2, "都道府県"))));
    records[0][2] = "+1".into();
    assert!(read(&write(&records, false)).fatal.is_some());
    // A 36-field RE (older specifications) reads.
    let mut records = three();
    records[1].truncate(36);
    assert!(read(&write(&records, false)).rejected.is_empty());
    // 調剤: YK, a 42-field RE, HO of 14 fields, a pharmacy IY.
    let ins = insurer("0613001");
    let pharmacy = vec![
        rec(9, &[(0, "YK"), (1, "1"), (2, "13"), (3, "4"), (4, "7654321"), (5, "テスト薬局"), (6, "202405"), (7, "00")]),
        rec(42, &[(0, "RE"), (1, "1"), (2, "4112"), (3, "202404"), (4, "山田　花子"), (5, "2"), (6, "19700101")]),
        rec(14, &[(0, "HO"), (1, &ins), (4, "1"), (5, "120")]),
        rec(10, &[(0, "IY"), (1, "1"), (2, "620000001"), (3, "3")]),
        rec(4, &[(0, "GO"), (1, "1"), (2, "120"), (3, "99")]),
    ];
    let out = read(&write(&pharmacy, false));
    assert!(out.fatal.is_none() && out.rejected.is_empty(), "{:?} {:?}", out.fatal, out.rejected);
    assert_eq!(out.summary.kind, Some(FileKind::Pharmacy));
    // … where a 医科 SI is no record type.
    let mut with_si = pharmacy.clone();
    with_si.insert(3, rec(44, &[(0, "SI")]));
    assert!(read(&write(&with_si, false)).rejected[0].problems[0].message.contains("'SI' is not a record type of a 調剤 file"));
    // 歯科: UK, then IR.
    let dental = vec![
        rec(10, &[(0, "UK"), (1, "1"), (2, "13"), (3, "3"), (4, "1234567")]),
        rec(9, &[(0, "IR"), (1, "1"), (2, "13"), (3, "3"), (4, "1234567"), (6, "202405"), (8, "00")]),
        rec(27, &[(0, "RE"), (1, "1"), (2, "3112"), (3, "202404"), (4, "山田　花子"), (5, "2"), (6, "19700101")]),
        rec(14, &[(0, "HO"), (1, &ins), (4, "1"), (5, "300")]),
        rec(4, &[(0, "GO"), (1, "1"), (2, "300"), (3, "99")]),
    ];
    let out = read(&write(&dental, false));
    assert!(out.fatal.is_none() && out.rejected.is_empty(), "{:?} {:?}", out.fatal, out.rejected);
    assert_eq!(out.summary.kind, Some(FileKind::Dental));
    let mut no_ir = dental.clone();
    no_ir.remove(1);
    assert!(read(&write(&no_ir, false)).fatal.unwrap().message.contains("where IR was expected"));
}

#[test]
fn a_receipt_too_large_is_rejected_and_still_counted() {
    let mut records = three();
    let line = rec(44, &[(0, "SI"), (1, "12"), (2, "1"), (3, "112007410"), (6, "1")]);
    let copies = kura_formats::uke::MAX_RECEIPT_BYTES / (44 * 24) + 10;
    records.splice(12..12, std::iter::repeat_n(line, copies));
    let out = read(&write(&rego(records), false));
    let p = one_rejected(&out);
    assert!(p.iter().any(|p| p.message.contains("more than")), "{:?}", p.first());
    assert_eq!(out.rejected[0].records, 6 + copies);
    assert_eq!(out.summary.payer_records, 3);
}

#[test]
fn cp932_text_that_happens_to_be_utf8_is_still_cp932() {
    // A kanji whose second byte is 0x80–0xBF followed by half-width kana (0xE3 0x81 0xB1) is
    // also valid UTF-8 (U+3071): one such chance does not make a file UTF-8.
    let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&[0xE3, 0x81, 0xB1]);
    assert!(!bad);
    let text = text.into_owned();
    let out = broken(11, |r| r[4] = text.clone());
    assert!(out.fatal.is_none() && out.rejected.is_empty(), "{:?} {:?}", out.fatal, out.rejected);
    assert_eq!(out.accepted[1].records[3].fields[4], text);
}

#[test]
fn the_writer_refuses_what_the_reader_would() {
    let mut w = Writer::new(Vec::new());
    assert!(w.record(&["CO", "a\u{7}b"]).is_err());
    assert!(w.record(&["CO", "\u{E000}"]).is_err());
}
