//! The airlock's command line (issues 17 and 22), through the real binary: the disclosure
//! policy (HIC-IO2).

#[path = "../../scan/tests/support/clamd.rs"]
mod clamd;
mod common;
use clamd::{Clamd, EICAR_SIGNATURE, YARA_MARKER, YARA_RULE, zip_stored};
use common::{add_users, fails, kura, last_line, ok, set_config, use_scanner};
use sha2::Digest;
use std::path::Path;
use std::sync::OnceLock;

/// One clamd for this test binary, with the test signatures (EICAR by hash, a YARA rule).
fn clamd() -> &'static Clamd {
    static CLAMD: OnceLock<Clamd> = OnceLock::new();
    CLAMD.get_or_init(Clamd::start)
}

/// Sets `[airlock] detections_per_day` in `home`'s kura.toml.
fn detection_limit(home: &Path, n: u32) {
    set_config(home, "detections_per_day", &n.to_string());
}

/// `kura init`, with the scanner of this test binary.
fn init(home: &Path) {
    ok(&kura(home, &["init"]));
    use_scanner(home, &clamd().socket);
}

/// `kura policy show` prints the NDB rules by default, with Kura's addition said; every preset
/// shows its own version and hash; `--file` prints a file that `kura policy check` accepts.
#[test]
fn policy_show_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let ndb = ok(&kura(&home, &["policy", "show"]));
    assert!(ndb.contains("ndb") && ndb.contains("1〜9"), "{ndb}");
    assert!(ndb.contains("Kura's addition"), "the dominance rule is said to be Kura's: {ndb}");
    assert!(ndb.contains("institutions, pharmacies, insurers"), "{ndb}");
    let mut hashes = Vec::new();
    let mut acro_hash = String::new();
    for preset in ["ndb", "opensafely", "acro", "cms-vrdc"] {
        let json = ok(&kura(&home, &["policy", "show", "--preset", preset, "--json"]));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["name"], preset);
        hashes.push(v["sha256"].as_str().unwrap().to_owned());
        if preset == "acro" {
            acro_hash = v["sha256"].as_str().unwrap().to_owned();
        }
    }
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 4);
    let unknown = kura(&home, &["policy", "show", "--preset", "lenient"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("lenient"));

    // The shipped file round-trips through check with the same hash.
    let text = ok(&kura(&home, &["policy", "show", "--preset", "acro", "--file"]));
    let file = dir.path().join("acro.toml");
    std::fs::write(&file, &text).unwrap();
    let checked = ok(&kura(&home, &["policy", "check", file.to_str().unwrap()]));
    assert!(checked.contains(&acro_hash), "{checked}");
    assert!(checked.contains("acro") && checked.contains("OK"), "{checked}");

    // A broken file: its line and the field are named, and the exit fails.
    let broken = text.replace("threshold = 10", "threshold = 1");
    std::fs::write(&file, &broken).unwrap();
    let out = kura(&home, &["policy", "check", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("persons.threshold"), "{err}");
    let broken = text.replace("p = 0.1", "p = \"ten\"");
    std::fs::write(&file, &broken).unwrap();
    let out = kura(&home, &["policy", "check", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = broken.lines().position(|l| l.contains("\"ten\"")).unwrap() + 1;
    assert!(!out.status.success() && err.contains(&format!("acro.toml:{line}:")), "{err}");

    // The NDB policy with an institutions threshold above what the checker counts (16).
    let ndb = ok(&kura(&home, &["policy", "show", "--preset", "ndb", "--file"]));
    assert!(ndb.contains("enabled = true\nthreshold = 3\n"), "the test edits the units table");
    std::fs::write(&file, ndb.replace("enabled = true\nthreshold = 3\n", "enabled = true\nthreshold = 17\n")).unwrap();
    let out = kura(&home, &["policy", "check", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("units.threshold") && err.contains("16"), "{err}");
}

/// Files an application for `applicant` asking for `columns`, takes it through review and the
/// agreement; returns the project's id.
fn provision(home: &Path, applicant: &str, columns: &[&str]) -> String {
    let mut args = vec!["application", "new", "--as", applicant, "--title", "T", "--purpose", "P", "--dataset", "ndb", "--column"];
    args.extend_from_slice(columns);
    let id = last_line(&ok(&kura(home, &args)));
    ok(&kura(home, &["application", "submit", &id, "--as", applicant]));
    ok(&kura(home, &["application", "check", &id, "--as", "c1", "--accept"]));
    ok(&kura(home, &["application", "vote", &id, "--as", "v1", "--approve"]));
    ok(&kura(home, &["application", "vote", &id, "--as", "v2", "--approve"]));
    ok(&kura(home, &["application", "decide", &id, "--as", "c1", "--approve"]));
    last_line(&ok(&kura(home, &["application", "accept", &id, "--as", applicant])))
}

/// A home under `dir` with 400 synthetic persons (seed 5, two months) and the users r1
/// (researcher), c1 (custodian), v1 and v2 (reviewers).
fn population(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("home");
    init(&home);
    ok(&kura(&home, &["synth", "--persons", "400", "--seed", "5", "--months", "2"]));
    add_users(
        &home,
        &[
            ("r1", "researcher", "1310000001"),
            ("c1", "custodian", "1300000000"),
            ("v1", "reviewer", "3310000003"),
            ("v2", "reviewer", "3310000003"),
        ],
    );
    home
}

/// The main path of a take-out through the contract's commands (issue 17 §3): a table made by
/// a query and checked from the data (the grant holds no person ID), a figure that needs both
/// reviewers' confirmation, two blind reviewers outside the project, a custodian's release, and
/// a package that verifies offline — and fails to once a file in it is changed.
#[test]
fn take_out_from_a_query_to_a_package_that_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(&home);
    ok(&kura(&home, &["synth", "--persons", "400", "--seed", "5", "--months", "2"]));
    add_users(
        &home,
        &[
            ("r1", "researcher", "1310000001"),
            ("r2", "researcher", "1310000001"),
            ("c1", "custodian", "1300000000"),
            ("v1", "reviewer", "3310000003"),
            ("v2", "reviewer", "3310000003"),
        ],
    );
    let project = provision(&home, "r1", &["re.receipt_id", "re.sex", "re.age"]);
    let q = dir.path().join("by_sex.sql");
    std::fs::write(&q, "SELECT sex, count(*) AS receipts FROM re GROUP BY sex").unwrap();
    let query = format!("@{}", q.display());

    // Only a member of the project makes an output from its workspace.
    let e = fails(&kura(&home, &["output", "new", "--project", &project, "--as", "r2", "--name", "by_sex", "--query", &query]));
    assert!(e.contains("not a member"), "{e}");
    let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "by_sex", "--query", &query])));
    assert_eq!(id, "OUT-000001");
    // Every cell of this table stands for many persons: it passes, cell by cell.
    let check = ok(&kura(&home, &["output", "check", &id]));
    assert!(check.contains("by_sex.csv: pass") && check.lines().filter(|l| l.contains("  pass  shown")).count() == 2, "{check}");
    let json: serde_json::Value = serde_json::from_str(&ok(&kura(&home, &["output", "check", &id, "--json"]))).unwrap();
    assert_eq!(json["pass"], true);
    // A figure no query produced: value-based checks only, so the request no longer passes.
    let fig = dir.path().join("figure.svg");
    std::fs::write(&fig, "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>受診率</text></svg>").unwrap();
    ok(&kura(&home, &["output", "add", &id, "--as", "r1", fig.to_str().unwrap(), "--note", "図1"]));
    let e = fails(&kura(&home, &["output", "check", &id]));
    assert!(e.contains("figure.svg: review") && e.contains("file.unchecked"), "{e}");

    ok(&kura(&home, &["output", "submit", &id, "--as", "r1"]));
    // The author does not review it; a researcher outside the project does not even learn
    // that it exists.
    let e = fails(&kura(&home, &["output", "review", &id, "--as", "r1", "--approve"]));
    assert!(e.contains("two-person rule") || e.contains("your role is researcher"), "{e}");
    let e = fails(&kura(&home, &["output", "review", &id, "--as", "r2", "--approve"]));
    assert!(e.contains("no output request 'OUT-000001'"), "{e}");
    let first = ok(&kura(&home, &["output", "review", &id, "--as", "v1", "--approve", "--comment", "OK"]));
    assert!(first.contains("partially_reviewed"), "{first}");
    // The second reviewer cannot see the first vote.
    let seen = ok(&kura(&home, &["output", "show", &id, "--as", "v2"]));
    assert!(!seen.contains("approve OK") && seen.contains("hidden until both have voted"), "{seen}");
    ok(&kura(&home, &["output", "review", &id, "--as", "v2", "--approve"]));
    // The figure is not released before both reviewers confirmed it.
    let e = fails(&kura(&home, &["output", "release", &id, "--as", "c1"]));
    assert!(e.contains("figure.svg") && e.contains("confirmation"), "{e}");
    ok(&kura(&home, &["output", "confirm", &id, "--as", "v1", "--file", "2"]));
    ok(&kura(&home, &["output", "confirm", &id, "--as", "v2", "--file", "2"]));
    let e = fails(&kura(&home, &["output", "release", &id, "--as", "v1"]));
    assert!(e.contains("your role is reviewer"), "{e}");
    let released = ok(&kura(&home, &["output", "release", &id, "--as", "c1"]));
    assert!(released.contains("released") && released.contains("release.tlog-proof"), "{released}");

    // Reviewers and custodians see only what the author submitted: not a draft withdrawn
    // before it was submitted, not a request back with its author for changes (its new files
    // are work in progress) until it is submitted again.
    let draft = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "wip", "--query", &query])));
    ok(&kura(&home, &["output", "withdraw", &draft, "--as", "r1"]));
    for who in ["v1", "c1"] {
        let e = fails(&kura(&home, &["output", "show", &draft, "--as", who]));
        assert!(e.contains("no output request"), "{who}: {e}");
        assert!(!ok(&kura(&home, &["output", "list", "--as", who])).contains(&draft), "{who}");
    }
    let back = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "again", "--query", &query])));
    ok(&kura(&home, &["output", "submit", &back, "--as", "r1"]));
    ok(&kura(&home, &["output", "review", &back, "--as", "v1", "--changes", "--comment", "bands"]));
    ok(&kura(&home, &["output", "review", &back, "--as", "v2", "--changes"]));
    let e = fails(&kura(&home, &["output", "show", &back, "--as", "v2"]));
    assert!(e.contains("no output request"), "returned: the author's again: {e}");
    ok(&kura(&home, &["output", "submit", &back, "--as", "r1"]));
    assert!(ok(&kura(&home, &["output", "show", &back, "--as", "v2"])).contains("submitted"));
    // Back with its author, given new work, then withdrawn: the new work stays the project's.
    let gone = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "gone", "--query", &query])));
    ok(&kura(&home, &["output", "submit", &gone, "--as", "r1"]));
    ok(&kura(&home, &["output", "review", &gone, "--as", "v1", "--changes"]));
    ok(&kura(&home, &["output", "review", &gone, "--as", "v2", "--changes"]));
    let wip = dir.path().join("wip.txt");
    std::fs::write(&wip, "work in progress").unwrap();
    ok(&kura(&home, &["output", "add", &gone, "--as", "r1", wip.to_str().unwrap()]));
    ok(&kura(&home, &["output", "withdraw", &gone, "--as", "r1"]));
    for who in ["v1", "v2", "c1"] {
        let e = fails(&kura(&home, &["output", "show", &gone, "--as", who]));
        assert!(e.contains("no output request"), "{who}: {e}");
    }

    // Only the project's members download it: the files, the manifest and the proof.
    let out = dir.path().join("package");
    let e = fails(&kura(&home, &["output", "download", &id, "--as", "v1", "--out", out.to_str().unwrap()]));
    assert!(e.contains("no output request"), "{e}");
    ok(&kura(&home, &["output", "download", &id, "--as", "r1", "--out", out.to_str().unwrap()]));
    let csv = std::fs::read_to_string(out.join("by_sex.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("sex,receipts"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(m["request"], "OUT-000001");
    assert_eq!(m["files"].as_array().unwrap().len(), 2);
    assert_eq!(m["reviewers"].as_array().unwrap().len(), 2);
    // The members see the reviewers by pseudonym, keyed by a secret of the home: not a hash of
    // the login that a member could recompute for candidate logins.
    let seen = ok(&kura(&home, &["output", "show", &id, "--as", "r1"]));
    assert!(seen.contains("review R-") && !seen.contains("v1") && !seen.contains("v2"), "{seen}");
    // The manifest names them as the members see them.
    for r in m["reviewers"].as_array().unwrap() {
        assert!(seen.contains(r.as_str().unwrap()), "{r} in {seen}");
    }
    for login in ["v1", "v2"] {
        let unkeyed = hex::encode(sha2::Sha256::digest(format!("kura/output-reviewer/v1\0{id}\0{login}").as_bytes()));
        assert!(!seen.contains(&unkeyed[..8]), "{seen}");
    }
    // Verdicts by rule name only: no person counts or evidence (issue 22 §8).
    assert!(!manifest.contains("persons\"") && !manifest.contains("evidence") && !manifest.contains("largest"), "{manifest}");

    // Anyone with the log's key verifies the package offline: the manifest against the ledger,
    // each file against the manifest.
    let key = last_line(&ok(&kura(&home, &["ledger", "key"])));
    let proof = out.join("release.tlog-proof");
    let args = |data: &Path| {
        vec![
            "proof".to_string(),
            "verify".into(),
            proof.display().to_string(),
            "--log-key".into(),
            key.clone(),
            "--data".into(),
            data.display().to_string(),
        ]
    };
    let run = |data: &Path| {
        let a = args(data);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        kura(&home, &a)
    };
    let verified = ok(&run(&out));
    assert!(
        verified.contains("proof verified") && verified.contains("output.release") && verified.contains("match its manifest"),
        "{verified}"
    );
    // A changed file of the package is caught.
    std::fs::write(out.join("by_sex.csv"), csv.replace(",", ";")).unwrap();
    let e = fails(&run(&out));
    assert!(e.contains("by_sex.csv") && e.contains("differs from the manifest"), "{e}");
    std::fs::write(out.join("by_sex.csv"), &csv).unwrap();
    ok(&run(&out));
    // A changed manifest is caught by the ledger.
    std::fs::write(out.join("manifest.json"), manifest.replace("OUT-000001", "OUT-000002")).unwrap();
    let e = fails(&run(&out));
    assert!(e.contains("differs from the recorded"), "{e}");

    // Every step is in the ledger.
    let log = ok(&kura(&home, &["ledger", "show", "--json"]));
    for action in [
        "output.check",
        "output.create",
        "output.add",
        "output.submit",
        "output.review",
        "output.decide",
        "output.confirm",
        "output.release",
        "output.download",
    ] {
        assert!(log.contains(&format!("\"{action}\"")), "{action}");
    }
}

/// A file changed after its hash was taken is refused at release (issue 22 §4).
#[test]
fn a_file_changed_after_it_was_made_is_not_released() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(&home);
    ok(&kura(&home, &["synth", "--persons", "300", "--seed", "6", "--months", "2"]));
    add_users(
        &home,
        &[
            ("r1", "researcher", "1310000001"),
            ("c1", "custodian", "1300000000"),
            ("v1", "reviewer", "3310000003"),
            ("v2", "reviewer", "3310000003"),
        ],
    );
    let project = provision(&home, "r1", &["re.receipt_id", "re.sex"]);
    let id = last_line(&ok(&kura(
        &home,
        &["output", "new", "--project", &project, "--as", "r1", "--name", "n", "--query", "SELECT sex, count(*) AS n FROM re GROUP BY sex"],
    )));
    ok(&kura(&home, &["output", "submit", &id, "--as", "r1"]));
    ok(&kura(&home, &["output", "review", &id, "--as", "v1", "--approve"]));
    ok(&kura(&home, &["output", "review", &id, "--as", "v2", "--approve"]));
    // The sealed file is replaced by another sealed file of the same request.
    let sealed = home.join("airlock").join("outputs").join(&id).join("1.sealed");
    let mut bytes = std::fs::read(&sealed).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&sealed, &bytes).unwrap();
    let e = fails(&kura(&home, &["output", "release", &id, "--as", "c1"]));
    assert!(e.contains("cannot be released") && e.contains("is not the one made"), "{e}");
    assert!(!home.join("airlock").join("releases").join(&id).exists(), "nothing was released");
}

