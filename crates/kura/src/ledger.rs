//! `kura ledger`, `kura witness` and `kura proof`: operating and checking the audit ledger
//! (HX-3, HX-4, HX-8, HX-10, HX-12, HIC-S5, HIC-S6).
//!
//! Arguments and output only: the log, its key, its witnesses and the home's own witness come
//! from the composition root, `kura-app` (which also documents the home's layout).

use crate::{CliError, Result, runtime};
use clap::{Args, Subcommand};
use kura_ledger::audit::{repair, verify};
use kura_ledger::entry::{Actor, AuditEvent, ENTRY_VERSION, Entry, file_entries};
use kura_ledger::log::Log;
use kura_ledger::store::SqlStore;
use kura_ledger::{LedgerError, TlogError};
use kura_store::Home;
use kura_tlog::merkle::root_from_inclusion;
use kura_tlog::mirror::Trust;
use kura_tlog::tiles::DirTiles;
use kura_tlog::{Hash, ProofFile, VerifierKey, leaf_hash, verify_consistency};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `kura ledger …`
#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    what: LedgerCmd,
}

#[derive(Debug, Subcommand)]
enum LedgerCmd {
    /// 運用者のメモを記録（`-` で標準入力）/ record an operator's note (`-` reads standard input)
    Append {
        /// 記録する者 / who records it [default: $USER]
        #[arg(long)]
        actor: Option<String>,
        /// メモ / the note
        text: String,
    },
    /// ファイルとその各レコードのSHA-256を記録（HX-12）/ record a file's SHA-256 and each record's
    AddFile {
        /// ファイル / the file
        file: PathBuf,
        /// 提出者 / who submitted it [default: $USER]
        #[arg(long)]
        actor: Option<String>,
        /// 提出機関 / submitting institution
        #[arg(long, default_value = "")]
        institution: String,
    },
    /// 最新の署名付きチェックポイントを表示（必要なら新たに署名）/ print the latest signed checkpoint, signing a new one if the log grew
    Checkpoint,
    /// 台帳の検証鍵を表示（name+id+key 形式）/ print the log's verifier key (signed-note name+id+key)
    Key,
    /// 全件監査：全タイル・ルート・署名・一貫性 / full audit: every tile, root, signature and consistency
    Verify,
    /// エントリを表示（監査者向け、HIC-S5）/ list entries (for auditors, HIC-S5)
    Show {
        /// 最初のエントリ番号 / first entry index
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// 表示する件数 / how many entries
        #[arg(long, default_value_t = 1000)]
        limit: u64,
        /// JSON で出力（各エントリをそのまま）/ print JSON (each entry as recorded)
        #[arg(long)]
        json: bool,
    },
    /// ミラーから破損したエントリ・タイルを修復 / repair damaged entries and tiles from a mirror
    Repair {
        /// ミラー：tlog-tiles 形式のディレクトリか http:// の URL / the mirror: a directory at tlog-tiles paths or an http:// URL
        #[arg(long = "from", value_name = "MIRROR")]
        from: String,
    },
    /// チェックポイント・タイル・バンドルを読み取り専用で公開（HTTP）/ serve the checkpoint, tiles and bundles read-only over HTTP
    Serve {
        /// 待ち受けアドレス（ポート0で空きポート）/ address to listen on (port 0 picks a free one)
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: String,
    },
    /// エントリの包含証明（.tlog-proof）を作成 / write an offline inclusion proof (.tlog-proof)
    Prove {
        /// エントリ番号 / entry index
        #[arg(long, conflicts_with_all = ["file", "sha256"])]
        index: Option<u64>,
        /// 記録済みのファイル / a recorded file
        #[arg(long, conflicts_with = "sha256")]
        file: Option<PathBuf>,
        /// 記録済みファイルのSHA-256 / a recorded file's SHA-256 (hex)
        #[arg(long)]
        sha256: Option<String>,
        /// ファイル全体ではなくレコード N（0始まりの行番号）のハッシュを含むエントリを証明 / prove the entry holding
        /// record N's hash (0-based line number) rather than the file's
        #[arg(long, value_name = "N", conflicts_with = "index")]
        record: Option<u64>,
        /// 出力先（省略時は標準出力）/ output file [default: standard output]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// オフライン立会人への依頼ファイルを作成 / write an add-checkpoint request for an offline witness
    WitnessRequest {
        /// 立会人の名前 / the witness's key name
        #[arg(long)]
        witness: String,
        /// 出力先 / output file
        #[arg(long)]
        out: PathBuf,
    },
    /// オフライン立会人の応答を取り込む / import an offline witness's response
    WitnessImport {
        /// 立会人の名前 / the witness's key name
        #[arg(long)]
        witness: String,
        /// 応答ファイル / the response file
        file: PathBuf,
    },
}

/// `kura witness …`
#[derive(Debug, Args)]
pub struct WitnessArgs {
    #[command(subcommand)]
    what: WitnessCmd,
}

#[derive(Debug, Subcommand)]
enum WitnessCmd {
    /// 立会人の鍵を表示（なければ作成）/ print the witness's cosignature key, creating it if needed
    Key {
        /// 鍵の名前（作成時）/ key name when creating
        #[arg(long, default_value = "kura.local/witness")]
        name: String,
    },
    /// 連署する台帳の検証鍵を追加 / trust a log's verifier key
    AddLog {
        /// 台帳の検証鍵 / the log's verifier key (name+id+key)
        vkey: String,
    },
    /// 依頼ファイルを処理して応答ファイルを書く（オフライン立会人）/ process a request file, write the response (offline witness)
    Cosign {
        /// 依頼ファイル / request file
        request: PathBuf,
        /// 応答の出力先 / response file
        #[arg(long)]
        out: PathBuf,
    },
    /// オンライン立会人として add-checkpoint を受け付ける（HTTP）/ run an online witness: POST /add-checkpoint over HTTP
    Serve {
        /// 待ち受けアドレス（ポート0で空きポート）/ address to listen on (port 0 picks a free one)
        #[arg(long, default_value = "127.0.0.1:7381")]
        listen: String,
    },
}

/// `kura proof …`
#[derive(Debug, Args)]
pub struct ProofArgs {
    #[command(subcommand)]
    what: ProofCmd,
}

#[derive(Debug, Subcommand)]
enum ProofCmd {
    /// .tlog-proof をオフラインで検証 / verify a .tlog-proof offline
    Verify {
        /// 証明ファイル / the proof file
        file: PathBuf,
        /// 台帳の検証鍵 / the log's verifier key
        #[arg(long)]
        log_key: String,
        /// 立会人の検証鍵（繰り返し可）/ witness verifier keys (repeatable)
        #[arg(long = "witness-key")]
        witness_keys: Vec<String>,
        /// 必要な連署数 / cosignatures required
        #[arg(long, default_value_t = 0)]
        min_witnesses: usize,
        /// 証明対象のデータファイル（SHA-256 を照合）/ the data file the proof is for (its SHA-256 is checked)
        #[arg(long)]
        data: Option<PathBuf>,
        /// レコードの証明：--data のファイルのレコード N（0始まり）のハッシュが記録にあることを確認 / a record's proof:
        /// check that record N (0-based) of the --data file is the one recorded
        #[arg(long, value_name = "N", requires = "data", conflicts_with = "record_data")]
        record: Option<u64>,
        /// レコードの証明：そのレコードだけを持つ場合（1行のファイル）/ a record's proof for whoever holds only that
        /// record: a file holding its line
        #[arg(long, value_name = "FILE", conflicts_with = "data", requires = "salt")]
        record_data: Option<PathBuf>,
        /// --record-data の記録のソルト（ファイルを持つ送信者が `kura proof salt FILE` で示す）/ the record salt
        /// for --record-data, which the sender holding the file prints with `kura proof salt FILE`
        #[arg(long, value_name = "HEX")]
        salt: Option<String>,
        /// 葉ハッシュを直接指定 / the leaf hash, when the proof carries no entry
        #[arg(long)]
        leaf_hash: Option<String>,
    },
    /// ファイルのレコードのソルト（ファイル全体から計算、台帳には記録しない）/ a file's record salt: computed from
    /// the whole file, never recorded; give it with one record to whoever should check that record alone
    Salt {
        /// ファイル / the file
        file: PathBuf,
    },
    /// RFC 6962 包含証明を検査 / check an RFC 6962 inclusion proof
    CheckInclusion {
        /// 葉ハッシュ / leaf hash (hex or base64)
        #[arg(long)]
        leaf_hash: String,
        /// 葉の番号 / leaf index
        #[arg(long)]
        index: u64,
        /// 木の大きさ / tree size
        #[arg(long)]
        size: u64,
        /// ルートハッシュ / root hash
        #[arg(long)]
        root: String,
        /// 証明のハッシュ（カンマ区切り、空なら空の証明）/ proof hashes, comma-separated; "" for an empty proof
        #[arg(long, allow_hyphen_values = true)]
        proof: String,
    },
    /// RFC 6962 一貫性証明を検査 / check an RFC 6962 consistency proof
    CheckConsistency {
        /// 古い木の大きさ / older tree size
        #[arg(long)]
        size1: u64,
        /// 新しい木の大きさ / newer tree size
        #[arg(long)]
        size2: u64,
        /// 古いルート / older root
        #[arg(long)]
        root1: String,
        /// 新しいルート / newer root
        #[arg(long)]
        root2: String,
        /// 証明のハッシュ（カンマ区切り）/ proof hashes, comma-separated; "" for an empty proof
        #[arg(long, allow_hyphen_values = true)]
        proof: String,
    },
}

fn operator(actor: Option<String>) -> String {
    actor.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".into())
}

fn read_text(t: &str) -> Result<String> {
    crate::read_query(t)
}

fn read_file(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| CliError::Io { path: p.display().to_string(), source: e })
}

