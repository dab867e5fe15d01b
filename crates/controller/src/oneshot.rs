//! One reconcile pass without leader election: read everything, plan, write, repeat
//! until nothing is left to do. For tools (`podnet controller --once`) and for tests
//! that play a stale leader: its writes are not fenced, so only the per-item compares
//! keep it from doing harm - which is exactly what they must guarantee.

use std::sync::Arc;

use podnet_store::{Api, InformerEvent, Store};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::alloc::{AllocKey, ALLOC_PREFIX};
use crate::cache::{AllocEvent, Cache};
use crate::edge::informers::KINDS;
use crate::edge::txn::ApplyError;
use crate::edge::worker::Worker;
use crate::options::{ControllerError, ControllerOptions};

/// Reads every input into a fresh cache.
async fn load(store: &Arc<dyn Store>) -> Result<Cache, ControllerError> {
    let api = Api::new(store.clone());
    let mut cache = Cache::new();
    for kind in KINDS {
        let (objs, _) = api.list(kind, None).await?;
        cache.apply(kind, InformerEvent::Restarted(objs));
    }
    let r = store.range(ALLOC_PREFIX).await?;
    let all = r
        .kvs
        .iter()
        .filter_map(|kv| {
            let k = AllocKey::parse(&kv.key)?;
            let owner = crate::alloc::Owner::decode(&kv.value)?;
            Some((
                k,
                crate::alloc::Allocation {
                    owner,
                    rev: kv.mod_revision,
                },
            ))
        })
        .collect();
    cache.apply_allocs(AllocEvent::Restarted(all));
    Ok(cache)
}

/// Reconciles everything once, unfenced; `rounds` bounds how often it re-reads after
/// conflicts. Returns the number of keys still conflicting at the end (0: done).
pub async fn reconcile_once(
    store: &Arc<dyn Store>,
    opts: &ControllerOptions,
    rounds: usize,
) -> Result<usize, ControllerError> {
    let mut rng = StdRng::from_os_rng();
    let mut left = 0;
    for _ in 0..rounds.max(1) {
        let mut cache = load(store).await?;
        cache.mark_all();
        let mut retry = crate::cache::Dirty::default();
        while !cache.dirty.is_empty() {
            let batch = cache.dirty.take_batch(opts.batch_size);
            let mut worker = Worker {
                store: store.as_ref(),
                fence: None,
                rng: &mut rng,
                max_endpoints_per_slice: opts.max_endpoints_per_slice,
            };
            match worker.process(&mut cache, batch).await {
                Ok(r) => retry.merge(r),
                Err(ApplyError::Store(e)) => return Err(e.into()),
                Err(ApplyError::LostLeadership) => unreachable!("no fence, no leadership"),
            }
        }
        left = retry.len();
        if left == 0 {
            break;
        }
        tracing::debug!(
            conflicts = left,
            "reconcile pass had conflicts; reading again"
        );
    }
    Ok(left)
}
