//! The airlock's bring-in (issue 17 §4; HIC-IO1, HIC-S1, HIC-P4): files a researcher brings
//! into their project's workspace — analysis code, SQL files, code masters, small reference
//! tables — scanned, approved by a custodian outside the project, then present in the
//! workspace, read-only.
//!
//! - **Upload**: an active member uploads a file up to the policy's `bringin_max_bytes`. It is
//!   scanned at once ([`kura_scan`]); a scanner that cannot scan refuses the upload (nothing is
//!   recorded but the refusal); malware is recorded as an `infected` request, a detection the
//!   operators see and a ledger entry — the file is not kept. A clean file is sealed
//!   (AES-256-GCM, under a key derived from the project's workspace key, so that the end of use
//!   destroys it with the workspace) under `airlock/inbox/PRJ-…/`, and waits for a custodian.
//!   A CSV file is a **master**: it must already read as a table (a header of lower-case names,
//!   UTF-8), so the custodian never approves what cannot be loaded.
//! - **Approval** scans the file again with the signatures of that moment, then places it: a
//!   master becomes a saved table of the workspace named by the file's stem (queryable at once,
//!   like a table the researcher saved, never replacing one), any other file is sealed under
//!   the workspace key in the workspace's `bringin/` directory, where the project's members can
//!   read it back ([`Workspaces::bringin_content`]) but nobody can change it.

use crate::{Result, WorkspaceError, Workspaces, workspace_key_id};
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use kura_crypto::{Purpose, SecretKey};
use kura_workflows::{Bringin, Caller, Found, InState, InStep, NewBringin, Viewer, WorkflowError};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// The first bytes of a sealed bring-in file.
const MAGIC: &[u8; 8] = b"KURAIN01";
/// Most columns a master may have.
const MAX_COLUMNS: usize = 200;

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn invalid(field: &'static str, detail: String) -> WorkspaceError {
    WorkflowError::Invalid { field, detail }.into()
}

/// Whether `name` is a master (a CSV file, which becomes a table).
fn is_master(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("csv"))
}

/// The table a master becomes: its file name's stem, which must be a saved-table name.
fn master_table(name: &str) -> Result<String> {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    kura_query::workspace::check_table_name(stem, &Default::default()).map_err(|e| invalid("file", e.to_string()))?;
    Ok(stem.to_string())
}

/// One CSV field from `line` starting at `at`: quoted (with `""` for a quote) or plain.
/// Returns the field and where the next starts (`None` at the end of the line).
fn csv_field(line: &str, at: usize) -> std::result::Result<(String, Option<usize>), &'static str> {
    let rest = line.get(at..).ok_or("a broken line")?;
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                out.push(c);
                continue;
            }
            if chars.peek().map(|(_, n)| *n) == Some('"') {
                out.push('"');
                chars.next();
                continue;
            }
            // The closing quote: a comma or the end of the line must follow.
            let after = at + 1 + i + 1;
            return match line.get(after..).map(|rest| rest.chars().next()) {
                Some(None) => Ok((out, None)),
                Some(Some(',')) => Ok((out, Some(after + 1))),
                _ => Err("text after a closing quote"),
            };
        }
        Err("a quote that is not closed (a master's fields stay on one line)")
    } else {
        match rest.find(',') {
            Some(i) => {
                let field = rest.get(..i).ok_or("a broken line")?;
                if field.contains('"') {
                    return Err("a quote inside an unquoted field");
                }
                Ok((field.to_string(), Some(at + i + 1)))
            }
            None if rest.contains('"') => Err("a quote inside an unquoted field"),
            None => Ok((rest.to_string(), None)),
        }
    }
}

pub(crate) fn csv_line(line: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut at = Some(0);
    while let Some(i) = at {
        let (f, next) = csv_field(line, i)?;
        fields.push(f);
        at = next;
    }
    Ok(fields)
}