/// `(age, cumulative persons)` from one end of the ages.
type Tail = Vec<(i64, i64)>;

/// Owner's SQL: persons (valid ID5) whose oldest receipt age is at most `x`, for every `x`,
/// as `(x, cumulative persons)`; and the same for the youngest age from the top.
fn age_tails(home: &Path) -> (Tail, Tail) {
    let read = |sql: &str| -> Tail {
        let csv = ok(&kura(home, &["sql", "--format", "csv", sql]));
        csv.lines()
            .skip(1)
            .map(|l| {
                let (a, b) = l.split_once(',').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect()
    };
    let low = read(
        "SELECT m, sum(count(*)) OVER (ORDER BY m) FROM (SELECT id5, max(age) AS m FROM re WHERE length(id5) = 64 GROUP BY id5) GROUP BY m ORDER BY m",
    );
    let high = read(
        "SELECT m, sum(count(*)) OVER (ORDER BY m DESC) FROM (SELECT id5, min(age) AS m FROM re WHERE length(id5) = 64 GROUP BY id5) GROUP BY m ORDER BY m DESC",
    );
    (low, high)
}

/// A query that differs from `SELECT sex, count(*) … GROUP BY sex` by 1 to 9 persons, derived
/// from the population: leave out everyone whose receipts are all of the youngest (or oldest)
/// ages.
fn nearly_everyone(home: &Path) -> String {
    let (low, high) = age_tails(home);
    if let Some((x, _)) = low.iter().rev().find(|(_, n)| (1..10).contains(n)) {
        return format!("SELECT sex, count(*) AS receipts FROM re WHERE age > {x} GROUP BY sex");
    }
    let (x, _) = high.iter().rev().find(|(_, n)| (1..10).contains(n)).expect("the population has 1 to 9 persons at one end of the ages");
    format!("SELECT sex, count(*) AS receipts FROM re WHERE age < {x} GROUP BY sex")
}

/// An output through to review: made by `sql` in `project` by `author`, submitted and approved
/// by both reviewers. Returns its id.
fn reviewed(home: &Path, project: &str, author: &str, name: &str, sql: &str) -> String {
    let id = last_line(&ok(&kura(home, &["output", "new", "--project", project, "--as", author, "--name", name, "--query", sql])));
    ok(&kura(home, &["output", "submit", &id, "--as", author]));
    ok(&kura(home, &["output", "review", &id, "--as", "v1", "--approve"]));
    ok(&kura(home, &["output", "review", &id, "--as", "v2", "--approve"]));
    id
}

/// The differencing memory (issue 17 §2, issue 22 §1, §2, §4), through the CLI on a population
/// where the answer is known: two tables by sex, one of which leaves out 1 to 9 persons, each
/// pass on their own (every cell stands for many persons), but not together.
/// - §4: approved in parallel and released at the same moment, exactly one leaves; the other is
///   refused naming the first.
/// - §1: the same researcher's other project is compared with what the first released (the
///   attacker is a person; pseudonyms differ between projects, the memory's person keys do not);
///   a researcher with no project in common is not.
/// - §2: the new table is compared with the released one both ways (it holds fewer persons).
#[test]
fn outputs_that_together_isolate_persons_do_not_both_leave() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(&home);
    ok(&kura(&home, &["synth", "--persons", "400", "--seed", "5", "--months", "2"]));
    add_users(
        &home,
        &[
            ("r1", "researcher", "1310000001"),
            ("r3", "researcher", "1310000001"),
            ("c1", "custodian", "1300000000"),
            ("v1", "reviewer", "3310000003"),
            ("v2", "reviewer", "3310000003"),
        ],
    );
    let columns = ["re.receipt_id", "re.sex", "re.age"];
    let p1 = provision(&home, "r1", &columns);
    let p2 = provision(&home, "r1", &columns);
    let p3 = provision(&home, "r3", &columns);
    let all = "SELECT sex, count(*) AS receipts FROM re GROUP BY sex";
    let fewer = nearly_everyone(&home);

    // Each passes on its own.
    let a = reviewed(&home, &p1, "r1", "all", all);
    let b = reviewed(&home, &p1, "r1", "fewer", &fewer);
    for id in [&a, &b] {
        let check = ok(&kura(&home, &["output", "check", id]));
        assert!(!check.contains("differencing"), "{check}");
    }

    // Released at the same moment: exactly one leaves, the other names it.
    let release = |id: String| {
        let home = home.clone();
        std::thread::spawn(move || kura(&home, &["output", "release", &id, "--as", "c1"]))
    };
    let (ra, rb) = (release(a.clone()), release(b.clone()));
    let (ra, rb) = (ra.join().unwrap(), rb.join().unwrap());
    assert!(ra.status.success() != rb.status.success(), "exactly one of two releases that isolate persons together leaves");
    let (left, refused) = if ra.status.success() { (&a, rb) } else { (&b, ra) };
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(e.contains(left.as_str()) && e.contains("isolates fewer than 10 persons"), "{e}");
    // The evidence stays inside: no count is said.
    assert!(!e.contains("persons apart"), "{e}");
    let other = if left == &a { &b } else { &a };
    assert!(!home.join("airlock").join("releases").join(other).exists());

    // The same researcher's second project: the other table fails against the first release.
    let other_sql = if left == &a { fewer.clone() } else { all.to_string() };
    let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &p2, "--as", "r1", "--name", "again", "--query", &other_sql])));
    let e = fails(&kura(&home, &["output", "check", &id]));
    assert!(e.contains("differencing.released") && e.contains(left.as_str()), "{e}");
    // Released only with an exception both reviewers approve (issue 22 §3).
    ok(&kura(&home, &["output", "submit", &id, "--as", "r1"]));
    ok(&kura(&home, &["output", "review", &id, "--as", "v1", "--approve"]));
    ok(&kura(&home, &["output", "review", &id, "--as", "v2", "--approve"]));
    let e = fails(&kura(&home, &["output", "release", &id, "--as", "c1"]));
    assert!(e.contains("exception"), "{e}");

    // Someone who shares no project with r1 is not held to r1's releases.
    let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &p3, "--as", "r3", "--name", "theirs", "--query", &other_sql])));
    let check = ok(&kura(&home, &["output", "check", &id]));
    assert!(!check.contains("differencing"), "{check}");
}

