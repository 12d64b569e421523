//! Fuzzing on stable Rust (cargo-fuzz needs a nightly toolchain, which
//! this machine cannot fetch): a seeded generator of random and mutated
//! inputs for the three parsers that take bytes from outside — the STUN
//! decoder and its TCP framing, the config loader, and the DNS answer
//! classification (random record sets, and hickory's message parser on
//! mutated messages, then our record judgement). Each target must never
//! panic, and each checks a property of its result (an oracle): a round
//! trip, an independent computation, or a rule every answer obeys. `FUZZ_ITERATIONS` sets the executions per target: 20,000 by
//! default (CI); `bench/fuzz.sh` runs 10 million each in release mode and
//! prints the counts. `FUZZ_SEED` changes the seed.

use std::net::IpAddr;
use std::path::Path;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use reachability_exporter::config::Config;
use reachability_exporter::probe::dns::judge_records;
use reachability_exporter::reason::Reason;
use reachability_exporter::stun;

fn iterations() -> u64 {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Rng {
        let seed = std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x9E37_79B9_7F4A_7C15u64);
        Rng(seed ^ salt | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A mutated copy of a seed: bytes set, flipped, inserted, removed,
/// chunks duplicated, spliced from another seed, or `tokens` inserted.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], tokens: &[&[u8]]) -> Vec<u8> {
    if rng.below(8) == 0 {
        let len = rng.below(128);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if at < v.len() => v[at] = rng.next() as u8,
            1 if at < v.len() => v[at] ^= 1 << rng.below(8),
            2 => v.insert(at, rng.next() as u8),
            3 if at < v.len() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            4 if at < v.len() => {
                let end = (at + 1 + rng.below(32)).min(v.len());
                let chunk = v[at..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, chunk);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(64)).min(other.len());
                v.splice(at..at, other[from..end].iter().copied());
            }
            _ if !tokens.is_empty() => {
                let t = tokens[rng.below(tokens.len())];
                v.splice(at..at, t.iter().copied());
            }
            _ => {}
        }
    }
    v
}

fn random_response(rng: &mut Rng) -> (stun::Response, Vec<u8>) {
    let mut id = [0u8; 12];
    id.iter_mut().for_each(|b| *b = rng.next() as u8);
    let method = (rng.next() as u16) & 0x0FFF;
    let error = match rng.below(3) {
        0 => None,
        // ERROR-CODE classes 3 to 6, numbers 0 to 99 (RFC 5389 15.6).
        _ => Some(300 + (rng.below(400) as u16)),
    };
    let mapped: Option<std::net::SocketAddr> = match rng.below(3) {
        0 => None,
        1 => Some(
            (
                std::net::Ipv4Addr::from(rng.next() as u32),
                rng.next() as u16,
            )
                .into(),
        ),
        _ => Some(
            (
                std::net::Ipv6Addr::from(u128::from(rng.next()) << 64 | u128::from(rng.next())),
                rng.next() as u16,
            )
                .into(),
        ),
    };
    let bytes = stun::encode_response(&id, method, error, mapped);
    let r = stun::Response {
        id,
        method,
        error,
        mapped,
    };
    (r, bytes)
}

/// Oracles: a random response survives encode → decode unchanged; a
/// mutated one that decodes is exactly one whole message whose id and
/// cookie are where RFC 5389 puts them.
#[test]
fn fuzz_stun_decoder() {
    let id = [7u8; 12];
    let seeds = vec![
        stun::encode_response(&id, 1, None, Some("203.0.113.7:1".parse().unwrap())),
        stun::encode_response(&id, 1, Some(401), Some("[2001:db8::1]:2".parse().unwrap())),
        stun::encode_response(&id, 0x0ABC, Some(699), None),
        stun::binding_request(&id).to_vec(),
    ];
    let mut rng = Rng::new(1);
    let (mut ok, mut changed_ok, n) = (0u64, 0u64, iterations());
    for _ in 0..n {
        let (want, bytes) = random_response(&mut rng);
        assert_eq!(stun::decode(&bytes), Ok(want), "round trip of {bytes:02x?}");
        let input = mutate(&mut rng, &seeds, &[]);
        if let Ok(r) = stun::decode(&input) {
            ok += 1;
            if !seeds.contains(&input) {
                changed_ok += 1;
            }
            assert_eq!(stun::message_len(&input), Some(input.len()), "{input:02x?}");
            assert_eq!(&input[4..8], &stun::MAGIC_COOKIE.to_be_bytes());
            assert_eq!(&r.id[..], &input[8..20]);
            assert!(input[0] & 0x01 != 0, "a response has class bit C1 set");
            if let Some(code) = r.error {
                assert!(code <= 799, "{code}");
            }
        }
    }
    println!("stun decoder: {n} executions, {ok} decoded, {changed_ok} of them mutated");
    assert!(changed_ok > 0 && ok < n);
}

