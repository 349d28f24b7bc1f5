//! Finding a device: a real GPU when there is one, otherwise a CPU Vulkan driver (lavapipe).

use crate::error::{Error, Result};
use crate::kernels::{BlockOrder, Kernels, NoiseMap, WideMultiply};

/// The environment variable that picks an adapter by (a case-insensitive part of) its name.
pub const ADAPTER_ENV: &str = "GUMBEL_WGPU_ADAPTER";

const NO_ADAPTER_HELP: &str = "on a machine without a GPU, install Mesa's Vulkan CPU driver \
     (lavapipe): `apt-get install mesa-vulkan-drivers libvulkan1` on Debian or Ubuntu";

/// A device, its queue and the crate's kernels for it.
pub struct GpuContext {
    /// The device every call of this context runs on.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    kernels: Kernels,
    /// The instance that found the device (none for a caller's device).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // read by live_objects, native only
    instance: Option<wgpu::Instance>,
}

/// wgpu objects alive in an instance: what a leak check counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveObjects {
    /// Buffers.
    pub buffers: usize,
    /// Bind groups.
    pub bind_groups: usize,
    /// Compute pipelines.
    pub compute_pipelines: usize,
    /// Shader modules.
    pub shader_modules: usize,
}

impl GpuContext {
    /// Opens the best adapter: a discrete GPU, then an integrated or virtual one, then a CPU
    /// driver (Vulkan before GL). `GUMBEL_WGPU_ADAPTER=name` restricts the choice to adapters
    /// whose name contains `name`; `WGPU_BACKEND` restricts the backends as in wgpu.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// [`GpuContext::new`] without blocking: the form for the browser, where it opens the
    /// page's WebGPU adapter.
    pub async fn new_async() -> Result<Self> {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        // Vulkan, Metal and DX12 first: GL is a last resort (and complains without a display).
        descriptor.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
        let mut instance = wgpu::Instance::new(descriptor);
        let wanted = std::env::var(ADAPTER_ENV).ok().map(|s| s.to_lowercase());
        let mut adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        if adapters.is_empty() && wgpu::Backends::from_env().is_none() {
            let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
            descriptor.backends = wgpu::Backends::GL;
            instance = wgpu::Instance::new(descriptor);
            adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        }
        let found: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
        if let Some(name) = &wanted {
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(name.as_str()));
        }
        adapters.sort_by_key(|a| rank(&a.get_info()));
        let Some(adapter) = adapters.into_iter().next() else {
            return Err(Error::NoAdapter(match wanted {
                Some(name) => format!(
                    "no adapter's name contains {name:?} ({ADAPTER_ENV}); found: [{}]",
                    found.join("; ")
                ),
                None => format!("no GPU or CPU adapter found; {NO_ADAPTER_HELP}"),
            }));
        };
        let info = adapter.get_info();
        let wanted_features = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::SUBGROUP
            | wgpu::Features::SHADER_INT64;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("gumbel-wgpu"),
                required_features: adapter.features() & wanted_features,
                required_limits: adapter.limits(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|source| Error::RequestDevice {
                adapter: describe(&info),
                source,
            })?;
        Ok(Self {
            instance: Some(instance),
            ..Self::from_device(device, queue)
        })
    }

    /// Wraps a device and queue that the caller already has.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let kernels = Kernels::new(&device);
        Self {
            info: device.adapter_info(),
            device,
            queue,
            kernels,
            instance: None,
        }
    }

    /// This context with kernels that form Philox's products as `wide_multiply` says (the
    /// default is the fastest the device allows), keeping their noise map and block order; an
    /// error where the device lacks what it needs.
    pub fn with_wide_multiply(mut self, wide_multiply: WideMultiply) -> Result<Self> {
        let (noise_map, order) = (self.kernels.noise_map(), self.kernels.block_order());
        self.kernels = Kernels::with_wide_multiply(&self.device, wide_multiply)?
            .with_noise_map(noise_map)
            .with_block_order(order);
        Ok(self)
    }

    /// This context with the token sampler walking rows in `order`
    /// ([`Kernels::with_block_order`]).
    pub fn with_block_order(self, order: BlockOrder) -> Self {
        Self {
            kernels: self.kernels.with_block_order(order),
            ..self
        }
    }

    /// This context with kernels that map words to Gumbel noise as `noise_map` says (the
    /// default is [`NoiseMap::Log2`]).
    pub fn with_noise_map(self, noise_map: NoiseMap) -> Self {
        Self {
            kernels: self.kernels.with_noise_map(noise_map),
            ..self
        }
    }

    /// This context with every buffer bound writable ([`Kernels::with_inputs_writable`]).
    pub fn with_inputs_writable(self) -> Self {
        Self {
            kernels: self.kernels.with_inputs_writable(),
            ..self
        }
    }

    /// The wgpu objects alive in this context's instance (none for a caller's device, whose
    /// instance this crate does not see). Native only: the browser keeps no such count.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn live_objects(&self) -> Option<LiveObjects> {
        let hub = self.instance.as_ref()?.generate_report()?.hub;
        Some(LiveObjects {
            buffers: hub.buffers.num_kept_from_user,
            bind_groups: hub.bind_groups.num_kept_from_user,
            compute_pipelines: hub.compute_pipelines.num_kept_from_user,
            shader_modules: hub.shader_modules.num_kept_from_user,
        })
    }

    /// The kernels, for recording into encoders of the caller's.
    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// The adapter's name, backend and type.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// One line: adapter name, backend, type, and the optional features the device has.
    pub fn summary(&self) -> String {
        let features = self.device.features();
        let mut used = Vec::new();
        if features.contains(wgpu::Features::SUBGROUP) {
            used.push(format!(
                "subgroups ({}..{})",
                self.info.subgroup_min_size, self.info.subgroup_max_size
            ));
        }
        if features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            used.push("timestamp queries".to_owned());
        }
        if features.contains(wgpu::Features::SHADER_INT64) {
            used.push("shader int64".to_owned());
        }
        format!(
            "{}; features: {}; max storage binding {} MiB; Philox products: {:?}",
            describe(&self.info),
            if used.is_empty() {
                "none".to_owned()
            } else {
                used.join(", ")
            },
            self.device.limits().max_storage_buffer_binding_size >> 20,
            self.kernels.wide_multiply()
        )
    }

    /// Waits until all submitted work is done.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(&self) -> Result<()> {
        pollster::block_on(self.wait_async())
    }

    /// Resolves when all work submitted so far is done.
    pub async fn wait_async(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.wait_for_device()?;
        rx.await.map_err(|_| Error::Wgpu {
            context: "waiting for submitted work".to_owned(),
            message: "wgpu dropped the work-done callback (was the device lost?)".to_owned(),
        })
    }

    /// Native wgpu runs callbacks inside a poll, which here waits for the queue to empty; the
    /// browser runs them on its own and polling does nothing.
    pub(crate) fn wait_for_device(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely())?;
        Ok(())
    }
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    // A browser need not name its adapter.
    let name = match info.name.as_str() {
        "" => "unnamed adapter",
        name => name,
    };
    format!("{name} ({:?}, {:?})", info.backend, info.device_type)
}

fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, backend)
}