/// The owner's answer to one SQL of one row and one column.
fn scalar(home: &Path, sql: &str) -> String {
    let csv = ok(&kura(home, &["sql", "--format", "csv", sql]));
    csv.lines().nth(1).unwrap_or_default().to_owned()
}

/// The smallest age x such that 1 to 9 persons (valid ID5) have a receipt at age x or older.
fn oldest_few(home: &Path) -> i64 {
    let csv = ok(&kura(
        home,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT m, sum(count(*)) OVER (ORDER BY m DESC) FROM (SELECT id5, max(age) AS m FROM re WHERE length(id5) = 64 GROUP BY id5) GROUP BY m ORDER BY m DESC",
        ],
    ));
    csv.lines()
        .skip(1)
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.parse::<i64>().unwrap(), b.parse::<i64>().unwrap())
        })
        .take_while(|(_, n)| *n < 10)
        .last()
        .expect("1 to 9 persons at the oldest ages")
        .0
}

/// A share whose numerator stands for 1 to 9 persons fails, however many persons its
/// denominator has (issue 22 §5), while the same share over many persons passes.
#[test]
fn a_share_of_few_persons_fails_over_a_large_denominator() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.age"]);
    // The oldest ages: the smallest x with 1 to 9 persons who have a receipt at age ≥ x.
    let x = oldest_few(&home);
    let total: u64 = scalar(&home, "SELECT count(DISTINCT id5) FROM re WHERE length(id5) = 64").parse().unwrap();
    assert!(total >= 100);
    let share = format!("SELECT count(*) FILTER (WHERE age >= {x}) * 1.0 / count(*) AS share FROM re");
    let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "share", "--query", &share])));
    // It fails and is suppressed: what would leave is an empty cell.
    let e = fails(&kura(&home, &["output", "check", &id]));
    assert!(e.contains("row 1 measure 1  fail  suppressed  persons.threshold"), "{e}");
    // The same share with a numerator of everyone under 200: passes.
    let wide = "SELECT count(*) FILTER (WHERE age < 200) * 1.0 / count(*) AS share FROM re";
    let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "wide", "--query", wide])));
    let check = ok(&kura(&home, &["output", "check", &id]));
    assert!(check.contains("row 1 measure 1  pass"), "{check}");
}

