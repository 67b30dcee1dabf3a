//! Where the log keeps its entries and checkpoints.
//!
//! [`LedgerStore`] is the storage contract: durable, gap-free sequencing of entries, and the
//! history of signed checkpoints. [`SqliteStore`] is the embedded default. Because the entries
//! live in the application's own SQLite database, an audit event commits **in the same
//! transaction** as the state change it records ([`append_in`], HIC-S5): either both are
//! durable or neither is. A PostgreSQL store implements the same contract with the same
//! tables; published tiles go to a [`crate::tiles::TileStore`] (a directory, later an object store).

use crate::LedgerError;
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
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ledger_entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
];

/// Most parameters in one SQLite statement (the library's limit is 32,766).
const MAX_ROWS_PER_INSERT: usize = 8_000;

/// The embedded store: tables `ledger_entries`, `ledger_checkpoints` and `ledger_meta` in a
/// SQLite database in WAL mode with `synchronous=FULL`, so a commit is on disk when it returns.
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
    let row = sqlx::query(
        "INSERT INTO ledger_entries (idx, data) VALUES ((SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries), ?) RETURNING idx",
    )
    .bind(entry)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.get::<i64, _>(0) as u64)
}

impl LedgerStore for SqliteStore {
    async fn size(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries").fetch_one(&self.pool).await?;
        Ok(row.get::<i64, _>(0) as u64)
    }

    async fn append(&self, entries: &[Vec<u8>]) -> Result<u64> {
        if let Some(e) = entries.iter().find(|e| e.len() > crate::tile::MAX_ENTRY_LEN) {
            return Err(LedgerError::EntryTooLong(e.len()));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let first = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries").fetch_one(&mut *tx).await?.get::<i64, _>(0);
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
        tx.commit().await?;
        Ok(first as u64)
    }

    async fn read(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>> {
        let rows = sqlx::query("SELECT idx, data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx")
            .bind(start as i64)
            .bind(end as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let idx = r.get::<i64, _>(0) as u64;
            if idx != start + i as u64 {
                return Err(LedgerError::Tampered(format!("entry {} is missing from the database", start + i as u64)));
            }
            out.push(r.get::<Vec<u8>, _>(1));
        }
        if out.len() as u64 != end.saturating_sub(start) {
            return Err(LedgerError::Tampered(format!("entries {}..{end} are missing from the database", start + out.len() as u64)));
        }
        Ok(out)
    }

    async fn replace(&self, index: u64, entry: &[u8]) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO ledger_entries (idx, data) VALUES (?, ?)")
            .bind(index as i64)
            .bind(entry)
            .execute(&self.pool)
            .await?;
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
}
