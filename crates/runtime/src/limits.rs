//! Per-instance limits and the engine configuration derived from them.

use std::time::Duration;

/// Bounds on every instance. Each has a default and a CLI flag (`trellis up --help`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum linear memory of one instance, in bytes. A guest that grows past it sees
    /// `memory.grow` fail (and usually traps when its allocator gives up).
    pub max_memory_bytes: usize,
    /// Maximum time one invocation may run, including time spent waiting on the host. A guest
    /// still running at its deadline is stopped and its request answered with an error.
    pub max_execution_time: Duration,
    /// Maximum size of the wasm call stack, in bytes; deeper recursion traps.
    pub max_wasm_stack_bytes: usize,
    /// How many instances may exist at once across all components (the size of the pooling
    /// allocator). Instantiations beyond it fail and are answered with 503.
    pub max_total_instances: u32,
    /// Linear memory, in bytes, that a finished instance's slot keeps resident and resets
    /// in place (only the pages it dirtied, found with Linux's `PAGEMAP_SCAN` where the kernel
    /// has it, else with `memset`) instead of handing it back to the kernel: the next
    /// instance in that slot then takes no page faults. Beyond it, memory is released with
    /// `madvise`. 0 releases everything, as wasmtime does by default. Either way a new
    /// instance sees only its own initial memory.
    pub memory_keep_resident_bytes: usize,
    /// How instances that serve more than one request are reused: every WASI 0.3 HTTP
    /// component's, and a WASI 0.2 one's when its manifest opts into warm instances.
    pub reuse: Reuse,
    /// Bounds on capability calls (key and value sizes, message sizes, object sizes).
    pub capabilities: crate::capabilities::CapabilityLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            max_execution_time: Duration::from_secs(30),
            max_wasm_stack_bytes: 512 << 10,
            max_total_instances: 1000,
            memory_keep_resident_bytes: 1 << 20,
            reuse: Reuse::default(),
            capabilities: crate::capabilities::CapabilityLimits::default(),
        }
    }
}

/// How an instance that serves more than one request is reused, and when it is retired.
///
/// An instance is also retired at once when it traps, runs past its execution deadline or is
/// refused memory; the next request gets a fresh one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// Requests one instance serves before it is retired (bounds what a leak in the guest
    /// can accumulate).
    pub max_requests: usize,
    /// Requests one WASI 0.3 instance serves at once. WASI 0.2 instances serve one at a
    /// time whatever this says.
    pub max_concurrent: usize,
    /// How long an instance with nothing to do is kept before it is retired.
    pub idle_timeout: Duration,
}

impl Default for Reuse {
    fn default() -> Self {
        Self {
            max_requests: 1000,
            max_concurrent: 16,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    pub(crate) fn engine_config(&self, compiler: Compiler) -> wasmtime::Config {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(self.max_total_instances);
        // A component built by wit-component has several core instances (the program, the
        // WASI adapter, shims) but one or two memories; size the pools so that the number of
        // component instances is the limit that bites.
        pool.total_core_instances(self.max_total_instances.saturating_mul(8));
        pool.total_memories(self.max_total_instances.saturating_mul(2));
        pool.total_tables(self.max_total_instances.saturating_mul(4));
        pool.total_stacks(self.max_total_instances);
        pool.max_memory_size(self.max_memory_bytes);
        // A fresh instance per request: resetting a slot in place rather than with `madvise`
        // (and a page fault per page touched again) takes a third off each request
        // (`cargo bench -p trellis-runtime --bench instantiate`).
        pool.linear_memory_keep_resident(self.memory_keep_resident_bytes);
        pool.table_keep_resident(self.memory_keep_resident_bytes.min(1 << 16));
        pool.pagemap_scan(wasmtime::Enabled::Auto);

        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // WASI 0.3 components use the component model's async ABI, and instances that serve
        // several requests run in wasmtime's concurrent event loop (`crate::reuse`).
        config.wasm_component_model_async(true);
        config.max_wasm_stack(self.max_wasm_stack_bytes);
        // The async stack must hold the wasm stack plus host frames.
        config.async_stack_size(self.max_wasm_stack_bytes + (1 << 20));
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        config.strategy(match compiler {
            Compiler::Optimizing => wasmtime::Strategy::Cranelift,
            Compiler::Baseline => wasmtime::Strategy::Winch,
        });
        config
    }
}

/// Which compiler turns components into machine code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compiler {
    /// Cranelift, wasmtime's optimising compiler: the fastest code, the slowest compile (a
    /// 15 MB component takes seconds). What hosts use.
    #[default]
    Optimizing,
    /// Winch, wasmtime's baseline compiler: compiles several times faster into slower code.
    /// What `trellis dev` uses, so an edit is served sooner.
    Baseline,
}
