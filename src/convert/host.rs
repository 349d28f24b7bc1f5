//! The host-slice form of the convert calls: slices in, `Vec` out, on a [`GpuContext`].

use super::*;
use crate::context::GpuContext;
use crate::error::Result;
use crate::host::byte_size;
use crate::kernels::GpuSlice;
use crate::types::{Element, StorageType};

impl GpuContext {
    /// `values` in storage type `T`, converted on the device as the samplers convert their
    /// outputs (round to nearest, ties to even).
    pub async fn to_storage_async<T: Element>(&self, values: &[f32]) -> Result<Vec<T>> {
        self.convert(T::STORAGE, Conversion::Encode, values).await
    }

    /// `values` as f32, converted on the device as the samplers read their inputs.
    pub async fn from_storage_async<T: Element>(&self, values: &[T]) -> Result<Vec<f32>> {
        self.convert(T::STORAGE, Conversion::Decode, values).await
    }

    async fn convert<In: bytemuck::Pod, Out: bytemuck::Pod>(
        &self,
        storage: StorageType,
        conversion: Conversion,
        values: &[In],
    ) -> Result<Vec<Out>> {
        let out_size = size_of::<Out>() as u64;
        let bytes = byte_size(self.kernels(), "conversion output", values.len(), out_size)?;
        let out = self.storage_buffer(bytes)?;
        let input = self.upload(values)?;
        self.submit("conversion", |encoder| {
            self.kernels().record_convert(
                encoder,
                &ConvertCall {
                    storage,
                    conversion,
                    input: GpuSlice::from(&input),
                    out: GpuSlice::from(&out),
                    count: values.len() as u64,
                },
            )
        })
        .await?;
        self.read_back_async(&out, values.len()).await
    }
}

/// The blocking forms of the calls above, for native targets (see `host`).
#[cfg(not(target_arch = "wasm32"))]
impl GpuContext {
    /// [`GpuContext::to_storage_async`], waiting for it.
    pub fn to_storage<T: Element>(&self, values: &[f32]) -> Result<Vec<T>> {
        pollster::block_on(self.to_storage_async(values))
    }

    /// [`GpuContext::from_storage_async`], waiting for it.
    pub fn from_storage<T: Element>(&self, values: &[T]) -> Result<Vec<f32>> {
        pollster::block_on(self.from_storage_async(values))
    }
}
