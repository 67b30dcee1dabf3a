//! What a leaf holds: a versioned, canonical encoding of audit events and data-authenticity
//! records (HX-10, HX-12, HIC-S5).
//!
//! An entry is one line of compact JSON with a fixed field order, for example
//!
//! ```text
//! {"kind":"audit","v":1,"time":"2026-11-22T04:08:00.123456Z","actor":{"user":"operator",
//!  "institution":"","cert":""},"action":"ledger.note","object":"","object_hash":null,
//!  "outcome":"ok","request":"","detail":"backup restored"}
//! ```
//!
//! (shown folded). Canonical means: [`Entry::decode`] accepts only bytes that [`Entry::encode`]
//! would have produced for the same value, so one event has exactly one leaf hash, and any
//! JSON reader can still read the log. Times are UTC with microseconds, from the log's one
//! clock ([`Clock`]), never decreasing.
//!
//! A converted file is recorded as one [`FileRecord`] (its SHA-256, size and record count)
//! followed by [`RecordHashes`] entries holding the SHA-256 of each record, up to
//! [`RECORDS_PER_ENTRY`] per entry; whoever holds the file can recompute every hash and ask for
//! an inclusion proof of each entry.

use crate::{LedgerError, TlogError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The encoding's version, written in every entry as `"v"`.
pub const ENTRY_VERSION: u32 = 1;

/// Record hashes per [`RecordHashes`] entry (keeps an entry below the 64 KiB bundle limit).
pub const RECORDS_PER_ENTRY: usize = 512;

/// Who acted: the user, the institution they act for and the fingerprint (SHA-256, hex) of the
/// client certificate they presented; empty strings where not applicable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// User name.
    pub user: String,
    /// Institution code or name.
    pub institution: String,
    /// Client-certificate SHA-256 fingerprint, lower-case hex.
    pub cert: String,
}

/// One operation (HX-10, HIC-S5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Encoding version ([`ENTRY_VERSION`]).
    pub v: u32,
    /// UTC time, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, set by the log's clock.
    pub time: String,
    /// Who.
    pub actor: Actor,
    /// What, as a dotted verb, e.g. `dataset.read`, `output.approve`, `ledger.note`.
    pub action: String,
    /// On what: a dataset, file, project or user identifier.
    pub object: String,
    /// SHA-256 (hex) of the object's content, where there is one.
    pub object_hash: Option<String>,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// The request's identifier, to join with server logs.
    pub request: String,
    /// Free text (an operator's note); no personal data.
    pub detail: Option<String>,
}

/// A converted file (HX-12): its SHA-256 and how many record hashes follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// Encoding version.
    pub v: u32,
    /// UTC time.
    pub time: String,
    /// Who submitted it.
    pub actor: Actor,
    /// The file's name as submitted.
    pub name: String,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Number of records (lines without their terminator).
    pub records: u64,
}

/// The SHA-256 of records `first .. first + sha256.len()` of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordHashes {
    /// Encoding version.
    pub v: u32,
    /// SHA-256 of the file, hex.
    pub file: String,
    /// Number of the first record (0-based).
    pub first: u64,
    /// Record hashes, hex.
    pub sha256: Vec<String>,
}

/// A leaf's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// An operation.
    Audit(AuditEvent),
    /// A converted file.
    File(FileRecord),
    /// Hashes of a file's records.
    Records(RecordHashes),
}

impl Entry {
    /// The canonical bytes.
    pub fn encode(&self) -> Result<Vec<u8>, LedgerError> {
        let bytes = serde_json::to_vec(self).map_err(|e| LedgerError::Malformed { what: "entry", detail: e.to_string() })?;
        if bytes.len() > kura_tlog::tile::MAX_ENTRY_LEN {
            return Err(LedgerError::Tlog(TlogError::EntryTooLong(bytes.len())));
        }
        Ok(bytes)
    }

