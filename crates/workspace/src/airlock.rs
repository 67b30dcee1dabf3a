//! The airlock's take-out (issue 17 §2–§3, issue 22 §3, §8; HIC-IO2, HIC-S14): output tables
//! made by a query in the project's workspace and checked from the data, other files checked
//! by their values, both sealed and hashed when made, reviewed by two people outside the
//! project (`kura_workflows::Outputs`) and released as a package anyone can verify offline.
//!
//! - **A table** is made by the project's **checker**: a confined worker of its own over the
//!   project's extract that also reads the hidden lineage columns
//!   ([`kura_query::hidden`]) and so knows who stands behind every cell, even where the grant
//!   has no person ID. The table is checked cell by cell against the policy
//!   ([`kura_disclosure::table::check_table`]); what would leave is the mitigated table
//!   (suppressed cells blank, rows of too few persons dropped, values rounded as the policy
//!   says), written as CSV.
//! - **Another file** (a figure, a model summary, text) gets value-based checks where it is a
//!   table of numbers (CSV) and always needs both reviewers' confirmation.
//! - Every file is sealed (AES-256-GCM under a key derived from the airlock key, its number and
//!   hash in the associated data) under `airlock/outputs/OUT-…/` and its SHA-256 recorded when
//!   it is made; the release gate opens each again and refuses one whose hash differs.
//! - **Released** is a directory `airlock/releases/OUT-…/` with the files, `manifest.json`
//!   (files and hashes, the policy, verdicts by rule name only — never a person count or a
//!   contribution, issue 22 §8 — and the reviewers' pseudonyms) and `release.tlog-proof`, the
//!   ledger's proof of the release entry whose `object_hash` is the manifest's SHA-256:
//!   `kura proof verify release.tlog-proof --data DIR` checks the manifest against the ledger
//!   and every file against the manifest.

use crate::memory::{MemCell, Memory};
use crate::{Result, WorkspaceError, Workspaces};
use kura_disclosure::LoadedPolicy;
use kura_disclosure::check::Status;
use kura_disclosure::table::{Action, TableVerdict};
use kura_query::lineage::Evidenced;
use kura_workflows::{Caller, NewOutputFile, OutState, OutStep, OutputRequest, ReleaseGate, Viewer, WorkflowError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The `[airlock]` section of `kura.toml`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AirlockConfig {
    /// The disclosure policy: a preset's name (`ndb`, `opensafely`, `acro`, `cms-vrdc`) or the
    /// path of a policy file (relative to the home), checked as `kura policy check` does.
    pub policy: String,
    /// Malware detections in a user's files within 24 hours after which that user's uploads
    /// (bring-in, output files, application attachments) are refused until the window has
    /// passed: abuse is detected and blocked (HIC-S1). 0 turns the block off.
    pub detections_per_day: u32,
}

impl Default for AirlockConfig {
    fn default() -> Self {
        Self { policy: "ndb".into(), detections_per_day: 3 }
    }
}

impl AirlockConfig {
    /// The policy this section names; a file is read relative to `root`.
    pub fn load(&self, root: &Path) -> std::result::Result<LoadedPolicy, String> {
        let name = self.policy.trim();
        if kura_disclosure::policy::preset_names().contains(&name) {
            return LoadedPolicy::preset(name).map_err(|e| e.to_string());
        }
        let path = root.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("[airlock] policy: {}: {e}", path.display()))?;
        LoadedPolicy::parse(&path.display().to_string(), &text).map_err(|e| format!("[airlock] policy: {e}"))
    }
}

/// Largest file one output may hold (bytes).
pub const MAX_OUTPUT_BYTES: u64 = 16 << 20;

/// The first bytes of a sealed output file.
const MAGIC: &[u8; 8] = b"KURAOUT1";

/// A table made for an output: its CSV and its verdict.
#[derive(Debug)]
pub struct CheckedTable {
    /// The mitigated table as it would leave (CSV, UTF-8).
    pub csv: Vec<u8>,
    /// The verdict on each cell.
    pub verdict: TableVerdict,
    /// Whether the evidence came from the data.
    pub lineage: bool,
    /// The persons behind each cell that would leave, for the differencing memory.
    pub sets: Vec<MemCell>,
}

/// The manifest of a released package (what `manifest.json` holds).
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Manifest {
    /// `kura-output-release`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request.
    pub request: String,
    /// The project.
    pub project: String,
    /// Its name.
    pub name: String,
    /// The policy the checks used (`name version (sha256 …)`).
    pub policy: String,
    /// The files.
    pub files: Vec<ManifestFile>,
    /// The reviewers, by pseudonym.
    pub reviewers: Vec<String>,
    /// Whether the author's exception was approved by both reviewers.
    pub exception: bool,
    /// The malware scanner that scanned every file at release (clamd's version line).
    #[serde(default)]
    pub scanner: String,
}

/// One file of a released package.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ManifestFile {
    /// Its name in the package.
    pub name: String,
    /// `table` or `file`.
    pub kind: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// The automatic checks' status of what left.
    pub status: String,
    /// The rules that fired (names only).
    pub rules: Vec<String>,
    /// Cells suppressed (primary and secondary) and rounded.
    pub suppressed: usize,
    /// Cells rounded.
    pub rounded: usize,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn status_str(s: Status) -> &'static str {
    s.as_str()
}

