//! Every forward mode x storage type x strategy against the CPU reference, through the
//! encoder API, over the K and row counts of the forward issue (the largest ones at fewer rows,
//! so that the suite runs in minutes on lavapipe).

#[macro_use]
mod common;

use common::forward::{Tally, check, run_gpu};
use common::{KS, ctx, make_batch, refused_long_row, row_counts, runs_at};
use gumbel_wgpu::{Element, Mode};

fn check_mode<T: Element>(mode: Mode) {
    let mut tally = Tally::default();
    for (case, &k) in KS.iter().enumerate() {
        for &rows in row_counts(k) {
            let batch = make_batch::<T>(rows, k, case as u64 + u64::from(rows));
            for strategy in common::strategies() {
                if !runs_at(rows, k, strategy) {
                    continue;
                }
                let result = pollster::block_on(run_gpu(ctx(), &batch, mode, strategy));
                if refused_long_row(&result, k, strategy) {
                    continue;
                }
                match result {
                    Ok(gpu) => check(&batch, mode, strategy, &gpu, &mut tally),
                    Err(e) => panic!(
                        "{mode:?} {:?} {strategy:?} K={k} rows={rows}: {e}",
                        T::STORAGE
                    ),
                }
            }
        }
    }
    eprintln!("{mode:?} {:?}: {tally:?}", T::STORAGE);
}

matrix! {
    soft_f32: f32, Mode::Soft;
    soft_f16: half::f16, Mode::Soft;
    soft_bf16: half::bf16, Mode::Soft;
    log_soft_f32: f32, Mode::LogSoft;
    log_soft_f16: half::f16, Mode::LogSoft;
    log_soft_bf16: half::bf16, Mode::LogSoft;
    hard_f32: f32, Mode::Hard;
    hard_f16: half::f16, Mode::Hard;
    hard_bf16: half::bf16, Mode::Hard;
    index_f32: f32, Mode::Index;
    index_f16: half::f16, Mode::Index;
    index_bf16: half::bf16, Mode::Index;
}
