//! (frontend, backend) pairs of planned elements: which UDP flows go stale and
//! whether remembered affinity clients may point at a removed backend.

use std::net::Ipv4Addr;

use super::codec::{Codec, Data, Key};
use super::StalePair;

/// The indexes of the sets the conntrack and affinity bookkeeping reads.
pub(super) struct SetIds {
    pub(super) backends: u8,
    pub(super) backends_internal: u8,
    pub(super) affinity_frontends: u8,
}

impl SetIds {
    pub(super) fn new(codec: &Codec) -> SetIds {
        SetIds {
            backends: codec.set_index("backends"),
            backends_internal: codec.set_index("backends-internal"),
            affinity_frontends: codec.set_index("affinity-frontends"),
        }
    }

    pub(super) fn is_backend_map(&self, set: u8) -> bool {
        set == self.backends || set == self.backends_internal
    }
}

/// ((frontend address, protocol, port), (backend address, port)).
pub(super) type Pair = ((Ipv4Addr, u8, u16), (Ipv4Addr, u16));

/// The frontend of a frontend-keyed element (`daddr . l4proto . dport [. ...]`).
pub(super) fn frontend(k: &Key) -> (Ipv4Addr, u8, u16) {
    (Ipv4Addr::from(k.v[0]), k.v[1] as u8, k.v[2] as u16)
}

pub(super) fn backend_of(d: &Data) -> Option<(Ipv4Addr, u16)> {
    match d {
        Data::Values([ip, port]) => Some((Ipv4Addr::from(*ip), *port as u16)),
        _ => None,
    }
}

/// Every (frontend, backend) pair a fragment balances.
pub(super) fn pairs<'a>(
    sets: &'a SetIds,
    els: &'a [(Key, Data)],
) -> impl Iterator<Item = Pair> + 'a {
    els.iter()
        .filter(|(k, _)| sets.is_backend_map(k.set))
        .filter_map(|(k, d)| Some((frontend(k), backend_of(d)?)))
}

/// The pairs of the fragment's session-affinity frontends.
pub(super) fn sticky_pairs(sets: &SetIds, els: &[(Key, Data)]) -> Vec<Pair> {
    let sticky: std::collections::BTreeSet<(Ipv4Addr, u8, u16)> = els
        .iter()
        .filter(|(k, _)| k.set == sets.affinity_frontends)
        .map(|(k, _)| frontend(k))
        .collect();
    pairs(sets, els)
        .filter(|(fe, _)| sticky.contains(fe))
        .collect()
}

pub(super) fn udp_backends<'a>(
    sets: &'a SetIds,
    els: &'a [(Key, Data)],
) -> impl Iterator<Item = StalePair> + 'a {
    pairs(sets, els)
        .filter(|((_, proto, _), _)| *proto == 17)
        .map(|((ip, _, port), b)| ((ip, port), b))
}
