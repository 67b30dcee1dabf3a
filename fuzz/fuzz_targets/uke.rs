//! UKE receipt files from untrusted bytes (issue 18): reading never panics, and every receipt
//! the reader accepts, written out again by the writer, reads back to the same fields.
#![no_main]

use kura_formats::uke::{Reader, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader::new("fuzz.UKE", data);
    let mut accepted = Vec::new();
    while let Ok(Some(next)) = reader.next_receipt() {
        if let Ok(receipt) = next {
            accepted.extend(receipt.records.into_iter().map(|r| r.fields));
        }
    }
    let mut writer = Writer::new(Vec::new());
    for fields in &accepted {
        writer.record(fields).expect("what was read can be written");
    }
    let bytes = writer.finish(false).expect("a Vec takes every write");
    let mut again = Vec::new();
    let mut lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    for fields in &accepted {
        let line = lines.next().expect("one line per record");
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(line.strip_suffix(b"\r").expect("CRLF"));
        assert!(!bad, "the writer writes CP932");
        again.push(text.split(',').map(str::to_owned).collect::<Vec<_>>());
        assert_eq!(again.last(), Some(fields));
    }
});
