//! The store of record on both backends: migrations, one SQL dialect, serialised writers.

use crate::testing::databases;
use crate::{Backend, Db};
use sqlx::Row;

/// Column names and declared types of every Kura table, as the backend reports them.
async fn columns(db: &Db) -> Vec<(String, String)> {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT m.name || '.' || p.name, lower(p.type) FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'kura_migrations' ORDER BY 1"
        }
        Backend::Postgres => {
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> 'kura_migrations' ORDER BY 1"
        }
    };
    sqlx::query(sql).fetch_all(db.pool()).await.unwrap().iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))).collect()
}

#[tokio::test]
async fn both_backends_have_the_same_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let dbs = databases(dir.path()).await;
    let mut shapes = Vec::new();
    for db in &dbs {
        // Migrating twice is harmless.
        db.migrate().await.unwrap();
        let cols = columns(db).await;
        assert!(cols.iter().any(|(c, _)| c == "users.password_hash"), "{cols:?}");
        assert!(cols.iter().any(|(c, _)| c == "ledger_entries.data"), "{cols:?}");
        // Normalise the type names the two backends use for the same thing.
        let norm: Vec<(String, &str)> = cols
            .into_iter()
            .map(|(c, t)| {
                let kind = match t.as_str() {
                    "integer" | "bigint" => "int",
                    "blob" | "bytea" => "bytes",
                    "text" => "text",
                    other => panic!("unexpected column type {other} of {c}"),
                };
                (c, kind)
            })
            .collect();
        shapes.push(norm);
    }
    if shapes.len() == 2 {
        assert_eq!(shapes[0], shapes[1], "SQLite and PostgreSQL schemas differ");
    }
}

#[tokio::test]
async fn one_dialect_serves_both() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()).await {
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO institutions (code, name, created_at) VALUES ($1, $2, $3)")
            .bind("1310000001")
            .bind("蔵病院")
            .bind(1_i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        // Upsert and a repeated placeholder.
        sqlx::query("INSERT INTO ledger_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind("k")
            .bind(b"one".to_vec())
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO ledger_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind("k")
            .bind(b"two".to_vec())
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let name: String = sqlx::query_scalar("SELECT name FROM institutions WHERE code = $1 AND code = $1")
            .bind("1310000001")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(name, "蔵病院", "{:?}", db.backend());
        let v: Vec<u8> = sqlx::query_scalar("SELECT value FROM ledger_meta WHERE key = $1").bind("k").fetch_one(db.pool()).await.unwrap();
        assert_eq!(v, b"two");
        // A foreign key is enforced on both.
        let bad = sqlx::query(
            "INSERT INTO users (login, institution, role, name, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, 0)",
        )
        .bind("u")
        .bind("no-such-institution")
        .bind("researcher")
        .bind("")
        .bind("active")
        .execute(db.pool())
        .await;
        assert!(bad.is_err(), "{:?}: foreign key not enforced", db.backend());
    }
}

#[tokio::test]
async fn writers_are_serialised() {
    // 8 tasks × 25 read-increment-write cycles on one counter: with serialised writers no
    // increment is lost on either backend.
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()).await {
        sqlx::query("INSERT INTO ledger_meta (key, value) VALUES ('n', $1)")
            .bind(0_u64.to_be_bytes().to_vec())
            .execute(db.pool())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    let mut tx = db.begin_write().await.unwrap();
                    let v: Vec<u8> = sqlx::query_scalar("SELECT value FROM ledger_meta WHERE key = 'n'").fetch_one(&mut *tx).await.unwrap();
                    let n = u64::from_be_bytes(v.try_into().unwrap()) + 1;
                    sqlx::query("UPDATE ledger_meta SET value = $1 WHERE key = 'n'")
                        .bind(n.to_be_bytes().to_vec())
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let v: Vec<u8> = sqlx::query_scalar("SELECT value FROM ledger_meta WHERE key = 'n'").fetch_one(db.pool()).await.unwrap();
        assert_eq!(u64::from_be_bytes(v.try_into().unwrap()), 200, "{:?}", db.backend());
    }
}

#[tokio::test]
async fn bad_urls_are_named() {
    let e = Db::connect("mysql://root:hunter2@db/kura").await.unwrap_err().to_string();
    assert!(e.contains("mysql://root@db/kura") && !e.contains("hunter2"), "{e}");
}
