//! Projects' workspaces and their end through the real `kura` binary (HIC-P3, HIC-S13,
//! HIC-IO3, CLD-5): SQL in the project's own confined worker, project pseudonyms that do not
//! join across projects, saved tables visible only in their project, members only, and the
//! end of use — crypto-shredding, the ended error, and a deletion certificate that verifies
//! offline.

mod common;
use common::{add_users, fails, kura, last_line, ok};
use std::collections::BTreeSet;
use std::path::Path;

/// Files an application for `applicant` asking for `columns`, takes it through review and
/// the agreement; returns the project's id.
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

/// The CSV rows (header dropped) of a query's output.
/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The Parquet files below a directory, sorted.
fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn append_byte(path: &Path) {
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(b"\0").unwrap();
}

fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn is_hashed_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn a_workspace_from_provisioning_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    ok(&kura(&home, &["synth", "--persons", "300", "--seed", "5", "--months", "2"]));
    add_users(
        &home,
        &[
            ("r1", "researcher", "1310000001"),
            ("x1", "researcher", "2710000002"),
            ("c1", "custodian", "1300000000"),
            ("v1", "reviewer", "3310000003"),
            ("v2", "reviewer", "3310000003"),
        ],
    );
    let cols = ["re.receipt_id", "re.id5", "re.sex"];
    let p1 = provision(&home, "r1", &cols);
    let p2 = provision(&home, "x1", &cols);
    assert_eq!((p1.as_str(), p2.as_str()), ("PRJ-000001", "PRJ-000002"));

    // The worker's confinement, one line per mechanism (the contract), all on here.
    let status = ok(&kura(&home, &["workspace", "status", "--project", &p1]));
    for m in ["landlock", "seccomp", "network namespace", "memory limit", "cpu limit"] {
        assert!(status.lines().any(|l| l == format!("{m}: on")), "{m}: {status}");
    }
    // The worker built the project's extract before its first answer, and reads only that.
    assert!(status.lines().any(|l| l.starts_with("抽出 / extract: ") && l.contains("; re ")), "{status}");
    // Started by root, each project's worker is a user of its own (the base plus the project's
    // number); started by anyone else, it is that user with no capability.
    let root = std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:\t0\t"));
    let id = kura_query::worker::WORKER_UID_BASE + 1;
    let user = if root { format!("user: uid {id} gid {id}, only CAP_DAC_READ_SEARCH") } else { String::from(", no capabilities") };
    assert!(status.contains(&user), "{user}: {status}");

    // Project pseudonyms (HIC-P3): 64 hex characters, never the platform's value; record ids
    // (receipts) are renumbered per project too, so neither persons nor records can be
    // matched across projects or with the platform.
    let q = "SELECT receipt_id, id5 FROM re WHERE id5 <> '9'";
    let platform = rows(&ok(&kura(&home, &["sql", "--format", "csv", q])));
    let in1 = rows(&ok(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--format", "csv", q])));
    let in2 = rows(&ok(&kura(&home, &["workspace", "sql", "--project", &p2, "--as", "x1", "--format", "csv", q])));
    assert!(platform.len() > 100 && in1.len() == platform.len() && in2.len() == platform.len());
    let column = |rows: &[Vec<String>], i: usize| rows.iter().map(|r| r[i].clone()).collect::<BTreeSet<_>>();
    assert!(in1.iter().chain(&in2).all(|r| is_hashed_id(&r[1])));
    for i in [0, 1] {
        let (a, b, c) = (column(&platform, i), column(&in1, i), column(&in2, i));
        assert_eq!((b.len(), c.len()), (a.len(), a.len()), "one value for one value: nothing merged");
        assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c), "column {i} matches across projects");
    }
    let all = "SELECT DISTINCT id5 FROM re WHERE id5 <> '9'";
    let set = |out: String| rows(&out).into_iter().map(|r| r[0].clone()).collect::<BTreeSet<_>>();
    let ids1 = set(ok(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--format", "csv", all])));
    let ids2 = set(ok(&kura(&home, &["workspace", "sql", "--project", &p2, "--as", "x1", "--format", "csv", all])));
    let ids0 = set(ok(&kura(&home, &["sql", "--format", "csv", all])));
    assert_eq!((ids1.len(), ids2.len()), (ids0.len(), ids0.len()), "one pseudonym per person");
    assert!(ids1.is_disjoint(&ids2), "the outputs of two projects cannot be joined on the ID column");
    assert!(ids1.is_disjoint(&ids0));
    // Row order (HIC-P3): a scan returns rows in stored order, so without more the n-th row
    // (`row_number() OVER ()`) would be the same receipt in every project and link their
    // outputs. Each project reads an extract of its own whose rows are sorted by the project's
    // pseudonym (where granted) and a keyed hash of their values: the same rows, in an order
    // that matches neither the platform's nor the other project's. Joined on the row number, the two projects' rows disagree about as
    // often as two unrelated rows would (about half the time for sex).
    let order = "SELECT row_number() OVER () AS n, sex FROM re";
    let seq = |out: String| rows(&out).into_iter().map(|r| r[1].clone()).collect::<Vec<_>>();
    let s0 = seq(ok(&kura(&home, &["sql", "--format", "csv", order])));
    let s1 = seq(ok(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--format", "csv", order])));
    let s2 = seq(ok(&kura(&home, &["workspace", "sql", "--project", &p2, "--as", "x1", "--format", "csv", order])));
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    assert!(s0.len() > 500);
    assert_eq!((sorted(&s1), sorted(&s2)), (sorted(&s0), sorted(&s0)), "the same rows");
    let differ = |a: &[String], b: &[String]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    for (what, a, b) in [("platform and project 1", &s0, &s1), ("platform and project 2", &s0, &s2), ("the two projects", &s1, &s2)] {
        assert!(differ(a, b) * 4 > a.len(), "{what}: row numbers still link the rows ({} of {} differ)", differ(a, b), a.len());
    }
    // Inside one project a person keeps one pseudonym: a self-join on it works.
    let joined = ok(&kura(
        &home,
        &[
            "workspace",
            "sql",
            "--project",
            &p1,
            "--as",
            "r1",
            "--format",
            "csv",
            "SELECT count(*) FROM re a JOIN (SELECT DISTINCT id5 FROM re) b ON a.id5 = b.id5",
        ],
    ));
    let direct = ok(&kura(&home, &["sql", "--format", "csv", "SELECT count(*) FROM re WHERE id5 IS NOT NULL"]));
    assert_eq!(rows(&joined), rows(&direct));

    // The grant is exactly the approved columns.
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "SELECT age FROM re"]));
    assert!(e.contains("age") && e.contains("not granted"), "{e}");

    // The plan's detail (files and their statistics) is not shown in a workspace: only the
    // plain EXPLAIN and EXPLAIN ANALYZE are answered, and no platform ID or path of the
    // platform's files appears in anything printed.
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "EXPLAIN VERBOSE SELECT id5 FROM re"]));
    assert!(e.contains("EXPLAIN with VERBOSE, statistics or a format is not available in a workspace"), "{e}");
    for sql in [
        "EXPLAIN SELECT id5 FROM re",
        "EXPLAIN ANALYZE SELECT id5 FROM re",
        "EXPLAIN ANALYZE VERBOSE SELECT id5 FROM re",
        "EXPLAIN (VERBOSE) SELECT id5 FROM re",
        "EXPLAIN (SHOW_STATISTICS TRUE) SELECT id5 FROM re",
        "EXPLAIN (FORMAT TREE) SELECT id5 FROM re",
        "EXPLAIN (FORMAT PGJSON) SELECT id5 FROM re",
    ] {
        let o = kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", sql]);
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(ids0.iter().all(|id| !text.contains(id.as_str())), "{sql} shows a platform ID: {text}");
        assert!(!text.contains("ndb/g"), "{sql} shows a path of the platform's files: {text}");
    }
    // A locked account cannot work in a workspace.
    ok(&kura(&home, &["user", "lock", "r1"]));
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "SELECT 1"]));
    assert!(e.contains("not active (locked)"), "{e}");
    ok(&kura(&home, &["user", "unlock", "r1"]));
    // A name that cannot be a table is refused before anything runs, and never reaches the
    // ledger (which must not carry text a member chose).
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--save", "x'MARKER-7731", "SELECT 1 AS x"]));
    assert!(e.contains("cannot save as"), "{e}");
    assert!(!ok(&kura(&home, &["ledger", "show", "--json"])).contains("MARKER-7731"));
    // A link planted where the workspace's files are is refused, never followed.
    let planted = home.join("workspaces").join(&p1).join("tables/evil.kura-table");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "root's").unwrap();
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "SELECT 1"]));
    assert!(e.contains("not a plain file"), "{e}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&victim).unwrap().uid(),
        std::fs::metadata(dir.path()).unwrap().uid(),
        "the link's target keeps its owner"
    );
    std::fs::remove_file(&planted).unwrap();

    // Members only: another project's researcher is refused (and the refusal recorded), as is
    // a project that does not exist (without saying so).
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "x1", "SELECT 1"]));
    assert!(e.contains("not a member of project PRJ-000001"), "{e}");
    let e = fails(&kura(&home, &["workspace", "sql", "--project", "PRJ-000099", "--as", "x1", "SELECT 1"]));
    assert!(e.contains("not a member of project PRJ-000099"), "{e}");
    let e = fails(&kura(&home, &["workspace", "sql", "--project", "../PRJ", "--as", "x1", "SELECT 1"]));
    assert!(e.contains("PRJ-000001"), "{e}");

    // Saved tables: sealed in the workspace, readable in their project only.
    let save = "SELECT sex, count(*) AS n, 'kura-marker-0042' AS label FROM re GROUP BY sex ORDER BY sex";
    let shown = ok(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--format", "csv", "--save", "by_sex", save]));
    let back =
        ok(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--format", "csv", "SELECT * FROM by_sex ORDER BY sex"]));
    assert_eq!(rows(&shown), rows(&back));
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p2, "--as", "x1", "SELECT * FROM by_sex"]));
    assert!(e.contains("no table 'by_sex'"), "{e}");
    for bad in ["re", "Bad-Name", "../x"] {
        let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--save", bad, "SELECT 1 AS x"]));
        assert!(e.contains("cannot save as") || e.contains("is a table of the dataset"), "{bad}: {e}");
    }
    assert!(ok(&kura(&home, &["workspace", "status", "--project", &p1])).contains("saved tables: by_sex"));
    // A member removes a saved table; it is gone for the next request.
    ok(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--save", "scratch", "SELECT 1 AS x"]));
    let e = fails(&kura(&home, &["workspace", "drop", "--project", &p1, "--as", "x1", "scratch"]));
    assert!(e.contains("not a member"), "{e}");
    ok(&kura(&home, &["workspace", "drop", "--project", &p1, "--as", "r1", "scratch"]));
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "SELECT * FROM scratch"]));
    assert!(e.contains("no table 'scratch'"), "{e}");
    assert!(fails(&kura(&home, &["workspace", "drop", "--project", &p1, "--as", "r1", "scratch"])).contains("no saved table 'scratch'"));
    let table = home.join("workspaces").join(&p1).join("tables/by_sex.kura-table");
    let sealed = std::fs::read(&table).unwrap();
    // A copy of the workspace's files and of the keyring as they stand before the end.
    let keyring_before = std::fs::read(home.join("keys/keyring.json")).unwrap();
    let extract_copy = dir.path().join("extract-copy");
    copy_tree(&home.join("workspaces").join(&p1).join("extract"), &extract_copy);

    // Only the applicant gives notice, only a custodian ends it, and only after the notice (or
    // the period's end): a custodian cannot destroy a running project's work at will.
    let e = fails(&kura(&home, &["project", "end", &p1, "--as", "c1"]));
    assert!(e.contains("a project ends after its applicant's notice"), "{e}");
    assert!(home.join("workspaces").join(&p1).join("tables/by_sex.kura-table").exists(), "nothing was destroyed");
    let e = fails(&kura(&home, &["project", "notice", &p1, "--as", "x1"]));
    assert!(e.contains("PRJ-000001"), "{e}");
    ok(&kura(&home, &["project", "notice", &p1, "--as", "r1"]));
    let e = fails(&kura(&home, &["project", "end", &p1, "--as", "r1"]));
    assert!(e.contains("only a custodian may end the project"), "{e}");
    let out = ok(&kura(&home, &["project", "end", &p1, "--as", "c1"]));
    let proof = std::path::PathBuf::from(last_line(&out));
    assert!(proof.extension().is_some_and(|e| e == "tlog-proof") && proof.is_file(), "{out}");
    let e = fails(&kura(&home, &["project", "end", &p1, "--as", "c1"]));
    assert!(e.contains("cannot end the project"), "{e}");

    // Members get the ended error at once; the files are gone.
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "SELECT 1"]));
    assert!(e.contains("project PRJ-000001 ended on"), "{e}");
    assert!(!home.join("workspaces").join(&p1).exists());
    // Nothing brings an ended workspace back (a stale request, the owner's status): no
    // directory, no key.
    let e = fails(&kura(&home, &["workspace", "status", "--project", &p1]));
    assert!(e.contains("ended"), "{e}");
    assert!(!home.join("workspaces").join(&p1).exists(), "an ended workspace was made again");
    // Crypto-shredding: the key is gone from the keyring, and the copy of the old keyring
    // does not open with the master key that exists now, so the copied file stays sealed.
    let key_id = kura_crypto::KeyId::new(format!("workspace/{p1}")).unwrap();
    let master = kura_crypto::MasterKey::load(&home.join("keys/master.key")).unwrap();
    let now = kura_crypto::Keyring::load(&home.join("keys/keyring.json")).unwrap();
    assert!(!now.contains(&key_id));
    let old_path = dir.path().join("keyring-copy.json");
    std::fs::write(&old_path, &keyring_before).unwrap();
    let old = kura_crypto::Keyring::load(&old_path).unwrap();
    assert!(old.contains(&key_id));
    assert!(old.unwrap(&master, &key_id).is_err(), "a copy of the old keyring is of no use with today's master key");
    assert!(sealed.starts_with(b"KURAWST1") && !sealed.windows(16).any(|w| w == b"kura-marker-0042"), "sealed");
    // The copied extract: encrypted files (the encrypted-footer magic), holding neither the
    // project's pseudonyms nor the platform's IDs in the clear.
    let files = parquet_files(&extract_copy);
    assert!(!files.is_empty());
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        assert!(raw.ends_with(b"PARE"), "{}", f.display());
        let text = String::from_utf8_lossy(&raw);
        assert!(ids1.iter().chain(&ids0).take(200).all(|id| !text.contains(id.as_str())), "{} holds IDs in the clear", f.display());
    }
    // The other project is untouched.
    ok(&kura(&home, &["workspace", "sql", "--project", &p2, "--as", "x1", "SELECT count(*) FROM re"]));
    // Once built, a workspace reads only its extract: the platform's files of `re` damaged
    // (each one byte longer), the platform's own query fails, the workspace still answers.
    let before = rows(&ok(&kura(
        &home,
        &["workspace", "sql", "--project", &p2, "--as", "x1", "--format", "csv", "SELECT count(*), count(DISTINCT id5) FROM re"],
    )));
    for f in parquet_files(&home.join("data").join("ndb")).iter().filter(|f| f.parent().is_some_and(|d| d.ends_with("re"))) {
        append_byte(f);
    }
    let e = fails(&kura(&home, &["sql", "SELECT count(sex) FROM re"]));
    assert!(e.contains("size"), "{e}");
    let after = rows(&ok(&kura(
        &home,
        &["workspace", "sql", "--project", &p2, "--as", "x1", "--format", "csv", "SELECT count(*), count(DISTINCT id5) FROM re"],
    )));
    assert_eq!(after, before);
    // A damaged extract file is named, never read.
    let p2_files = parquet_files(&home.join("workspaces").join(&p2).join("extract"));
    append_byte(&p2_files[0]);
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p2, "--as", "x1", "SELECT count(sex) FROM re"]));
    assert!(e.contains("part-00000.parquet") && e.contains("size"), "{e}");
    // Past its approved period, nobody works in a project's workspace (HIC-P1).
    let db = home.join("state.db");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::query("UPDATE projects SET ends_at = 1000 WHERE id = ?").bind(&p2).execute(&pool).await.unwrap();
        pool.close().await;
    });
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p2, "--as", "x1", "SELECT 1"]));
    assert!(e.contains("the period of use of project PRJ-000002 ended on 1970-01-01"), "{e}");

    // The deletion certificate verifies offline against the log's key, and names what was
    // destroyed; a changed certificate does not verify.
    let cert = home.join("certificates").join(format!("{p1}.deletion-certificate.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cert).unwrap()).unwrap();
    assert_eq!(v["project"], "PRJ-000001");
    assert_eq!(v["ended_by"], "c1");
    assert_eq!(v["destroyed"]["saved_tables"], 1);
    assert_eq!(v["destroyed"]["master_key_replaced"], true);
    let key = last_line(&ok(&kura(&home, &["ledger", "key"])));
    let verified = ok(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &key, "--data", cert.to_str().unwrap()]));
    assert!(verified.contains("proof verified") && verified.contains("project.end"), "{verified}");
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, String::from_utf8(std::fs::read(&cert).unwrap()).unwrap().replace("\"c1\"", "\"v1\"")).unwrap();
    let e = fails(&kura(&home, &["proof", "verify", proof.to_str().unwrap(), "--log-key", &key, "--data", forged.to_str().unwrap()]));
    assert!(e.contains("differs from the recorded"), "{e}");

    // Every script, the refusals and the end are in the ledger; the SQL text is not.
    let log = ok(&kura(&home, &["ledger", "show", "--json"]));
    for action in ["workspace.query", "workspace.save", "workspace.open", "project.notice", "project.end"] {
        assert!(log.contains(action), "{action} missing from the ledger");
    }
    assert!(!log.contains("GROUP BY sex"), "the ledger holds digests of scripts, not their text");
    // Nor their plain SHA-256, which anyone could test guesses against: a keyed digest.
    use sha2::Digest;
    let plain = hex::encode(sha2::Sha256::digest(b"SELECT count(*) FROM re"));
    assert!(!log.contains(&plain), "a script's plain SHA-256 is in the ledger");
}

