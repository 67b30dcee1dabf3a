//! C2SP tlog-checkpoint: the signed statement of a tree's size and root (HX-10, HIC-S6).

use crate::TlogError;
use crate::hash::{Hash, shorten};
use crate::note::{Note, SignerKey, Verified, VerifierKey};

/// A checkpoint body: origin, tree size, root hash (Kura writes no extension lines but keeps
/// any it reads, since they are part of what was signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, e.g. `kura.example/ledger`.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// Root hash of the tree of `size` entries.
    pub root: Hash,
    /// Extension lines (without their newlines).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extensions.
    pub fn new(origin: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint { origin: origin.to_string(), size, root, extensions: Vec::new() }
    }

    /// The note text: `origin\nsize\nbase64(root)\n` and any extension lines.
    pub fn body(&self) -> String {
        let mut b = format!("{}\n{}\n{}\n", self.origin, self.size, self.root.to_base64());
        for e in &self.extensions {
            b.push_str(e);
            b.push('\n');
        }
        b
    }

    /// Parses a note text as a checkpoint, strictly (decimal size without leading zeros,
    /// 32-byte root, non-empty extension lines).
    pub fn parse_body(text: &str) -> Result<Checkpoint, TlogError> {
        let bad = |d: String| TlogError::Malformed { what: "checkpoint", detail: d };
        let body = text.strip_suffix('\n').ok_or_else(|| bad("does not end with a newline".into()))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("no origin line".into()))?;
        let size_text = lines.next().ok_or_else(|| bad("no size line".into()))?;
        let size: u64 = size_text.parse().map_err(|_| bad(format!("size '{}' is not a decimal number", shorten(size_text))))?;
        if size.to_string() != size_text {
            return Err(bad(format!("size '{}' is not canonical", shorten(size_text))));
        }
        let root_text = lines.next().ok_or_else(|| bad("no root hash line".into()))?;
        let root = Hash::from_base64(root_text).ok_or_else(|| bad(format!("root '{}' is not 32 bytes of base64", shorten(root_text))))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line".into()));
        }
        Ok(Checkpoint { origin: origin.to_string(), size, root, extensions })
    }

    /// Signs the checkpoint with the log's key (whose name must be the origin).
    pub fn sign(&self, key: &SignerKey) -> Result<Note, TlogError> {
        if key.name() != self.origin {
            return Err(TlogError::Malformed {
                what: "log key",
                detail: format!("key '{}' cannot sign for origin '{}'", key.name(), self.origin),
            });
        }
        let mut note = Note::new(&self.body())?;
        note.add(key.sign(self.body().as_bytes())?);
        Ok(note)
    }
}

/// A checkpoint whose log signature has been verified, with its verified cosignatures.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The note it came in.
    pub note: Note,
    /// Cosignatures by trusted witnesses.
    pub cosigners: Vec<Verified>,
}

/// Opens a signed checkpoint: the log key (named as the origin) must have signed it; witness
/// keys are checked when present; at least `min_witnesses` distinct witnesses must have cosigned.
pub fn open_checkpoint(
    bytes: &[u8],
    log_key: &VerifierKey,
    witnesses: &[VerifierKey],
    min_witnesses: usize,
) -> Result<SignedCheckpoint, TlogError> {
    let note = Note::parse(bytes)?;
    let checkpoint = Checkpoint::parse_body(&note.text)?;
    if checkpoint.origin != log_key.name {
        return Err(TlogError::Malformed {
            what: "checkpoint",
            detail: format!("origin '{}' is not the log key's name '{}'", shorten(&checkpoint.origin), log_key.name),
        });
    }
    note.verify(std::slice::from_ref(log_key))?;
    let cosigners = match note.verify(witnesses) {
        Ok(v) => v,
        Err(TlogError::Untrusted) => Vec::new(),
        // A known witness whose cosignature fails: the note has been tampered with.
        Err(e) => return Err(e),
    };
    if cosigners.len() < min_witnesses {
        return Err(TlogError::NotEnoughWitnesses { have: cosigners.len(), need: min_witnesses });
    }
    Ok(SignedCheckpoint { checkpoint, note, cosigners })
}