/// Writes `verdict`'s mitigated table as CSV: dimension keys, then the released values;
/// suppressed cells empty, rows whose group holds too few persons left out.
fn mitigated_csv(ev: &Evidenced, verdict: &TableVerdict) -> Vec<u8> {
    fn field(s: &str) -> String {
        // A cell that a spreadsheet would run as a formula is quoted with a leading apostrophe.
        let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() { format!("'{s}") } else { s.to_string() };
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
    }
    let t = &ev.table;
    let mut out = String::new();
    let header: Vec<String> = t.dims.iter().chain(&t.measures).map(|h| field(h)).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for (i, (row, cells)) in t.rows.iter().zip(&verdict.cells).enumerate() {
        if verdict.masked_rows.contains(&i) {
            continue;
        }
        let mut line: Vec<String> = row.keys.iter().map(|k| field(k.as_deref().unwrap_or("(計 total)"))).collect();
        for c in cells {
            line.push(match (c.action, c.released) {
                (Action::Suppressed | Action::SecondarySuppressed, _) | (_, None) => String::new(),
                (_, Some(v)) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
                (_, Some(v)) => format!("{v}"),
            });
        }
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// The rule names that fired on a verdict, and how many cells were suppressed and rounded.
fn rule_summary(verdict: &TableVerdict) -> (Vec<String>, usize, usize) {
    let mut rules: std::collections::BTreeSet<String> = verdict.table_findings.iter().map(|f| f.rule.clone()).collect();
    let (mut suppressed, mut rounded) = (0, 0);
    for c in verdict.cells.iter().flatten() {
        rules.extend(c.findings.iter().map(|f| f.rule.clone()));
        match c.action {
            Action::Suppressed | Action::SecondarySuppressed => suppressed += 1,
            Action::Rounded => rounded += 1,
            Action::Shown => {}
        }
    }
    (rules.into_iter().collect(), suppressed, rounded)
}

impl Workspaces {
    /// The policy the airlock applies (the home's `[airlock] policy`, the NDB rules by default).
    pub fn policy(&self) -> &LoadedPolicy {
        &self.inner.policy
    }

    fn outputs_dir(&self, id: &str) -> PathBuf {
        self.inner.dirs.airlock.join("outputs").join(id)
    }

    fn release_dir(&self, id: &str) -> PathBuf {
        self.inner.dirs.airlock.join("releases").join(id)
    }

    fn file_key(&self, id: &str, n: i64) -> Result<kura_crypto::SecretKey> {
        Ok(self.inner.home.airlock_key()?.derive(format!("kura/output/v1\0{id}\0{n}").as_bytes()))
    }

    fn seal_file(&self, id: &str, n: i64, sha256: &str, content: &[u8]) -> Result<()> {
        let dir = self.outputs_dir(id);
        kura_store::home::mkdir_private(&self.inner.dirs.airlock)?;
        kura_store::home::mkdir_private(&self.inner.dirs.airlock.join("outputs"))?;
        kura_store::home::mkdir_private(&dir)?;
        let aad = format!("kura/output-file/v1\0{id}\0{n}\0{sha256}");
        let sealed = kura_crypto::seal(&self.file_key(id, n)?, aad.as_bytes(), content)?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&sealed);
        let path = dir.join(format!("{n}.sealed"));
        kura_crypto::write_atomic(&path, &bytes, 0o600).map_err(|e| WorkspaceError::io(&path, e))
    }

    /// The content of file `n` of request `id`, if it opens and still has the hash taken when
    /// it was made.
    fn open_file(&self, id: &str, n: i64, sha256: &str) -> std::result::Result<Vec<u8>, String> {
        let path = self.outputs_dir(id).join(format!("{n}.sealed"));
        let bytes = std::fs::read(&path).map_err(|e| format!("{n}: {}", e.kind()))?;
        let sealed = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| format!("{n}: not a sealed output"))?;
        let aad = format!("kura/output-file/v1\0{id}\0{n}\0{sha256}");
        let key = self.file_key(id, n).map_err(|e| e.to_string())?;
        let plain = kura_crypto::open_sealed(&key, aad.as_bytes(), sealed).map_err(|_| format!("{n}: altered or replaced"))?;
        if sha256_hex(&plain) != sha256 {
            return Err(format!("{n}: its SHA-256 differs from the one taken when it was made"));
        }
        Ok(plain.to_vec())
    }

    /// The differencing memory.
    fn memory(&self) -> Result<Memory> {
        Ok(Memory::new(&self.inner.dirs.airlock, &self.inner.home.airlock_key()?))
    }

    /// The airlock's release lock (`airlock/release.lock`), held while the memory takes a new
    /// release or public table: one at a time, in this process and any other over the home.
    async fn release_lock(&self) -> Result<kura_store::home::KeysLock> {
        kura_store::home::mkdir_private(&self.inner.dirs.airlock)?;
        let lock_path = self.inner.dirs.airlock.join("release.lock");
        tokio::task::spawn_blocking(move || kura_store::home::lock_exclusive(&lock_path))
            .await
            .map_err(|e| WorkspaceError::Unusable(e.to_string()))?
            .map_err(Into::into)
    }

    /// The differencing memory, checked to hold every release the store of record knows.
    async fn memory_checked(&self) -> Result<Memory> {
        let released: Vec<String> = self
            .inner
            .research
            .outputs()
            .list(Viewer::Owner)
            .await?
            .into_iter()
            .filter(|r| r.state == OutState::Released)
            .map(|r| r.id)
            .chain(self.inner.research.public_tables().await?.into_iter().map(|n| format!("{}{n}", crate::memory::PUBLIC_PREFIX)))
            .collect();
        let mem = self.memory()?;
        mem.complete(&released)?;
        Ok(mem)
    }

    /// The members of project `project`.
    async fn members(&self, project: &str) -> Result<Vec<String>> {
        Ok(self.inner.research.project(Viewer::Owner, project).await?.members)
    }

    /// The sets the cells of a new table of `project` are compared with: everything released
    /// by the project or by any of its members ([`Memory::relevant`]), and the other tables of
    /// request `request` (`None`: a new request).
    async fn compared_with(&self, project: &str, request: Option<&OutputRequest>) -> Result<crate::memory::Recalled> {
        let members = self.members(project).await?;
        let mem = self.memory_checked().await?;
        let mut with = mem.recall(project, &members)?;
        if let Some(req) = request {
            for f in req.files.iter().filter(|f| f.kind == "table") {
                let pending = mem.pending(&self.outputs_dir(&req.id), &req.id, f.n)?;
                with.sets.extend(pending.into_iter().map(|c| (format!("{} (この依頼 this request)", req.id), c)));
            }
        }
        Ok(with)
    }

    /// Runs `sql` in project `project`'s checker for `caller`, an active member, and checks the
    /// table it makes against the policy and the differencing memory (`request`: the request
    /// it is added to). Recorded in the ledger by the script's keyed digest.
    pub async fn check_query(
        &self,
        caller: &Caller,
        project: &str,
        sql: &str,
        file: &str,
        request: Option<&OutputRequest>,
    ) -> Result<CheckedTable> {
        let ev = self.evidence(caller, project, sql).await?;
        let mut verdict = kura_disclosure::table::check_table(&self.inner.policy, &ev.table)
            .map_err(|e| WorkspaceError::Unusable(format!("開示チェック / disclosure check: {e}")))?;
        let sets = crate::memory::leaving_sets(file, &ev.table, &verdict, &ev.sets);
        let threshold = self.inner.policy.policy.persons.threshold;
        let with = self.compared_with(project, request).await?;
        let hits = crate::memory::compare(&sets, &with.sets, threshold);
        crate::memory::apply(&mut verdict, &hits, threshold);
        crate::memory::apply_unknown(&mut verdict, &with);
        // Without lineage no set leaves, so this covers a lost lineage too.
        if crate::memory::table_unknown(Some(&verdict), &sets) {
            not_compared(&mut verdict.table_findings, &with);
        }
        let csv = mitigated_csv(&ev, &verdict);
        Ok(CheckedTable { csv, verdict, lineage: ev.lineage, sets })
    }

    /// Starts an output request in `project` for `caller` with one table made by `sql` (the
    /// contract's `kura output new`). Returns the request.
    pub async fn output_new(&self, caller: &Caller, project: &str, name: &str, sql: &str, note: &str) -> Result<OutputRequest> {
        let file = format!("{}.csv", file_stem(name));
        let checked = self.check_query(caller, project, sql, &file, None).await?;
        let outputs = self.inner.research.outputs();
        let req = outputs.create(caller, project, name, &self.inner.policy.identity()).await?;
        self.add_checked(caller, &req.id, &file, note, Some(sql), checked).await
    }

    /// Adds a table made by `sql` to request `id` (its author).
    pub async fn output_add_query(&self, caller: &Caller, id: &str, file_name: &str, sql: &str, note: &str) -> Result<OutputRequest> {
        let req = self.inner.research.outputs().request(Viewer::User(caller.login()), id).await?;
        let checked = self.check_query(caller, &req.project, sql, file_name, Some(&req)).await?;
        self.add_checked(caller, id, file_name, note, Some(sql), checked).await
    }

    async fn add_checked(
        &self,
        caller: &Caller,
        id: &str,
        file_name: &str,
        note: &str,
        sql: Option<&str>,
        checked: CheckedTable,
    ) -> Result<OutputRequest> {
        let sha = sha256_hex(&checked.csv);
        let sets = checked.sets;
        let verdict = serde_json::to_string(&checked.verdict).map_err(|e| WorkspaceError::Unusable(e.to_string()))?;
        let file = NewOutputFile {
            kind: "table".into(),
            name: file_name.into(),
            note: note.into(),
            bytes: checked.csv.len() as u64,
            sha256: sha.clone(),
            sql_sha256: sql.map(|s| sha256_hex(s.as_bytes())),
            status: status_str(checked.verdict.released_status).into(),
            verdict,
        };
        let (req, n) = self.add_sealed(caller, id, file, &checked.csv).await?;
        self.memory()?.save_pending(&self.outputs_dir(id), id, n, &sets)?;
        Ok(req)
    }

    /// Adds a file no Kura query produced to request `id` (its author): hashed now, checked on
    /// its values where it is a CSV table, and always needing both reviewers' confirmation.
    pub async fn output_add_file(&self, caller: &Caller, id: &str, file_name: &str, content: &[u8], note: &str) -> Result<OutputRequest> {
        if content.len() as u64 > MAX_OUTPUT_BYTES {
            return Err(WorkspaceError::Unusable(format!(
                "出力ファイルは {} MiB までです / an output file is at most {} MiB",
                MAX_OUTPUT_BYTES >> 20,
                MAX_OUTPUT_BYTES >> 20
            )));
        }
        // The name and note as they would be recorded, before a scan could record them.
        kura_workflows::check_upload(file_name, note)?;
        // Only the request's author scans into it: nobody else records detections under it.
        let req = self.inner.research.outputs().request(Viewer::User(caller.login()), id).await?;
        if req.author != caller.login() {
            return Err(WorkflowError::OutputNotPermitted {
                id: id.into(),
                step: OutStep::Add,
                why_ja: format!("依頼者は '{}' です", req.author),
                why_en: format!("the request's author is '{}'", req.author),
            }
            .into());
        }
        self.check_not_blocked(caller, &req.project, "output.add", &sha256_hex(content)).await?;
        // Scanned on the way out when it is added, and again at release (issue 17 §3–§4); a
        // scanner that cannot scan refuses the file, and the refusal is recorded.
        let scanned = match self.inner.scanner.scan(content).await {
            Ok(s) => s,
            Err(e) => {
                self.inner
                    .research
                    .record_workspace(caller, &req.project, "output.add", &sha256_hex(content), "refused", &e.to_string())
                    .await?;
                return Err(e.into());
            }
        };
        if let kura_scan::Verdict::Found { signature } = &scanned.verdict {
            let sha = sha256_hex(content);
            let found =
                kura_workflows::Found { direction: "out", object: id, file_name, sha256: &sha, engine: &scanned.engine.version, signature };
            self.inner.research.record_detection(caller, &found).await?;
            return Err(WorkspaceError::Malware { file: file_name.into(), signature: signature.clone() });
        }
        let mut verdict = crate::values::check_file(&self.inner.policy, file_name, content);
        // Its persons are not known: what it adds to earlier releases is the reviewers' to see.
        let recalled = self.compared_with(&req.project, None).await?;
        verdict.memory_through = recalled.newest;
        not_compared(&mut verdict.findings, &recalled);
        let status = if verdict.status == Status::Fail { "fail" } else { "review" };
        let file = NewOutputFile {
            kind: "file".into(),
            name: file_name.into(),
            note: note.into(),
            bytes: content.len() as u64,
            sha256: sha256_hex(content),
            sql_sha256: None,
            status: status.into(),
            verdict: serde_json::to_string(&verdict).map_err(|e| WorkspaceError::Unusable(e.to_string()))?,
        };
        Ok(self.add_sealed(caller, id, file, content).await?.0)
    }

    /// Records the file (its hash taken now) and seals its content. The number the file gets
    /// is known only once it is recorded; a content sealed under the wrong number would not
    /// open at release, so the record comes first and the seal follows at once.
    async fn add_sealed(&self, caller: &Caller, id: &str, file: NewOutputFile, content: &[u8]) -> Result<(OutputRequest, i64)> {
        let sha = file.sha256.clone();
        let (req, n) = self.inner.research.outputs().add(caller, id, &file).await?;
        self.seal_file(id, n, &sha, content)?;
        Ok((req, n))
    }

    /// Releases request `id` for `caller`, a custodian outside the project, through the gate
    /// (under the write lock): each file opened again and checked against its hash, the
    /// package written; then the release entry's `.tlog-proof` beside it.
    pub async fn output_release(&self, caller: &Caller, id: &str) -> Result<(OutputRequest, std::result::Result<PathBuf, String>)> {
        // The files are scanned before the release's transaction opens (a slow scanner holds no
        // lock), for a custodian outside the project only (anyone else is refused by the step).
        let mut prescan = None;
        let found = std::sync::Mutex::new(None);
        if let Ok(req) = self.inner.research.outputs().request(Viewer::User(caller.login()), id).await
            && req.state == OutState::Approved
            && self.inner.research.custodian_outside(caller.login(), &req.project).await?
        {
            prescan = Some(Gate::scan(self, &req, &found).await);
        }
        // The reviewers' pseudonyms for the manifest, as the project's members see them (keyed;
        // fetched before the release's transaction, which holds the write lock).
        let reviewers = match self.inner.research.outputs().request(Viewer::Owner, id).await {
            Ok(req) => {
                let logins: Vec<String> =
                    req.reviews.iter().filter(|r| r.submission == req.submission).map(|r| r.reviewer.clone()).collect();
                self.inner.research.outputs().reviewer_pseudonyms(id, &logins).await?
            }
            Err(_) => Vec::new(),
        };
        let gate = Gate { ws: self, prescan, found, reviewers };
        let released = self.inner.research.outputs().release(caller, id, &gate).await;
        // A detection stops the release (refused and recorded with it); the operators see it
        // among the detections too, recorded once the release's transaction has ended.
        let found = gate.found.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(d) = found {
            let found = kura_workflows::Found {
                direction: "out",
                object: id,
                file_name: &d.file,
                sha256: &d.sha256,
                engine: &d.engine,
                signature: &d.signature,
            };
            self.inner.research.record_detection(caller, &found).await?;
        }
        let req = released?;
        let index = self.inner.research.outputs().ledger_index(id, OutStep::Release).await?;
        let proof = match index.and_then(|i| u64::try_from(i).ok()) {
            Some(i) => self.prove_entry(i, &self.release_dir(id).join("release.tlog-proof")).await,
            None => Err("no release entry".into()),
        };
        Ok((req, proof))
    }

    /// Copies the released package of request `id` into `out` for `caller`, a member of its
    /// project: the files, `manifest.json` and `release.tlog-proof`. Returns the paths written.
    pub async fn output_download(&self, caller: &Caller, id: &str, out: &Path) -> Result<Vec<PathBuf>> {
        let req = self.released_to_member(caller, id).await?;
        let dir = self.release_dir(id);
        std::fs::create_dir_all(out).map_err(|e| WorkspaceError::io(out, e))?;
        let mut written = Vec::new();
        let mut names: Vec<String> = req.files.iter().map(|f| f.name.clone()).collect();
        names.push("manifest.json".into());
        if dir.join("release.tlog-proof").is_file() {
            names.push("release.tlog-proof".into());
        }
        for name in names {
            let from = dir.join(&name);
            let to = out.join(&name);
            std::fs::copy(&from, &to).map_err(|e| WorkspaceError::io(&from, e))?;
            written.push(to);
        }
        let package = req.package_sha256.clone().unwrap_or_default();
        self.inner.research.record_workspace(caller, &req.project, "output.download", &package, "ok", id).await?;
        Ok(written)
    }
}

