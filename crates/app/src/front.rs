//! The front door's parts (NET-1, NET-2, HX-5, HX-6, HX-9, HIC-S3, HIC-S4, HIC-S9, HIC-U2,
//! HIC-U3): accounts under the home's account rules, the gate, the certificate authority's files,
//! server certificates issued ahead and renewed while running, and the running server.

use crate::{App, AppError, Result};
use kura_accounts::{Accounts, Clock, Hasher, Policy};
use kura_crypto::{Purpose, SecretKey};
use kura_gate::ranges::Cidr;
use kura_gate::{AutoBlockPolicy, Gate, GateConfig};
use kura_pki::{Ca, RevocationSet};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A server certificate chain to present, its key, and when it ends (Unix seconds).
pub type ServerChain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, i64);

/// Where `kura serve` listens; `None` takes `[server]`.
#[derive(Clone, Debug, Default)]
pub struct Listeners {
    /// The portal and API listener.
    pub listen: Option<String>,
    /// The operators' listener.
    pub operator_listen: Option<String>,
}

fn no_ca(e: impl std::fmt::Display) -> AppError {
    AppError::Setup(format!("{e}\n認証局がありません: `kura ca init` を実行してください / no CA yet: run `kura ca init`"))
}

fn cidrs(what: &str, list: &[String]) -> Result<Vec<Cidr>> {
    list.iter().map(|c| Cidr::parse(c).map_err(|e| AppError::Setup(format!("[server] {what}: '{c}': {e}")))).collect()
}

fn now() -> i64 {
    kura_tlog::note::unix_now() as i64
}

impl App {
    /// The account rules of `[server]`.
    pub fn policy(&self) -> Policy {
        let c = &self.config.server;
        Policy {
            lockout_threshold: c.lockout_threshold,
            lock_for: (c.lock_minutes > 0).then(|| Duration::from_secs(c.lock_minutes * 60)),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            absolute_timeout: Duration::from_secs(c.absolute_timeout_secs),
            ..Policy::default()
        }
    }

    /// The accounts key, created in the keyring on first use (wrapped by the master key).
    fn accounts_key(&self) -> Result<SecretKey> {
        Ok(self.home.ensure_key("platform/accounts", Purpose::Accounts)?)
    }

    /// The accounts service, recording into the home's log, hashing at the options' cost.
    pub async fn accounts(&self) -> Result<Accounts> {
        let log = self.open_log().await?;
        let db = log.store().db().clone();
        let hasher = Hasher::for_this_machine(self.options.hash_cost);
        Ok(Accounts::new(db, log, self.accounts_key()?, self.policy(), hasher, Clock::default()).await?)
    }

    /// A path of `[server]`, relative to the home unless absolute.
    fn in_home(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { self.home.root().join(p) }
    }

