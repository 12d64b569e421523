//! Where on the path the censor sits: the TTL search of OONI's
//! `tlsmiddlebox` and Censored Planet's CenTrace, as pure logic over a
//! [`Prober`] (the network one is `probe::ttl`).
//!
//! A probe connects normally, then sends a ClientHello whose packets may
//! cross `n` hops (IP TTL `n`). Below the censor, the router at hop `n`
//! answers with ICMP time exceeded ([`Answer::Expired`]); from the censor's
//! hop on, the censor's own answer comes instead (a reset, or silence for a
//! drop). The hop is the smallest `n` at which the real ClientHello draws
//! the censor's answer, while at `n - 1` it still expired and at `n` a
//! neutral one (another SNI, or no GREASE-ECH) still expires or gets
//! through: these three answers are the proof a located hop carries.
//!
//! The search is short: the path length by bisection with the neutral
//! ClientHello (it gets through from the server's hop on, whatever silent
//! routers lie before), then the censor's hop by bisection with the real
//! one below it. A silence is asked again, paced (routers rate-limit their
//! ICMP), before it counts. When the proof does not hold — a router that
//! never answers, a path that changes, a load balancer — nothing is
//! located: a wrong hop would be worse than none.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// What one TTL-limited ClientHello drew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A router on the way answered ICMP time exceeded: the packet died
    /// before anything acted on it.
    Expired,
    /// A TCP reset.
    Reset,
    /// The connection was closed (FIN) without an answer.
    Closed,
    /// Nothing came within the probe's time, asked again.
    Silent,
    /// The server answered (TLS bytes came back).
    Through,
}

impl Answer {
    /// What a censor answers: a reset, a close, or silence.
    fn is_censor_like(self) -> bool {
        matches!(self, Answer::Reset | Answer::Closed | Answer::Silent)
    }

    /// A name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Expired => "expired",
            Answer::Reset => "reset",
            Answer::Closed => "closed",
            Answer::Silent => "silent",
            Answer::Through => "through",
        }
    }
}

/// Which ClientHello a probe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hello {
    /// The one the censor acts on (the real SNI, or the one carrying
    /// GREASE-ECH).
    Real,
    /// The neutral one (the control SNI, or the plain ClientHello).
    Neutral,
}

impl Hello {
    /// A name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Hello::Real => "real",
            Hello::Neutral => "neutral",
        }
    }
}

/// Sends TTL-limited ClientHellos and asks routers their address.
pub trait Prober {
    /// What a ClientHello `hello` sent with IP TTL `ttl` over a fresh
    /// connection draws.
    fn probe(&self, ttl: u8, hello: Hello) -> impl Future<Output = Answer> + Send;
    /// The address of the router at hop `ttl`, if it answers time exceeded.
    fn router(&self, ttl: u8) -> impl Future<Output = Option<IpAddr>> + Send;
}

/// How a search is bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest path tried.
    pub max_hops: u8,
    /// How many times a silence is asked again before it counts.
    pub retries: u32,
    /// The pause before asking a silence again.
    pub pace: Duration,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Located {
    /// Hops to the server: the smallest TTL at which the neutral
    /// ClientHello got an answer past the routers (`None`: not within
    /// `max_hops`).
    pub path_hops: Option<u8>,
    /// The censor's hop, when proven (see the module's doc).
    pub censor_hop: Option<u8>,
    /// The routers' addresses at the censor's hop and the hop before it
    /// (those that answered), hop first.
    pub routers: Vec<(u8, IpAddr)>,
    /// Every answer the search drew, in TTL order: what a log shows.
    pub answers: Vec<(u8, Hello, Answer)>,
}

impl Located {
    /// In words, as the status page and `check` show it beside the
    /// verdict: "censor at hop 3 of 4, after 192.0.2.2" (the router before
    /// the censor, when it answered), or why it is not located.
    pub fn describe(&self) -> String {
        let of = self.path_hops.map_or(String::new(), |p| format!(" of {p}"));
        match self.censor_hop {
            Some(hop) => {
                let before = self.routers.iter().find(|(h, _)| *h + 1 == hop);
                let after = before.map_or(String::new(), |(_, a)| format!(", after {a}"));
                format!("censor at hop {hop}{of}{after}")
            }
            None if self.path_hops.is_none() => {
                "censor not located: the server was not reached within max_hops".into()
            }
            None => "censor not located: no hop could be proven".into(),
        }
    }
}