    /// Reads canonical bytes; anything else (other field order, spaces, unknown fields or
    /// versions) is refused.
    pub fn decode(bytes: &[u8]) -> Result<Entry, LedgerError> {
        let bad = |d: String| LedgerError::Malformed { what: "entry", detail: d };
        let e: Entry = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let v = match &e {
            Entry::Audit(a) => a.v,
            Entry::File(f) => f.v,
            Entry::Records(r) => r.v,
        };
        if v != ENTRY_VERSION {
            return Err(bad(format!("version {v} is not {ENTRY_VERSION}")));
        }
        if e.encode()? != bytes {
            return Err(bad("not in canonical form".into()));
        }
        Ok(e)
    }

    /// A short description for listings.
    pub fn summary(&self) -> String {
        let p = printable;
        match self {
            Entry::Audit(a) => format!("{} {} {} {} {}", p(&a.time), p(&a.actor.user), p(&a.action), p(&a.object), p(&a.outcome)),
            Entry::File(f) => format!("{} file {} sha256:{} {} records", p(&f.time), p(&f.name), p(&f.sha256), f.records),
            Entry::Records(r) => format!("records {}..{} of sha256:{}", r.first, r.first + r.sha256.len() as u64, p(&r.file)),
        }
    }
}

/// Text from an entry (or any signed file) made safe to print on a terminal: control
/// characters (ESC sequences, carriage returns, …) and the Unicode characters that reorder or
/// hide text (bidirectional overrides, zero-width marks) are written as `\u{…}` escapes, and a
/// backslash as `\\`, so what is shown is exactly what is recorded.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hidden = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}');
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || hidden {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The entries that record a file: one [`FileRecord`], then its record hashes. A record is a
/// line without its terminator (`\n` or `\r\n`); a last line without terminator counts.
pub fn file_entries(name: &str, content: &[u8], actor: &Actor, time: &str) -> Vec<Entry> {
    let mut h = RecordHasher::new(content);
    // Reading a slice cannot fail.
    let _ = std::io::copy(&mut h, &mut std::io::sink());
    hashed_file_entries(name, &h.finish(), actor, time)
}

/// A file's hashes as [`RecordHasher`] computed them while it was read.
///
/// A record's hash is **salted by the file**: `SHA-256(salt ‖ SHA-256(record))`, the salt being
/// `SHA-256("kura/record-salt/v1\0" ‖ the whole file)`. Whoever holds the file computes every
/// record's hash; whoever sees only the log cannot test a guessed record (a receipt's `RE` line
/// is a name, a birth date and a few guessable numbers) against it. The salt is never recorded:
/// the sender hands it, with a record, to whoever should check that record alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileHashes {
    /// Bytes read.
    pub bytes: u64,
    /// SHA-256 of every byte.
    pub sha256: [u8; 32],
    /// The file's record salt.
    pub salt: [u8; 32],
    /// Each record's salted hash (a record is a line without its `\n` or `\r\n`; a last line
    /// without a terminator counts).
    pub records: Vec<[u8; 32]>,
}

/// The salted hash of one record (its bytes without the line end) of a file whose record salt
/// is `salt` ([`FileHashes`]).
pub fn record_hash(salt: &[u8; 32], record: &[u8]) -> [u8; 32] {
    salted(salt, &Sha256::digest(record).into())
}

fn salted(salt: &[u8; 32], plain: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(plain);
    h.finalize().into()
}

/// The domain prefix of a file's record salt.
const SALT_PREFIX: &[u8] = b"kura/record-salt/v1\0";

/// The entries of [`file_entries`] from hashes already computed (a file read once, streamed).
pub fn hashed_file_entries(name: &str, h: &FileHashes, actor: &Actor, time: &str) -> Vec<Entry> {
    let file_hash = hex::encode(h.sha256);
    let hashes: Vec<String> = h.records.iter().map(hex::encode).collect();
    let mut out = vec![Entry::File(FileRecord {
        v: ENTRY_VERSION,
        time: time.to_string(),
        actor: actor.clone(),
        name: name.to_string(),
        sha256: file_hash.clone(),
        bytes: h.bytes,
        records: hashes.len() as u64,
    })];
    for (i, chunk) in hashes.chunks(RECORDS_PER_ENTRY).enumerate() {
        out.push(Entry::Records(RecordHashes {
            v: ENTRY_VERSION,
            file: file_hash.clone(),
            first: (i * RECORDS_PER_ENTRY) as u64,
            sha256: chunk.to_vec(),
        }));
    }
    out
}

