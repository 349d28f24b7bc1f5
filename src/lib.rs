//! Gumbel-Softmax (Concrete) sampling on the GPU with fused WGSL kernels.

pub mod context;
pub mod error;
pub mod forward;
pub mod host;
pub mod kernels;
pub mod measure;
pub mod noise;
pub mod philox;
pub mod reference;
pub mod types;

pub use context::{ADAPTER_ENV, GpuContext};
pub use error::{Error, Result};
pub use forward::{ForwardCall, Strategy, Tau};
pub use host::{HostTau, SampleArgs};
pub use kernels::{GpuSlice, Kernels};
pub use noise::{NoiseCall, NoiseOutput};
pub use philox::Philox4x32;
pub use types::{Element, Mode, Shape, StorageType};

mod shaders {
    include!(concat!(env!("OUT_DIR"), "/shaders.rs"));
}