impl Workspaces {
    /// Request `id`, released, for `caller`, a member of its project (only they take a
    /// package); anyone else does not learn that it exists.
    async fn released_to_member(&self, caller: &Caller, id: &str) -> Result<OutputRequest> {
        let req = self.inner.research.outputs().request(Viewer::User(caller.login()), id).await?;
        let project = self.inner.research.project(Viewer::Owner, &req.project).await?;
        if !project.members.iter().any(|m| m == caller.login()) {
            return Err(WorkflowError::NotFound { what: "出力依頼", what_en: "output request", cmd: "output", id: id.into() }.into());
        }
        if req.state != OutState::Released {
            return Err(WorkflowError::OutputWrongState { id: id.into(), from: req.state, step: OutStep::Release }.into());
        }
        Ok(req)
    }

    /// One file of the released package of request `id` for `caller`, a member of its project:
    /// one of its files, `manifest.json` or `release.tlog-proof` (the API's download).
    pub async fn output_package_file(&self, caller: &Caller, id: &str, name: &str) -> Result<Vec<u8>> {
        let req = self.released_to_member(caller, id).await?;
        // Only the package's own names: never a path.
        let known = req.files.iter().any(|f| f.name == name) || name == "manifest.json" || name == "release.tlog-proof";
        if !known {
            return Err(WorkflowError::Invalid {
                field: "file",
                detail: format!("パッケージに '{}' はありません / the package holds no '{}'", name.escape_debug(), name.escape_debug()),
            }
            .into());
        }
        let path = self.release_dir(id).join(name);
        let content = std::fs::read(&path).map_err(|e| WorkspaceError::io(&path, e))?;
        let package = req.package_sha256.clone().unwrap_or_default();
        self.inner.research.record_workspace(caller, &req.project, "output.download", &package, "ok", &format!("{id} {name}")).await?;
        Ok(content)
    }
}