/// Oracle for the STUN-over-TCP framing: a valid response followed by
/// anything, cut into random chunks, is framed exactly at its end, never
/// earlier and never refused; mutated streams are framed only at a length
/// the header declares, and a refusal is final.
#[test]
fn fuzz_stun_tcp_framing() {
    const MAX: usize = 1500;
    let mut rng = Rng::new(4);
    let (mut complete, mut refused, n) = (0u64, 0u64, iterations());
    for _ in 0..n {
        let (_, msg) = random_response(&mut rng);
        let mut stream = msg.clone();
        let tail = rng.below(64);
        stream.extend((0..tail).map(|_| rng.next() as u8));
        let mut fed = 0;
        let framed = loop {
            fed = (fed + 1 + rng.below(40)).min(stream.len());
            match stun::frame(&stream[..fed], MAX) {
                stun::Framing::More => {
                    assert!(fed < msg.len(), "more asked for at {fed} of {}", msg.len());
                }
                stun::Framing::Complete(t) => break t,
                stun::Framing::Malformed => panic!("a valid response refused: {msg:02x?}"),
            }
        };
        assert_eq!(framed, msg.len());

        let seeds = [msg];
        let input = mutate(&mut rng, &seeds, &[]);
        let mut last = stun::Framing::More;
        for end in 0..=input.len() {
            let f = stun::frame(&input[..end], MAX);
            match f {
                stun::Framing::More => assert_eq!(last, stun::Framing::More, "{input:02x?}"),
                stun::Framing::Complete(t) => {
                    assert!(t <= end && t <= MAX);
                    assert_eq!(stun::message_len(&input[..t]), Some(t));
                    complete += 1;
                    break;
                }
                stun::Framing::Malformed => {
                    // Final: more bytes never make it a message.
                    for more in end..=input.len() {
                        assert_eq!(stun::frame(&input[..more], MAX), stun::Framing::Malformed);
                    }
                    refused += 1;
                    break;
                }
            }
            last = f;
        }
    }
    println!("stun tcp framing: {n} executions, {complete} framed, {refused} refused");
    assert!(complete > 0 && refused > 0);
}

