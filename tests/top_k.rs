//! Gumbel-top-k against the CPU reference (exact indices and order but for near-ties, which are
//! counted), top-1 against the index mode, the Plackett-Luce distribution of ordered pairs, and
//! bad input.

mod common;

use common::top_k::{CASES, Tally, TopKInput, check, run_gpu};
use common::{TestRng, ctx, expect_invalid};
use gumbel_wgpu::{
    Element, Error, GpuSlice, MAX_K, MAX_K_PER_THREAD, SampleArgs, Shape, Strategy, TopKCall,
};

/// A workgroup per row merges per-invocation lists for k up to 32 (any width) and runs the radix
/// select above (256 to 1024 wide; at 1024, invocations past the 256 histogram bins and sort
/// entries must stay out of both).
const STRATEGIES: [Strategy; 4] = [
    Strategy::RowPerThread,
    Strategy::RowPerWorkgroup { size: 64 },
    Strategy::RowPerWorkgroup { size: 256 },
    Strategy::RowPerWorkgroup { size: 1024 },
];

/// Whether `strategy` may refuse top-k of `k`: a thread per row is for short rows and small k,
/// and a workgroup narrower than 256 for k up to 32; the library says so.
fn may_refuse(strategy: Strategy, k: u32) -> bool {
    strategy == Strategy::RowPerThread
        || (strategy == Strategy::RowPerWorkgroup { size: 64 } && k > MAX_K_PER_THREAD)
}

fn check_matches_reference<T: Element>() {
    let mut tally = Tally::default();
    for (case, &(cols, rows, ks)) in CASES.iter().enumerate() {
        let input = TopKInput::<T>::new(case as u64, cols, rows);
        for &k in ks {
            for strategy in STRATEGIES {
                let what = format!("{:?} {strategy:?} K={cols} k={k}", T::STORAGE);
                let out = match pollster::block_on(run_gpu(ctx(), &input, k, strategy)) {
                    Ok(out) => out,
                    Err(Error::InvalidArgument(_) | Error::OverLimits(_))
                        if may_refuse(strategy, k) =>
                    {
                        continue;
                    }
                    Err(e) => panic!("{what}: {e}"),
                };
                check(&input, k, &out, &what, &mut tally);
            }
        }
    }
    eprintln!("{:?}: {tally:?}", T::STORAGE);
}

#[test]
fn matches_reference_f32() {
    check_matches_reference::<f32>();
}

#[test]
fn matches_reference_f16() {
    check_matches_reference::<half::f16>();
}

#[test]
fn matches_reference_bf16() {
    check_matches_reference::<half::bf16>();
}

/// Top-1 is the index mode's categorical sample: the same noise, the same argmax.
#[test]
fn top_one_is_the_index_sample() {
    let ctx = ctx();
    for (rows, cols) in [(3000u32, 7u32), (40, 3000)] {
        let mut rng = TestRng::new(u64::from(cols));
        let logits: Vec<f32> = (0..rows * cols)
            .map(|_| rng.uniform(-2.0, 2.0) as f32)
            .collect();
        let args = SampleArgs::new(rows, cols, 1.0, 77).with_offset(12345);
        let index = ctx.sample_indices(&logits, &args).unwrap();
        for strategy in STRATEGIES {
            let top = ctx
                .top_k(&logits, 1, &args.with_strategy(strategy))
                .unwrap();
            assert_eq!(top.indices, index, "{strategy:?} K={cols}");
        }
    }
}

/// For K = 5 and k = 2, the ordered pair (i, j) has Plackett-Luce probability
/// p_i p_j / (1 - p_i); 10^6 rows, chi-square over the 20 pairs (19 degrees of freedom; the
/// 0.001 critical value is 43.82).
#[test]
fn ordered_pairs_follow_plackett_luce() {
    let ctx = ctx();
    let p = [0.1, 0.15, 0.2, 0.25, 0.3f64];
    let rows = 1_000_000u32;
    let row: Vec<f32> = p.iter().map(|x| x.ln() as f32).collect();
    let logits: Vec<f32> = (0..rows).flat_map(|_| row.iter().copied()).collect();
    let top = ctx
        .top_k(&logits, 2, &SampleArgs::new(rows, 5, 1.0, 2019))
        .unwrap();
    let mut counts = [[0u64; 5]; 5];
    for pair in top.indices.chunks(2) {
        counts[pair[0] as usize][pair[1] as usize] += 1;
    }
    let mut chi2 = 0.0;
    for i in 0..5 {
        assert_eq!(counts[i][i], 0, "a category drawn twice");
        for j in (0..5).filter(|&j| j != i) {
            let expected = f64::from(rows) * p[i] * p[j] / (1.0 - p[i]);
            chi2 += (counts[i][j] as f64 - expected).powi(2) / expected;
        }
    }
    eprintln!("chi-square {chi2:.2} on 19 degrees of freedom");
    assert!(chi2 < 43.82, "chi-square {chi2}");
}

#[test]
fn bad_input_is_an_error_value() {
    let ctx = ctx();
    let logits = vec![0.5f32; 12];
    let args = SampleArgs::new(3, 4, 1.0, 1);
    expect_invalid(ctx.top_k(&logits, 0, &args), "k = 0");
    expect_invalid(ctx.top_k(&logits, 5, &args), "k = 5");
    let wide = vec![0.5f32; 300];
    expect_invalid(
        ctx.top_k(&wide, MAX_K + 1, &SampleArgs::new(1, 300, 1.0, 1)),
        "k = 257",
    );
    expect_invalid(ctx.top_k(&logits[..11], 2, &args), "11 logits given");
    let split = args.with_strategy(Strategy::SplitRow {
        size: 64,
        slices: 2,
    });
    expect_invalid(ctx.top_k(&logits, 2, &split), "top-k runs as");
    // Buffers too small for the outputs.
    let input = ctx.upload(&logits).unwrap();
    let small = ctx.storage_buffer(20).unwrap();
    let big = ctx.storage_buffer(24).unwrap();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let call = |indices, values| {
        TopKCall::new(
            gumbel_wgpu::StorageType::F32,
            Shape::new(3, 4),
            2,
            GpuSlice::from(&input),
            indices,
            values,
        )
    };
    expect_invalid(
        ctx.kernels().record_top_k(
            &mut encoder,
            &call(GpuSlice::from(&small), GpuSlice::from(&big)),
        ),
        "indices buffer holds 20",
    );
    expect_invalid(
        ctx.kernels().record_top_k(
            &mut encoder,
            &call(GpuSlice::from(&big), GpuSlice::from(&small)),
        ),
        "values buffer holds 20",
    );
    // A row without a valid logit has no sample.
    let masked = [f32::NEG_INFINITY; 4];
    match ctx.top_k(&masked, 1, &SampleArgs::new(1, 4, 1.0, 1)) {
        Err(Error::NoSample { row: 0, .. }) => {}
        other => panic!("expected NoSample, got {other:?}"),
    }
}
