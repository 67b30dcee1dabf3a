//! Projects' workspaces (HIC-P3, HIC-S13, HIC-L1) and their end (HIC-IO3, CLD-5).
//!
//! A workspace is a directory of the home (`workspaces/PRJ-…/`: saved tables sealed under the
//! workspace key, the worker's scratch space) and a key of the keyring (`workspace/PRJ-…`),
//! made when the project is provisioned. Its SQL runs in a confined worker process
//! ([`kura_query::worker::Session`]) that holds the unwrapped keys of the project's grant, the
//! workspace key and the project's pseudonym key — never the master key or the platform's
//! pseudonym key.
//!
//! The end of use destroys it in this order, so that a crash at any point leaves nothing
//! readable and can be repeated: a marker that the end has begun (no worker starts after it),
//! the workspace key removed from the keyring and the master key replaced (crypto-shredding: a
//! copy of the files or of an old keyring is of no use), the directory deleted; then the
//! project's state and the deletion certificate's ledger entry in one transaction; then the
//! certificate and its `.tlog-proof` are written where the applicant can fetch them.

use crate::{App, AppError, Result};
use kura_crypto::Purpose;
use kura_query::{EngineSpec, Grant, Limits, WorkspaceSpec};
use kura_store::GrantedKeys;
use kura_workflows::{Caller, Project, Research};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The keyring id of a project's workspace key.
pub fn workspace_key_id(project: &str) -> String {
    format!("workspace/{project}")
}

/// What ending a project produced.
#[derive(Debug)]
pub struct EndOfUse {
    /// The project, ended.
    pub project: Project,
    /// The deletion certificate (JSON).
    pub certificate: PathBuf,
    /// Its SHA-256 (the ledger entry's `object_hash`).
    pub certificate_sha256: String,
    /// The ledger entry's index.
    pub entry: u64,
    /// The `.tlog-proof` of the entry, or why there is none yet (a checkpoint that waits for
    /// witnesses: `kura ledger prove --index N` writes it later).
    pub proof: std::result::Result<PathBuf, String>,
}

/// The deletion certificate: what was destroyed, when, by whom (CLD-5).
#[derive(Debug, Serialize)]
struct Certificate<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    project: &'a str,
    application: &'a str,
    dataset: &'a str,
    applicant: &'a str,
    ended_by: &'a str,
    ended_at: String,
    period_ends_at: String,
    members_revoked: usize,
    destroyed: Destroyed,
    statement_ja: &'static str,
    statement_en: &'static str,
}

#[derive(Debug, Serialize)]
struct Destroyed {
    /// SHA-256 of each destroyed key's identifier (the identifiers name nothing secret, but a
    /// hash is what the certificate promises).
    key_id_sha256: Vec<String>,
    /// How many keys left the keyring now (0 when an interrupted end had removed them).
    keys_removed_now: usize,
    master_key_replaced: bool,
    saved_tables: usize,
    files: usize,
    bytes: u64,
    workspace_directory_removed: bool,
}

fn mkdir_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(|e| AppError::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|e| AppError::io(path, e))
}

/// Files and bytes below `dir`.
fn count_files(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => {
                    files += 1;
                    bytes += e.metadata().map_or(0, |m| m.len());
                }
                _ => {}
            }
        }
    }
    (files, bytes)
}

impl App {
    fn ending_marker(&self, project: &str) -> PathBuf {
        self.layout().workspaces().join(format!("{project}.ending"))
    }

    /// Makes project `project`'s workspace: its directory (0700) and its key. Called when the
    /// project is provisioned; repeating it changes nothing.
    pub fn prepare_workspace(&self, project: &str) -> Result<()> {
        let layout = self.layout();
        mkdir_private(&layout.workspaces())?;
        if self.ending_marker(project).exists() {
            return Err(AppError::Setup(format!(
                "プロジェクト {project} の利用終了処理が途中です。`kura project end {project}` をやり直してください / the end of project {project} was interrupted: run `kura project end {project}` again"
            )));
        }
        mkdir_private(&layout.workspace(project))?;
        self.home.ensure_key(&workspace_key_id(project), Purpose::Workspace)?;
        Ok(())
    }

