//! Mappers between Wayline's docker image and Waypoint's (`hashicorp.waypoint.builtin.docker.Image`,
//! what Waypoint's `docker`, `pack`, `docker-pull` and `aws-ecr` builders return and its
//! `kubernetes`, `nomad`, `aws-ecs`, … platforms take), so a native docker build feeds a Waypoint
//! platform and a Waypoint build feeds the native docker platform or registry.

use wayline_plugin::{Mapper, PluginError, Value};

use super::values::Image;

/// Waypoint 0.11's `builtin/docker` `Image` message (MPL-2.0 proto), field for field.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WaypointImage {
    /// Repository part.
    #[prost(string, tag = "1")]
    pub image: String,
    /// Tag part.
    #[prost(string, tag = "2")]
    pub tag: String,
    /// Where the image is; unset means the local daemon (Waypoint's own reading).
    #[prost(oneof = "Location", tags = "3, 4, 5")]
    pub location: Option<Location>,
}

impl Value for WaypointImage {
    const TYPE_NAME: &'static str = "hashicorp.waypoint.builtin.docker.Image";
}

/// `Image.location`: each arm is a `google.protobuf.Empty`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Oneof)]
pub enum Location {
    /// In a remote registry.
    #[prost(message, tag = "3")]
    Registry(()),
    /// In the local Docker daemon.
    #[prost(message, tag = "4")]
    Docker(()),
    /// In a local `img` content store.
    #[prost(message, tag = "5")]
    Img(()),
}

/// Wayline's image as Waypoint's: a local image is in the daemon, any other in a registry.
pub fn to_waypoint(i: Image) -> WaypointImage {
    WaypointImage {
        image: i.image,
        tag: i.tag,
        location: Some(if i.local {
            Location::Docker(())
        } else {
            Location::Registry(())
        }),
    }
}

/// Waypoint's image as Wayline's. It carries no engine id and nothing Wayline created, so the
/// docker components look it up by reference and a destroy removes none of its tags.
pub fn from_waypoint(i: WaypointImage) -> Result<Image, PluginError> {
    if i.image.is_empty() {
        return Err(PluginError::Failed(
            "Waypoint's docker image has no image name".into(),
        ));
    }
    Ok(Image {
        image: i.image,
        tag: i.tag,
        id: String::new(),
        local: matches!(i.location, None | Some(Location::Docker(()))),
        created_tags: Vec::new(),
        digest: String::new(),
        entrypoint_deferred: false,
    })
}

/// Both mappers, as the `docker` plugin registers them.
pub fn mappers() -> [Mapper; 2] {
    [
        Mapper::new("docker-image-to-waypoint", |i: Image| Ok(to_waypoint(i))),
        Mapper::new("waypoint-docker-image-to-wayline", from_waypoint),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(local: bool) -> Image {
        Image {
            image: "127.0.0.1:5000/web".into(),
            tag: "v3".into(),
            id: "sha256:abc".into(),
            local,
            created_tags: vec!["127.0.0.1:5000/web:v3".into()],
            digest: String::new(),
            entrypoint_deferred: false,
        }
    }

    #[test]
    fn the_wire_format_is_waypoints() {
        // image=1 "a", tag=2 "b", docker=4 (an empty message).
        let bytes = prost::Message::encode_to_vec(&to_waypoint(Image {
            image: "a".into(),
            tag: "b".into(),
            local: true,
            ..Image::default()
        }));
        assert_eq!(bytes, [0x0a, 1, b'a', 0x12, 1, b'b', 0x22, 0]);
        let registry = prost::Message::encode_to_vec(&to_waypoint(Image::default()));
        assert_eq!(registry, [0x1a, 0]);
    }

    #[test]
    fn images_map_both_ways_keeping_where_they_are() {
        for local in [true, false] {
            let back = from_waypoint(to_waypoint(image(local))).unwrap();
            assert_eq!(
                (back.reference(), back.local),
                ("127.0.0.1:5000/web:v3".into(), local)
            );
            assert!(
                back.id.is_empty() && back.created_tags.is_empty(),
                "{back:?}"
            );
        }
        let unset = WaypointImage {
            image: "web".into(),
            tag: "1".into(),
            location: None,
        };
        assert!(
            from_waypoint(unset).unwrap().local,
            "unset means the daemon"
        );
        let img = WaypointImage {
            location: Some(Location::Img(())),
            ..WaypointImage::default()
        };
        assert!(from_waypoint(img).is_err(), "no name");
    }

    #[tokio::test]
    async fn the_registered_mappers_run_on_packed_values() {
        let [to, from] = mappers();
        assert_eq!(
            (to.input.as_str(), to.output.as_str()),
            (
                "wayline.docker.Image",
                "hashicorp.waypoint.builtin.docker.Image"
            )
        );
        let out = to.apply(image(true).to_any()).await.unwrap();
        assert_eq!(
            out.type_url,
            "type.googleapis.com/hashicorp.waypoint.builtin.docker.Image"
        );
        let back = from.apply(out).await.unwrap();
        let back = Image::from_any(&back).unwrap();
        assert_eq!(back.reference(), "127.0.0.1:5000/web:v3");
    }
}
