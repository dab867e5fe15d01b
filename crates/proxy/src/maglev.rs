//! Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of prime
//! size M where each backend owns about M/N slots, filled from per-backend
//! permutations so that removing or adding one backend moves only the slots it
//! gains or loses (about 1/N of the flows), not a reshuffle of everything.

use crate::model::Backend;

/// Table sizes: primes, so every `skip` in 1..M is coprime with M.
const SIZES: [u32; 9] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521];

/// The table size for `n` backends: the smallest listed prime of at least 10 n
/// (the paper's rule of thumb keeps the imbalance near 10 %), at most 65521.
pub fn table_size(n: usize) -> u32 {
    let want = u32::try_from(n.saturating_mul(10)).unwrap_or(u32::MAX);
    SIZES
        .iter()
        .copied()
        .find(|s| *s >= want)
        .unwrap_or(SIZES[SIZES.len() - 1])
}

fn fnv(seed: u64, b: &Backend) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in b.ip.octets().into_iter().chain(b.port.to_be_bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The lookup table: `table[slot]` is an index into `backends` (which must be
/// non-empty). Deterministic for the same backends in any order.
pub fn populate(backends: &[Backend], m: u32) -> Vec<usize> {
    let m = m as usize;
    let mut order: Vec<usize> = (0..backends.len()).collect();
    order.sort_by_key(|i| backends[*i]);
    let perms: Vec<(usize, usize)> = order
        .iter()
        .map(|i| {
            let b = &backends[*i];
            let offset = (fnv(0x9e37_79b9, b) % m as u64) as usize;
            let skip = (fnv(0x85eb_ca6b, b) % (m as u64 - 1)) as usize + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0usize; order.len()];
    let mut table = vec![usize::MAX; m];
    let mut filled = 0;
    'outer: loop {
        for (k, &(offset, skip)) in perms.iter().enumerate() {
            let mut slot = (offset + next[k] * skip) % m;
            while table[slot] != usize::MAX {
                next[k] += 1;
                slot = (offset + next[k] * skip) % m;
            }
            table[slot] = order[k];
            next[k] += 1;
            filled += 1;
            if filled == m {
                break 'outer;
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: u8) -> Vec<Backend> {
        (1..=n)
            .map(|i| Backend {
                ip: [10, 244, 1, i].into(),
                port: 8080,
            })
            .collect()
    }

    #[test]
    fn slots_are_balanced() {
        let b = backends(5);
        let t = populate(&b, table_size(b.len()));
        assert_eq!(t.len(), 251);
        for i in 0..5 {
            let n = t.iter().filter(|x| **x == i).count();
            assert!((45..=56).contains(&n), "backend {i} has {n} of 251 slots");
        }
    }

    #[test]
    fn removing_a_backend_moves_few_slots() {
        let b = backends(10);
        let m = table_size(b.len());
        let before = populate(&b, m);
        let fewer: Vec<Backend> = b
            .iter()
            .copied()
            .filter(|x| x.ip.octets()[3] != 4)
            .collect();
        let after = populate(&fewer, m);
        // slots that pointed at a surviving backend and now point elsewhere
        let moved = (0..m as usize)
            .filter(|s| b[before[*s]].ip.octets()[3] != 4 && b[before[*s]] != fewer[after[*s]])
            .count();
        assert!(
            moved * 100 / (m as usize) < 10,
            "{moved} of {m} surviving slots moved"
        );
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let mut b = backends(4);
        let t1: Vec<Backend> = populate(&b, 251).into_iter().map(|i| b[i]).collect();
        b.reverse();
        let t2: Vec<Backend> = populate(&b, 251).into_iter().map(|i| b[i]).collect();
        assert_eq!(t1, t2);
    }
}
