//! Rows whose categories are not adjacent (`Shape::col_stride` > 1): a contiguous
//! `[outer, K, inner]` tensor sampled over its middle axis. Every strategy and storage type,
//! forward, derivatives and top-k, must give the bits that the same rows laid out contiguously give
//! (that layout is tested against the f64 reference elsewhere), write nothing outside the
//! rows, and index mode must pick the reference's argmax.

mod common;

use common::calls::random;
use common::{ctx, poison, storage_bits, strategies};
use gumbel_wgpu::NoisePosition;
use gumbel_wgpu::reference::{self, RowSample};
use gumbel_wgpu::{
    Element, ForwardCall, GpuContext, JvpCall, Mode, Shape, Source, Strategy, Tau, TauGradient,
    TauTangent, TopKCall, VjpCall,
};

const SEED: u64 = 0x5eed_0f57_21de;
const OFFSET: u64 = (1 << 32) - 777;

/// A `[outer, cols, inner]` tensor's element (o, k, i), and the same element in the rows of
/// the contiguous layout, `[outer * inner, cols]`.
struct Layout {
    outer: usize,
    cols: usize,
    inner: usize,
}

impl Layout {
    fn strided_at(&self, row: usize, k: usize) -> usize {
        let (o, i) = (row / self.inner, row % self.inner);
        (o * self.cols + k) * self.inner + i
    }

    /// The contiguous rows of a strided tensor, the first `rows` of them.
    fn to_rows<T: Copy>(&self, strided: &[T], rows: usize) -> Vec<T> {
        (0..rows)
            .flat_map(|r| (0..self.cols).map(move |k| (r, k)))
            .map(|(r, k)| strided[self.strided_at(r, k)])
            .collect()
    }

    fn len(&self) -> usize {
        self.outer * self.cols * self.inner
    }
}

fn upload<T: Element>(ctx: &GpuContext, values: &[T]) -> wgpu::Buffer {
    ctx.upload(values).unwrap()
}

fn poisoned<T: Element>(ctx: &GpuContext, len: usize) -> wgpu::Buffer {
    upload(ctx, &vec![poison::<T>(); len])
}

fn read<T: bytemuck::Pod>(ctx: &GpuContext, buffer: &wgpu::Buffer, len: usize) -> Vec<T> {
    ctx.read_back(buffer, len).unwrap()
}

/// Compares the strided output with the contiguous one, element by element by bits, and
/// checks that elements of no row (a partial last group) keep their poison.
fn assert_same_rows<T: Element>(
    layout: &Layout,
    rows: usize,
    strided: &[T],
    contiguous: &[T],
    what: &str,
) {
    let mut covered = vec![false; layout.len()];
    for r in 0..rows {
        for k in 0..layout.cols {
            let at = layout.strided_at(r, k);
            covered[at] = true;
            let (a, b) = (strided[at], contiguous[r * layout.cols + k]);
            assert_eq!(
                storage_bits(a),
                storage_bits(b),
                "{what}: row {r}, column {k}: strided {a:?}, contiguous {b:?}"
            );
        }
    }
    for (at, v) in strided.iter().enumerate() {
        if !covered[at] {
            assert_eq!(
                storage_bits(*v),
                storage_bits(poison::<T>()),
                "{what}: element {at} belongs to no row but was written"
            );
        }
    }
}

