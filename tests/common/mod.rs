//! What the GPU tests share: one device for the whole test binary, and ULP arithmetic.
#![allow(dead_code)]

pub mod calls;
pub mod derivative;
pub mod forward;
pub mod speculative;
pub mod tokens;
pub mod top_k;

#[cfg(not(target_arch = "wasm32"))]
use std::sync::OnceLock;

#[cfg(not(target_arch = "wasm32"))]
use gumbel_wgpu::GpuContext;
use gumbel_wgpu::{Element, Shape, Strategy};

/// The test device. Without an adapter every GPU test fails with the error's message (which
/// says how to install lavapipe); none passes by skipping.
#[cfg(not(target_arch = "wasm32"))]
pub fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("test device: {}", ctx.summary());
            ctx
        }
        Err(e) => panic!("no device for the GPU tests: {e}"),
    })
}

#[cfg(not(target_arch = "wasm32"))]
/// A context on the test adapter for a device created as many callers create theirs: no
/// optional features and WebGPU's default limits (256 invocations and 16 KiB of workgroup
/// memory a workgroup, 8 storage buffers a stage).
pub fn default_limits_context() -> GpuContext {
    let name = ctx().adapter_info().name.clone();
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let instance = wgpu::Instance::new(descriptor);
    let adapter = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .find(|a| a.get_info().name == name)
        .expect("the test adapter");
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: wgpu::Limits::default(),
        ..Default::default()
    }))
    .expect("a device with default limits");
    GpuContext::from_device(device, queue)
}

/// The shared context, and where its kernels use native 64-bit products for Philox, a second
/// one on the same kind of device that forms them from 16-bit halves: the kernel variants that
/// the noise tests hold to the CPU bit for bit.
#[cfg(not(target_arch = "wasm32"))]
pub fn contexts_by_wide_multiply() -> Vec<&'static GpuContext> {
    static HALVES: OnceLock<GpuContext> = OnceLock::new();
    let mut contexts = vec![ctx()];
    if ctx().kernels().wide_multiply() != gumbel_wgpu::WideMultiply::Halves {
        contexts.push(HALVES.get_or_init(|| {
            GpuContext::new()
                .and_then(|c| c.with_wide_multiply(gumbel_wgpu::WideMultiply::Halves))
                .unwrap_or_else(|e| panic!("no second device for the GPU tests: {e}"))
        }));
    }
    contexts
}

/// The shared context (its kernels map words to noise with the default `NoiseMap::Log2`) and a
/// second one on the same kind of device with `NoiseMap::Series`.
#[cfg(not(target_arch = "wasm32"))]
pub fn contexts_by_noise_map() -> Vec<&'static GpuContext> {
    static SERIES: OnceLock<GpuContext> = OnceLock::new();
    let series = SERIES.get_or_init(|| {
        GpuContext::new()
            .map(|c| c.with_noise_map(gumbel_wgpu::NoiseMap::Series))
            .unwrap_or_else(|e| panic!("no second device for the GPU tests: {e}"))
    });
    vec![ctx(), series]
}

/// The spacing of f32 values at |x| (the ULP of the f32 nearest x).
pub fn ulp_f32(x: f64) -> f64 {
    let a = (x as f32).abs();
    if a < f32::MIN_POSITIVE {
        return f64::from(f32::from_bits(1));
    }
    let e = (a.to_bits() >> 23) as i32 - 127;
    2f64.powi(e - 23)
}

/// docs/contract.md, section 4: GPU Gumbel noise is within 1e-6 + 4 ULP(g) of the exact value.
pub fn noise_tolerance(g: f64) -> f64 {
    1e-6 + 4.0 * ulp_f32(g)
}

