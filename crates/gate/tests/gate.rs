//! The gate's parts against hand-made and generated inputs: CIDR blocks, RIR statistics,
//! blocklists, automatic blocking with expiry, reload from files, and proxy headers
//! (HIC-S4, HIC-S9, HIC-U1, HIC-U4).

use kura_gate::autoblock::Subject;
use kura_gate::blocklist::{DomainBlocklist, IpBlocklist, host_of};
use kura_gate::geo::{Country, CountryTable};
use kura_gate::ranges::{Cidr, RangeMap, RangeSet};
use kura_gate::{AutoBlockPolicy, AutoBlocker, Failure, Gate, GateConfig, GateError, Verdict, client_addr};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const GEO: &str = "\
# A small file in the RIR statistics exchange format.
2|apnic|20261122|7|19830613|20261121|+1000
apnic|*|asn|*|1|summary
apnic|*|ipv4|*|4|summary
apnic|*|ipv6|*|1|summary
apnic|JP|asn|2497|1|19970101|allocated
apnic|JP|ipv4|1.0.16.0|4096|20110412|allocated
apnic|JP|ipv4|1.0.32.0|768|20110412|assigned
apnic|AU|ipv4|1.0.0.0|256|20110811|assigned
apnic||ipv4|1.0.64.0|256||available
apnic|JP|ipv6|2001:200::|35|19990813|allocated
arin|US|ipv4|8.8.8.0|256|19920101|assigned
";

#[test]
fn cidr_blocks_parse_strictly() {
    assert_eq!(Cidr::parse("192.0.2.0/24").unwrap().bounds(), (0xC000_0200, 0xC000_02FF));
    assert_eq!(Cidr::parse("198.51.100.7").unwrap().len, 32);
    assert_eq!(Cidr::parse("::/0").unwrap().bounds(), (0, u128::MAX));
    assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().bounds(), (0, 0xFFFF_FFFF));
    let e = Cidr::parse("10.0.0.1/8").unwrap_err();
    assert!(e.contains("host bits") && e.contains("10.0.0.0/8"), "{e}");
    assert!(Cidr::parse("10.0.0.0/33").unwrap_err().contains("0..=32"));
    assert!(Cidr::parse("2001:db8::/129").is_err());
    assert!(Cidr::parse("example.org").is_err());
    assert!(Cidr::parse("").is_err());
}

#[test]
fn range_maps_merge_and_look_up_at_the_edges() {
    let r = |lo: u128, hi: u128, v: char| (lo, hi, v, true);
    let m = RangeMap::build([r(20, 29, 'b'), r(10, 19, 'a'), r(0, 9, 'a'), r(25, 40, 'c'), r(50, 50, 'd')]);
    // 0..=19 merge; 25..=29 stays with b (it starts first); c keeps 30..=40.
    assert_eq!(m.len(), 4);
    let at = |k: u32| m.get(IpAddr::V4(k.into())).copied();
    assert_eq!(
        (at(0), at(19), at(20), at(29), at(30), at(40), at(41), at(50), at(51)),
        (Some('a'), Some('a'), Some('b'), Some('b'), Some('c'), Some('c'), None, Some('d'), None)
    );
    // IPv4-mapped IPv6 addresses are judged as IPv4; real IPv6 is a separate table.
    let set = RangeSet::from_cidrs([Cidr::parse("192.0.2.0/24").unwrap()]);
    assert!(set.contains(ip("::ffff:192.0.2.9")));
    assert!(!set.contains(ip("::c000:209")));
}

#[test]
fn rir_statistics_give_countries() {
    let t = CountryTable::parse("delegated-test", GEO).unwrap();
    assert_eq!(t.records(), 5, "asn, summary, version, comment and available lines skipped");
    let c = |a: &str| t.country(ip(a)).map(|c| c.to_string());
    assert_eq!(c("1.0.16.0").as_deref(), Some("JP"));
    assert_eq!(c("1.0.31.255").as_deref(), Some("JP"));
    assert_eq!(c("1.0.32.0").as_deref(), Some("JP"));
    assert_eq!(c("1.0.34.255").as_deref(), Some("JP"), "768 addresses: not a power of two");
    assert_eq!(c("1.0.35.0"), None);
    assert_eq!(c("1.0.0.77").as_deref(), Some("AU"));
    assert_eq!(c("1.0.64.1"), None, "available space has no country");
    assert_eq!(c("2001:200:1fff:ffff::1").as_deref(), Some("JP"));
    assert_eq!(c("2001:200:2000::1"), None);
    assert_eq!(c("8.8.8.8").as_deref(), Some("US"));
    assert_eq!(c("::ffff:1.0.16.5").as_deref(), Some("JP"));
}

