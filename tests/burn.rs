//! The `burn` module against burn's own composed ops on the same noise: the sample
//! `softmax((logits + g) / tau)` and its gradients through burn's autodiff, with g from this
//! crate's noise kernel, at f32, f16 and bf16, over the last axis and over axis 1 of a 4-D
//! tensor.
//!
//! Tolerances: both sides compute in f32 from the same logits and the same noise bits, and
//! differ only in the order of the row sum and in exp's error (WGSL: 3 + 2|x| ULP), so f32
//! results agree to a few ULP of the row's values: 2e-5 relative to the row's largest output,
//! and gradients to 1e-4 of the largest. 16-bit outputs add one rounding of the storage type
//! (f16: 2^-11 relative, bf16: 2^-8) to the kernel's side, so those bounds are 2^-10 and 2^-7
//! of the largest value. For 16-bit gradients burn's sample is rounded to the logits' type too,
//! so that both sides take the same rounded `dy`; `dl` is then rounded once more on ours.

mod common;

use std::sync::OnceLock;

use burn::backend::wgpu::WgpuSetup;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};
use common::calls::random;
use gumbel_wgpu::Generator;
use gumbel_wgpu::burn::{
    gumbel_log_softmax, gumbel_max, gumbel_noise_like, gumbel_softmax, gumbel_top_k,
};

fn device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| gumbel_wgpu::burn::init().expect("burn's wgpu runtime on this machine"))
        .clone()
}

const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// The share of the largest value that a result may be off by, for outputs and gradients.
fn tolerance(dtype: DType, gradient: bool) -> f32 {
    match (dtype, gradient) {
        (DType::F32, false) => 2e-5,
        (DType::F32, true) => 1e-4,
        (DType::F16, _) => 2f32.powi(-10),
        _ => 2f32.powi(-7),
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.cast(DType::F32).into_data().try_to_vec::<f32>().unwrap()
}

fn ints<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    t.cast(DType::I64).into_data().try_to_vec::<i64>().unwrap()
}

fn assert_close<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>, bound: f32, what: &str) {
    let (a, b) = (values(ours), values(theirs));
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b
        .iter()
        .fold(0f32, |m, x| m.max(x.abs()))
        .max(f32::MIN_POSITIVE);
    let mut worst = 0f32;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= bound * scale || (x.is_infinite() && x == y),
            "{what}: element {i}: ours {x}, burn's {y} (bound {} at scale {scale})",
            bound * scale
        );
        if x.is_finite() {
            worst = worst.max((x - y).abs() / (bound * scale));
        }
    }
    eprintln!(
        "{what}: worst difference {:.0}% of the bound",
        100.0 * worst
    );
}

