//! Country of an IP address, from the RIR statistics exchange format.
//!
//! The five regional internet registries publish every delegation of address space in one
//! line format (APNIC's `delegated-apnic-latest`, `delegated-apnic-extended-latest`, and the
//! same files of ARIN, RIPE NCC, LACNIC and AFRINIC):
//!
//! ```text
//! 2|apnic|20261122|52401|19830613|20261121|+1000          version line
//! apnic|*|ipv4|*|48200|summary                             summary lines
//! apnic|JP|ipv4|1.0.16.0|4096|20110412|allocated           records: registry|cc|type|start|value|date|status
//! apnic|JP|ipv6|2001:200::|35|19990813|allocated           (ipv4: value = number of addresses;
//! apnic||ipv4|1.0.0.0|256||available                        ipv6: value = prefix length)
//! ```
//!
//! Operators download these files (Kura makes no outbound calls); [`CountryTable::parse`]
//! turns them into sorted ranges answered by binary search. Lines about AS numbers, summaries,
//! comments and undelegated space (no country, `ZZ`, status `available`/`reserved`) are skipped;
//! anything else that does not fit the format is an error naming the line and the field.

use crate::GateError;
use crate::ranges::{Cidr, RangeMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// An ISO 3166 alpha-2 country code as the registries write it (`JP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Japan.
    pub const JP: Country = Country(*b"JP");

    /// Parses two ASCII letters, upper-cased.
    pub fn parse(s: &str) -> Option<Country> {
        let b = s.as_bytes();
        match b {
            [x, y] if x.is_ascii_alphabetic() && y.is_ascii_alphabetic() => Some(Country([x.to_ascii_uppercase(), y.to_ascii_uppercase()])),
            _ => None,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Address ranges with their country.
#[derive(Debug, Clone, Default)]
pub struct CountryTable {
    map: RangeMap<Country>,
    records: usize,
}

impl CountryTable {
    /// Reads one or more RIR statistics files (their records are combined).
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<CountryTable, GateError> {
        let mut texts = Vec::new();
        for p in paths {
            let p = p.as_ref();
            let text = std::fs::read_to_string(p).map_err(|source| GateError::Io { path: p.to_path_buf(), source })?;
            texts.push((p.display().to_string(), text));
        }
        CountryTable::parse_many(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }

    /// Parses the text of one file; `name` appears in errors.
    pub fn parse(name: &str, text: &str) -> Result<CountryTable, GateError> {
        CountryTable::parse_many([(name, text)])
    }

    fn parse_many<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<CountryTable, GateError> {
        let mut ranges = Vec::new();
        for (name, text) in files {
            for (i, line) in text.lines().enumerate() {
                let err = |what: String| GateError::Parse { file: name.to_string(), line: i + 1, what };
                if let Some(r) = parse_record(line).map_err(err)? {
                    ranges.push(r);
                }
            }
        }
        let records = ranges.len();
        Ok(CountryTable { map: RangeMap::build(ranges), records })
    }

    /// The country of `addr`, if any registry delegated it to one.
    pub fn country(&self, addr: IpAddr) -> Option<Country> {
        self.map.get(addr).copied()
    }

    /// Delegation records read.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Ranges after merging adjacent ones of the same country.
    pub fn ranges(&self) -> usize {
        self.map.len()
    }
}

type Range = (u128, u128, Country, bool);

/// One line: `Ok(None)` for lines that delegate nothing to a country.
fn parse_record(line: &str) -> Result<Option<Range>, String> {
    let line = line.trim_end_matches('\r');
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let f: Vec<&str> = line.split('|').collect();
    // The version line starts with a digit (`2|apnic|...`); summary lines have `*` as country.
    if f.first().is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())) || f.get(1) == Some(&"*") || f.last() == Some(&"summary") {
        return Ok(None);
    }
    let [_, cc, kind, start, value, _, status, ..] = f.as_slice() else {
        return Err(format!("expected registry|cc|type|start|value|date|status (7 fields), found {}", f.len()));
    };
    let (cc, kind, start, value, status) = (*cc, *kind, *start, *value, *status);
    if kind == "asn" {
        return Ok(None);
    }
    if kind != "ipv4" && kind != "ipv6" {
        return Err(format!("field 3 (type) is `{kind}`; expected ipv4, ipv6 or asn"));
    }
    if matches!(status, "available" | "reserved") || cc.is_empty() || cc.eq_ignore_ascii_case("ZZ") {
        return Ok(None);
    }
    let country = Country::parse(cc).ok_or_else(|| format!("field 2 (country) `{cc}` is not a two-letter code"))?;
    let value: u128 = value.parse().map_err(|_| format!("field 5 (value) `{value}` is not a number"))?;
    if kind == "ipv4" {
        let a: Ipv4Addr = start.parse().map_err(|_| format!("field 4 (start) `{start}` is not an IPv4 address"))?;
        let lo = u128::from(u32::from(a));
        if value == 0 || lo + value - 1 > u128::from(u32::MAX) {
            return Err(format!("field 5 (count) {value} from {a} runs past the end of IPv4 space"));
        }
        Ok(Some((lo, lo + value - 1, country, true)))
    } else {
        let a: Ipv6Addr = start.parse().map_err(|_| format!("field 4 (start) `{start}` is not an IPv6 address"))?;
        let len =
            u8::try_from(value).ok().filter(|l| *l <= 128).ok_or_else(|| format!("field 5 (prefix length) {value} is not 0..=128"))?;
        let c = Cidr::parse(&format!("{a}/{len}")).map_err(|e| format!("fields 4–5: {e}"))?;
        let (lo, hi) = c.bounds();
        Ok(Some((lo, hi, country, false)))
    }
}
