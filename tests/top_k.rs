//! Gumbel-top-k against the CPU reference (exact indices and order but for near-ties, which are
//! counted), top-1 against the index mode, the Plackett-Luce distribution of ordered pairs, and
//! bad input.

mod common;

use common::{TestRng, ctx, expect_invalid, noise_tolerance, poison, ulp_f32};
use gumbel_wgpu::reference::{NoSample, Perturbed, perturbed_row, top_k_row};
use gumbel_wgpu::{
    Element, Error, GpuSlice, MAX_K, MAX_K_PER_THREAD, SampleArgs, Shape, Strategy, TopKCall,
};

/// Runs one top-k call through the encoder API on poisoned outputs.
fn run<T: Element>(
    logits: &[T],
    shape: Shape,
    k: u32,
    seed: u64,
    offset: u64,
    strategy: Strategy,
) -> Result<(Vec<u32>, Vec<f32>), Error> {
    let ctx = ctx();
    let n = (shape.rows * k) as usize;
    let input = ctx.upload(logits)?;
    let (indices, values) = (
        ctx.upload(&vec![0xdead_beefu32; n])?,
        ctx.upload(&vec![f32::from_bits(0x7fa5_a5a5); n])?,
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    ctx.kernels().record_top_k(
        &mut encoder,
        &TopKCall {
            noise_range: gumbel_wgpu::NoiseRange::Standard,
            storage: T::STORAGE,
            shape,
            k,
            logits: GpuSlice::from(&input),
            indices: GpuSlice::from(&indices),
            values: GpuSlice::from(&values),
            seed,
            offset,
            counter: None,
            strategy: Some(strategy),
        },
    )?;
    ctx.queue.submit([encoder.finish()]);
    Ok((ctx.read_back(&indices, n)?, ctx.read_back(&values, n)?))
}

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

#[derive(Default, Debug)]
struct Tally {
    rows: usize,
    entries: usize,
    near_ties: usize,
    worst_value_error: f64,
}

/// The GPU's value errs by the noise's bound plus the rounding of its two f32 additions: it is
/// formed as ((l - L) + g) + L, with L the row's largest logit (l - L is exact for the
/// entries that can rank first; for the others it rounds by half an ULP of itself).
fn value_tolerance(l: f32, v: f64, top: f32) -> f64 {
    let shifted = v - f64::from(top);
    noise_tolerance(v - f64::from(l))
        + 0.5 * ulp_f32(f64::from(l) - f64::from(top))
        + 0.5 * ulp_f32(shifted)
        + 0.5 * ulp_f32(v)
}

fn check_matches_reference<T: Element>() {
    let mut tally = Tally::default();
    let cases: [(u32, u32, &[u32]); 7] = [
        (1, 6, &[1]),
        (5, 6, &[1, 2, 5]),
        (33, 5, &[1, 8, 32, 33]),
        (1000, 4, &[1, 8, 64, 256]),
        (4099, 3, &[1, 64, 256]),
        (65537, 2, &[8, 256]),
        (262_144, 1, &[1, 64, 256]),
    ];
    for (case, &(cols, rows, ks)) in cases.iter().enumerate() {
        let mut rng = TestRng::new(case as u64 + 40);
        let shape = Shape::new(rows, cols).with_pitches(cols + 1, cols);
        let mut logits = vec![poison::<T>(); (shape.in_pitch * rows) as usize];
        for r in 0..rows as usize {
            for c in 0..cols as usize {
                // Row 1 keeps only every 97th logit: fewer valid ones than k.
                let masked = (r == 1 && c % 97 != 3) || (r == 2 && c % 5 == 0);
                logits[r * shape.in_pitch as usize + c] = T::from_f32(if masked {
                    f32::NEG_INFINITY
                } else {
                    rng.uniform(-4.0, 4.0) as f32
                });
            }
        }
        let (seed, offset) = (rng.next_u64(), rng.next_u64() >> 24);
        for &k in ks {
            for strategy in STRATEGIES {
                let what = format!("{:?} {strategy:?} K={cols} k={k}", T::STORAGE);
                let (indices, values) = match run(&logits, shape, k, seed, offset, strategy) {
                    Ok(out) => out,
                    Err(Error::InvalidArgument(_) | Error::OverLimits(_))
                        if may_refuse(strategy, k) =>
                    {
                        continue;
                    }
                    Err(e) => panic!("{what}: {e}"),
                };
                for r in 0..rows as usize {
                    let row: Vec<f32> = logits[r * shape.in_pitch as usize..][..cols as usize]
                        .iter()
                        .map(|l| l.to_f32())
                        .collect();
                    let first = offset + (r * cols as usize) as u64;
                    let top = row
                        .iter()
                        .copied()
                        .filter(|l| l.is_finite())
                        .fold(f32::NEG_INFINITY, f32::max);
                    // A row with every logit masked has no sample: indices u32::MAX, values
                    // NaN (docs/contract.md, section 1).
                    let want = match top_k_row(&row, seed, first, k as usize) {
                        Err(NoSample::AllMasked) => {
                            let (got_i, got_v) = (
                                &indices[r * k as usize..][..k as usize],
                                &values[r * k as usize..][..k as usize],
                            );
                            assert!(got_i.iter().all(|&i| i == u32::MAX), "{what} row {r}");
                            assert!(got_v.iter().all(|v| v.is_nan()), "{what} row {r}");
                            continue;
                        }
                        other => other.unwrap(),
                    };
                    let exact: Vec<Option<f64>> = perturbed_row(&row, seed, first)
                        .into_iter()
                        .map(|p| match p {
                            Perturbed::Value(v) => Some(v),
                            _ => None,
                        })
                        .collect();
                    let got_i = &indices[r * k as usize..][..k as usize];
                    let got_v = &values[r * k as usize..][..k as usize];
                    let mut seen = std::collections::HashSet::new();
                    for p in 0..k as usize {
                        let at = format!("{what} row {r} place {p}");
                        if p >= want.len() {
                            assert_eq!(got_i[p], u32::MAX, "{at}: past the valid logits");
                            assert_eq!(got_v[p], f32::NEG_INFINITY, "{at}");
                            continue;
                        }
                        let (gi, wi) = (got_i[p] as usize, want[p].0 as usize);
                        assert!(gi < cols as usize && seen.insert(gi), "{at}: column {gi}");
                        let gv = exact[gi].unwrap_or_else(|| panic!("{at}: masked column {gi}"));
                        let tol = |c: usize| value_tolerance(row[c], exact[c].unwrap(), top);
                        if gi != wi {
                            // Only values within rounding of each other may trade places.
                            let gap = (want[p].1 - gv).abs();
                            assert!(
                                gap <= tol(gi) + tol(wi),
                                "{at}: column {gi} (l+g = {gv}) instead of {wi} ({}), gap {gap:e}",
                                want[p].1
                            );
                            tally.near_ties += 1;
                        }
                        let err = (f64::from(got_v[p]) - gv).abs();
                        assert!(err <= tol(gi), "{at}: value {} vs {gv}", got_v[p]);
                        tally.worst_value_error = tally.worst_value_error.max(err);
                        tally.entries += 1;
                    }
                    tally.rows += 1;
                }
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
        let args = SampleArgs {
            offset: 12345,
            ..SampleArgs::new(rows, cols, 1.0, 77)
        };
        let index = ctx.sample_indices(&logits, &args).unwrap();
        for strategy in STRATEGIES {
            let top = ctx
                .top_k(
                    &logits,
                    1,
                    &SampleArgs {
                        strategy: Some(strategy),
                        ..args
                    },
                )
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
    let split = SampleArgs {
        strategy: Some(Strategy::SplitRow {
            size: 64,
            slices: 2,
        }),
        ..args
    };
    expect_invalid(ctx.top_k(&logits, 2, &split), "top-k runs as");
    // Buffers too small for the outputs.
    let input = ctx.upload(&logits).unwrap();
    let small = ctx.storage_buffer(20).unwrap();
    let big = ctx.storage_buffer(24).unwrap();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let call = |indices, values| TopKCall {
        noise_range: gumbel_wgpu::NoiseRange::Standard,
        storage: gumbel_wgpu::StorageType::F32,
        shape: Shape::new(3, 4),
        k: 2,
        logits: GpuSlice::from(&input),
        indices,
        values,
        seed: 0,
        offset: 0,
        counter: None,
        strategy: None,
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