/// A table of one medical institution, one pharmacy or one insurer fails under the 1–2 rule
/// however many persons stand behind it (issue 22 §7), even where the grant has no such
/// column to show and the researcher selects the unit by its code.
#[test]
fn institutions_pharmacies_and_insurers_alike() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.receipt_kind", "re.institution_code", "re.insurer_number"]);
    // The two units of each kind with the most persons behind them (the owner's view).
    for (column, filter, kind) in [
        ("institution_code", "receipt_kind <> '調剤'", "institution"),
        ("institution_code", "receipt_kind = '調剤'", "pharmacy"),
        ("insurer_number", "true", "insurer"),
    ] {
        let top = ok(&kura(
            &home,
            &[
                "sql",
                "--format",
                "csv",
                &format!(
                    "SELECT {column} FROM re WHERE length(id5) = 64 AND {filter} GROUP BY {column} ORDER BY count(DISTINCT id5) DESC, {column} LIMIT 2"
                ),
            ],
        ));
        let units: Vec<String> = top.lines().skip(1).map(|u| format!("'{u}'")).collect();
        let units = units.join(", ");
        let persons: u64 =
            scalar(&home, &format!("SELECT count(DISTINCT id5) FROM re WHERE length(id5) = 64 AND {filter} AND {column} IN ({units})"))
                .parse()
                .unwrap();
        assert!(persons >= 10, "two {kind}s with at least 10 persons together");
        let sql = format!("SELECT count(*) AS receipts FROM re WHERE {filter} AND {column} IN ({units})");
        let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", kind, "--query", &sql])));
        let e = fails(&kura(&home, &["output", "check", &id]));
        assert!(e.contains("row 1 measure 1  fail  suppressed  units.threshold"), "{kind}: {e}");
    }
}

/// Records without a valid person key never count as persons (issue 22 §6): a cell of many
/// receipts whose known persons are 1 to 9 — the rest have no ID5 — does not pass, and
/// neither does a cell of records without a person key only.
#[test]
fn records_without_a_person_key_are_no_persons() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.id5", "re.age"]);
    let unknown: u64 = scalar(&home, "SELECT count(*) FROM re WHERE id5 IS NULL").parse().unwrap();
    assert!(unknown >= 10, "the population has at least 10 receipts without an ID5");
    let x = oldest_few(&home);
    for (name, sql) in [
        ("few_known", format!("SELECT count(*) AS receipts FROM re WHERE id5 IS NULL OR age >= {x}")),
        ("none_known", "SELECT count(*) AS receipts FROM re WHERE id5 IS NULL".to_string()),
    ] {
        let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", name, "--query", &sql])));
        let out = kura(&home, &["output", "check", &id]);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.contains("row 1 measure 1")).unwrap_or_default().to_owned();
        assert!(!line.contains("  pass  ") && line.contains("persons."), "{name}: {text}");
    }
}

