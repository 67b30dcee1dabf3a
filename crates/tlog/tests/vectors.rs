//! Conformance against published vectors: RFC 6962 (transparency-dev/merkle testdata), the C2SP
//! signed-note worked example, golang.org/x/mod `sumdb/note`, and C2SP tlog-tiles paths
//! (HX-8, HX-12, HIC-S6). Pure: no runtime, no database.

use kura_tlog::merkle::root_from_inclusion;
use kura_tlog::note::cosignature_message;
use kura_tlog::tile::{TileId, decode_bundle, encode_bundle, encode_index, tiles_for_size};
use kura_tlog::{
    Checkpoint, Hash, MemoryTree, Note, ProofFile, SigType, SignerKey, TlogError, VerifierKey, consistency_proof, inclusion_proof,
    leaf_hash, open_checkpoint, verify_consistency, verify_inclusion,
};
use serde::Deserialize;

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("vector json")
}

fn h(b64: &str) -> Hash {
    Hash::parse(b64).expect("vector hash")
}

#[derive(Deserialize)]
struct Roots {
    leaves: Vec<String>,
    roots: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inclusion {
    name: String,
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Vec<String>,
    #[serde(rename = "want_err")]
    want_err: bool,
}

#[derive(Deserialize)]
struct Consistency {
    name: String,
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Vec<String>,
    want_err: bool,
}

fn reference_tree() -> (Vec<Vec<u8>>, Roots) {
    let r: Roots = load("rfc6962_roots.json");
    let leaves = r.leaves.iter().map(|l| hex::decode(l).unwrap()).collect();
    (leaves, r)
}

#[test]
fn empty_tree_root_is_sha256_of_nothing() {
    assert_eq!(Hash::empty().to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(MemoryTree::new().root(), Hash::empty());
}

#[test]
fn rfc6962_reference_roots() {
    let (leaves, r) = reference_tree();
    let mut tree = MemoryTree::new();
    for (i, leaf) in leaves.iter().enumerate() {
        tree.push(leaf_hash(leaf));
        assert_eq!(tree.root().to_hex(), r.roots[i], "root of the first {} leaves", i + 1);
    }
    for (i, want) in r.roots.iter().enumerate() {
        assert_eq!(&tree.root_at(i as u64 + 1).unwrap().to_hex(), want, "root_at({})", i + 1);
    }
}

#[test]
fn bulk_extend_builds_the_same_tree_as_single_pushes() {
    // The audit adds leaves in large batches, hashing interior nodes on all cores; the tree
    // must be identical node for node to one built a leaf at a time, from any starting size.
    let leaves: Vec<Hash> = (0u32..70_001).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut one_by_one = MemoryTree::new();
    leaves.iter().for_each(|h| one_by_one.push(*h));
    for (first, cuts) in [(0, vec![70_001]), (1, vec![5_000, 70_001]), (4_097, vec![20_000, 20_001, 70_001]), (3, vec![9_000, 70_001])] {
        let mut bulk = MemoryTree::new();
        bulk.extend(&leaves[..first]);
        let mut at = first;
        for cut in cuts {
            bulk.extend(&leaves[at..cut]);
            at = cut;
        }
        for level in 0..18u8 {
            assert_eq!(bulk.level(level), one_by_one.level(level), "level {level} after starting at {first}");
        }
        assert_eq!(bulk.root(), one_by_one.root());
    }
}

#[test]
fn published_inclusion_vectors() {
    let cases: Vec<Inclusion> = load("inclusion.json");
    assert!(cases.iter().any(|c| c.want_err) && cases.iter().any(|c| !c.want_err));
    let (leaves, _) = reference_tree();
    let mut tree = MemoryTree::new();
    leaves.iter().for_each(|l| tree.push(leaf_hash(l)));
    for c in cases {
        let proof: Vec<Hash> = c.proof.iter().map(|p| h(p)).collect();
        let got = verify_inclusion(&h(&c.leaf_hash), c.leaf_idx, c.tree_size, &proof, &h(&c.root));
        assert_eq!(got.is_err(), c.want_err, "{}: {got:?}", c.name);
        if !c.want_err {
            // Kura generates exactly the published proof.
            assert_eq!(inclusion_proof(&tree, c.leaf_idx, c.tree_size).unwrap(), proof, "{}", c.name);
        }
    }
}

#[test]
fn published_consistency_vectors() {
    let cases: Vec<Consistency> = load("consistency.json");
    let (leaves, _) = reference_tree();
    let mut tree = MemoryTree::new();
    leaves.iter().for_each(|l| tree.push(leaf_hash(l)));
    for c in cases {
        let proof: Vec<Hash> = c.proof.iter().map(|p| h(p)).collect();
        let got = verify_consistency(c.size1, c.size2, &h(&c.root1), &h(&c.root2), &proof);
        assert_eq!(got.is_err(), c.want_err, "{}: {got:?}", c.name);
        if !c.want_err {
            assert_eq!(consistency_proof(&tree, c.size1, c.size2).unwrap(), proof, "{}", c.name);
        }
    }
}

/// Every proof Kura generates for trees up to 70 leaves verifies, and every single-bit change
/// to a proof, a root or an index is rejected.
#[test]
fn generated_proofs_verify_and_mutations_fail() {
    let mut tree = MemoryTree::new();
    let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    leaves.iter().for_each(|l| tree.push(*l));
    for size in 1..=70u64 {
        let root = tree.root_at(size).unwrap();
        for index in 0..size {
            let proof = inclusion_proof(&tree, index, size).unwrap();
            verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
            assert_eq!(root_from_inclusion(&leaves[index as usize], index, size, &proof).unwrap(), root);
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0].0[0] ^= 1;
                assert!(verify_inclusion(&leaves[index as usize], index, size, &bad, &root).is_err());
                assert_ne!(*first, bad[0]);
            }
            if size > 1 {
                assert!(
                    verify_inclusion(&leaves[index as usize], (index + 1) % size, size, &proof, &root).is_err(),
                    "wrong index {index}/{size}"
                );
            }
        }
        for size1 in 1..=size {
            let root1 = tree.root_at(size1).unwrap();
            let proof = consistency_proof(&tree, size1, size).unwrap();
            verify_consistency(size1, size, &root1, &root, &proof).unwrap();
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let last = bad.len() - 1;
                bad[last].0[31] ^= 0x80;
                assert!(verify_consistency(size1, size, &root1, &root, &bad).is_err(), "{size1}->{size}");
                assert!(verify_consistency(size1, size, &root1, &root, &proof[..last]).is_err(), "truncated {size1}->{size}");
            }
            let mut other = root1;
            other.0[5] ^= 4;
            assert!(verify_consistency(size1, size, &other, &root, &proof).is_err());
        }
    }
    assert!(matches!(inclusion_proof(&tree, 70, 70), Err(TlogError::OutOfRange { .. })));
    assert!(verify_consistency(5, 4, &tree.root_at(5).unwrap(), &tree.root_at(4).unwrap(), &[]).is_err());
}