    /// The engine specification of project `p`'s workspace: exactly the approved columns
    /// (their keys unwrapped, no other), the workspace key, the project's pseudonym key, the
    /// workspace directory and the home's limits. The caller has checked membership
    /// ([`Research::workspace`]).
    pub fn workspace_spec(&self, p: &Project) -> Result<EngineSpec> {
        if self.ending_marker(&p.id).exists() {
            return Err(AppError::Setup(format!("プロジェクト {} は利用終了処理中です / project {} is being ended", p.id, p.id)));
        }
        let key_id = workspace_key_id(&p.id);
        let dir = self.layout().workspace(&p.id);
        if !self.home.has_key(&key_id)? {
            // Provisioned but never prepared (interrupted right after the agreement).
            self.prepare_workspace(&p.id)?;
        }
        let (master, keyring, catalog) = self.home.snapshot()?;
        let entry = catalog.datasets.get(&p.dataset).cloned().ok_or_else(|| {
            AppError::Setup(format!(
                "プロジェクト {} のデータセット '{}' がありません / project {}'s dataset '{}' is not in the catalogue",
                p.id, p.dataset, p.id, p.dataset
            ))
        })?;
        let specs: Vec<String> = p.columns.iter().map(|(t, c)| format!("{t}.{c}")).collect();
        let grant = Grant::parse(&entry, &specs).map_err(|e| AppError::Setup(e.to_string()))?;
        let ids = grant.key_ids(&entry);
        let keys = GrantedKeys::unwrap(&master, &keyring, ids.iter().map(String::as_str))?;
        let key = keyring.unwrap_as(&master, &kura_crypto::KeyId::new(key_id)?, Purpose::Workspace)?;
        drop(master);
        let pseudonym = self.home.platform_pseudonym_key()?.for_project(&p.id);
        let limits = Limits::from_home(&self.home).map_err(|e| AppError::Setup(e.to_string()))?;
        Ok(EngineSpec {
            dataset: entry,
            grant,
            keys,
            data_root: self.home.data_dir(),
            limits,
            workspace: Some(WorkspaceSpec { project: p.id.clone(), dir, key, pseudonym }),
        })
    }

    /// Ends project `id` for `caller`, a custodian (HIC-IO3, CLD-5): destroys the workspace
    /// (see the module documentation), records the deletion certificate in the ledger and
    /// writes it with its `.tlog-proof` under `certificates/`. Stop the project's worker first
    /// (the server does); a worker still running cannot open anything saved afterwards.
    pub async fn end_project(&self, research: &Research, caller: &Caller, id: &str) -> Result<EndOfUse> {
        let p = research.may_end(caller, id).await?;
        let layout = self.layout();
        mkdir_private(&layout.workspaces())?;
        let marker = self.ending_marker(id);
        kura_crypto::write_atomic(&marker, b"ending\n", 0o600).map_err(|e| AppError::io(&marker, e))?;
        let dir = layout.workspace(id);
        let saved = kura_query::workspace::saved_names(&dir).len();
        let (files, bytes) = count_files(&dir);
        let key_id = workspace_key_id(id);
        let removed = self.home.destroy_key(&key_id)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| AppError::io(&dir, e))?;
        }
        let clock = research.now_secs();
        let certificate = Certificate {
            kind: "kura.deletion-certificate/v1",
            project: &p.id,
            application: &p.application,
            dataset: &p.dataset,
            applicant: &p.applicant,
            ended_by: caller.login(),
            ended_at: kura_ledger::entry::format_seconds(clock),
            period_ends_at: kura_ledger::entry::format_seconds(p.ends_at),
            members_revoked: p.members.len(),
            destroyed: Destroyed {
                key_id_sha256: vec![hex::encode(Sha256::digest(key_id.as_bytes()))],
                keys_removed_now: removed,
                master_key_replaced: true,
                saved_tables: saved,
                files,
                bytes,
                workspace_directory_removed: !dir.exists(),
            },
            statement_ja: "このプロジェクトの作業環境の鍵を破棄し（暗号学的消去）、保存された表と作業ファイルを削除しました。メンバーの利用権は失効しています。",
            statement_en: "The workspace key of this project was destroyed (crypto-shredding), its saved tables and working files deleted, and its members' access revoked.",
        };
        let mut text = serde_json::to_vec_pretty(&certificate).map_err(|e| AppError::Setup(e.to_string()))?;
        text.push(b'\n');
        let sha = hex::encode(Sha256::digest(&text));
        let detail = format!(
            "deletion certificate; workspace key id sha256 {}; {removed} key(s) removed, master key replaced; {saved} saved table(s), {files} file(s) deleted",
            certificate.destroyed.key_id_sha256.join(",")
        );
        let (project, entry) = research.end(caller, id, &sha, &detail).await?;
        let certs = layout.certificates();
        mkdir_private(&certs)?;
        let cert_path = certs.join(format!("{id}.deletion-certificate.json"));
        kura_crypto::write_atomic(&cert_path, &text, 0o600).map_err(|e| AppError::io(&cert_path, e))?;
        let _ = std::fs::remove_file(&marker);
        let proof = self.prove_entry(research, entry, &certs.join(format!("{id}.deletion-certificate.tlog-proof"))).await;
        Ok(EndOfUse { project, certificate: cert_path, certificate_sha256: sha, entry, proof })
    }

    /// Writes the `.tlog-proof` of ledger entry `index` (carrying the entry) to `path`.
    async fn prove_entry(&self, research: &Research, index: u64, path: &Path) -> std::result::Result<PathBuf, String> {
        let log = research.log();
        let entry = log.store_read(index).await.map_err(|e| e.to_string())?;
        match log.prove(index, Some(entry)).await {
            Ok(proof) => {
                kura_crypto::write_atomic(path, &proof.to_bytes(), 0o644).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(path.to_path_buf())
            }
            Err(e) => Err(format!(
                "{e}: 立会人の連署の後に `kura ledger prove --index {index} --out {}` で作成できます / once witnesses cosign, `kura ledger prove --index {index} --out {}` writes it",
                path.display(),
                path.display()
            )),
        }
    }
}