fn write_out(out: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match out {
        Some(p) => std::fs::write(p, bytes).map_err(|e| CliError::Io { path: p.display().to_string(), source: e }),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(bytes).map_err(|e| CliError::Io { path: "<stdout>".into(), source: e })
        }
    }
}

/// Runs `kura ledger …`.
pub fn ledger(home: &Home, a: LedgerArgs) -> Result<()> {
    let app = crate::app(home)?;
    runtime()?.block_on(async move {
        match a.what {
            LedgerCmd::Show { from, limit, json } => {
                use kura_ledger::store::LedgerStore;
                let store = SqlStore::new(app.open_db().await?);
                let size = store.size().await?;
                let end = from.saturating_add(limit).min(size);
                let mut shown = Vec::new();
                for (i, bytes) in (from..).zip(store.read(from, end).await?) {
                    let entry = Entry::decode(&bytes)?;
                    if json {
                        shown.push(serde_json::json!({ "index": i, "entry": entry }));
                    } else {
                        println!("#{i} {}", entry.summary());
                    }
                }
                if json {
                    println!("{}", serde_json::to_string_pretty(&shown).map_err(|e| CliError::Usage(e.to_string()))?);
                } else {
                    println!("{} / {} エントリ entries", end.saturating_sub(from), size);
                }
                Ok(())
            }
            LedgerCmd::Key => {
                println!("{}", app.signing_key()?.verifier());
                Ok(())
            }
            LedgerCmd::Verify => {
                let published = app.published_tiles()?;
                let key = app.signing_key()?;
                let store = SqlStore::new(app.open_db().await?);
                let ws: Vec<VerifierKey> = app.witness_keys()?;
                let started = std::time::Instant::now();
                let report = verify(&store, &published, key.verifier(), &ws, app.min_witnesses()).await?;
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "検証 / verified: {} エントリ entries, {} タイル tiles, {} チェックポイント checkpoints, {:.2} s ({:.0} entries/s)",
                    report.entries,
                    report.tiles,
                    report.checkpoints,
                    secs,
                    report.entries as f64 / secs.max(1e-9)
                );
                if let Some(r) = report.root {
                    println!("ルート / root: {r}");
                }
                if report.ok() {
                    println!("問題なし / OK: the log verifies");
                    Ok(())
                } else {
                    for p in &report.problems {
                        println!("✗ {p}");
                    }
                    Err(CliError::Check(format!(
                        "{} 件の問題 / {} problem(s) found; `kura ledger repair --from MIRROR` で修復できます / repair with `kura ledger repair --from MIRROR`",
                        report.problems.len(),
                        report.problems.len()
                    )))
                }
            }
            LedgerCmd::Repair { from } => {
                let published = app.published_tiles()?;
                let key = app.signing_key()?;
                let store = SqlStore::new(app.open_db().await?);
                let ws: Vec<VerifierKey> = app.witness_keys()?;
                let trust = Trust { log_key: key.verifier(), witnesses: &ws, min_witnesses: app.min_witnesses() };
                // The mirror (a URL or a directory) is copied to a scratch directory first,
                // checked file by file; repair verifies every byte of the copy again.
                let source = if from.starts_with("http://") || from.starts_with("https://") {
                    app.outbound_allowed(&from)?;
                    kura_server::client::MirrorSource::Http(from.clone())
                } else {
                    let p = PathBuf::from(&from);
                    if !p.is_dir() {
                        return Err(CliError::Usage(format!(
                            "--from {from}: ディレクトリでも http:// の URL でもありません / neither a directory (a copy of ledger/log) nor an http:// URL"
                        )));
                    }
                    kura_server::client::MirrorSource::Dir(p)
                };
                let scratch = tempfile::tempdir().map_err(|e| CliError::Io { path: "temporary directory".into(), source: e })?;
                let pb = indicatif::ProgressBar::new(0);
                pb.set_message("ミラーを取得 / fetching the mirror");
                let copy = kura_server::client::fetch_mirror(&source, scratch.path(), trust, &|done, total| {
                    pb.set_length(total);
                    pb.set_position(done);
                })
                .await
                .map_err(|e| CliError::Check(e.to_string()))?;
                pb.finish_and_clear();
                for f in &copy.refused {
                    println!("ミラーの {f} は検証できないため使いません / the mirror's {f} does not verify: not used");
                }
                let mirror_dir = scratch.path().to_path_buf();
                let out = repair(&store, &published, &DirTiles::new(&mirror_dir), trust).await?;
                for i in &out.entries {
                    println!("修復 / restored entry {i}");
                }
                for f in &out.files {
                    println!("修復 / restored {f}");
                }
                let report = verify(&store, &published, key.verifier(), &ws, app.min_witnesses()).await?;
                if report.ok() {
                    println!(
                        "修復完了、検証済み / repaired: {} entries, {} files, {} checkpoints; the log verifies",
                        out.entries.len(),
                        out.files.len(),
                        out.checkpoints
                    );
                    Ok(())
                } else {
                    for p in &report.problems {
                        println!("✗ {p}");
                    }
                    Err(CliError::Check(format!("修復後も {} 件の問題 / {} problem(s) remain", report.problems.len(), report.problems.len())))
                }
            }
            LedgerCmd::Serve { listen } => {
                let router = kura_server::ledger::tile_routes(Arc::new(app.published_tiles()?));
                serve_until_ctrl_c(&listen, router, "台帳 / ledger").await
            }
            cmd => {
                let log = app.open_log().await?;
                ledger_running(home, &log, cmd).await
            }
        }
    })
}

