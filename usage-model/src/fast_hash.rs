use std::hash::{BuildHasher, Hasher, RandomState};

/// A fast hash for maps and sets keyed by the workspace's own values
/// (addresses, query tags, ids): a multiply-rotate hash, as rustc's
/// `FxHash`, started from a seed drawn at random for each builder.
///
/// It hashes a word in a few cycles, where the standard library's SipHash
/// takes tens, which matters for maps of hundreds of thousands of
/// addresses. The random seed keeps a party that only chooses keys from
/// planning collisions in advance, but the hash is not a keyed PRF: a party
/// that can both choose keys and observe timing could still learn to
/// collide them. Use it where the keys come from our own data (a plan's
/// addresses, an event log's ids), or where lookups of foreign keys cannot
/// lengthen the tables' probe sequences (only inserted keys can); keep
/// [`RandomState`] for maps filled with keys an adversary picks.
///
/// ```
/// use std::collections::HashMap;
/// use std::net::IpAddr;
/// use usage_model::FastHashBuilder;
///
/// let mut seen: HashMap<IpAddr, u32, FastHashBuilder> = HashMap::default();
/// seen.insert("203.0.113.7".parse().unwrap(), 1);
/// assert_eq!(seen.get(&"203.0.113.7".parse().unwrap()), Some(&1));
/// ```
#[derive(Clone, Debug)]
pub struct FastHashBuilder {
    seed: u64,
}

impl FastHashBuilder {
    /// A builder with a fresh random seed.
    pub fn new() -> FastHashBuilder {
        FastHashBuilder {
            seed: RandomState::new().build_hasher().finish(),
        }
    }
}

impl Default for FastHashBuilder {
    /// The same as [`FastHashBuilder::new`]: a fresh random seed.
    fn default() -> FastHashBuilder {
        FastHashBuilder::new()
    }
}

impl BuildHasher for FastHashBuilder {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.seed)
    }
}

/// The hasher of [`FastHashBuilder`]: each word of input is mixed in by a
/// rotate, an exclusive or and a multiplication.
#[derive(Clone, Debug)]
pub struct FastHasher(u64);

impl FastHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn write_isize(&mut self, i: isize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // Spread the low bits into the high ones, which pick hashbrown's
        // control bytes.
        self.0 ^ (self.0 >> 29)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn equal_keys_hash_alike_and_seeds_differ() {
        let builder = FastHashBuilder::new();
        let ip: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(builder.hash_one(ip), builder.clone().hash_one(ip));
        let other = FastHashBuilder::new();
        // Two fresh seeds: at least one of a few keys hashes differently.
        assert!((0u64..8).any(|k| builder.hash_one(k) != other.hash_one(k)));
    }

    #[test]
    fn consecutive_addresses_spread_over_buckets() {
        let builder = FastHashBuilder::new();
        // The top 7 bits pick hashbrown's control bytes, the low bits the
        // bucket: both must vary over a run of consecutive addresses.
        let hashes: Vec<u64> = (0u32..1024)
            .map(|i| builder.hash_one(IpAddr::from((0x0A00_0000 + i).to_be_bytes())))
            .collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        let top: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 500, "{}", low.len());
        assert!(top.len() > 100, "{}", top.len());
    }
}
