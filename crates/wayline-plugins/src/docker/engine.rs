//! Talking to the Docker engine: connection, build, entrypoint injection, tag, push, pull. Plain
//! async functions over bollard, independent of the component traits, so each step is testable on
//! its own. Output for the user goes through an [`Out`] callback, one line at a time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerConfig, ContainerCreateBody};
use bollard::query_parameters::{
    BuildImageOptions, CommitContainerOptions, CreateContainerOptions, CreateImageOptions,
    ListImagesOptions, PushImageOptions, RemoveContainerOptions, RemoveImageOptions,
    TagImageOptions, UploadToContainerOptions,
};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::config::{Auth, ClientConfig, Invalid};
use super::context::ContextError;

/// Where user-facing output lines go (the terminal UI, in the components).
pub type Out<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Env var naming the static `wayline-entrypoint` binary to inject.
pub const ENTRYPOINT_ENV: &str = "WAYLINE_ENTRYPOINT_BINARY";
/// The binary's file name, looked for next to the running executable.
pub const ENTRYPOINT_FILE: &str = "wayline-entrypoint";
/// Where the entrypoint lives inside an injected image.
pub const ENTRYPOINT_IN_IMAGE: &str = "/bin/wayline-entrypoint";

/// Label put on every image, container and network Wayline creates: the app's name.
pub const LABEL_APP: &str = "wayline.app";
/// Label on an injected image: the digest of its injection (parent image id, the Dockerfile and
/// the entrypoint binary), so the same injection again is found instead of rebuilt.
pub const LABEL_INJECTION: &str = "wayline.entrypoint-injection";
/// Label on containers (and networks) naming the deployment that created them.
pub const LABEL_DEPLOYMENT: &str = "wayline.deployment-id";

/// Everything that can go wrong in the docker plugins.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine can't be reached.
    #[error("cannot reach the Docker engine at `{addr}`: {message}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The engine client's reason.
        message: String,
    },
    /// The Dockerfile failed to build.
    #[error("docker build failed{}: {message}", .step.as_ref().map(|s| format!(" at `{s}`")).unwrap_or_default())]
    Build {
        /// The last `Step n/m : …` line before the failure.
        step: Option<String>,
        /// The engine's error, e.g. `COPY failed: …`.
        message: String,
    },
    /// No entrypoint binary to inject.
    #[error(
        "cannot inject the entrypoint: no `wayline-entrypoint` binary at {ENTRYPOINT_ENV} ({}) nor at `{}`; build it, set {ENTRYPOINT_ENV}, or set `disable_entrypoint = true`",
        .env.as_ref().map_or_else(|| "not set".to_owned(), |p| format!("`{}` does not exist", p.display())),
        .next_to_exe.display()
    )]
    EntrypointMissing {
        /// The env var's value when it was set.
        env: Option<PathBuf>,
        /// The file looked for next to the executable.
        next_to_exe: PathBuf,
    },
    /// The registry refused the push.
    #[error("pushing `{reference}` failed: {message}")]
    Push {
        /// `image:tag`.
        reference: String,
        /// The registry's message.
        message: String,
    },
    /// The image could not be pulled.
    #[error("pulling `{reference}` failed: {message}")]
    Pull {
        /// `image:tag`.
        reference: String,
        /// The registry's or engine's message.
        message: String,
    },
    /// The container stopped right after it started.
    #[error("container `{name}` exited at once with code {code}; its last log lines:\n{logs}")]
    ExitedAtOnce {
        /// Container name.
        name: String,
        /// Exit code.
        code: i64,
        /// Its last log lines.
        logs: String,
    },
    /// Config values that make no sense.
    #[error("invalid config: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Invalid>),
    /// The build context could not be read.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// Any other engine call that failed.
    #[error("{action}: {}", message(.source))]
    Api {
        /// What we were doing, e.g. ``inspecting image `x` ``.
        action: String,
        /// The engine client's error.
        source: BollardError,
    },
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}

/// The engine's own message without bollard's "Docker responded with status code" wrapper.
pub fn message(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        BollardError::DockerStreamError { error } => error.trim().to_owned(),
        other => other.to_string(),
    }
}

/// Whether an engine error is a 404.
pub fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Wraps an engine error with what we were doing.
pub fn api(action: impl Into<String>) -> impl FnOnce(BollardError) -> DockerError {
    let action = action.into();
    move |source| DockerError::Api { action, source }
}

