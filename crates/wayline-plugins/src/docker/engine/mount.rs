//! The entrypoint without a layer: a container on the local engine gets the binary bind-mounted
//! read-only at its in-image path, so a build needs no injection commit (on this machine about
//! 350–600 ms and a new 3.4 MiB layer per build). The image keeps its own ENTRYPOINT and CMD;
//! the container is created with the entrypoint in front of them, as an injected image has it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bollard::Docker;
use bollard::models::{Mount, MountTypeEnum};
use bollard::query_parameters::ListContainersOptions;

use super::inject::{ImageStart, binary_digest, entrypoint_binary};
use super::{DockerError, ENTRYPOINT_IN_IMAGE, Endpoint, api};
use crate::docker::config::ClientConfig;

/// How a container gets the entrypoint by mount.
#[derive(Debug, Clone, PartialEq)]
pub struct EntrypointMount {
    /// The read-only bind of the binary at [`ENTRYPOINT_IN_IMAGE`].
    pub mount: Mount,
    /// The container's ENTRYPOINT: the entrypoint, `--`, then the image's own.
    pub entrypoint: Vec<String>,
    /// The image's CMD: an ENTRYPOINT given at create time drops the inherited one.
    pub cmd: Option<Vec<String>>,
}

/// Whether the engine `client` names sees this process's files at the same paths, so one can be
/// bind-mounted: a local engine over a unix socket whose daemon has this process's root
/// filesystem. The daemon is the socket's peer; a runner in a container holding the host's
/// socket cannot see that process (its pid reads as 0) or sees another root, and gets `false`.
pub async fn shares_files(client: Option<&ClientConfig>) -> bool {
    let endpoint = Endpoint::resolve(client, |k| std::env::var(k).ok());
    let socket = match endpoint.host.as_deref() {
        None => DEFAULT_SOCKET,
        Some(h) => match h.strip_prefix("unix://") {
            Some(path) => path,
            None => return false,
        },
    };
    let Ok(stream) = tokio::net::UnixStream::connect(socket).await else {
        return false;
    };
    let pid = stream.peer_cred().ok().and_then(|c| c.pid()).unwrap_or(0);
    pid > 0 && same_root(&format!("/proc/{pid}/root"))
}

/// The local engine's socket when neither the config nor `DOCKER_HOST` names one.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Whether `root` (a process's `/proc/<pid>/root`) is this process's root directory. Reading
/// another user's root needs privileges a member of the `docker` group lacks; then a process
/// that is not itself in a container (no `/.dockerenv` or `/run/.containerenv`) counts as
/// sharing the daemon's files, since it sees the daemon's pid.
fn same_root(root: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/");
    match (std::fs::metadata(root), ours) {
        (Ok(theirs), Ok(ours)) => theirs.dev() == ours.dev() && theirs.ino() == ours.ino(),
        (Err(e), _) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            !["/.dockerenv", "/run/.containerenv"]
                .iter()
                .any(|marker| Path::new(marker).exists())
        }
        _ => false,
    }
}

/// The mount that runs `image` with the entrypoint in front, from a copy of the binary kept in
/// `dir`; `None` when the image already starts with the entrypoint.
pub async fn entrypoint_mount(
    docker: &Docker,
    image: &str,
    dir: &Path,
) -> Result<Option<EntrypointMount>, DockerError> {
    let start = ImageStart::of(docker, image).await?;
    if start.has_entrypoint() {
        return Ok(None);
    }
    let (source, made) = kept_copy(&entrypoint_binary()?, dir).await?;
    if made {
        // A new entrypoint version: the copies of older ones are garbage once no container
        // (running or stopped, which may start again) mounts them.
        remove_unmounted_copies(docker, dir, &source).await;
    }
    let mut entrypoint = vec![ENTRYPOINT_IN_IMAGE.to_owned(), "--".to_owned()];
    entrypoint.extend(start.entrypoint);
    Ok(Some(EntrypointMount {
        mount: Mount {
            target: Some(ENTRYPOINT_IN_IMAGE.to_owned()),
            source: Some(source.to_string_lossy().into_owned()),
            typ: Some(MountTypeEnum::BIND),
            read_only: Some(true),
            ..Mount::default()
        },
        entrypoint,
        cmd: start.cmd,
    }))
}

/// A copy of `binary` in `dir`, named by its digest and made once per binary version: a
/// container restarts from the binary it started with even after that one is rebuilt or removed.
/// The flag says whether this call made the copy.
async fn kept_copy(binary: &Path, dir: &Path) -> Result<(PathBuf, bool), DockerError> {
    let read_error =
        |e: std::io::Error| DockerError::Other(format!("reading `{}`: {e}", binary.display()));
    let digest = binary_digest(binary).await.map_err(read_error)?;
    let name = format!("wayline-entrypoint-{}", &digest[..16]);
    let path = dir.join(&name);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
        return Ok((path, false));
    }
    let (binary, dir) = (binary.to_owned(), dir.to_owned());
    let copy_error = |e: std::io::Error| {
        DockerError::Other(format!("keeping a copy of wayline-entrypoint: {e}"))
    };
    tokio::task::spawn_blocking(move || copy_executable(&binary, &dir, &name))
        .await
        .map_err(|e| copy_error(std::io::Error::other(e)))?
        .map_err(copy_error)
        .map(|path| (path, true))
}

