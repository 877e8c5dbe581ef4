//! Adapter and device setup for the wgpu backend, buffer helpers and readback.
//!
//! The backends come from `WGPU_BACKEND` when it is set (`vulkan`, `gl`, …,
//! see `wgpu::Backends::from_comma_list`), all native backends otherwise.
//! Among the adapters found, a hardware GPU is preferred over a software one
//! (lavapipe, llvmpipe), and Vulkan over the other APIs, so that by default
//! this machine uses Vulkan (lavapipe) and `WGPU_BACKEND=gl` selects GL
//! (llvmpipe). The device is created with the adapter's own limits (128 MiB
//! storage bindings on lavapipe, far more on discrete GPUs), and the engine
//! chunks its work to them.

use std::sync::{mpsc, Arc, Mutex};

use crate::engine::KernelTime;
use crate::{Error, Result};

/// An open device, the adapter it came from, and a record of the errors the
/// device reported asynchronously (validation, out of memory): they are
/// returned as `Error::Gpu` by `check`, never raised as panics.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    errors: Arc<Mutex<Vec<String>>>,
    /// mappable buffers that readbacks copy through, free for reuse
    /// (creating one per readback costs more than the copy on some drivers);
    /// several are out at once while readbacks are in flight
    staging: Mutex<Vec<wgpu::Buffer>>,
    /// GPU time per kernel, when asked for and the adapter has timestamps
    clock: Option<Mutex<KernelClock>>,
}

/// Timestamp queries around every dispatch, so `gpubound bench
/// --kernel-times` can say where the device's time goes. Pass `i` since the
/// last submission writes queries `2i` and `2i + 1`; submitting resolves
/// them and adds each pass's time to its kernel's total.
struct KernelClock {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    /// the kernel (pipeline label) of each pipeline
    names: std::collections::HashMap<wgpu::ComputePipeline, String>,
    /// the kernel of each pass since the last submission
    pending: Vec<String>,
    /// seconds and dispatches per kernel
    totals: std::collections::BTreeMap<String, (f64, u64)>,
    /// nanoseconds per timestamp tick
    period: f64,
}

/// Passes timed per submission; later ones in the same submission are not.
const TIMED_PASSES: u32 = 1024;

/// Which adapters `open` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterPolicy {
    /// Any adapter, software renderers included (`--backend gpu`).
    Any,
    /// Hardware GPUs only (`--backend auto`).
    HardwareOnly,
}

/// True for software renderers (lavapipe, llvmpipe, SwiftShader, WARP…).
/// False when this machine certainly has no GPU: on Linux, no DRM render
/// node, NVIDIA device or WSL GPU node. Elsewhere it cannot tell: true.
pub fn hardware_may_exist() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let nodes = |dir: &str, prefix: &str| {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
            })
            .unwrap_or(false)
    };
    nodes("/dev/dri", "renderD")
        || nodes("/dev", "nvidia")
        || std::path::Path::new("/dev/dxg").exists()
}

pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || [
            "llvmpipe",
            "lavapipe",
            "softpipe",
            "swiftshader",
            "basic render",
        ]
        .iter()
        .any(|s| name.contains(s))
}

fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let kind = if is_software(info) { 5 } else { kind };
    let api = match info.backend {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal => 1,
        wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 3,
        _ => 4,
    };
    (kind, api)
}

/// The backends to search: `WGPU_BACKEND` if set, else all native ones.
pub fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY | wgpu::Backends::SECONDARY)
}

pub fn api_name(backend: wgpu::Backend) -> &'static str {
    match backend {
        wgpu::Backend::Vulkan => "Vulkan",
        wgpu::Backend::Metal => "Metal",
        wgpu::Backend::Dx12 => "DirectX 12",
        wgpu::Backend::Gl => "OpenGL",
        wgpu::Backend::BrowserWebGpu => "WebGPU",
        wgpu::Backend::Noop => "noop",
    }
}

