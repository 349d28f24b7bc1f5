//! Philox4x32-10 on the CPU, bit for bit the generator of the kernels (docs/contract.md, section
//! 2).

use rand_core::{RngCore, SeedableRng, impls};

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// One Philox4x32-10 block: four 32-bit words from a 128-bit counter and a 64-bit key.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// The 32-bit random word of flat element `n` of the stream of `seed`: word `n mod 4` of the
/// block with counter `[lo(n/4), hi(n/4), 0, 0]` and key `[lo(seed), hi(seed)]`.
pub fn noise_word(seed: u64, n: u64) -> u32 {
    noise_block(seed, n / 4)[(n % 4) as usize]
}

/// The 64-bit value of flat element `n` under [`crate::NoiseRange::Wide`]: words `2n` (the low
/// half) and `2n + 1` of the stream, word indices wrapping at 2^64. It is what
/// `Philox4x32::new(seed, 2n).next_u64()` returns.
pub fn noise_pair(seed: u64, n: u64) -> u64 {
    let word = n.wrapping_mul(2);
    u64::from(noise_word(seed, word)) | u64::from(noise_word(seed, word.wrapping_add(1))) << 32
}

/// The four words of noise block `block` (flat elements `4*block .. 4*block + 3`).
pub fn noise_block(seed: u64, block: u64) -> [u32; 4] {
    philox4x32_10(
        [block as u32, (block >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// The kernels' random stream as a `rand` generator: `next_u32` returns the words of flat
/// elements `offset`, `offset + 1`, ... of `seed`'s stream, the very words the GPU uses there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Philox4x32 {
    seed: u64,
    position: u64,
    block: [u32; 4],
}

impl Philox4x32 {
    /// The stream of `seed`, positioned at flat element `offset`.
    pub fn new(seed: u64, offset: u64) -> Self {
        Self {
            seed,
            position: offset,
            block: noise_block(seed, offset / 4),
        }
    }

    /// The flat index of the next word.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl RngCore for Philox4x32 {
    fn next_u32(&mut self) -> u32 {
        let word = self.block[(self.position % 4) as usize];
        self.position = self.position.wrapping_add(1);
        if self.position.is_multiple_of(4) {
            self.block = noise_block(self.seed, self.position / 4);
        }
        word
    }

    fn next_u64(&mut self) -> u64 {
        impls::next_u64_via_u32(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest)
    }
}

impl SeedableRng for Philox4x32 {
    type Seed = [u8; 8];

    /// The stream of the little-endian 64-bit seed, from offset 0.
    fn from_seed(seed: Self::Seed) -> Self {
        Self::new(u64::from_le_bytes(seed), 0)
    }

    fn seed_from_u64(state: u64) -> Self {
        Self::new(state, 0)
    }
}
