//! What every row kernel reads besides its buffers: the parameter header (`RowHeader`, laid out
//! as the WGSL struct of that name), the temperature ([`Tau`]) and where the noise comes from.

use bytemuck::{Pod, Zeroable};

use crate::error::{Result, invalid};
use crate::kernels::{BufferUse, GpuSlice, Kernels, Window};
use crate::shaders::same_layout;
use crate::types::{NoiseRange, check_tau, split64};

/// The parameters every row kernel reads: the WGSL struct `RowHeader` of
/// shaders/shared/sampler_row.wgsl, the member `header` of each row family's parameters.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct RowHeader {
    pub seed: [u32; 2],
    pub offset: [u32; 2],
    pub rows: u32,
    pub cols: u32,
    pub in_pitch: u32,
    pub out_pitch: u32,
    pub in_base: u32,
    pub out_base: u32,
    pub tau_base: u32,
    pub tau_per_row: u32,
    pub tau: f32,
    pub counter_used: u32,
    pub in_stride: u32,
    pub out_stride: u32,
}
same_layout!(
    RowHeader = RowHeader {
        seed,
        offset,
        rows,
        cols,
        in_pitch,
        out_pitch,
        in_base,
        out_base,
        tau_base,
        tau_per_row,
        tau,
        counter_used,
        in_stride,
        out_stride,
    }
);

/// Where a call's noise comes from (docs/contract.md, section 2): element `n = offset + r*K + k`
/// of a call takes word `n` of `seed`'s Philox stream (words `2n` and `2n + 1` with
/// [`NoiseRange::Wide`]); or a GPU-side counter holds the seed and offset when the kernel runs.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct NoisePosition<'a> {
    /// The stream's seed.
    pub seed: u64,
    /// Flat noise index of row 0, column 0.
    pub offset: u64,
    /// A GPU-side noise counter ([`crate::Generator::counter_words`]): when given, the seed
    /// and offset are read from it when the kernel runs (`offset` is added to its offset, and
    /// `seed` is not used). See [`Kernels::record_advance`].
    pub counter: Option<GpuSlice<'a>>,
    /// One word of noise an element, or two.
    pub range: NoiseRange,
}

impl<'a> NoisePosition<'a> {
    /// Element `offset + r*K + k` of `seed`'s stream, one word an element, no counter.
    pub fn new(seed: u64, offset: u64) -> Self {
        Self {
            seed,
            offset,
            counter: None,
            range: NoiseRange::Standard,
        }
    }

    /// The seed and offset read from a GPU-side counter when the kernel runs (`None`: none).
    pub fn with_counter(self, counter: impl Into<Option<GpuSlice<'a>>>) -> Self {
        Self {
            counter: counter.into(),
            ..self
        }
    }

    /// One word of noise an element, or two.
    pub fn with_range(self, range: NoiseRange) -> Self {
        Self { range, ..self }
    }

    /// The parameter words of the seed and of the offset `elements` past this one, as a
    /// dispatch that starts there reads them (a counter's offset is added when it runs).
    pub(crate) fn words_at(&self, elements: u64) -> ([u32; 2], [u32; 2]) {
        (
            split64(self.seed),
            split64(self.offset.wrapping_add(elements)),
        )
    }

    /// The header's `counter_used`.
    pub(crate) fn counter_used(&self) -> u32 {
        u32::from(self.counter.is_some())
    }
}

/// A temperature: one value for every row, or one per row held in `T`. The same shape serves
/// each layer: [`Tau`] (per-row values in a GPU buffer), [`HostTau`](crate::HostTau) (a host
/// slice), and the window of a buffer that one dispatch binds.
#[derive(Clone, Copy, Debug)]
pub enum Temperature<T> {
    /// One value for every row.
    Scalar(f32),
    /// One f32 per row. A row whose value is not finite and positive gets no sample in every
    /// mode (NaN outputs, index `u32::MAX`), as the GPU cannot return an error; a scalar like
    /// that is refused when the call is recorded.
    PerRow(T),
}

/// The temperature of a call recorded into a command encoder: per-row values in a buffer.
pub type Tau<'a> = Temperature<GpuSlice<'a>>;

/// The temperature as one dispatch binds it: the window of its rows' values.
pub(crate) type TauPart<'a> = Temperature<Window<'a>>;

impl TauPart<'_> {
    /// What the dispatch binds at `BINDING_TAUS`: the window, or a placeholder for a scalar.
    pub(crate) fn binding<'s>(&'s self, kernels: &'s Kernels) -> wgpu::BindingResource<'s> {
        match self {
            Temperature::PerRow(window) => window.binding(),
            Temperature::Scalar(_) => kernels.placeholder.as_entire_binding(),
        }
    }

    /// The header's view: (index of the first row in the window, per-row flag, scalar).
    pub(crate) fn header_fields(&self) -> (u32, u32, f32) {
        match self {
            Temperature::Scalar(scalar) => (0, 0, *scalar),
            Temperature::PerRow(window) => (window.base, 1, 0.0),
        }
    }
}

impl Kernels {
    /// Checks a call's temperature argument for `rows` rows.
    pub(super) fn check_tau_arg(&self, tau: Tau, rows: u32) -> Result<()> {
        match tau {
            Tau::Scalar(tau) => check_tau(tau),
            Tau::PerRow(taus) => self.check_slice("tau", taus, u64::from(rows), 4),
        }
    }

    /// A per-row temperature as the aliasing check sees it.
    pub(super) fn tau_use<'a>(&self, tau: Tau<'a>, rows: u32) -> Option<BufferUse<'a>> {
        match tau {
            Tau::Scalar(_) => None,
            Tau::PerRow(slice) => Some(BufferUse::read("tau", slice, u64::from(rows), 4)),
        }
    }

    /// The temperature of rows `row0 .. row0 + rows` as one dispatch binds it.
    pub(super) fn tau_part<'a>(&self, tau: Tau<'a>, row0: u64, rows: u64) -> Result<TauPart<'a>> {
        Ok(match tau {
            Tau::Scalar(scalar) => Temperature::Scalar(scalar),
            Tau::PerRow(slice) => Temperature::PerRow(self.window(slice, row0, rows, 4)?),
        })
    }

    /// The binding of a GPU noise counter (a placeholder when there is none). The kernels read
    /// its four words from the start of the binding, so its offset must be aligned for one.
    pub(crate) fn counter_binding<'a>(
        &'a self,
        counter: Option<GpuSlice<'a>>,
    ) -> Result<wgpu::BindingResource<'a>> {
        let Some(slice) = counter else {
            return Ok(self.placeholder.as_entire_binding());
        };
        self.check_slice("noise counter", slice, 4, 4)?;
        let align = u64::from(self.limits.min_storage_buffer_offset_alignment);
        if !slice.offset.is_multiple_of(align) {
            return Err(invalid(format!(
                "the noise counter's offset {} is not a multiple of the device's storage offset alignment {align}",
                slice.offset
            )));
        }
        Ok(wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: slice.buffer,
            offset: slice.offset,
            size: wgpu::BufferSize::new(16),
        }))
    }
}

/// A GPU noise counter as the aliasing check sees it: the row kernels read its four words.
pub(crate) fn counter_use(counter: Option<GpuSlice>) -> Option<BufferUse> {
    counter.map(|slice| BufferUse::read("noise counter", slice, 4, 4))
}
