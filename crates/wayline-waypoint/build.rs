//! Compiles the vendored Waypoint/go-plugin protos (`proto/`) with protox.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    let files = [
        "plugin.proto",
        "grpc_broker.proto",
        "grpc_controller.proto",
        "grpc_stdio.proto",
        "builtin/docker.proto",
    ]
    .map(|f| root.join(f));
    println!("cargo:rerun-if-changed={}", root.display());
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