/// Connects to the engine named by `client_config.host`, else `DOCKER_HOST`, else the local
/// socket, and negotiates the API version (the engine here may be older than the client).
pub async fn connect(client: Option<&ClientConfig>) -> Result<Docker, DockerError> {
    let host = client
        .and_then(|c| c.host.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()));
    let addr = host
        .clone()
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
    let connect_err = |e: BollardError| DockerError::Connect {
        addr: addr.clone(),
        message: message(&e),
    };
    let docker = match host.as_deref() {
        Some(h) if h.starts_with("tcp://") || h.starts_with("http://") => {
            Docker::connect_with_http(h, 120, bollard::API_DEFAULT_VERSION)
        }
        Some(h) => Docker::connect_with_unix(h, 120, bollard::API_DEFAULT_VERSION),
        None => Docker::connect_with_local_defaults(),
    }
    .map_err(connect_err)?;
    let docker = docker.negotiate_version().await.map_err(connect_err)?;
    tracing::debug!(addr = %addr, version = ?docker.client_version(), "connected to docker engine");
    Ok(docker)
}

/// Options for one image build.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    /// Dockerfile path inside the context tar.
    pub dockerfile: String,
    /// `repo:tag` to give the result, if any.
    pub tag: Option<String>,
    /// Build args.
    pub build_args: HashMap<String, String>,
    /// Target stage.
    pub target: Option<String>,
    /// Platform, e.g. `linux/amd64`.
    pub platform: Option<String>,
    /// Skip the cache.
    pub no_cache: bool,
    /// Labels for the image.
    pub labels: HashMap<String, String>,
    /// Credentials for pulling base images, by registry.
    pub credentials: Option<HashMap<String, DockerCredentials>>,
}

/// Builds the context `tar` with the classic builder, streaming its output to `out`; returns the
/// image id. A failed build returns [`DockerError::Build`] with the failing step and message.
pub async fn build(
    docker: &Docker,
    tar: Vec<u8>,
    spec: BuildSpec,
    out: Out<'_>,
) -> Result<String, DockerError> {
    let options = BuildImageOptions {
        dockerfile: spec.dockerfile,
        t: spec.tag,
        nocache: spec.no_cache,
        rm: true,
        forcerm: true,
        buildargs: Some(spec.build_args),
        labels: Some(spec.labels),
        platform: spec.platform.unwrap_or_default(),
        target: spec.target.unwrap_or_default(),
        ..BuildImageOptions::default()
    };
    let mut stream = docker.build_image(
        options,
        spec.credentials,
        Some(bollard::body_full(tar.into())),
    );
    let mut step = None;
    let mut id = None;
    let mut pending = String::new();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(err) => {
                flush_lines(&mut pending, out, &mut step, true);
                return Err(DockerError::Build {
                    step,
                    message: message(&err),
                });
            }
        };
        if let Some(text) = info.stream {
            pending.push_str(&text);
            flush_lines(&mut pending, out, &mut step, false);
        }
        if let Some(status) = info.status {
            out(status.trim_end());
        }
        if let Some(aux) = info.aux.and_then(|a| a.id) {
            id = Some(aux);
        }
    }
    flush_lines(&mut pending, out, &mut step, true);
    id.ok_or_else(|| DockerError::Build {
        step,
        message: "the engine did not report an image id".to_owned(),
    })
}

/// Sends the complete lines in `pending` to `out`, remembering the last `Step` line.
fn flush_lines(pending: &mut String, out: Out<'_>, step: &mut Option<String>, all: bool) {
    while let Some(nl) = pending.find('\n') {
        let line: String = pending.drain(..=nl).collect();
        emit_line(line.trim_end(), out, step);
    }
    if all && !pending.is_empty() {
        let line = std::mem::take(pending);
        emit_line(line.trim_end(), out, step);
    }
}

fn emit_line(line: &str, out: Out<'_>, step: &mut Option<String>) {
    if line.is_empty() {
        return;
    }
    if line.starts_with("Step ") {
        *step = Some(line.to_owned());
    }
    out(line);
}