async fn ledger_running(_home: &Home, log: &Log<SqlStore>, cmd: LedgerCmd) -> Result<()> {
    match cmd {
        LedgerCmd::Append { actor, text } => {
            let text = read_text(&text)?;
            let event = Entry::Audit(AuditEvent {
                v: ENTRY_VERSION,
                time: log.now(),
                actor: Actor { user: operator(actor), institution: String::new(), cert: String::new() },
                action: "ledger.note".into(),
                object: String::new(),
                object_hash: None,
                outcome: "ok".into(),
                request: String::new(),
                detail: Some(text),
            });
            let index = log.record(&event).await?;
            let note = log.checkpoint().await;
            println!("記録しました / recorded entry {index}");
            match note {
                Ok(_) => println!("チェックポイント / checkpoint: size {}", log.size()),
                Err(LedgerError::Tlog(TlogError::NotEnoughWitnesses { have, need })) => {
                    println!(
                        "チェックポイントは立会人の連署待ち / checkpoint waits for witnesses ({have} of {need}): kura ledger witness-request"
                    )
                }
                Err(e) => return Err(e.into()),
            }
            Ok(())
        }
        LedgerCmd::AddFile { file, actor, institution } => {
            let content = read_file(&file)?;
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let actor = Actor { user: operator(actor), institution, cert: String::new() };
            let entries = file_entries(&name, &content, &actor, &log.now());
            // The file's record first, so that it precedes its records' hashes in the log
            // (and its index is known, whatever the order the others land in); then the
            // records' hashes, appended together.
            let mut first = None;
            let mut handles = Vec::new();
            for (n, e) in entries.iter().enumerate() {
                let bytes = e.encode()?;
                if n == 0 {
                    first = Some(log.append(bytes).await?);
                    continue;
                }
                let log = log.clone();
                handles.push(tokio::spawn(async move { log.append(bytes).await }));
            }
            for h in handles {
                h.await.map_err(|_| LedgerError::Closed)??;
            }
            let Some(Entry::File(rec)) = entries.first() else { return Err(CliError::Usage("empty".into())) };
            println!(
                "記録しました / recorded {name}: sha256 {} ({} レコード records) at entry {}",
                rec.sha256,
                rec.records,
                first.unwrap_or(0)
            );
            if let Err(e) = log.checkpoint().await
                && !matches!(e, LedgerError::Tlog(TlogError::NotEnoughWitnesses { .. }))
            {
                return Err(e.into());
            }
            println!("証明 / proof: kura ledger prove --sha256 {} --out {name}.tlog-proof", rec.sha256);
            Ok(())
        }
        LedgerCmd::Checkpoint => {
            let note = log.checkpoint().await?;
            write_out(None, &note)
        }
        LedgerCmd::Prove { index, file, sha256, record, out } => {
            let sha = match (&file, &sha256) {
                (Some(f), _) => Some(hex::encode(Sha256::digest(read_file(f)?))),
                (None, Some(h)) => Some(h.to_ascii_lowercase()),
                _ => None,
            };
            let index = match (index, sha, record) {
                (Some(i), _, _) => i,
                (None, Some(h), None) => find(log, &h).await?,
                (None, Some(h), Some(n)) => find_record(log, &h, n).await?,
                _ => {
                    return Err(CliError::Usage(
                        "--index、--file、--sha256 のどれかを指定してください / give --index, --file or --sha256".into(),
                    ));
                }
            };
            let size = log.size();
            if index >= size {
                return Err(TlogError::OutOfRange { index, size }.into());
            }
            let entry = log.store_read(index).await?;
            let proof = log.prove(index, Some(entry)).await?;
            write_out(out.as_deref(), &proof.to_bytes())?;
            if let Some(o) = out {
                eprintln!("書き出しました / wrote {} (entry {index})", o.display());
            }
            Ok(())
        }
        LedgerCmd::WitnessRequest { witness, out } => {
            let body = log.witness_request(&witness).await?;
            write_out(Some(&out), &body)?;
            println!(
                "依頼を書き出しました / wrote the request to {}: 立会人側で / at the witness: kura witness cosign {} --out RESPONSE",
                out.display(),
                out.display()
            );
            Ok(())
        }
        LedgerCmd::WitnessImport { witness, file } => {
            match log.witness_import(&witness, &read_file(&file)?).await? {
                Some(note) => {
                    println!("連署がそろい公開しました / enough cosignatures: checkpoint published");
                    write_out(None, &note)?;
                }
                None => println!("連署を取り込みました（まだ不足）/ cosignature imported; more are needed"),
            }
            Ok(())
        }
        LedgerCmd::Key | LedgerCmd::Verify | LedgerCmd::Show { .. } | LedgerCmd::Repair { .. } | LedgerCmd::Serve { .. } => Ok(()),
    }
}