fn forward_matches<T: Element>(strategy: Strategy, layout: &Layout, rows: u32) {
    let ctx = ctx();
    let storage = T::STORAGE;
    let values = random(layout.len(), 11, -3.0, 3.0);
    let mut strided: Vec<T> = values.iter().map(|&v| T::from_f32(v)).collect();
    // A masked entry, so that masking is checked on the strided path too.
    strided[layout.strided_at(1, 2)] = T::from_f32(f32::NEG_INFINITY);
    let contiguous = layout.to_rows(&strided, rows as usize);
    let shape = Shape::strided(rows, layout.cols as u32, layout.inner as u32);
    let dense = Shape::new(rows, layout.cols as u32);
    let (strided_in, dense_in) = (upload(ctx, &strided), upload(ctx, &contiguous));
    for mode in [Mode::Soft, Mode::LogSoft, Mode::Hard, Mode::Index] {
        let what = format!("{storage:?} {mode:?} {strategy:?}");
        let run = |shape: Shape, logits: &wgpu::Buffer, len: usize| -> wgpu::Buffer {
            let out = match mode {
                Mode::Index => ctx.upload(&vec![u32::MAX - 1; rows as usize]).unwrap(),
                _ => poisoned::<T>(ctx, len),
            };
            let call = ForwardCall::new(mode, storage, shape, logits.into(), (&out).into())
                .with_tau(Tau::Scalar(0.7))
                .with_noise(SEED, OFFSET)
                .with_strategy(strategy);
            ctx.submit_and_wait("forward", |e| ctx.kernels().record_forward(e, &call))
                .unwrap();
            out
        };
        let a = run(shape, &strided_in, layout.len());
        let b = run(dense, &dense_in, contiguous.len());
        if mode == Mode::Index {
            let (a, b) = (
                read::<u32>(ctx, &a, rows as usize),
                read::<u32>(ctx, &b, rows as usize),
            );
            assert_eq!(a, b, "{what}");
            // And the reference's argmax, row by row, from the strided tensor itself.
            for (r, &index) in a.iter().enumerate() {
                let row: Vec<f32> = (0..layout.cols)
                    .map(|k| strided[layout.strided_at(r, k)].to_f32())
                    .collect();
                let first = OFFSET.wrapping_add((r * layout.cols) as u64);
                let z = reference::scaled_row(&row, 0.7, SEED, first, Mode::Index).unwrap();
                let mut sorted: Vec<f64> = z.iter().flatten().copied().collect();
                sorted.sort_by(|a, b| b.total_cmp(a));
                // A near-tie may go either way within the noise's tolerance (tests/common).
                if sorted[0] - sorted[1] > common::GUMBEL_GAP {
                    let expected = reference::forward_row(&row, 0.7, SEED, first, Mode::Index);
                    assert_eq!(expected, Ok(RowSample::Index(index)), "{what}: row {r}");
                }
            }
        } else {
            let a = read::<T>(ctx, &a, layout.len());
            let b = read::<T>(ctx, &b, contiguous.len());
            assert_same_rows(layout, rows as usize, &a, &b, &what);
        }
    }
}

fn derivatives_match<T: Element>(strategy: Strategy, layout: &Layout, rows: u32) {
    let ctx = ctx();
    let storage = T::STORAGE;
    let to_t = |v: Vec<f32>| -> Vec<T> { v.into_iter().map(T::from_f32).collect() };
    let strided = to_t(random(layout.len(), 21, -3.0, 3.0));
    let grad = to_t(random(layout.len(), 22, -1.0, 1.0));
    let (contiguous, dense_grad) = (
        layout.to_rows(&strided, rows as usize),
        layout.to_rows(&grad, rows as usize),
    );
    let shape = Shape::strided(rows, layout.cols as u32, layout.inner as u32);
    let dense = Shape::new(rows, layout.cols as u32);
    let inputs = [
        (
            upload(ctx, &strided),
            upload(ctx, &grad),
            shape,
            layout.len(),
        ),
        (
            upload(ctx, &contiguous),
            upload(ctx, &dense_grad),
            dense,
            contiguous.len(),
        ),
    ];
    for mode in [Mode::Soft, Mode::LogSoft, Mode::Hard] {
        let what = format!("{storage:?} {mode:?} {strategy:?}");
        let results: Vec<(Vec<T>, Vec<f32>, Vec<T>)> = inputs
            .iter()
            .map(|(logits, grad, shape, len)| {
                let (dl, dtau) = (
                    poisoned::<T>(ctx, *len),
                    poisoned::<f32>(ctx, rows as usize),
                );
                let ydot = poisoned::<T>(ctx, *len);
                let source = Source::recompute_with(
                    logits.into(),
                    NoisePosition::new(SEED, OFFSET).with_range(Default::default()),
                );
                let vjp = VjpCall::new(mode, storage, *shape, source, grad.into(), (&dl).into())
                    .with_tau(Tau::Scalar(0.7))
                    .with_dtau(TauGradient::PerRow((&dtau).into()))
                    .with_strategy(strategy);
                let jvp = JvpCall::new(mode, storage, *shape, source, grad.into(), (&ydot).into())
                    .with_tau(Tau::Scalar(0.7))
                    .with_dtau(TauTangent::Scalar(0.25))
                    .with_strategy(strategy);
                ctx.submit_and_wait("derivatives", |e| {
                    ctx.kernels().record_vjp(e, &vjp)?;
                    ctx.kernels().record_jvp(e, &jvp)
                })
                .unwrap();
                (
                    read(ctx, &dl, *len),
                    read(ctx, &dtau, rows as usize),
                    read(ctx, &ydot, *len),
                )
            })
            .collect();
        let (strided, dense) = (&results[0], &results[1]);
        assert_same_rows(
            layout,
            rows as usize,
            &strided.0,
            &dense.0,
            &format!("VJP {what}"),
        );
        assert_same_rows(
            layout,
            rows as usize,
            &strided.2,
            &dense.2,
            &format!("JVP {what}"),
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&strided.1), bits(&dense.1), "dtau {what}");
    }
}

