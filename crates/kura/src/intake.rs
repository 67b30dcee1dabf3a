//! `kura intake FILE…` (issue 18 §2, a contract): institutions' UKE files scanned for malware,
//! parsed and validated, hashed with each record into the ledger (HX-12), pseudonymised and
//! loaded as a new generation of the dataset; one result line per file; `--proofs DIR`
//! writes `NAME.tlog-proof` for each accepted file.

use crate::{CliError, Result};
use clap::Args;
use kura_intake::{FileOutcome, Id5Answers, load, read_uke};
use kura_ledger::LedgerError;
use kura_ledger::entry::{Actor, AuditEvent, ENTRY_VERSION, Entry, RecordHasher, hashed_file_entries};
use kura_ledger::log::Log;
use kura_ledger::store::SqlStore;
use kura_store::Home;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// `kura intake …`
#[derive(Debug, Args)]
#[command(after_help = "\
UKE ファイル（レセプト電算: 医科 RECEIPTC.UKE・DPC RECEIPTD.UKE・調剤）を受け入れます。各ファイルについて:
ウイルス検査 → 読み取りと検査（レコード・項目・合計・件数）→ ファイルと各レコードの SHA-256 を台帳へ → ハッシュID
（ID1/ID2/ID4/ID5）を計算（氏名・被保険者番号はメモリ上だけ）→ データセットの新しい世代へ追加。ID5 は同じ場所の
NAME.ID5.CSV（履歴照会の回答: レセプト番号,番号）から。ディレクトリを指定すると中の *.UKE をすべて受け入れます。
ファイルごとに1行の結果を表示し、拒否したファイルがあれば 0 以外で終了します。

Takes in UKE receipt files. For each: a malware scan, then parsing and checks (records, fields, totals,
counts), the SHA-256 of the file and of every record into the ledger, the hashed IDs computed (names and
insurance numbers exist only in memory), and the rows added to a new generation of the dataset. ID5
comes from NAME.ID5.CSV beside the file (the 履歴照会's answers: receipt number,insured number). A
directory means every *.UKE file under it. One result line per file; exits non-zero if any file was
refused.

例 / example:
  kura synth --persons 1000 --seed 7 --format uke --out claims/
  kura intake --proofs proofs/ claims/
  kura proof verify proofs/RECEIPTC.UKE.tlog-proof --log-key \"$(kura ledger key)\" --data claims/…/RECEIPTC.UKE")]