/// Hashes a file as another reader reads it (it passes every byte through, as [`std::io::Read`]
/// and [`std::io::BufRead`]): the whole file's SHA-256 and each record's, with the records of
/// [`file_entries`], so that a parser and the ledger see one read of the same bytes (HX-12).
/// Memory: 32 bytes a record.
pub struct RecordHasher<R> {
    inner: R,
    file: Sha256,
    salt: Sha256,
    line: Sha256,
    /// Bytes of the current line seen (a `\r` held back included).
    line_bytes: u64,
    /// A `\r` not yet known to end its line.
    held_cr: bool,
    bytes: u64,
    records: Vec<[u8; 32]>,
}

impl<R> RecordHasher<R> {
    /// Hashes what is read from `inner`.
    pub fn new(inner: R) -> RecordHasher<R> {
        let mut salt = Sha256::new();
        salt.update(SALT_PREFIX);
        RecordHasher { inner, file: Sha256::new(), salt, line: Sha256::new(), line_bytes: 0, held_cr: false, bytes: 0, records: Vec::new() }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.file.update(bytes);
        self.salt.update(bytes);
        self.bytes += bytes.len() as u64;
        for part in bytes.split_inclusive(|b| *b == b'\n') {
            let (body, ends) = match part.split_last() {
                Some((b'\n', body)) => (body, true),
                _ => (part, false),
            };
            if !body.is_empty() {
                if self.held_cr {
                    self.line.update(b"\r");
                }
                let (body, cr) = match body.split_last() {
                    Some((b'\r', rest)) => (rest, true),
                    _ => (body, false),
                };
                self.line.update(body);
                self.held_cr = cr;
                self.line_bytes += body.len() as u64 + u64::from(cr);
            }
            if ends {
                self.end_line();
            }
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::replace(&mut self.line, Sha256::new());
        self.records.push(line.finalize().into());
        self.line_bytes = 0;
        self.held_cr = false;
    }

    /// The hashes of everything read so far; a last line without a terminator counts.
    pub fn finish(mut self) -> FileHashes {
        if self.line_bytes > 0 {
            self.end_line();
        }
        let salt: [u8; 32] = self.salt.finalize().into();
        let records = self.records.iter().map(|plain| salted(&salt, plain)).collect();
        FileHashes { bytes: self.bytes, sha256: self.file.finalize().into(), salt, records }
    }
}

impl<R: std::io::BufRead> std::io::Read for RecordHasher<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let available = self.inner.fill_buf()?;
            let n = available.len().min(buf.len());
            buf.get_mut(..n).unwrap_or_default().copy_from_slice(available.get(..n).unwrap_or_default());
            n
        };
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for RecordHasher<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes consumed are the front of the buffer `fill_buf` gave (a buffered reader
        // returns the same buffer again without reading).
        let taken = match self.inner.fill_buf() {
            Ok(b) => b.get(..amt.min(b.len())).unwrap_or_default().to_vec(),
            Err(_) => Vec::new(),
        };
        self.feed(&taken);
        self.inner.consume(amt);
    }
}

/// The log's one clock: UTC with microseconds, never going backwards even if the system clock
/// does (HX-10: one time source for every entry).
#[derive(Debug, Default)]
pub struct Clock {
    last_micros: std::sync::atomic::AtomicU64,
}

