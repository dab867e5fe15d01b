//! What to execute for a container: argv (from `podnet_images::resolve`), environment
//! and working directory; or why it cannot start. Pure.

use std::path::{Path, PathBuf};

use podnet_images::{resolve, Resolved};
use podnet_model::k8s_openapi::api::core::v1::Container;

use crate::env::{container_env, expand, EnvSources, PodFacts};

/// `PATH` of containers unless their `env` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A container ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program and its arguments (before the namespace prefix).
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited from the runtime).
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
}

/// Why a container cannot start; it stays Waiting with this reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub reason: &'static str,
    pub message: String,
}

/// Reason of a container whose image the lab cannot run.
pub const ERR_IMAGE: &str = "ErrImageNotSupported";
/// Reason of a container whose environment cannot be built.
pub const ERR_CONFIG: &str = "CreateContainerConfigError";

/// Plans the launch of `c` in a pod whose hostname is `hostname`.
pub fn plan_launch(
    c: &Container,
    facts: PodFacts<'_>,
    sources: &EnvSources,
    podnet_exe: &Path,
    hostname: &str,
) -> Result<Launch, Blocked> {
    let container_vars = container_env(c, facts, sources).map_err(|message| Blocked {
        reason: ERR_CONFIG,
        message: format!("container {:?}: {message}", c.name),
    })?;
    let exp = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter()
            .flatten()
            .map(|s| expand(s, &container_vars))
            .collect()
    };
    let image = c.image.as_deref().unwrap_or_default();
    let argv = match resolve(image, &exp(&c.command), &exp(&c.args)) {
        Resolved::Builtin(cmd) => std::iter::once(podnet_exe.display().to_string())
            .chain(std::iter::once("image".to_string()))
            .chain(cmd.argv())
            .collect(),
        Resolved::Host { argv } => argv,
        Resolved::Unknown { reason } => {
            return Err(Blocked {
                reason: ERR_IMAGE,
                message: format!("container {:?}: {reason}", c.name),
            })
        }
    };
    let mut env = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOSTNAME".to_string(), hostname.to_string()),
        ("HOME".to_string(), "/root".to_string()),
    ];
    for (k, v) in container_vars {
        match env.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    }
    Ok(Launch {
        argv,
        env,
        working_dir: c
            .working_dir
            .as_ref()
            .filter(|w| !w.is_empty())
            .map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::k8s_openapi::api::core::v1::{EnvVar, Pod};

    fn facts(pod: &Pod) -> PodFacts<'_> {
        PodFacts {
            pod,
            pod_ips: &[],
            host_ip: "172.18.0.2".parse().unwrap(),
        }
    }

    #[test]
    fn builtin_host_and_unknown_images() {
        let pod = Pod::default();
        let exe = Path::new("/usr/bin/podnet");
        let agnhost = Container {
            name: "a".into(),
            image: Some("registry.k8s.io/e2e-test-images/agnhost:2.47".into()),
            args: Some(vec!["netexec".into(), "--http-port=$(PORT)".into()]),
            env: Some(vec![EnvVar {
                name: "PORT".into(),
                value: Some("8080".into()),
                value_from: None,
            }]),
            ..Container::default()
        };
        let l = plan_launch(&agnhost, facts(&pod), &EnvSources::default(), exe, "p").unwrap();
        assert_eq!(
            &l.argv[..4],
            ["/usr/bin/podnet", "image", "agnhost", "netexec"]
        );
        assert!(
            l.argv.contains(&"--http-port=8080".to_string()),
            "{:?}",
            l.argv
        );
        assert!(l.env.contains(&("HOSTNAME".into(), "p".into())));

        let shell = Container {
            name: "b".into(),
            image: Some("busybox".into()),
            command: Some(vec!["sleep".into(), "3600".into()]),
            working_dir: Some("/tmp".into()),
            ..Container::default()
        };
        let l = plan_launch(&shell, facts(&pod), &EnvSources::default(), exe, "p").unwrap();
        assert_eq!(l.argv, ["sleep", "3600"]);
        assert_eq!(l.working_dir, Some(PathBuf::from("/tmp")));

        let unknown = Container {
            name: "c".into(),
            image: Some("nginx".into()),
            ..Container::default()
        };
        let b = plan_launch(&unknown, facts(&pod), &EnvSources::default(), exe, "p").unwrap_err();
        assert_eq!(b.reason, ERR_IMAGE);
        assert!(b.message.contains("nginx"), "{}", b.message);
    }
}
