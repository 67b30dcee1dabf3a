//! The combined decision, and reloading of the lists from their files.

use crate::GateError;
use crate::autoblock::{AutoBlockPolicy, AutoBlocker, Block, Failure};
use crate::blocklist::{DomainBlocklist, IpBlocklist};
use crate::geo::{Country, CountryTable};
use crate::ranges::{Cidr, RangeSet, canonical};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// What the gate is told to enforce.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Countries whose addresses may connect (HIC-S4: Japan).
    pub countries: Vec<Country>,
    /// Ranges always allowed regardless of country: the agency's own networks. The default
    /// is the loopback addresses `127.0.0.1` and `::1` only, so a laptop can reach itself.
    pub internal: Vec<Cidr>,
    /// RIR statistics files (`delegated-apnic-latest`, …). With none, only internal
    /// addresses may connect.
    pub geo_files: Vec<PathBuf>,
    /// Files of blocked addresses and ranges.
    pub ip_blocklists: Vec<PathBuf>,
    /// Files of blocked URLs and domains.
    pub domain_blocklists: Vec<PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Automatic blocking.
    pub autoblock: AutoBlockPolicy,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            countries: vec![Country::JP],
            internal: ["127.0.0.1/32", "::1/128"].iter().filter_map(|c| Cidr::parse(c).ok()).collect(),
            geo_files: Vec::new(),
            ip_blocklists: Vec::new(),
            domain_blocklists: Vec::new(),
            trusted_proxies: Vec::new(),
            autoblock: AutoBlockPolicy::default(),
        }
    }
}

/// The gate's answer for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// May connect.
    Allow,
    /// Outside the allowed countries and internal ranges (HIC-S4).
    Foreign {
        /// The country the registries give, if any.
        country: Option<Country>,
    },
    /// On a blocklist (HIC-S9).
    Listed,
    /// Blocked automatically after repeated failures.
    AutoBlocked(Block),
}

impl Verdict {
    /// Whether the connection may proceed.
    pub fn allowed(&self) -> bool {
        *self == Verdict::Allow
    }

    /// A short reason for records (`foreign:US`, `listed`, `auto_blocked`).
    pub fn reason(&self) -> String {
        match self {
            Verdict::Allow => "allow".into(),
            Verdict::Foreign { country } => format!("foreign:{}", country.map_or("??".to_string(), |c| c.to_string())),
            Verdict::Listed => "listed".into(),
            Verdict::AutoBlocked(_) => "auto_blocked".into(),
        }
    }
}

struct Lists {
    geo: CountryTable,
    ips: IpBlocklist,
    domains: DomainBlocklist,
    stamps: Vec<Option<(SystemTime, u64)>>,
}

/// The combined gate: lists (reloadable) and the automatic blocker.
pub struct Gate {
    config: GateConfig,
    internal: RangeSet,
    proxies: RangeSet,
    lists: RwLock<Arc<Lists>>,
    blocker: AutoBlocker,
}