impl Workspaces {
    /// Publishes a table the platform makes public itself (issue 22 §2: counts the platform
    /// publishes count as released), as the home's owner (`caller`: the console): `sql` runs in
    /// project `project`'s checker over its extract — every person of the dataset; the project
    /// only lends its checker, and its grant must hold the table's columns — and every cell's
    /// persons, with each measure's total, are remembered as `PUB-name`, compared with every new
    /// output of every project from then on. Publishing a name again replaces it. Recorded in
    /// the ledger. Returns the number of sets remembered.
    pub async fn publish(&self, caller: &Caller, project: &str, name: &str, sql: &str) -> Result<usize> {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(WorkflowError::Invalid {
                field: "name",
                detail: "公表表の名前は英小文字・数字・_・- で 40 文字まで / a public table's name is up to 40 lower-case letters, digits, _ and -".into(),
            }
            .into());
        }
        let p = self.inner.research.project(Viewer::Owner, project).await?;
        let ev = self.checker_evidence(&p, sql).await?;
        if !ev.lineage {
            return Err(WorkspaceError::Unusable(
                "公表表の人を追えません（集計でない、または追えない形の問い合わせ）/ the public table's persons cannot be followed: write it as one aggregate over the data".into(),
            ));
        }
        let cells = crate::memory::public_sets(&format!("{name}.csv"), &ev.table, &ev.sets);
        let n = cells.len();
        // Under the release lock, as a release: public tables take their number in the
        // memory's order too.
        let lock = self.release_lock().await?;
        self.memory()?.remember_public(name, cells)?;
        drop(lock);
        let hash = self.script_digest(sql)?;
        let detail = format!("{}{name}: {n} sets", crate::memory::PUBLIC_PREFIX);
        self.inner.research.record_public_table(caller, project, name, &hash, &detail).await?;
        Ok(n)
    }

    /// File `n` of request `id` for `caller`, anyone the request is visible to (its project's
    /// members; reviewers and custodians once submitted — they review what they see): the
    /// content, opened and checked against the hash taken when it was made. Recorded in the
    /// ledger.
    pub async fn output_file(&self, caller: &Caller, id: &str, n: i64) -> Result<(OutputRequest, Vec<u8>)> {
        let req = self.inner.research.outputs().request(Viewer::User(caller.login()), id).await?;
        let Some(file) = req.files.iter().find(|f| f.n == n) else {
            return Err(WorkflowError::Invalid {
                field: "file",
                detail: format!("依頼 {id} にファイル {n} はありません / request {id} has no file {n}"),
            }
            .into());
        };
        let content = self.open_file(id, n, &file.sha256).map_err(WorkspaceError::Unusable)?;
        let sha = file.sha256.clone();
        self.inner.research.record_workspace(caller, &req.project, "output.view", &sha, "ok", &format!("{id} {n}")).await?;
        Ok((req, content))
    }
}

