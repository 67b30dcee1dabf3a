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
        match self.instream(&eicar()).await? {
            Verdict::Found { signature } => Ok(Engine { socket: path.display().to_string(), version, self_test: signature }),
            Verdict::Clean => Err(ScanError::NoSignatures { engine: version }),
        }
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
