//! The ledger over HTTP: read-only tiles (C2SP tlog-tiles) and the witness endpoint
//! (C2SP tlog-witness).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kura_tlog::TileId;
use kura_tlog::tiles::TileStore;
use kura_tlog::witness::Witness;
use std::sync::Arc;

/// Largest `add-checkpoint` body accepted: a note and at most 63 proof lines fit in far less.
pub const MAX_ADD_CHECKPOINT: usize = 64 * 1024;

/// Routes `GET /checkpoint` and `GET /tile/…` over the published files. Only paths the
/// tlog-tiles layout defines are served; anything else is 404. Full tiles never change and
/// are cacheable forever; the checkpoint and partial tiles are not cached.
pub fn tile_routes(tiles: Arc<dyn TileStore>) -> Router {
    Router::new().route("/checkpoint", get(checkpoint)).route("/tile/{*rest}", get(tile)).with_state(tiles)
}

async fn read(tiles: Arc<dyn TileStore>, path: String) -> Option<Vec<u8>> {
    tokio::task::spawn_blocking(move || tiles.get(&path).ok().flatten()).await.ok().flatten()
}

fn bytes_response(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

async fn checkpoint(State(tiles): State<Arc<dyn TileStore>>) -> Response {
    match read(tiles, "checkpoint".into()).await {
        Some(b) => bytes_response(b, "text/plain; charset=utf-8", "no-cache"),
        None => (StatusCode::NOT_FOUND, "no checkpoint published yet\n").into_response(),
    }
}

async fn tile(State(tiles): State<Arc<dyn TileStore>>, Path(rest): Path<String>) -> Response {
    let path = format!("tile/{rest}");
    let Ok(id) = TileId::parse_path(&path) else {
        return (StatusCode::NOT_FOUND, "not a tlog-tiles path\n").into_response();
    };
    match read(tiles, path).await {
        Some(b) if id.is_full() => bytes_response(b, "application/octet-stream", "public, max-age=31536000, immutable"),
        Some(b) => bytes_response(b, "application/octet-stream", "no-cache"),
        None => (StatusCode::NOT_FOUND, "no such tile\n").into_response(),
    }
}

/// Routes `POST /add-checkpoint` to a witness. The witness persists its state before the
/// answer is sent; answers carry the status codes and content types of the specification.
pub fn witness_routes(witness: Arc<Witness>) -> Router {
    Router::new().route("/add-checkpoint", post(add_checkpoint)).layer(DefaultBodyLimit::max(MAX_ADD_CHECKPOINT)).with_state(witness)
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    // Signing and the fsync of the state file block: keep them off the async workers.
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body)).await;
    let Ok(a) = answer else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "witness failed\n").into_response();
    };
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, a.body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    r
}