/// Finds the static entrypoint binary: `$WAYLINE_ENTRYPOINT_BINARY`, else `wayline-entrypoint`
/// next to the running executable.
pub fn entrypoint_binary() -> Result<PathBuf, DockerError> {
    let env = std::env::var_os(ENTRYPOINT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let next_to_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(ENTRYPOINT_FILE)))
        .unwrap_or_else(|| PathBuf::from(ENTRYPOINT_FILE));
    match &env {
        Some(path) if path.is_file() => return Ok(path.clone()),
        Some(_) => {}
        None if next_to_exe.is_file() => return Ok(next_to_exe),
        None => {}
    }
    Err(DockerError::EntrypointMissing { env, next_to_exe })
}

/// The dynamic loader a 64-bit little-endian ELF executable asks for (its `PT_INTERP`), `None`
/// for a static binary or a non-ELF file (e.g. a script). A dynamically linked entrypoint does
/// not start in `FROM scratch` or musl images (Waypoint's issue #530).
pub fn elf_interpreter(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    };
    const PT_INTERP: u32 = 3;
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let header = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(header)? == PT_INTERP {
            let offset = usize::try_from(u64_at(header + 8)?).ok()?;
            let size = usize::try_from(u64_at(header + 32)?).ok()?;
            let raw = bytes.get(offset..offset.checked_add(size)?)?;
            return Some(
                String::from_utf8_lossy(raw)
                    .trim_end_matches('\0')
                    .to_owned(),
            );
        }
    }
    None
}

/// The Dockerfile that puts the entrypoint in front of `base`'s own ENTRYPOINT, keeping its CMD
/// (a Dockerfile that sets ENTRYPOINT resets the inherited CMD, so it is written out again).
pub fn entrypoint_dockerfile(base: &str, entrypoint: &[String], cmd: Option<&[String]>) -> String {
    let mut new_entrypoint = vec![ENTRYPOINT_IN_IMAGE.to_owned(), "--".to_owned()];
    new_entrypoint.extend(entrypoint.iter().cloned());
    let json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    let mut out = format!(
        "FROM {base}\nCOPY {ENTRYPOINT_FILE} {ENTRYPOINT_IN_IMAGE}\nENTRYPOINT {}\n",
        json(&new_entrypoint)
    );
    if let Some(cmd) = cmd.filter(|c| !c.is_empty()) {
        out.push_str("CMD ");
        out.push_str(&json(cmd));
        out.push('\n');
    }
    out
}

/// Whether an image's ENTRYPOINT already starts with the injected entrypoint (re-injecting would
/// run it twice, Waypoint's PR #2447).
pub fn has_entrypoint(entrypoint: &[String]) -> bool {
    entrypoint.first().is_some_and(|e| e == ENTRYPOINT_IN_IMAGE)
}

/// Makes `base` + the entrypoint binary, tagged `tag`; returns the new image id. When the
/// base already carries the entrypoint it is only tagged.
pub async fn inject_entrypoint(
    docker: &Docker,
    base: &str,
    tag: &str,
    binary: &Path,
    labels: &BTreeMap<String, String>,
    out: Out<'_>,
) -> Result<String, DockerError> {
    let inspect = docker
        .inspect_image(base)
        .await
        .map_err(api(format!("inspecting image `{base}`")))?;
    let config = inspect.config.unwrap_or_default();
    let entrypoint = config.entrypoint.unwrap_or_default();
    let cmd = config.cmd;
    if has_entrypoint(&entrypoint) {
        out("The image already starts with wayline-entrypoint; not injecting it twice.");
        tag_image(docker, base, tag).await?;
        return Ok(inspect.id.unwrap_or_default());
    }
    let dockerfile = entrypoint_dockerfile(base, &entrypoint, cmd.as_deref());
    let read_error =
        |e: std::io::Error| DockerError::Other(format!("reading `{}`: {e}", binary.display()));
    let base_id = inspect.id.unwrap_or_default();
    let digest = binary_digest(binary).await.map_err(read_error)?;
    let mut labels = labels.clone();
    labels.insert(
        LABEL_INJECTION.to_owned(),
        injection_key(&base_id, &dockerfile, &digest),
    );
    if let Some(id) = injected_image(docker, &labels).await? {
        out("Injecting wayline-entrypoint… (cached)");
        tag_image(docker, &id, tag).await?;
        return Ok(id);
    }
    let binary_bytes = tokio::fs::read(binary).await.map_err(read_error)?;
    if let Some(loader) = elf_interpreter(&binary_bytes) {
        out(&format!(
            "warning: `{}` is dynamically linked (it needs {loader}); images without that loader, such as FROM scratch or Alpine, cannot start it. Build it static: scripts/build-entrypoint.sh",
            binary.display()
        ));
    }
    out("Injecting wayline-entrypoint…");
    let mut new_entrypoint = vec![ENTRYPOINT_IN_IMAGE.to_owned(), "--".to_owned()];
    new_entrypoint.extend(entrypoint);
    commit_injection(
        docker,
        &base_id,
        tag,
        &binary_bytes,
        new_entrypoint,
        cmd,
        labels,
    )
    .await
}

