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
//! - each receipt: its type's payer count (レセプト種別 digit 3 = its `HO` and `KO` records),
//!   the days of each procedure, drug and device line adding up to its count, and for 医科
//!   receipts outside DPC the main payer's 合計点数 equal to Σ 点数 × 回数 (食事・生活療養 lines,
//!   診療識別 97, are priced in yen and left out);
//! - the file: the header first, receipts numbered 1, 2, 3 … without a gap, `GO` last with the
//!   number of `HO` and `KO` records and the sum of the main payers' totals it states.
//!
//! A problem in the header, the numbering or `GO` stops the file ([`Reader::next_receipt`]
//! returns it as an error: nothing of the file is to be loaded); a problem inside a receipt
//! rejects that receipt ([`Rejected`], with every problem found in it) and the reader goes on
//! with the next. Memory is bounded by one receipt, whatever the file's size.

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
