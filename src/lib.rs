//! Gumbel-Softmax (Concrete) sampling on the GPU with fused WGSL kernels.
//!
//! The noise of flat element `n` depends only on `(seed, n)`, on the GPU and on the CPU alike:
//!
//! ```
//! use gumbel_wgpu::philox::noise_word;
//! use gumbel_wgpu::reference::gumbel_of_word;
//! use gumbel_wgpu::Philox4x32;
//! use rand_core::RngCore;
//!
//! let mut stream = Philox4x32::new(42, 1000);
//! assert_eq!(stream.next_u32(), noise_word(42, 1000));
//! let g = gumbel_of_word(noise_word(42, 1001));
//! assert!((-3.2..22.9).contains(&g));
//! ```

pub mod context;
pub mod derivative;
pub mod error;
pub mod forward;
pub mod generator;
pub mod host;
pub mod kernels;
pub mod measure;
pub mod noise;
pub mod philox;
pub mod reference;
pub mod types;

pub use context::{ADAPTER_ENV, GpuContext, LiveObjects};
pub use derivative::{JvpCall, Source, TauGradient, TauTangent, VjpCall};
pub use error::{Error, Result};
pub use forward::{ForwardCall, Strategy, Tau};
pub use generator::Generator;
pub use host::{Gradient, HostSource, HostTau, SampleArgs};
pub use kernels::{GpuSlice, Kernels};
pub use noise::{NoiseCall, NoiseOutput};
pub use philox::Philox4x32;
pub use types::{Element, Mode, Shape, StorageType};

mod shaders {
    include!(concat!(env!("OUT_DIR"), "/shaders.rs"));
}
