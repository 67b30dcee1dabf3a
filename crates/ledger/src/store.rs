//! Where the log keeps its entries and checkpoints.
//!
//! [`LedgerStore`] is the storage contract: durable, gap-free sequencing of entries, and the
//! history of signed checkpoints. [`SqlStore`] keeps them in Kura's store of record
//! ([`kura_db::Db`]: SQLite by default, PostgreSQL supported, same tables and statements).
//! Because the entries live in the application's own database, an audit event commits **in the
//! same transaction** as the state change it records ([`append_in`], HIC-S5): either both are
//! durable or neither is. Once 256 consecutive entries are stored they are sealed into one row
//! holding their tlog-tiles entry bundle, which makes reading the log (the full audit reads
//! every entry) a matter of a few thousand rows instead of millions. Published tiles go to a
//! [`kura_tlog::tiles::TileStore`] (a directory, later an object store).

use crate::{LedgerError, TlogError};
use kura_db::Db;
use kura_tlog::tile::{TILE_WIDTH, decode_bundle, encode_bundle};
use sqlx::{AnyConnection, Row};
use std::future::Future;
use std::path::Path;

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

/// Most rows in one multi-row INSERT (two parameters each; SQLite allows 32,766 parameters,
/// PostgreSQL 65,535).
const MAX_ROWS_PER_INSERT: usize = 8_000;

/// Number of entries stored, whichever table holds the last one (a macro so that statements
/// can embed it with `concat!`).
macro_rules! size_sql {
    () => {
        "SELECT CASE WHEN e > b THEN e ELSE b END FROM \
         (SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries) AS e, \
         (SELECT COALESCE(MAX(bundle) + 1, 0) * 256 FROM ledger_bundles) AS b) AS size"
    };
}
const SIZE_SQL: &str = size_sql!();

/// The store in Kura's store of record ([`kura_db::Db`], SQLite or PostgreSQL): tables
/// `ledger_entries` (entries not yet sealed), `ledger_bundles` (full bundles of 256 entries, in
/// tlog-tiles entry-bundle encoding, keyed by bundle index), `ledger_checkpoints` and
/// `ledger_meta`, created by the store of record's migrations. Appends take the store's write
/// lock ([`Db::begin_write`]), so indexes are gap-free on both backends.
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: Db,
}

impl SqlStore {
    /// Opens (creating and migrating if needed) a SQLite database file of its own.
    pub async fn open(path: &Path) -> Result<SqlStore> {
        Ok(SqlStore { db: Db::open_sqlite(path).await? })
    }

    /// Uses the application's store of record (migrated).
    pub fn new(db: Db) -> SqlStore {
        SqlStore { db }
    }

    /// The store of record, for the application's own transactions.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// Appends one entry inside the caller's transaction and returns its index; the entry becomes
/// durable exactly when the caller's transaction commits (HIC-S5). Begin the transaction with
/// [`Db::begin_write`] so that concurrent writers queue instead of failing (on PostgreSQL this
/// function takes the write lock itself if the caller has not). Call
/// [`crate::log::Log::sync`] after the commit to have the log integrate it.
pub async fn append_in(conn: &mut AnyConnection, entry: &[u8]) -> Result<u64> {
    if entry.len() > kura_tlog::tile::MAX_ENTRY_LEN {
        return Err(LedgerError::Tlog(TlogError::EntryTooLong(entry.len())));
    }
    kura_db::lock_for_write(conn).await?;
    let row = sqlx::query(concat!("INSERT INTO ledger_entries (idx, data) VALUES ((", size_sql!(), "), $1) RETURNING idx"))
        .bind(entry)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.get::<i64, _>(0) as u64)
}

impl LedgerStore for SqlStore {
    async fn size(&self) -> Result<u64> {
        Ok(sqlx::query_scalar::<_, i64>(SIZE_SQL).fetch_one(self.db.pool()).await? as u64)
    }