/// Sample datasets (HIC-P2): a custodian publishes a synthetic dataset; any researcher then
/// queries it without an application, in a confined worker; nobody else does; withdrawing it
/// takes effect at once.
#[test]
fn sample_datasets_need_no_application() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    ok(&kura(&home, &["synth", "--persons", "100", "--seed", "9", "--months", "1"]));
    add_users(&home, &[("r1", "researcher", "1310000001"), ("c1", "custodian", "1300000000"), ("v1", "reviewer", "3310000003")]);
    let q = "SELECT count(*) AS n FROM re";
    let e = fails(&kura(&home, &["sample", "sql", "--dataset", "ndb", "--as", "r1", q]));
    assert!(e.contains("no sample dataset 'ndb'"), "{e}");
    let e = fails(&kura(&home, &["sample", "publish", "ndb", "--as", "r1"]));
    assert!(e.contains("only a custodian may publish a sample dataset"), "{e}");
    ok(&kura(&home, &["sample", "publish", "ndb", "--as", "c1", "--note", "学習用 / for learning"]));
    assert!(ok(&kura(&home, &["sample", "list"])).contains("ndb  c1"));
    let counted = ok(&kura(&home, &["sample", "sql", "--dataset", "ndb", "--as", "r1", "--format", "csv", q]));
    assert_eq!(counted, ok(&kura(&home, &["sql", "--format", "csv", q])), "the sample's built-in grant reads the dataset");
    let e = fails(&kura(&home, &["sample", "sql", "--dataset", "ndb", "--as", "v1", q]));
    assert!(e.contains("sample datasets are for active researchers"), "{e}");
    // The same statement policy as everywhere.
    let e = fails(&kura(&home, &["sample", "sql", "--dataset", "ndb", "--as", "r1", "COPY re TO '/tmp/x.csv'"]));
    assert!(e.contains("COPY"), "{e}");
    ok(&kura(&home, &["sample", "withdraw", "ndb", "--as", "c1"]));
    assert!(fails(&kura(&home, &["sample", "sql", "--dataset", "ndb", "--as", "r1", q])).contains("no sample dataset 'ndb'"));
    let log = ok(&kura(&home, &["ledger", "show", "--json"]));
    for action in ["sample.publish", "sample.query", "sample.withdraw"] {
        assert!(log.contains(action), "{action} missing from the ledger");
    }
}

