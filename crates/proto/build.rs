//! Generates the gRPC code from `proto/hotwasm.proto` with a vendored
//! `protoc`, so a fresh machine needs no protobuf compiler installed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let proto = root.join("hotwasm.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let descriptor = PathBuf::from(std::env::var("OUT_DIR")?).join("hotwasm_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor)
        .compile_protos(&[proto], &[root])?;
    Ok(())
}
