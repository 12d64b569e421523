//! Fuzzing on stable Rust (cargo-fuzz needs a nightly toolchain, which
//! this machine cannot fetch): a seeded generator of random and mutated
//! inputs for the three parsers that take bytes from outside — the STUN
//! decoder, the config loader, and the DNS answer classification (hickory's
//! message parser, then our record judgement). Each target must never
//! panic. `FUZZ_ITERATIONS` sets the executions per target: 20,000 by
//! default (CI); `bench/fuzz.sh` runs 10 million each in release mode and
//! prints the counts. `FUZZ_SEED` changes the seed.

use std::net::IpAddr;
use std::path::Path;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use reachability_exporter::config::Config;
use reachability_exporter::probe::dns::judge_records;
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
    let (mut ok, n) = (0u64, iterations());
    for _ in 0..n {
        let input = mutate(&mut rng, &seeds, &[]);
        if stun::decode(&input).is_ok() {
            ok += 1;
        }
        let _ = stun::message_len(&input);
    }
    println!("stun decoder: {n} executions, {ok} decoded");
    assert!(ok > 0 && ok < n);
}

#[test]
fn fuzz_config_loader() {
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir("tests/testdata")
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.push(
        b"timeout: 2s\nresolvers:\n  c: { doh: \"https://1.1.1.1/dns-query\", server_name: x.org }\nservices:\n  a:\n    control_sni: example.org\n    dns: { names: [a.org], resolvers: [system, c], types: [A, AAAA] }\n    tcp: [{ target: \"a.org:443\", all_addresses: true }]\n    tls: [\"a.org:443\"]\n    call_ports: [{ udp: \"1.2.3.4:3478\" }, { tcp: \"1.2.3.4:443\" }]\n    http: [{ url: \"https://a.org/\", status: [200, \"300-399\"] }]\n    download: [{ url: \"https://a.org/x\", max_bytes: 1MiB, min_rate: 100KiB }]\n    quic: [{ target: \"a.org:443\", alpn: [h3] }]\nmodules:\n  m: { kind: tls, sni: a.org }\nprobe_allow: [\"*.org:443\", \"10.0.0.0/8\"]\nlabels: { site: x }\n"
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
                // Every error names the file.
                Err(e) => assert!(e.to_string().contains("fuzz.yaml"), "{e}"),
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

#[test]
fn fuzz_dns_answer_classification() {
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
    let (mut parsed, mut passed, n) = (0u64, 0u64, iterations());
    for _ in 0..n {
        let input = mutate(&mut rng, &seeds, &[]);
        let Ok(msg) = Message::from_vec(&input) else {
            continue;
        };
        parsed += 1;
        let (ips, judged) = judge_records(&msg.answers, &allowed);
        let _: Vec<IpAddr> = ips;
        if msg.metadata.response_code != ResponseCode::NoError {
            let _ = reachability_exporter::reason::classify_rcode(msg.metadata.response_code);
        } else if judged.is_ok() {
            passed += 1;
        }
    }
    println!("dns answers: {n} executions, {parsed} parsed, {passed} judged usable");
    assert!(parsed > 0 && passed > 0);
}
