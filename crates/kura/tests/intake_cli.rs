//! `kura synth --format uke` and `kura intake` through the real binary (issue 18 §1–2): the
//! round trip, the ledger's proofs of a file and of one record, malformed files refused or
//! their receipts rejected with their location and nothing half-loaded, malware refused, and
//! no name from the files anywhere in the home.

#[path = "../../scan/tests/support/clamd.rs"]
mod clamd;
mod common;
use clamd::Clamd;
use common::{fails, kura, ok, use_scanner};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn clamd() -> &'static Clamd {
    static CLAMD: OnceLock<Clamd> = OnceLock::new();
    CLAMD.get_or_init(Clamd::start)
}

fn init(home: &Path) {
    ok(&kura(home, &["init"]));
    use_scanner(home, &clamd().socket);
}

/// The UKE files under `dir`, sorted.
fn uke_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "UKE") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// One number from `kura sql --format csv` (the value under the header).
fn sql_value(home: &Path, dataset: &str, sql: &str) -> String {
    let out = ok(&kura(home, &["sql", "--dataset", dataset, "--format", "csv", sql]));
    out.lines().nth(1).unwrap_or_default().trim().to_string()
}

/// Lines of a CP932 file (without CRLF).
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec()).collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.iter().copied().chain(*b"\r\n")).collect()
}

/// Field `n` of a line replaced.
fn with_field(line: &[u8], n: usize, value: &[u8]) -> Vec<u8> {
    let mut fields: Vec<&[u8]> = line.split(|b| *b == b',').collect();
    fields[n] = value;
    fields.join(&b","[..])
}

/// Every check of a summary query agrees between the direct dataset and the one taken in.
const SUMMARIES: [&str; 6] = [
    "SELECT concat_ws('|', count(*), sum(total_points), sum(actual_days), sum(age), count(DISTINCT id1), count(DISTINCT id2), count(DISTINCT id4), count(DISTINCT id5), count(id5), sum(CASE WHEN id5 = '9' THEN 1 ELSE 0 END), count(DISTINCT institution_code), count(DISTINCT receipt_kind)) FROM re",
    "SELECT concat_ws('|', count(*), count(DISTINCT disease_code), sum(outcome), sum(CASE WHEN main THEN 1 ELSE 0 END), sum(CASE WHEN suspected THEN 1 ELSE 0 END)) FROM sy",
    "SELECT concat_ws('|', count(*), sum(points), sum(count), count(DISTINCT procedure_code)) FROM si",
    "SELECT concat_ws('|', count(*), sum(points * count), round(sum(quantity), 3), count(DISTINCT drug_code), count(DISTINCT practice_class)) FROM iy",
    "SELECT concat_ws('|', count(*), count(DISTINCT dpc_code), sum(dpc_outcome), sum(CASE WHEN emergency THEN 1 ELSE 0 END)) FROM dpc",
    "SELECT concat_ws('|', count(*), sum(dispensing_points), sum(drug_points), sum(prescriptions)) FROM pharmacy",
];

