//! The generated protocol types: Waypoint's SDK (`hashicorp.waypoint.sdk`), go-plugin's broker,
//! controller and stdio (`plugin`), `opaqueany`, `protostructure`, and Waypoint's docker image.
//! Module nesting mirrors the proto packages, which the generated `super::` paths rely on.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::pedantic,
    clippy::doc_lazy_continuation,
    clippy::doc_overindented_list_items,
    clippy::enum_variant_names
)]

/// go-plugin's own services.
pub mod plugin {
    include!(concat!(env!("OUT_DIR"), "/plugin.rs"));
}

/// `opaqueany.Any`: `google.protobuf.Any`'s wire format.
pub mod opaqueany {
    include!(concat!(env!("OUT_DIR"), "/opaqueany.rs"));
}

/// A Go struct type, sent by `ConfigStruct`.
pub mod protostructure {
    include!(concat!(env!("OUT_DIR"), "/protostructure.rs"));
}

/// `google.rpc.Status`.
pub mod google {
    /// `google.rpc`.
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// `hashicorp.waypoint.*`.
pub mod hashicorp {
    /// `hashicorp.waypoint.*`.
    pub mod waypoint {
        /// The plugin SDK's messages and services.
        pub mod sdk {
            include!(concat!(env!("OUT_DIR"), "/hashicorp.waypoint.sdk.rs"));
        }
        /// Waypoint's built-in plugins' value types.
        pub mod builtin {
            /// `builtin/docker`.
            pub mod docker {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/hashicorp.waypoint.builtin.docker.rs"
                ));
            }
        }
    }
}

pub use hashicorp::waypoint::builtin::docker;
pub use hashicorp::waypoint::sdk;
