//! The command-line contract: init, synth, catalog, sql and their errors, through the real binary.

mod common;
use common::{kura, ok};
use std::process::Command;

#[test]
fn init_synth_catalog_sql() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = ok(&kura(&home, &["init"]));
    assert!(out.contains("master key"));
    // A second init refuses and says why.
    let again = kura(&home, &["init"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a Kura home"));

    let out = ok(&kura(&home, &["synth", "--persons", "2000", "--seed", "9"]));
    assert!(out.contains("2000"), "{out}");
    let cat = ok(&kura(&home, &["catalog"]));
    for t in ["re", "sy", "si", "iy", "dpc", "pharmacy", "checkup", "care_cert", "care_claim", "m_disease", "レセプト共通"] {
        assert!(cat.contains(t), "catalogue lacks {t}");
    }
    let cols = ok(&kura(&home, &["catalog", "--table", "re"]));
    assert!(cols.contains("id5") && cols.contains("identifier"));
    let verified = ok(&kura(&home, &["catalog", "--verify"]));
    assert!(verified.contains("verified"));

    let csv = ok(&kura(&home, &["sql", "--format", "csv", "SELECT count(*) AS n FROM m_prefecture"]));
    assert_eq!(csv.trim(), "n\n47");
    let granted = ok(&kura(&home, &["sql", "--grant", "re.age", "--format", "json", "SELECT max(age) AS oldest FROM re"]));
    let v: serde_json::Value = serde_json::from_str(granted.trim()).unwrap();
    assert!(v["oldest"].as_f64().unwrap() > 80.0);
    // Integers above 2^53 keep every digit (they used to pass through f64: ...992, ...994),
    // with u64 and floats beside them.
    let big = ok(&kura(
        &home,
        &[
            "sql",
            "--format",
            "json",
            "SELECT 9007199254740993 AS a, -9007199254740993 AS b, arrow_cast(18446744073709551615, 'UInt64') AS c, 0.5 AS d",
        ],
    ));
    assert_eq!(big.trim(), r#"{"a":9007199254740993,"b":-9007199254740993,"c":18446744073709551615,"d":0.5}"#);

    // Outside the grant: a clear error and a failing exit code.
    let denied = kura(&home, &["sql", "--grant", "re.age", "SELECT id5 FROM re"]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("not granted"));
    let refused = kura(&home, &["sql", "COPY re TO '/tmp/kura-escape.csv'"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("COPY"));
    assert!(!std::path::Path::new("/tmp/kura-escape.csv").exists());

    // A damaged file fails verification with its name and a non-zero exit.
    let catalog: serde_json::Value = serde_json::from_str(&ok(&kura(&home, &["catalog", "--json"]))).unwrap();
    let rel = catalog["datasets"]["ndb"]["tables"][0]["files"][0]["path"].as_str().unwrap().to_string();
    let path = home.join("data").join(&rel);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let bad = kura(&home, &["catalog", "--verify"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).contains(&rel));
}

#[test]
fn help_teaches_in_japanese_and_english() {
    let o = Command::new(env!("CARGO_BIN_EXE_kura")).arg("--help").output().unwrap();
    let text = ok(&o);
    assert!(text.contains("医療・介護データ") && text.contains("trusted research environment"));
    for cmd in ["init", "demo", "synth", "catalog", "sql", "bench"] {
        assert!(text.contains(cmd), "--help lacks {cmd}");
    }
    let sql = ok(&Command::new(env!("CARGO_BIN_EXE_kura")).args(["sql", "--help"]).output().unwrap());
    assert!(sql.contains("--grant") && sql.contains("許可"));
}

#[test]
fn commands_on_a_missing_home_say_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let o = kura(&dir.path().join("none"), &["catalog"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("kura init"));
    // A month that does not exist is named, on a home that exists (so that the month check,
    // not the missing home, is what refuses it).
    let home = dir.path().join("h");
    assert!(kura(&home, &["init"]).status.success());
    for month in ["202413", "202400", "2024"] {
        let bad = kura(&home, &["synth", "--start", month]);
        assert!(!bad.status.success(), "--start {month} accepted");
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains(&format!("--start {month}")) && err.contains("YYYYMM"), "{month}: {err}");
    }
    assert!(!home.join("data/ndb").exists(), "nothing was written");
}

/// A reader that stops early (`kura catalog | head -1`) closes Kura's output: Kura stops
/// quietly with the broken-pipe code, without a panic message. The pipe's reading end is
/// closed before Kura writes anything, so the write always fails.
#[test]
fn a_closed_output_stops_kura_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kura"))
        .arg("--home")
        .arg(&home)
        .arg("catalog")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
