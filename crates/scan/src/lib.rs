//! # kura-scan — malware scanning through ClamAV (HIC-S1, HIC-S14)
//!
//! ウイルス検査：持込み・持出しのファイルはすべて ClamAV（clamd）で検査する。検査できないときは
//! 通さない。
//!
//! Every file that enters a workspace (bring-in) or leaves it (take-out) is scanned by a real
//! engine: ClamAV's daemon `clamd`, spoken to over its Unix socket (the `INSTREAM` command, by
//! the `clamav-client` crate). Kura never decides "clean" by itself:
//!
//! - a scanner that is not configured, does not answer, or answers with something that is not a
//!   verdict gives [`ScanError`] — the caller blocks, never passes;
//! - a scanner with no signatures loaded is caught by a **self-test** before every scan: the
//!   industry's EICAR test file ([`eicar`], assembled at run time so that no file of Kura holds
//!   it) must be detected, or the scan fails with [`ScanError::NoSignatures`];
//! - a scanner that would pass what it cannot look into is caught by the same self-test: clamd
//!   answers `OK` for an archive nested deeper than its limits or an encrypted archive unless it
//!   is told to alert (`AlertExceedsMax yes`, `AlertEncrypted yes`); two harmless canaries (a zip
//!   nested 24 deep, a zip marked encrypted) must be flagged, or the scan fails with
//!   [`ScanError::Permissive`] naming the setting;
//! - the engine's version (with the official database's version and date where it has one) is
//!   part of every outcome, so that each scan's record names what scanned it.
//!
//! Production points `clamd` at the operator's mirrored signature files; the tests start their
//! own `clamd` with a signature database they generate (a hash signature of the EICAR file and a
//! YARA rule).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where Debian's `clamav-daemon` listens.
pub const DEFAULT_SOCKET: &str = "/run/clamav/clamd.ctl";

/// The `[scanner]` section of `kura.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScannerConfig {
    /// clamd's Unix socket (`LocalSocket` in `clamd.conf`).
    pub socket: String,
    /// Longest a scan may take (seconds); a scan that takes longer fails (and blocks).
    pub timeout_secs: u64,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        Self { socket: DEFAULT_SOCKET.into(), timeout_secs: 120 }
    }
}

/// Why a file could not be scanned. Each blocks what asked for the scan.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No socket configured.
    #[error(
        "ウイルス検査エンジンが設定されていません（kura.toml の [scanner] socket に clamd のソケットを指定してください） / no malware scanner is configured: set [scanner] socket in kura.toml to clamd's socket"
    )]
    NotConfigured,
    /// clamd could not be reached.
    #[error(
        "ウイルス検査エンジン（clamd, {socket}）に接続できません: {reason}。clamd を起動してから、もう一度実行してください / the malware scanner (clamd at {socket}) does not answer: {reason}; start clamd and try again (kura scanner status)"
    )]
    Unreachable {
        /// The socket.
        socket: String,
        /// What went wrong.
        reason: String,
    },
    /// clamd answered, but not with a verdict.
    #[error("ウイルス検査エンジンの応答が不正です / the malware scanner gave an answer that is not a verdict: {0}")]
    BadReply(String),
    /// The self-test file was not detected: no signatures are loaded.
    #[error(
        "ウイルス検査エンジン（{engine}）がテストファイル（EICAR）を検出しません。シグネチャが読み込まれていません / the malware scanner ({engine}) does not detect the EICAR test file: it has no signatures loaded; point clamd's DatabaseDirectory at the signature files"
    )]
    NoSignatures {
        /// The engine's version line.
        engine: String,
    },
    /// The scanner lets through what it cannot look into (archives too deep, encrypted).
    #[error(
        "ウイルス検査エンジン（{engine}）は{what_ja}を検査できないまま通します。clamd.conf に「{setting}」を設定してください / the malware scanner ({engine}) passes {what_en} it cannot look into: set `{setting}` in clamd.conf"
    )]
    Permissive {
        /// The engine's version line.
        engine: String,
        /// What it lets through, in Japanese.
        what_ja: &'static str,
        /// The same in English.
        what_en: &'static str,
        /// The clamd setting that stops it.
        setting: &'static str,
    },
    /// The scan took longer than the configured limit.
    #[error("ウイルス検査が {0} 秒以内に終わりませんでした / the malware scan did not finish within {0} s")]
    Timeout(u64),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, ScanError>;

