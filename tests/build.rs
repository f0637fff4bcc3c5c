//! Builds the test fixtures to wasm32-wasip2 and exposes their paths as constants.

fn main() {
    let guests = guest_build::build(&[
        "alarm",
        "echo",
        "future-wit",
        "greeter-v1",
        "greeter-v2",
        "hostile",
        "kube-probe",
        "legacy",
        "misbehave",
        "not-a-plugin",
        "tally-buggy",
        "tally-v1",
        "tally-v2",
        "trap-describe",
    ]);
    guest_build::write_paths(&guests, "fixtures.rs");
}
