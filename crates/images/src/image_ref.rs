//! Image references (`registry/path:tag@digest`), reduced to the repository path that
//! names what the image is.

/// The parts of an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry.k8s.io`, `localhost:5000`; `None` for Docker Hub.
    pub registry: Option<String>,
    /// `e2e-test-images/agnhost`, `busybox` (Docker Hub's `library/` dropped).
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Splits a reference the way container runtimes read it: the first component is a
    /// registry when it has a `.` or `:` or is `localhost`.
    pub fn parse(image: &str) -> Self {
        let image = image.trim();
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (image, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (rest, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), path)
            }
            _ => (None, rest),
        };
        let registry = registry.filter(|r| {
            !matches!(
                r.as_str(),
                "docker.io" | "index.docker.io" | "registry-1.docker.io"
            )
        });
        let path = match (&registry, path.strip_prefix("library/")) {
            (None, Some(p)) => p,
            _ => path,
        };
        ImageRef {
            registry,
            path: path.to_ascii_lowercase(),
            tag,
            digest,
        }
    }

    /// The last path component: `agnhost` of `registry.k8s.io/e2e-test-images/agnhost`.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageRef::parse("docker.io/library/busybox:1.36");
        assert_eq!(
            (r.registry, r.path.as_str(), r.tag.as_deref()),
            (None, "busybox", Some("1.36"))
        );
        let r = ImageRef::parse("registry.k8s.io/e2e-test-images/agnhost:2.53");
        assert_eq!(r.registry.as_deref(), Some("registry.k8s.io"));
        assert_eq!(
            (r.path.as_str(), r.name()),
            ("e2e-test-images/agnhost", "agnhost")
        );
        let r = ImageRef::parse("localhost:5000/team/app@sha256:abc");
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(
            (r.path.as_str(), r.tag, r.digest.as_deref()),
            ("team/app", None, Some("sha256:abc"))
        );
        let r = ImageRef::parse("nicolaka/netshoot");
        assert_eq!(
            (r.registry, r.path.as_str(), r.tag),
            (None, "nicolaka/netshoot", None)
        );
        assert_eq!(ImageRef::parse("alpine:3.20@sha256:def").path, "alpine");
    }
}