pub struct IntakeArgs {
    /// 提出する医療機関等コード（10桁）：他機関のファイルは拒否 / the submitting institution (10-digit code): files
    /// billing as another are refused
    #[arg(long, value_name = "CODE")]
    institution: Option<String>,
    /// 受け入れた各ファイルの包含証明 NAME.tlog-proof を書き出すディレクトリ / write NAME.tlog-proof for each
    /// accepted file into DIR
    #[arg(long, value_name = "DIR")]
    proofs: Option<PathBuf>,
    /// 追加するデータセット / the dataset to add to
    #[arg(long, default_value = "receipts")]
    dataset: String,
    /// 記録する操作者 / the operator recorded [default: $USER]
    #[arg(long = "as", value_name = "LOGIN")]
    actor: Option<String>,
    /// UKE ファイルかディレクトリ / UKE files or directories
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// The largest UKE file taken in (a month of a large hospital's claims is far below it).
pub const MAX_FILE_BYTES: u64 = 2 << 30;
/// The largest ID5 answer file.
const MAX_ID5_BYTES: u64 = 64 << 20;

/// Whether `p` is a regular file, not through a symbolic link (a FIFO, a device or a link to
/// one could hang the run or never end).
fn regular(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

/// Files named, directories expanded to the `*.UKE` files under them (sorted; symbolic links
/// are not followed, so a link cannot loop or reach outside), each with the name its proof
/// gets: the file's name, or for a directory's files their path below it. Only regular files.
fn expand(paths: &[PathBuf], proofs: bool) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::symlink_metadata(p).map_err(|e| CliError::Io { path: p.display().to_string(), source: e })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).map_err(|e| CliError::Io { path: d.display().to_string(), source: e })? {
                    let e = e.map_err(|e| CliError::Io { path: d.display().to_string(), source: e })?;
                    let kind = e.file_type().map_err(|err| CliError::Io { path: e.path().display().to_string(), source: err })?;
                    let path = e.path();
                    if kind.is_dir() {
                        stack.push(path);
                    } else if kind.is_file() && path.extension().is_some_and(|x| x.eq_ignore_ascii_case("uke")) {
                        found.push(path);
                    }
                }
            }
            found.sort();
            out.extend(found.into_iter().map(|f| {
                let rel = f.strip_prefix(p).map(Path::to_path_buf).unwrap_or_else(|_| f.clone());
                (f, rel)
            }));
        } else if meta.is_file() {
            out.push((p.clone(), PathBuf::from(p.file_name().unwrap_or_default())));
        } else {
            return Err(CliError::Usage(format!(
                "{}: 通常のファイルでもディレクトリでもありません（シンボリックリンク・FIFO・デバイスは受け付けません）/ neither a regular file nor a directory (links, FIFOs and devices are not taken)",
                p.display()
            )));
        }
    }
    if out.is_empty() {
        return Err(CliError::Usage("UKE ファイルがありません / no UKE file to take in".into()));
    }
    for (path, _) in &out {
        let len = std::fs::metadata(path).map_err(|e| CliError::Io { path: path.display().to_string(), source: e })?.len();
        if len > MAX_FILE_BYTES {
            return Err(CliError::Usage(format!(
                "{}: {len} バイトは上限 {MAX_FILE_BYTES} を超えます。分割して送ってください / {len} bytes exceed the limit of {MAX_FILE_BYTES}: send it in volumes",
                path.display()
            )));
        }
    }
    if proofs {
        let mut names = std::collections::HashSet::new();
        for (path, name) in &out {
            if !names.insert(name.clone()) {
                return Err(CliError::Usage(format!(
                    "{}: 同じ名前 {} のファイルが2つあり、証明のファイル名が重なります。ディレクトリごと指定してください / two files named {}: their proofs would collide; give their directory instead",
                    path.display(),
                    name.display(),
                    name.display()
                )));
            }
        }
    }
    Ok(out)
}

/// The ID5 answers' side file: its path and bytes.
type Id5File = (PathBuf, Vec<u8>);

