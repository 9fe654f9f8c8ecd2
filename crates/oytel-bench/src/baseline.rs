//! The baselines: the least a server can do for each kind of request, on the same database
//! backend with the same settings (WAL, `synchronous = FULL`, one writer and read-only
//! readers for SQLite; one pool for PostgreSQL).

use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Postgres, Sqlite};

#[derive(Clone)]
enum Db {
    Sqlite {
        writer: Pool<Sqlite>,
        reader: Pool<Sqlite>,
    },
    Postgres(Pool<Postgres>),
}

async fn json_route() -> Json<Value> {
    Json(json!({"success": true, "message": "hello"}))
}

type Row = (String, String, String, String, i64, i64);

async fn row_route(State(db): State<Db>, Path(id): Path<String>) -> Json<Value> {
    const SQL: &str =
        "SELECT id, iccid, status, plan_id, data_used_mb, data_limit_mb FROM esims WHERE id = $1";
    let row: Option<Row> = match &db {
        Db::Sqlite { reader, .. } => sqlx::query_as(SQL)
            .bind(&id)
            .fetch_optional(reader)
            .await
            .ok()
            .flatten(),
        Db::Postgres(pool) => sqlx::query_as(SQL)
            .bind(&id)
            .fetch_optional(pool)
            .await
            .ok()
            .flatten(),
    };
    Json(match row {
        Some((id, iccid, status, plan, used, limit)) => {
            json!({"esim_id": id, "iccid": iccid, "status": status, "plan_id": plan, "used": used, "limit": limit})
        }
        None => json!({"error": "not found"}),
    })
}

async fn insert_route(State(db): State<Db>) -> Json<Value> {
    let id = oytel_core::numbers::new_id("row");
    const SQL: &str = "INSERT INTO bench_rows (id, payload, created_at) VALUES ($1, $2, $3)";
    let payload = "x".repeat(64);
    let now = chrono::Utc::now();
    let ok = match &db {
        Db::Sqlite { writer, .. } => match writer.begin_with("BEGIN IMMEDIATE").await {
            Ok(mut tx) => {
                let done = sqlx::query(SQL)
                    .bind(&id)
                    .bind(&payload)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .is_ok();
                done && tx.commit().await.is_ok()
            }
            Err(_) => false,
        },
        Db::Postgres(pool) => match pool.begin().await {
            Ok(mut tx) => {
                let done = sqlx::query(SQL)
                    .bind(&id)
                    .bind(&payload)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .is_ok();
                done && tx.commit().await.is_ok()
            }
            Err(_) => false,
        },
    };
    Json(json!({"success": ok, "id": id}))
}

async fn open(url: &str, connections: u32) -> anyhow::Result<Db> {
    const TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_rows (id TEXT PRIMARY KEY, payload TEXT NOT NULL, created_at TEXT NOT NULL)";
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::query(TABLE).execute(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(connections)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Db::Sqlite { writer, reader })
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect(url)
            .await?;
        sqlx::query(&TABLE.replace("TEXT NOT NULL)", "TIMESTAMPTZ NOT NULL)"))
            .execute(&pool)
            .await?;
        Ok(Db::Postgres(pool))
    }
}

/// Serves the baselines on `listen` until killed; prints `ready <address>` when ready.
pub async fn serve(listen: &str, database_url: &str, connections: u32) -> anyhow::Result<()> {
    let db = open(database_url, connections).await?;
    let app = Router::new()
        .route("/json", get(json_route))
        .route("/row/{id}", get(row_route))
        .route("/insert", post(insert_route))
        .with_state(db);
    // The server's listen queue, so that a burst of new connections meets the same kernel
    // queue on both sides (the default 128 drops SYNs beyond it: a second's wait each).
    let listener = oytel_server::listener::bind(listen.parse()?, 8192)?;
    #[allow(clippy::print_stdout)]
    {
        println!("ready {}", listener.local_addr()?);
    }
    axum::serve(listener, app).await?;
    Ok(())
}