/// The injection without a build (a classic build commits a container per step and re-sends
/// its context): a container is created from the parent with the new ENTRYPOINT and the kept
/// CMD, never started, gets the binary copied in, and is committed as the tagged image.
async fn commit_injection(
    docker: &Docker,
    base_id: &str,
    tag: &str,
    binary: &[u8],
    entrypoint: Vec<String>,
    cmd: Option<Vec<String>>,
    labels: BTreeMap<String, String>,
) -> Result<String, DockerError> {
    let body = ContainerCreateBody {
        image: Some(base_id.to_owned()),
        entrypoint: Some(entrypoint),
        cmd,
        labels: Some(labels.into_iter().collect()),
        network_disabled: Some(true),
        ..ContainerCreateBody::default()
    };
    let container = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .map_err(api("creating the entrypoint injection container"))?
        .id;
    let committed = copy_and_commit(docker, &container, tag, binary).await;
    let removed = docker
        .remove_container(
            &container,
            Some(RemoveContainerOptions {
                force: true,
                ..RemoveContainerOptions::default()
            }),
        )
        .await
        .map_err(api("removing the entrypoint injection container"));
    let id = committed?;
    removed?;
    Ok(id)
}

/// Copies the binary to /bin (through a /bin symlink, as `docker cp` does; an image without /bin
/// gets one) and commits the container as `tag`.
async fn copy_and_commit(
    docker: &Docker,
    container: &str,
    tag: &str,
    binary: &[u8],
) -> Result<String, DockerError> {
    let file_name = ENTRYPOINT_IN_IMAGE.trim_start_matches("/bin/");
    let upload = |path: &str, tar: Vec<u8>| {
        docker.upload_to_container(
            container,
            Some(UploadToContainerOptions {
                path: path.to_owned(),
                no_overwrite_dir_non_dir: Some("true".to_owned()),
                ..UploadToContainerOptions::default()
            }),
            bollard::body_full(tar.into()),
        )
    };
    let into_bin =
        binary_tar(&[], file_name, binary).map_err(|e| DockerError::Other(e.to_string()))?;
    match upload("/bin", into_bin).await {
        Ok(()) => {}
        Err(e) if is_not_found(&e) => {
            let with_bin = binary_tar(&["bin"], &format!("bin/{file_name}"), binary)
                .map_err(|e| DockerError::Other(e.to_string()))?;
            upload("/", with_bin)
                .await
                .map_err(api("copying wayline-entrypoint into the image"))?;
        }
        Err(e) => return Err(api("copying wayline-entrypoint into the image")(e)),
    }
    let (repo, tag) = split_reference(tag);
    let image = docker
        .commit_container(
            CommitContainerOptions {
                container: Some(container.to_owned()),
                repo: Some(repo),
                tag: Some(tag),
                pause: false,
                ..CommitContainerOptions::default()
            },
            ContainerConfig::default(),
        )
        .await
        .map_err(api("committing the entrypoint injection"))?;
    Ok(image.id)
}

/// A tar of `dirs` (mode 0755) and the binary at `name` (0755).
fn binary_tar(dirs: &[&str], name: &str, binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for dir in dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append_data(&mut header, dir, std::io::empty())?;
    }
    let mut header = tar::Header::new_gnu();
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    builder.append_data(&mut header, name, binary)?;
    builder.into_inner()
}

