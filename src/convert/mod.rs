//! Conversions between f32 and a storage type on the device, with the very conversions the
//! samplers read their inputs and write their outputs with.

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::kernels::{BufferUse, GpuSlice, Kernels};
use crate::shaders::same_layout;
use crate::shaders::{Shader, convert as kernel};
use crate::types::StorageType;

/// Which way a [`ConvertCall`] converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// f32 to the storage type: round to nearest, ties to even; overflow to infinity; NaN
    /// stays NaN.
    Encode,
    /// The storage type to f32 (exact).
    Decode,
}

/// `count` elements from `input` to `out`: f32 to `storage` or back, as `conversion` says.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ConvertCall<'a> {
    /// The other type of the conversion.
    pub storage: StorageType,
    /// Which way.
    pub conversion: Conversion,
    /// What is converted.
    pub input: GpuSlice<'a>,
    /// Where the result goes.
    pub out: GpuSlice<'a>,
    /// How many elements.
    pub count: u64,
}

impl<'a> ConvertCall<'a> {
    /// `count` elements from `input` to `out`, converted as `conversion` says.
    pub fn new(
        storage: StorageType,
        conversion: Conversion,
        input: GpuSlice<'a>,
        out: GpuSlice<'a>,
        count: u64,
    ) -> Self {
        Self {
            storage,
            conversion,
            input,
            out,
            count,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ConvertParams {
    count: u32,
    in_base: u32,
    out_base: u32,
    _pad: u32,
}
same_layout!(
    ConvertParams = ConvertParams {
        count,
        in_base,
        out_base,
        _pad
    }
);

impl Kernels {
    /// Records a conversion into `encoder`, split into as many dispatches as the device's
    /// limits need.
    pub fn record_convert(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &ConvertCall,
    ) -> Result<()> {
        let count = call.count;
        if count == 0 {
            return Ok(());
        }
        let (f32_size, other) = (4, call.storage.size());
        let (in_size, out_size) = match call.conversion {
            Conversion::Encode => (f32_size, other),
            Conversion::Decode => (other, f32_size),
        };
        self.check_slice("conversion input", call.input, count, in_size)?;
        self.check_slice("conversion output", call.out, count, out_size)?;
        self.check_aliasing(&[
            BufferUse::read("conversion input", call.input, count, in_size),
            BufferUse::write("conversion output", call.out, count, out_size),
        ])?;
        let direction = match call.conversion {
            Conversion::Encode => kernel::DIRECTION_ENCODE,
            Conversion::Decode => kernel::DIRECTION_DECODE,
        };
        let pipeline = self.pipeline(
            Shader::Convert,
            Some(call.storage),
            &[("DIRECTION", f64::from(direction))],
        )?;
        // Four elements an invocation; chunks start at even elements, so that no two share a
        // 16-bit word.
        let per_dispatch = (self.max_groups() * u64::from(kernel::WORKGROUP_SIZE) * 4)
            .min(self.max_binding() / 4 - 64)
            & !3;
        let mut done = 0;
        while done < count {
            let n = per_dispatch.min(count - done);
            let input = self.window(call.input, done, n, in_size)?;
            let out = self.window(call.out, done, n, out_size)?;
            let params = ConvertParams {
                count: n as u32,
                in_base: input.base,
                out_base: out.base,
                _pad: 0,
            };
            self.dispatch(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &[input.binding(), out.binding()],
                n.div_ceil(4 * u64::from(kernel::WORKGROUP_SIZE)) as u32,
            )?;
            done += n;
        }
        Ok(())
    }
}

mod host;