#[test]
fn rir_statistics_errors_name_the_line_and_field() {
    let cases = [
        ("apnic|JP|ipv4|1.0.16.0|lots|20110412|allocated", "field 5"),
        ("apnic|JP|ipv5|1.0.16.0|256|20110412|allocated", "field 3"),
        ("apnic|JP|ipv4|1.0.16.0|256", "7 fields"),
        ("apnic|JP|ipv4|255.255.255.0|512|20110412|allocated", "past the end"),
        ("apnic|JP|ipv4|1.0.16.0|0|20110412|allocated", "past the end"),
        ("apnic|JPN|ipv4|1.0.16.0|256|20110412|allocated", "field 2"),
        ("apnic|JP|ipv6|2001:200::|200|19990813|allocated", "field 5"),
        ("apnic|JP|ipv6|2001:200::1|35|19990813|allocated", "host bits"),
        ("apnic|JP|ipv4|1.0.16|256|20110412|allocated", "field 4"),
    ];
    for (line, want) in cases {
        let text = format!("2|apnic|1|1|1|1|+1000\n{line}\n");
        match CountryTable::parse("delegated-test", &text) {
            Err(GateError::Parse { file, line: n, what }) => {
                assert_eq!((file.as_str(), n), ("delegated-test", 2), "{line}");
                assert!(what.contains(want), "{line}: {what}");
            }
            other => panic!("{line}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn a_world_sized_table_agrees_with_a_linear_scan() {
    // 200,000 delegations of varied sizes in shuffled order, checked at every boundary and at
    // pseudo-random addresses against the obvious linear answer.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ccs = ["JP", "US", "CN", "KR", "DE"];
    let mut ranges = Vec::new();
    let mut at: u64 = 1 << 24;
    for _ in 0..200_000 {
        let gap = next() % 3 * 256;
        let size = 256 * (1 + next() % 8);
        at += gap;
        ranges.push((at as u32, size as u32, ccs[(next() % 5) as usize]));
        at += size;
    }
    let mut lines: Vec<String> =
        ranges.iter().map(|(s, n, c)| format!("ripencc|{c}|ipv4|{}|{n}|20200101|allocated", std::net::Ipv4Addr::from(*s))).collect();
    lines.reverse();
    let t = CountryTable::parse("world", &lines.join("\n")).unwrap();
    let linear = |a: u32| ranges.iter().find(|(s, n, _)| a >= *s && a - *s < *n).map(|(_, _, c)| *c);
    for (s, n, c) in ranges.iter().step_by(997) {
        for a in [*s, s + n - 1] {
            assert_eq!(t.country(IpAddr::V4(a.into())).map(|c| c.to_string()).as_deref(), Some(*c));
        }
        assert_eq!(t.country(IpAddr::V4((s - 1).into())).map(|c| c.to_string()).as_deref(), linear(s - 1));
    }
    for _ in 0..2_000 {
        let a = (next() % (at + 1000)) as u32;
        assert_eq!(t.country(IpAddr::V4(a.into())).map(|c| c.to_string()).as_deref(), linear(a), "{a}");
    }
    assert!(t.ranges() < 200_000, "adjacent delegations of one country merge");
}

#[test]
fn blocklists_of_addresses_and_domains() {
    let ips =
        IpBlocklist::parse("drop.txt", "; Spamhaus-style comment\n192.0.2.0/24 ; SBL1\n198.51.100.7 # one host\n\n2001:db8:bad::/48\n")
            .unwrap();
    assert_eq!(ips.len(), 3);
    assert!(ips.contains(ip("192.0.2.200")) && ips.contains(ip("198.51.100.7")) && ips.contains(ip("2001:db8:bad:1::9")));
    assert!(!ips.contains(ip("198.51.100.8")) && !ips.contains(ip("2001:db8:bae::1")));
    match IpBlocklist::parse("drop.txt", "192.0.2.0/24\n10.1.2.3/8\n") {
        Err(GateError::Parse { file, line, what }) => assert_eq!((file.as_str(), line, what.contains("host bits")), ("drop.txt", 2, true)),
        other => panic!("{other:?}"),
    }

    let d = DomainBlocklist::parse(
        "urls.txt",
        "# threat feed\nbad.example\nhttps://User@Phish.Example:8443/login?x=1\nhttp://[2001:db8::1]/x\n",
    )
    .unwrap();
    assert!(d.blocks_host("bad.example") && d.blocks_host("cdn.bad.example") && d.blocks_host("BAD.EXAMPLE."));
    assert!(!d.blocks_host("notbad.example") && !d.blocks_host("example"));
    assert!(d.blocks_url("https://phish.example/other") && d.blocks_url("phish.example"));
    assert!(d.blocks_url("http://[2001:db8::1]:80/"));
    assert!(!d.blocks_url("https://kura.example/"));
    match DomainBlocklist::parse("urls.txt", "good.example\nhttps://exa mple.org/\n") {
        Err(GateError::Parse { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(host_of("HTTPS://a.B.c:1/x").as_deref(), Some("a.b.c"));
    assert_eq!(host_of("https:///nohost"), None);
    assert_eq!(host_of("2001:DB8::1").as_deref(), Some("2001:db8::1"), "a bare IPv6 address is a host");
    assert!(d.blocks_host("2001:db8::1"));
}

#[test]
fn repeated_failures_block_for_a_period_and_the_block_expires() {
    let policy = AutoBlockPolicy { threshold: 3, window: Duration::from_secs(60), block_for: Duration::from_secs(600), max_tracked: 1000 };
    let b = AutoBlocker::new(policy);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let a = ip("203.0.113.5");
    // Failures spread wider than the window never add up.
    for k in 0..10u64 {
        assert_eq!(b.record(a, Failure::FailedLogin, t0 + Duration::from_secs(k * 31)), None);
    }
    let t1 = t0 + Duration::from_secs(10_000);
    assert_eq!(b.record(a, Failure::FailedLogin, t1), None);
    assert_eq!(b.record(a, Failure::BadCertificate, t1 + Duration::from_secs(1)), None);
    let block = b.record(a, Failure::Scanning, t1 + Duration::from_secs(2)).expect("third failure in the window blocks");
    assert_eq!((block.failures, block.last, block.subject), (3, Failure::Scanning, Subject::of(a)));
    assert_eq!(block.until, t1 + Duration::from_secs(602));
    // Further failures while blocked do not announce a second block.
    assert_eq!(b.record(a, Failure::Scanning, t1 + Duration::from_secs(3)), None);
    assert!(b.blocked(a, t1 + Duration::from_secs(601)).is_some());
    assert!(b.blocked(ip("203.0.113.6"), t1).is_none(), "neighbours are not blocked");
    assert_eq!(b.blocks(t1).len(), 1);
    // Expiry.
    assert!(b.blocked(a, t1 + Duration::from_secs(602)).is_none());
    assert!(b.blocks(t1 + Duration::from_secs(602)).is_empty());
    // An operator lifts a block.
    for k in 0..3 {
        b.record(a, Failure::FailedLogin, t1 + Duration::from_secs(1000 + k));
    }
    assert!(b.blocked(a, t1 + Duration::from_secs(1003)).is_some());
    assert!(b.unblock(a));
    assert!(b.blocked(a, t1 + Duration::from_secs(1003)).is_none());
}

#[test]
fn ipv6_failures_count_per_64_and_tracking_is_bounded() {
    let policy = AutoBlockPolicy { threshold: 3, window: Duration::from_secs(60), block_for: Duration::from_secs(60), max_tracked: 100 };
    let b = AutoBlocker::new(policy);
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    b.record(ip("2001:db8:1:2::1"), Failure::FailedLogin, t);
    b.record(ip("2001:db8:1:2::ffff"), Failure::FailedLogin, t);
    let block = b.record(ip("2001:db8:1:2:abcd::9"), Failure::FailedLogin, t).expect("one /64");
    assert_eq!(block.subject.to_string(), "2001:db8:1:2::/64");
    assert!(b.blocked(ip("2001:db8:1:2:ffff::1"), t).is_some());
    assert!(b.blocked(ip("2001:db8:1:3::1"), t).is_none());
    // A flood of distinct addresses never grows the tracker past its bound, and an address
    // that keeps failing is still blocked.
    for i in 0..10_000u32 {
        b.record(IpAddr::V4((0x0A00_0000 + i).into()), Failure::Scanning, t + Duration::from_millis(u64::from(i)));
    }
    let hot = ip("192.0.2.1");
    let later = t + Duration::from_secs(20);
    b.record(hot, Failure::Scanning, later);
    b.record(hot, Failure::Scanning, later);
    assert!(b.record(hot, Failure::Scanning, later).is_some());
}

#[test]
fn the_gate_combines_lists_in_order() {
    let cfg =
        GateConfig { internal: vec![Cidr::parse("10.20.0.0/16").unwrap(), Cidr::parse("127.0.0.1/32").unwrap()], ..GateConfig::default() };
    let gate = Gate::from_texts(cfg, Some(GEO), "1.0.17.0/24\n10.20.9.9\n", "").unwrap();
    let now = SystemTime::now();
    assert_eq!(gate.check(ip("1.0.16.1"), now), Verdict::Allow);
    assert_eq!(gate.check(ip("1.0.17.1"), now), Verdict::Listed, "a listed address in Japan");
    assert_eq!(gate.check(ip("10.20.1.1"), now), Verdict::Allow, "internal");
    assert_eq!(gate.check(ip("10.20.9.9"), now), Verdict::Listed, "a listed internal address");
    assert_eq!(gate.check(ip("8.8.8.8"), now), Verdict::Foreign { country: Country::parse("US") });
    assert_eq!(gate.check(ip("192.0.2.1"), now), Verdict::Foreign { country: None }, "unknown space is foreign");
    assert_eq!(gate.check(ip("127.0.0.1"), now), Verdict::Allow);
    assert_eq!(gate.check(ip("127.0.0.2"), now), Verdict::Foreign { country: None }, "only the configured loopback address");
    // Automatic blocks apply to any address, Japanese ones included.
    for _ in 0..10 {
        gate.record_failure(ip("1.0.16.9"), Failure::FailedLogin, now);
    }
    assert!(matches!(gate.check(ip("1.0.16.9"), now), Verdict::AutoBlocked(_)));
    assert_eq!(gate.check(ip("1.0.16.10"), now), Verdict::Allow);

    // Without any statistics file, only internal ranges pass (fail closed).
    let bare = Gate::from_texts(GateConfig::default(), None, "", "").unwrap();
    assert_eq!(bare.check(ip("1.0.16.1"), now), Verdict::Foreign { country: None });
    assert_eq!(bare.check(ip("::1"), now), Verdict::Allow);
}

#[test]
fn lists_reload_from_files_and_a_broken_file_keeps_the_old_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (geo, ips, urls) = (dir.path().join("delegated"), dir.path().join("ips.txt"), dir.path().join("urls.txt"));
    std::fs::write(&geo, GEO).unwrap();
    std::fs::write(&ips, "# none yet\n").unwrap();
    std::fs::write(&urls, "bad.example\n").unwrap();
    let cfg = GateConfig {
        geo_files: vec![geo.clone()],
        ip_blocklists: vec![ips.clone()],
        domain_blocklists: vec![urls.clone()],
        ..GateConfig::default()
    };
    let gate = Gate::load(cfg).unwrap();
    let now = SystemTime::now();
    assert_eq!(gate.check(ip("1.0.16.1"), now), Verdict::Allow);
    assert!(!gate.reload_if_changed().unwrap(), "nothing changed");

    std::fs::write(&ips, "# new threat\n1.0.16.0/28\n").unwrap();
    std::fs::write(&urls, "bad.example\nworse.example\n").unwrap();
    assert!(gate.reload_if_changed().unwrap());
    assert_eq!(gate.check(ip("1.0.16.1"), now), Verdict::Listed);
    assert!(gate.blocks_url("https://www.worse.example/"));

    std::fs::write(&ips, "1.0.16.0/28\nnot-an-address\n").unwrap();
    match gate.reload_if_changed() {
        Err(GateError::Parse { file, line, .. }) => assert!(file.ends_with("ips.txt") && line == 2, "{file}:{line}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(gate.check(ip("1.0.16.1"), now), Verdict::Listed, "old lists stay in force");

    std::fs::remove_file(&geo).unwrap();
    assert!(matches!(gate.reload(), Err(GateError::Io { .. })));
    assert_eq!(gate.check(ip("1.0.16.100"), now), Verdict::Allow);
}

#[test]
fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let proxies = RangeSet::from_cidrs([Cidr::parse("10.0.0.0/8").unwrap()]);
    let peer = ip("10.1.1.1");
    assert_eq!(client_addr(peer, Some("1.0.16.5"), &proxies), ip("1.0.16.5"));
    // The client wrote a fake first hop; the proxy appended the real one.
    assert_eq!(client_addr(peer, Some("1.2.3.4, 8.8.8.8"), &proxies), ip("8.8.8.8"));
    // Two proxies in a row.
    assert_eq!(client_addr(peer, Some("8.8.8.8, 10.2.2.2"), &proxies), ip("8.8.8.8"));
    // Garbage stops at the last trusted hop.
    assert_eq!(client_addr(peer, Some("8.8.8.8, junk"), &proxies), peer);
    // An untrusted peer's header is ignored.
    assert_eq!(client_addr(ip("8.8.4.4"), Some("1.0.16.5"), &proxies), ip("8.8.4.4"));
    assert_eq!(client_addr(peer, None, &proxies), peer);
}