impl Clock {
    /// The next timestamp: now, or one microsecond after the previous one if the system clock
    /// has not moved on.
    pub fn now(&self) -> String {
        use std::sync::atomic::Ordering;
        let sys = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let mut prev = self.last_micros.load(Ordering::Relaxed);
        loop {
            let next = sys.max(prev + 1);
            match self.last_micros.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return format_micros(next),
                Err(p) => prev = p,
            }
        }
    }

    /// Makes sure later timestamps are after `time` (used when reopening a log).
    pub fn not_before(&self, time: &str) {
        if let Some(m) = parse_micros(time) {
            self.last_micros.fetch_max(m, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The UTC calendar fields of a Unix time in seconds, or `None` outside the years 1–9999.
fn utc_fields(unix_seconds: i64) -> Option<(i32, u8, u8, u8, u8, u8)> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds).ok().filter(|t| t.year() >= 1)?;
    Some((t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()))
}

/// Formats microseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (past the year
/// 9999, which no clock gives, as the bare number).
pub fn format_micros(micros: u64) -> String {
    match i64::try_from(micros / 1_000_000).ok().and_then(utc_fields) {
        Some((y, m, d, h, mi, s)) => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z", micros % 1_000_000),
        None => format!("{micros} µs (Unix time)"),
    }
}

/// Parses a time written by [`format_micros`].
pub fn parse_micros(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if b.len() != 27 || !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':') && at(19, b'.') && at(26, b'Z')) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<u64>().ok();
    let field = |r: std::ops::Range<usize>| num(r).and_then(|n| u8::try_from(n).ok());
    let month = time::Month::try_from(field(5..7)?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(num(0..4)?).ok()?, month, field(8..10)?).ok()?;
    let clock = time::Time::from_hms(field(11..13)?, field(14..16)?, field(17..19)?).ok()?;
    let secs = u64::try_from(time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp()).ok()?;
    Some(secs * 1_000_000 + num(20..26)?)
}

