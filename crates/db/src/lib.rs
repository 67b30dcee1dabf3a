//! # kura-db — Kura's store of record
//!
//! 記録の保存先。既定は組み込みの SQLite、運用では PostgreSQL。どちらも同じ番号の移行（migration）
//! で同じ表を持ち、同じ SQL 文で読み書きする。
//!
//! One handle, [`Db`], over either backend:
//!
//! - **SQLite** (the embedded default, `kura demo` on a laptop): one file in WAL mode with
//!   `synchronous=FULL`, so a commit is on disk when it returns; writers queue on
//!   `BEGIN IMMEDIATE` ([`Db::begin_write`]).
//! - **PostgreSQL** (an agency's cluster): the same tables, the same statements.
//!
//! Statements are written once, in the dialect both accept: `$1`-style placeholders (SQLite
//! reads `$1` as a parameter too), `INSERT … ON CONFLICT … DO UPDATE`, `RETURNING`, `CASE`
//! instead of two-argument `max`. The schema is the one place where the backends differ
//! (`BLOB`/`BYTEA`, `INTEGER`/`BIGINT`), so each backend has its own migration files under
//! `migrations/<backend>/`, with **the same version numbers and descriptions**; a test checks
//! that the two sets stay in step.
//!
//! ```no_run
//! # async fn f() -> Result<(), kura_db::DbError> {
//! let db = kura_db::Db::connect("sqlite:///var/lib/kura/state.db").await?;
//! db.migrate().await?;
//! let mut tx = db.begin_write().await?;
//! sqlx::query("INSERT INTO institutions (code, name, created_at) VALUES ($1, $2, $3)")
//!     .bind("1310000001").bind("Kura Hospital").bind(0_i64)
//!     .execute(&mut *tx).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Executor, SqlSafeStr, Transaction};
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub use sqlx;