/// A small deterministic generator for test inputs (not the one under test).
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Each kind of strategy that needs no device feature, at widths every device runs (a
/// browser's default limits included).
pub const CORE_STRATEGIES: [Strategy; 5] = [
    Strategy::RowPerThread,
    Strategy::RowPerThreadCached,
    Strategy::RowPerWorkgroup { size: 64 },
    Strategy::RowPerWorkgroup { size: 256 },
    Strategy::SplitRow {
        size: 64,
        slices: 3,
    },
];

/// Every strategy the matrix tests run against the reference: [`CORE_STRATEGIES`], and where
/// the device has subgroups, a row per 4 lanes and per 32 lanes (more than lavapipe's
/// subgroups of 8 hold, so that the kernels' fallback to the size they find when they run is
/// tested there).
#[cfg(not(target_arch = "wasm32"))]
pub fn strategies() -> Vec<Strategy> {
    let mut strategies = CORE_STRATEGIES.to_vec();
    if ctx().device.features().contains(wgpu::Features::SUBGROUP) {
        strategies.push(Strategy::RowPerSubgroup { lanes: 4 });
        strategies.push(Strategy::RowPerSubgroup { lanes: 32 });
    }
    strategies
}

/// f32 machine epsilon.
pub const EPS: f64 = f32::EPSILON as f64;

/// Bounds on what a forward kernel may differ from the f64 reference in one row, derived from
/// WGSL's accuracy rules (WGSL spec, "Floating Point Accuracy"):
/// - noise g: 1e-6 + 4 ULP(g) (docs/contract.md, section 4, tested on its own);
/// - `l + g`: correctly rounded, 0.5 ULP; `/ tau`: 2.5 ULP;
/// - `exp(x)`: 3 + 2|x| ULP; the row sum of n_seq sequential f32 additions: n_seq * EPS/2
///   relative, plus one exp rescale (3 + 2|d| ULP) each time the running maximum moves, whose
///   |d| add up to at most the row's span;
/// - the library's own ln (ln_accurate, an atanh series): 4 ULP.
pub struct RowBounds {
    /// Absolute error of each v_k = (l_k + g_k) / tau as the GPU computes it.
    pub dv: Vec<f64>,
    /// max_k dv_k.
    pub dv_max: f64,
    /// Relative error of the row sum s.
    pub rel_s: f64,
}

impl RowBounds {
    /// `perturbed` is l + g per element (None where masked), `scale` 1/tau, `n_seq` the
    /// longest chain of sequential additions in the kernel's sum, `m` the row maximum of v.
    pub fn new(logits: &[f32], perturbed: &[Option<f64>], scale: f64, n_seq: f64) -> Self {
        let dv: Vec<f64> = logits
            .iter()
            .zip(perturbed)
            .map(|(&l, p)| match p {
                Some(p) => {
                    let g = p - f64::from(l);
                    let v = p * scale;
                    (noise_tolerance(g) + 0.5 * ulp_f32(*p)) * scale + 2.5 * ulp_f32(v)
                }
                None => 0.0,
            })
            .collect();
        let dv_max = dv.iter().copied().fold(0.0, f64::max);
        let v: Vec<f64> = perturbed.iter().flatten().map(|p| p * scale).collect();
        let m = v.iter().copied().fold(f64::MIN, f64::max);
        // Terms below e^-104 vanish in f32 and cannot carry error into the sum.
        let span = v.iter().map(|x| (m - x).min(104.0)).fold(0.0, f64::max);
        let rel_s = 2.0 * dv_max + EPS * (3.0 * n_seq + 3.0 + 2.0 * span) + n_seq * EPS / 2.0;
        Self { dv, dv_max, rel_s }
    }

    /// Bound on |y_gpu - y| for soft output y at column k with x = v_k - m.
    pub fn soft(&self, k: usize, y: f64, x: f64) -> f64 {
        let rel = self.dv[k] + self.dv_max + EPS * (3.0 + 2.0 * x.abs()) + self.rel_s + 2.0 * EPS;
        // f32 results below the smallest normal may be flushed to zero.
        y * rel + f64::from(f32::MIN_POSITIVE)
    }

    /// Bound on |log y_gpu - log y| at column k.
    pub fn log_soft(&self, k: usize, log_y: f64, log_s: f64) -> f64 {
        self.dv[k] + self.dv_max + self.rel_s + 4.0 * ulp_f32(log_s) + ulp_f32(log_y)
    }
}

/// Half a unit in the last place of the storage type at |y|, plus its flush-to-zero floor.
pub fn storage_rounding(storage: gumbel_wgpu::StorageType, y: f64) -> f64 {
    use gumbel_wgpu::StorageType::*;
    match storage {
        F32 => 0.0,
        // f16: 11 significant bits; subnormals spaced 2^-24.
        F16 => (y.abs() * 2f64.powi(-11)).max(2f64.powi(-25)),
        // bf16: 8 significant bits, f32's range.
        Bf16 => y.abs() * 2f64.powi(-8),
    }
}

/// The stored bits of an element (16-bit types zero-extended).
pub fn storage_bits<T: gumbel_wgpu::Element>(v: T) -> u32 {
    match T::STORAGE {
        gumbel_wgpu::StorageType::F32 => bytemuck::cast::<T, u32>(v),
        _ => u32::from(bytemuck::cast::<T, u16>(v)),
    }
}

/// A test batch: logits (stored as T, padding poisoned), temperatures, noise position.
#[derive(Clone)]
pub struct Batch<T> {
    pub shape: Shape,
    pub logits: Vec<T>,
    pub taus: Vec<f32>,
    pub seed: u64,
    pub offset: u64,
}

/// Poison for padding and for outputs before the kernel runs: a NaN payload no kernel writes.
pub fn poison<T: Element>() -> T {
    match T::STORAGE {
        gumbel_wgpu::StorageType::F32 => bytemuck::cast(0x7fa5_a5a5u32),
        _ => bytemuck::cast(0x7da5u16),
    }
}

pub fn make_batch<T: Element>(rows: u32, cols: u32, case: u64) -> Batch<T> {
    let mut rng = TestRng::new(case * 7919 + u64::from(cols));
    // Padded rows for some K; per-row temperatures for odd case numbers.
    let pad = if [7, 33, 257].contains(&cols) {
        (3, 1)
    } else {
        (0, 0)
    };
    let shape = Shape::new(rows, cols).with_pitches(cols + pad.0, cols + pad.1);
    let spread = rng.uniform(0.5, 6.0);
    let mut logits =
        vec![poison::<T>(); shape.in_pitch as usize * (rows as usize - 1) + cols as usize];
    for r in 0..rows as usize {
        let row = &mut logits[r * shape.in_pitch as usize..][..cols as usize];
        for l in row.iter_mut() {
            *l = T::from_f32(rng.uniform(-spread, spread) as f32);
        }
        // Every third row has masked entries, but keeps at least one valid one.
        if r % 3 == 1 && cols > 1 {
            for (k, l) in row.iter_mut().enumerate() {
                if k > 0 && rng.next_u32().is_multiple_of(4) {
                    *l = T::from_f32(f32::NEG_INFINITY);
                }
            }
        }
    }
    let log_tau = |rng: &mut TestRng| rng.uniform(0.05f64.ln(), 20f64.ln()).exp() as f32;
    let taus = if case % 2 == 1 {
        (0..rows).map(|_| log_tau(&mut rng)).collect()
    } else {
        vec![log_tau(&mut rng)]
    };
    Batch {
        shape,
        logits,
        taus,
        seed: rng.next_u64(),
        offset: rng.next_u64() >> 20,
    }
}

pub fn value_of<T: Element>(bits: u32) -> f64 {
    let v: T = match T::STORAGE {
        gumbel_wgpu::StorageType::F32 => bytemuck::cast(bits),
        _ => bytemuck::cast(bits as u16),
    };
    f64::from(v.to_f32())
}

/// The test device's smallest subgroup (1 without subgroups, as in the browser).
fn smallest_subgroup() -> u32 {
    #[cfg(not(target_arch = "wasm32"))]
    return ctx().adapter_info().subgroup_min_size.max(1);
    #[cfg(target_arch = "wasm32")]
    return 1;
}

/// Longest chain of sequential additions in a strategy's row sum (see RowBounds).
pub fn sequential_adds(strategy: Strategy, cols: u32) -> f64 {
    match strategy {
        Strategy::RowPerThread | Strategy::RowPerThreadCached => f64::from(cols),
        Strategy::RowPerWorkgroup { size } => {
            (f64::from(cols) / f64::from(size)).ceil() + 4.0 + f64::from(size).log2()
        }
        // Within a lane (as many lanes as the device's subgroups hold at least), then the
        // butterfly's merges.
        Strategy::RowPerSubgroup { lanes } => {
            let lanes = f64::from(lanes.min(smallest_subgroup()));
            (f64::from(cols) / lanes).ceil() + 4.0 + lanes.log2()
        }
        // Within a slice as a workgroup per row, then one merge per slice.
        Strategy::SplitRow { size, slices } => {
            (f64::from(cols) / f64::from(size * slices)).ceil()
                + 4.0
                + f64::from(size).log2()
                + f64::from(slices)
        }
    }
}

/// The K values of the forward and derivative issues.
pub const KS: [u32; 15] = [
    1, 2, 3, 7, 8, 31, 32, 33, 255, 256, 257, 1000, 4099, 65537, 1_048_576,
];

/// Row counts per K: all three of {1, 3, 70000} for short rows, fewer for long ones, so that the
/// suites run in minutes on lavapipe.
pub fn row_counts(k: u32) -> &'static [u32] {
    match k {
        1 | 3 | 8 => &[1, 3, 70_000],
        ..=4099 => &[1, 3],
        65537 => &[1, 3],
        _ => &[1],
    }
}

