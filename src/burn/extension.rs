//! What the burn ops of every family stand on: burn's wgpu runtime and the device registry,
//! the backend extension traits (`GumbelOps`, `GumbelGradOps`) with their fusion metadata, the
//! arguments they carry, and the helpers that bind burn's buffers to the kernels. The
//! implementations that hand each op to its family are in the module above.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ::burn::backend::fusion::custom::TensorSpec;
use ::burn::backend::tensor::{FloatTensor, IntTensor};
use ::burn::backend::wgpu::{WgpuDevice, WgpuSetup};
use ::burn::backend::{Backend, backend_extension};
use ::burn::cubecl::wgpu::{AutoCompiler, WgpuServer};
use ::burn::tensor::{DType, Device, Shape as TensorShape, Tensor};
use ::burn_cubecl::tensor::CubeTensor;
use ::burn_cubecl::{CubeDevice, ops::numeric};

use crate::error::{Error, Result, invalid};
use crate::{Generator, GpuContext, GpuSlice, Mode, NoiseRange, Shape, StorageType};

/// Starts burn's wgpu runtime on its default adapter and gives this crate the same device
/// and queue. Returns burn's device (call `.autodiff()` on it for gradients). burn starts a
/// runtime once per process, before any tensor is made on it: call this once, first, and clone
/// the device; a second call is an `Error::Burn`.
pub fn init() -> Result<Device> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(|e| {
            Error::Burn(format!(
                "burn's wgpu runtime did not start: {e} (a runtime started already, by a caller that kept its WgpuSetup, is handed to this crate with gumbel_wgpu::burn::adopt)"
            ))
        })?;
    register(&device, &setup)?;
    Ok(device)
}

/// Gives this crate a burn device whose runtime its caller started already with `setup` (burn's
/// `Device::wgpu_options().setup(..)`, or its `init_with_setup`, which returns one): for a
/// library that runs inside an application that owns burn's runtime. burn keeps no handle on
/// a runtime's wgpu device and queue that this crate could take, so a runtime that burn
/// started by itself (on first use of its default device) cannot be adopted; start it with a
/// setup you keep. Adopting the same device again replaces its registration.
pub fn adopt(device: &Device, setup: &WgpuSetup) -> Result<()> {
    register(device, setup)
}

/// Hands burn a device and queue of the caller's (`setup`) and registers them here too.
pub fn init_with_setup(setup: WgpuSetup) -> Result<Device> {
    let device = Device::wgpu_options()
        .setup(setup.clone())
        .init()
        .map_err(|e| Error::Burn(format!("burn did not take the wgpu setup: {e}")))?;
    register(&device, &setup)?;
    Ok(device)
}

/// The contexts of the devices registered by [`init`] and [`init_with_setup`].
fn registry() -> &'static Mutex<HashMap<WgpuDevice, Arc<GpuContext>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<WgpuDevice, Arc<GpuContext>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn register(device: &Device, setup: &WgpuSetup) -> Result<()> {
    let key = wgpu_device(device)?;
    // burn carves tensors out of shared pages: an input and an output may share a buffer.
    let context =
        GpuContext::from_device(setup.device.clone(), setup.queue.clone()).with_inputs_writable();
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, Arc::new(context));
    Ok(())
}

/// The wgpu device behind a burn device, autodiff or not.
fn wgpu_device(device: &Device) -> Result<WgpuDevice> {
    match device.clone().without_autodiff().as_dispatch() {
        burn::backend::DispatchDevice::Cube(CubeDevice::Wgpu(device)) => Ok(device.clone()),
        other => Err(Error::Burn(format!(
            "{other:?} is not a wgpu device: this crate's kernels run on burn's wgpu backend"
        ))),
    }
}

fn context_of(device: &WgpuDevice) -> Option<Arc<GpuContext>> {
    let registry = registry().lock().unwrap_or_else(|e| e.into_inner());
    registry.get(device).cloned()
}

/// The context of `device`, registered here, or an error that says it is not.
fn context_for_device(device: &Device) -> Result<Arc<GpuContext>> {
    let key = wgpu_device(device)?;
    context_of(&key).ok_or_else(|| {
        Error::Burn(format!(
            "{key:?} was not started by gumbel_wgpu::burn::init or init_with_setup, nor handed over by gumbel_wgpu::burn::adopt, so this crate has no handle on its device"
        ))
    })
}

/// The temperature of a sample: one value, or a tensor of one value or of one per row (rows
/// numbered by the axes other than `dim`, in order). A tensor gets a gradient when it
/// requires one.
#[derive(Clone, Debug)]
pub enum Temperature {
    /// The same for every row.
    Value(f32),
    /// One element, or one per row.
    Tensor(Box<Tensor<1>>),
}

impl From<f32> for Temperature {
    fn from(tau: f32) -> Self {
        Temperature::Value(tau)
    }
}

impl From<Tensor<1>> for Temperature {
    fn from(tau: Tensor<1>) -> Self {
        Temperature::Tensor(Box::new(tau))
    }
}