fn stamp(p: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn read(p: &Path) -> Result<String, GateError> {
    std::fs::read_to_string(p).map_err(|source| GateError::Io { path: p.to_path_buf(), source })
}

impl Gate {
    /// Loads every configured file; any error names the file and line.
    pub fn load(config: GateConfig) -> Result<Gate, GateError> {
        let lists = Gate::read_lists(&config)?;
        Ok(Gate::with_lists(config, lists))
    }

    /// A gate over texts instead of files (tests, examples): one RIR statistics text (or
    /// none), one address list and one domain list.
    pub fn from_texts(config: GateConfig, geo: Option<&str>, ips: &str, domains: &str) -> Result<Gate, GateError> {
        let lists = Lists {
            geo: geo.map(|g| CountryTable::parse("<geo>", g)).transpose()?.unwrap_or_default(),
            ips: IpBlocklist::parse("<ip blocklist>", ips)?,
            domains: DomainBlocklist::parse("<domain blocklist>", domains)?,
            stamps: Vec::new(),
        };
        Ok(Gate::with_lists(config, lists))
    }

    fn with_lists(config: GateConfig, lists: Lists) -> Gate {
        Gate {
            internal: RangeSet::from_cidrs(config.internal.iter().copied()),
            proxies: RangeSet::from_cidrs(config.trusted_proxies.iter().copied()),
            lists: RwLock::new(Arc::new(lists)),
            blocker: AutoBlocker::new(config.autoblock),
            config,
        }
    }

    fn files(config: &GateConfig) -> impl Iterator<Item = &PathBuf> {
        config.geo_files.iter().chain(&config.ip_blocklists).chain(&config.domain_blocklists)
    }

    fn read_lists(config: &GateConfig) -> Result<Lists, GateError> {
        let stamps = Gate::files(config).map(|p| stamp(p)).collect();
        let geo = if config.geo_files.is_empty() { CountryTable::default() } else { CountryTable::load(&config.geo_files)? };
        let texts = |paths: &[PathBuf]| -> Result<Vec<(String, String)>, GateError> {
            paths.iter().map(|p| Ok((p.display().to_string(), read(p)?))).collect()
        };
        let (ip_texts, domain_texts) = (texts(&config.ip_blocklists)?, texts(&config.domain_blocklists)?);
        let ips = IpBlocklist::parse_files(ip_texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))?;
        let domains = DomainBlocklist::parse_files(domain_texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))?;
        Ok(Lists { geo, ips, domains, stamps })
    }

    /// Rereads the files if any changed (modification time or size). On an error the lists
    /// in force stay as they were — a broken download never opens the gate — and the error is
    /// returned for the operator. Returns whether new lists were installed.
    pub fn reload_if_changed(&self) -> Result<bool, GateError> {
        let now: Vec<_> = Gate::files(&self.config).map(|p| stamp(p)).collect();
        if self.current().stamps == now {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// Rereads every file now.
    pub fn reload(&self) -> Result<(), GateError> {
        let lists = Gate::read_lists(&self.config)?;
        tracing::info!(
            geo_ranges = lists.geo.ranges(),
            blocked_ranges = lists.ips.len(),
            blocked_domains = lists.domains.len(),
            "接続制御のリストを読み込みました / gate lists loaded"
        );
        *self.lists.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(lists);
        Ok(())
    }

    fn current(&self) -> Arc<Lists> {
        self.lists.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The decision for a connecting address: listed and automatically blocked addresses are
    /// refused first (internal ones too), then internal ranges and allowed countries pass.
    pub fn check(&self, addr: IpAddr, now: SystemTime) -> Verdict {
        let addr = canonical(addr);
        let lists = self.current();
        if lists.ips.contains(addr) {
            return Verdict::Listed;
        }
        if let Some(b) = self.blocker.blocked(addr, now) {
            return Verdict::AutoBlocked(b);
        }
        if self.internal.contains(addr) {
            return Verdict::Allow;
        }
        match lists.geo.country(addr) {
            Some(c) if self.config.countries.contains(&c) => Verdict::Allow,
            country => Verdict::Foreign { country },
        }
    }

    /// The country the loaded statistics give for `addr`.
    pub fn country(&self, addr: IpAddr) -> Option<Country> {
        self.current().geo.country(addr)
    }

    /// Counts a failure against `addr`; the block it triggers, if any (record it).
    pub fn record_failure(&self, addr: IpAddr, failure: Failure, now: SystemTime) -> Option<Block> {
        self.blocker.record(canonical(addr), failure, now)
    }

    /// The automatic blocker (list and lift blocks).
    pub fn blocker(&self) -> &AutoBlocker {
        &self.blocker
    }

    /// Whether a URL or host is on a domain blocklist (used for `Origin`/`Referer` headers of
    /// requests and for every URL Kura itself is configured to call).
    pub fn blocks_url(&self, url: &str) -> bool {
        let lists = self.current();
        lists.domains.blocks_url(url)
            || crate::blocklist::host_of(url).and_then(|h| h.parse::<IpAddr>().ok()).is_some_and(|ip| lists.ips.contains(ip))
    }

    /// The client's address for a request that arrived from `peer`: the `X-Forwarded-For`
    /// header's client when `peer` is a trusted proxy, else `peer`.
    pub fn client_addr(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        client_addr(peer, forwarded_for, &self.proxies)
    }

    /// The configuration.
    pub fn config(&self) -> &GateConfig {
        &self.config
    }
}

/// The client address behind trusted proxies. `X-Forwarded-For` lists addresses left to right
/// as proxies appended them; walking from the right, every trusted proxy is skipped and the
/// first other address is the client. Anything a client wrote to the left of that is ignored,
/// and an unreadable entry stops the walk at the last trusted hop, so the header cannot be used
/// to pose as another address.
pub fn client_addr(peer: IpAddr, forwarded_for: Option<&str>, trusted: &RangeSet) -> IpAddr {
    let peer = canonical(peer);
    let Some(header) = forwarded_for.filter(|_| trusted.contains(peer)) else { return peer };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(a) => {
                client = canonical(a);
                if !trusted.contains(client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}