/// synth → UKE → intake gives the direct rows (by every summary; the exact row-by-row
/// comparison is kura-intake's `round_trip` test); each file's proof verifies, the file with
/// one byte changed does not; one record's proof verifies for that record alone; a second run
/// adds nothing twice and a refused file changes nothing.
#[test]
fn the_round_trip_and_the_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(&home);
    ok(&kura(&home, &["synth", "--persons", "150", "--seed", "9"]));
    let files = dir.path().join("files");
    let out = ok(&kura(&home, &["synth", "--persons", "150", "--seed", "9", "--format", "uke", "--out", files.to_str().unwrap()]));
    assert!(out.contains("UKE"), "{out}");
    let ukes = uke_files(&files);
    assert!(ukes.len() > 20, "{} files", ukes.len());
    // --out must name a new or empty directory.
    fails(&kura(&home, &["synth", "--persons", "150", "--seed", "9", "--format", "uke", "--out", files.to_str().unwrap()]));

    let proofs = dir.path().join("proofs");
    let out = ok(&kura(&home, &["intake", "--proofs", proofs.to_str().unwrap(), files.to_str().unwrap()]));
    let accepted: Vec<&str> = out.lines().filter(|l| l.starts_with("受理 accepted")).collect();
    assert_eq!(accepted.len(), ukes.len(), "one result line per file:\n{out}");
    assert!(accepted.iter().all(|l| l.contains("差戻し 0 件 rejected")), "{out}");
    for sql in SUMMARIES {
        assert_eq!(sql_value(&home, "ndb", sql), sql_value(&home, "receipts", sql), "{sql}");
    }

    // The proof of a file: it verifies with the file; the file with one byte changed does not.
    let key = ok(&kura(&home, &["ledger", "key"])).trim().to_string();
    let uke = &ukes[0];
    let rel = uke.strip_prefix(&files).unwrap();
    let proof = proofs.join(format!("{}.tlog-proof", rel.display()));
    assert!(proof.is_file(), "{}", proof.display());
    let v = ok(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &key, "--data", uke.to_str().unwrap()]));
    assert!(v.contains("proof verified"), "{v}");
    let mut changed = std::fs::read(uke).unwrap();
    // One digit of the first receipt's total points (its HO record's field 5) changed.
    let ho = changed.windows(4).position(|w| w == b"\nHO,").unwrap() + 1;
    let field5 = ho + changed[ho..].iter().enumerate().filter(|(_, b)| **b == b',').nth(4).unwrap().0 + 1;
    changed[field5] ^= 0x01;
    let copy = dir.path().join("changed.UKE");
    std::fs::write(&copy, &changed).unwrap();
    let err = fails(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &key, "--data", copy.to_str().unwrap()]));
    assert!(err.contains("SHA-256"), "{err}");

    // One record's proof: for the whole file at its place, and for whoever holds only the line.
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(uke).unwrap()))
    };
    let record_proof = dir.path().join("record.tlog-proof");
    ok(&kura(&home, &["ledger", "prove", "--sha256", &sha, "--record", "2", "--out", record_proof.to_str().unwrap()]));
    let v = ok(&kura(
        &home,
        &["proof", "verify", record_proof.to_str().unwrap(), "--log-key", &key, "--data", uke.to_str().unwrap(), "--record", "2"],
    ));
    assert!(v.contains("record 2 is as recorded"), "{v}");
    let line = lines(&std::fs::read(uke).unwrap())[2].clone();
    let only = dir.path().join("line.txt");
    std::fs::write(&only, &line).unwrap();
    // The sender computes the file's record salt and gives it with the record; without it the
    // log's hashes do not let a guessed record (a name, a birth date …) be tested.
    let salt = ok(&kura(&home, &["proof", "salt", uke.to_str().unwrap()])).trim().to_string();
    let rd = |salt: &str| {
        kura(
            &home,
            &[
                "proof",
                "verify",
                record_proof.to_str().unwrap(),
                "--log-key",
                &key,
                "--record-data",
                only.to_str().unwrap(),
                "--salt",
                salt,
            ],
        )
    };
    ok(&rd(&salt));
    fails(&rd(&"00".repeat(32)));
    let ledger = ok(&kura(&home, &["ledger", "show", "--json", "--limit", "1000000"]));
    let plain = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&line))
    };
    assert!(!ledger.contains(&plain), "a record's plain SHA-256 is in the log");
    // Another record's line, or the record changed, is not in that entry at that place.
    let mut other = line.clone();
    other.push(b'0');
    std::fs::write(&only, &other).unwrap();
    fails(&rd(&salt));
    let err = fails(&kura(
        &home,
        &["proof", "verify", record_proof.to_str().unwrap(), "--log-key", &key, "--data", copy.to_str().unwrap(), "--record", "2"],
    ));
    assert!(err.contains("is not the recorded file"), "{err}");
    // The record hashes are entries of the log of their own, beside the file's.
    let far = ok(&kura(&home, &["ledger", "show", "--json", "--limit", "1000000"]));
    assert!(far.contains("\"kind\": \"records\""), "record hashes are in the log");

    // The same file again (or its copy under another name) is refused: never loaded twice.
    let before = sql_value(&home, "receipts", "SELECT concat_ws('|', count(*), max(receipt_id)) FROM re");
    let again = dir.path().join("again.UKE");
    std::fs::copy(uke, &again).unwrap();
    let out = fails(&kura(&home, &["intake", again.to_str().unwrap()]));
    assert!(out.contains("already taken in"), "{out}");
    assert_eq!(sql_value(&home, "receipts", "SELECT concat_ws('|', count(*), max(receipt_id)) FROM re"), before);
    // Every file is listed in the dataset with the receipt ids its rows received.
    let listed = sql_value(&home, "receipts", "SELECT concat_ws('|', count(*), sum(receipts), max(last_receipt_id)) FROM intake_file");
    let n = before.split('|').next().unwrap();
    assert_eq!(listed, format!("{}|{n}|{n}", ukes.len()));

    // A new file after them: its receipts numbered on, the earlier ones carried over.
    let mut lines_of = lines(&std::fs::read(uke).unwrap());
    lines_of[0] = with_field(&lines_of[0].clone(), 7, b"209912");
    let fresh = dir.path().join("fresh.UKE");
    std::fs::write(&fresh, join(&lines_of)).unwrap();
    let out = ok(&kura(&home, &["intake", fresh.to_str().unwrap()]));
    assert!(out.contains("件引き継ぎ carried over"), "{out}");
    let added: u64 =
        out.lines().find(|l| l.starts_with("受理")).unwrap().split(": ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let n: u64 = n.parse().unwrap();
    let after = sql_value(&home, "receipts", "SELECT concat_ws('|', count(*), max(receipt_id), count(DISTINCT receipt_id)) FROM re");
    let total = n + added;
    assert_eq!(after, format!("{total}|{total}|{total}"));
    // Synthetic data never replaces received data.
    let out = fails(&kura(&home, &["synth", "--persons", "100", "--dataset", "receipts"]));
    assert!(out.contains("holds received data"), "{out}");
}

