//! One plugin call against the same logic compiled natively: a fresh instance
//! from the `InstancePre` (pooling allocator), the `echo` route's `on-request`,
//! the (empty) commit and the stats, versus `echo::respond` called directly.
//!
//! `cargo bench -p devpulse-e2e --bench plugin_call`

use criterion::{Criterion, criterion_group, criterion_main};
use devpulse::config::FileConfig;
use devpulse::runtime::Runtime;
use devpulse::runtime::plugin::Origin;
use devpulse::store::documents::Scope;
use devpulse::telemetry::Telemetry;
use devpulse::wit::devpulse::plugin::types::Method;
use devpulse::wit::{Principal, Request, Role};
use devpulse_e2e::fixtures;
use std::hint::black_box;

const BODY: &str = r#"{"name":"Ada Lovelace"}"#;

fn request() -> Request {
    Request {
        method: Method::Post,
        path: "/echo".into(),
        route: "/echo".into(),
        path_params: Vec::new(),
        query: Vec::new(),
        headers: Vec::new(),
        body: Some(BODY.into()),
        principal: Principal { user_id: "bench".into(), org_id: "default".into(), role: Role::Owner },
    }
}

fn plugin_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = rt.block_on(async {
        let db = devpulse::store::connect(&devpulse::store::default_url(dir.path())).await.unwrap();
        let runtime = Runtime::new(dir.path(), db, FileConfig::default(), Telemetry::new()).unwrap();
        let bytes = std::fs::read(fixtures::ECHO).unwrap();
        runtime.install(bytes.into(), Origin::File(fixtures::ECHO.into())).await.unwrap();
        runtime
    });
    let plugin = runtime.registry().get("echo").unwrap();
    let expected = echo::respond(BODY).unwrap();

    let mut group = c.benchmark_group("echo");
    group.bench_function("wasm_fresh_instance_on_request", |b| {
        b.to_async(&rt).iter(|| async {
            let scope = Scope { plugin: "echo".into(), org: "default".into(), generation: 0 };
            let (response, _) = runtime.request(&plugin, scope, request()).await.unwrap();
            assert_eq!(response.body.as_deref(), Some(expected.as_str()));
        })
    });
    group.bench_function("native_same_logic", |b| b.iter(|| echo::respond(black_box(BODY)).unwrap()));
    group.finish();
}

criterion_group!(benches, plugin_call);
criterion_main!(benches);