/// The answers a search has drawn, each asked once (silences again,
/// paced).
struct Asked<'a, P> {
    prober: &'a P,
    limits: Limits,
    seen: HashMap<(u8, Hello), Answer>,
}

impl<P: Prober> Asked<'_, P> {
    async fn ask(&mut self, ttl: u8, hello: Hello) -> Answer {
        if let Some(&a) = self.seen.get(&(ttl, hello)) {
            return a;
        }
        let mut answer = self.prober.probe(ttl, hello).await;
        for _ in 0..self.limits.retries {
            if answer != Answer::Silent {
                break;
            }
            tokio::time::sleep(self.limits.pace).await;
            answer = self.prober.probe(ttl, hello).await;
        }
        self.seen.insert((ttl, hello), answer);
        answer
    }

    /// The smallest TTL in `lo..=hi` for which `reached` holds of the
    /// answer to `hello`, given that it holds at `hi` (bisection: `reached`
    /// is taken to hold from some TTL on).
    async fn first(&mut self, hello: Hello, lo: u8, hi: u8, reached: fn(Answer) -> bool) -> u8 {
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match reached(self.ask(mid, hello).await) {
                true => hi = mid,
                false => lo = mid + 1,
            }
        }
        hi
    }
}

/// Locates the censor on the path `prober` probes.
pub async fn search<P: Prober>(prober: &P, limits: Limits) -> Located {
    let mut asked = Asked {
        prober,
        limits,
        seen: HashMap::new(),
    };
    let max = limits.max_hops.max(1);
    // Past the routers, the neutral ClientHello is answered by the server
    // (or, for a server that refuses the name, closed or reset).
    let past_routers = |a: Answer| matches!(a, Answer::Through | Answer::Reset | Answer::Closed);
    let mut located = Located::default();
    if past_routers(asked.ask(max, Hello::Neutral).await) {
        let path = asked.first(Hello::Neutral, 1, max, past_routers).await;
        located.path_hops = Some(path);
        // A real ClientHello the server answers at the path's end is not
        // blocked on this path (now).
        if asked.ask(path, Hello::Real).await != Answer::Through {
            let hop = asked
                .first(Hello::Real, 1, path, |a| a != Answer::Expired)
                .await;
            if proven(&mut asked, hop).await {
                located.censor_hop = Some(hop);
                for ttl in [hop, hop - 1].into_iter().filter(|&t| t > 0) {
                    if let Some(addr) = prober.router(ttl).await {
                        located.routers.push((ttl, addr));
                    }
                }
            }
        }
    }
    let mut answers: Vec<_> = asked
        .seen
        .into_iter()
        .map(|((t, h), a)| (t, h, a))
        .collect();
    answers.sort_by_key(|&(t, h, _)| (t, h == Hello::Neutral));
    located.answers = answers;
    located
}

