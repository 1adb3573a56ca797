//! Entrypoint injection: finding the static `wayline-entrypoint` binary and committing it in
//! front of an image's own ENTRYPOINT, cached by the injection's digest.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::models::{ContainerConfig, ContainerCreateBody};
use bollard::query_parameters::{
    CommitContainerOptions, CreateContainerOptions, ListImagesOptions, RemoveContainerOptions,
    UploadToContainerOptions,
};
use sha2::{Digest, Sha256};

use super::images::tag_image;
use super::reference::ImageReference;
use super::{
    DockerError, ENTRYPOINT_ENV, ENTRYPOINT_FILE, ENTRYPOINT_IN_IMAGE, LABEL_INJECTION, Out, api,
    is_not_found,
};

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

/// How an image starts: its id, ENTRYPOINT and CMD, as the engine reports them.
pub(super) struct ImageStart {
    pub(super) id: String,
    pub(super) entrypoint: Vec<String>,
    pub(super) cmd: Option<Vec<String>>,
}

impl ImageStart {
    /// Reads how `image` starts.
    pub(super) async fn of(docker: &Docker, image: &str) -> Result<Self, DockerError> {
        let inspect = docker
            .inspect_image(image)
            .await
            .map_err(api(format!("inspecting image `{image}`")))?;
        let config = inspect.config.unwrap_or_default();
        Ok(Self {
            id: inspect.id.unwrap_or_default(),
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd,
        })
    }

    /// Whether it already starts with the entrypoint.
    pub(super) fn has_entrypoint(&self) -> bool {
        has_entrypoint(&self.entrypoint)
    }
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
    let start = ImageStart::of(docker, base).await?;
    if start.has_entrypoint() {
        out("The image already starts with wayline-entrypoint; not injecting it twice.");
        tag_image(docker, base, tag).await?;
        return Ok(start.id);
    }
    let dockerfile = entrypoint_dockerfile(base, &start.entrypoint, start.cmd.as_deref());
    let read_error =
        |e: std::io::Error| DockerError::Other(format!("reading `{}`: {e}", binary.display()));
    let base_id = start.id;
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
    new_entrypoint.extend(start.entrypoint);
    commit_injection(
        docker,
        &base_id,
        tag,
        &binary_bytes,
        new_entrypoint,
        start.cmd,
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
    let target = ImageReference::parse(tag)?;
    let image = docker
        .commit_container(
            CommitContainerOptions {
                container: Some(container.to_owned()),
                repo: Some(target.repository().to_owned()),
                tag: Some(target.tag_only()?.to_owned()),
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
pub(super) async fn binary_digest(path: &Path) -> std::io::Result<String> {
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
}