#[test]
fn c2sp_signed_note_worked_example() {
    let key = VerifierKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").unwrap();
    assert_eq!(key.name, "example.com/foo");
    assert_eq!(key.id, 0x530d903a);
    assert_eq!(key.kind, SigType::Ed25519);
    assert_eq!(key.to_string(), "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k");
    let text = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let note = Note::parse(text.as_bytes()).unwrap();
    assert_eq!(note.text, "This is an example message.\n");
    assert_eq!(note.to_bytes(), text.as_bytes(), "round trip is byte-exact");
    let ok = note.verify(std::slice::from_ref(&key)).unwrap();
    assert_eq!(ok.len(), 1);
    // One flipped character of the text breaks the signature.
    let tampered = text.replace("example message", "exbmple message");
    assert!(matches!(Note::parse(tampered.as_bytes()).unwrap().verify(std::slice::from_ref(&key)), Err(TlogError::BadSignature { .. })));
    // A key ID that does not match the key is refused.
    assert!(VerifierKey::parse("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").is_err());
}

#[test]
fn go_sumdb_note_vectors() {
    let skey = SignerKey::parse("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
    let vkey = VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").unwrap();
    assert_eq!(skey.verifier(), &vkey);
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    let sig = skey.sign(text.as_bytes()).unwrap();
    assert_eq!(
        sig.line(),
        "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        "Ed25519 is deterministic: Kura reproduces Go's signature"
    );
    assert_eq!(skey.to_secret_string().as_str(), "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz");

    // A note signed by two keys, one of which the verifier does not know.
    let enoch = VerifierKey::parse("EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop").unwrap();
    let two = format!(
        "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
    );
    let note = Note::parse(two.as_bytes()).unwrap();
    assert_eq!(note.verify(std::slice::from_ref(&vkey)).unwrap().len(), 1);
    assert_eq!(note.verify(std::slice::from_ref(&enoch)).unwrap().len(), 1);
    assert_eq!(note.verify(&[vkey, enoch]).unwrap().len(), 2);
    let stranger = SignerKey::generate("Stranger", SigType::Ed25519).unwrap();
    assert!(matches!(note.verify(&[stranger.verifier().clone()]), Err(TlogError::Untrusted)));
}

#[test]
fn ecdsa_and_cosignature_round_trips() {
    let log = SignerKey::generate("kura.example/log", SigType::EcdsaP256).unwrap();
    let vk = VerifierKey::parse(&log.verifier().to_string()).unwrap();
    assert_eq!(&vk, log.verifier());
    let again = SignerKey::parse(&log.to_secret_string()).unwrap();
    assert_eq!(again.verifier(), log.verifier());

    let cp =
        Checkpoint::new("kura.example/log", 8, Hash::parse("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328").unwrap());
    assert_eq!(cp.body(), "kura.example/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n");
    let mut note = cp.sign(&again).unwrap();
    let witness = SignerKey::generate("witness.example/w1", SigType::Cosignature).unwrap();
    let sig = witness.sign_at(note.text.as_bytes(), 1_700_000_000).unwrap();
    assert_eq!(sig.bytes.len(), 8 + 64, "timestamp then Ed25519 signature");
    assert_eq!(&sig.bytes[..8], &1_700_000_000u64.to_be_bytes());
    note.add(sig);
    let bytes = note.to_bytes();

    let opened = open_checkpoint(&bytes, &vk, &[witness.verifier().clone()], 1).unwrap();
    assert_eq!(opened.checkpoint, cp);
    assert_eq!(opened.cosigners[0].time, Some(1_700_000_000));
    assert!(matches!(open_checkpoint(&bytes, &vk, &[], 1), Err(TlogError::NotEnoughWitnesses { have: 0, need: 1 })));
    // The cosignature covers the timestamp: the message is the tlog-cosignature/v1 form.
    assert!(cosignature_message(1_700_000_000, note.text.as_bytes()).starts_with(b"cosignature/v1\ntime 1700000000\n"));
    let mut moved = Note::parse(&bytes).unwrap();
    moved.signatures[1].bytes[7] ^= 1;
    assert!(matches!(open_checkpoint(&moved.to_bytes(), &vk, &[witness.verifier().clone()], 1), Err(TlogError::BadSignature { .. })));
    // A checkpoint body with a changed size no longer verifies.
    let forged = String::from_utf8(bytes.clone()).unwrap().replacen("\n8\n", "\n9\n", 1);
    assert!(open_checkpoint(forged.as_bytes(), &vk, &[], 0).is_err());
}

#[test]
fn note_parser_is_strict() {
    let key = SignerKey::generate("k", SigType::Ed25519).unwrap();
    let mut note = Note::new("hello\n").unwrap();
    note.add(key.sign(b"hello\n").unwrap());
    let good = note.to_bytes();
    assert!(Note::parse(&good).is_ok());
    for bad in [
        b"hello\n".to_vec(),                                                            // no signatures
        b"hello\n\n".to_vec(),                                                          // empty signature block
        [&good[..good.len() - 1]].concat(),                                             // no final newline
        [b"hel\x07lo\n".as_slice(), &good[6..]].concat(),                               // control character
        String::from_utf8(good.clone()).unwrap().replace('\u{2014}', "-").into_bytes(), // not an em dash
        vec![0xff, 0xfe],                                                               // not UTF-8
    ] {
        assert!(Note::parse(&bad).is_err(), "{:?}", String::from_utf8_lossy(&bad));
    }
    assert!(Note::new("no newline").is_err());
}

#[test]
fn tile_paths() {
    assert_eq!(encode_index(1234067), "x001/x234/067");
    assert_eq!(encode_index(0), "000");
    assert_eq!(encode_index(999), "999");
    assert_eq!(encode_index(1000), "x001/000");
    assert_eq!(TileId::hashes(0, 1234067, 256).path(), "tile/0/x001/x234/067");
    assert_eq!(TileId::hashes(1, 2, 5).path(), "tile/1/002.p/5");
    assert_eq!(TileId::entries(1234067, 256).path(), "tile/entries/x001/x234/067");
    assert_eq!(TileId::entries(0, 17).path(), "tile/entries/000.p/17");
    for t in [TileId::hashes(0, 1234067, 256), TileId::hashes(3, 0, 1), TileId::entries(5, 255), TileId::entries(u64::MAX / 3, 256)] {
        assert_eq!(TileId::parse_path(&t.path()).unwrap(), t);
    }
    for bad in [
        "tile/0/1234067",
        "tile/0/x1/234",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/001.p/05",
        "tile/entries/x000/001",
        "tile/9x/000",
        "tiles/0/000",
        "tile/0/000/",
        "tile/0/-01",
    ] {
        assert!(TileId::parse_path(bad).is_err(), "{bad} must be refused");
    }
    // A tree of 70,000 leaves: 273 full + 1 partial level-0 tiles; 273 level-8 hashes make one
    // full and one partial level-1 tile; floor(70000/65536) = 1 gives a level-2 tile of width 1.
    let tiles = tiles_for_size(70_000);
    assert_eq!(tiles.iter().filter(|t| t.level == Some(0)).count(), 274);
    assert_eq!(tiles.iter().filter(|t| t.level == Some(1)).map(|t| t.width).collect::<Vec<_>>(), vec![256, 17]);
    assert_eq!(tiles.iter().filter(|t| t.level == Some(2)).map(|t| t.width).collect::<Vec<_>>(), vec![1]);
    assert!(tiles.iter().all(|t| t.level != Some(3)));
    assert_eq!(tiles.iter().rfind(|t| t.level.is_none()).unwrap().width, (70_000 % 256) as u16);
}

#[test]
fn entry_bundles() {
    let entries: Vec<&[u8]> = vec![b"", b"a", &[7u8; 300]];
    let b = encode_bundle(entries.iter().copied()).unwrap();
    assert_eq!(&b[..5], &[0, 0, 0, 1, b'a']);
    assert_eq!(decode_bundle(&b).unwrap(), entries);
    assert!(decode_bundle(&b[..b.len() - 1]).is_err());
    assert!(encode_bundle([vec![0u8; 65_536].as_slice()]).is_err());
}

#[test]
fn proof_file_round_trip_and_tamper() {
    let key = SignerKey::generate("kura.example/log", SigType::Ed25519).unwrap();
    let mut tree = MemoryTree::new();
    let leaves: Vec<Hash> = (0..11u8).map(|i| leaf_hash(&[i])).collect();
    leaves.iter().for_each(|l| tree.push(*l));
    let cp = Checkpoint::new("kura.example/log", 11, tree.root()).sign(&key).unwrap();
    let file =
        ProofFile { extra: Some(b"file.csv".to_vec()), index: 3, proof: inclusion_proof(&tree, 3, 11).unwrap(), checkpoint: cp.to_bytes() };
    let bytes = file.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra ZmlsZS5jc3Y=\nindex 3\n"));
    let parsed = ProofFile::parse(&bytes).unwrap();
    assert_eq!(parsed, file);
    parsed.verify(&leaves[3], key.verifier(), &[], 0).unwrap();
    assert!(parsed.verify(&leaves[4], key.verifier(), &[], 0).is_err(), "another leaf");
    // Every single-byte change of the file is either refused by the parser or by verification.
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let ok = ProofFile::parse(&b).and_then(|p| p.verify(&leaves[3], key.verifier(), &[], 0).map(|_| p));
        if let Ok(p) = ok {
            // Only the unsigned `extra` line may change without breaking the proof.
            assert!(p.extra != file.extra && p.index == 3 && p.proof == file.proof, "byte {i} changed undetected");
        }
    }
}