/// What a sampling op needs besides its tensors: the output, the category axis and the noise
/// position (and range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleSpec {
    /// The output (index mode for [`GumbelOps::gumbel_index`]).
    pub mode: Mode,
    /// The category axis, counted from the first.
    pub dim: usize,
    /// The noise stream's seed.
    pub seed: u64,
    /// Word index of row 0, column 0.
    pub offset: u64,
    /// One word of noise an element, or two.
    pub range: NoiseRange,
}

/// The sampling ops as a burn backend extension: burn's dispatch routes them to the wgpu
/// backend (through fusion, which runs them in order with burn's own ops) and to their
/// autodiff implementations. The functions of this module check their arguments and call
/// these; call them directly only with arguments checked the same way.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait GumbelOps: Backend {
    /// The sample of `spec.mode` (soft, log-soft or hard), at per-row temperatures `tau` (f32,
    /// one per row).
    #[fusion(dtype = logits, shape = logits)]
    fn gumbel_sample(
        logits: FloatTensor<Self>,
        tau: FloatTensor<Self>,
        spec: SampleSpec,
    ) -> FloatTensor<Self>;

    /// The Gumbel-max index of each row (i32, -1 for a row without a sample), with `dim` kept
    /// at size 1.
    #[fusion(meta = index_spec)]
    fn gumbel_index(logits: FloatTensor<Self>, spec: SampleSpec) -> IntTensor<Self>;

    /// The `k` largest perturbed logits of each row: their indices (i32) and values (f32), in
    /// decreasing order, `[rows, k]` in row order.
    #[fusion(meta = top_k_spec)]
    fn gumbel_top_k(
        logits: FloatTensor<Self>,
        k: usize,
        spec: SampleSpec,
    ) -> (IntTensor<Self>, FloatTensor<Self>);

    /// The Gumbel noise of the rows of `like` (f32, `[rows, K]`).
    #[fusion(meta = noise_spec)]
    fn gumbel_noise(like: FloatTensor<Self>, spec: SampleSpec) -> FloatTensor<Self>;
}

/// The VJP of [`GumbelOps::gumbel_sample`], which the autodiff backend calls on the backend
/// it wraps: the logits' gradient and the temperatures' (one per row, f32).
#[backend_extension(Cube, Fusion)]
pub trait GumbelGradOps: Backend {
    /// `(dlogits, dtau)` for upstream gradient `dy`, recomputing the sample.
    #[fusion(meta = vjp_spec)]
    fn gumbel_sample_vjp(
        logits: FloatTensor<Self>,
        tau: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        spec: SampleSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

fn index_spec(logits: &TensorSpec, spec: &SampleSpec) -> TensorSpec {
    let mut shape = logits.shape.clone();
    shape[spec.dim] = 1;
    TensorSpec::new(shape, DType::I32)
}

fn top_k_spec(logits: &TensorSpec, k: &usize, spec: &SampleSpec) -> (TensorSpec, TensorSpec) {
    let shape = top_k_shape(&logits.shape, *k, spec);
    (
        TensorSpec::new(shape.clone(), DType::I32),
        TensorSpec::new(shape, DType::F32),
    )
}

/// Top-k's outputs: `k` per row, in row order.
pub(crate) fn top_k_shape(logits: &TensorShape, k: usize, spec: &SampleSpec) -> TensorShape {
    TensorShape::from([Rows::of(logits, spec.dim).rows, k])
}

fn noise_spec(like: &TensorSpec, spec: &SampleSpec) -> TensorSpec {
    let rows = Rows::of(&like.shape, spec.dim);
    TensorSpec::new(TensorShape::from([rows.rows, rows.cols]), DType::F32)
}

fn vjp_spec(
    logits: &TensorSpec,
    tau: &TensorSpec,
    _: &TensorSpec,
    _: &SampleSpec,
) -> (TensorSpec, TensorSpec) {
    (logits.clone(), tau.clone())
}

/// A tensor's rows along axis `dim`: `outer` groups of `inner` rows of `cols` categories,
/// categories `inner` elements apart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rows {
    pub rows: usize,
    pub cols: usize,
    pub inner: usize,
}

impl Rows {
    pub fn of(shape: &TensorShape, dim: usize) -> Self {
        let dims: Vec<usize> = shape.iter().copied().collect();
        let inner: usize = dims[dim + 1..].iter().product();
        let outer: usize = dims[..dim].iter().product();
        Rows {
            rows: outer * inner,
            cols: dims[dim],
            inner,
        }
    }

    /// The kernels' shape, or why they cannot take it.
    fn shape(&self) -> Result<Shape> {
        let fits = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| invalid(format!("{what} = {n}: at most 2^32 - 1")))
        };
        let (rows, cols, inner) = (
            fits(self.rows, "rows")?,
            fits(self.cols, "K")?,
            fits(self.inner, "the category axis's stride")?,
        );
        fits(self.cols * self.inner, "K times the category axis's stride")?;
        Ok(match inner {
            1 => Shape::new(rows, cols),
            _ => Shape::strided(rows, cols, inner),
        })
    }
}

