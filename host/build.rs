//! Builds the bundled plugins to wasm32-wasip2 and embeds them in the binary.

fn main() {
    let guests = guest_build::build(&["attendance", "github", "health", "hello", "k8s"]);
    guest_build::write_embedded(&guests, "bundled.rs");
}