/// The entry holding record `n`'s hash of the file recorded with SHA-256 `sha`: one of the
/// record-hash entries after the file's own.
async fn find_record(log: &Log<SqlStore>, sha: &str, n: u64) -> Result<u64> {
    let file = find(log, sha).await?;
    let records = match Entry::decode(&log.store_read(file).await?)? {
        Entry::File(f) => f.records,
        _ => 0,
    };
    if n >= records {
        return Err(CliError::Usage(format!(
            "レコード {n} はありません（このファイルは {records} レコード）/ no record {n}: the file has {records} records (0-based)"
        )));
    }
    let size = log.size();
    // Its record entries follow it; the log's other writers may have put entries between.
    let mut i = file + 1;
    while i < size {
        if let Entry::Records(r) = Entry::decode(&log.store_read(i).await?)?
            && r.file == sha
            && (r.first..r.first + r.sha256.len() as u64).contains(&n)
        {
            return Ok(i);
        }
        i += 1;
    }
    Err(CliError::Check(format!("レコード {n} のハッシュが台帳にありません / record {n}'s hash is not in the log")))
}

async fn find(log: &Log<SqlStore>, sha: &str) -> Result<u64> {
    log.find_file(sha).await?.ok_or_else(|| {
        CliError::Usage(format!(
            "sha256 {sha} のファイルは記録されていません / no file with this SHA-256 is recorded (kura ledger add-file)"
        ))
    })
}