    /// The gate's configuration from `[server]`.
    pub fn gate_config(&self) -> Result<GateConfig> {
        let c = &self.config.server;
        let countries = c
            .countries
            .iter()
            .map(|s| {
                kura_gate::geo::Country::parse(s)
                    .ok_or_else(|| AppError::Setup(format!("[server] countries: '{s}' is not a two-letter country code")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GateConfig {
            countries,
            internal: cidrs("internal", &c.internal)?,
            geo_files: c.geo_files.iter().map(|p| self.in_home(p)).collect(),
            ip_blocklists: c.ip_blocklists.iter().map(|p| self.in_home(p)).collect(),
            domain_blocklists: c.domain_blocklists.iter().map(|p| self.in_home(p)).collect(),
            trusted_proxies: cidrs("trusted_proxies", &c.trusted_proxies)?,
            autoblock: AutoBlockPolicy {
                threshold: c.autoblock_threshold,
                window: Duration::from_secs(c.autoblock_window_secs),
                block_for: Duration::from_secs(c.autoblock_secs),
                ..AutoBlockPolicy::default()
            },
        })
    }

    /// The gate of `[server]`, its lists loaded.
    pub fn gate(&self) -> Result<Gate> {
        Ok(Gate::load(self.gate_config()?)?)
    }

    /// Whether Kura may call `url` (a witness, a mirror): never a host on a domain blocklist, nor
    /// an address on an IP blocklist (HIC-S9). Checked when the URL is taken into use.
    pub fn outbound_allowed(&self, url: &str) -> Result<()> {
        let c = &self.config.server;
        if c.domain_blocklists.is_empty() && c.ip_blocklists.is_empty() {
            return Ok(());
        }
        if self.gate()?.blocks_url(url) {
            return Err(AppError::Setup(format!(
                "{url}: 遮断リストにあるため接続しません（[server] domain_blocklists / ip_blocklists）/ refusing to call {url}: it is on a blocklist"
            )));
        }
        Ok(())
    }

    /// Creates the home's certificate authority.
    pub fn init_ca(&self, name: &str) -> Result<Ca> {
        Ok(Ca::init(&self.layout().ca_dir(), name)?)
    }

    /// The home's certificate authority, with its signing key (for the commands that issue).
    pub fn open_ca(&self) -> Result<Ca> {
        Ca::open(&self.layout().ca_dir()).map_err(no_ca)
    }

    /// Issues server certificates for `[server] server_names` ahead of time, covering `days`
    /// from now (with the CA key: in a command, never in the server). Returns how many were
    /// written and until when they cover.
    pub fn issue_server_certs(&self, ca: &Ca, days: i64) -> Result<(usize, i64)> {
        let names = &self.config.server.server_names;
        let dir = self.layout().server_cert_dir();
        let written = kura_pki::server_certs::issue_ahead(ca, names, &dir, now(), days)?;
        let certs = kura_pki::server_certs::load(&dir)?;
        Ok((written.len(), kura_pki::server_certs::covered_until(&certs, now()).unwrap_or(now())))
    }

    /// The server certificate to present now, from those issued ahead, with the CA certificate.
    pub fn current_server_certificate(&self, ca_cert: &CertificateDer<'static>) -> Result<ServerChain> {
        let certs = kura_pki::server_certs::load(&self.layout().server_cert_dir())?;
        let Some(c) = kura_pki::server_certs::pick(&certs, now()) else {
            return Err(AppError::Setup(
                "有効なサーバー証明書がありません: `kura ca server-certs` を実行してください / no valid server certificate: run `kura ca server-certs`".into(),
            ));
        };
        if kura_pki::server_certs::covered_until(&certs, now()).is_some_and(|u| u - now() < 14 * 86_400) {
            tracing::warn!("server certificates run out within 14 days: run `kura ca server-certs`");
        }
        Ok((vec![c.cert.clone(), ca_cert.clone()], c.key.clone_key(), c.not_after))
    }

    /// Checks hourly for the next server certificate issued ahead and puts it in place when it
    /// becomes valid; the CA key is never read here.
    async fn renew_server_certificate(self, ca_cert: CertificateDer<'static>, cert: Arc<kura_pki::tls::ServerCert>) {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            match self.current_server_certificate(&ca_cert) {
                Ok((chain, key, end)) if end != cert.not_after() => match cert.replace(chain, key, end) {
                    Ok(()) => tracing::info!(not_after = end, "server certificate renewed"),
                    Err(e) => tracing::error!("server certificate renewal failed (retried in an hour): {e}"),
                },
                Ok(_) => {}
                Err(e) => tracing::error!("server certificate renewal failed (retried in an hour): {e}"),
            }
        }
    }

    /// Starts the front door of `[server]` (listeners overridable): TLS with client
    /// certificates of the home's CA, the gate before the handshake, revocations and lists
    /// reloaded while running, the server certificate renewed from those issued ahead. This
    /// process never loads the CA's signing key.
    pub async fn start_server(&self, listeners: Listeners) -> Result<kura_server::serve::Running> {
        Ok(kura_server::serve::start(self.server_settings(listeners).await?).await?)
    }

    /// Everything [`App::start_server`] starts the server with (and the renewal of its
    /// certificate, already running), for a caller that adjusts a setting first.
    pub async fn server_settings(&self, listeners: Listeners) -> Result<kura_server::serve::Settings> {
        let c = &self.config.server;
        let ca_cert = Ca::certificate(&self.layout().ca_dir()).map_err(no_ca)?;
        let accounts = self.accounts().await?;
        let research = self.research(accounts.clone())?;
        let workspaces = self.workspaces(research.clone())?;
        let catalogue = self.research_catalogue()?;
        // A short-lived server certificate (no revocation information needed; see
        // kura_pki::tls::SERVER_CERT_DAYS), replaced by the next one while running.
        let (chain, key, not_after) = self.current_server_certificate(&ca_cert)?;
        let cert = kura_pki::tls::ServerCert::new(chain, key, not_after)?;
        let revoked = Arc::new(RevocationSet::default());
        let tls = kura_pki::tls::server_config(&ca_cert, cert.clone(), revoked.clone())?;
        let gate = Arc::new(self.gate()?);
        // Started last, once nothing here can fail any more.
        tokio::spawn(self.clone().renew_server_certificate(ca_cert.clone(), cert));
        let datasets = self.home.catalog().map(|c| c.datasets.keys().cloned().collect()).unwrap_or_default();
        let operator_listen = listeners.operator_listen.or_else(|| (!c.operator_listen.is_empty()).then(|| c.operator_listen.clone()));
        Ok(kura_server::serve::Settings {
            listen: listeners.listen.unwrap_or(c.listen.clone()),
            operator_listen,
            tls: Arc::new(tls),
            revoked,
            gate,
            limits: kura_server::front::FrontLimits {
                max_connections: c.max_connections,
                max_per_address: c.max_connections_per_address,
                ..kura_server::front::FrontLimits::default()
            },
            accounts,
            datasets,
            reload_every: Duration::from_secs(c.reload_secs.max(1)),
            exchanges: Some(self.exchanges(&research)),
            research: Some(research),
            workspaces: Some(workspaces),
            catalogue,
        })
    }
}
