//! Sets of IP address ranges with logarithmic lookup.
//!
//! IPv4 addresses are kept as `u32`, IPv6 as `u128`, each family as a sorted vector of disjoint
//! inclusive ranges; a lookup is one binary search, so a table of every delegation in the world
//! (a few hundred thousand ranges) answers in well under a microsecond.

use std::net::IpAddr;

/// A CIDR block or a single address, as written in lists: `192.0.2.0/24`, `2001:db8::/32`,
/// `198.51.100.7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl std::fmt::Display for Cidr {
    /// `ADDR/LEN`, as [`Cidr::parse`] reads it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/LEN`; host bits must be zero, so that a typo such as
    /// `10.0.0.1/8` is caught instead of silently widened.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("`{s}` is not an IP address or CIDR block (e.g. 192.0.2.0/24)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| format!("`{s}`: prefix length must be 0..={max}"))?,
        };
        let c = Cidr { addr, len };
        let (lo, _) = c.bounds();
        if lo != key(addr) {
            return Err(format!("`{s}` has host bits set; did you mean {}/{len}?", from_key(lo, addr.is_ipv4())));
        }
        Ok(c)
    }

    /// First and last address of the block, as lookup keys.
    pub fn bounds(&self) -> (u128, u128) {
        let bits = if self.addr.is_ipv4() { 32 } else { 128 };
        let host = u32::from(bits - self.len);
        let k = key(self.addr);
        let mask = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
        (k & !mask, k | mask)
    }
}

/// An address as a lookup key: IPv4 in the low 32 bits, IPv6 as its 128-bit value. The two
/// families are kept in separate tables, so the keys never mix.
pub fn key(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_key(k: u128, v4: bool) -> IpAddr {
    if v4 { IpAddr::V4((k as u32).into()) } else { IpAddr::V6(k.into()) }
}

/// The address an IPv4-mapped IPv6 address stands for (`::ffff:192.0.2.1` → `192.0.2.1`), so
/// that a dual-stack listener judges IPv4 clients by their IPv4 address.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Sorted, disjoint inclusive ranges carrying a value each.
#[derive(Debug, Clone)]
pub struct RangeMap<V> {
    v4: Vec<(u128, u128, V)>,
    v6: Vec<(u128, u128, V)>,
}

impl<V> Default for RangeMap<V> {
    fn default() -> Self {
        RangeMap { v4: Vec::new(), v6: Vec::new() }
    }
}

impl<V: Clone + PartialEq> RangeMap<V> {
    /// Builds the map from `(first, last, value, is_ipv4)` ranges in any order. Adjacent ranges
    /// with equal values are merged; where ranges with different values overlap, the one that
    /// starts first keeps the overlap (registries do not overlap; hand-written files may).
    pub fn build(ranges: impl IntoIterator<Item = (u128, u128, V, bool)>) -> RangeMap<V> {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (lo, hi, v, is_v4) in ranges {
            if lo <= hi {
                if is_v4 { v4.push((lo, hi, v)) } else { v6.push((lo, hi, v)) }
            }
        }
        RangeMap { v4: normalise(v4), v6: normalise(v6) }
    }

    /// The value of the range holding `addr`.
    pub fn get(&self, addr: IpAddr) -> Option<&V> {
        let addr = canonical(addr);
        let table = if addr.is_ipv4() { &self.v4 } else { &self.v6 };
        let k = key(addr);
        let i = table.partition_point(|(lo, _, _)| *lo <= k);
        let (_, hi, v) = table.get(i.checked_sub(1)?)?;
        (k <= *hi).then_some(v)
    }

    /// Number of ranges after merging.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn normalise<V: Clone + PartialEq>(mut r: Vec<(u128, u128, V)>) -> Vec<(u128, u128, V)> {
    r.sort_by_key(|(lo, hi, _)| (*lo, *hi));
    // `out` stays sorted and disjoint, so its last range has the greatest end so far.
    let mut out: Vec<(u128, u128, V)> = Vec::with_capacity(r.len());
    for (mut lo, hi, v) in r {
        if let Some(last) = out.last_mut() {
            if lo <= last.1 && last.2 == v {
                last.1 = last.1.max(hi);
                continue;
            }
            if lo <= last.1 {
                // Overlap with another value: the range that starts first keeps the overlap.
                if hi <= last.1 {
                    continue;
                }
                lo = last.1 + 1;
            }
            if last.1.checked_add(1) == Some(lo) && last.2 == v {
                last.1 = hi;
                continue;
            }
        }
        out.push((lo, hi, v));
    }
    out
}

/// A set of addresses: a [`RangeMap`] without values.
#[derive(Debug, Clone, Default)]
pub struct RangeSet(RangeMap<()>);

impl RangeSet {
    /// The set of the given blocks.
    pub fn from_cidrs(cidrs: impl IntoIterator<Item = Cidr>) -> RangeSet {
        RangeSet(RangeMap::build(cidrs.into_iter().map(|c| {
            let (lo, hi) = c.bounds();
            (lo, hi, (), c.addr.is_ipv4())
        })))
    }

    /// Whether `addr` is in the set.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.get(addr).is_some()
    }

    /// Number of disjoint ranges.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