/// Reads a master: UTF-8, a header of saved-table-style column names, every row as wide as
/// the header. Every column is text (codes keep their leading zeros). Errors name the line
/// and, where it is one, the column.
fn read_master(name: &str, content: &[u8]) -> Result<(SchemaRef, RecordBatch)> {
    let text = std::str::from_utf8(content).map_err(|e| {
        let line = content.get(..e.valid_up_to()).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()) + 1;
        invalid(
            "file",
            format!(
                "{name}:{line}: UTF-8 ではありません（マスターは UTF-8 の CSV にしてください）/ not UTF-8: save the master as UTF-8 CSV"
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).enumerate();
    let (_, header) = lines.next().ok_or_else(|| invalid("file", format!("{name}: 空のファイルです / the file is empty")))?;
    let columns = csv_line(header).map_err(|e| invalid("file", format!("{name}:1: {e}")))?;
    if columns.is_empty() || columns.len() > MAX_COLUMNS {
        return Err(invalid("file", format!("{name}:1: 列は 1〜{MAX_COLUMNS} 個にしてください / a master has 1 to {MAX_COLUMNS} columns")));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in columns.iter().enumerate() {
        if kura_query::workspace::check_table_name(c, &Default::default()).is_err() || !seen.insert(c.clone()) {
            return Err(invalid(
                "file",
                format!(
                    "{name}:1 (列 {} / column {}): 列名 '{}' は使えません。英小文字で始まる英小文字・数字・_ の重複しない名前にしてください / the column name '{}' cannot be used: give each column a distinct name of lower-case letters, digits and _, starting with a letter",
                    i + 1,
                    i + 1,
                    c.escape_debug(),
                    c.escape_debug()
                ),
            ));
        }
    }
    let mut values: Vec<Vec<String>> = vec![Vec::new(); columns.len()];
    for (i, line) in lines {
        if line.is_empty() {
            continue;
        }
        let fields = csv_line(line).map_err(|e| invalid("file", format!("{name}:{}: {e}", i + 1)))?;
        if fields.len() != columns.len() {
            return Err(invalid(
                "file",
                format!(
                    "{name}:{}: {} 個の値があります（見出しは {} 列）/ {} fields where the header has {} columns",
                    i + 1,
                    fields.len(),
                    columns.len(),
                    fields.len(),
                    columns.len()
                ),
            ));
        }
        for (col, v) in values.iter_mut().zip(fields) {
            col.push(v);
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(columns.iter().map(|c| Field::new(c, DataType::Utf8, false)).collect::<Vec<_>>()));
    let arrays: Vec<ArrayRef> = values.into_iter().map(|v| Arc::new(StringArray::from(v)) as ArrayRef).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| invalid("file", format!("{name}: {e}")))?;
    Ok((schema, batch))
}

impl Workspaces {
    /// The workspace key of `project`.
    fn workspace_key(&self, project: &str) -> Result<SecretKey> {
        let (master, keyring, _) = self.inner.home.snapshot()?;
        Ok(keyring.unwrap_as(&master, &kura_crypto::KeyId::new(workspace_key_id(project))?, Purpose::Workspace)?)
    }

    fn inbox_dir(&self, project: &str) -> PathBuf {
        self.inner.dirs.airlock.join("inbox").join(project)
    }

    fn inbox_path(&self, project: &str, id: &str) -> PathBuf {
        self.inbox_dir(project).join(format!("{id}.sealed"))
    }

    /// Removes request `req`'s waiting file once it was placed, rejected or withdrawn: nothing
    /// stays in the inbox longer than it waits.
    fn clear_inbox(&self, req: &Bringin) {
        let _ = std::fs::remove_file(self.inbox_path(&req.project, &req.id));
    }

    fn seal_with(key: &SecretKey, aad: &str, content: &[u8], path: &std::path::Path) -> Result<()> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&kura_crypto::seal(key, aad.as_bytes(), content)?);
        kura_crypto::write_atomic(path, &bytes, 0o600).map_err(|e| WorkspaceError::io(path, e))
    }

    fn open_with(key: &SecretKey, aad: &str, path: &std::path::Path, sha256: &str) -> std::result::Result<Vec<u8>, String> {
        let bytes = std::fs::read(path).map_err(|e| e.kind().to_string())?;
        let sealed = bytes.strip_prefix(MAGIC.as_slice()).ok_or("not a sealed bring-in file")?;
        let plain = kura_crypto::open_sealed(key, aad.as_bytes(), sealed).map_err(|_| "altered or replaced".to_string())?;
        if sha256_hex(&plain) != sha256 {
            return Err("its SHA-256 differs from the one recorded at upload".into());
        }
        Ok(plain.to_vec())
    }

    fn inbox_key(&self, project: &str) -> Result<SecretKey> {
        Ok(self.workspace_key(project)?.derive(b"kura/bringin-inbox/v1"))
    }

    /// `caller`, the applicant, attaches `content` as `name` to application `id` (the protocol
    /// PDF, issue 16 §1): scanned first like every file that comes in (HIC-S1); malware is
    /// refused and recorded ([`WorkspaceError::Malware`]), a scanner that cannot scan refuses
    /// the attachment. The application's own rules (who, when, PDF, size) are the domain's.
    pub async fn application_attach(&self, caller: &Caller, id: &str, name: &str, content: &[u8]) -> Result<kura_workflows::Application> {
        let research = &self.inner.research;
        // Only the applicant's file for an application they may still change is scanned:
        // nobody else makes scans (or learns from them), and nothing is scanned that the step
        // would refuse anyway (its name, size and PDF form checked first, so that every scan
        // can be recorded).
        let app = research.application(Viewer::User(caller.login()), id).await?;
        let max = u64::from(research.config().attachment_max_mb) << 20;
        let editable = matches!(app.state, kura_workflows::AppState::Draft | kura_workflows::AppState::Returned);
        if app.applicant != caller.login() || !editable {
            // The domain refuses it with its own words.
            return Ok(research.attach(caller, id, name, content).await?);
        }
        let name = kura_workflows::check_attachment(name, content, max)?;
        let name = name.as_str();
        let sha = sha256_hex(content);
        self.check_not_blocked(caller, id, "application.attach", &sha).await?;
        let scanned = match self.inner.scanner.scan(content).await {
            Ok(s) => s,
            Err(e) => {
                research.record_workspace(caller, id, "application.attach", &sha, "refused", &e.to_string()).await?;
                return Err(e.into());
            }
        };
        if let kura_scan::Verdict::Found { signature } = scanned.verdict {
            let found = Found {
                direction: "in",
                object: id,
                file_name: name,
                sha256: &sha,
                engine: &scanned.engine.version,
                signature: &signature,
            };
            research.record_detection(caller, &found).await?;
            return Err(WorkspaceError::Malware { file: format!("{name} ({id})"), signature });
        }
        Ok(research.attach(caller, id, name, content).await?)
    }

    /// `caller`'s institution sends `content` to another institution or a closed group
    /// through `exchanges` (issue 18 §3; HX-7): its name, note and size checked first, then
    /// scanned like every file that comes in (HIC-S1) — malware is refused and recorded
    /// ([`WorkspaceError::Malware`]), a scanner that cannot scan refuses the sending — then
    /// sealed and recorded.
    pub async fn exchange_send(
        &self,
        exchanges: &kura_workflows::Exchanges,
        caller: &Caller,
        file: &kura_workflows::NewTransfer,
        content: &[u8],
    ) -> Result<kura_workflows::Transfer> {
        // Everything but the bytes is checked first: nobody else makes scans, and nothing is
        // scanned that would be refused anyway.
        let name = exchanges.prepare(caller, file, content.len() as u64).await?;
        let sha = sha256_hex(content);
        // The public ledger never carries an exchanged file's plain hash or name (README,
        // "What the public log shows"): these refusals name neither; the detection's row for
        // the operators holds both, its ledger entry neither.
        self.check_not_blocked(caller, "exchange", "exchange.send", "").await?;
        let scanned = match self.inner.scanner.scan(content).await {
            Ok(s) => s,
            Err(e) => {
                self.inner.research.record_workspace(caller, "exchange", "exchange.send", "", "refused", &e.to_string()).await?;
                return Err(e.into());
            }
        };
        if let kura_scan::Verdict::Found { signature } = scanned.verdict {
            let found = Found {
                direction: "exchange",
                object: "exchange",
                file_name: &name,
                sha256: &sha,
                engine: &scanned.engine.version,
                signature: &signature,
            };
            self.inner.research.record_detection(caller, &found).await?;
            return Err(WorkspaceError::Malware { file: name, signature });
        }
        Ok(exchanges.send(caller, file, content).await?)
    }

    /// `caller`, an active member of `project`, brings in `content` as `file_name` (the
    /// contract's `kura bringin upload`). Returns the request, waiting for a custodian; malware
    /// gives [`WorkspaceError::Malware`] after the detection is recorded; a scanner that cannot
    /// scan refuses the upload, and the refusal is recorded.
    pub async fn bringin_upload(&self, caller: &Caller, project: &str, file_name: &str, content: &[u8], note: &str) -> Result<Bringin> {
        // What would be recorded is checked first, so that every scan can be recorded.
        kura_workflows::check_upload(file_name, note)?;
        self.inner.research.workspace(caller, project).await?;
        let max = self.inner.policy.policy.limits.bringin_max_bytes;
        if content.is_empty() || content.len() as u64 > max {
            return Err(invalid(
                "file",
                format!(
                    "{file_name}: 持込みファイルは 1 バイト以上 {max} バイトまでです（{} バイト）/ a bring-in file has 1 to {max} bytes (this one {})",
                    content.len(),
                    content.len()
                ),
            ));
        }
        let sha = sha256_hex(content);
        self.check_not_blocked(caller, project, "bringin.upload", &sha).await?;
        let scanned = match self.inner.scanner.scan(content).await {
            Ok(s) => s,
            Err(e) => {
                self.inner.research.record_workspace(caller, project, "bringin.upload", &sha, "refused", &e.to_string()).await?;
                return Err(e.into());
            }
        };
        // As recorded: the name trimmed.
        let master = is_master(file_name.trim());
        let mut file = NewBringin {
            name: file_name.into(),
            kind: if master { "table" } else { "file" }.into(),
            note: note.into(),
            bytes: content.len() as u64,
            sha256: sha.clone(),
            engine: scanned.engine.version,
            found: None,
        };
        if let kura_scan::Verdict::Found { signature } = scanned.verdict {
            // Malware is recorded whatever else is wrong with the file; the file is not kept.
            file.found = Some(signature.clone());
            let req = self.inner.research.bringins().upload(caller, project, &file).await?;
            return Err(WorkspaceError::Malware { file: format!("{file_name} ({})", req.id), signature });
        }
        if master {
            master_table(file_name.trim())?;
            read_master(file_name.trim(), content)?;
        }
        // Sealed first under a name of its own, recorded, then named by the request.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let airlock = &self.inner.dirs.airlock;
        kura_store::home::mkdir_private(airlock)?;
        kura_store::home::mkdir_private(&airlock.join("inbox"))?;
        kura_store::home::mkdir_private(&self.inbox_dir(project))?;
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = self.inbox_dir(project).join(format!("{sha}.{}.{n}.partial", std::process::id()));
        Self::seal_with(&self.inbox_key(project)?, &format!("kura/bringin/v1\0{project}\0{sha}"), content, &partial)?;
        let req = match self.inner.research.bringins().upload(caller, project, &file).await {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e.into());
            }
        };
        let path = self.inbox_path(project, &req.id);
        std::fs::rename(&partial, &path).map_err(|e| WorkspaceError::io(&path, e))?;
        Ok(req)
    }

    /// A custodian outside the project approves (`approve`) or rejects request `id`. Approval
    /// scans the file again first — outside the step's transaction, so that a slow scanner
    /// holds no lock — then places it in the workspace inside the transaction: a file that
    /// cannot be scanned or placed stays waiting; malware found now rejects the request and is
    /// recorded.
    pub async fn bringin_review(&self, caller: &Caller, id: &str, approve: bool, comment: &str) -> Result<Bringin> {
        let bringins = self.inner.research.bringins();
        if !approve {
            let r = bringins.close(caller, id, InStep::Reject, comment).await?;
            self.clear_inbox(&r);
            return Ok(r);
        }
        let req = bringins.request(Viewer::User(caller.login()), id).await?;
        let mut content = None;
        // Scanned only for the one who may approve (anyone else is refused by the step, and
        // learns nothing from a scan).
        if req.state == InState::Submitted && self.inner.research.custodian_outside(caller.login(), &req.project).await? {
            let bytes = self.inbox_content(&req)?;
            let scanned = match self.inner.scanner.scan(&bytes).await {
                Ok(s) => s,
                Err(e) => {
                    self.inner
                        .research
                        .record_workspace(caller, &req.project, "bringin.approve", &req.sha256, "refused", &e.to_string())
                        .await?;
                    return Err(e.into());
                }
            };
            if let kura_scan::Verdict::Found { signature } = scanned.verdict {
                // The rejection is the custodian's step (refused for anyone else); the
                // detection is recorded once it is taken.
                let note = format!("malware found at approval: {signature}");
                let r = bringins.close(caller, id, InStep::Reject, &note).await?;
                let found = Found {
                    direction: "in",
                    object: id,
                    file_name: &r.name,
                    sha256: &r.sha256,
                    engine: &scanned.engine.version,
                    signature: &signature,
                };
                self.inner.research.record_detection(caller, &found).await?;
                self.clear_inbox(&r);
                return Err(WorkspaceError::Malware { file: format!("{} ({id})", r.name), signature });
            }
            content = Some(bytes);
        }
        let placed = bringins.approve(caller, id, comment, |req| self.place(req, content)).await?;
        self.clear_inbox(&placed);
        Ok(placed)
    }

    /// Its author withdraws request `id`; its waiting file is removed.
    pub async fn bringin_withdraw(&self, caller: &Caller, id: &str) -> Result<Bringin> {
        let r = self.inner.research.bringins().close(caller, id, InStep::Withdraw, "").await?;
        self.clear_inbox(&r);
        Ok(r)
    }

    /// The waiting file of request `req`, if it opens and has the hash recorded at upload.
    fn inbox_content(&self, req: &Bringin) -> Result<Vec<u8>> {
        let key = self.inbox_key(&req.project)?;
        let aad = format!("kura/bringin/v1\0{}\0{}", req.project, req.sha256);
        Self::open_with(&key, &aad, &self.inbox_path(&req.project, &req.id), &req.sha256)
            .map_err(|why| WorkspaceError::Unusable(format!("{} を開けません（{why}）/ {} does not open: {why}", req.name, req.name)))
    }

    /// Puts request `req`'s file, scanned just before (`content`), into the workspace (see the
    /// module documentation).
    async fn place(&self, req: Bringin, content: Option<Vec<u8>>) -> std::result::Result<(), (String, String)> {
        let fail = |e: WorkspaceError| (format!("作業環境に置けません（{e}）"), format!("the file cannot be placed in the workspace: {e}"));
        // A request that was not waiting is refused by the step itself: nothing to place.
        let Some(content) = content else { return Err(fail(WorkspaceError::Unusable("not waiting".into()))) };
        let project = self.inner.research.project(Viewer::Owner, &req.project).await.map_err(|e| fail(e.into()))?;
        let spec = self.spec(&project).map_err(fail)?;
        let ws = spec.workspace.as_ref().ok_or_else(|| fail(WorkspaceError::Unusable("no workspace".into())))?;
        if req.kind == "table" {
            let table = master_table(&req.name).map_err(fail)?;
            let taken: std::collections::HashSet<String> =
                spec.dataset.tables.iter().map(|t| t.name.clone()).chain(kura_query::workspace::saved_names(&ws.dir)).collect();
            kura_query::workspace::check_table_name(&table, &taken).map_err(|e| fail(e.into()))?;
            let (schema, batch) = read_master(&req.name, &content).map_err(fail)?;
            kura_query::workspace::save_table(ws, &table, &schema, &[batch]).map_err(|e| fail(e.into()))?;
            kura_query::workspace::protect(&ws.dir, &table).map_err(|e| fail(e.into()))?;
            // The running worker loaded the saved tables when it started: the next one sees it.
            self.stop(&req.project).await;
        } else {
            let dir = ws.dir.join("bringin");
            kura_store::home::mkdir_private(&dir).map_err(|e| fail(e.into()))?;
            let path = dir.join(format!("{}.sealed", req.id));
            let aad = format!("kura/bringin-placed/v1\0{}\0{}\0{}", req.project, req.id, req.sha256);
            Self::seal_with(&ws.key, &aad, &content, &path).map_err(fail)?;
        }
        Ok(())
    }

    /// The content of approved request `id`'s file for `caller`, a member of its project: read
    /// from the workspace (a master from its saved table's source is not kept: its rows are the
    /// table).
    pub async fn bringin_content(&self, caller: &Caller, id: &str) -> Result<(Bringin, Vec<u8>)> {
        let req = self.inner.research.bringins().request(Viewer::User(caller.login()), id).await?;
        self.inner.research.workspace(caller, &req.project).await?;
        if req.state != InState::Approved || req.kind != "file" {
            return Err(invalid(
                "id",
                format!(
                    "{id} は承認済みのファイルではありません（表は SQL で読めます）/ {id} is not an approved file (an approved master is a table: query it)"
                ),
            ));
        }
        let path = self.inner.dirs.workspaces.join(&req.project).join("bringin").join(format!("{id}.sealed"));
        let key = self.workspace_key(&req.project)?;
        let aad = format!("kura/bringin-placed/v1\0{}\0{}\0{}", req.project, req.id, req.sha256);
        let content = Self::open_with(&key, &aad, &path, &req.sha256).map_err(|why| {
            WorkspaceError::Unusable(format!("{id}: 作業環境のファイルを開けません / the file in the workspace does not open: {why}"))
        })?;
        Ok((req, content))
    }

    /// The scanner's state as operators see it: the engine and its self-test (issue 17 §4,
    /// HIC-S1).
    pub async fn scanner_status(&self) -> std::result::Result<kura_scan::Engine, kura_scan::ScanError> {
        self.inner.scanner.status().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_read_strictly_and_errors_name_the_line() {
        let (schema, batch) = read_master("m.csv", b"code,name\r\n0101,\"a, \"\"b\"\"\"\n0202,c\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(schema.fields().len(), 2);
        assert_eq!(batch.num_rows(), 2);
        let col = batch.column(1).as_any().downcast_ref::<StringArray>().map(|a| a.value(0).to_string());
        assert_eq!(col.as_deref(), Some("a, \"b\""));
        let codes = batch.column(0).as_any().downcast_ref::<StringArray>().map(|a| a.value(0).to_string());
        assert_eq!(codes.as_deref(), Some("0101"), "codes keep their leading zeros");
        let err = |b: &[u8]| read_master("m.csv", b).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(b"code,name\n1,2\n3\n").contains("m.csv:3:"), "{}", err(b"code,name\n1,2\n3\n"));
        assert!(err(b"code,Name\n").contains("column 2"));
        assert!(err(b"code,__kura_person\n").contains("column 2"), "a master cannot pose as the platform's lineage");
        assert!(err(b"code,code\n").contains("column 2"));
        assert!(err(b"code\n\"open\n").contains("m.csv:2:"));
        assert!(err(b"code\n\xff\n").contains("m.csv:2:"));
        assert!(err("code\n\"x\"é,IGNORED\n".as_bytes()).contains("m.csv:2:"), "nothing after a closing quote is dropped");
        assert!(err(b"").contains("empty") || err(b"").contains("column"));
        assert_eq!(master_table("drug_master.csv").ok().as_deref(), Some("drug_master"));
        assert!(master_table("Drug Master.csv").is_err());
        assert!(is_master("x.CSV") && !is_master("x.sql"));
    }
}
