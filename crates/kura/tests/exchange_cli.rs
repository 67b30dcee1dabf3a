//! `kura exchange` through the real binary (issue 18 §3; HX-7, HX-8, NET-3, NET-4): a file
//! sent to one institution and to a closed group; a third institution told that it does not
//! exist (the same words as for an identifier nobody used); the sender's and the receiver's
//! trails the same, each step's proof verifying; the file sealed on disk; malware refused and
//! listed for the operators; only the sender deletes, and a deleted file cannot be downloaded.
//! (The retention period's deletion, which needs the clock moved, is kura-app's `exchange`
//! test.)

#[path = "../../scan/tests/support/clamd.rs"]
mod clamd;
mod common;
use clamd::Clamd;
use common::{add_users, fails, kura, last_line, ok, use_scanner};
use std::sync::OnceLock;

fn clamd() -> &'static Clamd {
    static CLAMD: OnceLock<Clamd> = OnceLock::new();
    CLAMD.get_or_init(Clamd::start)
}

const A: &str = "1310000001";
const B: &str = "1310000002";
const C: &str = "2710000003";
const D: &str = "3310000004";

/// The trail's step lines (from the second line on), as printed.
fn steps(out: &str) -> Vec<String> {
    out.lines().filter(|l| l.contains("(ledger ")).map(str::to_string).collect()
}

/// An error message with the identifier asked for blanked out.
fn without(msg: &str, id: &str) -> String {
    msg.replace(id, "<id>")
}

#[test]
fn only_sender_and_receivers_see_a_file_and_share_its_trail() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    use_scanner(&home, &clamd().socket);
    add_users(
        &home,
        &[("ha", "provider", A), ("hb", "provider", B), ("hc", "provider", C), ("hd", "provider", D), ("ra", "researcher", A)],
    );

    // The checkup results an institution sends (a converted standard-format CSV).
    let file = dir.path().join("results_2026.csv");
    let content = "受診者番号,実施日,BMI\nP0001,20260401,23.1\nP0002,20260402,27.4\n";
    std::fs::write(&file, content).unwrap();
    let out = ok(&kura(&home, &["exchange", "send", "--as", "ha", "--to", B, file.to_str().unwrap(), "--note", "2026年度 健診結果"]));
    let id = last_line(&out);
    assert!(id.starts_with("XF-") && id.len() == 19, "{out}");

    // Stored sealed: neither the text nor the file's bytes are on disk in the clear.
    let sealed = std::fs::read(home.join("exchange").join(format!("{id}.sealed"))).unwrap();
    assert!(!sealed.windows(5).any(|w| w == b"P0001"), "the file is stored encrypted");

    // The receiver lists and downloads it; the bytes are the sender's.
    assert!(ok(&kura(&home, &["exchange", "list", "--as", "hb"])).contains(&id));
    let got = dir.path().join("got.csv");
    ok(&kura(&home, &["exchange", "get", &id, "--as", "hb", "--out", got.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&got).unwrap(), content);
    // Never over an existing file.
    let again = fails(&kura(&home, &["exchange", "get", &id, "--as", "hb", "--out", got.to_str().unwrap()]));
    assert!(again.contains("got.csv"), "{again}");

    // A third institution: not in its list, and every command answers as for an identifier
    // nobody used (404, not 403).
    assert!(!ok(&kura(&home, &["exchange", "list", "--as", "hc"])).contains(&id));
    let unused = "XF-0000000000000000";
    let third = dir.path().join("third.csv");
    for cmd in [vec!["trail"], vec!["get", "--out", third.to_str().unwrap()], vec!["delete"]] {
        let ask = |x: &str| {
            let mut args = vec!["exchange", cmd[0], x, "--as", "hc"];
            args.extend(&cmd[1..]);
            fails(&kura(&home, &args))
        };
        let (theirs, nobodys) = (ask(&id), ask(unused));
        assert!(theirs.contains("no transfer"), "{theirs}");
        assert_eq!(without(&theirs, &id), without(&nobodys, unused), "{} tells existing from unused", cmd[0]);
    }
    assert!(!third.exists(), "nothing written for a refused download");
    // An account that is not an institution's provider account sends and receives nothing.
    let r = fails(&kura(&home, &["exchange", "list", "--as", "ra"]));
    assert!(r.contains("provider"), "{r}");

    // Trails: the same for sender and receiver, every step with its ledger entry; each step's
    // proof verifies offline.
    let ta = ok(&kura(&home, &["exchange", "trail", &id, "--as", "ha"]));
    let tb = ok(&kura(&home, &["exchange", "trail", &id, "--as", "hb"]));
    assert_eq!(steps(&ta), steps(&tb));
    assert_eq!(steps(&ta).len(), 2, "{ta}");
    assert!(steps(&ta)[0].contains("send") && steps(&ta)[1].contains("download") && steps(&ta)[1].contains(&format!("hb ({B})")), "{ta}");
    let proofs = dir.path().join("proofs");
    ok(&kura(&home, &["exchange", "trail", &id, "--as", "hb", "--proofs", proofs.to_str().unwrap()]));
    let key = ok(&kura(&home, &["ledger", "key"])).trim().to_string();
    for n in ["1-send", "2-download"] {
        let p = proofs.join(format!("{id}-{n}.tlog-proof"));
        let v = ok(&kura(&home, &["proof", "verify", p.to_str().unwrap(), "--log-key", &key]));
        assert!(v.contains("proof verified"), "{v}");
    }

    // Only the sender deletes; then nobody downloads it, and the deletion is in both trails.
    let e = fails(&kura(&home, &["exchange", "delete", &id, "--as", "hb"]));
    assert!(e.contains("only the sending institution"), "{e}");
    ok(&kura(&home, &["exchange", "delete", &id, "--as", "ha"]));
    assert!(!home.join("exchange").join(format!("{id}.sealed")).exists());
    let late = fails(&kura(&home, &["exchange", "get", &id, "--as", "hb", "--out", dir.path().join("late.csv").to_str().unwrap()]));
    assert!(late.contains("deleted"), "{late}");
    let ta = ok(&kura(&home, &["exchange", "trail", &id, "--as", "ha"]));
    assert_eq!(steps(&ta), steps(&ok(&kura(&home, &["exchange", "trail", &id, "--as", "hb"]))));
    assert!(steps(&ta).last().unwrap().contains("delete"), "{ta}");

    // A closed group: its other members receive, an outsider does not; a group the sender's
    // institution is not in cannot be used.
    ok(&kura(&home, &["exchange", "group", "set", "east", "--title", "東部地域連携", "--member", A, "--member", B, "--member", C]));
    let out = ok(&kura(&home, &["exchange", "send", "--as", "hb", "--group", "east", file.to_str().unwrap()]));
    let gid = last_line(&out);
    assert!(out.contains(&format!("receivers {A},{C}")), "{out}");
    for (who, sees) in [("ha", true), ("hc", true), ("hd", false)] {
        assert_eq!(ok(&kura(&home, &["exchange", "list", "--as", who])).contains(&gid), sees, "{who}");
    }
    let e = fails(&kura(&home, &["exchange", "send", "--as", "hd", "--group", "east", file.to_str().unwrap()]));
    assert!(e.contains("not a member"), "{e}");

    // Malware is refused, never stored, and listed for the operators.
    let eicar = dir.path().join("eicar.csv");
    std::fs::write(&eicar, kura_scan::eicar()).unwrap();
    let before = std::fs::read_dir(home.join("exchange")).unwrap().count();
    let e = fails(&kura(&home, &["exchange", "send", "--as", "ha", "--to", B, eicar.to_str().unwrap()]));
    assert!(e.contains("malware"), "{e}");
    assert_eq!(std::fs::read_dir(home.join("exchange")).unwrap().count(), before);
    let status = ok(&kura(&home, &["scanner", "status"]));
    assert!(status.lines().any(|l| l.contains("exchange") && l.contains("eicar.csv")), "{status}");
}