/// The smallest age x at which 1 to 9 persons have a receipt at age x or older while at least
/// one of them has no receipt below x (owner's SQL).
fn oldest_split(home: &Path) -> i64 {
    scalar(
        home,
        "WITH p AS (SELECT id5, min(age) AS mn, max(age) AS mx FROM re WHERE length(id5) = 64 GROUP BY id5), a AS (SELECT DISTINCT age AS x FROM re) \
         SELECT x FROM a CROSS JOIN p GROUP BY x \
         HAVING count(*) FILTER (WHERE mx >= x) BETWEEN 1 AND 9 AND count(*) FILTER (WHERE mn >= x) >= 1 ORDER BY x LIMIT 1",
    )
    .parse()
    .expect("an age that splits off 1 to 9 persons")
}

/// Differences inside one output, and unions of cells (issue 22 §2): two measures of one row
/// that differ by a few persons fail; cells of a new table that add up to a released total
/// but for a few persons fail; and a deleted memory stops the airlock instead of forgetting.
#[test]
fn differences_inside_an_output_and_unions_of_cells_fail() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.age"]);
    let x = oldest_split(&home);
    assert!(x > 50, "{x}");

    // One row, two measures: everyone, and everyone but the oldest few.
    let sql = format!("SELECT count(*) AS all_receipts, count(*) FILTER (WHERE age < {x}) AS younger FROM re");
    let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "two", "--query", &sql])));
    let e = fails(&kura(&home, &["output", "check", &id]));
    assert!(e.contains("differencing.released") && e.contains("this output"), "{e}");

    // A released total, then bands that add up to it but for the oldest few (their band is
    // suppressed): the bands fail against the total.
    let everyone = reviewed(&home, &project, "r1", "everyone", "SELECT count(*) AS receipts FROM re");
    ok(&kura(&home, &["output", "release", &everyone, "--as", "c1"]));
    let bands =
        format!("SELECT CASE WHEN age < 50 THEN 'a' WHEN age < {x} THEN 'b' ELSE 'c' END AS band, count(*) AS receipts FROM re GROUP BY 1");
    let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "bands", "--query", &bands])));
    let e = fails(&kura(&home, &["output", "check", &id]));
    assert!(e.contains("suppressed  persons.threshold"), "the oldest band is suppressed: {e}");
    assert!(e.contains("differencing.released") && e.contains(&everyone), "{e}");

    // The memory of a release deleted: nothing is checked until it is restored.
    let memory = home.join("airlock").join("memory").join(format!("{everyone}.sealed"));
    let saved = std::fs::read(&memory).unwrap();
    std::fs::remove_file(&memory).unwrap();
    let e = fails(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "again", "--query", &bands]));
    assert!(e.contains("differencing memory") && e.contains(&everyone), "{e}");
    std::fs::write(&memory, saved).unwrap();
    ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "again", "--query", &bands]));
}

/// An aggregate weighted by a condition in arithmetic (`avg(x * CAST(age = 94 AS DOUBLE) +
/// 1000)`) is one person's value among everyone's: its lineage is not followed, so it is at
/// best review and needs both reviewers' confirmation (an insider's attack).
#[test]
fn a_weighted_aggregate_is_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.age", "re.total_points"]);
    let x = oldest_few(&home);
    for sql in [
        format!("SELECT count(*) AS n, avg(total_points * CAST(age >= {x} AS DOUBLE) + 1000) AS m FROM re"),
        format!("SELECT count(*) AS n, avg(CAST(age >= {x} AS DOUBLE) + 1000) AS share FROM re"),
        "SELECT count(*) AS n, avg(age / 94) AS share FROM re".to_string(),
    ] {
        let id = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "w", "--query", &sql])));
        let e = fails(&kura(&home, &["output", "check", &id]));
        assert!(e.contains("review") && e.contains("lineage.unknown"), "{sql}: {e}");
        ok(&kura(&home, &["output", "submit", &id, "--as", "r1"]));
        ok(&kura(&home, &["output", "review", &id, "--as", "v1", "--approve"]));
        ok(&kura(&home, &["output", "review", &id, "--as", "v2", "--approve"]));
        let e = fails(&kura(&home, &["output", "release", &id, "--as", "c1"]));
        assert!(e.contains("confirmation"), "{e}");
    }
    // A linear transform of one column is followed as before.
    let id = last_line(&ok(&kura(
        &home,
        &[
            "output",
            "new",
            "--project",
            &project,
            "--as",
            "r1",
            "--name",
            "plain",
            "--query",
            "SELECT count(*) AS n, avg(total_points * 10 + 5) AS m FROM re",
        ],
    )));
    let check = ok(&kura(&home, &["output", "check", &id]));
    assert!(!check.contains("lineage.unknown"), "{check}");
}

/// A release whose persons the memory could not keep (issue 22 §3: a lineage that cannot be
/// established is never a silent pass, and neither is what it makes possible): once a table
/// whose lineage was lost has left — reviewed and confirmed by both reviewers — every later
/// table of the researcher is at best review, naming that release, because the memory cannot
/// tell what it adds to it; and a request checked before that release is refused at the gate.
#[test]
fn a_release_without_known_persons_leaves_later_outputs_to_reviewers() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.age", "re.total_points"]);
    let plain = "SELECT count(*) AS receipts FROM re";
    // Checked before: it passes, and is approved.
    let early = reviewed(&home, &project, "r1", "early", plain);
    let check = ok(&kura(&home, &["output", "check", &early]));
    assert!(!check.contains("differencing"), "{check}");

    // A table whose lineage is lost (a weighted mean the rewrite cannot follow), confirmed by
    // both reviewers and released.
    let x = oldest_few(&home);
    let lost = format!("SELECT count(*) AS n, avg(CAST(age >= {x} AS DOUBLE) + 1000) AS share FROM re");
    let id = reviewed(&home, &project, "r1", "lost", &lost);
    ok(&kura(&home, &["output", "confirm", &id, "--as", "v1", "--file", "1"]));
    ok(&kura(&home, &["output", "confirm", &id, "--as", "v2", "--file", "1"]));
    ok(&kura(&home, &["output", "release", &id, "--as", "c1"]));

    // The same plain table now goes to the reviewers, naming the release.
    let later = last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "later", "--query", plain])));
    let e = fails(&kura(&home, &["output", "check", &later]));
    assert!(e.contains("differencing.unknown") && e.contains(&id) && e.contains("review"), "{e}");
    // A file added to it is told which releases it was not compared with (ids, never counts).
    let note = dir.path().join("note.txt");
    std::fs::write(&note, "a note on the table\n").unwrap();
    ok(&kura(&home, &["output", "add", &later, "--as", "r1", note.to_str().unwrap()]));
    let e = fails(&kura(&home, &["output", "check", &later]));
    assert!(e.contains(&format!("not compared with {id}")), "{e}");
    // The request checked before that release does not leave: its reviewers did not see it.
    let e = fails(&kura(&home, &["output", "release", &early, "--as", "c1"]));
    assert!(e.contains(&id) && e.contains("make the request again"), "{e}");

    // Another table whose lineage is lost is told which releases it was not compared with.
    let lost2 = reviewed(&home, &project, "r1", "lost2", &lost);
    let check = fails(&kura(&home, &["output", "check", &lost2]));
    assert!(check.contains("differencing.unknown") && check.contains(&format!("not compared with {id}")), "{check}");
    // The other order: a plain table released after it was checked stops it at the gate …
    let plain_again = reviewed(&home, &project, "r1", "plain-again", plain);
    for v in ["v1", "v2"] {
        ok(&kura(&home, &["output", "confirm", &plain_again, "--as", v, "--file", "1"]));
        ok(&kura(&home, &["output", "confirm", &lost2, "--as", v, "--file", "1"]));
    }
    ok(&kura(&home, &["output", "release", &plain_again, "--as", "c1"]));
    let e = fails(&kura(&home, &["output", "release", &lost2, "--as", "c1"]));
    assert!(e.contains(&plain_again) && e.contains("released after this request was checked"), "{e}");
    // … and made again, it is checked against it and can leave once its reviewers confirm it.
    let lost3 = reviewed(&home, &project, "r1", "lost3", &lost);
    let check = fails(&kura(&home, &["output", "check", &lost3]));
    assert!(check.contains(&plain_again), "{check}");
    for v in ["v1", "v2"] {
        ok(&kura(&home, &["output", "confirm", &lost3, "--as", v, "--file", "1"]));
    }
    ok(&kura(&home, &["output", "release", &lost3, "--as", "c1"]));
}