impl Gpu {
    /// Finds the best adapter the policy allows and opens a device on it;
    /// with `kernel_times`, one that times every dispatch where the adapter
    /// has timestamp queries.
    pub fn open(policy: AdapterPolicy, kernel_times: bool) -> Result<Gpu> {
        let backends = backends();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
        });
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let found: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({}, {:?})", i.name, api_name(i.backend), i.device_type)
            })
            .collect();
        let mut candidates: Vec<wgpu::Adapter> = adapters
            .into_iter()
            .filter(|a| a.get_info().backend != wgpu::Backend::Noop)
            .filter(|a| policy == AdapterPolicy::Any || !is_software(&a.get_info()))
            .collect();
        candidates.sort_by_key(|a| rank(&a.get_info()));
        let Some(adapter) = candidates.into_iter().next() else {
            let env = std::env::var("WGPU_BACKEND")
                .map(|v| format!(" (WGPU_BACKEND={v})"))
                .unwrap_or_default();
            return Err(Error::Gpu(if found.is_empty() {
                format!(
                    "no GPU adapter found for backends {backends:?}{env}: install a Vulkan driver \
                     (e.g. mesa-vulkan-drivers for the lavapipe software renderer) or use --backend cpu"
                )
            } else {
                format!(
                    "no hardware GPU adapter among {}{env}; software renderers are used only with --backend gpu",
                    found.join(", ")
                )
            }));
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let timestamps =
            kernel_times && adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gpubound"),
            required_features: if timestamps {
                wgpu::Features::TIMESTAMP_QUERY
            } else {
                wgpu::Features::empty()
            },
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("opening a device on {}: {e}", info.name)))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let clock = timestamps.then(|| {
            Mutex::new(KernelClock {
                queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("kernel times"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2 * TIMED_PASSES,
                }),
                resolved: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("kernel times"),
                    size: 16 * TIMED_PASSES as u64,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                names: Default::default(),
                pending: Vec::new(),
                totals: Default::default(),
                period: queue.get_timestamp_period() as f64,
            })
        });
        Ok(Gpu {
            device,
            queue,
            adapter: info,
            limits,
            errors,
            staging: Mutex::new(Vec::new()),
            clock,
        })
    }

    /// GPU seconds and dispatches per kernel since the last call, slowest
    /// first; `None` when this device does not time its kernels.
    pub fn take_kernel_times(&self) -> Option<Vec<KernelTime>> {
        let mut clock = self.clock.as_ref()?.lock().ok()?;
        let mut out: Vec<KernelTime> = std::mem::take(&mut clock.totals)
            .into_iter()
            .map(|(kernel, (seconds, dispatches))| KernelTime {
                kernel,
                seconds,
                dispatches,
            })
            .collect();
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        Some(out)
    }

    /// Returns the first error the device reported since the last check.
    pub fn check(&self, context: &str) -> Result<()> {
        let mut errors = self
            .errors
            .lock()
            .map_err(|_| Error::Gpu("the device error log is poisoned".into()))?;
        if errors.is_empty() {
            return Ok(());
        }
        let all = errors.join("; ");
        errors.clear();
        Err(Error::Gpu(format!("{context}: {all}")))
    }

    /// The largest storage binding (and buffer) this device accepts.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            .min(1 << 30)
    }

    pub fn shader(&self, label: &str, source: String) -> Result<wgpu::ShaderModule> {
        let m = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        self.check(&format!("compiling {label}"))?;
        Ok(m)
    }

    pub fn pipeline(
        &self,
        label: &str,
        module: &wgpu::ShaderModule,
    ) -> Result<wgpu::ComputePipeline> {
        self.pipeline_entry(label, module, "main")
    }

    /// A pipeline for one entry point of a module with several; its bind
    /// group layout holds only the bindings that entry point uses.
    pub fn pipeline_entry(
        &self,
        label: &str,
        module: &wgpu::ShaderModule,
        entry: &str,
    ) -> Result<wgpu::ComputePipeline> {
        let p = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        self.check(&format!("building the {label} pipeline"))?;
        if let Some(clock) = &self.clock {
            if let Ok(mut c) = clock.lock() {
                c.names.insert(p.clone(), label.to_string());
            }
        }
        Ok(p)
    }

    pub fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("uniform"),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// A bind group of `buffers` at bindings 0, 1, 2, …
    pub fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let numbered: Vec<(u32, &wgpu::Buffer)> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u32, *b))
            .collect();
        self.bind_group_at(pipeline, &numbered)
    }

    /// A bind group of `(binding, buffer)` pairs.
    pub fn bind_group_at(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: *i,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Records one dispatch of `threads` threads of `per_group`-wide
    /// workgroups, folded into two dimensions when there are more than the
    /// per-dimension limit.
    pub fn dispatch_linear(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        group: &wgpu::BindGroup,
        threads: u64,
        per_group: u64,
    ) -> Result<()> {
        let groups = threads.div_ceil(per_group).max(1);
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::Gpu(format!(
                "{threads} threads do not fit one dispatch (at most {max}×{max} workgroups)"
            )));
        }
        self.dispatch(encoder, pipeline, group, (x as u32, y as u32));
        Ok(())
    }

    pub fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        group: &wgpu::BindGroup,
        (x, y): (u32, u32),
    ) {
        let mut clock = self.clock.as_ref().and_then(|c| c.lock().ok());
        let timed = clock.as_mut().and_then(|c| {
            let i = c.pending.len() as u32;
            (i < TIMED_PASSES).then(|| {
                let name = c.names.get(pipeline).cloned().unwrap_or_default();
                c.pending.push(name);
                i
            })
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: timed.map(|i| wgpu::ComputePassTimestampWrites {
                query_set: &clock.as_ref().expect("timed passes have a clock").queries,
                beginning_of_pass_write_index: Some(2 * i),
                end_of_pass_write_index: Some(2 * i + 1),
            }),
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    pub fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default())
    }

    /// Submits `encoder` after a copy of `size` bytes of `src` into a
    /// mappable buffer, waits, and returns those bytes.
    pub fn submit_and_read(
        &self,
        encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        size: u64,
        context: &str,
    ) -> Result<Vec<u8>> {
        Ok(self
            .submit_and_read_many(encoder, &[(src, size)], context)?
            .pop()
            .expect("one buffer read"))
    }

    /// Submits `encoder` without waiting (unless its kernels are timed: then
    /// it waits for their times).
    pub fn submit(&self, encoder: wgpu::CommandEncoder, context: &str) -> Result<()> {
        if self.clock.is_some() {
            self.submit_and_read_many(encoder, &[], context)?;
        } else {
            self.queue.submit(Some(encoder.finish()));
        }
        Ok(())
    }

    /// Submits `encoder` after copying the first `size` bytes of each buffer
    /// into one mappable buffer, waits once, and returns each one's bytes.
    pub fn submit_and_read_many(
        &self,
        encoder: wgpu::CommandEncoder,
        sources: &[(&wgpu::Buffer, u64)],
        context: &str,
    ) -> Result<Vec<Vec<u8>>> {
        self.submit_and_view(encoder, sources, context, |views| {
            views.iter().map(|v| v.to_vec()).collect()
        })
    }

    /// `submit_and_read_many`, handing `f` each buffer's bytes where they
    /// were mapped instead of copies: for large reads (the posterior's
    /// whole rows) the copy and its fresh pages cost more than the use.
    pub fn submit_and_view<R>(
        &self,
        encoder: wgpu::CommandEncoder,
        sources: &[(&wgpu::Buffer, u64)],
        context: &str,
        f: impl FnOnce(&[&[u8]]) -> R,
    ) -> Result<R> {
        let Some(clock) = &self.clock else {
            return self
                .submit_reading_sources(encoder, sources, context)?
                .view(f);
        };
        // the timed passes' timestamps come back with the results
        let mut encoder = encoder;
        let mut clock = clock
            .lock()
            .map_err(|_| Error::Gpu("the kernel clock is poisoned".into()))?;
        let timed = clock.pending.len() as u64;
        let resolved = clock.resolved.clone();
        let mut sources = sources.to_vec();
        if timed > 0 {
            encoder.resolve_query_set(&clock.queries, 0..2 * timed as u32, &resolved, 0);
            sources.push((&resolved, 16 * timed));
        }
        self.submit_reading_sources(encoder, &sources, context)?
            .view(|views| {
                let mut views = views.to_vec();
                if timed > 0 {
                    let raw = views.pop().expect("timestamps");
                    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(raw);
                    for (name, pair) in std::mem::take(&mut clock.pending)
                        .into_iter()
                        .zip(ticks.chunks(2))
                    {
                        let ns = pair[1].saturating_sub(pair[0]) as f64 * clock.period;
                        let total = clock.totals.entry(name).or_insert((0.0, 0));
                        total.0 += ns * 1e-9;
                        total.1 += 1;
                    }
                }
                f(&views)
            })
    }

    /// Submits `encoder` after copying the first `size` bytes of each buffer
    /// into one mappable buffer, and returns at once: the host goes on (and
    /// may submit more work) until it needs the bytes. Where kernels are
    /// timed it waits here, so every submission's timestamps are its own.
    pub fn submit_reading(
        &self,
        encoder: wgpu::CommandEncoder,
        sources: &[(&wgpu::Buffer, u64)],
        context: &str,
    ) -> Result<Readback<'_>> {
        if self.clock.is_some() {
            let read = self.submit_and_read_many(encoder, sources, context)?;
            return Ok(Readback {
                gpu: self,
                context: context.to_string(),
                state: ReadbackState::Ready(read),
            });
        }
        self.submit_reading_sources(encoder, sources, context)
    }

    fn submit_reading_sources(
        &self,
        mut encoder: wgpu::CommandEncoder,
        sources: &[(&wgpu::Buffer, u64)],
        context: &str,
    ) -> Result<Readback<'_>> {
        let sizes: Vec<u64> = sources
            .iter()
            .map(|&(_, s)| s.max(4).next_multiple_of(4))
            .collect();
        let total: u64 = sizes.iter().sum();
        let staging = if total == 0 {
            None
        } else {
            let staging = self.take_staging(total)?;
            let mut at = 0;
            for (&(src, _), &size) in sources.iter().zip(&sizes) {
                encoder.copy_buffer_to_buffer(src, 0, &staging, at, size);
                at += size;
            }
            Some(staging)
        };
        let index = self.queue.submit(Some(encoder.finish()));
        let (tx, rx) = mpsc::channel();
        if let Some(staging) = &staging {
            staging.map_async(wgpu::MapMode::Read, ..total, move |r| {
                let _ = tx.send(r);
            });
        }
        let mut spans = Vec::with_capacity(sources.len());
        let mut at = 0;
        for (&size, &(_, asked)) in sizes.iter().zip(sources) {
            spans.push(at as usize..(at + asked) as usize);
            at += size;
        }
        Ok(Readback {
            gpu: self,
            context: context.to_string(),
            state: ReadbackState::InFlight {
                staging,
                index,
                total,
                spans,
                mapped: rx,
            },
        })
    }

    /// A free staging buffer of at least `size` bytes.
    fn take_staging(&self, size: u64) -> Result<wgpu::Buffer> {
        let mut free = self
            .staging
            .lock()
            .map_err(|_| Error::Gpu("the readback buffers are poisoned".into()))?;
        // the smallest that fits
        let fit = (0..free.len())
            .filter(|&i| free[i].size() >= size)
            .min_by_key(|&i| free[i].size());
        if let Some(i) = fit {
            return Ok(free.swap_remove(i));
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (size + size / 2).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// Returns a staging buffer for reuse; only a few of the largest are kept.
    fn give_staging(&self, buffer: wgpu::Buffer) {
        if let Ok(mut free) = self.staging.lock() {
            free.push(buffer);
            if free.len() > MAX_FREE_STAGING {
                let smallest = (0..free.len())
                    .min_by_key(|&i| free[i].size())
                    .expect("not empty");
                free.swap_remove(smallest);
            }
        }
    }
}

/// Staging buffers kept for reuse: a pipelined batch has about three
/// readbacks in flight.
const MAX_FREE_STAGING: usize = 4;

/// Bytes on their way back from the device (`Gpu::submit_reading`).
pub struct Readback<'g> {
    gpu: &'g Gpu,
    context: String,
    state: ReadbackState,
}