/// Top-k over strided rows: the indices and values of the same rows laid out contiguously,
/// under both top-k strategies (a thread per row, and a workgroup per row's radix select).
fn top_k_matches<T: Element>(strategy: Strategy, layout: &Layout, rows: u32) {
    let ctx = ctx();
    let strided: Vec<T> = random(layout.len(), 31, -3.0, 3.0)
        .into_iter()
        .map(T::from_f32)
        .collect();
    let contiguous = layout.to_rows(&strided, rows as usize);
    let shape = Shape::strided(rows, layout.cols as u32, layout.inner as u32);
    let k = 5;
    let run = |shape: Shape, values: &[T]| {
        let logits = upload(ctx, values);
        let (indices, perturbed) = (
            ctx.storage_buffer(u64::from(rows * k) * 4).unwrap(),
            ctx.storage_buffer(u64::from(rows * k) * 4).unwrap(),
        );
        let call = TopKCall::new(
            T::STORAGE,
            shape,
            k,
            (&logits).into(),
            (&indices).into(),
            (&perturbed).into(),
        )
        .with_noise(SEED, OFFSET)
        .with_strategy(strategy);
        ctx.submit_and_wait("top-k", |e| ctx.kernels().record_top_k(e, &call))
            .unwrap();
        let n = (rows * k) as usize;
        (
            read::<u32>(ctx, &indices, n),
            read::<u32>(ctx, &perturbed, n),
        )
    };
    let what = format!("top-{k} {:?} {strategy:?}", T::STORAGE);
    let dense = Shape::new(rows, layout.cols as u32);
    assert_eq!(run(shape, &strided), run(dense, &contiguous), "{what}");
}

/// 22 rows of K = 37 with categories 6 apart: three groups of 6 and a last group of 4.
fn layouts() -> [(Layout, u32); 1] {
    let layout = Layout {
        outer: 4,
        cols: 37,
        inner: 6,
    };
    [(layout, 22)]
}

#[test]
fn strided_forward_equals_contiguous_rows() {
    // Long dispatches: under GL, parallel tests would wait on wgpu-hal's context lock.
    let _turn = common::one_at_a_time();
    for strategy in strategies() {
        for (layout, rows) in layouts() {
            forward_matches::<f32>(strategy, &layout, rows);
            forward_matches::<half::f16>(strategy, &layout, rows);
            forward_matches::<half::bf16>(strategy, &layout, rows);
        }
    }
}

#[test]
fn strided_top_k_equals_contiguous_rows() {
    let _turn = common::one_at_a_time();
    for strategy in [
        Strategy::RowPerThread,
        Strategy::RowPerWorkgroup { size: 256 },
    ] {
        for (layout, rows) in layouts() {
            top_k_matches::<f32>(strategy, &layout, rows);
            top_k_matches::<half::f16>(strategy, &layout, rows);
            top_k_matches::<half::bf16>(strategy, &layout, rows);
        }
    }
}

#[test]
fn strided_derivatives_equal_contiguous_rows() {
    let _turn = common::one_at_a_time();
    for strategy in strategies() {
        for (layout, rows) in layouts() {
            derivatives_match::<f32>(strategy, &layout, rows);
            derivatives_match::<half::f16>(strategy, &layout, rows);
            derivatives_match::<half::bf16>(strategy, &layout, rows);
        }
    }
}

/// A stride of 0 or a pitch too short for a group is refused, and calls that take adjacent
/// categories only say so, naming col_stride.
#[test]
fn strided_shapes_are_checked() {
    let _turn = common::one_at_a_time();
    let ctx = ctx();
    let logits = ctx.upload(&[0f32; 64]).unwrap();
    let out = ctx.storage_buffer(256).unwrap();
    let bad = |shape: Shape, needle: &str| {
        let call = ForwardCall::new(
            Mode::Soft,
            gumbel_wgpu::StorageType::F32,
            shape,
            (&logits).into(),
            (&out).into(),
        );
        common::expect_invalid(
            ctx.submit_and_wait("forward", |e| ctx.kernels().record_forward(e, &call)),
            needle,
        );
    };
    bad(
        Shape {
            col_stride: 0,
            ..Shape::new(4, 4)
        },
        "col_stride = 0",
    );
    bad(
        Shape {
            col_stride: 4,
            ..Shape::new(4, 4)
        },
        "K * col_stride = 16",
    );
    // Host slices read rows whose categories are adjacent, and say so.
    let mut args = gumbel_wgpu::SampleArgs::new(4, 4, 1.0, 0);
    args.shape = Shape::strided(4, 4, 4);
    common::expect_invalid(ctx.sample(&[0f32; 64], Mode::Soft, &args), "col_stride = 4");
}
