//! The censor searches' series ([`crate::engine::locator`]): where the
//! censor of a target whose `sni_filtered` or `ech_blocked` verdict is 1
//! sits, from the latest search that ended.

use super::{Metric, base_labels, key};
use crate::config::Config;
use crate::engine::locator::Found;

/// The four families of the searches `found`, in registration order.
pub(super) fn metrics(config: &Config, found: &[Found]) -> [Metric; 4] {
    let mut hop = Metric::new(
        "reachability_censor_hop",
        "The hop (IP TTL) from which the censor answers the blocked ClientHello while the one before still let it pass; absent until located, or when the verdict is not 1",
    );
    let mut path = Metric::new(
        "reachability_censor_path_hops",
        "Hops to the server: the smallest IP TTL at which the neutral ClientHello was answered past the routers",
    );
    let mut info = Metric::new(
        "reachability_censor_hop_info",
        "1 for the router at the censor's hop and at the hop before it, with the address that answered ICMP time exceeded",
    );
    let mut when = Metric::new(
        "reachability_censor_located_timestamp_seconds",
        "When the latest search for this target's censor ended, seconds since the epoch (whatever it found)",
    );
    for f in found {
        let mut labels = base_labels(&f.service, config);
        labels.push((key("target"), f.target.clone()));
        if let Some(p) = f.located.path_hops {
            path.set(&labels, f64::from(p));
        }
        for &(h, address) in &f.located.routers {
            let mut labels = labels.clone();
            labels.push((key("hop"), h.to_string()));
            labels.push((key("address"), address.to_string()));
            info.set(&labels, 1.0);
        }
        labels.push((key("kind"), f.kind.as_str().to_string()));
        if let Some(h) = f.located.censor_hop {
            hop.set(&labels, f64::from(h));
        }
        when.set(&labels, f.ended);
    }
    [hop, path, info, when]
}