/// A table file as reviewers and its author see it: each released value beside its cell's
/// automatic verdict (rows left out for too few persons are listed as such).
#[derive(Debug, Clone)]
pub struct TableView {
    /// The columns: dimensions first.
    pub header: Vec<String>,
    /// How many of them are dimensions.
    pub dims: usize,
    /// The rows in the table's order.
    pub rows: Vec<ViewRow>,
    /// The verdict.
    pub verdict: TableVerdict,
}

/// One row of a [`TableView`].
#[derive(Debug, Clone)]
pub struct ViewRow {
    /// The dimension keys (`None`: the row is left out of the release).
    pub keys: Option<Vec<String>>,
    /// Each measure's released text (empty: suppressed) and verdict.
    pub cells: Vec<(String, kura_disclosure::table::CellVerdict)>,
}

/// Joins a table file's CSV (as [`mitigated_csv`] writes it) with its verdict; `None` where
/// they do not fit each other.
pub fn table_view(csv: &[u8], verdict: &str) -> Option<TableView> {
    let verdict: TableVerdict = serde_json::from_str(verdict).ok()?;
    let text = std::str::from_utf8(csv).ok()?;
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let header = crate::bringin::csv_line(lines.next()?).ok()?;
    let measures = verdict.cells.first().map_or(0, Vec::len);
    let dims = header.len().checked_sub(measures)?;
    let mut rows = Vec::new();
    for (i, cells) in verdict.cells.iter().enumerate() {
        if verdict.masked_rows.contains(&i) {
            rows.push(ViewRow { keys: None, cells: cells.iter().map(|c| (String::new(), c.clone())).collect() });
            continue;
        }
        let fields = crate::bringin::csv_line(lines.next()?).ok()?;
        if fields.len() != header.len() {
            return None;
        }
        let (keys, values) = fields.split_at(dims);
        rows.push(ViewRow { keys: Some(keys.to_vec()), cells: values.iter().cloned().zip(cells.iter().cloned()).collect() });
    }
    lines.next().is_none().then_some(TableView { header, dims, rows, verdict })
}

