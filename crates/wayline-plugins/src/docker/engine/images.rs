//! Image tags and registries: tag, remove a tag, look an image up, push and pull.

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptions, PushImageOptions, RemoveImageOptions, TagImageOptions,
};
use futures::StreamExt;

use super::{DockerError, ImageReference, Out, api, is_not_found, message};

/// Tags `source` (id or reference) as `target` (`repo:tag`).
pub async fn tag_image(docker: &Docker, source: &str, target: &str) -> Result<(), DockerError> {
    let target_ref = ImageReference::parse(target)?;
    docker
        .tag_image(
            source,
            Some(TagImageOptions {
                repo: Some(target_ref.repository().to_owned()),
                tag: Some(target_ref.tag_only()?.to_owned()),
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
    let parsed = ImageReference::parse(reference)?;
    let mut stream = docker.push_image(
        parsed.repository(),
        Some(PushImageOptions {
            tag: Some(parsed.tag_only()?.to_owned()),
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
    let parsed = ImageReference::parse(reference)?;
    let options = CreateImageOptions {
        from_image: Some(parsed.repository().to_owned()),
        tag: Some(parsed.pull_tag().to_owned()),
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
