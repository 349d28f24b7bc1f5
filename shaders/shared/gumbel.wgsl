// Word to Gumbel noise, accurate in both tails (docs/contract.md, section 2), by one of two maps
// that the host picks with NOISE_MAP:
// - NOISE_MAP_LOG2 (the default): WGSL's log2 where its error bounds (3 ULP, and 2^-21
//   absolute on [0.5, 2]) are enough, an atanh series where they are not (u above 1/2, where
//   the bound near 1 would wreck the upper tail). Within tolerance only where the device's
//   log2 keeps WGSL's bounds; tests/noise_exhaustive.rs checks every word on a device.
// - NOISE_MAP_SERIES: both logarithms from an atanh series on a reduced argument, accurate
//   whatever the device's log2 does; about twice the arithmetic.
//
// NOISE_RANGE picks how many words make one draw: one (u = (x + 0.5) 2^-32, g up to 22.87) or
// two, words 2n and 2n + 1 of the stream for element n (u = (x + 0.5) 2^-64 with
// x = w[2n + 1] 2^32 + w[2n], g up to 45.05), by the same two maps.
#import philox

const NOISE_MAP_LOG2: u32 = 0u;
const NOISE_MAP_SERIES: u32 = 1u;
override NOISE_MAP: u32 = NOISE_MAP_LOG2;
const NOISE_RANGE_STANDARD: u32 = 0u;
const NOISE_RANGE_WIDE: u32 = 1u;
override NOISE_RANGE: u32 = NOISE_RANGE_STANDARD;

const LN2_HI: f32 = 0.693145751953125;      // 16 significant bits: e * LN2_HI is exact
const LN2_LO: f32 = 1.4286068203094172e-6;  // ln 2 - LN2_HI
const TWO_POW_M32: f32 = 2.3283064365386963e-10;
const TWO_POW_32: f32 = 4294967296.0;
const LN2: f32 = 0.6931471805599453;

// 2 * atanh(s) = ln((1 + s) / (1 - s)) for |s| <= 0.1716; the series' first omitted term is
// below 6e-11 relative there.
fn two_atanh_small(s: f32) -> f32 {
    let s2 = s * s;
    let p = 1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0))));
    return 2.0 * (s + s * s2 * p);
}

// ln x = e ln 2 + 2 atanh(num / den): x = 2^e (1 + s) / (1 - s) with s = num / den small.
struct LogArgument {
    e: f32,
    num: f32,
    den: f32,
}

// The reduction of a positive normal f32: e its exponent, m in [0.707, 1.414] its mantissa,
// s = (m - 1) / (m + 1).
fn log_argument(x: f32) -> LogArgument {
    let bits = bitcast<u32>(x);
    var e = i32(bits >> 23u) - 127;
    var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
    if m > 1.4142135 {
        m = m * 0.5;
        e = e + 1;
    }
    return LogArgument(f32(e), m - 1.0, m + 1.0);
}

fn ln_of_argument(a: LogArgument) -> f32 {
    return a.e * LN2_HI + (a.e * LN2_LO + two_atanh_small(a.num / a.den));
}

// Natural log of a positive normal f32, within a few ULP everywhere.
fn ln_accurate(x: f32) -> f32 {
    return ln_of_argument(log_argument(x));
}

// E = -ln(u) with u = (x + 0.5) 2^-32, an Exp(1) variate. Above u = 1/2 it works from
// w = 1 - u = u(!x), which the complemented word gives exactly, and above u = 3/4 from
// -ln(1 - w) = 2 atanh(w / (2 - w)) (w / (2 - w) <= 1/7 there). The three cases share one
// logarithm, chosen by select: as branches, any SIMD group holding words from more than one
// case (nearly all of them) would run every case.
fn exp1_of_word(x: u32) -> f32 {
    return exp1_of_uniform(x >= 0x80000000u, (f32(x) + 0.5) * TWO_POW_M32,
                           (f32(~x) + 0.5) * TWO_POW_M32);
}

