//! A real `clamd` for tests (issue 17 §4): started on a Unix socket in a directory of its own,
//! with a signature database the test generates — a hash signature (`.hdb`) of the EICAR test
//! file and a YARA rule (`.yar`) — since no signatures are shipped and the machines have no
//! internet. Shared by the tests of kura-scan and of the `kura` binary (`#[path]`).
//!
//! clamd runs under a small shell that kills it once its standard input closes: when the test
//! process ends, however it ends, its clamd ends too.

#![allow(dead_code)] // each test binary uses a part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The name the `.hdb` signature gives the EICAR file (clamd adds `.UNOFFICIAL`).
pub const EICAR_SIGNATURE: &str = "Kura.Test.EICAR";
/// A marker the YARA rule finds in any file.
pub const YARA_MARKER: &str = "KURA-YARA-TEST-MARKER-7f3a";
/// The YARA rule's name (clamd reports `YARA.<name>.UNOFFICIAL`).
pub const YARA_RULE: &str = "KuraTestMarker";

/// A running clamd.
pub struct Clamd {
    _dir: tempfile::TempDir,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its socket.
    pub socket: PathBuf,
}

/// `clamd` on this machine (Debian puts it in /usr/sbin, which a test's PATH may lack).
fn clamd_binary() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.push("/usr/local/sbin".into());
    dirs.into_iter()
        .map(|d| d.join("clamd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("clamd is not installed: the tests need Debian's clamav-daemon (scripts/test.sh installs it)"))
}

/// The `.hdb` line of `data`: SHA-256, size, name (clamd accepts SHA-256 in hash signatures).
pub fn hash_signature(data: &[u8], name: &str) -> String {
    use sha2::Digest;
    format!("{}:{}:{name}\n", hex::encode(sha2::Sha256::digest(data)), data.len())
}

/// The signature file of the EICAR file alone.
pub fn eicar_signature() -> (&'static str, String) {
    ("kura-test.hsb", hash_signature(&kura_scan::eicar(), EICAR_SIGNATURE))
}

/// `inner` wrapped in `depth` zips, one inside the other.
pub fn nested_zip(inner: &[u8], depth: usize) -> Vec<u8> {
    (0..depth).fold(inner.to_vec(), |data, _| zip_stored(&[("inner.zip", data.as_slice())]))
}

/// A YARA rule that matches files holding `marker`.
pub fn yara_rule(name: &str, marker: &str) -> String {
    format!("rule {name}\n{{\n    strings:\n        $a = \"{marker}\"\n    condition:\n        $a\n}}\n")
}

impl Clamd {
    /// clamd with the test signatures: EICAR by hash, the marker by YARA rule.
    pub fn start() -> Clamd {
        let eicar = kura_scan::eicar();
        Clamd::with_signatures(&[
            ("kura-test.hsb", hash_signature(&eicar, EICAR_SIGNATURE)),
            ("kura-test.yar", yara_rule(YARA_RULE, YARA_MARKER)),
        ])
    }

    /// clamd that knows only the EICAR file (as yesterday's signatures, before a rule was added).
    pub fn eicar_only() -> Clamd {
        Clamd::with_signatures(&[eicar_signature()])
    }

    /// clamd with only the given signature files (name, content), alerting on what it cannot
    /// open (as production must be set up).
    pub fn with_signatures(files: &[(&str, String)]) -> Clamd {
        Clamd::configured(files, "AlertExceedsMax yes\nAlertEncrypted yes\n")
    }

    /// clamd with the given signature files and extra `clamd.conf` lines.
    pub fn configured(files: &[(&str, String)], extra: &str) -> Clamd {
        let dir = tempfile::Builder::new().prefix("kura-clamd").tempdir().expect("clamd dir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("db dir");
        for (name, content) in files {
            std::fs::write(db.join(name), content).expect("signature file");
        }
        let socket = dir.path().join("clamd.sock");
        let conf = dir.path().join("clamd.conf");
        let p = |x: &Path| x.display().to_string();
        std::fs::write(
            &conf,
            format!(
                "LocalSocket {}\nDatabaseDirectory {}\nTemporaryDirectory {}\nLogFile {}\nForeground yes\nMaxThreads 4\nConcurrentDatabaseReload no\n{extra}",
                p(&socket),
                p(&db),
                p(dir.path()),
                p(&dir.path().join("clamd.log")),
            ),
        )
        .expect("clamd.conf");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("\"$1\" -c \"$2\" & pid=$!; read _ignored; kill $pid; wait $pid")
            .arg("sh")
            .arg(clamd_binary())
            .arg(&conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clamd");
        let stdin = child.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("clamd.log")).unwrap_or_default();
                panic!("clamd ended ({status}) before it listened:\n{log}");
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.path().join("clamd.log")).unwrap_or_default();
                panic!("clamd did not listen within 120 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Clamd { _dir: dir, child, stdin, socket }
    }

    /// Stops clamd now (a scanner that goes away).
    pub fn stop(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A zip archive holding `files` uncompressed (kura-scan's own writer).
pub fn zip_stored(files: &[(&str, &[u8])]) -> Vec<u8> {
    kura_scan::stored_zip(files, false)
}