/// What makes two injections the same: the parent image (by id, so a rebuilt parent is a new
/// key even under the same name), the injection Dockerfile and the entrypoint binary's digest.
pub fn injection_key(base_id: &str, dockerfile: &str, binary_digest: &str) -> String {
    let mut hash = Sha256::new();
    for part in [base_id, dockerfile, binary_digest] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// The SHA-256 of the entrypoint binary, hashed once per file version (path, size, mtime) in
/// this process: hashing 3.4 MiB on every build would cost more than the cached injection.
async fn binary_digest(path: &Path) -> std::io::Result<String> {
    type Seen = HashMap<PathBuf, (u64, std::time::SystemTime, String)>;
    static SEEN: std::sync::Mutex<Option<Seen>> = std::sync::Mutex::new(None);
    let meta = tokio::fs::metadata(path).await?;
    let (len, modified) = (meta.len(), meta.modified()?);
    let known = |seen: &Option<Seen>| {
        let (l, m, digest) = seen.as_ref()?.get(path)?;
        (*l == len && *m == modified).then(|| digest.clone())
    };
    if let Some(digest) = known(
        &SEEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    ) {
        return Ok(digest);
    }
    let bytes = tokio::fs::read(path).await?;
    let digest = tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&bytes)))
        .await
        .map_err(std::io::Error::other)?;
    SEEN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert_default()
        .insert(path.to_owned(), (len, modified, digest.clone()));
    Ok(digest)
}

/// An image the engine still has that carries all of `labels` (the injection key among them).
async fn injected_image(
    docker: &Docker,
    labels: &BTreeMap<String, String>,
) -> Result<Option<String>, DockerError> {
    let filter: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let images = docker
        .list_images(Some(ListImagesOptions {
            all: false,
            filters: Some(HashMap::from([("label".to_owned(), filter)])),
            ..ListImagesOptions::default()
        }))
        .await
        .map_err(api("looking for an earlier entrypoint injection"))?;
    Ok(images.into_iter().next().map(|i| i.id))
}

/// Splits `image[:tag]` (a registry port is not a tag).
pub fn split_reference(reference: &str) -> (String, String) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            reference[..last_slash + i].to_owned(),
            reference[last_slash + i + 1..].to_owned(),
        ),
        None => (reference.to_owned(), "latest".to_owned()),
    }
}

/// Tags `source` (id or reference) as `target` (`repo:tag`).
pub async fn tag_image(docker: &Docker, source: &str, target: &str) -> Result<(), DockerError> {
    let (repo, tag) = split_reference(target);
    docker
        .tag_image(
            source,
            Some(TagImageOptions {
                repo: Some(repo),
                tag: Some(tag),
            }),
        )
        .await
        .map_err(api(format!("tagging `{source}` as `{target}`")))
}

/// Removes one tag (the image itself goes when it was its last tag). A tag already gone is fine,
/// and so is one that has moved on to another image than `expected_id` (a later build or push
/// took it over, e.g. `latest`): that tag is no longer ours to remove.
pub async fn remove_tag(
    docker: &Docker,
    reference: &str,
    expected_id: Option<&str>,
) -> Result<bool, DockerError> {
    if let Some(expected) = expected_id.filter(|e| !e.is_empty()) {
        match local_image(docker, reference).await? {
            Some(id) if id == expected => {}
            _ => return Ok(false),
        }
    }
    match docker
        .remove_image(
            reference,
            Some(RemoveImageOptions {
                force: false,
                noprune: false,
            }),
            None,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(format!("removing image tag `{reference}`"))(e)),
    }
}

/// The image id when the engine has `reference`, `None` when it doesn't.
pub async fn local_image(docker: &Docker, reference: &str) -> Result<Option<String>, DockerError> {
    match docker.inspect_image(reference).await {
        Ok(i) => Ok(Some(i.id.unwrap_or_default())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api(format!("inspecting image `{reference}`"))(e)),
    }
}

/// Pushes `repo:tag`, streaming progress to `out`; a rejected push fails with the registry's words.
pub async fn push(
    docker: &Docker,
    reference: &str,
    credentials: Option<DockerCredentials>,
    out: Out<'_>,
) -> Result<(), DockerError> {
    let (repo, tag) = split_reference(reference);
    let mut stream = docker.push_image(
        &repo,
        Some(PushImageOptions {
            tag: Some(tag),
            platform: None,
        }),
        credentials,
    );
    let mut last_status = String::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| DockerError::Push {
            reference: reference.to_owned(),
            message: message(&e),
        })?;
        if let Some(error) = info
            .error
            .or_else(|| info.error_detail.and_then(|d| d.message))
        {
            return Err(DockerError::Push {
                reference: reference.to_owned(),
                message: error,
            });
        }
        if let Some(status) = info.status
            && status != last_status
        {
            out(&status);
            last_status = status;
        }
    }
    Ok(())
}

