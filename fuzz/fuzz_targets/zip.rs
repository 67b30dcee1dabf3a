//! Submission archives from untrusted bytes (issue 18): opening and unpacking never panic and
//! never unpack more than the limits allow.
#![no_main]

use kura_formats::archive::{Archive, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { entries: 64, entry_bytes: 64 * 1024, total_bytes: 256 * 1024, ratio: 100 };
    if let Ok(mut archive) = Archive::open("fuzz.zip", std::io::Cursor::new(data), limits) {
        let _ = archive.index();
        let _ = archive.summary();
        let mut total = 0usize;
        for doc in archive.documents() {
            if let Ok((_, bytes)) = doc {
                assert!(bytes.len() as u64 <= limits.entry_bytes);
                total += bytes.len();
            }
        }
        assert!(total as u64 <= limits.total_bytes);
    }
});