/// Whether a matrix test runs `strategy` on a batch of `rows` rows of K = `k`. lavapipe runs
/// 70,000 workgroups slowly (about 2 s a call at width 256), so past 65,535 rows, where calls
/// split into several dispatches, each strategy but a plain thread per row runs at one K of
/// {1, 3, 8} only (a row per subgroup splits only past 65,535 x 64 rows, but runs there too).
pub fn runs_at(rows: u32, k: u32, strategy: Strategy) -> bool {
    let wide = [
        (1, Strategy::RowPerWorkgroup { size: 64 }),
        (3, Strategy::RowPerWorkgroup { size: 256 }),
        (3, Strategy::RowPerThreadCached),
        (8, Strategy::RowPerSubgroup { lanes: 4 }),
        (
            8,
            Strategy::SplitRow {
                size: 64,
                slices: 3,
            },
        ),
    ];
    rows <= 65_535 || strategy == Strategy::RowPerThread || wide.contains(&(k, strategy))
}

/// Whether `result` is the refusal of a thread (or a subgroup) per row to walk a row longer than lavapipe's
/// loop budget allows (the library says so instead of computing garbage).
pub fn refused_long_row<T>(result: &gumbel_wgpu::Result<T>, k: u32, strategy: Strategy) -> bool {
    let refused = matches!(result, Err(gumbel_wgpu::Error::OverLimits(_)))
        && matches!(
            strategy,
            Strategy::RowPerThread | Strategy::RowPerThreadCached | Strategy::RowPerSubgroup { .. }
        )
        && k > 100_000;
    if refused {
        eprintln!("K={k} {strategy:?}: refused over the loop budget");
    }
    refused
}

