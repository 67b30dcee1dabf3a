//! Automatic blocking of addresses that keep failing (HIC-S9, HIC-U4).
//!
//! Every failure an address causes — a handshake with a certificate that is not Kura's, a failed
//! login, a request that looks like scanning — is counted in a sliding window (not what any
//! web page can make a visitor's browser do: [`Failure::counts`]). When the count
//! reaches the threshold the address is blocked at once, for a period; the caller records the
//! block in the ledger. IPv6 clients are counted per /64, the block a single subscriber
//! usually holds, so that cycling through one's own addresses does not escape the count.
//!
//! Time is passed in (`now`) rather than read, so that expiry is tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::ranges::canonical;

/// What an address did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// A client certificate was presented and rejected as not Kura's (another CA, a bad
    /// signature or encoding), or the handshake was broken in a way no browser breaks it.
    BadCertificate,
    /// A connection that failed without presenting a client certificate: none was sent, the
    /// browser did not trust Kura's CA and aborted, plain HTTP came to the TLS port, or the
    /// connection closed or stalled before the handshake was done. Any web page can make a
    /// visitor's browser do these, as often as it likes, so they count toward no block (see
    /// [`Failure::counts`]).
    NoCertificate,
    /// A client certificate of Kura's CA presented after it expired or was revoked (at the
    /// handshake, or on a connection open when it happened): what a
    /// browser still holding an old certificate presents on its own whenever a page makes it
    /// connect, so it counts toward no block, like [`Failure::NoCertificate`].
    StaleCertificate,
    /// A request refused (unknown path, CSRF, role) that a browser marked as sent by another
    /// site (`Sec-Fetch-Site`): any page can make a visitor's browser send it, with the
    /// visitor's certificate, so it counts toward no block.
    CrossSite,
    /// A login with a wrong password or second factor.
    FailedLogin,
    /// Requests for paths no client of Kura asks for (`/.env`, `/wp-admin`, …) or a burst of
    /// unknown paths.
    Scanning,
    /// A request refused for what it is: a missing CSRF token, a route the role may not use, a
    /// request from a site on the domain blocklist.
    Refused,
}

impl Failure {
    /// Whether the failure counts toward a block. Not what any web page can make a visitor's
    /// browser do ([`Failure::NoCertificate`], [`Failure::StaleCertificate`],
    /// [`Failure::CrossSite`]): however little such a failure weighed, a page that repeats it
    /// could block the institution of everyone who opens it. They get nothing from the server
    /// either way, and the connection caps bound what they hold.
    pub fn counts(&self) -> bool {
        !matches!(self, Failure::NoCertificate | Failure::StaleCertificate | Failure::CrossSite)
    }

    /// A short name for records and messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Failure::BadCertificate => "bad_certificate",
            Failure::NoCertificate => "no_certificate",
            Failure::StaleCertificate => "stale_certificate",
            Failure::CrossSite => "cross_site",
            Failure::FailedLogin => "failed_login",
            Failure::Scanning => "scanning",
            Failure::Refused => "refused",
        }
    }
}

/// When failures turn into a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoBlockPolicy {
    /// Failures within `window` that trigger a block (0 disables automatic blocking); only
    /// failures that [count](Failure::counts) are counted.
    pub threshold: u32,
    /// The sliding window.
    pub window: Duration,
    /// How long a block lasts.
    pub block_for: Duration,
    /// Most addresses tracked at once; beyond it the stalest are forgotten first.
    pub max_tracked: usize,
}

impl Default for AutoBlockPolicy {
    fn default() -> Self {
        AutoBlockPolicy { threshold: 10, window: Duration::from_secs(600), block_for: Duration::from_secs(3600), max_tracked: 100_000 }
    }
}

/// An address (IPv4) or network (IPv6 /64) that failures are counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// One IPv4 address.
    V4(std::net::Ipv4Addr),
    /// The /64 of an IPv6 address.
    V6Net(u64),
}

