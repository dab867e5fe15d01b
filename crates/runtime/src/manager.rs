//! The runtime's main loop: follows pods with an informer, keeps one worker per pod of
//! this node (by uid), and on the first list reconciles the pod directories left from
//! before (adopted by their workers, or torn down when their pod is gone).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use podnet_model::k8s_openapi::api::core::v1::Pod;
use podnet_model::{Kind, Object};
use podnet_store::{Api, Informer, InformerEvent};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::cleanup;
use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::process::Tools;
use crate::worker::{self, Ctx, Update};

struct Handle {
    tx: watch::Sender<Update>,
    ns: String,
    name: String,
}

/// The state of the loop between events.
struct Manager {
    ctx: Arc<Ctx>,
    workers: HashMap<String, Handle>,
    tasks: JoinSet<String>,
    /// Workers that finished (pod deleted): later events of these uids are stale.
    done: HashSet<String>,
    reconciled: bool,
}

/// Runs the node runtime until `shutdown` resolves; then returns and leaves every pod
/// running (a restarted runtime adopts them).
pub async fn run(
    api: Api,
    cfg: RuntimeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RuntimeError> {
    let tools = Tools::find()?;
    let pods_dir = cfg.pods_dir();
    std::fs::create_dir_all(&pods_dir).map_err(RuntimeError::io("creating", &pods_dir))?;
    let runner = Arc::new(crate::cni::runner(&cfg, &tools.ip));
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        sandboxes: Semaphore::new(cfg.max_parallel_sandboxes.max(1)),
        cfg,
        tools,
        runner,
    });
    tracing::info!(node = %ctx.cfg.node_name, state_dir = %ctx.cfg.state_dir.display(), "node runtime starting");
    let mut m = Manager {
        ctx,
        workers: HashMap::new(),
        tasks: JoinSet::new(),
        done: HashSet::new(),
        reconciled: false,
    };
    let mut informer = Informer::new(api, Kind::Pod, None);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            ev = informer.next() => m.on_event(ev),
            Some(done) = m.tasks.join_next(), if !m.tasks.is_empty() => {
                if let Ok(uid) = done {
                    m.workers.remove(&uid);
                    m.done.insert(uid);
                }
            }
        }
    }
    tracing::info!(
        workers = m.workers.len(),
        "node runtime stopping; pods keep running"
    );
    m.tasks.shutdown().await;
    Ok(())
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

impl Manager {
    fn mine(&self, obj: &Object) -> Option<Pod> {
        match obj {
            Object::Pod(p)
                if p.spec.as_ref().and_then(|s| s.node_name.as_deref())
                    == Some(self.ctx.cfg.node_name.as_str())
                    && !uid(p).is_empty() =>
            {
                Some(p.clone())
            }
            _ => None,
        }
    }

    fn on_event(&mut self, ev: InformerEvent) {
        match ev {
            InformerEvent::Restarted(objs) => {
                let pods: Vec<Pod> = objs.iter().filter_map(|o| self.mine(o)).collect();
                let live: HashSet<String> = pods.iter().map(|p| uid(p).to_string()).collect();
                let gone: Vec<String> = self
                    .workers
                    .keys()
                    .filter(|u| !live.contains(*u))
                    .cloned()
                    .collect();
                for u in gone {
                    self.send(&u, Update::Gone);
                }
                for p in pods {
                    self.dispatch(p);
                }
                if !self.reconciled {
                    self.reconciled = true;
                    let every_uid: Vec<String> =
                        objs.iter().filter_map(|o| o.meta().uid.clone()).collect();
                    let keep = cleanup::netns_names(&self.ctx.cfg, &every_uid);
                    // Listed now, before any worker runs, so nothing new looks orphaned.
                    let orphans =
                        cleanup::find_orphans(&self.ctx.cfg, &self.ctx.runner, &live, &keep);
                    let ctx = self.ctx.clone();
                    self.tasks.spawn(async move {
                        cleanup::remove_orphans(&ctx, orphans).await;
                        String::new()
                    });
                }
            }
            InformerEvent::Applied(obj) => {
                if let Some(p) = self.mine(&obj) {
                    self.dispatch(p);
                }
            }
            InformerEvent::Deleted(oref, last) => {
                let ns = oref.namespace.clone().unwrap_or_default();
                let by_key: Vec<String> = self
                    .workers
                    .iter()
                    .filter(|(_, h)| h.ns == ns && h.name == oref.name)
                    .map(|(u, _)| u.clone())
                    .collect();
                for u in by_key {
                    self.send(&u, Update::Gone);
                }
                if let Some(u) = last.as_ref().and_then(|o| o.meta().uid.clone()) {
                    self.done.remove(&u);
                }
            }
        }
    }

    fn send(&self, uid: &str, update: Update) {
        if let Some(h) = self.workers.get(uid) {
            h.tx.send_replace(update);
        }
    }

    /// Hands a pod to its worker, starting one for a pod not seen before.
    fn dispatch(&mut self, pod: Pod) {
        let u = uid(&pod).to_string();
        if self.done.contains(&u) {
            return;
        }
        if self.workers.contains_key(&u) {
            return self.send(&u, Update::Pod(Box::new(pod)));
        }
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        // Same name, other uid: the old instance was replaced.
        let replaced: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, h)| h.ns == ns && h.name == name)
            .map(|(u, _)| u.clone())
            .collect();
        for old in replaced {
            self.send(&old, Update::Gone);
        }
        let (tx, rx) = watch::channel(Update::Pod(Box::new(pod.clone())));
        let ctx = self.ctx.clone();
        let task_uid = u.clone();
        self.tasks.spawn(async move {
            worker::run(ctx, pod, rx).await;
            task_uid
        });
        self.workers.insert(u, Handle { tx, ns, name });
    }
}
