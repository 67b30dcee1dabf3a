//! # kura-gate — who may connect, decided before the TLS handshake
//!
//! 接続元の制御。国内（日本）からの接続と設定された内部アドレスだけを通し、ブロックリストと
//! 自動遮断に載ったアドレスは TLS ハンドシェイクの前に切断する（HIC-S4, HIC-S9, HIC-U1, HIC-U4）。
//!
//! Kura is reachable only from Japan and from configured internal ranges (HIC-S4, HIC-U1), and
//! never from an address that threat intelligence or Kura itself has marked hostile (HIC-S9).
//! This crate makes that decision from an IP address alone, cheaply enough to run on every
//! accepted connection before any TLS work:
//!
//! - [`geo::CountryTable`]: the RIR statistics exchange format (APNIC's `delegated-apnic-latest`
//!   and the other registries' files) parsed into sorted ranges, looked up by binary search;
//! - [`blocklist::IpBlocklist`] and [`blocklist::DomainBlocklist`]: operator files of addresses,
//!   CIDR ranges, URLs and domains, with errors that name the file and line;
//! - [`autoblock::AutoBlocker`]: repeated failures (bad certificates, failed logins, scanning)
//!   from one address (one /64 for IPv6) block it for a period, at once;
//! - [`Gate`]: all of it together, reloaded from its files when they change, answering
//!   [`Gate::check`] with a [`Verdict`].
//!
//! ```
//! use kura_gate::{Gate, GateConfig, Verdict};
//! let geo = "2|apnic|20261122|2|19830613|20261121|+1000\n\
//!            apnic|JP|ipv4|203.0.113.0|256|20000101|allocated\n\
//!            apnic|AU|ipv4|198.51.100.0|256|20000101|allocated\n";
//! let gate = Gate::from_texts(GateConfig::default(), Some(geo), "", "").unwrap();
//! let now = std::time::SystemTime::now();
//! assert_eq!(gate.check("203.0.113.9".parse().unwrap(), now), Verdict::Allow);
//! assert!(matches!(gate.check("198.51.100.7".parse().unwrap(), now), Verdict::Foreign { .. }));
//! ```

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![forbid(unsafe_code)]

pub mod autoblock;
pub mod blocklist;
mod gate;
pub mod geo;
pub mod ranges;

pub use autoblock::{AutoBlockPolicy, AutoBlocker, Block, Failure};
pub use gate::{Gate, GateConfig, Verdict, client_addr};

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A line of a list or statistics file could not be read.
    #[error("{file}:{line}: {what} / 読み取れません（{file} の {line} 行目）")]
    Parse {
        /// The file (or `<text>` for text given directly).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        what: String,
    },
    /// A file could not be read.
    #[error("ファイルを読めません / cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