#[test]
fn fuzz_config_loader() {
    // The config files (tests/testdata/lists/ holds CSV lists).
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir("tests/testdata")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    seeds.push(
        b"timeout: 2s\nresolvers:\n  c: { doh: \"https://1.1.1.1/dns-query\", server_name: x.org }\nservices:\n  a:\n    control_sni: example.org\n    dns: { names: [a.org], resolvers: [system, c], types: [A, AAAA] }\n    tcp: [{ target: \"a.org:443\", all_addresses: true }]\n    tls: [\"a.org:443\"]\n    call_ports: [{ udp: \"1.2.3.4:3478\" }, { tcp: \"1.2.3.4:443\" }]\n    http: [{ url: \"https://a.org/\", status: [200, \"300-399\"] }]\n    download: [{ url: \"https://a.org/x\", max_bytes: 1MiB, min_rate: 100KiB }]\n    quic: [{ target: \"a.org:443\", alpn: [h3] }]\nmodules:\n  m: { kind: tls, sni: a.org }\nprobe_allow: [\"*.org:443\", \"10.0.0.0/8\"]\nlabels: { site: x }\n"
            .to_vec(),
    );
    seeds.push(
        b"pace: { starts_per_second: 5, spread: 30% }\ntest_lists:\n  - { file: lists/taken.csv, checks: [dns, tls], resolvers: [system] }\n"
            .to_vec(),
    );
    let tokens: &[&[u8]] = &[
        b": ",
        b"\n  ",
        b"- ",
        b"[",
        b"]",
        b"{",
        b"}",
        b",",
        b"&a ",
        b"*a",
        b"<<: *a",
        b"!!binary ",
        b"!!str ",
        b"'",
        b"\"",
        b"#",
        b"---\n",
        b"...\n",
        b"? ",
        b"|\n  ",
        b"${HOME}",
        b"${",
        b"1e309",
        b"-1",
        b"0s",
        b"999999999999999999999KiB",
        b"\\u0000",
        b"\t",
        b"\r\n",
        b"~",
        b"null",
        b"[[[[[[[[",
        b"{a: {a: {a: {a:",
    ];
    let path = Path::new("tests/testdata/fuzz.yaml");
    let mut rng = Rng::new(2);
    let (mut valid, mut text, n) = (0u64, 0u64, iterations());
    for _ in 0..n {
        let input = mutate(&mut rng, &seeds, tokens);
        if let Ok(s) = std::str::from_utf8(&input) {
            text += 1;
            match Config::parse(s, path) {
                Ok(_) => valid += 1,
                // Every error names the file (or the test list whose row
                // it is about).
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("fuzz.yaml") || e.starts_with("tests/testdata/lists/"),
                        "{e}"
                    )
                }
            }
        }
    }
    println!("config loader: {n} executions, {text} UTF-8, {valid} valid");
    assert!(valid > 0 && text > valid);
}

fn dns_seed(rcode: ResponseCode, answers: Vec<RData>) -> Vec<u8> {
    let name = Name::from_ascii("www.example.org.").unwrap();
    let mut m = Message::new(0x1234, MessageType::Response, OpCode::Query);
    m.metadata.response_code = rcode;
    m.add_query(Query::query(name.clone(), RecordType::A));
    for data in answers {
        m.add_answer(Record::from_rdata(name.clone(), 60, data));
    }
    m.to_vec().unwrap()
}

/// The bogon ranges as CIDR text (OONI's list and the IPv6 special
/// ranges the README names): the oracle's own copy, checked with ipnet.
const BOGONS: [&str; 22] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// What the classification must say of `answers`, computed independently.
fn expected(
    answers: &[Record],
    bogons: &[ipnet::IpNet],
    allowed: &[ipnet::IpNet],
) -> (Vec<IpAddr>, Result<(), Reason>) {
    let ips: Vec<IpAddr> = answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    let bogon = |ip: &IpAddr| {
        let v4 = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
            v4 => *v4,
        };
        bogons.iter().any(|n| n.contains(&v4))
    };
    let judged = if ips.is_empty() {
        Err(Reason::DnsNoAnswer)
    } else if ips
        .iter()
        .any(|ip| bogon(ip) && !allowed.iter().any(|n| n.contains(ip)))
    {
        Err(Reason::DnsBogon)
    } else {
        Ok(())
    };
    (ips, judged)
}

/// An address biased towards the edges of the bogon ranges.
fn random_ip(rng: &mut Rng, bogons: &[ipnet::IpNet]) -> IpAddr {
    match rng.below(4) {
        0 => IpAddr::V4(std::net::Ipv4Addr::from(rng.next() as u32)),
        1 => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(rng.next()) << 64 | u128::from(rng.next()),
        )),
        2 => {
            // An IPv4-mapped IPv6 address.
            IpAddr::V6(std::net::Ipv4Addr::from(rng.next() as u32).to_ipv6_mapped())
        }
        _ => {
            let net = bogons[rng.below(bogons.len())];
            let edge = match rng.below(3) {
                0 => net.network(),
                1 => net.broadcast(),
                _ => {
                    return IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be_bytes([
                        rng.next() as u8,
                        0,
                        0,
                        0,
                    ])));
                }
            };
            // One past either edge, sometimes.
            match (edge, rng.below(3)) {
                (IpAddr::V4(a), 0) => IpAddr::V4(u32::from(a).wrapping_add(1).into()),
                (IpAddr::V4(a), 1) => IpAddr::V4(u32::from(a).wrapping_sub(1).into()),
                (IpAddr::V6(a), 0) => IpAddr::V6(u128::from(a).wrapping_add(1).into()),
                (IpAddr::V6(a), 1) => IpAddr::V6(u128::from(a).wrapping_sub(1).into()),
                (ip, _) => ip,
            }
        }
    }
}

