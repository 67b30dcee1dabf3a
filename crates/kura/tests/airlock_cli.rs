//! The airlock's command line (issues 17 and 22), through the real binary: the disclosure
//! policy (HIC-IO2).

mod common;
use common::{kura, ok};

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
}
