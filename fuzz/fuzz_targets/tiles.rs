//! Tile paths and entry bundles (C2SP tlog-tiles) from untrusted input, as a server and a
//! mirror client receive them: no panics, and what parses re-encodes exactly.
#![no_main]

use kura_tlog::TileId;
use kura_tlog::tile::{decode_bundle, encode_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data)
        && let Ok(id) = TileId::parse_path(path)
    {
        assert_eq!(id.path(), path, "a parsed tile path must re-encode exactly");
        assert!(!path.contains(".."));
    }
    if let Ok(entries) = decode_bundle(data) {
        let again = encode_bundle(entries.iter().copied()).unwrap();
        assert_eq!(again, data, "a decoded bundle must re-encode exactly");
    }
});