/// Oracles: the classification of every answer — random record sets, and
/// mutated wire messages through hickory's parser — equals an independent
/// computation (addresses in order, no answer, a bogon outside the allowed
/// ranges); a response code always maps to a `dns_` reason, each of
/// NXDOMAIN, SERVFAIL and REFUSED to its own.
#[test]
fn fuzz_dns_answer_classification() {
    let bogons: Vec<ipnet::IpNet> = BOGONS.iter().map(|b| b.parse().unwrap()).collect();
    let name = Name::from_ascii("www.example.org.").unwrap();
    let seeds = vec![
        dns_seed(
            ResponseCode::NoError,
            vec![RData::A(A::new(93, 184, 215, 14))],
        ),
        dns_seed(
            ResponseCode::NoError,
            vec![
                RData::CNAME(CNAME(Name::from_ascii("cdn.example.net.").unwrap())),
                RData::A(A::new(10, 0, 0, 1)),
                RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            ],
        ),
        dns_seed(ResponseCode::NXDomain, vec![]),
        dns_seed(ResponseCode::ServFail, vec![]),
        dns_seed(
            ResponseCode::NoError,
            vec![RData::TXT(TXT::new(vec!["x".into()]))],
        ),
    ];
    let allowed: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
    let mut rng = Rng::new(3);
    let mut seen = [0u64; 3]; // ok, no answer, bogon
    let (mut parsed, n) = (0u64, iterations());
    for _ in 0..n {
        // Random record sets: our code, not hickory's parser.
        let records: Vec<Record> = (0..rng.below(5))
            .map(|_| {
                let data = match (rng.below(5), random_ip(&mut rng, &bogons)) {
                    (0, _) => RData::TXT(TXT::new(vec!["x".into()])),
                    (_, IpAddr::V4(a)) => RData::A(A(a)),
                    (_, IpAddr::V6(a)) => RData::AAAA(AAAA(a)),
                };
                Record::from_rdata(name.clone(), 60, data)
            })
            .collect();
        let got = judge_records(&records, &allowed);
        assert_eq!(got, expected(&records, &bogons, &allowed), "{records:?}");
        seen[match got.1 {
            Ok(()) => 0,
            Err(Reason::DnsNoAnswer) => 1,
            _ => 2,
        }] += 1;

        let input = mutate(&mut rng, &seeds, &[]);
        let Ok(msg) = Message::from_vec(&input) else {
            continue;
        };
        parsed += 1;
        let got = judge_records(&msg.answers, &allowed);
        assert_eq!(got, expected(&msg.answers, &bogons, &allowed));
        let rcode = msg.metadata.response_code;
        let reason = reachability_exporter::reason::classify_rcode(rcode);
        assert!(
            reason.as_str().starts_with("dns_"),
            "{rcode:?} -> {reason:?}"
        );
        let own = [
            (ResponseCode::NXDomain, Reason::DnsNxdomain),
            (ResponseCode::ServFail, Reason::DnsServfail),
            (ResponseCode::Refused, Reason::DnsRefused),
        ];
        for (code, want) in own {
            assert_eq!(rcode == code, reason == want, "{rcode:?} -> {reason:?}");
        }
    }
    println!(
        "dns answers: {n} record sets ({} usable, {} no answer, {} bogon), {n} wire messages, {parsed} parsed",
        seen[0], seen[1], seen[2]
    );
    // Every classification is reached often, not by a lucky seed.
    assert!(seen.iter().all(|&k| k > n / 20), "{seen:?}");
    assert!(parsed > 0);
}