// The same from a uniform u and its complement w = 1 - u, each exact to f32 rounding; `upper`
// says u > 1/2.
fn exp1_of_uniform(upper: bool, u: f32, w: f32) -> f32 {
    let a = log_argument(select(u, 1.0 - w, upper));
    // With e = 0 and num = -w the sum below is exactly -2 atanh(w / (2 - w)).
    let tail = upper && w < 0.25;
    return -ln_of_argument(LogArgument(select(a.e, 0.0, tail), select(a.num, -w, tail),
                                       select(a.den, 2.0 - w, tail)));
}

// 2 * atanh(s) for |s| <= 1/3: two more terms than two_atanh_small; the first omitted one is
// below 2e-9 relative.
fn two_atanh_third(s: f32) -> f32 {
    let s2 = s * s;
    let p = 1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0
        + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0))))));
    return 2.0 * (s + s * s2 * p);
}

// E by the log2 map. Below u = 1/2, -ln(u) = -log2(u) ln 2 with |log2(u)| >= 1, where log2's
// 3 ULP bound holds. Above, w = 1 - u from the complemented word and -ln(1 - w) =
// 2 atanh(w / (2 - w)), w / (2 - w) <= 1/3. Propagated: E within 3e-7 relative, and
// g = -log2(E) ln 2 within 2^-21 ln 2 + 3e-7 + rounding, about 6.6e-7, of the exact value
// where E is in [0.5, 2], and within 4 ULP(g) elsewhere.
fn exp1_of_word_log2(x: u32) -> f32 {
    return exp1_of_uniform_log2(x >= 0x80000000u, (f32(x) + 0.5) * TWO_POW_M32,
                                (f32(~x) + 0.5) * TWO_POW_M32);
}

fn exp1_of_uniform_log2(upper: bool, u: f32, w: f32) -> f32 {
    let by_series = two_atanh_third(w / (2.0 - w));
    let by_log2 = -LN2 * log2(u);
    return select(by_log2, by_series, upper);
}

fn gumbel_of_exp1(e: f32) -> f32 {
    if NOISE_MAP == NOISE_MAP_SERIES {
        return -ln_accurate(e);
    }
    return -LN2 * log2(e);
}

fn gumbel_of_word(x: u32) -> f32 {
    if NOISE_MAP == NOISE_MAP_SERIES {
        return gumbel_of_exp1(exp1_of_word(x));
    }
    return gumbel_of_exp1(exp1_of_word_log2(x));
}

// A draw from two words, x = hi 2^32 + lo: u = (x + 0.5) 2^-64 and w = 1 - u from the
// complemented words, each with two f32 roundings (4 ULP of it at most), which moves
// E = -ln(u) by at most 2.4e-7 relative: within the bound of the one-word map. u and w stay
// normal f32 (at least 2^-65).
fn gumbel_of_pair(lo: u32, hi: u32) -> f32 {
    let upper = hi >= 0x80000000u;
    let u = (f32(hi) * TWO_POW_32 + (f32(lo) + 0.5)) * (TWO_POW_M32 * TWO_POW_M32);
    let w = (f32(~hi) * TWO_POW_32 + (f32(~lo) + 0.5)) * (TWO_POW_M32 * TWO_POW_M32);
    if NOISE_MAP == NOISE_MAP_SERIES {
        return gumbel_of_exp1(exp1_of_uniform(upper, u, w));
    }
    return gumbel_of_exp1(exp1_of_uniform_log2(upper, u, w));
}

// The Gumbel noise of noise block `block` (flat elements 4*block .. 4*block+3) under `seed`:
// one word an element, or two (Philox blocks 2*block and 2*block + 1) with NOISE_RANGE_WIDE.
fn gumbel_block(seed: vec2<u32>, block: vec2<u32>) -> vec4<f32> {
    if NOISE_RANGE == NOISE_RANGE_WIDE {
        let first = shl64_1(block);
        let a = noise_block(seed, first);
        let b = noise_block(seed, add64_u32(first, 1u));
        return vec4<f32>(gumbel_of_pair(a.x, a.y), gumbel_of_pair(a.z, a.w),
                         gumbel_of_pair(b.x, b.y), gumbel_of_pair(b.z, b.w));
    }
    let w = noise_block(seed, block);
    return vec4<f32>(gumbel_of_word(w.x), gumbel_of_word(w.y), gumbel_of_word(w.z),
                     gumbel_of_word(w.w));
}