/// Counts the platform publishes itself count as released (issue 22 §2, "a public table"): once
/// the home's owner publishes a population table (receipts by sex, every person of the dataset),
/// an output that leaves out the oldest few persons of one sex — harmless on its own — fails,
/// naming the public table; the same output checked before the table was published has no such
/// finding.
#[test]
fn a_public_table_counts_as_released() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.sex", "re.age", "re.id5"]);
    let query = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        format!("@{}", p.display())
    };
    // Per sex, the persons whose every receipt is at age ≥ X, from the oldest down: the first X
    // at which a sex holds 1 to 9 of them (derived from the data, not assumed).
    let ages = ok(&kura(
        &home,
        &[
            "workspace",
            "sql",
            "--project",
            &project,
            "--as",
            "r1",
            "--format",
            "csv",
            "SELECT a, sex, count(*) AS n FROM (SELECT id5, sex, min(age) AS a FROM re GROUP BY id5, sex) t GROUP BY a, sex ORDER BY a DESC",
        ],
    ));
    let mut total: std::collections::BTreeMap<String, u64> = Default::default();
    let mut cut = None;
    for line in ages.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(a), Some(sex), Some(n)) = (f.first(), f.get(1), f.get(2)) else { continue };
        let (Ok(a), Ok(n)) = (a.parse::<i64>(), n.parse::<u64>()) else { continue };
        let t = total.entry(sex.to_string()).or_default();
        *t += n;
        if (1..10).contains(t) {
            cut = Some(a);
            break;
        }
    }
    let cut = cut.expect("a few oldest persons of one sex");
    let younger = format!("SELECT sex, count(*) AS receipts FROM re WHERE age < {cut} GROUP BY sex");
    let new = |name: &str| {
        let q = query(&format!("{name}.sql"), &younger);
        last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", name, "--query", &q])))
    };
    // Before the table is public: nothing to combine with.
    let before = new("before");
    let check = kura(&home, &["output", "check", &before]);
    let text = String::from_utf8_lossy(&check.stdout).to_string() + &String::from_utf8_lossy(&check.stderr);
    assert!(!text.contains("differencing"), "{text}");
    // Only the home's owner publishes (no --as); the project lends its checker.
    let pop = query("population.sql", "SELECT sex, count(*) AS receipts FROM re GROUP BY sex");
    let e = fails(&kura(&home, &["output", "publish", "--name", "Population!", "--project", &project, "--query", &pop]));
    assert!(e.contains("name"), "{e}");
    let published = ok(&kura(&home, &["output", "publish", "--name", "population", "--project", &project, "--query", &pop]));
    assert!(published.contains("PUB-population"), "{published}");
    let after = new("after");
    let e = fails(&kura(&home, &["output", "check", &after]));
    assert!(e.contains("differencing") && e.contains("PUB-population"), "the public table counts as released: {e}");
    let log = ok(&kura(&home, &["ledger", "show", "--json"]));
    assert!(log.contains("airlock.publish"), "recorded");
    // A public table's memory that went missing is noticed: nothing is checked until it is back.
    let sealed = home.join("airlock/memory/PUB-population.sealed");
    let kept = std::fs::read(&sealed).unwrap();
    std::fs::remove_file(&sealed).unwrap();
    let q = query("again.sql", &younger);
    let e = fails(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "again", "--query", &q]));
    assert!(e.contains("PUB-population") && e.contains("missing"), "{e}");
    std::fs::write(&sealed, kept).unwrap();
    ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "again", "--query", &q]));
}

/// Abuse is detected and blocked (HIC-S1): a user whose files held malware three times within
/// 24 hours (`[airlock] detections_per_day`) has every upload refused — bring-in, output files,
/// application attachments — with a clear error, recorded; other users are not affected.
#[test]
fn malware_again_and_again_blocks_the_uploader() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    add_users(&home, &[("r2", "researcher", "1310000001")]);
    let project = provision(&home, "r1", &["re.receipt_id", "re.sex"]);
    let other = provision(&home, "r2", &["re.receipt_id", "re.sex"]);
    let file = |name: &str, content: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_string()
    };
    let eicar = file("tool.com", &kura_scan::eicar());
    let clean = file("notes.txt", b"notes");
    let upload = |login: &str, project: &str, path: &str| kura(&home, &["bringin", "upload", "--project", project, "--as", login, path]);
    for _ in 0..3 {
        assert!(fails(&upload("r1", &project, &eicar)).contains("malware found"));
    }
    // The fourth file, clean or not, is refused before any scan; the refusal is recorded.
    let e = fails(&upload("r1", &project, &clean));
    assert!(e.contains("uploads are refused") && e.contains("3 times"), "{e}");
    let q = file("q.sql", b"SELECT sex, count(*) AS n FROM re GROUP BY sex");
    let out =
        last_line(&ok(&kura(&home, &["output", "new", "--project", &project, "--as", "r1", "--name", "t", "--query", &format!("@{q}")])));
    let e = fails(&kura(&home, &["output", "add", &out, "--as", "r1", &clean]));
    assert!(e.contains("uploads are refused"), "{e}");
    let log = ok(&kura(&home, &["ledger", "show", "--json"]));
    assert!(log.contains("\"bringin.upload\"") && log.contains("malware detections in 24 hours"), "recorded");
    // Another researcher is not held to it.
    let id = last_line(&ok(&upload("r2", &other, &clean)));
    assert!(id.starts_with("IN-"), "{id}");
    // Off when set to 0.
    detection_limit(&home, 0);
    assert!(last_line(&ok(&upload("r1", &project, &clean))).starts_with("IN-"));
}