/// Binds `listen`, prints the address (for scripts: the first line of standard output) and
/// serves until Ctrl-C.
async fn serve_until_ctrl_c(listen: &str, router: kura_server::Router, what: &str) -> Result<()> {
    let (listener, addr) = kura_server::bind(listen).await.map_err(|e| CliError::Check(e.to_string()))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = writeln!(out, "{what}: 待ち受け中（Ctrl-C で終了）/ serving; Ctrl-C stops");
        let _ = out.flush();
    }
    kura_server::serve(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| CliError::Check(e.to_string()))
}

/// Runs `kura witness …`.
pub fn witness(home: &Home, a: WitnessArgs) -> Result<()> {
    let app = crate::app(home)?;
    match a.what {
        WitnessCmd::Serve { listen } => {
            let w = Arc::new(app.open_witness("kura.local/witness")?);
            runtime()?.block_on(serve_until_ctrl_c(&listen, kura_server::ledger::witness_routes(w), "立会人 / witness"))
        }
        WitnessCmd::Key { name } => {
            println!("{}", app.open_witness(&name)?.verifier());
            Ok(())
        }
        WitnessCmd::AddLog { vkey } => {
            let key = VerifierKey::parse(&vkey)?;
            app.witness_add_log(&key)?;
            println!("連署対象に追加しました / now witnessing {}", key.name);
            Ok(())
        }
        WitnessCmd::Cosign { request, out } => {
            let w = app.open_witness("kura.local/witness")?;
            let resp = w.add_checkpoint(&read_file(&request)?);
            write_out(Some(&out), &resp.to_file())?;
            if resp.status == 200 {
                println!("連署しました / cosigned; carry {} back to the log: kura ledger witness-import", out.display());
                Ok(())
            } else {
                Err(CliError::Check(format!(
                    "立会人は拒否しました / the witness refused: {} {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body).trim()
                )))
            }
        }
    }
}