/// The ID5 answers beside a file (`NAME.ID5.CSV`) and the file's bytes; none (every ID5 null)
/// where there is no such file.
fn id5_answers(path: &Path) -> std::result::Result<(Id5Answers, Option<Id5File>), kura_formats::Problem> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let p = path.with_file_name(format!("{stem}.ID5.CSV"));
    let bad = |message: String| kura_formats::Problem { file: p.display().to_string(), line: 0, record: None, field: None, message };
    match std::fs::symlink_metadata(&p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Id5Answers::default(), None)),
        Err(e) => return Err(bad(format!("読めません / cannot read: {e}"))),
        Ok(m) if !m.file_type().is_file() => {
            return Err(bad("通常のファイルではありません / not a regular file".into()));
        }
        Ok(m) if m.len() > MAX_ID5_BYTES => return Err(bad(format!("{} バイトは大きすぎます / {} bytes: too large", m.len(), m.len()))),
        Ok(_) => {}
    }
    let bytes = std::fs::read(&p).map_err(|e| bad(format!("読めません / cannot read: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("ASCII の CSV ではありません / not an ASCII CSV file".into()))?;
    let answers = Id5Answers::parse(&p.display().to_string(), text)?;
    Ok((answers, Some((p, bytes))))
}

/// One file read, scanned and parsed (on any thread), waiting for its turn.
#[derive(Default)]
struct Parsed {
    name: String,
    proof_name: PathBuf,
    sha: String,
    bytes: u64,
    outcome: FileOutcome,
    staged: kura_intake::Staged,
    /// The file's and its records' hashes, where it is to be loaded.
    hashes: Option<kura_ledger::entry::FileHashes>,
    /// The ID5 answers' file and hashes, recorded beside it.
    id5: Option<(String, kura_ledger::entry::FileHashes)>,
    /// Malware found: the engine and the signature.
    found: Option<(String, String)>,
}

/// What one accepted file left for after the load: its ledger entries (the file's first),
/// appended once the dataset is committed.
struct Recorded {
    name: String,
    proof_name: PathBuf,
    entries: Vec<Entry>,
    index: u64,
}

/// Appends each file's entries ([`hashed_file_entries`]): every file's own entry first, all
/// at once so that the ledger's batcher makes them durable together, then all their record
/// hashes, so that a file's entry always comes before its records'. Gives each file's entry
/// index.
pub async fn append_files(log: &Log<SqlStore>, files: &[Vec<Entry>]) -> std::result::Result<Vec<u64>, LedgerError> {
    let mut set = tokio::task::JoinSet::new();
    for (i, es) in files.iter().enumerate() {
        if let Some(e) = es.first() {
            let (bytes, log) = (e.encode()?, log.clone());
            set.spawn(async move { (i, log.append(bytes).await) });
        }
    }
    let mut indexes = vec![0; files.len()];
    while let Some(done) = set.join_next().await {
        let (i, r) = done.map_err(|_| LedgerError::Closed)?;
        if let Some(slot) = indexes.get_mut(i) {
            *slot = r?;
        }
    }
    for es in files {
        for e in es.iter().skip(1) {
            let (bytes, log) = (e.encode()?, log.clone());
            set.spawn(async move { (0, log.append(bytes).await) });
        }
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|_| LedgerError::Closed)?.1?;
    }
    Ok(indexes)
}

/// Runs `kura intake …`.
pub fn intake(home: &Home, a: IntakeArgs) -> Result<()> {
    let files = expand(&a.files, a.proofs.is_some())?;
    if let Some(code) = a.institution.as_deref().filter(|c| c.len() != 10 || !c.bytes().all(|b| b.is_ascii_digit())) {
        return Err(CliError::Usage(format!(
            "--institution {code}: 10桁の医療機関等コード（都道府県2桁・点数表1桁・7桁）を指定してください / give the 10-digit code (prefecture, table, 7 digits)"
        )));
    }
    if let Some(d) = &a.proofs {
        std::fs::create_dir_all(d).map_err(|e| CliError::Io { path: d.display().to_string(), source: e })?;
    }
    let app = crate::app(home)?;
    let rt = crate::runtime()?;
    let log = rt.block_on(app.open_log())?;
    let scanner = kura_scan::Scanner::new(&app.config().scanner);
    // No scan, no intake: a scanner that is missing or does not answer stops the run before
    // anything is read (HIC-S1; never a silent pass).
    rt.block_on(scanner.status()).map_err(|e| CliError::Check(e.to_string()))?;
    let key = home.platform_pseudonym_key()?;
    let user = a.actor.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "operator".into()));
    let total: u64 = files.iter().map(|(f, _)| std::fs::metadata(f).map_or(0, |m| m.len())).sum();
    let pb = crate::count_bar(total, "受け入れ taking in", "バイト bytes");
    let mut refused = 0usize;
    let mut recorded: Vec<Recorded> = Vec::new();
    // Malware found: (file, SHA-256, engine, signature), for the operators' list.
    let mut detections: Vec<(String, String, String, String)> = Vec::new();
    let started = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (outcomes, loaded) = load(home, &a.dataset, |sink| {
        let mut outcomes: Vec<(FileOutcome, String)> = Vec::new();
        let fail = |e: String| kura_intake::IntakeError::Dataset(e);
        // Files are read, scanned and parsed on every core; recorded in the ledger and added
        // to the dataset in the order given.
        let work = |(path, proof_name): &(PathBuf, PathBuf)| -> std::result::Result<Parsed, String> {
            let name = path.display().to_string();
            if !regular(path) {
                return Err(format!("{name}: 通常のファイルではなくなりました / no longer a regular file"));
            }
            let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
            let sha = hex::encode(Sha256::digest(&bytes));
            let refuse = |message: String| FileOutcome {
                name: name.clone(),
                refused: Some(kura_formats::Problem { file: name.clone(), line: 0, record: None, field: None, message }),
                ..FileOutcome::default()
            };
            // No scan, no intake: a scanner that stops answering stops the run.
            let scanned = rt.block_on(scanner.scan(&bytes)).map_err(|e| e.to_string())?;
            let mut parsed =
                Parsed { name: name.clone(), proof_name: proof_name.clone(), sha, bytes: bytes.len() as u64, ..Parsed::default() };
            match (&scanned.verdict, id5_answers(path)) {
                (kura_scan::Verdict::Found { signature }, _) => {
                    parsed.outcome = refuse(format!("マルウェアを検出しました（{signature}）/ malware found ({signature})"));
                    parsed.found = Some((scanned.engine.version.clone(), signature.clone()));
                }
                (_, Err(p)) => parsed.outcome = FileOutcome { name: name.clone(), refused: Some(p), ..FileOutcome::default() },
                (kura_scan::Verdict::Clean, Ok((id5, id5_file))) => {
                    // One read: the parser reads through the hasher, so the records hashed
                    // are the bytes parsed.
                    let mut hasher = RecordHasher::new(bytes.as_slice());
                    let (outcome, staged) = read_uke(&name, &mut hasher, &id5, &key, a.institution.as_deref());
                    let _ = std::io::copy(&mut hasher, &mut std::io::sink()); // what the parser left unread
                    parsed.hashes = outcome.loaded().then(|| hasher.finish());
                    parsed.id5 = id5_file.filter(|_| outcome.loaded()).map(|(p, b)| {
                        let mut h = RecordHasher::new(b.as_slice());
                        let _ = std::io::copy(&mut h, &mut std::io::sink());
                        (p.display().to_string(), h.finish())
                    });
                    parsed.outcome = outcome;
                    parsed.staged = staged;
                }
            }
            Ok(parsed)
        };
        kura_intake::ordered(&files, threads, work, |parsed| {
            let mut parsed = parsed.map_err(fail)?;
            pb.inc(parsed.bytes);
            if parsed.hashes.is_some() && sink.holds(&parsed.sha) {
                parsed.outcome.refused = Some(kura_formats::Problem {
                    file: parsed.name.clone(),
                    line: 0,
                    record: None,
                    field: None,
                    message: format!(
                        "同じ内容のファイルを受け入れ済みです（SHA-256 {}）。二重に読み込みません / a file with this content is already taken in (SHA-256 {}): it is not loaded twice",
                        parsed.sha, parsed.sha
                    ),
                });
                parsed.outcome.rejected.clear();
            }
            if let (Some(hashes), None) = (&parsed.hashes, &parsed.outcome.refused) {
                let o = &parsed.outcome;
                let actor = Actor { user: user.clone(), institution: o.institution.clone().unwrap_or_default(), cert: String::new() };
                let mut entries = hashed_file_entries(&parsed.name, hashes, &actor, &log.now());
                if let Some((name, h)) = &parsed.id5 {
                    entries.extend(hashed_file_entries(name, h, &actor, &log.now()));
                }
                let info = kura_intake::FileInfo { sha256: &parsed.sha, name: &parsed.name, outcome: &parsed.outcome };
                let ids = sink.add(&parsed.staged, &info)?;
                parsed.outcome.receipt_ids = ids;
                recorded.push(Recorded { name: parsed.name.clone(), proof_name: parsed.proof_name.clone(), entries, index: 0 });
            }
            if parsed.outcome.refused.is_some() {
                refused += 1;
            }
            if let Some((engine, signature)) = parsed.found.take() {
                detections.push((parsed.name.clone(), parsed.sha.clone(), engine, signature));
            }
            outcomes.push((parsed.outcome, parsed.sha));
            Ok(())
        })?;
        Ok(outcomes)
    })
    .map_err(|e| CliError::Check(e.to_string()))?;
    pb.finish_and_clear();
    // The files' hashes go into the ledger once their rows are committed: every file the log
    // records as taken in is in the dataset. (A run that fails before the commit records
    // nothing but the refusals below.)
    let entries: Vec<Vec<Entry>> = recorded.iter().map(|r| r.entries.clone()).collect();
    let indexes = rt.block_on(append_files(&log, &entries))?;
    for (r, i) in recorded.iter_mut().zip(indexes) {
        r.index = i;
    }
    let secs = started.elapsed().as_secs_f64();
    let by_name: std::collections::HashMap<&str, u64> = recorded.iter().map(|r| (r.name.as_str(), r.index)).collect();
    for (o, sha) in &outcomes {
        match &o.refused {
            Some(p) => println!("拒否 refused {}: {p}", o.name),
            None => {
                println!(
                    "受理 accepted {}: {} 件 receipts, 差戻し {} 件 rejected, sha256 {sha}, 台帳 entry {}",
                    o.name,
                    o.accepted,
                    o.rejected.len(),
                    by_name.get(o.name.as_str()).map_or("-".to_string(), u64::to_string)
                );
                for r in &o.rejected {
                    for p in &r.problems {
                        println!("  差戻し rejected receipt {} (line {}): {p}", r.number, r.line);
                    }
                }
            }
        }
    }
    // Malware is listed where the operators look (`kura scanner status`) with its ledger
    // entry, as the airlock's scans are (HIC-S1).
    if !detections.is_empty() {
        rt.block_on(async {
            let research = app.research(app.accounts().await?)?;
            let caller = kura_workflows::Caller::console_as(&user);
            for (file_name, sha256, engine, signature) in &detections {
                let found = kura_workflows::Found { direction: "intake", object: "intake", file_name, sha256, engine, signature };
                research.record_detection(&caller, &found).await.map_err(|e| CliError::Check(e.to_string()))?;
            }
            Ok::<(), CliError>(())
        })?;
    }
    // Other refused files are recorded too (by their hash only): the sender and the operator
    // can show what arrived and why it was not loaded.
    rt.block_on(async {
        let detected: std::collections::HashSet<&str> = detections.iter().map(|d| d.1.as_str()).collect();
        for (o, sha) in outcomes.iter().filter(|(o, sha)| o.refused.is_some() && !detected.contains(sha.as_str())) {
            let event = Entry::Audit(AuditEvent {
                v: ENTRY_VERSION,
                time: log.now(),
                actor: Actor { user: user.clone(), institution: a.institution.clone().unwrap_or_default(), cert: String::new() },
                action: "intake.refused".into(),
                object: o.name.clone(),
                object_hash: Some(sha.clone()),
                outcome: "denied".into(),
                request: String::new(),
                // Problems name places and expectations, never an identifying value.
                detail: o.refused.as_ref().map(|p| p.message.clone()),
            });
            log.record(&event).await?;
        }
        if let Some(l) = &loaded {
            let event = Entry::Audit(AuditEvent {
                v: ENTRY_VERSION,
                time: log.now(),
                actor: Actor { user: user.clone(), institution: a.institution.clone().unwrap_or_default(), cert: String::new() },
                action: "intake.load".into(),
                object: format!("dataset/{}/{}", l.entry.name, l.entry.generation),
                object_hash: None,
                outcome: "ok".into(),
                request: String::new(),
                detail: Some(format!(
                    "{} files, {} receipts added, {} rejected, {} carried over",
                    recorded.len(),
                    l.added_receipts,
                    outcomes.iter().map(|(o, _)| o.rejected.len()).sum::<usize>(),
                    l.carried_receipts
                )),
            });
            log.record(&event).await?;
        }
        Ok::<(), kura_ledger::LedgerError>(())
    })?;
    match &loaded {
        Some(l) => println!(
            "データセット '{}' 世代 {} / dataset '{}' generation {}: {} 件追加 receipts added, {} 件引き継ぎ carried over, {:.1} MB/s",
            l.entry.name,
            l.entry.generation,
            l.entry.name,
            l.entry.generation,
            l.added_receipts,
            l.carried_receipts,
            total as f64 / 1e6 / secs.max(1e-9)
        ),
        None => println!("追加したレセプトはありません / no receipt was added; the dataset is unchanged"),
    }
    if let Some(dir) = &a.proofs {
        let written = rt.block_on(async {
            for r in &recorded {
                let entry = r.entries.first().map(Entry::encode).transpose()?;
                let proof = log.prove(r.index, entry).await?;
                let mut out = dir.join(&r.proof_name).into_os_string();
                out.push(".tlog-proof");
                let out = PathBuf::from(out);
                if let Some(parent) = out.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| CliError::Io { path: parent.display().to_string(), source: e })?;
                }
                // A new file only: never through a link, never over an existing one.
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&out)
                    .map_err(|e| CliError::Io { path: out.display().to_string(), source: e })?;
                std::io::Write::write_all(&mut f, &proof.to_bytes())
                    .map_err(|e| CliError::Io { path: out.display().to_string(), source: e })?;
            }
            Ok::<(), CliError>(())
        });
        if let Err(e) = written {
            return Err(CliError::Check(format!(
                "データは受け入れ・記録済みですが、証明を書き出せませんでした（再実行せず kura ledger prove --sha256 で作成してください）/ the files are loaded and recorded, but their proofs could not be written ({e}); do not run intake again: write them with kura ledger prove --sha256 SHA"
            )));
        }
    }
    if refused > 0 {
        return Err(CliError::Check(format!("{refused} 件のファイルを拒否しました / {refused} file(s) refused")));
    }
    Ok(())
}
