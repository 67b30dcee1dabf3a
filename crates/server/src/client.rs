//! HTTP clients: asking online witnesses to cosign, and copying a mirror for repair.
//!
//! Plain HTTP is enough for what travels here: checkpoints, cosignatures, tiles and bundles are
//! all signed or hashed by the log, and every byte fetched is verified before it is used.

use crate::ServerError;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kura_ledger::LedgerError;
use kura_ledger::log::WitnessClient;
use kura_tlog::mirror::{CheckedTree, Trust};
use kura_tlog::tile::{MAX_ENTRY_LEN, TILE_WIDTH, TileId, tiles_for_size};
use kura_tlog::tiles::{DirTiles, TileStore};
use kura_tlog::witness::WitnessResponse;
use std::path::Path;
use std::time::Duration;

/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Largest body read from a peer: a full entry bundle of the largest entries.
pub const MAX_BODY: usize = TILE_WIDTH as usize * (MAX_ENTRY_LEN + 2);

/// A small HTTP/1.1 client with timeouts and body limits.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Http")
    }
}

/// A response: status, content type and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The Content-Type header, or empty.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Http {
    /// A client (keep-alive connections, no TLS: see the module documentation).
    pub fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(TIMEOUT));
        connector.set_nodelay(true);
        Http { client: Client::builder(TokioExecutor::new()).build(connector) }
    }

    fn check(url: &str) -> Result<hyper::Uri, ServerError> {
        let uri: Option<hyper::Uri> = url.parse().ok();
        let Some(uri) = uri.filter(|u| u.scheme_str() == Some("http") && u.host().is_some()) else {
            return Err(ServerError::Peer {
                url: url.into(),
                detail: "http:// の URL を指定してください / only http:// URLs are supported here (the data is signed; put TLS in front if needed)"
                    .into(),
            });
        };
        Ok(uri)
    }

    /// Sends a request and reads the answer, within [`TIMEOUT`] and [`MAX_BODY`].
    pub async fn send(&self, method: hyper::Method, url: &str, body: Vec<u8>) -> Result<Answer, ServerError> {
        self.send_at_most(method, url, body, MAX_BODY).await
    }

    /// [`Http::send`], reading at most `max` bytes of the answer.
    pub async fn send_at_most(&self, method: hyper::Method, url: &str, body: Vec<u8>, max: usize) -> Result<Answer, ServerError> {
        let uri = Self::check(url)?;
        let req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::USER_AGENT, concat!("kura/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ServerError::Peer { url: url.into(), detail: e.to_string() })?;
        let peer = |detail: String| ServerError::Peer { url: url.into(), detail };
        let work = async {
            let resp = self.client.request(req).await.map_err(|e| peer(format!("接続できません / cannot connect: {e}")))?;
            let status = resp.status().as_u16();
            let content_type =
                resp.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let body = Limited::new(resp.into_body(), max.min(MAX_BODY))
                .collect()
                .await
                .map_err(|e| peer(format!("応答を読めません / cannot read the answer: {e}")))?
                .to_bytes()
                .to_vec();
            Ok(Answer { status, content_type, body })
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .map_err(|_| peer(format!("{} 秒で応答なし / no answer within {TIMEOUT:?}", TIMEOUT.as_secs())))?
    }

    /// `GET url`: the body on 200, `None` on 404.
    pub async fn get(&self, url: &str) -> Result<Option<Vec<u8>>, ServerError> {
        self.get_at_most(url, MAX_BODY).await
    }

    /// `GET url`, reading at most `max` bytes: the body on 200, `None` on 404.
    pub async fn get_at_most(&self, url: &str, max: usize) -> Result<Option<Vec<u8>>, ServerError> {
        let a = self.send_at_most(hyper::Method::GET, url, Vec::new(), max).await?;
        match a.status {
            200 => Ok(Some(a.body)),
            404 => Ok(None),
            s => Err(ServerError::Peer { url: url.into(), detail: format!("HTTP {s}") }),
        }
    }
}

/// Reaches online witnesses at their submission prefix (`<url>/add-checkpoint`).
#[derive(Debug, Clone, Default)]
pub struct HttpWitnessClient {
    http: Http,
}

impl WitnessClient for HttpWitnessClient {
    fn add_checkpoint(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<WitnessResponse, LedgerError>> + Send + '_>> {
        let url = format!("{}/add-checkpoint", url.trim_end_matches('/'));
        Box::pin(async move {
            let a = self
                .http
                .send(hyper::Method::POST, &url, body)
                .await
                .map_err(|e| LedgerError::Peer { peer: url.clone(), detail: e.to_string() })?;
            // Only the size-conflict content type matters to the protocol; keep it exact.
            let content_type =
                if a.content_type.starts_with("text/x.tlog.size") { "text/x.tlog.size" } else { "text/plain; charset=utf-8" };
            Ok(WitnessResponse { status: a.status, body: a.body, content_type })
        })
    }
}

/// How long copying a mirror may take in all: a minute, and a second more per file. A mirror
/// that answers each request just inside [`TIMEOUT`] cannot hold a repair for hours.
pub fn mirror_budget(files: usize) -> Duration {
    Duration::from_secs(60).saturating_add(Duration::from_secs(u64::try_from(files).unwrap_or(u64::MAX)))
}

/// The most a file at a tile path can hold: a hash tile exactly 32 bytes a hash, a bundle
/// `width` entries of at most 2 + 65,535 bytes, a checkpoint a few signed lines.
fn most_for(t: Option<&TileId>) -> usize {
    match t {
        Some(TileId { level: Some(_), width, .. }) => usize::from(*width) * 32,
        Some(TileId { level: None, width, .. }) => usize::from(*width) * (MAX_ENTRY_LEN + 2),
        None => MAX_CHECKPOINT,
    }
}

/// The largest checkpoint note read from a mirror (a checkpoint and its cosignatures).
const MAX_CHECKPOINT: usize = 64 * 1024;

/// Where a mirror is read from: an `http://` URL, or a directory (a copy of `ledger/log`).
#[derive(Debug, Clone)]
pub enum MirrorSource {
    /// A mirror served over HTTP.
    Http(String),
    /// A directory.
    Dir(std::path::PathBuf),
}

impl MirrorSource {
    fn name(&self) -> String {
        match self {
            MirrorSource::Http(u) => u.clone(),
            MirrorSource::Dir(d) => d.display().to_string(),
        }
    }

    /// One file, at most `max` bytes (a larger one is an error): `None` if absent. A
    /// directory's file must be a regular file (not a FIFO, a device or a link to one).
    async fn get(&self, http: &Http, path: &str, max: usize) -> Result<Option<Vec<u8>>, ServerError> {
        match self {
            MirrorSource::Http(base) => {
                // Reading stops at `max` bytes: a larger answer is an error of the mirror.
                http.get_at_most(&format!("{}/{path}", base.trim_end_matches('/')), max).await
            }
            MirrorSource::Dir(dir) => {
                let file = dir.join(path);
                let meta = match std::fs::symlink_metadata(&file) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(ServerError::Peer { url: self.name(), detail: format!("{path}: {e}") }),
                };
                if !meta.file_type().is_file() {
                    return Err(ServerError::Peer {
                        url: self.name(),
                        detail: format!("{path}: 通常のファイルではありません / not a regular file"),
                    });
                }
                if meta.len() > max as u64 {
                    return Err(ServerError::Peer {
                        url: self.name(),
                        detail: format!(
                            "{path}: {} バイトは大きすぎます（最大 {max}）/ {} bytes, more than this file can hold ({max})",
                            meta.len(),
                            meta.len()
                        ),
                    });
                }
                std::fs::read(&file).map(Some).map_err(|e| ServerError::Peer { url: self.name(), detail: format!("{path}: {e}") })
            }
        }
    }
}