enum ReadbackState {
    /// read already (timed kernels wait at submission)
    Ready(Vec<Vec<u8>>),
    InFlight {
        /// none when nothing is read
        staging: Option<wgpu::Buffer>,
        index: wgpu::SubmissionIndex,
        total: u64,
        /// each source's bytes in `staging`
        spans: Vec<std::ops::Range<usize>>,
        mapped: mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    },
}

impl Readback<'_> {
    /// Waits for the submission (not for later ones) and hands `f` each
    /// source's bytes where they were mapped.
    pub fn view<R>(self, f: impl FnOnce(&[&[u8]]) -> R) -> Result<R> {
        let (gpu, context) = (self.gpu, self.context);
        let (staging, index, total, spans, mapped) = match self.state {
            ReadbackState::Ready(read) => {
                let views: Vec<&[u8]> = read.iter().map(|v| v.as_slice()).collect();
                return Ok(f(&views));
            }
            ReadbackState::InFlight {
                staging,
                index,
                total,
                spans,
                mapped,
            } => (staging, index, total, spans, mapped),
        };
        gpu.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("{context}: waiting for the device: {e}")))?;
        gpu.check(&context)?;
        let Some(staging) = staging else {
            return Ok(f(&[]));
        };
        mapped
            .recv()
            .map_err(|_| Error::Gpu(format!("{context}: the readback was dropped")))?
            .map_err(|e| Error::Gpu(format!("{context}: reading results back: {e}")))?;
        let out = {
            let view = staging
                .get_mapped_range(..total)
                .map_err(|e| Error::Gpu(format!("{context}: mapping the results: {e}")))?;
            let views: Vec<&[u8]> = spans.iter().map(|r| &view[r.clone()]).collect();
            f(&views)
        };
        staging.unmap();
        gpu.give_staging(staging);
        Ok(out)
    }

    /// Waits and returns a copy of each source's bytes.
    pub fn read(self) -> Result<Vec<Vec<u8>>> {
        self.view(|views| views.iter().map(|v| v.to_vec()).collect())
    }
}