/// A file's name is checked before anything is stored; the sender's own institution, an
/// unknown one and a file above the size limit are refused with what to do.
#[test]
fn bad_sends_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"]));
    use_scanner(&home, &clamd().socket);
    add_users(&home, &[("ha", "provider", A), ("hb", "provider", B)]);
    let file = dir.path().join("r.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let e = fails(&kura(&home, &["exchange", "send", "--as", "ha", "--to", A, file.to_str().unwrap()]));
    assert!(e.contains("your own institution"), "{e}");
    let e = fails(&kura(&home, &["exchange", "send", "--as", "ha", "--to", "9999999999", file.to_str().unwrap()]));
    assert!(e.contains("no institution '9999999999'"), "{e}");
    let hidden = dir.path().join(".hidden.csv");
    std::fs::write(&hidden, "a\n").unwrap();
    let e = fails(&kura(&home, &["exchange", "send", "--as", "ha", "--to", B, hidden.to_str().unwrap()]));
    assert!(e.contains("does not start with a dot"), "{e}");
    // A link is not followed.
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let e = fails(&kura(&home, &["exchange", "send", "--as", "ha", "--to", B, link.to_str().unwrap()]));
    assert!(e.contains("not a regular file"), "{e}");
    // Above [exchange] max_mb.
    let cfg = home.join("kura.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("max_mb = 64", "max_mb = 1");
    std::fs::write(&cfg, text).unwrap();
    let big = dir.path().join("big.csv");
    std::fs::write(&big, vec![b'x'; (1 << 20) + 1]).unwrap();
    let e = fails(&kura(&home, &["exchange", "send", "--as", "ha", "--to", B, big.to_str().unwrap()]));
    assert!(e.contains("at most 1 MiB"), "{e}");
    assert!(!home.join("exchange").exists() || std::fs::read_dir(home.join("exchange")).unwrap().count() == 0, "nothing stored");
}
