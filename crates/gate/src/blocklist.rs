//! Blocklists from threat intelligence: addresses and ranges, URLs and domains (HIC-S9).
//!
//! One entry per line; `#` or `;` starts a comment (so Spamhaus DROP-style lines such as
//! `192.0.2.0/24 ; SBL123` read as they are). Address lists take single addresses and CIDR
//! blocks of either family. Domain lists take domains (`bad.example`) or URLs
//! (`https://bad.example/path`); a listed domain blocks its subdomains too.

use crate::GateError;
use crate::ranges::{Cidr, RangeSet, canonical};
use std::collections::HashSet;
use std::net::IpAddr;

fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.split(['#', ';']).next().unwrap_or("").trim();
        (!l.is_empty()).then_some((i + 1, l))
    })
}

/// Blocked addresses and ranges.
#[derive(Debug, Clone, Default)]
pub struct IpBlocklist {
    set: RangeSet,
    entries: usize,
}

impl IpBlocklist {
    /// Parses a list; `name` appears in errors, which name the line.
    pub fn parse(name: &str, text: &str) -> Result<IpBlocklist, GateError> {
        IpBlocklist::parse_files([(name, text)])
    }

    /// Parses several lists, given as `(name, text)`, into one.
    pub fn parse_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<IpBlocklist, GateError> {
        let mut cidrs = Vec::new();
        for (name, text) in files {
            for (line, entry) in entries(text) {
                // Lists often carry extra columns after whitespace: the first one is the address.
                let first = entry.split_whitespace().next().unwrap_or(entry);
                cidrs.push(Cidr::parse(first).map_err(|what| GateError::Parse { file: name.into(), line, what })?);
            }
        }
        let entries = cidrs.len();
        Ok(IpBlocklist { set: RangeSet::from_cidrs(cidrs), entries })
    }

    /// Whether `addr` is listed.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.set.contains(addr)
    }

    /// Entries read.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Blocked domains (and the domains of blocked URLs).
#[derive(Debug, Clone, Default)]
pub struct DomainBlocklist {
    domains: HashSet<String>,
}

impl DomainBlocklist {
    /// Parses a list of domains or URLs; `name` appears in errors, which name the line.
    pub fn parse(name: &str, text: &str) -> Result<DomainBlocklist, GateError> {
        DomainBlocklist::parse_files([(name, text)])
    }

    /// Parses several lists, given as `(name, text)`, into one.
    pub fn parse_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<DomainBlocklist, GateError> {
        let mut domains = HashSet::new();
        for (name, text) in files {
            for (line, entry) in entries(text) {
                let host = host_of(entry).ok_or_else(|| GateError::Parse {
                    file: name.into(),
                    line,
                    what: format!("`{entry}` is not a domain or URL (e.g. bad.example or https://bad.example/x)"),
                })?;
                domains.insert(host);
            }
        }
        Ok(DomainBlocklist { domains })
    }

    /// Whether a host name, or any domain it belongs to, is listed. IP-literal hosts are
    /// listed by address in the same file and match exactly.
    pub fn blocks_host(&self, host: &str) -> bool {
        let Some(host) = host_of(host) else { return false };
        let mut d = host.as_str();
        loop {
            if self.domains.contains(d) {
                return true;
            }
            match d.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => d = parent,
                _ => return false,
            }
        }
    }

    /// Whether the host of a URL (or a bare host) is blocked; text that is not a URL at all
    /// is not blocked by this list.
    pub fn blocks_url(&self, url: &str) -> bool {
        host_of(url).is_some_and(|h| self.blocks_host(&h))
    }

    /// Domains listed.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

/// The lower-cased host of a URL, a bare host name or a bare IP address: scheme, user
/// information, port, path, query and a trailing dot removed. `None` when what remains is not
/// a plausible host name or IP literal.
pub fn host_of(s: &str) -> Option<String> {
    let s = s.trim();
    // A bare IPv6 address has colons that are not a port separator.
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip).to_string());
    }
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    // A scheme-relative URL (`//host/path`).
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') { v6.split_once(']')?.0 } else { hostport.split(':').next()? };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(canonical(ip).to_string());
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    ok.then_some(host)
}
