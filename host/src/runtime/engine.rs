//! The wasmtime engine: pooling allocator, epoch interruption, and the ticker
//! that advances epochs so deadlines fire.

use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of deadlines and of yielding
/// to other tasks while a plugin computes.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest linear memory any plugin may be granted; per-plugin caps are lower.
pub const MAX_MEMORY_BYTES: usize = crate::config::MAX_PLUGIN_MEMORY_MIB << 20;

/// How much of each pooled linear memory stays resident between calls.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// Builds the engine every plugin shares and starts its epoch ticker.
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(500)
        .total_core_instances(1000)
        .total_memories(1000)
        .total_tables(1000)
        .max_memory_size(MAX_MEMORY_BYTES)
        // Reset a slot's dirty pages with memset rather than madvise: madvise in a
        // multi-threaded process costs a TLB-shootdown IPI per call, which under
        // load cost more than the call itself. Pagemap scanning (Linux 6.7+) finds
        // the dirty pages so only those are rewritten.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(64 << 10);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config)?;
    start_ticker(&engine);
    Ok(engine)
}

/// A thread that increments the epoch until the engine is dropped.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}
