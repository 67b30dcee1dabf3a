//! The research lifecycle through the real `kura` binary: the contract commands of
//! `kura application …` and `kura project …` (WG-6, HIC-P1, HIC-P3).

#[path = "../../scan/tests/support/clamd.rs"]
mod clamd;
mod common;
use common::{add_users, fails, kura, last_line, ok, use_scanner};

#[test]
fn apply_review_decide_and_provision_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    let scanner = clamd::Clamd::start();
    use_scanner(&home, &scanner.socket);
    ok(&kura(&home, &["synth", "--persons", "300", "--seed", "5", "--months", "2"]));
    add_users(
        &home,
        &[
            ("r1", "researcher", "1310000001"),
            ("r2", "researcher", "2710000002"),
            ("c1", "custodian", "1300000000"),
            ("v1", "reviewer", "3310000003"),
            ("v2", "reviewer", "3310000003"),
        ],
    );

    // A column the catalogue does not have is refused, naming it; nothing is filed.
    let e = fails(&kura(
        &home,
        &["application", "new", "--as", "r1", "--title", "T", "--purpose", "P", "--dataset", "ndb", "--column", "re.name"],
    ));
    assert!(e.contains("no column 'name'"), "{e}");
    // The contract: the id on the last line.
    let out = ok(&kura(
        &home,
        &[
            "application",
            "new",
            "--as",
            "r1",
            "--title",
            "糖尿病の受療動向",
            "--purpose",
            "地域差を調べる",
            "--dataset",
            "ndb",
            "--column",
            "re.sex=層別",
            "re.age",
            "sy.disease_code",
            "--member",
            "r2",
        ],
    ));
    let id = last_line(&out);
    assert_eq!(id, "APP-000001", "{out}");
    // Every member confirms first.
    let e = fails(&kura(&home, &["application", "submit", &id, "--as", "r1"]));
    assert!(e.contains("member(s) r2 have not confirmed"), "{e}");
    ok(&kura(&home, &["application", "join", &id, "--as", "r2"]));
    // The protocol PDF: attached by the applicant, listed with its hash, read back exactly;
    // anything but a PDF refused; an existing file never overwritten.
    let pdf = dir.path().join("protocol.pdf");
    let doc = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n";
    std::fs::write(&pdf, doc).unwrap();
    let out = ok(&kura(&home, &["application", "attach", &id, "--as", "r1", pdf.to_str().unwrap()]));
    assert!(out.contains("attached protocol.pdf as #1"), "{out}");
    // A PDF carrying malware (here the tests' YARA marker) is refused and the detection
    // recorded (HIC-S1), as every file that comes in.
    let bad = dir.path().join("bad.pdf");
    std::fs::write(&bad, format!("%PDF-1.7\n{}\n%%EOF\n", clamd::YARA_MARKER)).unwrap();
    let e = fails(&kura(&home, &["application", "attach", &id, "--as", "r1", bad.to_str().unwrap()]));
    assert!(e.contains(clamd::YARA_RULE), "{e}");
    let status = ok(&kura(&home, &["scanner", "status"]));
    assert!(status.contains("bad.pdf") && status.contains(&id), "the detection is listed: {status}");
    // A name the step would refuse is refused before any scan (every scan is recorded).
    let long = dir.path().join(format!("{}.pdf", "x".repeat(200)));
    std::fs::write(&long, format!("%PDF-1.7\n{}\n%%EOF\n", clamd::YARA_MARKER)).unwrap();
    let e = fails(&kura(&home, &["application", "attach", &id, "--as", "r1", long.to_str().unwrap()]));
    assert!(e.contains("attachment") && !e.contains(clamd::YARA_RULE), "{e}");
    assert_eq!(ok(&kura(&home, &["scanner", "status"])).matches(".pdf").count(), status.matches(".pdf").count());
    let fake = dir.path().join("fake.pdf");
    std::fs::write(&fake, b"MZ\x90\x00 not a pdf").unwrap();
    let e = fails(&kura(&home, &["application", "attach", &id, "--as", "r1", fake.to_str().unwrap()]));
    assert!(e.contains("not a PDF"), "{e}");
    let e = fails(&kura(&home, &["application", "attach", &id, "--as", "r2", pdf.to_str().unwrap()]));
    assert!(e.contains("only the applicant"), "{e}");
    use sha2::Digest;
    let shown = ok(&kura(&home, &["application", "show", &id]));
    assert!(shown.contains(&format!("protocol.pdf  {} bytes  sha256 {}", doc.len(), hex::encode(sha2::Sha256::digest(doc)))), "{shown}");
    let back = dir.path().join("back.pdf");
    ok(&kura(&home, &["application", "attachment", &id, "1", "--as", "r2", "--out", back.to_str().unwrap()]));
    assert_eq!(std::fs::read(&back).unwrap(), doc);
    let e = fails(&kura(&home, &["application", "attachment", &id, "1", "--as", "r2", "--out", back.to_str().unwrap()]));
    assert!(e.contains("never overwritten"), "{e}");
    ok(&kura(&home, &["application", "submit", &id, "--as", "r1"]));
    // The wrong party is refused with what to do.
    let e = fails(&kura(&home, &["application", "vote", &id, "--as", "r1", "--approve"]));
    assert!(e.contains("投票は審査委員だけができます") && e.contains("only a committee reviewer may vote on it"), "{e}");
    ok(&kura(&home, &["application", "check", &id, "--as", "c1", "--accept"]));
    ok(&kura(&home, &["application", "vote", &id, "--as", "v1", "--approve", "--comment", "公益性あり"]));
    ok(&kura(&home, &["application", "vote", &id, "--as", "v2", "--approve"]));
    // Minimisation: two of the three columns.
    let out = ok(&kura(&home, &["application", "decide", &id, "--as", "c1", "--approve", "--column", "re.sex", "sy.disease_code"]));
    assert!(out.contains("approved_with_conditions"), "{out}");
    let out = ok(&kura(&home, &["application", "accept", &id, "--as", "r1"]));
    let project = last_line(&out);
    assert_eq!(project, "PRJ-000001", "{out}");

    // The project holds exactly the approved columns and the team.
    let v: serde_json::Value = serde_json::from_str(&ok(&kura(&home, &["project", "show", &project, "--json"]))).unwrap();
    assert_eq!(v["columns"], serde_json::json!([["re", "sex"], ["sy", "disease_code"]]));
    assert_eq!(v["members"], serde_json::json!(["r1", "r2"]));
    // The application shows its clock and its history, each step with its ledger entry.
    let v: serde_json::Value = serde_json::from_str(&ok(&kura(&home, &["application", "show", &id, "--json"]))).unwrap();
    assert_eq!(v["state"], "provisioned");
    assert_eq!(v["clock"]["overdue"], false);
    assert!(v["clock"]["provisioned_after_secs"].as_i64().is_some(), "{v}");
    assert_eq!(v["events"].as_array().unwrap().len(), 10, "{v}"); // create, join, the attachment (an edit), submit … provision
    let text = ok(&kura(&home, &["application", "show", &id]));
    assert!(text.contains("クロック clock:") && text.contains("ledger #"), "{text}");
    assert!(ok(&kura(&home, &["application", "list"])).contains(&id));
    assert!(ok(&kura(&home, &["project", "list"])).contains(&project));
    // The ledger holds the steps, and that the console acted for the users.
    let log = ok(&kura(&home, &["ledger", "show", "--json"]));
    for step in ["application.submit", "application.check_accept", "application.vote", "application.approve", "application.provision"] {
        assert!(log.contains(step), "{step} missing from the ledger");
    }
    assert!(log.contains("[--as: console:tester]"), "the proxy is recorded");
}
