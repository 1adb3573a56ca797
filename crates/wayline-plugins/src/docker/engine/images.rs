//! Image tags and registries: tag, remove a tag, look an image up, push and pull.

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptions, PushImageOptions, RemoveImageOptions, TagImageOptions,
};
use futures::StreamExt;

use super::{DockerError, Out, api, is_not_found, message};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
