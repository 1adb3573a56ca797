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
//! The runner drives every component, built-in or external, through the same handle:
//! [`PluginHost::component`] → [`ComponentHandle::configure`] → [`ComponentHandle::call`].
//! An external plugin's `main` is `wayline_plugin::serve(PluginBuilder::new("name").platform(P))`.

pub mod component;
pub mod config;
pub mod core;
pub mod docs;
pub mod error;
pub mod external;
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
pub use core::{CoreValues, Ctx, JobInfo};
pub use docs::{Docs, FieldDoc};
pub use error::{ConfigError, ConfigErrors, PluginError};
pub use external::{PluginBuilder, serve, serve_async};
pub use host::{Call, ComponentHandle, HostError, PluginHost, UnknownPlugin};
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