/// `kura bench workspace` runs end to end with tiny settings (its figures are judged in release
/// builds, see docs/benchmarks.md).
#[test]
fn workspace_benchmark_runs() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kura"))
        .args(["bench", "workspace", "--persons", "200", "--runs", "1", "--starts", "2", "--idle", "2", "--dir"])
        .arg(dir.path().join("bench"))
        .output()
        .unwrap();
    let out = common::bench_ran(&o);
    for row in [
        "writing a project's extract",
        "workspace start",
        "query suite in process",
        "query suite through the worker",
        "memory per idle worker",
        "idle workspaces per node",
    ] {
        assert!(out.contains(row), "{row} missing from:\n{out}");
    }
}

/// `kura bench airlock` runs end to end on a small population and prints every figure with
/// its target (issue 17, "Performance"; the figures themselves come from the release build).
#[test]
fn airlock_benchmark_runs() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kura"))
        .args(["bench", "airlock", "--persons", "300", "--runs", "1", "--releases", "5", "--dir"])
        .arg(dir.path().join("bench"))
        .output()
        .unwrap();
    let out = common::bench_ran(&o);
    for row in [
        "cells of the output table",
        "the plain query",
        "the check: evidence query",
        "earlier releases read back",
        "differencing against",
        "the whole check",
    ] {
        assert!(out.contains(row), "{row} missing from:\n{out}");
    }
    assert!(out.contains("(5 releases"), "{out}");
}

