//! The top-k check, shared by tests/top_k.rs and the browser suite: inputs, one call through
//! the encoder API on poisoned outputs, and its comparison with the f64 reference.

use super::{TestRng, noise_tolerance, poison, ulp_f32};
use gumbel_wgpu::reference::{NoSample, Perturbed, perturbed_row, top_k_row};
use gumbel_wgpu::{Element, Error, GpuContext, GpuSlice, Shape, Strategy, TopKCall};

/// Runs one top-k call through the encoder API on poisoned outputs.
pub async fn run_gpu<T: Element>(
    ctx: &GpuContext,
    input: &TopKInput<T>,
    k: u32,
    strategy: Strategy,
) -> Result<(Vec<u32>, Vec<f32>), Error> {
    let TopKInput {
        logits,
        shape,
        seed,
        offset,
    } = input;
    let (shape, seed, offset) = (*shape, *seed, *offset);
    let n = (shape.rows * k) as usize;
    let uploaded = ctx.upload(logits)?;
    let (indices, values) = (
        ctx.upload(&vec![0xdead_beefu32; n])?,
        ctx.upload(&vec![f32::from_bits(0x7fa5_a5a5); n])?,
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    ctx.kernels().record_top_k(
        &mut encoder,
        &TopKCall::new(
            T::STORAGE,
            shape,
            k,
            GpuSlice::from(&uploaded),
            GpuSlice::from(&indices),
            GpuSlice::from(&values),
        )
        .with_noise(seed, offset)
        .with_strategy(strategy),
    )?;
    ctx.queue.submit([encoder.finish()]);
    Ok((
        ctx.read_back_async(&indices, n).await?,
        ctx.read_back_async(&values, n).await?,
    ))
}

#[derive(Default, Debug)]
pub struct Tally {
    pub rows: usize,
    pub entries: usize,
    pub near_ties: usize,
    pub worst_value_error: f64,
}

/// The GPU's value errs by the noise's bound plus the rounding of its two f32 additions: it is
/// formed as ((l - L) + g) + L, with L the row's largest logit (l - L is exact for the
/// entries that can rank first; for the others it rounds by half an ULP of itself).
pub fn value_tolerance(l: f32, v: f64, top: f32) -> f64 {
    let shifted = v - f64::from(top);
    noise_tolerance(v - f64::from(l))
        + 0.5 * ulp_f32(f64::from(l) - f64::from(top))
        + 0.5 * ulp_f32(shifted)
        + 0.5 * ulp_f32(v)
}

/// The matrix's cases: (K, rows, the k values run).
pub const CASES: [(u32, u32, &[u32]); 7] = [
    (1, 6, &[1]),
    (5, 6, &[1, 2, 5]),
    (33, 5, &[1, 8, 32, 33]),
    (1000, 4, &[1, 8, 64, 256]),
    (4099, 3, &[1, 64, 256]),
    (65537, 2, &[8, 256]),
    (262_144, 1, &[1, 64, 256]),
];

/// A top-k call's logits (padded rows, row 1 with fewer valid logits than k, row 2 with some
/// masked) and noise position.
pub struct TopKInput<T> {
    pub logits: Vec<T>,
    pub shape: Shape,
    pub seed: u64,
    pub offset: u64,
}

impl<T: Element> TopKInput<T> {
    pub fn new(case: u64, cols: u32, rows: u32) -> Self {
        let mut rng = TestRng::new(case + 40);
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
        Self {
            logits,
            shape,
            seed,
            offset,
        }
    }
}

/// Holds one call's output to the reference row by row: exact indices and order but for
/// near-ties (counted), values within [`value_tolerance`].
pub fn check<T: Element>(
    input: &TopKInput<T>,
    k: u32,
    (indices, values): &(Vec<u32>, Vec<f32>),
    what: &str,
    tally: &mut Tally,
) {
    let TopKInput {
        logits,
        shape,
        seed,
        offset,
    } = input;
    let (shape, seed, offset) = (*shape, *seed, *offset);
    let (rows, cols) = (shape.rows, shape.cols);
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
