//! What the host knows about a component without calling it, and its form on the plugin wire.

use std::collections::BTreeSet;

#[cfg(any(feature = "host", feature = "serve"))]
use wayline_proto::plugin::v1 as pp;

use crate::Docs;
use crate::component::{Capability, ComponentKind};

/// What the host knows about a component without calling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Its kind.
    pub kind: ComponentKind,
    /// The plugin name (`use "<name>"`).
    pub name: String,
    /// Full type names its main function accepts (empty for a builder).
    pub accepts: Vec<String>,
    /// Full type name it returns.
    pub returns: String,
    /// Optional capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// For a platform: the release manager used when the app has none.
    pub default_release_manager: Option<String>,
    /// Docs, when [`Documented`].
    pub docs: Option<Docs>,
}

impl ComponentInfo {
    /// `platform "exec"`, for messages.
    pub fn label(&self) -> String {
        format!("{} \"{}\"", self.kind, self.name)
    }

    #[cfg(feature = "serve")]
    pub(crate) fn to_proto(&self) -> pp::ComponentInfo {
        pp::ComponentInfo {
            r#type: self.kind.to_proto() as i32,
            accepts: self.accepts.clone(),
            returns: self.returns.clone(),
            capabilities: self
                .capabilities
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            docs: self
                .docs
                .as_ref()
                .map(|d| d.to_markdown(&self.name))
                .unwrap_or_default(),
            config_schema_json: self
                .docs
                .as_ref()
                .map(|d| d.config_schema().to_string())
                .unwrap_or_default(),
            default_release_manager: self.default_release_manager.clone().unwrap_or_default(),
            docs_json: self
                .docs
                .as_ref()
                .map(|d| serde_json::to_string(d).unwrap_or_default())
                .unwrap_or_default(),
        }
    }

    #[cfg(feature = "host")]
    pub(crate) fn from_proto(name: &str, c: &pp::ComponentInfo) -> Option<Self> {
        let kind = ComponentKind::from_proto(c.r#type())?;
        Some(ComponentInfo {
            kind,
            name: name.to_owned(),
            accepts: c.accepts.clone(),
            returns: c.returns.clone(),
            capabilities: c
                .capabilities
                .iter()
                .filter_map(|s| Capability::parse(s))
                .collect(),
            default_release_manager: Some(c.default_release_manager.clone())
                .filter(|s| !s.is_empty()),
            docs: serde_json::from_str(&c.docs_json).ok(),
        })
    }
}