/// Asserts that `result` is an `InvalidArgument` whose message mentions `needle`.
pub fn expect_invalid<T: std::fmt::Debug>(result: gumbel_wgpu::Result<T>, needle: &str) {
    match result {
        Err(gumbel_wgpu::Error::InvalidArgument(msg)) => {
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}")
        }
        other => panic!("expected InvalidArgument mentioning {needle:?}, got {other:?}"),
    }
}

/// One `#[test]` per (name, storage type, mode), each running the including file's
/// `check_mode::<T>(mode)`: the mode x storage matrices of the forward and derivative tests.
#[allow(unused_macros)] // test binaries without a matrix include this module too
macro_rules! matrix {
    ($($name:ident: $t:ty, $mode:expr;)*) => {$(
        #[test]
        fn $name() {
            check_mode::<$t>($mode);
        }
    )*};
}

/// Taken by each test of a binary whose dispatches run long on a CPU driver: through GL, wgpu
/// holds one context lock per device while it waits on a submission, and another test thread
/// that waits more than six seconds for it panics inside wgpu ("Could not lock adapter
/// context"). Taking turns keeps every wait short.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How close a reference decision may come to its threshold before f32 arithmetic may take it
/// the other way. A row whose Gumbel-max is that close is counted, not compared; where a
/// filter's threshold is, the token must be one of those the moved thresholds give.
/// - Gumbel-max: each `l / tau + g` carries the noise's 1e-6 + 4 ULP(g) (about 1e-5 at the
///   tail), `/ tau` 2.5 ULP and the soft cap's f32 tanh (a few ULP of the cap): 1e-3 is over
///   ten times the sum at |l / tau| <= 100.
pub const GUMBEL_GAP: f64 = 1e-3;
/// - Filters (the reference's slack): top-p's fixed-point weights lose at most 2^-32 of the
///   largest weight each (K * 2^-32 <= 6.2e-5 of the total at K = 262,144) besides exp's
///   3 + 2|x| ULP; min-p compares one f32 exp (|x| <= ln(1/min_p) <= 5: 13 ULP, 1.6e-6
///   relative); top-k's cut moves only where capped or biased f32 sums round two logits apart
///   (a few ULP of the cap, 1e-6 at 30); top-n-sigma's least weight exp(-n sigma / tau) carries
///   sigma's 1e-6 (compensated sums) times n sigma / tau (under 20 here: 2e-5) besides exp's
///   3 + 2|x| ULP (43 ULP, 5e-6): 1e-4 covers each.
pub const FILTER_GAP: f64 = 1e-4;

/// The reference's draw of token-sampler row `r` (logits `x`, no bias), holding the GPU's
/// `token` to it: one of the tokens the filters' thresholds moved by [`FILTER_GAP`] give. The
/// row's Gumbel-max must be clear of a tie by [`GUMBEL_GAP`]: the caller's seeds are chosen so.
pub fn assert_token_near(
    x: &[f32],
    settings: &gumbel_wgpu::TokenSettings,
    state: gumbel_wgpu::RandomState,
    range: gumbel_wgpu::NoiseRange,
    token: u32,
    r: usize,
) -> gumbel_wgpu::reference::TokenDraw {
    let want =
        gumbel_wgpu::reference::sample_token_row_near(x, None, settings, state, range, FILTER_GAP)
            .unwrap();
    assert!(want.gumbel_gap >= GUMBEL_GAP, "row {r}: pick another seed");
    assert!(
        want.near_tokens.contains(&token),
        "row {r}, {settings:?}: {token} is none of {:?}",
        want.near_tokens
    );
    want
}