/// Bring-in (issue 17 §4): each file scanned on upload — EICAR plain and inside a zip is caught
/// and recorded for the operators — a custodian outside the project approves (scanned again),
/// and a master (CSV) becomes a table the workspace queries; another file is read back as it
/// was brought. Every step is in the ledger.
#[test]
fn bring_in_is_scanned_approved_by_a_custodian_and_lands_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    // Four detections below: more than a user may cause in a day by default (see
    // `malware_again_and_again_blocks_the_uploader`).
    detection_limit(&home, 10);
    add_users(&home, &[("r2", "researcher", "1310000001"), ("c2", "custodian", "1300000000")]);
    let project = provision(&home, "r1", &["re.receipt_id", "re.sex"]);
    let file = |name: &str, content: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_string()
    };
    let upload = |login: &str, path: &str| kura(&home, &["bringin", "upload", "--project", &project, "--as", login, path]);

    // Malware on the way in: refused, named, recorded — plain and zipped.
    let eicar = file("tool.com", &kura_scan::eicar());
    let e = fails(&upload("r1", &eicar));
    assert!(e.contains(EICAR_SIGNATURE) && e.contains("IN-000001") && e.contains("malware found"), "{e}");
    let zip = file("tools.zip", &zip_stored(&[("readme.txt", b"hi".as_slice()), ("bin/tool.com", kura_scan::eicar().as_slice())]));
    let e = fails(&upload("r1", &zip));
    assert!(e.contains(EICAR_SIGNATURE) && e.contains("IN-000002"), "{e}");
    // What the scanner cannot look into does not come in either: 20 zips deep, or encrypted.
    let deep = clamd::nested_zip(&kura_scan::eicar(), 20);
    let e = fails(&upload("r1", &file("deep.zip", &deep)));
    assert!(e.contains("Exceeded") && e.contains("IN-000003"), "{e}");
    let locked = kura_scan::stored_zip(&[("tool.com", kura_scan::eicar().as_slice())], true);
    let e = fails(&upload("r1", &file("locked.zip", &locked)));
    assert!(e.contains("Encrypted") && e.contains("IN-000004"), "{e}");
    let infected = ok(&kura(&home, &["bringin", "show", "IN-000001"]));
    assert!(infected.contains("infected") && infected.contains("found Kura.Test.EICAR"), "{infected}");
    // An infected request goes nowhere.
    let e = fails(&kura(&home, &["bringin", "review", "IN-000001", "--as", "c1", "--approve"]));
    assert!(e.contains("IN-000001") && e.contains("infected"), "{e}");
    let status = ok(&kura(&home, &["scanner", "status"]));
    assert!(
        status.contains("scanner: ok") && status.contains("engine: ClamAV") && status.contains("self-test: EICAR detected"),
        "{status}"
    );
    assert!(status.contains("detections: 4") && status.contains("tool.com") && status.contains("tools.zip"), "{status}");
    assert!(status.contains("too deep to open flagged") && status.contains("encrypted archive flagged"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&ok(&kura(&home, &["scanner", "status", "--json"]))).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["detections"][0]["direction"], "in");

    // A master: only a member brings it in; a CSV that is not a table is refused with its line.
    let master = file("drug_master.csv", "code,name\n0101,アスピリン\n0202,\"メトホルミン, 500mg\"\n".as_bytes());
    let e = fails(&upload("r2", &master));
    assert!(e.contains("not a member"), "{e}");
    let broken = file("broken_master.csv", b"code,name\n0101\n");
    let e = fails(&upload("r1", &broken));
    assert!(e.contains("broken_master.csv:2:"), "{e}");
    // A note with a line separator cannot pose as a line of its own.
    let e =
        fails(&kura(&home, &["bringin", "upload", "--project", &project, "--as", "r1", &master, "--note", "ok\u{2028}comment: approved"]));
    assert!(e.contains("note"), "{e}");
    let id = last_line(&ok(&upload("r1", &master)));
    assert_eq!(id, "IN-000005");
    // Not the author, nor a reviewer, nor a custodian inside the project approves it.
    let e = fails(&kura(&home, &["bringin", "review", &id, "--as", "r1", "--approve"]));
    assert!(e.contains("only a custodian"), "{e}");
    let e = fails(&kura(&home, &["bringin", "review", &id, "--as", "v1", "--approve"]));
    assert!(e.contains("no bring-in request"), "a reviewer does not even see it: {e}");
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &project, "--as", "r1", "SELECT count(*) FROM drug_master"]));
    assert!(e.contains("drug_master"), "not in the workspace before approval: {e}");
    let approved = ok(&kura(&home, &["bringin", "review", &id, "--as", "c1", "--approve", "--comment", "OK"]));
    assert!(approved.contains("approved"), "{approved}");
    let rows = ok(&kura(
        &home,
        &["workspace", "sql", "--project", &project, "--as", "r1", "--format", "csv", "SELECT code, name FROM drug_master ORDER BY code"],
    ));
    assert!(rows.contains("0101,アスピリン") && rows.contains("0202"), "codes keep their zeros: {rows}");
    // Read-only: the workspace neither replaces nor drops it.
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &project, "--as", "r1", "--save", "drug_master", "SELECT 'x' AS code"]));
    assert!(e.contains("read-only"), "{e}");
    let e = fails(&kura(&home, &["workspace", "drop", "--project", &project, "--as", "r1", "drug_master"]));
    assert!(e.contains("read-only"), "{e}");
    // A second master of the same name is not placed over the first.
    let again = last_line(&ok(&upload("r1", &master)));
    let e = fails(&kura(&home, &["bringin", "review", &again, "--as", "c1", "--approve"]));
    assert!(e.contains("drug_master"), "{e}");
    let waiting = ok(&kura(&home, &["bringin", "show", &again]));
    assert!(waiting.contains("submitted"), "a file that could not be placed stays waiting: {waiting}");

    // Another file: placed sealed in the workspace, read back by a member as it was.
    let script = "-- 解析スクリプト\nSELECT sex, count(*) FROM re GROUP BY sex;\n";
    let sql = file("analysis.sql", script.as_bytes());
    let id = last_line(&ok(&upload("r1", &sql)));
    let e = fails(&kura(&home, &["bringin", "show", &id, "--as", "r1", "--out", dir.path().join("x").to_str().unwrap()]));
    assert!(e.contains("not an approved file"), "{e}");
    ok(&kura(&home, &["bringin", "review", &id, "--as", "c1", "--approve"]));
    let back = dir.path().join("analysis-back.sql");
    ok(&kura(&home, &["bringin", "show", &id, "--as", "r1", "--out", back.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), script);
    let e = fails(&kura(&home, &["bringin", "show", &id, "--as", "r2", "--out", back.to_str().unwrap()]));
    assert!(e.contains("no bring-in request"), "{e}");

    // Rejected and withdrawn requests stay closed.
    let other = file("notes.txt", b"notes");
    let id = last_line(&ok(&upload("r1", &other)));
    ok(&kura(&home, &["bringin", "review", &id, "--as", "c2", "--reject", "--comment", "不要"]));
    let e = fails(&kura(&home, &["bringin", "review", &id, "--as", "c1", "--approve"]));
    assert!(e.contains("rejected"), "{e}");
    let id = last_line(&ok(&upload("r1", &other)));
    let e = fails(&kura(&home, &["bringin", "withdraw", &id, "--as", "c1"]));
    assert!(e.contains("author"), "{e}");
    ok(&kura(&home, &["bringin", "withdraw", &id, "--as", "r1"]));

    // Signatures loaded after an upload: the file is caught when a custodian approves it,
    // rejected, and recorded as coming in.
    let older = Clamd::eicar_only();
    use_scanner(&home, &older.socket);
    let later = file("later.txt", format!("notes\n{YARA_MARKER}\n").as_bytes());
    let id = last_line(&ok(&upload("r1", &later)));
    use_scanner(&home, &clamd().socket);
    let e = fails(&kura(&home, &["bringin", "review", &id, "--as", "c1", "--approve"]));
    assert!(e.contains(YARA_RULE), "{e}");
    assert!(ok(&kura(&home, &["bringin", "show", &id])).contains("rejected"));
    let status = ok(&kura(&home, &["scanner", "status"]));
    assert!(status.contains(&format!("in  {id}  later.txt")), "{status}");
    // Nothing stays in the inbox but what still waits: placed, rejected and withdrawn files
    // are gone.
    let inbox: Vec<String> = std::fs::read_dir(home.join("airlock").join("inbox").join(&project))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(inbox, vec![format!("{again}.sealed")]);
    // Every step is an entry of the ledger, each request's history names them.
    let shown = ok(&kura(&home, &["bringin", "show", "IN-000005"]));
    assert!(shown.contains("upload  - -> submitted") && shown.contains("approve  submitted -> approved"), "{shown}");
    ok(&kura(&home, &["ledger", "verify"]));
}