/// Uniform values in [lo, hi) from `seed`, made on the host: the same in every run, whichever
/// test runs first (burn's own random tensors share one generator per device).
fn uniform<const D: usize>(
    shape: [usize; D],
    lo: f64,
    hi: f64,
    seed: u64,
    device: &Device,
) -> Tensor<D> {
    let values = random(shape.iter().product(), seed, lo, hi);
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn logits<const D: usize>(shape: [usize; D], dtype: DType, device: &Device) -> Tensor<D> {
    uniform(shape, -3.0, 3.0, 17, device).cast(dtype)
}

/// Runs `check` at each type on the tested shapes: rows over the last axis, and axis 1 of a
/// 4-D tensor (as DALL-E's dVAE samples over its codebook axis).
macro_rules! each_case {
    ($check:ident) => {
        let device = device();
        for dtype in DTYPES {
            if !device.supports_dtype(dtype) {
                // burn's wgpu backend has no bf16 where WGSL has none (lavapipe).
                eprintln!("burn cannot hold {dtype:?} tensors on this device: not tested");
                continue;
            }
            let what = format!("{dtype:?} [6, 33] dim -1");
            $check::<2>(logits([6, 33], dtype, &device), -1, &what);
            let what = format!("{dtype:?} [2, 17, 3, 5] dim 1");
            $check::<4>(logits([2, 17, 3, 5], dtype, &device), 1, &what);
        }
    };
}

fn composed<const D: usize>(
    logits: &Tensor<D>,
    noise: &Tensor<D>,
    tau: f32,
    dim: usize,
) -> Tensor<D> {
    softmax((logits.clone().cast(DType::F32) + noise.clone()) / tau, dim)
}

fn forward_matches<const D: usize>(logits: Tensor<D>, dim: isize, what: &str) {
    let dtype = logits.dtype();
    let axis = if dim < 0 { D - 1 } else { dim as usize };
    let noise = gumbel_noise_like(&logits, dim, &mut Generator::at(7, 1000)).unwrap();
    let soft =
        gumbel_softmax(logits.clone(), 0.6, false, dim, &mut Generator::at(7, 1000)).unwrap();
    assert_eq!(soft.dtype(), dtype, "{what}");
    let expected = composed(&logits, &noise, 0.6, axis);
    assert_close(
        soft,
        expected.clone(),
        tolerance(dtype, false),
        &format!("soft {what}"),
    );

    let log = gumbel_log_softmax(logits.clone(), 0.6, dim, &mut Generator::at(7, 1000)).unwrap();
    let expected_log = log_softmax(
        (logits.clone().cast(DType::F32) + noise.clone()) / 0.6,
        axis,
    );
    assert_close(
        log,
        expected_log,
        tolerance(dtype, false),
        &format!("log-soft {what}"),
    );

    // The index and the hard sample's one-hot: the argmax of the perturbed logits.
    let index = gumbel_max(logits.clone(), dim, &mut Generator::at(7, 1000)).unwrap();
    let perturbed = logits.clone().cast(DType::F32) + noise;
    let argmax = perturbed.argmax(axis);
    assert_eq!(ints(index), ints(argmax.clone()), "index {what}");
    let hard = gumbel_softmax(logits, 0.6, true, dim, &mut Generator::at(7, 1000)).unwrap();
    assert_eq!(ints(hard.clone().argmax(axis)), ints(argmax), "hard {what}");
    let ones = values(hard.sum_dim(axis));
    assert!(
        ones.iter().all(|&s| s == 1.0),
        "hard {what}: rows sum to {ones:?}"
    );
}

#[test]
fn samples_match_burns_composed_ops() {
    each_case!(forward_matches);
}

/// dlogits and dtau through burn's autodiff: ours (the VJP kernel, recomputing the sample)
/// against burn's own backward through the composed ops, for a scalar temperature tensor and a
/// per-row one.
fn gradients_match<const D: usize>(logits: Tensor<D>, dim: isize, what: &str) {
    let device = logits.device().autodiff();
    let dtype = logits.dtype();
    let axis = if dim < 0 { D - 1 } else { dim as usize };
    let rows = logits.shape().num_elements() / logits.dims()[axis];
    let weights = uniform(logits.dims(), -1.0, 1.0, 18, &device);
    for tau_len in [1, rows] {
        let tau_values = uniform([tau_len], 0.4, 1.5, 19, &device);
        for hard in [false, true] {
            let what = format!("{what} tau of {tau_len}, hard {hard}");
            let leaf = |t: Tensor<D>| t.autodiff().detach().require_grad();
            let (ours_l, theirs_l) = (leaf(logits.clone()), leaf(logits.clone()));
            let (ours_t, theirs_t) = (
                tau_values.clone().detach().require_grad(),
                tau_values.clone().detach().require_grad(),
            );
            let y = gumbel_softmax(
                ours_l.clone(),
                ours_t.clone(),
                hard,
                dim,
                &mut Generator::at(3, 99),
            )
            .unwrap();
            let grads = (y.cast(DType::F32) * weights.clone()).sum().backward();
            let (dl, dtau) = (ours_l.grad(&grads).unwrap(), ours_t.grad(&grads).unwrap());

            // burn's: the soft sample's graph (hard passes its gradient straight through).
            let noise = gumbel_noise_like(&theirs_l, dim, &mut Generator::at(3, 99)).unwrap();
            let tau_rows = theirs_t.clone().expand([rows]);
            // Rows are the axes other than `axis`, in order: move it last to broadcast tau.
            let moved = (theirs_l.clone().cast(DType::F32) + noise).movedim(axis, D - 1);
            let mut row_dims = moved.dims();
            row_dims[D - 1] = 1;
            let z = moved / tau_rows.reshape(row_dims);
            // Rounded to the logits' type as ours is, so that both take the same rounded dy.
            let y = softmax(z, D - 1).movedim(D - 1, axis).cast(dtype);
            let grads = (y.cast(DType::F32) * weights.clone()).sum().backward();
            let (dl_theirs, dtau_theirs) = (
                theirs_l.grad(&grads).unwrap(),
                theirs_t.grad(&grads).unwrap(),
            );
            assert_close(
                dl,
                dl_theirs,
                tolerance(dtype, true),
                &format!("dlogits {what}"),
            );
            assert_close(
                dtau,
                dtau_theirs,
                tolerance(dtype, true),
                &format!("dtau {what}"),
            );
        }
    }
}

#[test]
fn gradients_match_burns_autodiff() {
    each_case!(gradients_match);
}

fn top_k_matches<const D: usize>(logits: Tensor<D>, dim: isize, what: &str) {
    let axis = if dim < 0 { D - 1 } else { dim as usize };
    let noise = gumbel_noise_like(&logits, dim, &mut Generator::at(5, 0)).unwrap();
    let dtype = logits.dtype();
    // burn's order: (values, indices); the values in the logits' dtype.
    let (perturbed, indices) =
        gumbel_top_k(logits.clone(), 4, dim, &mut Generator::at(5, 0)).unwrap();
    assert_eq!(perturbed.dtype(), dtype, "top-k {what}");
    let (largest, expected) = (logits.cast(DType::F32) + noise).topk_with_indices(4, axis);
    assert_eq!(ints(indices), ints(expected), "top-k {what}");
    // l + g in f32 on both sides (a 16-bit logit is exact in f32), then rounded to the dtype.
    assert_close(
        perturbed.cast(DType::F32),
        largest.cast(dtype).cast(DType::F32),
        tolerance(dtype, false),
        &format!("top-k {what}"),
    );
}

#[test]
fn top_k_matches_burns_topk() {
    each_case!(top_k_matches);
}

/// Bad arguments come back as errors that name them.
#[test]
fn bad_arguments_are_errors() {
    let device = device();
    let x = logits([4, 8], DType::F32, &device);
    let mut g = Generator::new(1);
    let err = |r: gumbel_wgpu::Result<Tensor<2>>| r.unwrap_err().to_string();
    assert!(err(gumbel_softmax(x.clone(), 1.0, false, 2, &mut g)).contains("dim = 2"));
    assert!(err(gumbel_softmax(x.clone(), 1.0, false, -3, &mut g)).contains("dim = -3"));
    assert!(err(gumbel_softmax(x.clone(), 0.0, false, -1, &mut g)).contains("tau = 0"));
    let taus = Tensor::<1>::ones([3], &device);
    assert!(err(gumbel_softmax(x.clone(), taus, false, -1, &mut g)).contains("tau has 3"));
    let k = gumbel_top_k(x.clone(), 9, -1, &mut g)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(k.contains("k = 9"), "{k}");
    // A refused call takes no noise.
    assert_eq!(g.offset(), 0);
    let zero = gumbel_top_k(x, 0, -1, &mut g).map(|_| ()).unwrap_err();
    assert!(zero.to_string().contains("k = 0"), "{zero}");
    assert_eq!(g.offset(), 0);
}

/// A row without a sample: top-k's indices -1 and values NaN (docs/contract.md, section 1),
/// beside a row with two valid logits, padded with -1 and -inf.
#[test]
fn top_k_of_a_masked_row_has_no_sample() {
    let device = device();
    let inf = f32::NEG_INFINITY;
    let x = Tensor::<2>::from_floats([[inf, inf, inf, inf], [1.0, inf, 2.0, inf]], &device);
    let (values, indices) = gumbel_top_k(x, 3, -1, &mut Generator::new(2)).unwrap();
    let values = self::values(values);
    let indices = ints(indices);
    assert!(values[..3].iter().all(|v| v.is_nan()), "{values:?}");
    assert_eq!(indices[..3], [-1, -1, -1]);
    assert!(
        values[3].is_finite() && values[4].is_finite() && values[5] == inf,
        "{values:?}"
    );
    assert_eq!(indices[5], -1);
}

/// The README's "With burn" lines, but for `init`, which starts burn's runtime once per
/// process: this binary's other tests share it through `device()`.
#[test]
fn readme_lines_run() -> gumbel_wgpu::Result<()> {
    let device = device().autodiff(); // burn's wgpu runtime, shared with the kernels
    let logits =
        Tensor::<4>::random([8, 512, 16, 16], Distribution::Default, &device).require_grad();
    let y = gumbel_softmax(logits.clone(), 1.0, true, 1, &mut Generator::new(0))?; // dim 1, straight-through
    let weights = Tensor::<4>::random([1, 512, 1, 1], Distribution::Default, &device); // a reward per class
    let dlogits = logits.grad(&(y * weights).sum().backward()); // the VJP kernel, the sample made again from the logits
    let dlogits = dlogits.unwrap();
    assert_eq!(dlogits.dims(), [8, 512, 16, 16]);
    // y.sum() would have a gradient of exactly zero (each row sums to 1); this one has not.
    let largest = values(dlogits.abs().max())[0];
    assert!(largest > 0.0, "{largest}");
    Ok(())
}

/// A runtime that its caller started with a setup of its own (here, a second wgpu device) is
/// refused by name until it is adopted, then sampled on.
#[test]
fn a_runtime_started_elsewhere_is_adopted() {
    let setup = pollster::block_on(async {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        descriptor.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
        let instance = wgpu::Instance::new(descriptor);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions::default())
            .await
            .expect("an adapter");
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor::default())
            .await
            .expect("a device");
        let backend = adapter.get_info().backend;
        WgpuSetup {
            instance,
            adapter,
            device,
            queue,
            backend,
        }
    });
    let device = Device::wgpu_options()
        .setup(setup.clone())
        .init()
        .expect("burn takes the setup");
    let x = Tensor::<2>::from_floats([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]], &device);
    let refused = gumbel_softmax(x.clone(), 1.0, false, -1, &mut Generator::new(0)).unwrap_err();
    assert!(refused.to_string().contains("adopt"), "{refused}");
    gumbel_wgpu::burn::adopt(&device, &setup).unwrap();
    let y = values(gumbel_softmax(x, 1.0, false, -1, &mut Generator::new(0)).unwrap());
    for row in y.chunks(3) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
    }
}
