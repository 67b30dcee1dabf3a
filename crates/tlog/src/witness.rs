//! A witness (C2SP tlog-witness): cosigns a log's checkpoint only if it is consistent with
//! the last one it cosigned for that log, so a split view or a rewritten history is refused
//! (HX-3, HX-4, HX-8).
//!
//! [`Witness::add_checkpoint`] is the whole protocol as a function from request body to
//! [`WitnessResponse`]; the HTTP endpoint and the offline (file-carried) mode both call it.
//! Its state — per log origin, the size and root it last cosigned — is checked and replaced
//! under one lock and written to disk atomically (write aside, fsync, rename) **before** the
//! cosignature is returned.

use crate::checkpoint::Checkpoint;
use crate::hash::Hash;
use crate::merkle::verify_consistency;
use crate::note::{Note, SigType, SignerKey, VerifierKey};
use crate::{TlogError, hash::shorten};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most consistency-proof lines a request may carry (the specification's limit).
pub const MAX_PROOF_LINES: usize = 63;

/// An `add-checkpoint` request: old size, consistency proof, signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness cosigned last.
    pub old: u64,
    /// Consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint (note bytes).
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::hash::lines_hashes_note(format!("old {}\n", self.old), &self.proof, &self.checkpoint)
    }

    /// Parses a request body strictly.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, TlogError> {
        let bad = |d: String| TlogError::Malformed { what: "add-checkpoint request", detail: d };
        let split = body.windows(2).position(|w| w == b"\n\n").ok_or_else(|| bad("no blank line before the checkpoint".into()))?;
        // `split` is the first of two newlines: the header ends with it, the checkpoint starts after both.
        let (head, rest) = body.split_at(split + 1);
        let checkpoint = rest.strip_prefix(b"\n").ok_or_else(|| bad("no blank line before the checkpoint".into()))?;
        let head = std::str::from_utf8(head).map_err(|_| bad("the header is not UTF-8".into()))?;
        // Split on '\n' only: `lines()` would also accept "\r\n", and the encoding is exact.
        let mut lines = head.strip_suffix('\n').unwrap_or(head).split('\n');
        let old_line = lines.next().unwrap_or("");
        let old_text = old_line.strip_prefix("old ").ok_or_else(|| bad("the first line is not 'old <size>'".into()))?;
        let old: u64 = old_text.parse().map_err(|_| bad(format!("old size '{}' is not a number", shorten(old_text))))?;
        if old.to_string() != old_text {
            return Err(bad("old size has leading zeros".into()));
        }
        let mut proof = Vec::new();
        for (i, l) in lines.enumerate() {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad(format!("more than {MAX_PROOF_LINES} proof lines")));
            }
            proof.push(Hash::from_base64(l).ok_or_else(|| bad(format!("proof line {} is not a base64 hash", i + 1)))?);
        }
        Ok(AddCheckpoint { old, proof, checkpoint: checkpoint.to_vec() })
    }
}

/// The witness's answer: an HTTP status, its body and content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessResponse {
    /// 200, 400, 403, 404, 409 or 422.
    pub status: u16,
    /// Cosignature lines (200), the latest size (409) or an explanation.
    pub body: Vec<u8>,
    /// `text/x.tlog.size` for a 409 with a size, else `text/plain; charset=utf-8`.
    pub content_type: &'static str,
}

impl WitnessResponse {
    fn text(status: u16, msg: &str) -> WitnessResponse {
        WitnessResponse { status, body: format!("{msg}\n").into_bytes(), content_type: "text/plain; charset=utf-8" }
    }

    /// The offline form: `status <code>\n` then the body.
    pub fn to_file(&self) -> Vec<u8> {
        let mut out = format!("status {}\n", self.status).into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads the offline form.
    pub fn from_file(bytes: &[u8]) -> Result<WitnessResponse, TlogError> {
        let bad = |d: &str| TlogError::Malformed { what: "witness response", detail: d.to_string() };
        let nl = bytes.iter().position(|b| *b == b'\n').ok_or_else(|| bad("no status line"))?;
        let (line, body) = bytes.split_at(nl);
        let body = body.strip_prefix(b"\n").unwrap_or(body);
        let line = std::str::from_utf8(line).map_err(|_| bad("status line is not UTF-8"))?;
        let status: u16 =
            line.strip_prefix("status ").and_then(|s| s.parse().ok()).ok_or_else(|| bad("first line is not 'status <code>'"))?;
        let content_type = if status == 409 { "text/x.tlog.size" } else { "text/plain; charset=utf-8" };
        Ok(WitnessResponse { status, body: body.to_vec(), content_type })
    }
}

/// What the witness remembers of one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogState {
    /// Size of the latest cosigned checkpoint.
    pub size: u64,
    /// Its root hash, base64.
    pub root: String,
}

