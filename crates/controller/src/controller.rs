//! The main loop: one task owns the cache; inputs update it and queue dirty keys;
//! while this instance leads and the cache is synced, dirty keys are processed in
//! batches. Losing the lease aborts the batch in flight (its transactions carry the
//! leader fence, so nothing a deposed leader sends can commit).

use std::future::Future;
use std::sync::Arc;

use podnet_store::Store;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use crate::cache::{Cache, Dirty};
use crate::edge::informers::{self, Input};
use crate::edge::leader::{Elector, Term};
use crate::edge::txn::ApplyError;
use crate::edge::worker::Worker;
use crate::options::{ControllerError, ControllerOptions};

/// Inputs applied before looking at work again, so a burst becomes one batch.
const DRAIN_LIMIT: usize = 50_000;
/// Decoded inputs waiting for the main loop; the watches hold back beyond this (and
/// the store buffers or re-reads its log), so memory stays bounded under bursts.
const INPUT_QUEUE: usize = 1024;

/// Whether this instance acts.
enum Phase {
    Standby,
    Leading(Term),
}

struct Loop {
    store: Arc<dyn Store>,
    opts: ControllerOptions,
    cache: Cache,
    phase: Phase,
    rx: mpsc::Receiver<Input>,
    terms: watch::Receiver<Option<Term>>,
    retry: Dirty,
    retry_at: Option<Instant>,
    resync_at: Instant,
    rng: StdRng,
}

/// Runs a controller until `shutdown` resolves: campaigns for leadership and, while
/// leading, allocates, maintains EndpointSlices and schedules pods. Store trouble is
/// retried forever; only invalid options make it return an error.
pub async fn run(
    store: Arc<dyn Store>,
    opts: ControllerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ControllerError> {
    opts.validate()?;
    let identity = opts.identity();
    tracing::info!(identity = %identity, store = %store.describe(), ttl = ?opts.lease_ttl, "controller starting");
    let (tx, rx) = mpsc::channel(INPUT_QUEUE);
    let _inputs = informers::spawn(store.clone(), tx);
    let (elector, terms) = Elector::new(store.clone(), identity, opts.lease_ttl);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let elector = tokio::spawn(elector.run(async move {
        let _ = stop_rx.await;
    }));
    let mut lp = Loop {
        resync_at: Instant::now() + opts.resync_interval,
        store,
        opts,
        cache: Cache::new(),
        phase: Phase::Standby,
        rx,
        terms,
        retry: Dirty::default(),
        retry_at: None,
        rng: StdRng::from_os_rng(),
    };
    lp.run(shutdown).await;
    let _ = stop_tx.send(());
    if let Err(e) = elector.await {
        if e.is_panic() {
            return Err(ControllerError::Internal(format!(
                "leader election panicked: {e}"
            )));
        }
    }
    tracing::info!("controller stopped");
    Ok(())
}

/// The elector ended without being asked to (it panicked): nothing can lead any more.
fn elector_gone() {
    tracing::error!("leader election stopped unexpectedly; stopping the controller");
}

impl Loop {
    async fn run(&mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let mut drained = 0;
            while drained < DRAIN_LIMIT {
                match self.rx.try_recv() {
                    Ok(input) => self.input(input),
                    Err(_) => break,
                }
                drained += 1;
            }
            if self.retry_at.is_some_and(|t| t <= Instant::now()) {
                self.cache.dirty.merge(std::mem::take(&mut self.retry));
                self.retry_at = None;
            }
            let leading = matches!(self.phase, Phase::Leading(_));
            if leading && Instant::now() >= self.resync_at {
                self.resync_at = Instant::now() + self.opts.resync_interval;
                self.cache.mark_all();
            }
            if leading && self.cache.is_synced() && !self.cache.dirty.is_empty() {
                let Phase::Leading(term) = &self.phase else {
                    continue;
                };
                let fence = term.fence();
                let batch = self.cache.dirty.take_batch(self.opts.batch_size);
                let started = Instant::now();
                let size = batch.len();
                let mut worker = Worker {
                    store: self.store.as_ref(),
                    fence: Some(fence),
                    rng: &mut self.rng,
                    max_endpoints_per_slice: self.opts.max_endpoints_per_slice,
                };
                let outcome = tokio::select! {
                    biased;
                    _ = &mut shutdown => return,
                    changed = self.terms.changed() => match changed {
                        Ok(()) => None,
                        Err(_) => return elector_gone(),
                    },
                    r = worker.process(&mut self.cache, batch.clone()) => Some(r),
                };
                match outcome {
                    None => {
                        self.cache.allocs.end_batch();
                        self.leadership();
                    }
                    Some(r) => {
                        tracing::debug!(keys = size, elapsed = ?started.elapsed(), left = self.cache.dirty.len(), "batch done");
                        self.finished(r, batch)
                    }
                }
                continue;
            }
            let retry_at = self.retry_at;
            let resync_at = self.resync_at;
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                changed = self.terms.changed() => match changed {
                    Ok(()) => self.leadership(),
                    Err(_) => return elector_gone(),
                },
                input = self.rx.recv() => match input {
                    Some(input) => self.input(input),
                    None => return,
                },
                _ = sleep_until(retry_at.unwrap_or(resync_at)), if retry_at.is_some() => {}
                _ = sleep_until(resync_at), if leading => {}
            }
        }
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Object(kind, ev) => self.cache.apply(kind, ev),
            Input::Allocs(ev) => self.cache.apply_allocs(ev),
            Input::Pods(ev) => self.cache.apply_pods(ev),
            Input::Slices(ev) => self.cache.apply_slices(ev),
            Input::Services(ev) => self.cache.apply_services(ev),
        }
    }

    fn leadership(&mut self) {
        let term = self.terms.borrow_and_update().clone();
        self.cache.allocs.end_batch();
        match term {
            Some(term) => {
                tracing::info!(
                    revision = term.create_rev,
                    "leading: reconciling everything"
                );
                self.cache.mark_all();
                self.phase = Phase::Leading(term);
            }
            None => self.phase = Phase::Standby,
        }
    }

    fn finished(&mut self, r: Result<Dirty, ApplyError>, batch: Dirty) {
        match r {
            Ok(retry) => self.defer(retry),
            Err(ApplyError::LostLeadership) => {
                tracing::warn!("write fenced off: another controller leads; stopping work");
                self.phase = Phase::Standby;
            }
            Err(ApplyError::Store(e)) => {
                tracing::warn!(error = %e, "store trouble; retrying the batch");
                self.defer(batch);
            }
        }
    }

    fn defer(&mut self, keys: Dirty) {
        if keys.is_empty() {
            return;
        }
        self.retry.merge(keys);
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + self.opts.retry_delay);
        }
    }
}
