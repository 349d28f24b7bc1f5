//! The CPU generator against Random123's known answers, and the stream it exposes.

use gumbel_wgpu::philox::Philox4x32;
use gumbel_wgpu::philox::{noise_word, philox4x32_10};
use gumbel_wgpu::reference::gumbel_of_word;
use rand_core::{RngCore, SeedableRng};

#[test]
fn philox_reproduces_random123_known_answers() {
    let cases = [
        (
            [0, 0, 0, 0],
            [0, 0],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (counter, key, expected) in cases {
        assert_eq!(
            philox4x32_10(counter, key),
            expected,
            "counter {counter:x?} key {key:x?}"
        );
    }
}

#[test]
fn noise_word_addresses_blocks_by_flat_index() {
    let seed = 0x0123_4567_89ab_cdef;
    // Element n is word n mod 4 of the block with counter n / 4, also past 2^32 blocks.
    for n in [
        0u64,
        1,
        5,
        4 * (1 << 32) - 1,
        4 * (1 << 32),
        4 * (1 << 32) + 3,
    ] {
        let block = n / 4;
        let words = philox4x32_10(
            [block as u32, (block >> 32) as u32, 0, 0],
            [seed as u32, (seed >> 32) as u32],
        );
        assert_eq!(noise_word(seed, n), words[(n % 4) as usize], "n = {n}");
    }
}

#[test]
fn rng_stream_matches_flat_addressing_from_any_offset() {
    let seed = 42;
    for offset in [0u64, 1, 2, 3, 4, 7, (1 << 34) - 2] {
        let mut rng = Philox4x32::new(seed, offset);
        for i in 0..37 {
            assert_eq!(
                rng.next_u32(),
                noise_word(seed, offset + i),
                "offset {offset} + {i}"
            );
        }
        assert_eq!(rng.position(), offset + 37);
    }
    let mut a = Philox4x32::seed_from_u64(seed);
    let mut b = Philox4x32::from_seed(seed.to_le_bytes());
    assert_eq!(a.next_u64(), b.next_u64());
    let mut bytes = [0u8; 12];
    a.fill_bytes(&mut bytes);
    let expected: Vec<u8> = (2..5)
        .flat_map(|n| noise_word(seed, n).to_le_bytes())
        .collect();
    assert_eq!(bytes.to_vec(), expected);
}

#[test]
fn reference_gumbel_is_exact_in_both_tails() {
    // Closed forms at the extreme words, independent of the reference's formula:
    // word 0: u = 2^-33, g = -ln(33 ln 2); word 2^32 - 1: 1 - u = 2^-33, E = -ln(1 - 2^-33).
    let w = 2f64.powi(-33);
    let e_top = w + w * w / 2.0 + w * w * w / 3.0;
    assert!((gumbel_of_word(0) + (33.0 * 2f64.ln()).ln()).abs() < 1e-14);
    assert!((gumbel_of_word(u32::MAX) + e_top.ln()).abs() < 1e-12);
    assert!((gumbel_of_word(u32::MAX) - 22.873).abs() < 1e-3);
    // Mid-range words, where the naive formula is accurate too.
    for x in [1u32 << 20, 1 << 30, 3 << 30] {
        let u = (f64::from(x) + 0.5) / 4_294_967_296.0;
        assert!(
            (gumbel_of_word(x) + (-u.ln()).ln()).abs() < 1e-12,
            "x = {x}"
        );
    }
}
