// Word to Gumbel noise, accurate in both tails (docs/contract.md, section 2), by one of two maps
// that the host picks with NOISE_MAP:
// - NOISE_MAP_LOG2 (the default): WGSL's log2 where its error bounds (3 ULP, and 2^-21
//   absolute on [0.5, 2]) are enough, an atanh series where they are not (u above 1/2, where
//   the bound near 1 would wreck the upper tail). Within tolerance only where the device's
//   log2 keeps WGSL's bounds; tests/noise_exhaustive.rs checks every word on a device.
// - NOISE_MAP_SERIES: both logarithms from an atanh series on a reduced argument, accurate
//   whatever the device's log2 does; about twice the arithmetic.
const NOISE_MAP_LOG2: u32 = 0u;
const NOISE_MAP_SERIES: u32 = 1u;
override NOISE_MAP: u32 = NOISE_MAP_LOG2;

const LN2_HI: f32 = 0.693145751953125;      // 16 significant bits: e * LN2_HI is exact
const LN2_LO: f32 = 1.4286068203094172e-6;  // ln 2 - LN2_HI
const TWO_POW_M32: f32 = 2.3283064365386963e-10;
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
    let upper = x >= 0x80000000u;
    let w = (f32(~x) + 0.5) * TWO_POW_M32;
    let a = log_argument(select((f32(x) + 0.5) * TWO_POW_M32, 1.0 - w, upper));
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
    let w = (f32(~x) + 0.5) * TWO_POW_M32;
    let by_series = two_atanh_third(w / (2.0 - w));
    let by_log2 = -LN2 * log2((f32(x) + 0.5) * TWO_POW_M32);
    return select(by_log2, by_series, x >= 0x80000000u);
}

fn gumbel_of_word(x: u32) -> f32 {
    if NOISE_MAP == NOISE_MAP_SERIES {
        return -ln_accurate(exp1_of_word(x));
    }
    return -LN2 * log2(exp1_of_word_log2(x));
}