/// Waits until `ready` holds, for at most 60 seconds.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What a hostile worker (or anyone with the worker's user) could leave in the workspace,
/// and a project ended while a member's script runs (review findings F1, F2, F4).
#[test]
fn hostile_workspace_files_and_an_end_during_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    ok(&kura(&home, &["synth", "--persons", "300", "--seed", "5", "--months", "2"]));
    let cfg = home.join("kura.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("timeout_secs = 600", "timeout_secs = 30");
    std::fs::write(&cfg, text).unwrap();
    add_users(
        &home,
        &[
            ("r1", "researcher", "1310000001"),
            ("c1", "custodian", "1300000000"),
            ("v1", "reviewer", "3310000003"),
            ("v2", "reviewer", "3310000003"),
        ],
    );
    let p1 = provision(&home, "r1", &["re.receipt_id", "re.id5", "re.sex"]);
    let ws = home.join("workspaces").join(&p1);
    let extract = ws.join("extract");
    let count = "SELECT count(*), count(DISTINCT id5), sum(sex) FROM re";
    let answer = || rows(&ok(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", "--format", "csv", count])));
    let expected = answer();
    // The manifest is the parent's, outside the directory the worker's user writes.
    assert!(ws.join("extract.manifest").is_file() && !extract.join("extract.manifest").exists());

    // F1: a link planted in the extract's directory is never followed: nothing outside the
    // workspace changes owner, whatever the worker's user put there.
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("secret"), b"x").unwrap();
    let owner = |p: &Path| std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(p).unwrap());
    let before = owner(&victim.join("secret"));
    std::os::unix::fs::symlink(&victim, extract.join("x")).unwrap();
    assert_eq!(answer(), expected);
    assert_eq!(owner(&victim.join("secret")), before, "a file outside the workspace changed owner");
    assert_eq!(owner(&victim), before);

    // F4: a missing extract file is not an empty table: the extract is written again (and
    // what was planted in its directory removed).
    let part = |ext: &Path| parquet_files(ext).into_iter().next().unwrap();
    std::fs::remove_file(part(&extract)).unwrap();
    assert_eq!(answer(), expected);
    assert!(std::fs::symlink_metadata(extract.join("x")).is_err(), "the planted link was removed");
    // A damaged one fails clearly, once; the next request answers from a new extract.
    let f = part(&extract);
    let mut bytes = std::fs::read(&f).unwrap();
    // The last byte of the encrypted footer (before its 4-byte length and the magic): every
    // read of the file decrypts the footer first, whichever columns the query reads.
    let at = bytes.len() - 9;
    bytes[at] ^= 0x55;
    std::fs::write(&f, &bytes).unwrap();
    let e = fails(&kura(&home, &["workspace", "sql", "--project", &p1, "--as", "r1", count]));
    assert!(e.contains("the extract is rebuilt at the next request"), "{e}");
    assert!(!e.contains(home.to_str().unwrap()), "the home's path is not shown: {e}");
    assert_eq!(answer(), expected);

    // F2: the end while a member's script runs (in another process): the worker is stopped
    // (when root) and the result withheld; the member gets the ended error.
    ok(&kura(&home, &["project", "notice", &p1, "--as", "r1"]));
    let long = "SELECT count(*) FROM re a, re b, re c WHERE a.sex + b.sex + c.sex > 100";
    let member = std::process::Command::new(env!("CARGO_BIN_EXE_kura"))
        .args(["--home", home.to_str().unwrap(), "workspace", "sql", "--project", &p1, "--as", "r1", long])
        .env("USER", "tester")
        .env("KURA_TEST_FAST_HASH", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the member's worker", || {
        std::fs::read_dir(ws.join("tmp")).is_ok_and(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("worker-")))
    });
    ok(&kura(&home, &["project", "end", &p1, "--as", "c1"]));
    let out = member.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "a result left after the end: {err}");
    assert!(err.contains("project PRJ-000001 ended on"), "{err}");
}