/// Whether the answers prove the censor at `hop`: the real ClientHello
/// draws a censor's answer there and expired one hop before (the packet
/// reached the previous router untouched), while the neutral one at `hop`
/// expires or gets through (so the silence or reset is not the router's).
async fn proven<P: Prober>(asked: &mut Asked<'_, P>, hop: u8) -> bool {
    let real = asked.ask(hop, Hello::Real).await;
    let before = match hop {
        1 => Answer::Expired,
        _ => asked.ask(hop - 1, Hello::Real).await,
    };
    let neutral = asked.ask(hop, Hello::Neutral).await;
    real.is_censor_like()
        && before == Answer::Expired
        && matches!(neutral, Answer::Expired | Answer::Through)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A path of routers (`None`: one that never answers time exceeded),
    /// then the server; the censor acts on packets that reach hop `censor`
    /// with `answer`.
    struct Path {
        routers: Vec<Option<IpAddr>>,
        censor: Option<(u8, Answer)>,
        /// Silences left to give before answering (ICMP rate limiting).
        limited: Mutex<u32>,
        sent: Mutex<u32>,
    }

    impl Path {
        fn new(routers: usize, censor: Option<(u8, Answer)>) -> Path {
            let routers = (1..=routers)
                .map(|i| Some(IpAddr::from([10, 0, i as u8, 1])))
                .collect();
            Path {
                routers,
                censor,
                limited: Mutex::new(0),
                sent: Mutex::new(0),
            }
        }
    }

    impl Prober for Path {
        async fn probe(&self, ttl: u8, hello: Hello) -> Answer {
            *self.sent.lock().unwrap() += 1;
            let server = self.routers.len() as u8 + 1;
            if let Some((hop, answer)) = self.censor
                && hello == Hello::Real
                && ttl >= hop
            {
                return answer;
            }
            if ttl >= server {
                return Answer::Through;
            }
            let mut limited = self.limited.lock().unwrap();
            if *limited > 0 {
                *limited -= 1;
                return Answer::Silent;
            }
            match self.routers[usize::from(ttl) - 1] {
                Some(_) => Answer::Expired,
                None => Answer::Silent,
            }
        }

        async fn router(&self, ttl: u8) -> Option<IpAddr> {
            self.routers.get(usize::from(ttl) - 1).copied().flatten()
        }
    }

    fn limits() -> Limits {
        Limits {
            max_hops: 30,
            retries: 2,
            pace: Duration::ZERO,
        }
    }

    fn hop(path: &Path) -> (Option<u8>, Option<u8>, Vec<(u8, IpAddr)>) {
        let l = block_on(search(path, limits()));
        (l.path_hops, l.censor_hop, l.routers)
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn r(i: u8) -> IpAddr {
        IpAddr::from([10, 0, i, 1])
    }

    #[test]
    fn a_reset_is_located_at_its_hop_with_the_routers_around_it() {
        // Three routers, the server at hop 4; the censor resets from hop 3.
        let p = Path::new(3, Some((3, Answer::Reset)));
        assert_eq!(hop(&p), (Some(4), Some(3), vec![(3, r(3)), (2, r(2))]));
        for at in 1..=4 {
            let p = Path::new(3, Some((at, Answer::Reset)));
            let want: Vec<_> = [at, at - 1]
                .into_iter()
                .filter(|&t| (1..=3).contains(&t))
                .map(|t| (t, r(t)))
                .collect();
            assert_eq!(hop(&p), (Some(4), Some(at), want), "censor at {at}");
        }
    }

    #[test]
    fn a_drop_is_located_as_a_reset_is() {
        let p = Path::new(3, Some((2, Answer::Silent)));
        assert_eq!(hop(&p), (Some(4), Some(2), vec![(2, r(2)), (1, r(1))]));
    }

    #[test]
    fn a_clean_path_locates_nothing_but_its_length() {
        let p = Path::new(5, None);
        assert_eq!(hop(&p), (Some(6), None, vec![]));
        // Bisection: a handful of probes, not one per hop.
        assert!(
            *p.sent.lock().unwrap() <= 8,
            "{} probes",
            p.sent.lock().unwrap()
        );
    }

    #[test]
    fn a_silent_router_at_the_censors_hop_gives_no_answer_rather_than_a_wrong_one() {
        // The censor drops from hop 2; router 2 sends no ICMP: the drop
        // cannot be told from the router's silence.
        let mut p = Path::new(3, Some((2, Answer::Silent)));
        p.routers[1] = None;
        assert_eq!(hop(&p).1, None);
        // Router 1 silent, censor resetting at 3: still found (router 1
        // is not needed for the proof).
        let mut p = Path::new(3, Some((3, Answer::Reset)));
        p.routers[0] = None;
        assert_eq!(hop(&p).1, Some(3));
        // Router 2 silent, censor resetting at 3: the hop before gives no
        // proof that the packet got there untouched.
        let mut p = Path::new(3, Some((3, Answer::Reset)));
        p.routers[1] = None;
        assert_eq!(hop(&p).1, None);
    }

    #[test]
    fn rate_limited_silences_are_asked_again() {
        let p = Path::new(3, Some((3, Answer::Reset)));
        *p.limited.lock().unwrap() = 2;
        assert_eq!(hop(&p).1, Some(3));
        // More silences than retries: no proof, no hop.
        let p = Path::new(3, Some((3, Answer::Reset)));
        *p.limited.lock().unwrap() = 100;
        assert_eq!(hop(&p).1, None);
    }

    /// Answers per TTL, for paths no router chain makes.
    struct Table(fn(u8, Hello) -> Answer);

    impl Prober for Table {
        async fn probe(&self, ttl: u8, hello: Hello) -> Answer {
            (self.0)(ttl, hello)
        }
        async fn router(&self, _: u8) -> Option<IpAddr> {
            None
        }
    }

    #[test]
    fn a_path_that_changes_under_the_search_gives_no_hop() {
        // The real ClientHello got through at TTL 2 (a shorter route for
        // a moment) yet was reset at 3 and 4: the server answered it at
        // the hop the bisection found, which proves no censor there.
        let p = Table(|ttl, hello| match (hello, ttl) {
            (_, 1) => Answer::Expired,
            (Hello::Real, 2) => Answer::Through,
            (Hello::Real, _) => Answer::Reset,
            (Hello::Neutral, 2 | 3) => Answer::Expired,
            (Hello::Neutral, _) => Answer::Through,
        });
        let l = block_on(search(&p, limits()));
        assert_eq!((l.path_hops, l.censor_hop), (Some(4), None));
    }

    #[test]
    fn answers_read_as_the_log_writes_them() {
        let p = Path::new(3, Some((3, Answer::Reset)));
        let l = block_on(search(&p, limits()));
        let said: Vec<String> = l
            .answers
            .iter()
            .map(|(ttl, hello, a)| format!("{ttl}/{}:{}", hello.as_str(), a.as_str()))
            .collect();
        assert!(said.contains(&"2/real:expired".to_string()), "{said:?}");
        assert!(said.contains(&"3/real:reset".to_string()), "{said:?}");
        assert!(said.contains(&"3/neutral:expired".to_string()), "{said:?}");
        assert!(said.contains(&"30/neutral:through".to_string()), "{said:?}");
        // In TTL order, the real ClientHello's answer before the neutral one's.
        let at = |a: &str| said.iter().position(|s| s == a).unwrap();
        assert!(at("2/real:expired") < at("3/real:reset"), "{said:?}");
        assert!(at("3/real:reset") < at("3/neutral:expired"), "{said:?}");
        let names = [Answer::Closed, Answer::Silent].map(Answer::as_str);
        assert_eq!(names, ["closed", "silent"]);
    }

    #[test]
    fn described_with_the_router_before_the_censor_or_why_not_located() {
        let found = |censor_hop, routers| Located {
            path_hops: Some(9),
            censor_hop,
            routers,
            answers: vec![],
        };
        // The router at the censor's hop comes first; the one before it
        // is the one named.
        let l = found(Some(3), vec![(3, r(3)), (2, r(2))]);
        assert_eq!(l.describe(), "censor at hop 3 of 9, after 10.0.2.1");
        // No router before it answered: no "after".
        let l = found(Some(3), vec![(3, r(3)), (1, r(1))]);
        assert_eq!(l.describe(), "censor at hop 3 of 9");
        let l = found(None, vec![]);
        assert_eq!(l.describe(), "censor not located: no hop could be proven");
        let l = Located {
            path_hops: None,
            ..found(None, vec![])
        };
        assert_eq!(
            l.describe(),
            "censor not located: the server was not reached within max_hops"
        );
    }

    #[test]
    fn a_path_longer_than_max_hops_locates_nothing() {
        let p = Path::new(40, Some((3, Answer::Reset)));
        assert_eq!(hop(&p), (None, None, vec![]));
    }
}