/// Pulls `reference` through the engine with optional credentials.
pub async fn pull(
    docker: &Docker,
    reference: &str,
    credentials: Option<DockerCredentials>,
    out: Out<'_>,
) -> Result<(), DockerError> {
    let (repo, tag) = split_reference(reference);
    let options = CreateImageOptions {
        from_image: Some(repo),
        tag: Some(tag),
        ..CreateImageOptions::default()
    };
    let mut stream = docker.create_image(Some(options), None, credentials);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| DockerError::Pull {
            reference: reference.to_owned(),
            message: message(&e),
        })?;
        if let Some(error) = info
            .error
            .or_else(|| info.error_detail.and_then(|d| d.message))
        {
            return Err(DockerError::Pull {
                reference: reference.to_owned(),
                message: error,
            });
        }
        if let Some(status) = info.status
            && info.progress.is_none()
        {
            out(&status);
        }
    }
    Ok(())
}

/// Engine credentials from the Waypoint-style attributes, in Waypoint's order of preference:
/// `encoded_auth`, then the `auth {}` block, then `username`/`password`.
pub fn credentials(
    encoded_auth: Option<&str>,
    auth: Option<&Auth>,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Option<DockerCredentials>, DockerError> {
    if let Some(encoded) = encoded_auth.filter(|e| !e.is_empty()) {
        return decode_encoded_auth(encoded).map(Some);
    }
    if let Some(a) = auth {
        return Ok(Some(DockerCredentials {
            username: a.username.clone(),
            password: a.password.clone(),
            auth: a.auth.clone(),
            email: a.email.clone(),
            serveraddress: a.server_address.clone().or_else(|| a.hostname.clone()),
            identitytoken: a.identity_token.clone(),
            registrytoken: a.registry_token.clone(),
        }));
    }
    if let Some(user) = username {
        return Ok(Some(DockerCredentials {
            username: Some(user.to_owned()),
            password: password.map(str::to_owned),
            ..DockerCredentials::default()
        }));
    }
    Ok(None)
}

/// Decodes `encoded_auth`: base64 (standard or URL-safe) of the engine's JSON auth config.
fn decode_encoded_auth(encoded: &str) -> Result<DockerCredentials, DockerError> {
    use base64::Engine as _;
    let bad = || {
        DockerError::Invalid(vec![Invalid {
            attribute: "encoded_auth".to_owned(),
            message: "is not base64 of a JSON auth config ({\"username\": …, \"password\": …})"
                .to_owned(),
        }])
    };
    let trimmed = encoded.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(trimmed))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| bad())?;
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        auth: Option<String>,
        #[serde(default)]
        email: Option<String>,
        #[serde(default, alias = "serveraddress")]
        #[serde(rename = "serverAddress")]
        server_address: Option<String>,
        #[serde(default, alias = "identitytoken")]
        #[serde(rename = "identityToken")]
        identity_token: Option<String>,
        #[serde(default, alias = "registrytoken")]
        #[serde(rename = "registryToken")]
        registry_token: Option<String>,
    }
    let raw: Raw = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(DockerCredentials {
        username: raw.username,
        password: raw.password,
        auth: raw.auth,
        email: raw.email,
        serveraddress: raw.server_address,
        identitytoken: raw.identity_token,
        registrytoken: raw.registry_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_goes_in_front_and_cmd_is_kept() {
        assert_eq!(
            entrypoint_dockerfile(
                "sha256:abc",
                &[],
                Some(&["/bin/busybox".into(), "httpd".into()])
            ),
            "FROM sha256:abc\nCOPY wayline-entrypoint /bin/wayline-entrypoint\n\
             ENTRYPOINT [\"/bin/wayline-entrypoint\",\"--\"]\nCMD [\"/bin/busybox\",\"httpd\"]\n"
        );
        assert_eq!(
            entrypoint_dockerfile("img:1", &["/app".into(), "-v".into()], None),
            "FROM img:1\nCOPY wayline-entrypoint /bin/wayline-entrypoint\n\
             ENTRYPOINT [\"/bin/wayline-entrypoint\",\"--\",\"/app\",\"-v\"]\n"
        );
        assert!(has_entrypoint(&[
            "/bin/wayline-entrypoint".into(),
            "--".into()
        ]));
        assert!(!has_entrypoint(&["/app".into()]));
    }

    #[test]
    fn an_injection_is_the_same_only_for_the_same_parent_dockerfile_and_binary() {
        let key = injection_key("sha256:a", "FROM x", "d1");
        assert_eq!(key, injection_key("sha256:a", "FROM x", "d1"));
        assert_ne!(key, injection_key("sha256:b", "FROM x", "d1"));
        assert_ne!(key, injection_key("sha256:a", "FROM y", "d1"));
        assert_ne!(key, injection_key("sha256:a", "FROM x", "d2"));
        // Lengths are hashed too: moving a byte from one part to the next is another key.
        assert_ne!(key, injection_key("sha256:aF", "ROM x", "d1"));
    }

    #[tokio::test]
    async fn the_binary_digest_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wayline-entrypoint");
        std::fs::write(&path, b"one").unwrap();
        let first = binary_digest(&path).await.unwrap();
        assert_eq!(first, hex::encode(Sha256::digest(b"one")));
        assert_eq!(binary_digest(&path).await.unwrap(), first);
        std::fs::write(&path, b"a new build").unwrap();
        assert_eq!(
            binary_digest(&path).await.unwrap(),
            hex::encode(Sha256::digest(b"a new build"))
        );
    }

    #[test]
    fn static_and_dynamic_binaries_are_told_apart() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(
            elf_interpreter(&me).is_some_and(|l| l.contains("ld-")),
            "test binaries link dynamically"
        );
        assert_eq!(elf_interpreter(b"#!/bin/sh\nexec \"$@\"\n"), None);
        assert_eq!(elf_interpreter(&me[..40]), None);
        // busybox-static, a documented test dependency.
        if let Ok(busybox) = std::fs::read("/usr/bin/busybox") {
            assert_eq!(elf_interpreter(&busybox), None);
        }
    }

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_reference("127.0.0.1:5000/web:v2"),
            ("127.0.0.1:5000/web".into(), "v2".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/web"),
            ("127.0.0.1:5000/web".into(), "latest".into())
        );
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
    }

    #[test]
    fn credentials_follow_waypoints_order() {
        use base64::Engine as _;
        let enc = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"e","password":"p","serveraddress":"r"}"#);
        let auth = Auth {
            username: Some("a".into()),
            ..Auth::default()
        };
        let c = credentials(Some(&enc), Some(&auth), Some("u"), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_deref(), c.serveraddress.as_deref()),
            (Some("e"), Some("r"))
        );
        let c = credentials(None, Some(&auth), Some("u"), None)
            .unwrap()
            .unwrap();
        assert_eq!(c.username.as_deref(), Some("a"));
        let c = credentials(None, None, Some("u"), Some("pw"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u"), Some("pw"))
        );
        assert!(credentials(None, None, None, None).unwrap().is_none());
        assert_eq!(
            credentials(Some("%%%"), None, None, None)
                .unwrap_err()
                .to_string(),
            "invalid config: encoded_auth: is not base64 of a JSON auth config ({\"username\": …, \"password\": …})"
        );
    }

    #[test]
    fn missing_entrypoint_names_both_places() {
        let err = DockerError::EntrypointMissing {
            env: Some(PathBuf::from("/nope/ep")),
            next_to_exe: PathBuf::from("/opt/wayline/wayline-entrypoint"),
        };
        assert_eq!(
            err.to_string(),
            "cannot inject the entrypoint: no `wayline-entrypoint` binary at WAYLINE_ENTRYPOINT_BINARY (`/nope/ep` does not exist) nor at `/opt/wayline/wayline-entrypoint`; build it, set WAYLINE_ENTRYPOINT_BINARY, or set `disable_entrypoint = true`"
        );
        let build = DockerError::Build {
            step: Some("Step 2/3 : COPY x /x".into()),
            message: "COPY failed".into(),
        };
        assert_eq!(
            build.to_string(),
            "docker build failed at `Step 2/3 : COPY x /x`: COPY failed"
        );
    }
}