impl Subject {
    /// The subject an address is counted as.
    pub fn of(addr: IpAddr) -> Subject {
        match canonical(addr) {
            IpAddr::V4(a) => Subject::V4(a),
            IpAddr::V6(a) => Subject::V6Net((u128::from(a) >> 64) as u64),
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::V4(a) => write!(f, "{a}"),
            Subject::V6Net(n) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*n) << 64)),
        }
    }
}

/// An active block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What is blocked.
    pub subject: Subject,
    /// Until when.
    pub until: SystemTime,
    /// Failures that led to it.
    pub failures: u32,
    /// The failure that tipped it.
    pub last: Failure,
}

#[derive(Default)]
struct State {
    /// Failures in the window, by when.
    recent: HashMap<Subject, VecDeque<SystemTime>>,
    blocks: HashMap<Subject, Block>,
}

/// Counts failures and holds the blocks they caused. Shared by all connections.
pub struct AutoBlocker {
    policy: AutoBlockPolicy,
    state: Mutex<State>,
}

impl AutoBlocker {
    /// A blocker with this policy and no history.
    pub fn new(policy: AutoBlockPolicy) -> AutoBlocker {
        AutoBlocker { policy, state: Mutex::new(State::default()) }
    }

    /// The policy.
    pub fn policy(&self) -> AutoBlockPolicy {
        self.policy
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one failure; returns the block when this failure triggers one (once per block).
    pub fn record(&self, addr: IpAddr, failure: Failure, now: SystemTime) -> Option<Block> {
        if self.policy.threshold == 0 || !failure.counts() {
            return None;
        }
        let subject = Subject::of(addr);
        let mut st = self.state();
        if st.blocks.get(&subject).is_some_and(|b| b.until > now) {
            return None;
        }
        if !st.recent.contains_key(&subject) && st.recent.len() >= self.policy.max_tracked {
            self.forget_stale(&mut st, now);
        }
        let times = st.recent.entry(subject).or_default();
        let since = now.checked_sub(self.policy.window).unwrap_or(SystemTime::UNIX_EPOCH);
        while times.front().is_some_and(|t| *t <= since) {
            times.pop_front();
        }
        times.push_back(now);
        if times.len() < self.policy.threshold as usize {
            return None;
        }
        let failures = times.len() as u32;
        st.recent.remove(&subject);
        let block = Block { subject, until: now + self.policy.block_for, failures, last: failure };
        st.blocks.insert(subject, block.clone());
        Some(block)
    }

    /// Drops addresses with no failure inside the window; if that frees nothing, the half
    /// with the oldest latest failure.
    fn forget_stale(&self, st: &mut State, now: SystemTime) {
        let since = now.checked_sub(self.policy.window).unwrap_or(SystemTime::UNIX_EPOCH);
        st.recent.retain(|_, t| t.back().is_some_and(|last| *last > since));
        st.blocks.retain(|_, b| b.until > now);
        if st.recent.len() >= self.policy.max_tracked {
            let mut lasts: Vec<SystemTime> = st.recent.values().filter_map(|t| t.back().copied()).collect();
            lasts.sort();
            let Some(&cut) = lasts.get(lasts.len() / 2) else { return };
            st.recent.retain(|_, t| t.back().is_some_and(|last| *last > cut));
        }
    }

    /// The block in force for `addr`, if any; expired blocks are dropped here.
    pub fn blocked(&self, addr: IpAddr, now: SystemTime) -> Option<Block> {
        let subject = Subject::of(addr);
        let mut st = self.state();
        match st.blocks.get(&subject) {
            Some(b) if b.until > now => Some(b.clone()),
            Some(_) => {
                st.blocks.remove(&subject);
                None
            }
            None => None,
        }
    }

    /// Lifts the block on `addr` (an operator's decision); returns whether there was one.
    pub fn unblock(&self, addr: IpAddr) -> bool {
        let subject = Subject::of(addr);
        let mut st = self.state();
        st.recent.remove(&subject);
        st.blocks.remove(&subject).is_some()
    }

    /// Every block in force.
    pub fn blocks(&self, now: SystemTime) -> Vec<Block> {
        let mut v: Vec<Block> = self.state().blocks.values().filter(|b| b.until > now).cloned().collect();
        v.sort_by_key(|b| b.until);
        v
    }
}