/// A Unix time in whole seconds as UTC text, `YYYY-MM-DDTHH:MM:SSZ` (for messages and reports;
/// outside the years 1–9999, which a message may be handed from a request, the bare number).
pub fn format_seconds(unix_seconds: i64) -> String {
    match utc_fields(unix_seconds) {
        Some((y, m, d, h, mi, s)) => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        None => format!("{unix_seconds} (Unix time)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_drives_a_terminal() {
        let hostile = "ok\x1b[2J\x1b]0;title\x07\r\u{202e}txt.exe\\n 鈴木";
        let shown = printable(hostile);
        assert!(!shown.chars().any(|c| c.is_control() || c == '\u{202e}'), "{shown:?}");
        assert_eq!(shown, "ok\\u{1b}[2J\\u{1b}]0;title\\u{7}\\u{d}\\u{202e}txt.exe\\\\n 鈴木");
        let mut e = event();
        if let Entry::Audit(a) = &mut e {
            a.object = hostile.into();
        }
        assert!(!e.summary().contains('\x1b'));
    }

    fn event() -> Entry {
        Entry::Audit(AuditEvent {
            v: ENTRY_VERSION,
            time: "2026-11-22T04:08:00.123456Z".into(),
            actor: Actor { user: "鈴木".into(), institution: "1310000001".into(), cert: "ab".repeat(32) },
            action: "dataset.read".into(),
            object: "ndb/re".into(),
            object_hash: None,
            outcome: "ok".into(),
            request: "r-1".into(),
            detail: Some("line\nbreak \"quoted\"".into()),
        })
    }

    #[test]
    fn canonical_round_trip_and_refusals() {
        let e = event();
        let bytes = e.encode().unwrap();
        assert!(bytes.starts_with(br#"{"kind":"audit","v":1,"time":"2026-11-22T04:08:00.123456Z","actor":{"user":""#));
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        let text = String::from_utf8(bytes.clone()).unwrap();
        for bad in [
            text.replace("\"v\":1", "\"v\":2"),
            text.replace(",\"outcome\"", ", \"outcome\""),
            text.replacen("{\"kind\":\"audit\",\"v\":1,", "{\"v\":1,\"kind\":\"audit\",", 1),
            text.replace("\"detail\"", "\"extra\":1,\"detail\""),
            text[..text.len() - 1].to_string(),
        ] {
            assert!(Entry::decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_streamed_hashes_are_the_whole_file_hashes() {
        use std::io::{BufRead, Read};
        // Cut anywhere, read in any pieces, the records are the lines of file_entries.
        let cases: [&[u8]; 8] = [b"", b"a", b"a\r\nb\r\n", b"a\nb", b"\r", b"x\r\r\n\r\ny\r", b"\n\n", b"GO,1\r\n\x1a"];
        for content in cases {
            let whole = {
                let mut lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
                if lines.last().is_some_and(|l| l.is_empty()) {
                    lines.pop();
                }
                let salt: [u8; 32] = Sha256::digest([SALT_PREFIX, content].concat()).into();
                lines.iter().map(|l| record_hash(&salt, l.strip_suffix(b"\r").unwrap_or(l))).collect::<Vec<_>>()
            };
            for cap in 1..=4 {
                let mut h = RecordHasher::new(std::io::BufReader::with_capacity(cap, content));
                let mut out = Vec::new();
                // Mix the two ways a parser reads: whole buffers and single bytes.
                loop {
                    let n = h.fill_buf().unwrap().len();
                    if n == 0 {
                        break;
                    }
                    if out.len() % 2 == 0 {
                        let mut one = [0u8; 1];
                        h.read_exact(&mut one).unwrap();
                        out.push(one[0]);
                    } else {
                        let b = h.fill_buf().unwrap().to_vec();
                        out.extend_from_slice(&b);
                        h.consume(b.len());
                    }
                }
                assert_eq!(out, content);
                let f = h.finish();
                assert_eq!(f.records, whole, "{content:?} in pieces of {cap}");
                assert_eq!(f.sha256, <[u8; 32]>::from(Sha256::digest(content)));
                assert_eq!(f.bytes, content.len() as u64);
            }
        }
    }

    #[test]
    fn file_entries_hash_each_record() {
        let content = b"IR,1,13\r\nRE,1,1127\nSY,8842\n";
        let es = file_entries("a.uke", content, &Actor::default(), "2026-11-22T00:00:00.000000Z");
        let Entry::File(f) = &es[0] else { panic!() };
        assert_eq!(f.records, 3);
        assert_eq!(f.sha256, hex::encode(Sha256::digest(content)));
        let Entry::Records(r) = &es[1] else { panic!() };
        // Salted by the file: the log does not let a guessed record be tested.
        let salt: [u8; 32] = Sha256::digest([SALT_PREFIX, &content[..]].concat()).into();
        assert_eq!(r.sha256[0], hex::encode(record_hash(&salt, b"IR,1,13")));
        assert_eq!(r.sha256[2], hex::encode(record_hash(&salt, b"SY,8842")));
        assert_ne!(r.sha256[0], hex::encode(Sha256::digest(b"IR,1,13")));
        // Another file holding the same record gives it another hash.
        let other = file_entries("c.uke", b"IR,1,13\r\nRE,2\n", &Actor::default(), "t");
        let Entry::Records(o) = &other[1] else { panic!() };
        assert_ne!(o.sha256[0], r.sha256[0]);
        let many: Vec<u8> = (0..1200).flat_map(|i| format!("{i}\n").into_bytes()).collect();
        let es = file_entries("b", &many, &Actor::default(), "t");
        assert_eq!(es.len(), 1 + 3);
        assert!(es.iter().all(|e| e.encode().is_ok()), "each entry fits a bundle");
    }

    #[test]
    fn clock_and_times() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        let t = 1_795_000_000_123_456u64;
        assert_eq!(parse_micros(&format_micros(t)), Some(t));
        assert_eq!(format_micros(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
        assert!(parse_micros("2026-02-30T00:00:00.000000Z").is_none());
        assert!(parse_micros("2026-01-01T24:00:00.000000Z").is_none());
        assert_eq!(format_seconds(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(format_seconds(i64::MAX), format!("{} (Unix time)", i64::MAX));
        assert_eq!(format_seconds(i64::MIN), format!("{} (Unix time)", i64::MIN));
        assert!(format_micros(u64::MAX).ends_with("(Unix time)"));
        let c = Clock::default();
        c.not_before("2999-01-01T00:00:00.000000Z");
        let a = c.now();
        let b = c.now();
        assert!(a.starts_with("2999-01-01T00:00:00.0000") && b > a, "{a} {b}");
    }
}