/// A scanner that is missing, or has no signatures, blocks bring-in and release with a clear
/// error, never a silent pass (issue 17 §4).
#[test]
fn a_missing_scanner_blocks_bring_in_and_release() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.sex"]);
    let id = reviewed(&home, &project, "r1", "by_sex", "SELECT sex, count(*) AS receipts FROM re GROUP BY sex");
    let gone = dir.path().join("no-clamd.sock");
    use_scanner(&home, &gone);
    let e = fails(&kura(&home, &["output", "release", &id, "--as", "c1"]));
    assert!(e.contains("cannot be scanned") && e.contains("no-clamd.sock"), "{e}");
    let sql = dir.path().join("a.sql");
    std::fs::write(&sql, "SELECT 1").unwrap();
    let e = fails(&kura(&home, &["bringin", "upload", "--project", &project, "--as", "r1", sql.to_str().unwrap()]));
    assert!(e.contains("does not answer") && e.contains("kura scanner status"), "{e}");
    let out = kura(&home, &["scanner", "status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("scanner: unavailable"));

    // A scanner without signatures: it answers, but would find nothing.
    let empty = Clamd::with_signatures(&[("other.yar", clamd::yara_rule("Nothing", "no-file-holds-this-4c1e"))]);
    use_scanner(&home, &empty.socket);
    let e = fails(&kura(&home, &["output", "release", &id, "--as", "c1"]));
    assert!(e.contains("no signatures loaded"), "{e}");
    let e = fails(&kura(&home, &["scanner", "status"]));
    assert!(e.contains("EICAR"), "{e}");

    // The scanner back: the same request leaves, and its manifest names the engine.
    use_scanner(&home, &clamd().socket);
    ok(&kura(&home, &["output", "release", &id, "--as", "c1"]));
    let out = dir.path().join("package");
    ok(&kura(&home, &["output", "download", &id, "--as", "r1", "--out", out.to_str().unwrap()]));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert!(m["scanner"].as_str().unwrap().starts_with("ClamAV "), "{m}");
}

/// Malware on the way out (issue 17 §3): a file with EICAR, plain or zipped, is not added; a
/// file that was clean when added but matches a signature loaded since is stopped at release,
/// and the detection is recorded for the operators.
#[test]
fn malware_is_caught_on_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let home = population(dir.path());
    let project = provision(&home, "r1", &["re.receipt_id", "re.sex"]);
    let id = last_line(&ok(&kura(
        &home,
        &[
            "output",
            "new",
            "--project",
            &project,
            "--as",
            "r1",
            "--name",
            "t",
            "--query",
            "SELECT sex, count(*) AS receipts FROM re GROUP BY sex",
        ],
    )));
    let eicar = dir.path().join("figure.png");
    std::fs::write(&eicar, kura_scan::eicar()).unwrap();
    let e = fails(&kura(&home, &["output", "add", &id, "--as", "r1", eicar.to_str().unwrap()]));
    assert!(e.contains(EICAR_SIGNATURE) && e.contains("figure.png"), "{e}");
    let zip = dir.path().join("figures.zip");
    std::fs::write(&zip, zip_stored(&[("f.png", kura_scan::eicar().as_slice())])).unwrap();
    let e = fails(&kura(&home, &["output", "add", &id, "--as", "r1", zip.to_str().unwrap()]));
    assert!(e.contains(EICAR_SIGNATURE), "{e}");

    // The package's own names are Kura's.
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, "{}").unwrap();
    let e = fails(&kura(&home, &["output", "add", &id, "--as", "r1", manifest.to_str().unwrap()]));
    assert!(e.contains("manifest.json"), "{e}");
    // Signatures of yesterday: the marker is not known yet, the file is added.
    let older = Clamd::eicar_only();
    use_scanner(&home, &older.socket);
    let text = dir.path().join("summary.txt");
    std::fs::write(&text, format!("model summary\n{YARA_MARKER}\n")).unwrap();
    ok(&kura(&home, &["output", "add", &id, "--as", "r1", text.to_str().unwrap()]));
    ok(&kura(&home, &["output", "submit", &id, "--as", "r1"]));
    for v in ["v1", "v2"] {
        ok(&kura(&home, &["output", "review", &id, "--as", v, "--approve"]));
        ok(&kura(&home, &["output", "confirm", &id, "--as", v, "--file", "2"]));
    }
    // Today's signatures at release: stopped, named, recorded.
    use_scanner(&home, &clamd().socket);
    let e = fails(&kura(&home, &["output", "release", &id, "--as", "c1"]));
    assert!(e.contains(YARA_RULE) && e.contains("summary.txt"), "{e}");
    let status = ok(&kura(&home, &["scanner", "status"]));
    assert!(status.contains("detections: 3") && status.contains(&format!("out  {id}  summary.txt")), "{status}");
    assert!(!home.join("airlock").join("releases").join(&id).exists(), "nothing was released");
}
