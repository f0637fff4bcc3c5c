//! The payload the plugin announces is documented in `docs/events/` with its
//! JSON Schema, derived from the type that emits it.

use devpulse_sdk::testing::assert_schema_committed;
use k8s::announce::WorkspaceUpdated;
use std::path::Path;

#[test]
fn the_documented_schema_is_that_of_the_payload() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events");
    assert_schema_committed::<WorkspaceUpdated>(&docs.join("k8s.workspace.updated.schema.json"));
}
