//! The hotwasm gRPC API, generated from `proto/hotwasm.proto`.
//!
//! # Layout
//!
//! - [`v1`]: messages, the `Verifier` client and server.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for server reflection.

/// Version 1 of the API (`package hotwasm.v1`).
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("hotwasm.v1");
}

/// The API's file descriptor set, served by gRPC reflection so `grpcurl`
/// works without the `.proto` file.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hotwasm_descriptor");
