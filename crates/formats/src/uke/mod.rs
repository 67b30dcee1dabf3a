//! レセプト電算処理システム (UKE) receipt files: [`Reader`] and [`Writer`]
//! (`../shared/domain/data.md` §1; HX-1, HX-12).
//!
//! A UKE file is Shift_JIS (read and written as CP932, Windows-31J), one comma-separated record
//! per CRLF-terminated line, field 0 the two-letter record type: a header (`IR`; `YK` for 調剤;
//! `UK` then `IR` for 歯科), receipts (`RE` and the records that follow it), and `GO` last. An
//! end-of-file byte 0x1A after `GO` is accepted.
//!
//! The reader checks, and names file, line, record type and field for each problem:
//!
//! - the bytes: CP932 throughout (a UTF-8 file is refused outright rather than misread), CRLF
//!   line ends, no control characters and no 外字 (CP932's user-defined area), lines of at most
//!   [`MAX_LINE`] bytes;
//! - each record: a record type the file's kind has, its field count ([`layout`]), and each
//!   checked field — digits, codes, 和暦 or 西暦 dates and months ([`date`]), the 保険者番号's
//!   検証番号;
//! - each receipt: its type's payer count (レセプト種別 digit 3 = its `HO` and `KO` records) and
//!   payer (one `HO` for 医保・後期・退職, none for 公費単独), the type's table matching the
//!   file's, the main payer's 合計点数 present; for 医科 the days of each procedure, drug and
//!   device line adding up to its count, and outside DPC (a receipt with a `BU` record) the main
//!   payer's 合計点数 equal to Σ 点数 × 回数 (食事・生活療養 lines, 診療識別 97, are priced in
//!   yen and left out; a blank 診療識別 is the one before it); DPC records without `BU` are
//!   refused;
//! - the file: the header first, receipts numbered 1, 2, 3 … without a gap (from 1 in a first
//!   volume), at least one receipt, `GO` last with the number of `HO` and `KO` records and the
//!   sum of the main payers' totals it states.
//!
//! An empty 保険者番号 is read (ORCA writes `HO` records without one, data.md §3): the intake
//! marks such a receipt unlinkable rather than hashing nothing into an ID.
//!
//! Each record carries the SHA-256 of its line as it is in the file (without the CRLF), and the
//! summary the SHA-256 of the whole file: the hashes the ledger records (HX-12), which anyone
//! holding the file can compute again.
//!
//! A problem in the header, the numbering or `GO` stops the file ([`Reader::next_receipt`]
//! returns it as an error: nothing of the file is to be loaded, so receipts are staged until
//! the end); a problem inside a receipt rejects that receipt ([`Rejected`], with the problems
//! found in it) and the reader goes on with the next. Memory is bounded by one receipt
//! ([`MAX_RECEIPT_BYTES`]) and one line ([`MAX_LINE`], [`MAX_FIELDS`]), whatever the file's
//! size.

pub mod date;
pub mod layout;
mod read;
mod write;

pub use layout::{FileKind, Kind, Layout, layout};
pub use read::{Reader, Receipt, Record, Rejected, Summary};
pub use write::Writer;

/// The longest line read (bytes, CRLF included): far above any record's (an uncoded 傷病名 or a
/// 症状詳記 runs to a few hundred bytes), low enough that a file without line ends cannot take
/// the reader's memory.
pub const MAX_LINE: usize = 64 * 1024;

/// The most fields a line may have (the longest record, 歯科 `SS`, has 109).
pub const MAX_FIELDS: usize = 256;

/// The most a receipt's records may hold (bytes of text, with a little for each field): a
/// month of a long hospital stay is far below it; past it the receipt is rejected and its
/// lines are counted, not kept, so memory stays bounded whatever the file holds.
pub const MAX_RECEIPT_BYTES: usize = 8 * 1024 * 1024;

/// The most problems listed for one receipt (then one saying how many more).
pub const MAX_PROBLEMS: usize = 100;
