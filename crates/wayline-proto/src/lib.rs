//! The Wayline public API: protobuf messages and gRPC client/server stubs generated from `proto/`.
//!
//! Nothing else lives here. `v1` is the server API; `plugin::v1` is the protocol between the
//! plugin host and external plugins. The gRPC stubs (`*_client`, `*_server`) are behind the
//! `grpc` feature; the messages are always there.

#![allow(
    unreachable_pub,
    clippy::pedantic,
    clippy::large_enum_variant,
    clippy::doc_lazy_continuation
)]

/// The server API, `wayline.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/wayline.v1.rs"));
}

/// The external-plugin protocol, `wayline.plugin.v1`.
pub mod plugin {
    /// Version 1 of the plugin protocol.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/wayline.plugin.v1.rs"));
    }
}

/// The encoded `FileDescriptorSet` of every `.proto` file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/wayline_descriptor.bin"));

pub use prost_types;
