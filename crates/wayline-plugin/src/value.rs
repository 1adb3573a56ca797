//! Typed values between components: protobuf messages named by their full type name.

use prost_types::Any;

use crate::PluginError;

/// The `type_url` prefix of every value Wayline packs (the protobuf convention).
pub const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// A protobuf message that flows between components (an artifact, a deployment, a release…).
///
/// Implement it for a `prost::Message` with its full protobuf type name, e.g.
/// `impl Value for Image { const TYPE_NAME: &'static str = "wayline.docker.Image"; }`.
pub trait Value: prost::Message + Default + Send + Sync + 'static {
    /// The full protobuf type name, `package.Message`.
    const TYPE_NAME: &'static str;

    /// Packs the value into an `Any`.
    fn to_any(&self) -> Any {
        Any {
            type_url: format!("{TYPE_URL_PREFIX}{}", Self::TYPE_NAME),
            value: self.encode_to_vec(),
        }
    }

    /// Unpacks a value from an `Any`, checking the type name.
    fn from_any(any: &Any) -> Result<Self, PluginError> {
        let got = type_name(any);
        if got != Self::TYPE_NAME {
            return Err(PluginError::Input(format!(
                "expected a `{}` value, got `{got}`",
                Self::TYPE_NAME
            )));
        }
        Self::decode(any.value.as_slice())
            .map_err(|e| PluginError::Input(format!("cannot decode `{}`: {e}", Self::TYPE_NAME)))
    }
}

/// The full type name of a packed value (the `type_url` after its last `/`).
pub fn type_name(any: &Any) -> &str {
    any.type_url
        .rsplit_once('/')
        .map_or(any.type_url.as_str(), |(_, n)| n)
}

/// The type name a component uses to accept a value of any type (see [`AnyValue`]).
pub const ANY_TYPE: &str = "*";

/// A value of any type, for components that take whatever the previous stage produced (the exec
/// platform). Its `TYPE_NAME` is `*`; the host needs no mapper to feed it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AnyValue {
    /// The packed value's type URL.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The packed value's bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

impl AnyValue {
    /// The full type name of the value inside.
    pub fn type_name(&self) -> &str {
        self.type_url
            .rsplit_once('/')
            .map_or(self.type_url.as_str(), |(_, n)| n)
    }
}

impl Value for AnyValue {
    const TYPE_NAME: &'static str = ANY_TYPE;

    fn to_any(&self) -> Any {
        Any {
            type_url: self.type_url.clone(),
            value: self.value.clone(),
        }
    }

    fn from_any(any: &Any) -> Result<Self, PluginError> {
        Ok(Self {
            type_url: any.type_url.clone(),
            value: any.value.clone(),
        })
    }
}

macro_rules! proto_value {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(impl Value for $ty {
            const TYPE_NAME: &'static str = $name;
        })*
    };
}

use wayline_proto::plugin::v1 as pp;
proto_value! {
    pp::ConfigRequests => "wayline.plugin.v1.ConfigRequests",
    pp::ConfigValues => "wayline.plugin.v1.ConfigValues",
    pp::ExecRequest => "wayline.plugin.v1.ExecRequest",
    pp::ExecResult => "wayline.plugin.v1.ExecResult",
    pp::LogsRequest => "wayline.plugin.v1.LogsRequest",
    pp::LogBatch => "wayline.plugin.v1.LogBatch",
    pp::GenerationId => "wayline.plugin.v1.GenerationId",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_round_trip_checks_the_type() {
        let v = pp::GenerationId { id: "g1".into() };
        let any = v.to_any();
        assert_eq!(
            any.type_url,
            "type.googleapis.com/wayline.plugin.v1.GenerationId"
        );
        assert_eq!(type_name(&any), "wayline.plugin.v1.GenerationId");
        assert_eq!(pp::GenerationId::from_any(&any).unwrap(), v);
        let err = pp::LogBatch::from_any(&any).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a `wayline.plugin.v1.LogBatch` value, got `wayline.plugin.v1.GenerationId`"
        );
    }
}
