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

    /// clamd with only the given signature files (name, content).
    pub fn with_signatures(files: &[(&str, String)]) -> Clamd {
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
                "LocalSocket {}\nDatabaseDirectory {}\nTemporaryDirectory {}\nLogFile {}\nForeground yes\nMaxThreads 4\nConcurrentDatabaseReload no\n",
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

/// A zip archive holding `files` uncompressed (method "stored"), written by hand so that the
/// tests need no archiver: local headers, the central directory, its end record.
pub fn zip_stored(files: &[(&str, &[u8])]) -> Vec<u8> {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let sum = crc.checksum(data);
        let head = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed to extract
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&sum.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(head(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}
