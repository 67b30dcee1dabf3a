//! Where the log keeps its entries and checkpoints.
//!
//! [`LedgerStore`] is the storage contract: durable, gap-free sequencing of entries, and the
//! history of signed checkpoints. [`SqliteStore`] is the embedded default. Because the entries
//! live in the application's own SQLite database, an audit event commits **in the same
//! transaction** as the state change it records ([`append_in`], HIC-S5): either both are
//! durable or neither is. Once 256 consecutive entries are stored they are sealed into one row
//! holding their tlog-tiles entry bundle, which makes reading the log (the full audit reads
//! every entry) a matter of a few thousand rows instead of millions. A PostgreSQL store
//! implements the same contract with the same tables; published tiles go to a [`crate::tiles::TileStore`] (a directory, later an object store).

use crate::LedgerError;
use crate::tile::{TILE_WIDTH, decode_bundle, encode_bundle};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

type Result<T> = std::result::Result<T, LedgerError>;

/// The storage contract of a log.
pub trait LedgerStore: Send + Sync + 'static {
    /// Number of entries stored.
    fn size(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Appends entries durably (committed and synced when this returns); returns the index of
    /// the first.
    fn append(&self, entries: &[Vec<u8>]) -> impl Future<Output = Result<u64>> + Send;
    /// Entries `start..end`.
    fn read(&self, start: u64, end: u64) -> impl Future<Output = Result<Vec<Vec<u8>>>> + Send;
    /// Replaces a stored entry (repair only, after it was checked against a signed root).
    fn replace(&self, index: u64, entry: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Records a published checkpoint.
    fn add_checkpoint(&self, size: u64, note: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Every published checkpoint, by ascending size.
    fn checkpoints(&self) -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>>> + Send;
    /// The latest published checkpoint.
    fn latest_checkpoint(&self) -> impl Future<Output = Result<Option<(u64, Vec<u8>)>>> + Send;
    /// A small named value (witness sizes, the pending checkpoint).
    fn get_meta(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// Sets a named value.
    fn set_meta(&self, key: &str, value: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Compacts entries that applications committed one by one (stores without a compact form
    /// do nothing). Never changes what [`LedgerStore::read`] returns.
    fn seal(&self) -> impl Future<Output = Result<()>> + Send;
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ledger_entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_bundles (bundle INTEGER PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
];

/// Most parameters in one SQLite statement (the library's limit is 32,766).
const MAX_ROWS_PER_INSERT: usize = 8_000;

/// Number of entries stored, whichever table holds the last one (a macro so that statements
/// can embed it with `concat!`).
macro_rules! size_sql {
    () => {
        "SELECT max((SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries), \
         (SELECT COALESCE(MAX(bundle) + 1, 0) * 256 FROM ledger_bundles))"
    };
}
const SIZE_SQL: &str = size_sql!();

/// The embedded store: tables `ledger_entries` (entries not yet sealed), `ledger_bundles`
/// (full bundles of 256 entries, in tlog-tiles entry-bundle encoding, keyed by bundle index),
/// `ledger_checkpoints` and `ledger_meta` in a SQLite database in WAL mode with `synchronous=FULL`, so a commit is on disk when it returns.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and the ledger's tables.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        SqliteStore::with_pool(pool).await
    }

    /// Uses the application's pool; creates the ledger's tables if missing.
    pub async fn with_pool(pool: SqlitePool) -> Result<SqliteStore> {
        for s in SCHEMA {
            sqlx::query(*s).execute(&pool).await?;
        }
        Ok(SqliteStore { pool })
    }

    /// The pool, for the application's own transactions.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Appends one entry inside the caller's transaction and returns its index; the entry becomes
/// durable exactly when the caller's transaction commits (HIC-S5). Begin the transaction with
/// `BEGIN IMMEDIATE` so that concurrent writers queue instead of failing. Call
/// [`crate::log::Log::sync`] after the commit to have the log integrate it.
pub async fn append_in(conn: &mut SqliteConnection, entry: &[u8]) -> Result<u64> {
    if entry.len() > crate::tile::MAX_ENTRY_LEN {
        return Err(LedgerError::EntryTooLong(entry.len()));
    }
    let row = sqlx::query(concat!("INSERT INTO ledger_entries (idx, data) VALUES ((", size_sql!(), "), ?) RETURNING idx"))
        .bind(entry)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.get::<i64, _>(0) as u64)
}

impl LedgerStore for SqliteStore {
    async fn size(&self) -> Result<u64> {
        Ok(sqlx::query_scalar::<_, i64>(SIZE_SQL).fetch_one(&self.pool).await? as u64)
    }

    async fn append(&self, entries: &[Vec<u8>]) -> Result<u64> {
        if let Some(e) = entries.iter().find(|e| e.len() > crate::tile::MAX_ENTRY_LEN) {
            return Err(LedgerError::EntryTooLong(e.len()));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let first: i64 = sqlx::query_scalar(SIZE_SQL).fetch_one(&mut *tx).await?;
        let mut next = first;
        for chunk in entries.chunks(MAX_ROWS_PER_INSERT) {
            let mut sql = String::with_capacity(40 + chunk.len() * 6);
            sql.push_str("INSERT INTO ledger_entries (idx, data) VALUES ");
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 { "(?,?)" } else { ",(?,?)" });
            }
            // Only placeholders are built here; the data is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q.bind(next).bind(e.as_slice());
                next += 1;
            }
            q.execute(&mut *tx).await?;
        }
        seal_in(&mut tx).await?;
        tx.commit().await?;
        Ok(first as u64)
    }

    async fn read(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let mut out: Vec<Option<Vec<u8>>> = vec![None; (end - start) as usize];
        let bundles: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT bundle, data FROM ledger_bundles WHERE bundle >= ? AND bundle < ? ORDER BY bundle")
                .bind((start / TILE_WIDTH) as i64)
                .bind(end.div_ceil(TILE_WIDTH) as i64)
                .fetch_all(&self.pool)
                .await?;
        for (b, data) in &bundles {
            let b = *b as u64;
            let entries = sealed_entries(b, data)?;
            for (k, e) in entries.into_iter().enumerate() {
                let i = b * TILE_WIDTH + k as u64;
                if (start..end).contains(&i) {
                    out[(i - start) as usize] = Some(e.to_vec());
                }
            }
        }
        if out.iter().any(Option::is_none) {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT idx, data FROM ledger_entries WHERE idx >= ? AND idx < ?")
                .bind(start as i64)
                .bind(end as i64)
                .fetch_all(&self.pool)
                .await?;
            for (i, data) in rows {
                let slot = &mut out[(i as u64 - start) as usize];
                if slot.is_none() {
                    *slot = Some(data);
                }
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(k, e)| e.ok_or_else(|| LedgerError::Tampered(format!("entry {} is missing from the database", start + k as u64))))
            .collect()
    }

    async fn replace(&self, index: u64, entry: &[u8]) -> Result<()> {
        let b = index / TILE_WIDTH;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT data FROM ledger_bundles WHERE bundle = ?").bind(b as i64).fetch_optional(&mut *tx).await?;
        match sealed.as_deref().map(|data| sealed_entries(b, data)) {
            Some(Ok(entries)) => {
                let k = (index % TILE_WIDTH) as usize;
                let bundle = encode_bundle(entries.iter().enumerate().map(|(j, e)| if j == k { entry } else { *e }))?;
                sqlx::query("UPDATE ledger_bundles SET data = ? WHERE bundle = ?").bind(bundle).bind(b as i64).execute(&mut *tx).await?;
            }
            damaged_or_unsealed => {
                // A bundle row too damaged to decode is dropped: the repair restores each of its
                // entries through here, and the next seal rebuilds the bundle.
                if damaged_or_unsealed.is_some() {
                    sqlx::query("DELETE FROM ledger_bundles WHERE bundle = ?").bind(b as i64).execute(&mut *tx).await?;
                }
                sqlx::query("INSERT OR REPLACE INTO ledger_entries (idx, data) VALUES (?, ?)")
                    .bind(index as i64)
                    .bind(entry)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn add_checkpoint(&self, size: u64, note: &[u8]) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO ledger_checkpoints (size, note) VALUES (?, ?)")
            .bind(size as i64)
            .bind(note)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let rows = sqlx::query("SELECT size, note FROM ledger_checkpoints ORDER BY size").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get::<i64, _>(0) as u64, r.get::<Vec<u8>, _>(1))).collect())
    }

    async fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let row = sqlx::query("SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1").fetch_optional(&self.pool).await?;
        Ok(row.map(|r| (r.get::<i64, _>(0) as u64, r.get::<Vec<u8>, _>(1))))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM ledger_meta WHERE key = ?").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO ledger_meta (key, value) VALUES (?, ?)").bind(key).bind(value).execute(&self.pool).await?;
        Ok(())
    }

    async fn seal(&self) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        seal_in(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The 256 entries of a sealed bundle row; a row that does not decode to exactly 256 entries
/// is reported as damaged, naming the bundle and its entries.
fn sealed_entries(b: u64, data: &[u8]) -> Result<Vec<&[u8]>> {
    let damaged = |why: String| {
        LedgerError::Tampered(format!(
            "bundle {b} in the database (entries {}..{}) is damaged: {why}",
            b * TILE_WIDTH,
            (b + 1) * TILE_WIDTH
        ))
    };
    let entries = decode_bundle(data).map_err(|e| damaged(e.to_string()))?;
    if entries.len() as u64 != TILE_WIDTH {
        return Err(damaged(format!("it holds {} entries", entries.len())));
    }
    Ok(entries)
}

/// Seals every complete group of 256 unsealed entries into one bundle row, inside the caller's
/// transaction.
async fn seal_in(conn: &mut SqliteConnection) -> Result<()> {
    let full: Vec<i64> = sqlx::query_scalar(
        "SELECT idx / 256 AS b FROM ledger_entries GROUP BY b HAVING count(*) = 256 \
         AND NOT EXISTS (SELECT 1 FROM ledger_bundles WHERE bundle = b) ORDER BY b",
    )
    .fetch_all(&mut *conn)
    .await?;
    for b in full {
        let (lo, hi) = (b * TILE_WIDTH as i64, (b + 1) * TILE_WIDTH as i64);
        let entries: Vec<Vec<u8>> = sqlx::query_scalar("SELECT data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx")
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *conn)
            .await?;
        let bundle = encode_bundle(entries.iter().map(Vec::as_slice))?;
        sqlx::query("INSERT INTO ledger_bundles (bundle, data) VALUES (?, ?)").bind(b).bind(bundle).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM ledger_entries WHERE idx >= ? AND idx < ?").bind(lo).bind(hi).execute(&mut *conn).await?;
    }
    Ok(())
}