/// A copy younger than this is never removed: another process with that entrypoint version may
/// be about to create a container that mounts it.
const COPY_GRACE: Duration = Duration::from_mins(10);

/// Removes the kept copies in `dir` other than `current` that no container on the engine
/// mounts. Best effort: a failure leaves a few MiB on disk, never a broken deploy.
async fn remove_unmounted_copies(docker: &Docker, dir: &Path, current: &Path) {
    let options = ListContainersOptions {
        all: true,
        ..ListContainersOptions::default()
    };
    let mounted: HashSet<PathBuf> = match docker.list_containers(Some(options)).await {
        Ok(containers) => containers
            .into_iter()
            .flat_map(|c| c.mounts.unwrap_or_default())
            .filter_map(|m| m.source.map(PathBuf::from))
            .collect(),
        Err(e) => {
            tracing::debug!(error = %api("listing containers")(e), "kept entrypoint copies left");
            return;
        }
    };
    for path in unmounted_copies(dir, current, &mounted, SystemTime::now()) {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!(path = %path.display(), "removed an old entrypoint copy"),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "old entrypoint copy left");
            }
        }
    }
}

/// The copies in `dir` that can go: not `current`, not `mounted`, older than [`COPY_GRACE`].
fn unmounted_copies(
    dir: &Path,
    current: &Path,
    mounted: &HashSet<PathBuf>,
    now: SystemTime,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("wayline-entrypoint-"))
        })
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() >= COPY_GRACE)
        })
        .map(|e| e.path())
        .filter(|p| p != current && !mounted.contains(p))
        .collect()
}

/// Copies `binary` to `dir/name` through a temporary file renamed into place, so a concurrent
/// deploy never mounts a half-written copy.
fn copy_executable(binary: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(name);
    let partial = dir.join(format!(".{name}.{}", std::process::id()));
    // 0755, not 0600: a container running as another user must be able to execute it. It is
    // the public entrypoint binary, no secret; the directory around it stays 0700.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&partial)?;
    std::io::copy(&mut std::fs::File::open(binary)?, &mut out)?;
    out.sync_all()?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_copy_is_made_once_per_binary_version() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("wayline-entrypoint");
        std::fs::write(&binary, b"version one").unwrap();
        let keep = dir.path().join("kept");
        let first = kept_copy(&binary, &keep).await.unwrap().0;
        assert_eq!(std::fs::read(&first).unwrap(), b"version one");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&first), 0o755);
        assert_eq!(mode(&keep), 0o700);
        assert_eq!(
            kept_copy(&binary, &keep).await.unwrap(),
            (first.clone(), false)
        );
        std::fs::write(&binary, b"version two").unwrap();
        let (second, made) = kept_copy(&binary, &keep).await.unwrap();
        assert!(made);
        assert_ne!(second, first);
        assert_eq!(std::fs::read(&second).unwrap(), b"version two");
        // The first stays for the containers started from it.
        assert_eq!(std::fs::read(&first).unwrap(), b"version one");
        let names: Vec<_> = std::fs::read_dir(&keep).unwrap().collect();
        assert_eq!(names.len(), 2, "no partial copies are left behind");
    }

    #[test]
    fn only_old_unmounted_copies_of_other_versions_go() {
        let dir = tempfile::tempdir().unwrap();
        let copy = |name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, b"x").unwrap();
            p
        };
        let current = copy("wayline-entrypoint-cccc");
        let mounted = copy("wayline-entrypoint-mmmm");
        let unused = copy("wayline-entrypoint-uuuu");
        copy("something-else");
        let later = SystemTime::now() + COPY_GRACE + Duration::from_secs(1);
        let set = HashSet::from([mounted]);
        assert_eq!(
            unmounted_copies(dir.path(), &current, &set, later),
            vec![unused]
        );
        assert!(
            unmounted_copies(dir.path(), &current, &set, SystemTime::now()).is_empty(),
            "a copy just made may be about to be mounted"
        );
    }

    #[tokio::test]
    async fn only_a_local_engine_with_this_root_shares_files() {
        let client = |host: &str| ClientConfig {
            host: Some(host.to_owned()),
            ..ClientConfig::default()
        };
        assert!(!shares_files(Some(&client("tcp://10.0.0.5:2376"))).await);
        assert!(!shares_files(Some(&client("ssh://me@host"))).await);
        assert!(!shares_files(Some(&client("unix:///nonexistent/docker.sock"))).await);
        // A socket this process serves itself: its peer is this process, with this root.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
        let url = format!("unix://{}", path.display());
        assert!(shares_files(Some(&client(&url))).await);
        accept.await.unwrap().unwrap();
    }

    #[test]
    fn another_root_is_not_this_one() {
        assert!(same_root("/proc/self/root"));
        assert!(!same_root("/proc/0/root"));
    }
}