fn parse_proof(list: &str) -> Result<Vec<Hash>> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',').map(|h| Hash::parse(h.trim()).map_err(CliError::from)).collect()
}

/// Runs `kura proof …`; every check exits non-zero unless the proof holds.
pub fn proof(a: ProofArgs) -> Result<()> {
    match a.what {
        ProofCmd::CheckInclusion { leaf_hash, index, size, root, proof } => {
            let (leaf, root, proof) = (Hash::parse(&leaf_hash)?, Hash::parse(&root)?, parse_proof(&proof)?);
            kura_tlog::verify_inclusion(&leaf, index, size, &proof, &root)?;
            println!("包含証明は正しい / inclusion proof holds: leaf {index} is in the tree of size {size}");
            Ok(())
        }
        ProofCmd::CheckConsistency { size1, size2, root1, root2, proof } => {
            let (r1, r2, proof) = (Hash::parse(&root1)?, Hash::parse(&root2)?, parse_proof(&proof)?);
            verify_consistency(size1, size2, &r1, &r2, &proof)?;
            println!("一貫性証明は正しい / consistency proof holds: the tree of size {size1} is a prefix of the tree of size {size2}");
            Ok(())
        }
        ProofCmd::Salt { file } => {
            let bytes = read_file(&file)?;
            let mut h = kura_ledger::entry::RecordHasher::new(bytes.as_slice());
            let _ = std::io::copy(&mut h, &mut std::io::sink());
            println!("{}", hex::encode(h.finish().salt));
            Ok(())
        }
        ProofCmd::Verify { file, log_key, witness_keys, min_witnesses, data, record, record_data, salt, leaf_hash: leaf_arg } => {
            let p = ProofFile::parse(&read_file(&file)?)?;
            let log_key = VerifierKey::parse(&log_key)?;
            let ws = witness_keys.iter().map(|k| VerifierKey::parse(k)).collect::<std::result::Result<Vec<_>, _>>()?;
            let leaf =
                match (&leaf_arg, &p.extra) {
                    (Some(h), _) => Hash::parse(h)?,
                    (None, Some(entry)) => leaf_hash(entry),
                    (None, None) => return Err(CliError::Usage(
                        "証明にエントリが含まれていません。--leaf-hash を指定してください / the proof carries no entry: give --leaf-hash"
                            .into(),
                    )),
                };
            let signed = p.verify(&leaf, &log_key, &ws, min_witnesses)?;
            // The proof's root must follow from the leaf (already checked inside verify).
            let _ = root_from_inclusion(&leaf, p.index, signed.checkpoint.size, &p.proof)?;
            let entry = p.extra.as_deref().and_then(|e| Entry::decode(e).ok());
            // A record's proof: the entry lists the record's hash at its place.
            if record.is_some() || record_data.is_some() {
                let Some(Entry::Records(r)) = &entry else {
                    return Err(CliError::Check(
                        "証明はレコードのハッシュの記録ではありません（kura ledger prove --record N）/ the proof is not of a record-hash entry (kura ledger prove --record N)".into(),
                    ));
                };
                let (n, hash) = match (record, &data, &record_data) {
                    (Some(n), Some(path), _) => {
                        let bytes = read_file(path)?;
                        let sha = hex::encode(Sha256::digest(&bytes));
                        if sha != r.file {
                            return Err(CliError::Check(format!(
                                "{}: SHA-256 {sha} は記録されたファイル {} と違います / is not the recorded file {}",
                                path.display(),
                                r.file,
                                r.file
                            )));
                        }
                        let hashes = kura_ledger::entry::RecordHasher::new(bytes.as_slice());
                        let mut hashes = hashes;
                        let _ = std::io::copy(&mut hashes, &mut std::io::sink());
                        let all = hashes.finish().records;
                        let h = all
                            .get(n as usize)
                            .map(hex::encode)
                            .ok_or_else(|| CliError::Check(format!("{}: レコード {n} がありません / has no record {n}", path.display())))?;
                        (n, h)
                    }
                    (_, _, Some(path)) => {
                        let bytes = read_file(path)?;
                        let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        let salt: [u8; 32] = hex::decode(salt.as_deref().unwrap_or_default())
                            .ok()
                            .and_then(|v| v.try_into().ok())
                            .ok_or_else(|| CliError::Usage("--salt: 64桁の16進数 / 64 hex digits (kura proof salt FILE)".into()))?;
                        let mine = hex::encode(kura_ledger::entry::record_hash(&salt, line));
                        let at = r.sha256.iter().position(|h| *h == mine);
                        let Some(at) = at else {
                            return Err(CliError::Check(format!(
                                "{}: このレコードのハッシュは証明のエントリにありません / this record's hash is not in the proof's entry",
                                path.display()
                            )));
                        };
                        (r.first + at as u64, mine)
                    }
                    _ => return Err(CliError::Usage("--record N には --data FILE が必要です / --record N needs --data FILE".into())),
                };
                let recorded = n.checked_sub(r.first).and_then(|k| r.sha256.get(k as usize));
                if recorded != Some(&hash) {
                    return Err(CliError::Check(format!(
                        "レコード {n} のハッシュ {hash} は記録と違います / record {n}'s hash {hash} is not the one recorded"
                    )));
                }
                println!("レコード {n} は記録のとおり / record {n} is as recorded: sha256 {hash}");
            }
            let data = if record.is_some() { None } else { data };
            // A released output package (a directory): its manifest is what the entry names,
            // and every file must be the one its manifest lists (issue 17 §3).
            let package = data.as_ref().filter(|p| p.is_dir()).cloned();
            let data = match &package {
                Some(dir) => Some(dir.join("manifest.json")),
                None => data,
            };
            if let Some(path) = data {
                let sha = hex::encode(Sha256::digest(read_file(&path)?));
                match &entry {
                    Some(Entry::File(f)) if f.sha256 == sha => {}
                    Some(Entry::File(f)) => {
                        return Err(CliError::Check(format!(
                            "{}: SHA-256 {sha} が記録 {} と違います / differs from the recorded {}",
                            path.display(),
                            f.sha256,
                            f.sha256
                        )));
                    }
                    // An event that names its object's content (a deletion certificate, an
                    // application as filed): the file must be that content.
                    Some(Entry::Audit(a)) if a.object_hash.as_deref() == Some(sha.as_str()) => {}
                    Some(Entry::Audit(a)) if a.object_hash.is_some() => {
                        let recorded = a.object_hash.as_deref().unwrap_or_default();
                        return Err(CliError::Check(format!(
                            "{}: SHA-256 {sha} が記録 {recorded} と違います / differs from the recorded {recorded}",
                            path.display()
                        )));
                    }
                    _ => {
                        return Err(CliError::Check(
                            "証明はファイルや内容のハッシュを持つ記録ではありません / the proof is not for a record with a content hash"
                                .into(),
                        ));
                    }
                }
            }
            if let Some(dir) = &package {
                verify_package(dir)?;
            }
            let shown = kura_ledger::entry::printable;
            println!(
                "証明は正しい / proof verified: entry {} of {} (size {})",
                p.index,
                shown(&signed.checkpoint.origin),
                signed.checkpoint.size
            );
            for c in &signed.cosigners {
                println!("  連署 / cosigned by {} at {}", shown(&c.name), c.time.unwrap_or(0));
            }
            if let Some(e) = entry {
                println!("  {}", e.summary());
            }
            Ok(())
        }
    }
}