/// Grow-only device buffers, reused from batch to batch.
#[derive(Default)]
pub struct BufferPool {
    buffers: std::collections::HashMap<&'static str, wgpu::Buffer>,
}

impl BufferPool {
    /// A storage buffer of at least `size` bytes (contents undefined).
    pub fn get(&mut self, gpu: &Gpu, name: &'static str, size: u64) -> &wgpu::Buffer {
        let size = size.max(16).next_multiple_of(16);
        let fits = self.buffers.get(name).is_some_and(|b| b.size() >= size);
        if !fits {
            // grow by half again so slowly growing batches do not reallocate each time
            let want = (size + size / 2)
                .min(gpu.max_binding().max(size))
                .next_multiple_of(16);
            let b = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: want,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            self.buffers.insert(name, b);
        }
        &self.buffers[name]
    }

    /// A storage buffer holding `data`.
    pub fn upload<T: bytemuck::Pod>(
        &mut self,
        gpu: &Gpu,
        name: &'static str,
        data: &[T],
    ) -> &wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let b = self.get(gpu, name, bytes.len() as u64);
        if !bytes.is_empty() {
            let n = bytes.len().next_multiple_of(4);
            if n == bytes.len() {
                gpu.queue.write_buffer(b, 0, bytes);
            } else {
                let mut padded = bytes.to_vec();
                padded.resize(n, 0);
                gpu.queue.write_buffer(b, 0, &padded);
            }
        }
        &self.buffers[name]
    }

    pub fn buffer(&self, name: &'static str) -> Option<&wgpu::Buffer> {
        self.buffers.get(name)
    }
}

/// `v` as a double-f32: `hi = v` rounded to f32, `lo` = the rest rounded to f32.
#[inline]
pub fn split(v: f64) -> [f32; 2] {
    let hi = v as f32;
    if !hi.is_finite() {
        return [hi, 0.0];
    }
    [hi, (v - hi as f64) as f32]
}

/// `NEG_HUGE` of `common.wgsl`: stands for −∞ on the device.
pub const NEG_HUGE: f32 = -3.0e38;

/// A log weight as a double-f32; −∞ (or anything below −1e30, the shaders'
/// `LOG_ZERO`) becomes `NEG_HUGE`.
#[inline]
pub fn split_log(v: f64) -> [f32; 2] {
    if v < -1e30 {
        [NEG_HUGE, 0.0]
    } else {
        split(v)
    }
}

/// The inverse of `split_log`.
#[inline]
pub fn join_log(v: [f32; 2]) -> f64 {
    if v[0] <= -1e30 {
        f64::NEG_INFINITY
    } else {
        v[0] as f64 + v[1] as f64
    }
}
