//! The wasmtime engine: pooling allocator, epoch interruption, and the ticker
//! that advances epochs so deadlines fire.

use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of deadlines and of yielding
/// to other tasks while a plugin computes.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest linear memory any plugin may be granted; per-plugin caps are lower.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Builds the engine every plugin shares and starts its epoch ticker.
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(1000)
        .total_core_instances(2000)
        .total_memories(2000)
        .total_tables(2000)
        .max_memory_size(MAX_MEMORY_BYTES);
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
