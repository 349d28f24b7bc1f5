//! The default strategies run any row that one storage binding holds. On llvmpipe, whose
//! invocations silently stop looping after 65,535 iterations, that means widening the
//! workgroup for long rows instead of refusing them; the largest f32 row checked here is the
//! largest lavapipe's 128 MiB binding holds (capped there on devices with larger bindings).

mod common;

use common::{EPS, TestRng, ctx, sequential_adds};
use gumbel_wgpu::reference::{self, RowSample};
use gumbel_wgpu::{HostSource, Mode, SampleArgs, Strategy};

/// Every `STRIDE`th column and the last hold a logit; the rest are masked (-inf). Masked
/// columns make no noise, which keeps the test short, but every invocation still walks the
/// whole row, and a walk cut short misses the logits near the end.
const STRIDE: usize = 61;

/// The longest f32 row one binding of this device holds, as the kernels bind it (the start of
/// a binding is aligned down, which may cost up to an alignment's bytes), capped at lavapipe's.
fn largest_cols() -> u32 {
    let limits = ctx().device.limits();
    let room = limits.max_storage_buffer_binding_size
        - u64::from(limits.min_storage_buffer_offset_alignment)
        - 4;
    (room / 4).min(((128 << 20) - 260) / 4) as u32
}

fn row(cols: u32) -> Vec<f32> {
    let mut rng = TestRng::new(8);
    (0..cols as usize)
        .map(|k| {
            if k % STRIDE == 0 || k + 1 == cols as usize {
                rng.uniform(-3.0, 3.0) as f32
            } else {
                f32::NEG_INFINITY
            }
        })
        .collect()
}

#[test]
fn the_largest_row_samples_exactly() {
    let ctx = ctx();
    let cols = largest_cols();
    eprintln!(
        "K = {cols}: forward {:?}, top-k {:?}",
        Strategy::choose(cols, ctx.kernels()),
        gumbel_wgpu::choose_top_k(cols, 64, ctx.kernels())
    );
    let logits = row(cols);
    let args = SampleArgs::new(1, cols, 0.7, 21).with_offset(5);
    let z = reference::scaled_row(&logits, 0.7, 21, 5, Mode::Soft).unwrap();
    let live: Vec<usize> = (0..cols as usize).filter(|&k| z[k].is_some()).collect();

    // Index mode: the argmax of the whole row, exactly.
    let index = ctx.sample_indices(&logits, &args).unwrap();
    let Ok(RowSample::Index(want)) = reference::forward_row(&logits, 0.7, 21, 5, Mode::Index)
    else {
        panic!("the row has a sample")
    };
    assert_eq!(index, [want]);

    // Soft: each live value within the bound of the default strategy's longest chain of
    // sequential f32 additions over the live values (masked ones add exactly 0), with 1e-4
    // for the noise, exp and the division by tau, several times their derived share
    // (tests/forward.rs).
    let y = ctx.sample(&logits, Mode::Soft, &args).unwrap();
    let want_y = reference::softmax(&z, false);
    let n_seq = sequential_adds(Strategy::choose(cols, ctx.kernels()), live.len() as u32);
    let rel = n_seq * EPS + 1e-4;
    for &k in &live {
        let err = (f64::from(y[k]) - want_y[k]).abs();
        assert!(
            err <= want_y[k] * rel + 1e-30,
            "column {k}: {} vs {}",
            y[k],
            want_y[k]
        );
    }
    let masked_nonzero = y.iter().zip(&z).filter(|(y, z)| z.is_none() && **y != 0.0);
    assert_eq!(masked_nonzero.count(), 0, "masked columns are exactly 0");

    // The recomputing VJP of soft with dy = 1 at the live columns' first half: the gradient
    // y_k (dy_k - <dy, y>) / tau, each within the same relative bound (plus the dot product's
    // absolute error, y_k times the same bound).
    let dy: Vec<f32> = (0..cols as usize)
        .map(|k| if k < cols as usize / 2 { 1.0 } else { 0.0 })
        .collect();
    let grad = ctx
        .vjp(HostSource::Recompute(&logits), &dy, Mode::Soft, &args)
        .unwrap();
    let dy64: Vec<f64> = dy.iter().map(|&d| f64::from(d)).collect();
    let want = reference::vjp_row(&logits, 0.7, 21, 5, Mode::Soft, &dy64).unwrap();
    for &k in &live {
        let bound = 3.0 * (want.dl[k].abs() + want_y[k] / 0.7) * rel + 1e-30;
        let err = (f64::from(grad.dl[k]) - want.dl[k]).abs();
        assert!(
            err <= bound,
            "dl column {k}: {} vs {}",
            grad.dl[k],
            want.dl[k]
        );
    }

    // Top-k: the 64 largest l + g of the whole row, in order. (A walk that misses a quarter of
    // the row keeps all 64 with probability (3/4)^64, about 1e-8.)
    let top = ctx.top_k(&logits, 64, &args).unwrap();
    let want: Vec<u32> = reference::top_k_row(&logits, 21, 5, 64)
        .unwrap()
        .iter()
        .map(|(c, _)| *c)
        .collect();
    assert_eq!(top.indices, want);
}
