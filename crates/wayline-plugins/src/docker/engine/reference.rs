//! Image references (`[registry[:port]/]name[:tag][@digest]`) read with the OCI distribution
//! grammar (`oci-spec`'s [`Reference`], a port of Docker's own `distribution/reference`), then cut
//! into what the engine's API takes: a repository and a tag, or a repository and a digest.

use oci_spec::distribution::{ParseError, Reference};

use super::DockerError;

/// A parsed image reference, with the repository as it was written (`busybox`, not
/// `docker.io/library/busybox`: the engine normalises it the same way, and messages and tags
/// keep the user's spelling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    repository: String,
    tag: String,
    digest: Option<String>,
}

impl ImageReference {
    /// Parses `reference`; one without a tag or digest means `:latest`, like the Docker CLI.
    pub fn parse(reference: &str) -> Result<Self, DockerError> {
        let parsed = Reference::try_from(reference).map_err(|e| DockerError::Reference {
            reference: reference.to_owned(),
            message: reason(reference, &e),
        })?;
        let mut repository = reference;
        if let Some(digest) = parsed.digest() {
            repository = repository
                .strip_suffix(digest)
                .and_then(|r| r.strip_suffix('@'))
                .unwrap_or(repository);
        }
        // The tag the parser defaults to (`latest`) is not in the text, so it strips nothing.
        if let Some(tag) = parsed.tag() {
            repository = repository
                .strip_suffix(tag)
                .and_then(|r| r.strip_suffix(':'))
                .unwrap_or(repository);
        }
        Ok(Self {
            repository: repository.to_owned(),
            tag: parsed.tag().unwrap_or("latest").to_owned(),
            digest: parsed.digest().map(str::to_owned),
        })
    }

    /// The repository, with its registry (and port) when one was written.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag (`latest` when none was written).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The digest (`sha256:…`), when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What a pull asks the engine for besides the repository: the digest when there is one (a
    /// tag next to a digest is ignored, as `docker pull` does), else the tag.
    pub fn pull_tag(&self) -> &str {
        self.digest().unwrap_or(&self.tag)
    }

    /// The tag for a call that names an image by tag (tag, commit, push): a digest cannot be
    /// given to an image, only read from a registry.
    pub fn tag_only(&self) -> Result<&str, DockerError> {
        match self.digest() {
            Some(digest) => Err(DockerError::Reference {
                reference: self.to_string(),
                message: format!(
                    "a digest ({digest}) names what a registry holds; tag or push `{}:{}` instead",
                    self.repository, self.tag
                ),
            }),
            None => Ok(&self.tag),
        }
    }
}

impl std::fmt::Display for ImageReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)?;
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The parser's reason, in Docker's words where the parser is vaguer than Docker: it reports an
/// uppercase repository as a bad format, Docker as "repository name must be lowercase".
fn reason(reference: &str, error: &ParseError) -> String {
    let name_end = reference.find('@').unwrap_or(reference.len());
    let name = &reference[..name_end];
    let lowered = format!("{}{}", name.to_lowercase(), &reference[name_end..]);
    let uppercase_name = matches!(error, ParseError::ReferenceInvalidFormat)
        && lowered != reference
        && Reference::try_from(lowered.as_str()).is_ok();
    if uppercase_name {
        "repository name must be lowercase".to_owned()
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4b7ce07a0f53d1a7e7e0b2a5e4a0d6c5c3c1a0b8c8e1c5b7d9f0a1b2c3d4e5f6";

    fn parts(reference: &str) -> (String, String, Option<String>) {
        let r = ImageReference::parse(reference).unwrap();
        (
            r.repository().to_owned(),
            r.tag().to_owned(),
            r.digest().map(str::to_owned),
        )
    }

    fn error(reference: &str) -> String {
        ImageReference::parse(reference).unwrap_err().to_string()
    }

    #[test]
    fn no_tag_means_latest() {
        assert_eq!(parts("busybox"), ("busybox".into(), "latest".into(), None));
        assert_eq!(
            parts("library/busybox"),
            ("library/busybox".into(), "latest".into(), None)
        );
        // An image whose name is the default tag's word.
        assert_eq!(parts("latest"), ("latest".into(), "latest".into(), None));
    }

    #[test]
    fn a_registry_port_is_not_a_tag() {
        assert_eq!(
            parts("127.0.0.1:5000/web:v2"),
            ("127.0.0.1:5000/web".into(), "v2".into(), None)
        );
        assert_eq!(
            parts("127.0.0.1:5000/web"),
            ("127.0.0.1:5000/web".into(), "latest".into(), None)
        );
        assert_eq!(
            parts("localhost:5000/team/web:1.2"),
            ("localhost:5000/team/web".into(), "1.2".into(), None)
        );
    }

    #[test]
    fn a_digest_alone_or_after_a_tag() {
        let only = ImageReference::parse(&format!("img@{DIGEST}")).unwrap();
        assert_eq!(only.repository(), "img");
        assert_eq!(only.digest(), Some(DIGEST));
        assert_eq!(only.pull_tag(), DIGEST);

        let both = ImageReference::parse(&format!("host:5000/img:tag@{DIGEST}")).unwrap();
        assert_eq!(both.repository(), "host:5000/img");
        assert_eq!(both.tag(), "tag");
        assert_eq!(both.digest(), Some(DIGEST));
        // The digest wins over the tag when pulling, as with `docker pull`.
        assert_eq!(both.pull_tag(), DIGEST);
        assert_eq!(both.to_string(), format!("host:5000/img:tag@{DIGEST}"));

        let tagged = ImageReference::parse("host:5000/img:tag").unwrap();
        assert_eq!(tagged.pull_tag(), "tag");
        assert_eq!(tagged.tag_only().unwrap(), "tag");
    }

    #[test]
    fn a_digest_cannot_be_given_to_an_image() {
        let pinned = ImageReference::parse(&format!("img@{DIGEST}")).unwrap();
        assert_eq!(
            pinned.tag_only().unwrap_err().to_string(),
            format!(
                "image reference `img:latest@{DIGEST}` is not valid: a digest ({DIGEST}) names what a registry holds; tag or push `img:latest` instead"
            )
        );
    }

    #[test]
    fn bad_references_say_why() {
        assert_eq!(
            error("Busybox:latest"),
            "image reference `Busybox:latest` is not valid: repository name must be lowercase"
        );
        assert_eq!(
            error(&format!("host:5000/Team/Web@{DIGEST}")),
            format!(
                "image reference `host:5000/Team/Web@{DIGEST}` is not valid: repository name must be lowercase"
            )
        );
        assert_eq!(
            error(""),
            "image reference `` is not valid: repository name must have at least one component"
        );
        assert_eq!(
            error("img:has space"),
            "image reference `img:has space` is not valid: invalid reference format"
        );
        assert_eq!(
            error("img@sha256:abc"),
            "image reference `img@sha256:abc` is not valid: invalid reference format"
        );
        assert_eq!(
            error(&format!("img@sha256:{}", "a".repeat(40))),
            format!(
                "image reference `img@sha256:{}` is not valid: invalid checksum digest length",
                "a".repeat(40)
            )
        );
    }
}
