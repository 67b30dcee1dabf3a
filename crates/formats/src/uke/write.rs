//! The writer: records out as CP932 with CRLF.

use crate::FormatError;
use encoding_rs::SHIFT_JIS;
use std::io::Write;

/// Writes a UKE file record by record. The writer checks what keeps the file readable — no
/// comma, line break or other control character in a field, every character in CP932 and none
/// of its user-defined (外字) area — so that [`super::Reader`] reads back the fields written;
/// whether the records make a valid claim (layouts, totals) is the caller's to get right, and
/// the reader's to check.
pub struct Writer<W: Write> {
    out: W,
    line: u64,
}

impl<W: Write> Writer<W> {
    /// A writer to `out` (buffer it: each record is one write).
    pub fn new(out: W) -> Writer<W> {
        Writer { out, line: 0 }
    }

    /// Writes one record (field 0 the record type).
    pub fn record<S: AsRef<str>>(&mut self, fields: &[S]) -> Result<(), FormatError> {
        self.line += 1;
        let mut bytes = Vec::with_capacity(64 * fields.len());
        for (i, field) in fields.iter().enumerate() {
            let field = field.as_ref();
            if field.contains(',') || field.chars().any(char::is_control) {
                return Err(FormatError::Value(format!(
                    "行 {} 項目 {i}: 値にカンマか改行・制御文字があります / line {} field {i}: a comma, line break or control character in the value",
                    self.line, self.line
                )));
            }
            if field.chars().any(super::read::is_private) {
                return Err(FormatError::Value(format!(
                    "行 {} 項目 {i}: 外字（利用者定義文字）は書けません / line {} field {i}: a user-defined (private-use) character",
                    self.line, self.line
                )));
            }
            if i > 0 {
                bytes.push(b',');
            }
            let (encoded, _, unmappable) = SHIFT_JIS.encode(field);
            if unmappable {
                return Err(FormatError::Value(format!(
                    "行 {} 項目 {i}: CP932 にない文字があります / line {} field {i}: a character CP932 does not have",
                    self.line, self.line
                )));
            }
            bytes.extend_from_slice(&encoded);
        }
        bytes.extend_from_slice(b"\r\n");
        self.out.write_all(&bytes)?;
        Ok(())
    }

    /// Ends the file, with the end-of-file byte 0x1A where `eof_byte`; gives the output back.
    pub fn finish(mut self, eof_byte: bool) -> Result<W, FormatError> {
        if eof_byte {
            self.out.write_all(&[0x1A])?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}
