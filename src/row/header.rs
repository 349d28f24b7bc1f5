//! What every row kernel reads besides its buffers: the parameter header (`RowHeader`, laid out
//! as the WGSL struct of that name), the temperature ([`Tau`]) and where the noise comes from.

use bytemuck::{Pod, Zeroable};

use crate::error::{Result, invalid};
use crate::kernels::{BufferUse, GpuSlice, Kernels, Window};
use crate::shaders::same_layout;
use crate::types::check_tau;

/// The parameters every row kernel's block starts with, in the order sampler_row.wgsl's
/// families declare them.
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

/// Where a call's noise comes from: a seed and the flat index of its row 0, column 0, or a
/// GPU-side counter holding both (then `offset` is added to the counter's offset and `seed`
/// is not used). docs/contract.md, section 2.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Noise<'a> {
    pub seed: u64,
    pub offset: u64,
    pub counter: Option<GpuSlice<'a>>,
}

/// The temperature of a call.
#[derive(Clone, Copy, Debug)]
pub enum Tau<'a> {
    /// One value for every row.
    Scalar(f32),
    /// One f32 per row, in a buffer. A row whose value is not finite and positive gets no
    /// sample in every mode (NaN outputs, index `u32::MAX`), as the GPU cannot return an error;
    /// a scalar like that is refused when the call is recorded.
    PerRow(GpuSlice<'a>),
}

/// The temperature as one dispatch sees it: a scalar, or a window of per-row values.
pub(crate) struct TauPart<'a> {
    window: Option<Window<'a>>,
    pub base: u32,
    pub per_row: u32,
    pub scalar: f32,
}

impl TauPart<'_> {
    pub fn binding<'s>(&'s self, kernels: &'s Kernels) -> wgpu::BindingResource<'s> {
        match &self.window {
            Some(w) => w.binding(),
            None => kernels.placeholder.as_entire_binding(),
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
            Tau::Scalar(scalar) => TauPart {
                window: None,
                base: 0,
                per_row: 0,
                scalar,
            },
            Tau::PerRow(slice) => {
                let window = self.window(slice, row0, rows, 4)?;
                TauPart {
                    base: window.base,
                    window: Some(window),
                    per_row: 1,
                    scalar: 0.0,
                }
            }
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
pub(super) fn counter_use(counter: Option<GpuSlice>) -> Option<BufferUse> {
    counter.map(|slice| BufferUse::read("noise counter", slice, 4, 4))
}