fn storage_of(dtype: DType) -> Result<StorageType> {
    match dtype {
        DType::F32 => Ok(StorageType::F32),
        DType::F16 => Ok(StorageType::F16),
        DType::BF16 => Ok(StorageType::Bf16),
        other => Err(invalid(format!(
            "logits of {other:?}: f32, f16 and bf16 are supported"
        ))),
    }
}

// The wgpu backend: the kernels on the tensors' buffers.

/// A tensor's buffer and byte offset, with burn's hold on its memory (so that burn neither
/// frees nor moves it) until the work that uses it is submitted.
pub(crate) struct Bound<Held> {
    _held: Held,
    buffer: wgpu::Buffer,
    offset: u64,
}

pub(crate) fn bind(tensor: &CubeTensor) -> Bound<impl Sized + use<>> {
    let held = tensor
        .client
        .get_resource::<WgpuServer<AutoCompiler>>(tensor.handle.clone())
        .unwrap_or_else(|e| panic!("gumbel-wgpu: a wgpu tensor's buffer is unavailable: {e:?}"));
    let (buffer, offset) = (held.resource().buffer.clone(), held.resource().offset);
    Bound {
        _held: held,
        buffer,
        offset,
    }
}

impl<Held> Bound<Held> {
    pub fn slice(&self) -> GpuSlice<'_> {
        GpuSlice::new(&self.buffer, self.offset)
    }
}

/// The context of a tensor's device, registered by [`init`]: the functions of this module
/// check that before they reach the backend.
pub(crate) fn context_for(tensor: &CubeTensor) -> Arc<GpuContext> {
    let found = match &tensor.device {
        CubeDevice::Wgpu(device) => context_of(device),
        _ => None,
    };
    found.unwrap_or_else(|| {
        panic!(
            "gumbel-wgpu: {:?} was not started by gumbel_wgpu::burn::init",
            tensor.device
        )
    })
}

/// Records with `record` and submits, on burn's queue.
pub(crate) fn submit(
    context: &GpuContext,
    what: &str,
    record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
) {
    let mut encoder = context.device.create_command_encoder(&Default::default());
    if let Err(e) = record(&mut encoder) {
        panic!("gumbel-wgpu: {what} on burn tensors: {e}");
    }
    context.queue.submit([encoder.finish()]);
}

pub(crate) fn empty_like(tensor: &CubeTensor, shape: TensorShape, dtype: DType) -> CubeTensor {
    numeric::empty_device_contiguous_dtype(
        tensor.client.clone(),
        tensor.device.clone(),
        shape,
        dtype,
    )
}

pub(crate) fn kernel_shape(tensor: &CubeTensor, dim: usize) -> Shape {
    Rows::of(tensor.meta.shape(), dim)
        .shape()
        .unwrap_or_else(|e| panic!("gumbel-wgpu: {e}"))
}

pub(crate) fn kernel_storage(tensor: &CubeTensor) -> StorageType {
    storage_of(tensor.dtype).unwrap_or_else(|e| panic!("gumbel-wgpu: {e}"))
}

/// The category axis `dim` of a rank-`rank` tensor (negative: from the end), or an error
/// naming it.
fn axis(dim: isize, rank: usize) -> Result<usize> {
    let resolved = if dim < 0 {
        rank.checked_sub(dim.unsigned_abs())
    } else {
        Some(dim as usize).filter(|&d| d < rank)
    };
    resolved.ok_or_else(|| {
        invalid(format!(
            "dim = {dim}: a rank-{rank} tensor has axes -{rank} to {}",
            rank - 1
        ))
    })
}

/// Checks the logits (device, dtype, shape) and, with `check`, the rest of the arguments, then
/// takes the noise of their rows: a refused call takes none. Returns what `check` made.
pub(crate) fn prepare<const D: usize, T>(
    logits: &Tensor<D>,
    dim: isize,
    mode: Mode,
    noise: &mut Generator,
    check: impl FnOnce(&Rows) -> Result<T>,
) -> Result<(SampleSpec, T)> {
    let context = context_for_device(&logits.device())?;
    let storage = storage_of(logits.dtype())?;
    let dim = axis(dim, D)?;
    let rows = Rows::of(&logits.shape(), dim);
    let shape = rows.shape()?;
    context.kernels().check_row_shape(shape, storage)?;
    let checked = check(&rows)?;
    let (seed, offset) = noise.take(&shape);
    let spec = SampleSpec {
        mode,
        dim,
        seed,
        offset,
        range: NoiseRange::Standard,
    };
    Ok((spec, checked))
}

/// The per-row f32 temperatures of `rows` rows, on `device`.
pub(crate) fn temperatures(tau: Temperature, rows: usize, device: &Device) -> Result<Tensor<1>> {
    match tau {
        Temperature::Value(tau) => {
            crate::types::check_tau(tau)?;
            Ok(Tensor::full([rows], tau, device))
        }
        Temperature::Tensor(tau) => {
            let n = tau.dims()[0];
            if n != 1 && n != rows {
                return Err(invalid(format!(
                    "tau has {n} elements; one, or one per row ({rows}), are needed"
                )));
            }
            Ok((*tau).cast(DType::F32).expand([rows]))
        }
    }
}