/// The engine as it answered the self-test.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Engine {
    /// The socket.
    pub socket: String,
    /// clamd's `VERSION` line: `ClamAV 1.4.3/27480/Tue Dec  1 08:00:00 2026` where an official
    /// database is loaded, `ClamAV 1.4.3` with local signatures only.
    pub version: String,
    /// The signature that detected the EICAR test file.
    pub self_test: String,
    /// What flagged the archive nested too deep to open.
    pub deep_archives: String,
    /// What flagged the encrypted archive.
    pub encrypted_archives: String,
}

/// What a scan found.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// Malware (or a test signature) found.
    Found {
        /// The signature's name as clamd reports it.
        signature: String,
    },
}

/// One file's scan: the verdict and the engine that gave it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Scanned {
    /// The verdict.
    pub verdict: Verdict,
    /// The engine.
    pub engine: Engine,
}

/// The EICAR anti-virus test file (68 bytes), assembled at run time: every engine detects it,
/// and it does nothing. Used for the self-test and by the tests.
pub fn eicar() -> Vec<u8> {
    // In three pieces so that no file of Kura holds the whole string (a scanner of the source
    // tree would flag it).
    let parts: [&str; 3] = [r"X5O!P%@AP[4\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS-", "TEST-FILE!$H+H*"];
    parts.concat().into_bytes()
}

/// A zip archive holding `files` uncompressed ("stored"), every entry marked encrypted if
/// `encrypted`: the self-test's canaries, and test files.
pub fn stored_zip(files: &[(&str, &[u8])], encrypted: bool) -> Vec<u8> {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let flags: u16 = if encrypted { 1 } else { 0 };
    let le16 = |v: usize| u16::try_from(v).unwrap_or(u16::MAX).to_le_bytes();
    let le32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len();
        let head = |central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(if central { b"PK\x01\x02" } else { b"PK\x03\x04" });
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed to extract
            h.extend_from_slice(&flags.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&crc.checksum(data).to_le_bytes());
            h.extend_from_slice(&le32(data.len()));
            h.extend_from_slice(&le32(data.len()));
            h.extend_from_slice(&le16(name.len()));
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
                h.extend_from_slice(&le32(offset));
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(head(false));
        out.extend_from_slice(data);
        central.extend(head(true));
    }
    let cd_offset = out.len();
    let cd_len = central.len();
    out.extend(central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]); // disks
    out.extend_from_slice(&le16(files.len()));
    out.extend_from_slice(&le16(files.len()));
    out.extend_from_slice(&le32(cd_len));
    out.extend_from_slice(&le32(cd_offset));
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A harmless text nested in zips deeper than any scanner's default recursion limit.
fn deep_canary() -> Vec<u8> {
    let mut data = b"kura-scan canary: an archive too deep to open".to_vec();
    for level in 0..24 {
        let name = if level == 0 { "canary.txt" } else { "canary.zip" };
        data = stored_zip(&[(name, &data)], false);
    }
    data
}

/// A harmless text in a zip whose entry is marked encrypted.
fn encrypted_canary() -> Vec<u8> {
    stored_zip(&[("canary.txt", b"\0\0\0\0\0\0\0\0\0\0\0\0kura-scan canary: an encrypted archive")], true)
}

/// A connection to clamd (see the crate documentation).
#[derive(Clone, Debug)]
pub struct Scanner {
    socket: Option<PathBuf>,
    timeout: Duration,
}

/// clamd's answer to `INSTREAM`: `stream: OK`, `stream: NAME FOUND`, or an error line.
fn parse_reply(reply: &[u8]) -> Result<Verdict> {
    let text = String::from_utf8_lossy(reply);
    let line = text.trim_end_matches(['\0', '\n']).trim();
    let rest = line.strip_prefix("stream:").map(str::trim).ok_or_else(|| ScanError::BadReply(line.chars().take(200).collect()))?;
    if rest == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(name) = rest.strip_suffix(" FOUND") {
        return Ok(Verdict::Found { signature: name.trim().to_string() });
    }
    // "INSTREAM size limit exceeded. ERROR" and the like: not a verdict.
    Err(ScanError::BadReply(rest.chars().take(200).collect()))
}

impl Scanner {
    /// The scanner `config` names.
    pub fn new(config: &ScannerConfig) -> Scanner {
        let socket = (!config.socket.trim().is_empty()).then(|| PathBuf::from(config.socket.trim()));
        Scanner { socket, timeout: Duration::from_secs(config.timeout_secs.max(1)) }
    }

    /// A scanner at `socket` with the default time limit.
    pub fn at(socket: &Path) -> Scanner {
        Scanner::new(&ScannerConfig { socket: socket.display().to_string(), ..ScannerConfig::default() })
    }

