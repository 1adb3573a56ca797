//! The Wayline plugin SDK.
//!
//! A plugin implements component traits ([`Builder`], [`Registry`], [`Platform`],
//! [`ReleaseManager`], [`ConfigSourcer`]) and optional capabilities ([`Destroyer`],
//! [`WorkspaceDestroyer`], [`Status`], [`Execer`], [`LogPlatform`], [`Generation`],
//! [`Documented`]) declared in [`Component::capabilities`]. Values between components are
//! protobuf messages ([`Value`]); [`Mapper`]s convert between them and the host finds the
//! shortest chain. Components talk to the user through [`Ui`] and record what they create with
//! the [`ResourceManager`].
//!
//! Cargo features keep the SDK thin for plugin authors: without any, it is traits and value
//! types. `serve` adds what an external plugin's `main` needs,
//! `wayline_plugin::serve(PluginBuilder::new("name").platform(P))` (a gRPC server on a unix
//! socket). `host` adds the host the runner drives every component through, built-in or
//! external: `PluginHost::component` → `ComponentHandle::configure` → `ComponentHandle::call`
//! (process management, the gRPC client, the executable search).

pub mod component;
pub mod config;
pub mod core;
pub mod docs;
pub mod error;
pub mod external;
#[cfg(feature = "host")]
pub mod host;
pub mod mapper;
pub mod registry;
pub mod resource;
pub mod ui;
pub mod value;

pub use async_trait::async_trait;
pub use component::{
    Builder, Capability, Component, ComponentKind, ConfigSourcer, Destroyer, Documented, Execer,
    Function, Generation, LogPlatform, Outcome, Platform, Registry, ReleaseManager, Status,
    StatusReport, WorkspaceDestroyer,
};
pub use core::{CoreValues, Ctx, Declare, JobInfo};
pub use docs::{Docs, FieldDoc};
pub use error::{ConfigError, ConfigErrors, PluginError};
#[cfg(feature = "serve")]
pub use external::{PluginBuilder, serve, serve_async};
#[cfg(feature = "host")]
pub use host::{Call, ComponentHandle, HostError, PluginHost, PluginProvider, UnknownPlugin};
pub use mapper::{Chain, Mapper, MapperRegistry, NoChain};
pub use registry::{
    BuiltinRegistry, CallResult, Capabilities, ComponentInfo, PluginSpec, decode_config,
};
pub use resource::{ResourceKind, ResourceManager};
pub use tokio_util::sync::CancellationToken;
pub use ui::{CollectingUi, StatusKind, StatusSpinner, Step, StepGroup, Style, TerminalUi, Ui};
pub use value::{ANY_TYPE, AnyValue, Value, type_name};
pub use wayline_proto::plugin::v1 as pb;
pub use wayline_proto::v1::{DeclaredResource, Health, TerminalEvent};
pub use {prost, prost_types, serde_json};
