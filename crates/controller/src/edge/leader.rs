//! Leader election through a store lease. The leader key holds the identity of the
//! active controller and is attached to a lease of `ttl`; the leader renews the lease
//! every `ttl/3` and checks the key is still its own. If either fails - or a renewal
//! is overdue - it stops acting at once (the term is withdrawn) and campaigns again.
//! Standbys watch the key and campaign as soon as it is deleted (lease expiry or
//! revocation), polling every `ttl/3` in case a deletion is missed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podnet_store::{Compare, EventKind, LeaseId, Op, OpResult, Revision, Store, Txn};
use tokio::sync::watch;
use tokio::time::{timeout, Instant};

use super::txn::Fence;

/// Where the leader's identity lives.
pub const LEADER_KEY: &str = "/registry/podnet.io/leases/controller";

/// One term of leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub lease: LeaseId,
    /// Create revision of the leader key in this term: the write fence.
    pub create_rev: Revision,
}

impl Term {
    pub fn fence(&self) -> Fence {
        Fence {
            key: LEADER_KEY.to_string(),
            create_rev: self.create_rev,
        }
    }
}

enum State {
    Campaign,
    /// Somebody else leads; wait for the key to go (from this revision on).
    Standby {
        from: Revision,
    },
    Leading {
        term: Term,
        renewed: Instant,
    },
    /// Store trouble: wait, then campaign.
    Backoff,
}

pub struct Elector {
    store: Arc<dyn Store>,
    identity: String,
    ttl: Duration,
    state: State,
    /// A lease granted and not yet revoked.
    lease: Option<LeaseId>,
    term_tx: watch::Sender<Option<Term>>,
}

impl Elector {
    pub fn new(
        store: Arc<dyn Store>,
        identity: String,
        ttl: Duration,
    ) -> (Elector, watch::Receiver<Option<Term>>) {
        let (term_tx, rx) = watch::channel(None);
        (
            Elector {
                store,
                identity,
                ttl,
                state: State::Campaign,
                lease: None,
                term_tx,
            },
            rx,
        )
    }

    fn tick(&self) -> Duration {
        self.ttl / 3
    }

    /// Campaigns and leads until `stop` resolves; then gives the lease back so a
    /// standby takes over at once.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = self.step() => {}
            }
        }
        self.term_tx.send_replace(None);
        self.release().await;
    }

    async fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            if let Err(e) = self.store.lease_revoke(lease).await {
                tracing::debug!(lease, error = %e, "revoking lease failed; it will expire");
            }
        }
    }

    fn lose(&mut self, why: &str) {
        tracing::warn!(identity = %self.identity, reason = why, "lost leadership; stopping work");
        self.term_tx.send_replace(None);
    }

    pub(crate) async fn step(&mut self) {
        match std::mem::replace(&mut self.state, State::Backoff) {
            State::Campaign => self.state = self.campaign().await,
            State::Standby { from } => {
                self.wait_for_vacancy(from).await;
                self.state = State::Campaign;
            }
            State::Leading { term, renewed } => {
                tokio::time::sleep_until(renewed + self.tick()).await;
                match self.renew(&term, renewed).await {
                    Ok(started) => {
                        self.state = State::Leading {
                            term,
                            renewed: started,
                        }
                    }
                    Err(why) => {
                        self.lose(why);
                        self.release().await;
                        self.state = State::Campaign;
                    }
                }
            }
            State::Backoff => {
                tokio::time::sleep(self.tick()).await;
                self.state = State::Campaign;
            }
        }
    }

    async fn campaign(&mut self) -> State {
        // Somebody leads: no lease needed to find that out.
        if let Ok(Some(kv)) = self.store.get(LEADER_KEY).await {
            return State::Standby {
                from: kv.mod_revision + 1,
            };
        }
        let lease = match self.store.lease_grant(self.ttl).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot grant a lease; retrying");
                return State::Backoff;
            }
        };
        self.lease = Some(lease);
        let txn = Txn::new()
            .when([Compare::absent(LEADER_KEY)])
            .and_then([Op::Put {
                key: LEADER_KEY.to_string(),
                value: self.identity.clone().into_bytes(),
                lease,
            }])
            .or_else([Op::get(LEADER_KEY)]);
        match self.store.txn(txn).await {
            Ok(r) if r.succeeded => {
                let term = Term {
                    lease,
                    create_rev: r.revision,
                };
                tracing::info!(identity = %self.identity, lease, revision = r.revision, "became leader");
                self.term_tx.send_replace(Some(term.clone()));
                State::Leading {
                    term,
                    renewed: Instant::now(),
                }
            }
            Ok(r) => {
                self.release().await;
                if let Some(OpResult::Get(Some(kv))) = r.results.first() {
                    tracing::debug!(
                        leader = %String::from_utf8_lossy(&kv.value),
                        "another controller leads; standing by"
                    );
                }
                State::Standby {
                    from: r.revision + 1,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "campaign failed; retrying");
                self.release().await;
                State::Backoff
            }
        }
    }

    /// Returns when the leader key was deleted, or after one poll interval.
    async fn wait_for_vacancy(&self, from: Revision) {
        let watch = async {
            if let Ok(mut stream) = self.store.watch(LEADER_KEY, from).await {
                while let Some(Ok(ev)) = stream.next().await {
                    if ev.kind == EventKind::Delete && ev.kv.key == LEADER_KEY {
                        return;
                    }
                }
            }
            futures::future::pending::<()>().await
        };
        let _ = timeout(self.tick(), watch).await;
    }

    /// Renews the lease and checks the key; returns when the renewal started (the
    /// lease lasts at least `ttl` from then).
    async fn renew(&self, term: &Term, renewed: Instant) -> Result<Instant, &'static str> {
        let started = Instant::now();
        let deadline = renewed + self.ttl;
        let budget = deadline.saturating_duration_since(Instant::now());
        match timeout(budget, self.store.lease_keep_alive(term.lease)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("lease keep-alive failed"),
            Err(_) => return Err("lease keep-alive overdue"),
        }
        let budget = deadline.saturating_duration_since(Instant::now());
        match timeout(budget, self.store.get(LEADER_KEY)).await {
            Ok(Ok(Some(kv)))
                if kv.create_revision == term.create_rev
                    && kv.value == self.identity.as_bytes() =>
            {
                Ok(started)
            }
            Ok(Ok(_)) => Err("leader key is no longer ours"),
            Ok(Err(_)) => Err("cannot read the leader key"),
            Err(_) => Err("reading the leader key is overdue"),
        }
    }
}