/// A witness: its cosigning key, the logs it follows and its state file.
pub struct Witness {
    key: SignerKey,
    logs: Vec<VerifierKey>,
    state_path: PathBuf,
    state: Mutex<BTreeMap<String, LogState>>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness").field("key", self.key.verifier()).field("logs", &self.logs.len()).finish()
    }
}

impl Witness {
    /// A witness with a cosignature key (type 0x04), the log keys it trusts (their names are
    /// the origins) and the file that holds its state.
    pub fn open(key: SignerKey, logs: Vec<VerifierKey>, state_path: &Path) -> Result<Witness, TlogError> {
        if key.verifier().kind != SigType::Cosignature {
            return Err(TlogError::Malformed { what: "witness key", detail: "a witness signs with a cosignature (0x04) key".into() });
        }
        let state = match std::fs::read(state_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| TlogError::Malformed { what: "witness state", detail: format!("{}: {e}", state_path.display()) })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(TlogError::io(state_path, e)),
        };
        Ok(Witness { key, logs, state_path: state_path.to_path_buf(), state: Mutex::new(state) })
    }

    /// The witness's public key.
    pub fn verifier(&self) -> &VerifierKey {
        self.key.verifier()
    }

    /// What the witness last cosigned for `origin`.
    pub fn state(&self, origin: &str) -> Option<LogState> {
        self.state.lock().ok()?.get(origin).cloned()
    }

    /// Handles one `add-checkpoint` request body, exactly as C2SP tlog-witness prescribes.
    pub fn add_checkpoint(&self, body: &[u8]) -> WitnessResponse {
        let req = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return WitnessResponse::text(400, &e.to_string()),
        };
        let note = match Note::parse(&req.checkpoint) {
            Ok(n) => n,
            Err(e) => return WitnessResponse::text(400, &e.to_string()),
        };
        let cp = match Checkpoint::parse_body(&note.text) {
            Ok(c) => c,
            Err(e) => return WitnessResponse::text(400, &e.to_string()),
        };
        let keys: Vec<VerifierKey> = self.logs.iter().filter(|k| k.name == cp.origin).cloned().collect();
        if keys.is_empty() {
            return WitnessResponse::text(404, "unknown log origin");
        }
        if note.verify(&keys).is_err() {
            return WitnessResponse::text(403, "no valid signature by a trusted log key");
        }
        if req.old > cp.size {
            return WitnessResponse::text(400, "old size is larger than the checkpoint size");
        }
        let Ok(mut state) = self.state.lock() else {
            return WitnessResponse::text(500, "witness state unavailable");
        };
        let (known_size, known_root) = match state.get(&cp.origin) {
            Some(s) => (s.size, Hash::from_base64(&s.root).unwrap_or(Hash::empty())),
            None => (0, Hash::empty()),
        };
        if req.old != known_size {
            return WitnessResponse { status: 409, body: format!("{known_size}\n").into_bytes(), content_type: "text/x.tlog.size" };
        }
        if req.old == cp.size && known_size > 0 && known_root != cp.root {
            return WitnessResponse::text(409, "same size, different root hash: the log has a split view");
        }
        let consistent = if req.old == 0 {
            req.proof.is_empty()
        } else {
            verify_consistency(req.old, cp.size, &known_root, &cp.root, &req.proof).is_ok()
        };
        if !consistent {
            tracing::warn!(origin = %cp.origin, old = req.old, new = cp.size, "inconsistent checkpoint refused (possible log misbehaviour)");
            return WitnessResponse::text(422, "the consistency proof does not verify");
        }
        let mut next = state.clone();
        next.insert(cp.origin.clone(), LogState { size: cp.size, root: cp.root.to_base64() });
        if let Err(e) = persist(&self.state_path, &next) {
            tracing::error!(error = %e, "witness state not persisted");
            return WitnessResponse::text(500, "could not persist the witness state");
        }
        *state = next;
        match self.key.sign(note.text.as_bytes()) {
            Ok(sig) => WitnessResponse { status: 200, body: sig.line().into_bytes(), content_type: "text/plain; charset=utf-8" },
            Err(_) => WitnessResponse::text(500, "signing failed"),
        }
    }
}

fn persist(path: &Path, state: &BTreeMap<String, LogState>) -> Result<(), TlogError> {
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| TlogError::Malformed { what: "witness state", detail: e.to_string() })?;
    kura_crypto::write_atomic(path, &bytes, 0o600).map_err(|e| TlogError::io(path, e))
}
