//! 特定健診 CDA documents from untrusted bytes (issue 18): reading never panics, and what
//! reads writes back to a document that reads to the same checkup.
#![no_main]

use kura_formats::cda::{read_document, write_document};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(checkup) = read_document("fuzz.xml", data) {
        let xml = write_document(&checkup).expect("what was read can be written");
        let again = read_document("again.xml", xml.as_bytes()).expect("what was written reads");
        assert_eq!(again, checkup);
    }
});
