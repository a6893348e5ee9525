//! A Bloom filter over the hashes a [`super::KeyHashes`] holds: what answers "certainly not
//! stored" for most new keys without reading the hashes themselves, which lie on disk.

/// Bits per hash at the filter's capacity. Blocked as below, about 1 absent hash in 100 passes
/// at capacity, 1 in 1,000 at two thirds of it; each one that passes costs a read of a block
/// of a run.
const BITS_PER_HASH: usize = 10;

/// Bits in a block: a hash sets one bit in each of a block's eight words, so a lookup touches
/// one cache line.
const BLOCK_BITS: usize = 512;

/// The filter: a hash absent from it is certainly absent from the set.
#[derive(Debug)]
pub(super) struct Filter {
    /// Empty for the saturated filter, which every hash passes.
    blocks: Vec<[u64; 8]>,
}

impl Filter {
    /// An empty filter sized for `hashes` hashes at [`BITS_PER_HASH`].
    pub(super) fn with_capacity(hashes: usize) -> Filter {
        let blocks = (hashes.max(1) * BITS_PER_HASH).div_ceil(BLOCK_BITS);
        Filter { blocks: vec![[0; 8]; blocks] }
    }

    /// A filter that every hash passes, of no size: what stands in while a filter is rebuilt.
    pub(super) fn saturated() -> Filter {
        Filter { blocks: Vec::new() }
    }

    /// How many hashes the filter takes before absent hashes start to pass more often than
    /// [`BITS_PER_HASH`] allows.
    pub(super) fn capacity(&self) -> usize {
        self.blocks.len() * BLOCK_BITS / BITS_PER_HASH
    }

    /// Bytes the filter holds.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.blocks.len() * size_of::<[u64; 8]>()
    }

    pub(super) fn insert(&mut self, hash: u64) {
        if self.blocks.is_empty() {
            return;
        }
        let (block, bits) = self.place(hash);
        for (word, bit) in self.blocks[block].iter_mut().zip(bits) {
            *word |= bit;
        }
    }

    pub(super) fn may_hold(&self, hash: u64) -> bool {
        if self.blocks.is_empty() {
            return true;
        }
        let (block, bits) = self.place(hash);
        self.blocks[block].iter().zip(bits).all(|(word, bit)| word & bit != 0)
    }

    /// The block of `hash` (from its high bits) and its bit in each word of the block (six bits
    /// each from the hash, mixed so that they do not repeat the bits that chose the block).
    fn place(&self, hash: u64) -> (usize, [u64; 8]) {
        let block = ((u128::from(hash) * self.blocks.len() as u128) >> 64) as usize;
        let mixed = (hash ^ (hash >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (block, std::array::from_fn(|word| 1 << ((mixed >> (6 * word)) & 63)))
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    /// Well-spread numbers, as hashes are.
    fn spread(seed: u64, n: u64) -> impl Iterator<Item = u64> {
        (seed..seed + n).map(|i| foldhash::quality::FixedState::with_seed(7).hash_one(i))
    }

    #[test]
    fn holds_what_it_took_and_lets_few_others_pass_up_to_its_capacity() {
        let mut filter = Filter::with_capacity(100_000);
        assert!(filter.capacity() >= 100_000 && filter.heap_bytes() <= 100_000 * BITS_PER_HASH / 8 + 64);
        assert!(spread(0, 100_000).all(|h| !filter.may_hold(h)), "an empty filter holds nothing");
        spread(0, 100_000).for_each(|h| filter.insert(h));
        assert!(spread(0, 100_000).all(|h| filter.may_hold(h)), "no hash it took is ever missed");
        let passed = spread(1 << 40, 1_000_000).filter(|h| filter.may_hold(*h)).count();
        assert!(passed < 15_000, "{passed} of 1,000,000 absent hashes passed at capacity");
        let mut half = Filter::with_capacity(200_000);
        spread(0, 100_000).for_each(|h| half.insert(h));
        let passed_half = spread(1 << 40, 1_000_000).filter(|h| half.may_hold(*h)).count();
        assert!(passed_half * 5 < passed, "at half its capacity, far fewer pass: {passed_half} against {passed}");
        let mut saturated = Filter::saturated();
        saturated.insert(7);
        assert!(saturated.may_hold(7) && saturated.may_hold(8), "every hash passes");
        assert_eq!((saturated.capacity(), saturated.heap_bytes()), (0, 0));
    }
}
