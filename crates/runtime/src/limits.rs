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
            capabilities: crate::capabilities::CapabilityLimits::default(),
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
