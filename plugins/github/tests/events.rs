//! The payloads the plugin announces are documented in `docs/events/` with
//! their JSON Schemas, derived from the types that emit them.

use devpulse_sdk::testing::assert_schema_committed;
use github::announce::{DeploymentUpdated, PullUpdated};
use std::path::Path;

#[test]
fn the_documented_schemas_are_those_of_the_payloads() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events");
    assert_schema_committed::<PullUpdated>(&docs.join("github.pull.updated.schema.json"));
    assert_schema_committed::<DeploymentUpdated>(&docs.join("github.deployment.updated.schema.json"));
}