    fn socket(&self) -> Result<&Path> {
        self.socket.as_deref().ok_or(ScanError::NotConfigured)
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> ScanError {
        ScanError::Unreachable {
            socket: self.socket.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
            reason: reason.to_string(),
        }
    }

    async fn timed<T>(&self, f: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.unreachable(e)),
            Err(_) => Err(ScanError::Timeout(self.timeout.as_secs())),
        }
    }

    async fn instream(&self, bytes: &[u8]) -> Result<Verdict> {
        let socket = clamav_client::tokio::Socket { socket_path: self.socket()? };
        let reply = self.timed(clamav_client::tokio::scan_buffer(bytes, socket, None)).await?;
        parse_reply(&reply)
    }

    /// Asks clamd for its version and runs the self-test: the EICAR test file must be found.
    pub async fn status(&self) -> Result<Engine> {
        let path = self.socket()?;
        let pong = self.timed(clamav_client::tokio::ping(clamav_client::tokio::Socket { socket_path: path })).await?;
        if pong != clamav_client::PONG {
            return Err(ScanError::BadReply(String::from_utf8_lossy(&pong).chars().take(200).collect()));
        }
        let version = self.timed(clamav_client::tokio::get_version(clamav_client::tokio::Socket { socket_path: path })).await?;
        let version = String::from_utf8_lossy(&version).trim_end_matches(['\0', '\n']).trim().to_string();
        if !version.starts_with("ClamAV ") {
            return Err(ScanError::BadReply(version.chars().take(200).collect()));
        }
        let self_test = match self.instream(&eicar()).await? {
            Verdict::Found { signature } => signature,
            Verdict::Clean => return Err(ScanError::NoSignatures { engine: version }),
        };
        let deep_archives = match self.instream(&deep_canary()).await? {
            Verdict::Found { signature } => signature,
            Verdict::Clean => {
                return Err(ScanError::Permissive {
                    engine: version,
                    what_ja: "深く入れ子になった圧縮ファイル",
                    what_en: "archives nested too deep",
                    setting: "AlertExceedsMax yes",
                });
            }
        };
        let encrypted_archives = match self.instream(&encrypted_canary()).await? {
            Verdict::Found { signature } => signature,
            Verdict::Clean => {
                return Err(ScanError::Permissive {
                    engine: version,
                    what_ja: "暗号化された圧縮ファイル",
                    what_en: "encrypted archives",
                    setting: "AlertEncrypted yes",
                });
            }
        };
        Ok(Engine { socket: path.display().to_string(), version, self_test, deep_archives, encrypted_archives })
    }

    /// Scans `bytes` (archives are opened by clamd: a zip holding malware is found) after the
    /// self-test.
    pub async fn scan(&self, bytes: &[u8]) -> Result<Scanned> {
        let engine = self.status().await?;
        let verdict = self.instream(bytes).await?;
        Ok(Scanned { verdict, engine })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_strictly() {
        assert_eq!(parse_reply(b"stream: OK\0").ok(), Some(Verdict::Clean));
        assert_eq!(
            parse_reply(b"stream: Kura.Test.EICAR.UNOFFICIAL FOUND\0").ok(),
            Some(Verdict::Found { signature: "Kura.Test.EICAR.UNOFFICIAL".into() })
        );
        // An error is never a verdict, least of all a clean one.
        assert!(matches!(parse_reply(b"INSTREAM size limit exceeded. ERROR\0"), Err(ScanError::BadReply(_))));
        assert!(matches!(parse_reply(b"stream: Can't allocate memory ERROR\0"), Err(ScanError::BadReply(_))));
        assert!(matches!(parse_reply(b""), Err(ScanError::BadReply(_))));
    }

    #[test]
    fn the_test_file_is_the_standard_one() {
        let e = eicar();
        assert_eq!(e.len(), 68);
        assert!(e.starts_with(b"X5O!P%@AP"));
        assert!(e.ends_with(b"$H+H*"));
    }

    #[tokio::test]
    async fn a_missing_scanner_blocks_with_a_clear_error() {
        let none = Scanner::new(&ScannerConfig { socket: String::new(), timeout_secs: 5 });
        let e = none.scan(b"hello").await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("[scanner] socket"), "{e}");
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { panic!("tempdir") };
        let gone = Scanner::at(&dir.path().join("clamd.sock"));
        let e = gone.scan(b"hello").await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("does not answer") && e.contains("clamd.sock"), "{e}");
    }
}