/// A request's name as a file name stem: letters, digits, `-` and `_` kept, the rest `_`.
fn file_stem(name: &str) -> String {
    let s: String = name.chars().take(60).map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() { "output".into() } else { s }
}

/// The release gate over this home's files (see the module documentation).
struct Gate<'a> {
    ws: &'a Workspaces,
    /// The files' scan, made before the release's transaction: the engine, or why the files
    /// cannot leave.
    prescan: Option<std::result::Result<String, (String, String)>>,
    /// Malware found by the gate's scan, recorded after the release's transaction.
    found: std::sync::Mutex<Option<Detected>>,
    /// The reviewers of the current submission by pseudonym (keyed, as the members see them).
    reviewers: Vec<String>,
}

/// A detection at the gate.
struct Detected {
    file: String,
    sha256: String,
    engine: String,
    signature: String,
}

impl ReleaseGate for Gate<'_> {
    async fn check(&self, req: &OutputRequest) -> std::result::Result<String, (String, String)> {
        let ws = self.ws;
        let fail = |e: WorkspaceError| (format!("持ち出しの確認ができません（{e}）"), format!("the release cannot be checked: {e}"));
        // One release at a time, in this process and any other over the same home (issue 22 §4).
        let lock = ws.release_lock().await.map_err(fail)?;
        let engine = match &self.prescan {
            Some(scanned) => scanned.clone()?,
            None => Gate::scan(ws, req, &self.found).await?,
        };
        let members = ws.members(&req.project).await.map_err(fail)?;
        ws.memory_checked().await.map_err(fail)?;
        let (leaving, unknown, newest) = self.differencing(req, &members).map_err(|e| match e {
            Blocked::Check(e) => fail(e),
            Blocked::Found(ja, en) => (ja, en),
        })?;
        let tmp = ws.inner.dirs.airlock.join("releases").join(format!("{}.partial", req.id));
        let made = self.package(req, &tmp, &engine);
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        let package = made?;
        // Remembered before the lock is let go: the next release is compared with this one.
        // (Should the release's own commit fail after this, the memory is only stricter.)
        ws.memory().and_then(|m| m.remember(&req.id, &req.project, &members, leaving, unknown, newest + 1)).map_err(fail)?;
        drop(lock);
        Ok(package)
    }
}

