//! Which builder a `docker` build uses, decided purely from the config's `buildkit`, the
//! `DOCKER_BUILDKIT` environment variable and what the engine said of itself, so every case is a
//! unit test. The Docker CLI's rule, with the file's explicit setting over the environment:
//! BuildKit needs API 1.39 (Docker 18.09) and a linux engine.

use bollard::Docker;

use super::super::{DockerError, api};

/// The oldest API version whose `/build` takes `version=2` (BuildKit).
pub const MIN_API: (u64, u64) = (1, 39);

/// The two builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderKind {
    /// `POST /build?version=2`.
    BuildKit,
    /// `POST /build`, the builder before BuildKit.
    Classic,
}

impl BuilderKind {
    /// The value of the image's `wayline.builder` label and the artifact's `builder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuildKit => "buildkit",
            Self::Classic => "classic",
        }
    }
}

/// What the engine said of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFacts {
    /// The API version negotiated with it.
    pub api: (u64, u64),
    /// Its operating system (`linux`, `windows`).
    pub os: String,
}

impl EngineFacts {
    /// Asks the engine (`GET /version`); the API version is the negotiated one.
    pub async fn of(docker: &Docker) -> Result<Self, DockerError> {
        let version = docker
            .version()
            .await
            .map_err(api("asking the engine for its version"))?;
        let negotiated = docker.client_version();
        Ok(Self {
            api: (
                negotiated.major_version as u64,
                negotiated.minor_version as u64,
            ),
            os: version.os.unwrap_or_default(),
        })
    }

    /// Why this engine cannot build with BuildKit, if it cannot.
    fn lacks_buildkit(&self) -> Option<String> {
        if self.api < MIN_API {
            Some(format!(
                "its API version {}.{} is older than {}.{}",
                self.api.0, self.api.1, MIN_API.0, MIN_API.1
            ))
        } else if !self.os.eq_ignore_ascii_case("linux") {
            Some(format!(
                "it runs on `{}`, and BuildKit builds need a linux engine",
                self.os
            ))
        } else {
            None
        }
    }
}

/// The builder to use, the line that says so, and a warning when the config is overruled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The builder.
    pub kind: BuilderKind,
    /// The builder's first UI line.
    pub line: String,
    /// Shown as a warning before it, when `buildkit = true` cannot be honoured.
    pub warning: Option<String>,
}

impl Choice {
    fn new(kind: BuilderKind, line: String) -> Self {
        Self {
            kind,
            line,
            warning: None,
        }
    }
}

/// `DOCKER_BUILDKIT` read as the Docker CLI reads it: `0` or `false` turns BuildKit off.
fn env_off(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim() == "0" || v.trim().eq_ignore_ascii_case("false"))
}

/// Chooses the builder. `setting` is the config's `buildkit` (`None`: decide), `env` the value
/// of `DOCKER_BUILDKIT`. An explicit `buildkit = true` on an engine that cannot falls back to
/// the classic builder with a warning: the image is the same, only the builder differs.
pub fn choose(setting: Option<bool>, env: Option<&str>, engine: &EngineFacts) -> Choice {
    let classic = |why: &str| {
        Choice::new(
            BuilderKind::Classic,
            format!("Building image with the classic builder ({why})"),
        )
    };
    match (setting, engine.lacks_buildkit()) {
        (Some(false), _) => classic("buildkit = false"),
        (None, _) if env_off(env) => classic("DOCKER_BUILDKIT=0"),
        (None, Some(why)) => classic(&format!("the engine cannot use BuildKit: {why}")),
        (Some(true), Some(why)) => Choice {
            warning: Some(format!(
                "buildkit = true, but the engine cannot use BuildKit: {why}; building with the classic builder"
            )),
            ..classic("the engine cannot use BuildKit")
        },
        (Some(true) | None, None) => Choice::new(
            BuilderKind::BuildKit,
            "Building image with BuildKit".to_owned(),
        ),
    }
}

/// Whether the engine's refusal of a BuildKit build means it lacks BuildKit (so the classic
/// builder is worth one try): a 400 or 500 whose message speaks of BuildKit or the version.
pub fn refused_for_lack(status: u16, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    matches!(status, 400 | 500) && (m.contains("buildkit") || m.contains("version"))
}