/// Everything that can go wrong with the store of record.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database URL is not one Kura can use.
    #[error("データベースURLが不正です / bad database URL '{0}': use sqlite://PATH (the default) or postgres://USER@HOST:PORT/DB")]
    Url(String),
    /// A statement or connection failed.
    #[error("データベース / database: {0}")]
    Sql(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("データベースの移行に失敗しました / database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

type Result<T> = std::result::Result<T, DbError>;

/// Which database engine holds the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, embedded, one file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend's name as used in URLs and migration directories.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// One migration, as embedded in the binary: version, description, SQL per backend.
struct Step {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The migrations, in order. Each version exists for both backends (checked by a test).
const STEPS: &[Step] = &[
    Step {
        version: 1,
        description: "ledger",
        sqlite: include_str!("../migrations/sqlite/0001_ledger.sql"),
        postgres: include_str!("../migrations/postgres/0001_ledger.sql"),
    },
    Step {
        version: 2,
        description: "accounts",
        sqlite: include_str!("../migrations/sqlite/0002_accounts.sql"),
        postgres: include_str!("../migrations/postgres/0002_accounts.sql"),
    },
    Step {
        version: 3,
        description: "hardening",
        sqlite: include_str!("../migrations/sqlite/0003_hardening.sql"),
        postgres: include_str!("../migrations/postgres/0003_hardening.sql"),
    },
    Step {
        version: 4,
        description: "research",
        sqlite: include_str!("../migrations/sqlite/0004_research.sql"),
        postgres: include_str!("../migrations/postgres/0004_research.sql"),
    },
    Step {
        version: 5,
        description: "workspaces",
        sqlite: include_str!("../migrations/sqlite/0005_workspaces.sql"),
        postgres: include_str!("../migrations/postgres/0005_workspaces.sql"),
    },
    Step {
        version: 6,
        description: "members",
        sqlite: include_str!("../migrations/sqlite/0006_members.sql"),
        postgres: include_str!("../migrations/postgres/0006_members.sql"),
    },
    Step {
        version: 7,
        description: "attachments",
        sqlite: include_str!("../migrations/sqlite/0007_attachments.sql"),
        postgres: include_str!("../migrations/postgres/0007_attachments.sql"),
    },
    Step {
        version: 8,
        description: "outputs",
        sqlite: include_str!("../migrations/sqlite/0008_outputs.sql"),
        postgres: include_str!("../migrations/postgres/0008_outputs.sql"),
    },
    Step {
        version: 9,
        description: "bringin",
        sqlite: include_str!("../migrations/sqlite/0009_bringin.sql"),
        postgres: include_str!("../migrations/postgres/0009_bringin.sql"),
    },
    Step {
        version: 10,
        description: "secrets",
        sqlite: include_str!("../migrations/sqlite/0010_secrets.sql"),
        postgres: include_str!("../migrations/postgres/0010_secrets.sql"),
    },
    Step {
        version: 11,
        description: "public_tables",
        sqlite: include_str!("../migrations/sqlite/0011_public_tables.sql"),
        postgres: include_str!("../migrations/postgres/0011_public_tables.sql"),
    },
    Step {
        version: 12,
        description: "exchange",
        sqlite: include_str!("../migrations/sqlite/0012_exchange.sql"),
        postgres: include_str!("../migrations/postgres/0012_exchange.sql"),
    },
];

/// The versions of the embedded migrations, in order.
pub fn migration_versions() -> Vec<(i64, &'static str)> {
    STEPS.iter().map(|s| (s.version, s.description)).collect()
}

/// Key of the PostgreSQL advisory lock that serialises writers the way SQLite's
/// `BEGIN IMMEDIATE` does (an arbitrary constant: "KURA" in ASCII).
pub const WRITE_LOCK: i64 = 0x4B55_5241;

/// A pool of connections to the store of record.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects to `url`: `sqlite://PATH` (created if missing) or `postgres://…`.
    /// Call [`Db::migrate`] before use.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::Url(redact(url)));
        };
        let mut url = url.to_string();
        if backend == Backend::Sqlite && !url.contains('?') {
            url.push_str("?mode=rwc");
        }
        let opts = AnyConnectOptions::from_str(&url).map_err(|_| DbError::Url(redact(&url)))?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; FULL makes a commit durable
                            // when it returns; writers wait their turn instead of failing.
                            conn.execute(
                                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(30)).connect_with(opts).await?
            }
        };
        Ok(Db { pool, backend })
    }

    /// Opens (creating if needed) a SQLite database file and applies the migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Db> {
        let db = Db::connect(&format!("sqlite://{}", path.display())).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Applies every embedded migration not yet applied (idempotent; safe to call at every
    /// start). Refuses a database whose applied migrations differ from the embedded ones.
    pub async fn migrate(&self) -> Result<()> {
        let migrations = STEPS
            .iter()
            .map(|s| {
                let sql = match self.backend {
                    Backend::Sqlite => s.sqlite,
                    Backend::Postgres => s.postgres,
                };
                Migration::new(s.version, Cow::Borrowed(s.description), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect();
        let mut migrator = Migrator::with_migrations(migrations);
        migrator.dangerous_set_table_name("kura_migrations");
        // On PostgreSQL the migrator takes an advisory lock: one process migrates at a time.
        // SQLite has no such lock: a second process starting on a brand-new home at the same
        // moment can find a step it had not seen applied committed by the first ("table …
        // already exists"). Each such failure means the other process made progress, so the
        // run is tried again, at most once per step (a step that is wrong fails every time).
        let attempts = if self.backend == Backend::Sqlite { STEPS.len() + 1 } else { 1 };
        let mut attempt = 1;
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(_) if attempt < attempts => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for reads and single statements.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that will write. Writers are serialised on both backends: SQLite
    /// takes its write lock at `BEGIN IMMEDIATE`; on PostgreSQL the transaction takes the
    /// advisory lock [`WRITE_LOCK`] (released at commit or rollback). Serialising writers keeps
    /// counters such as the ledger's next index gap-free without retry loops.
    pub async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                lock_for_write(&mut tx).await?;
                Ok(tx)
            }
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// Takes the write lock inside a transaction the caller began itself (no-op on SQLite, where
/// the caller must have begun with `BEGIN IMMEDIATE`, as [`Db::begin_write`] does).
pub async fn lock_for_write(conn: &mut AnyConnection) -> Result<()> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *conn).await?;
    }
    Ok(())
}

/// A URL with any password removed, for error messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Fresh databases for tests, one per backend under test.
///
/// SQLite always; PostgreSQL when `KURA_TEST_POSTGRES` holds the URL of a server on which the
/// test user may create databases (`scripts/test.sh` starts one). Each call creates a new,
/// empty, migrated database, so tests never see each other's rows. With
/// `KURA_TEST_REQUIRE_POSTGRES=1` a missing URL is an error rather than a SQLite-only run, so
/// CI cannot pass without having run the PostgreSQL half.
///
/// Only in test builds: the `testing` feature, which other crates enable for their
/// dev-dependencies only, so the shipping binary does not contain it.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static NEXT: AtomicU64 = AtomicU64::new(0);

    /// A migrated SQLite database in `dir`, and a migrated PostgreSQL database if configured.
    pub async fn databases(dir: &Path) -> Vec<Db> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut out = vec![Db::open_sqlite(&dir.join(format!("test-{n}.db"))).await.expect("open SQLite test database")];
        if let Some(db) = postgres().await {
            out.push(db);
        }
        out
    }

    /// A new migrated PostgreSQL database, if `KURA_TEST_POSTGRES` is set.
    pub async fn postgres() -> Option<Db> {
        let admin = match std::env::var("KURA_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var("KURA_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "KURA_TEST_REQUIRE_POSTGRES=1 but KURA_TEST_POSTGRES is not set"
                );
                return None;
            }
        };
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("kura_test_{}_{n}_{nanos}", std::process::id());
        let db = Db::connect(&admin).await.expect("connect to KURA_TEST_POSTGRES");
        // The name is built from numbers only.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(db.pool()).await.expect("CREATE DATABASE");
        db.close().await;
        let (base, _) = admin.rsplit_once('/').expect("KURA_TEST_POSTGRES ends in /DATABASE");
        let db = Db::connect(&format!("{base}/{name}")).await.expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        Some(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two processes opening a brand-new SQLite home at the same moment both end up with
    /// every step applied once (the second waits for the first instead of failing with
    /// "table … already exists").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_migrations_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..8 {
            let path = dir.path().join(format!("state-{i}.db"));
            let url = format!("sqlite://{}", path.display());
            let (a, b) = (Db::connect(&url).await.unwrap(), Db::connect(&url).await.unwrap());
            let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
            assert!(ra.is_ok() && rb.is_ok(), "round {i}: {ra:?} {rb:?}");
            let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kura_migrations").fetch_one(a.pool()).await.unwrap();
            assert_eq!(applied, STEPS.len() as i64);
        }
    }

    #[test]
    fn redact_hides_password() {
        assert_eq!(redact("postgres://kura:secret@db:5432/kura"), "postgres://kura@db:5432/kura");
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}

#[cfg(test)]
mod both_backends;
