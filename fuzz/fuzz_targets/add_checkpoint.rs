//! Witness `add-checkpoint` bodies (C2SP tlog-witness) from untrusted bytes: no panics, exact
//! round trip, and a real witness answers every body with one of the specification's codes.
#![no_main]

use kura_tlog::witness::{AddCheckpoint, Witness};
use kura_tlog::{SigType, SignerKey};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn witness() -> &'static Witness {
    static W: OnceLock<(tempfile_dir::Dir, Witness)> = OnceLock::new();
    &W.get_or_init(|| {
        let dir = tempfile_dir::Dir::new();
        let log = SignerKey::generate("example.com/log", SigType::Ed25519).unwrap();
        let key = SignerKey::generate("example.com/witness", SigType::Cosignature).unwrap();
        let w = Witness::open(key, vec![log.verifier().clone()], &dir.0.join("state.json")).unwrap();
        (dir, w)
    })
    .1
}

/// A scratch directory removed at exit (no extra crate for it).
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!("kura-fuzz-witness-{}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = AddCheckpoint::parse(data) {
        assert_eq!(req.to_bytes(), data, "a parsed request must re-encode byte for byte");
    }
    let answer = witness().add_checkpoint(data);
    assert!([200, 400, 403, 404, 409, 422].contains(&answer.status), "status {}", answer.status);
});