    async fn append(&self, entries: &[Vec<u8>]) -> Result<u64> {
        if let Some(e) = entries.iter().find(|e| e.len() > kura_tlog::tile::MAX_ENTRY_LEN) {
            return Err(LedgerError::Tlog(TlogError::EntryTooLong(e.len())));
        }
        let mut tx = self.db.begin_write().await?;
        let first: i64 = sqlx::query_scalar(SIZE_SQL).fetch_one(&mut *tx).await?;
        let mut next = first;
        for chunk in entries.chunks(MAX_ROWS_PER_INSERT) {
            let mut sql = String::with_capacity(40 + chunk.len() * 6);
            sql.push_str("INSERT INTO ledger_entries (idx, data) VALUES ");
            for i in 0..chunk.len() {
                let sep = if i == 0 { "" } else { "," };
                sql.push_str(&format!("{sep}(${},${})", 2 * i + 1, 2 * i + 2));
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
            sqlx::query_as("SELECT bundle, data FROM ledger_bundles WHERE bundle >= $1 AND bundle < $2 ORDER BY bundle")
                .bind((start / TILE_WIDTH) as i64)
                .bind(end.div_ceil(TILE_WIDTH) as i64)
                .fetch_all(self.db.pool())
                .await?;
        for (b, data) in &bundles {
            let b = *b as u64;
            let entries = sealed_entries(b, data)?;
            for (k, e) in entries.into_iter().enumerate() {
                let i = b * TILE_WIDTH + k as u64;
                if let Some(slot) = i.checked_sub(start).and_then(|k| out.get_mut(k as usize)) {
                    *slot = Some(e.to_vec());
                }
            }
        }
        if out.iter().any(Option::is_none) {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT idx, data FROM ledger_entries WHERE idx >= $1 AND idx < $2")
                .bind(start as i64)
                .bind(end as i64)
                .fetch_all(self.db.pool())
                .await?;
            for (i, data) in rows {
                if let Some(slot) = (i as u64).checked_sub(start).and_then(|k| out.get_mut(k as usize))
                    && slot.is_none()
                {
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
        let mut tx = self.db.begin_write().await?;
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT data FROM ledger_bundles WHERE bundle = $1").bind(b as i64).fetch_optional(&mut *tx).await?;
        match sealed.as_deref().map(|data| sealed_entries(b, data)) {
            Some(Ok(entries)) => {
                let k = (index % TILE_WIDTH) as usize;
                let bundle = encode_bundle(entries.iter().enumerate().map(|(j, e)| if j == k { entry } else { *e }))?;
                sqlx::query("UPDATE ledger_bundles SET data = $1 WHERE bundle = $2").bind(bundle).bind(b as i64).execute(&mut *tx).await?;
            }
            damaged_or_unsealed => {
                // A bundle row too damaged to decode is dropped: the repair restores each of its
                // entries through here, and the next seal rebuilds the bundle.
                if damaged_or_unsealed.is_some() {
                    sqlx::query("DELETE FROM ledger_bundles WHERE bundle = $1").bind(b as i64).execute(&mut *tx).await?;
                }
                sqlx::query("INSERT INTO ledger_entries (idx, data) VALUES ($1, $2) ON CONFLICT (idx) DO UPDATE SET data = excluded.data")
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
        sqlx::query("INSERT INTO ledger_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO UPDATE SET note = excluded.note")
            .bind(size as i64)
            .bind(note)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let rows = sqlx::query("SELECT size, note FROM ledger_checkpoints ORDER BY size").fetch_all(self.db.pool()).await?;
        Ok(rows.iter().map(|r| (r.get::<i64, _>(0) as u64, r.get::<Vec<u8>, _>(1))).collect())
    }

    async fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let row =
            sqlx::query("SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1").fetch_optional(self.db.pool()).await?;
        Ok(row.map(|r| (r.get::<i64, _>(0) as u64, r.get::<Vec<u8>, _>(1))))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM ledger_meta WHERE key = $1").bind(key).fetch_optional(self.db.pool()).await?;
        Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO ledger_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn seal(&self) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
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
async fn seal_in(conn: &mut AnyConnection) -> Result<()> {
    let full: Vec<i64> = sqlx::query_scalar(
        "SELECT t.b FROM (SELECT idx / 256 AS b, count(*) AS n FROM ledger_entries GROUP BY idx / 256) AS t \
         WHERE t.n = 256 AND NOT EXISTS (SELECT 1 FROM ledger_bundles WHERE bundle = t.b) ORDER BY t.b",
    )
    .fetch_all(&mut *conn)
    .await?;
    for b in full {
        let (lo, hi) = (b * TILE_WIDTH as i64, (b + 1) * TILE_WIDTH as i64);
        let entries: Vec<Vec<u8>> = sqlx::query_scalar("SELECT data FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx")
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *conn)
            .await?;
        let bundle = encode_bundle(entries.iter().map(Vec::as_slice))?;
        sqlx::query("INSERT INTO ledger_bundles (bundle, data) VALUES ($1, $2)").bind(b).bind(bundle).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM ledger_entries WHERE idx >= $1 AND idx < $2").bind(lo).bind(hi).execute(&mut *conn).await?;
    }
    Ok(())
}