/// Checks every file a released package's manifest lists against its SHA-256 and size; a file
/// of the directory the manifest does not list is named too.
fn verify_package(dir: &std::path::Path) -> Result<()> {
    let manifest: kura_workspace::airlock::Manifest =
        serde_json::from_slice(&read_file(&dir.join("manifest.json"))?).map_err(|e| CliError::Check(format!("manifest.json: {e}")))?;
    let mut listed = std::collections::BTreeSet::new();
    for f in &manifest.files {
        let path = dir.join(&f.name);
        if f.name.contains('/') || f.name.starts_with('.') {
            return Err(CliError::Check(format!("manifest.json: the file name '{}' is not a plain name", f.name)));
        }
        let bytes = read_file(&path)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != f.sha256 || bytes.len() as u64 != f.bytes {
            return Err(CliError::Check(format!(
                "{}: SHA-256 {sha} が目録の {} と違います / differs from the manifest's {}",
                path.display(),
                f.sha256,
                f.sha256
            )));
        }
        listed.insert(f.name.clone());
        println!("  {}  sha256 {}  {}", f.name, f.sha256, f.status);
    }
    for e in std::fs::read_dir(dir).map_err(|e| CliError::Io { path: dir.display().to_string(), source: e })?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name != "manifest.json" && !name.ends_with(".tlog-proof") && !listed.contains(&name) {
            return Err(CliError::Check(format!("{name}: 目録にないファイルです / not in the package's manifest")));
        }
    }
    println!("パッケージの {} ファイルは目録どおり / the package's {} file(s) match its manifest", listed.len(), listed.len());
    Ok(())
}