/// A finding (review) on a table or file whose persons are not known: it was not compared with
/// the relevant releases, which the reviewers then compare by hand (named, at most ten).
fn not_compared(findings: &mut Vec<kura_disclosure::check::Finding>, recalled: &crate::memory::Recalled) {
    if recalled.releases.is_empty() {
        return;
    }
    let mut names: Vec<&str> = recalled.releases.iter().take(10).map(|(r, _)| r.as_str()).collect();
    let more = recalled.releases.len().saturating_sub(names.len());
    let rest = format!("… (+{more})");
    if more > 0 {
        names.push(&rest);
    }
    let list = names.join(", ");
    findings.push(kura_disclosure::check::Finding {
        rule: kura_disclosure::check::rule::DIFFERENCING_UNKNOWN.to_owned(),
        status: Status::Review,
        message: format!(
            "人を特定できないため {list} と自動では比較できません。審査者が確かめます / its persons are not known, so it was not compared with {list}: reviewers compare by hand"
        ),
    });
}

/// Why the gate's differencing check stops a release.
enum Blocked {
    Check(WorkspaceError),
    Found(String, String),
}

impl From<WorkspaceError> for Blocked {
    fn from(e: WorkspaceError) -> Self {
        Blocked::Check(e)
    }
}

impl Gate<'_> {
    /// Scans every file of the request as it is now, with the scanner's signatures of this
    /// moment (issue 17 §3): a scanner that cannot scan, and malware, stop the release.
    /// Returns the engine's version line.
    async fn scan(
        ws: &Workspaces,
        req: &OutputRequest,
        found: &std::sync::Mutex<Option<Detected>>,
    ) -> std::result::Result<String, (String, String)> {
        let mut engine = String::new();
        for f in &req.files {
            let content = ws.open_file(&req.id, f.n, &f.sha256).map_err(|why| {
                (
                    format!("ファイル {} は作成時のハッシュと一致しません（{why}）", f.name),
                    format!("file {} is not the one made: {why}", f.name),
                )
            })?;
            let scanned = ws.inner.scanner.scan(&content).await.map_err(|e| {
                (format!("ウイルス検査ができないため持ち出せません（{e}）"), format!("the files cannot be scanned, so nothing leaves: {e}"))
            })?;
            if let kura_scan::Verdict::Found { signature } = scanned.verdict {
                let why = (
                    format!("ファイル {} にマルウェアを検出しました（{signature}）", f.name),
                    format!("malware found in file {} ({signature})", f.name),
                );
                *found.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Detected { file: f.name.clone(), sha256: f.sha256.clone(), engine: scanned.engine.version, signature });
                return Err(why);
            }
            engine = scanned.engine.version;
        }
        Ok(engine)
    }

    /// Compares every leaving cell of the request's tables with everything released up to now
    /// by its project or its members (issue 22 §4): a combination that was not there when the
    /// reviewers saw the request (an output released since) stops it, and so does a release
    /// since its check where the persons of either side are not known. Returns the sets to
    /// remember, the names of the files whose persons are not known, and the number of the
    /// memory's newest release.
    fn differencing(&self, req: &OutputRequest, members: &[String]) -> std::result::Result<(Vec<MemCell>, Vec<String>, u64), Blocked> {
        let ws = self.ws;
        let mem = ws.memory()?;
        let recalled = mem.recall(&req.project, members)?;
        let threshold = ws.inner.policy.policy.persons.threshold;
        let mut leaving = Vec::new();
        let mut found = Vec::new();
        // Released since this request was checked, without known persons on one side or the
        // other: its reviewers did not see them together.
        let mut unseen = Vec::new();
        let mut unknown = Vec::new();
        // The memory as the request's files were checked against it (the oldest of them).
        let mut through = u64::MAX;
        for f in &req.files {
            if f.kind != "table" {
                unknown.push(f.name.clone());
                let v: Option<crate::values::FileVerdict> = serde_json::from_str(&f.verdict).ok();
                through = through.min(v.map_or(0, |v| v.memory_through));
                continue;
            }
            let pending = mem.pending(&ws.outputs_dir(&req.id), &req.id, f.n)?;
            let verdict: Option<TableVerdict> = serde_json::from_str(&f.verdict).ok();
            through = through.min(verdict.as_ref().map_or(0, |v| v.memory_through));
            if crate::memory::table_unknown(verdict.as_ref(), &pending) {
                unknown.push(f.name.clone());
            }
            for u in &recalled.unknown {
                if !verdict.as_ref().is_some_and(|v| crate::memory::told_of_unknown(v, u)) {
                    unseen.push(u.clone());
                }
            }
            for hit in crate::memory::compare(&pending, &recalled.sets, threshold) {
                // Seen already at the check (the cell fails, and its exception was approved).
                let seen = verdict.as_ref().and_then(|v| v.cells.get(hit.at.0)?.get(hit.at.1)).is_some_and(|c| {
                    c.findings.iter().any(|x| x.rule == kura_disclosure::check::rule::DIFFERENCING && x.message.contains(&hit.with))
                });
                if !seen {
                    let label = pending.iter().find(|c| c.at == Some(hit.at)).map(|c| c.label.clone()).unwrap_or_default();
                    found.push(format!("{} «{label}» + {}", f.name, hit.with));
                }
            }
            leaving.extend(pending);
        }
        if !unknown.is_empty() {
            unseen.extend(recalled.releases.iter().filter(|(_, seq)| *seq > through).map(|(r, _)| r.clone()));
        }
        unseen.sort();
        unseen.dedup();
        if !found.is_empty() {
            let list = found.join("; ");
            return Err(Blocked::Found(
                format!("既に持ち出された出力と合わせると {threshold} 人未満の人が特定されます（{list}）。依頼を作り直してください"),
                format!(
                    "together with outputs already released it isolates fewer than {threshold} persons ({list}): make the request again, so that its checks and reviewers see it"
                ),
            ));
        }
        if !unseen.is_empty() {
            let list = unseen.join(", ");
            return Err(Blocked::Found(
                format!(
                    "この依頼の検査の後に {list} が持ち出されました。どちらかの人を特定できないため自動では比較できません。依頼を作り直してください"
                ),
                format!(
                    "{list} was released after this request was checked, and the persons of one of them are not known, so they were not compared: make the request again, so that its reviewers see both"
                ),
            ));
        }
        Ok((leaving, unknown, recalled.newest))
    }

    /// Checks every file and writes the package into `tmp`, then moves it in place.
    fn package(&self, req: &OutputRequest, tmp: &Path, scanner: &str) -> std::result::Result<String, (String, String)> {
        let ws = self.ws;
        let blocked = |ja: String, en: String| (ja, en);
        let dir = ws.release_dir(&req.id);
        let _ = std::fs::remove_dir_all(tmp);
        let _ = std::fs::remove_dir_all(&dir);
        let made = kura_store::home::mkdir_private(&ws.inner.dirs.airlock)
            .and_then(|()| kura_store::home::mkdir_private(&ws.inner.dirs.airlock.join("releases")))
            .and_then(|()| kura_store::home::mkdir_private(tmp));
        made.map_err(|e| blocked(format!("パッケージを作れません（{e}）"), format!("the package cannot be written: {e}")))?;
        let mut files = Vec::new();
        for f in &req.files {
            // A file changed after its hash was taken is refused (issue 22 §4).
            let content = ws.open_file(&req.id, f.n, &f.sha256).map_err(|why| {
                blocked(
                    format!("ファイル {} は作成時のハッシュと一致しません（{why}）", f.name),
                    format!("file {} is not the one made: {why}", f.name),
                )
            })?;
            let path = tmp.join(&f.name);
            kura_crypto::write_atomic(&path, &content, 0o644)
                .map_err(|e| blocked(format!("{}: {e}", f.name), format!("{}: {e}", f.name)))?;
            let verdict: Option<TableVerdict> = serde_json::from_str(&f.verdict).ok();
            let (rules, suppressed, rounded) = match &verdict {
                Some(v) => rule_summary(v),
                None => (serde_json::from_str::<crate::values::FileVerdict>(&f.verdict).map(|v| v.rules()).unwrap_or_default(), 0, 0),
            };
            files.push(ManifestFile {
                name: f.name.clone(),
                kind: f.kind.clone(),
                bytes: content.len() as u64,
                sha256: f.sha256.clone(),
                status: f.status.clone(),
                rules,
                suppressed,
                rounded,
            });
        }
        let reviewers = self.reviewers.clone();
        let manifest = Manifest {
            kind: "kura-output-release".into(),
            request: req.id.clone(),
            project: req.project.clone(),
            name: req.name.clone(),
            policy: req.policy.clone(),
            files,
            reviewers,
            exception: req.exception.is_some(),
            scanner: scanner.into(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| blocked(e.to_string(), e.to_string()))?;
        kura_crypto::write_atomic(&tmp.join("manifest.json"), &json, 0o644).map_err(|e| blocked(e.to_string(), e.to_string()))?;
        std::fs::rename(tmp, &dir).map_err(|e| blocked(e.to_string(), e.to_string()))?;
        Ok(sha256_hex(&json))
    }
}
