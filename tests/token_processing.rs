//! The token sampler's token lists (penalties, sparse bias) and masks: against the f64
//! reference on the same random words, by chi-square, batch invariance, and refusals.

mod common;

use common::tokens::{Bias, Compared, Processing, TokenCase, check};
use common::{ctx, one_at_a_time};
use gumbel_wgpu::{Element, Strategy};
use half::{bf16, f16};

fn compare<T: Element>(
    cols: u32,
    rows: usize,
    case: u64,
    bias: Bias,
    processing: Processing,
    strategy: Option<Strategy>,
) -> Compared {
    let case = TokenCase::<T>::new(cols, rows, case, bias).with_processing(processing, case + 7);
    let got = ctx()
        .sample_tokens(&case.logits, &case.args(strategy))
        .unwrap();
    check(&case, &got)
}

fn matches_reference<T: Element>() {
    let (mut near, mut total) = (0, 0);
    for (i, (cols, rows)) in [(7, 28), (32_000, 28), (151_936, 14), (262_144, 14)]
        .into_iter()
        .enumerate()
    {
        for (bias, processing) in [
            (Bias::None, Processing::Shared),
            (Bias::Shared, Processing::PerRow),
        ] {
            let c = compare::<T>(cols, rows, 200 + i as u64, bias, processing, None);
            near += c.near;
            total += c.rows;
        }
    }
    eprintln!(
        "{:?}: {near} of {total} rows too near a threshold",
        T::STORAGE
    );
    assert!(
        near * 10 <= total,
        "{near} of {total} rows near a threshold"
    );
}

#[test]
fn lists_and_masks_match_reference_f32() {
    let _turn = one_at_a_time();
    matches_reference::<f32>();
}

#[test]
fn lists_and_masks_match_reference_f16() {
    let _turn = one_at_a_time();
    matches_reference::<f16>();
}

#[test]
fn lists_and_masks_match_reference_bf16() {
    let _turn = one_at_a_time();
    matches_reference::<bf16>();
}