/// What [`fetch_mirror`] copied.
#[derive(Debug, Default)]
pub struct MirrorCopy {
    /// Files the checkpoint's tree has.
    pub total: u64,
    /// Files the mirror served that did not match its checked tree: not copied (repair then
    /// does without them, as it does without missing ones).
    pub refused: Vec<String>,
}

/// Copies a mirror into `dir`, for `kura ledger repair`.
///
/// The mirror is not trusted (HX-8): its checkpoint must open under `trust` (the log's key and
/// its witness policy) before its tree size is believed; its level-0 hash tiles, each exactly
/// the size its width gives, must then reproduce that checkpoint's root; and every other file,
/// read only up to what its kind can hold, is checked against that tree before it is written
/// ([`CheckedTree`]): a file that does not match is left out and named. A directory mirror's
/// files must be regular files. The whole copy must finish within [`mirror_budget`].
/// `progress` is called with (files done, files total).
pub async fn fetch_mirror(
    from: &MirrorSource,
    dir: &Path,
    trust: Trust<'_>,
    progress: &dyn Fn(u64, u64),
) -> Result<MirrorCopy, ServerError> {
    let http = Http::new();
    let out = DirTiles::new(dir);
    let peer = |detail: String| ServerError::Peer { url: from.name(), detail };
    let Some(cp) = from.get(&http, "checkpoint", most_for(None)).await? else {
        return Err(peer("チェックポイントがありません / the mirror has no checkpoint".into()));
    };
    let signed = trust.open(&cp).map_err(|e| {
            peer(format!(
                "ミラーのチェックポイントがこのログの鍵と立会人の方針で検証できません。別のミラーを指定してください / the mirror's checkpoint does not verify under this log's key and witness policy ({e}); use another mirror"
            ))
        })?;
    let (size, root) = (signed.checkpoint.size, signed.checkpoint.root);
    let tiles = tiles_for_size(size);
    let mut copy = MirrorCopy { total: tiles.len() as u64, refused: Vec::new() };
    let budget = mirror_budget(tiles.len());
    let files = async {
        // 1. The leaf hashes (32 bytes an entry), checked against the signed root.
        let mut leaf_tiles = Vec::new();
        for t in CheckedTree::leaf_tiles(size) {
            let path = t.path();
            let Some(b) = from.get(&http, &path, most_for(Some(&t))).await? else {
                return Err(peer(format!("{path} がありません / {path} is missing: a mirror must serve every hash tile")));
            };
            leaf_tiles.push((t, b));
        }
        let checked = CheckedTree::from_leaf_tiles(size, &root, &leaf_tiles).map_err(|e| peer(e.to_string()))?;
        let mut done = 0u64;
        for (t, b) in &leaf_tiles {
            out.put(&t.path(), b)?;
            done += 1;
            progress(done, copy.total);
        }
        // 2. Every other file, checked before it is kept.
        for t in tiles.into_iter().filter(|t| t.level != Some(0)) {
            let path = t.path();
            match from.get(&http, &path, most_for(Some(&t))).await {
                Ok(Some(b)) if checked.check(&t, &b).is_ok() => out.put(&path, &b)?,
                Ok(None) => {}
                Ok(Some(_)) | Err(ServerError::Peer { .. }) => copy.refused.push(path),
                Err(e) => return Err(e),
            }
            done += 1;
            progress(done, copy.total);
        }
        out.put("checkpoint", &cp)?;
        Ok(())
    };
    tokio::time::timeout(budget, files).await.map_err(|_| {
        peer(format!(
            "{} 秒以内に取得できませんでした / the mirror was not copied within {} s ({} files)",
            budget.as_secs(),
            budget.as_secs(),
            copy.total
        ))
    })??;
    Ok(copy)
}