/// Each kind of malformed file: refused whole with its location, or its bad receipt rejected
/// and listed while the others load; a refused file changes no dataset; malware is refused; a
/// file billing as another institution is refused; no name the files carried is anywhere in
/// the home afterwards.
#[test]
fn malformed_files_are_refused_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(&home);
    let files = dir.path().join("files");
    ok(&kura(&home, &["synth", "--persons", "120", "--seed", "4", "--format", "uke", "--out", files.to_str().unwrap()]));
    // The 医科 file with the most receipts.
    let uke = uke_files(&files)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "RECEIPTC.UKE"))
        .max_by_key(|p| lines(&std::fs::read(p).unwrap()).iter().filter(|l| l.starts_with(b"RE,")).count())
        .unwrap();
    let original = lines(&std::fs::read(&uke).unwrap());
    let receipts = original.iter().filter(|l| l.starts_with(b"RE,")).count();
    assert!(receipts >= 3, "{receipts} receipts");
    let first_re = original.iter().position(|l| l.starts_with(b"RE,")).unwrap();
    let sy = original.iter().position(|l| l.starts_with(b"SY,")).unwrap();
    let ho = original.iter().position(|l| l.starts_with(b"HO,")).unwrap();
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let write = |name: &str, lines: &[Vec<u8>]| -> PathBuf {
        let p = bad.join(name);
        std::fs::write(&p, join(lines)).unwrap();
        p
    };

    // Refused whole (nothing loaded): truncated (no GO), UTF-8 instead of Shift_JIS.
    let truncated = write("truncated.UKE", &original[..original.len() - 1]);
    let utf8 = bad.join("utf8.UKE");
    let cp932 = std::fs::read(&uke).unwrap();
    let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&cp932);
    std::fs::write(&utf8, text.as_bytes()).unwrap();
    for (file, says) in [(&truncated, "GO"), (&utf8, "UTF-8")] {
        let out = fails(&kura(&home, &["intake", file.to_str().unwrap()]));
        let line = out.lines().find(|l| l.starts_with("拒否 refused")).unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains(&format!("{}:", file.display())) && line.contains(says), "{line}");
        assert!(out.contains("no receipt was added"), "{out}");
    }
    let catalog = ok(&kura(&home, &["catalog"]));
    assert!(!catalog.contains("receipts"), "a refused file made a dataset: {catalog}");

    // Receipt-level problems: the receipt is rejected and listed with its line; the others load.
    let mut bad_date = original.clone();
    bad_date[first_re] = with_field(&original[first_re], 6, b"20241399");
    let mut unknown = original.clone();
    unknown.insert(first_re + 1, b"ZZ,1,2".to_vec());
    let mut short = original.clone();
    let sy_fields: Vec<&[u8]> = original[sy].split(|b| *b == b',').collect();
    short[sy] = sy_fields[..sy_fields.len() - 1].join(&b","[..]);
    let mut digit = original.clone();
    let insurer = String::from_utf8(original[ho].split(|b| *b == b',').nth(1).unwrap().to_vec()).unwrap();
    let last = insurer.chars().last().unwrap().to_digit(10).unwrap();
    let wrong = format!("{}{}", &insurer[..insurer.len() - 1], (last + 1) % 10);
    digit[ho] = with_field(&original[ho], 1, wrong.as_bytes());
    let cases = [
        (write("date.UKE", &bad_date), first_re + 1, "生年月日"),
        (write("unknown.UKE", &unknown), first_re + 2, "ZZ"),
        (write("fields.UKE", &short), sy + 1, "SY"),
        (write("digit.UKE", &digit), ho + 1, "保険者番号"),
    ];
    for (file, line, says) in &cases {
        let out = ok(&kura(&home, &["intake", "--dataset", "checked", file.to_str().unwrap()]));
        let head = out.lines().find(|l| l.starts_with("受理 accepted")).unwrap_or_else(|| panic!("{out}"));
        assert!(head.contains(&format!("{} 件 receipts, 差戻し 1 件 rejected", receipts - 1)), "{head}");
        let detail = out.lines().find(|l| l.contains("差戻し rejected receipt")).unwrap_or_else(|| panic!("{out}"));
        assert!(detail.contains(&format!("{}:{line}", file.display())) && detail.contains(says), "{detail}");
    }
    let loaded = sql_value(&home, "checked", "SELECT count(*) FROM re");
    assert_eq!(loaded, ((receipts - 1) * cases.len()).to_string());

    // Malware (the EICAR test file named as a UKE file) is refused before it is read.
    let eicar = bad.join("eicar.UKE");
    std::fs::write(&eicar, kura_scan::eicar()).unwrap();
    let out = fails(&kura(&home, &["intake", "--dataset", "checked", eicar.to_str().unwrap()]));
    assert!(out.lines().any(|l| l.starts_with("拒否 refused") && l.contains("malware")), "{out}");
    // … and listed where the operators look, with its ledger entry (HIC-S1).
    let status = ok(&kura(&home, &["scanner", "status"]));
    assert!(status.lines().any(|l| l.contains("intake") && l.contains("eicar.UKE") && l.contains("(ledger ")), "{status}");

    // A provider submits only its own institution's files.
    let out = fails(&kura(&home, &["intake", "--dataset", "checked", "--institution", "0000000000", uke.to_str().unwrap()]));
    assert!(out.contains("you may submit only your own"), "{out}");

    // Links are not followed (a loop cannot stall the run), and a FIFO is not read.
    let looped = dir.path().join("looped");
    std::fs::create_dir_all(&looped).unwrap();
    std::os::unix::fs::symlink(".", looped.join("a")).unwrap();
    std::os::unix::fs::symlink(".", looped.join("b")).unwrap();
    std::fs::copy(&uke, looped.join("one.UKE")).unwrap();
    let out = ok(&kura(&home, &["intake", "--dataset", "looped", looped.to_str().unwrap()]));
    assert_eq!(out.lines().filter(|l| l.starts_with("受理 accepted")).count(), 1, "{out}");
    let fifo = dir.path().join("fifo.UKE");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = fails(&kura(&home, &["intake", "--dataset", "looped", fifo.to_str().unwrap()]));
    assert!(out.contains("neither a regular file"), "{out}");
    // A name in a broken record is not repeated in the problem.
    let mut broken = original.clone();
    let re_line = original[first_re].clone();
    let cut = re_line.iter().rposition(|b| *b == b',').unwrap();
    let kana_at = re_line[..cut].iter().rposition(|b| *b == b',').unwrap();
    broken[first_re] = re_line[..kana_at].to_vec();
    broken.insert(first_re + 1, re_line[kana_at + 1..].to_vec());
    let broken_file = write("broken.UKE", &broken);
    let out = kura(&home, &["intake", "--dataset", "checked", broken_file.to_str().unwrap()]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let kana = encoding_rs::SHIFT_JIS.decode(&re_line[kana_at + 1..cut]).0.to_string();
    assert!(kana.chars().count() > 2 && !text.contains(&kana), "the kana name is repeated: {text}");
    assert!(text.contains(&format!("{}:{}", broken_file.display(), first_re + 2)), "{text}");

    // Names and card numbers existed only in memory: none is anywhere in the home.
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for l in original.iter().filter(|l| l.starts_with(b"RE,")) {
        let name = l.split(|b| *b == b',').nth(4).unwrap().to_vec();
        let utf8 = encoding_rs::SHIFT_JIS.decode(&name).0.as_bytes().to_vec();
        needles.push(name);
        needles.push(utf8);
    }
    let mut stack = vec![home.clone()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                seen += 1;
                for n in &needles {
                    assert!(!bytes.windows(n.len()).any(|w| w == n.as_slice()), "{} holds a patient's name", p.display());
                }
            }
        }
    }
    assert!(seen > 5, "{seen} files searched");
}
