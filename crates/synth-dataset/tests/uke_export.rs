//! `kura synth --format uke`'s files: every one reads back through Kura's own UKE reader
//! without a problem, and together they hold exactly the generated receipts (issue 18 §1).

use kura_crypto::{PseudonymKey, SecretKey};
use kura_formats::uke::Reader;
use kura_synth::{Generator, SynthConfig};
use kura_synth_dataset::uke::write_uke;
use std::io::BufReader;

#[test]
fn every_file_reads_back_whole_and_holds_every_receipt() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("uke-out");
    let g = Generator::new(SynthConfig::new(400, 11), PseudonymKey::new(SecretKey::from_bytes([3; 32])))?;
    let expected: usize = (0..g.chunk_count()).map(|i| g.generate_chunk(i).receipts.len()).sum();
    let export = write_uke(&g, &out, &|_| {})?;
    assert_eq!(export.receipts as usize, expected);
    assert!(export.files > 10, "{} files", export.files);
    let mut read = 0u64;
    for rel in &export.paths {
        let path = out.join(rel);
        let mut r = Reader::new(&rel.display().to_string(), BufReader::new(std::fs::File::open(&path)?));
        while let Some(receipt) = r.next_receipt().map_err(|p| p.to_string())? {
            match receipt {
                Ok(_) => read += 1,
                Err(rejected) => panic!("{}: {:?}", rel.display(), rejected.problems.iter().map(ToString::to_string).collect::<Vec<_>>()),
            }
        }
        assert_eq!(r.summary().rejected, 0);
        let id5 = path.with_file_name(format!("{}.ID5.CSV", path.file_stem().and_then(|s| s.to_str()).unwrap_or_default()));
        let answers = std::fs::read_to_string(&id5)?;
        assert_eq!(answers.lines().count() as u64, r.summary().accepted, "{}", id5.display());
    }
    assert_eq!(read, export.receipts);
    // A second run into the same directory is refused rather than mixing two populations.
    assert!(write_uke(&g, &out, &|_| {}).is_err());
    Ok(())
}
