//! Pod IP allocation in the store, one compare-and-swap transaction per change.
//!
//! Two keys per allocated address, always written and deleted together:
//! - `/registry/podnet.io/ipam/<node>/<ip>` → [`AddressRecord`] (JSON): who owns `ip`;
//! - `/registry/podnet.io/ipam-attachments/<node>/<containerID>/<ifname>` → `<ip>`.
//!
//! An allocation is one transaction that requires both keys absent and creates both, so
//! an address is owned by exactly one attachment or free, and an attachment holds at
//! most one address, whatever runs concurrently or crashes in between.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use podnet_store::{Compare, KeyValue, Op, Store, Txn};
use serde::{Deserialize, Serialize};

use super::error::PluginError;
use super::names::{at_offset, offset_of, pod_offsets};

/// Prefix of the per-address keys.
pub const ADDRESS_PREFIX: &str = "/registry/podnet.io/ipam/";
/// Prefix of the per-attachment keys.
pub const ATTACHMENT_PREFIX: &str = "/registry/podnet.io/ipam-attachments/";

/// How often a transaction is retried after losing a race before giving up.
const MAX_ATTEMPTS: usize = 64;

/// The value of an address key: who owns the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRecord {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    #[serde(rename = "allocatedAt")]
    pub allocated_at: String,
}

/// The key of an allocated address.
pub fn address_key(node: &str, ip: IpAddr) -> String {
    format!("{ADDRESS_PREFIX}{node}/{ip}")
}

/// The key of an attachment's allocation.
pub fn attachment_key(node: &str, container_id: &str, ifname: &str) -> String {
    format!("{ATTACHMENT_PREFIX}{node}/{container_id}/{ifname}")
}

/// The result of [`Ipam::allocate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub ip: IpAddr,
    /// False when the attachment already held this address (a repeated ADD).
    pub new: bool,
}

/// One attachment and its address, as GC sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub container_id: String,
    pub ifname: String,
    pub ip: Option<IpAddr>,
}

/// The allocator of one node.
pub struct Ipam {
    store: Arc<dyn Store>,
    node: String,
}

impl Ipam {
    pub fn new(store: Arc<dyn Store>, node: impl Into<String>) -> Self {
        Ipam {
            store,
            node: node.into(),
        }
    }

    /// The address an attachment holds, if any.
    pub async fn lookup(
        &self,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<IpAddr>, PluginError> {
        let key = attachment_key(&self.node, container_id, ifname);
        match self.store.get(&key).await? {
            Some(kv) => parse_ip(&kv).map(Some),
            None => Ok(None),
        }
    }

    /// Gives the attachment an address of `cidr`: the one it already holds, else
    /// `requested` when free, else the lowest free one.
    pub async fn allocate(
        &self,
        cidr: IpNet,
        container_id: &str,
        ifname: &str,
        netns: Option<&str>,
        requested: Option<IpAddr>,
    ) -> Result<Allocation, PluginError> {
        if let Some(ip) = requested {
            check_requested(cidr, ip)?;
        }
        let att_key = attachment_key(&self.node, container_id, ifname);
        for _ in 0..MAX_ATTEMPTS {
            if let Some(ip) = self.lookup(container_id, ifname).await? {
                if requested.is_some_and(|r| r != ip) {
                    return Err(PluginError::RequestedIp(format!(
                        "attachment {container_id}/{ifname} already holds {ip}, not the requested {}",
                        requested.map(|r| r.to_string()).unwrap_or_default()
                    )));
                }
                return Ok(Allocation { ip, new: false });
            }
            let ip = match requested {
                Some(ip) => ip,
                None => self.first_free(cidr).await?,
            };
            let record = AddressRecord {
                container_id: container_id.to_string(),
                ifname: ifname.to_string(),
                netns: netns.map(str::to_string),
                allocated_at: jiff::Timestamp::now().to_string(),
            };
            let value = serde_json::to_vec(&record)
                .map_err(|e| PluginError::StoreData(format!("encoding address record: {e}")))?;
            let ip_key = address_key(&self.node, ip);
            let r = self
                .store
                .txn(
                    Txn::new()
                        .when([Compare::absent(&ip_key), Compare::absent(&att_key)])
                        .and_then([Op::put(&ip_key, value), Op::put(&att_key, ip.to_string())])
                        .or_else([Op::get(&ip_key)]),
                )
                .await?;
            if r.succeeded {
                tracing::debug!(node = %self.node, %ip, container_id, ifname, "allocated");
                return Ok(Allocation { ip, new: true });
            }
            if requested.is_some() && self.lookup(container_id, ifname).await?.is_none() {
                let owner = match r.results.first() {
                    Some(podnet_store::OpResult::Get(Some(kv))) => {
                        match serde_json::from_slice::<AddressRecord>(&kv.value) {
                            Ok(rec) => format!("container {} ({})", rec.container_id, rec.ifname),
                            Err(_) => "another attachment".to_string(),
                        }
                    }
                    _ => "another attachment".to_string(),
                };
                return Err(PluginError::RequestedIp(format!(
                    "requested ip {ip} is already allocated to {owner}"
                )));
            }
        }
        Err(PluginError::StoreData(format!(
            "allocating an address on node {} kept conflicting with concurrent allocations ({MAX_ATTEMPTS} attempts)",
            self.node
        )))
    }

    /// The lowest pod address of `cidr` without an address key.
    async fn first_free(&self, cidr: IpNet) -> Result<IpAddr, PluginError> {
        let prefix = format!("{ADDRESS_PREFIX}{}/", self.node);
        let used: HashSet<IpAddr> = self
            .store
            .range(&prefix)
            .await?
            .kvs
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(&prefix)?.parse().ok())
            .collect();
        let offsets = pod_offsets(cidr);
        let total = offsets.end().saturating_sub(*offsets.start()) + 1;
        for offset in offsets {
            match at_offset(cidr, offset) {
                Some(ip) if !used.contains(&ip) => return Ok(ip),
                Some(_) => {}
                None => break,
            }
        }
        Err(PluginError::Exhausted(format!(
            "pod cidr {cidr} of node {} is exhausted: all {total} pod addresses are allocated",
            self.node
        )))
    }

    /// Frees the attachment's address (both keys, one transaction). Returns the address
    /// it held; `None` when it held none (a repeated DEL), which is success.
    pub async fn release(
        &self,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<IpAddr>, PluginError> {
        let att_key = attachment_key(&self.node, container_id, ifname);
        for _ in 0..MAX_ATTEMPTS {
            let Some(att) = self.store.get(&att_key).await? else {
                return Ok(None);
            };
            let ip = parse_ip(&att).ok();
            let mut compare = vec![Compare::mod_revision(&att_key, att.mod_revision)];
            let mut ops = vec![Op::delete(&att_key)];
            if let Some(ip) = ip {
                let ip_key = address_key(&self.node, ip);
                if let Some(kv) = self.store.get(&ip_key).await? {
                    let owned = serde_json::from_slice::<AddressRecord>(&kv.value)
                        .map(|r| r.container_id == container_id && r.ifname == ifname)
                        .unwrap_or(false);
                    if owned {
                        compare.push(Compare::mod_revision(&ip_key, kv.mod_revision));
                        ops.push(Op::delete(&ip_key));
                    }
                }
            }
            let r = self
                .store
                .txn(Txn::new().when(compare).and_then(ops))
                .await?;
            if r.succeeded {
                tracing::debug!(node = %self.node, ?ip, container_id, ifname, "released");
                return Ok(ip);
            }
        }
        Err(PluginError::StoreData(format!(
            "releasing the address of {container_id}/{ifname} kept conflicting ({MAX_ATTEMPTS} attempts)"
        )))
    }

    /// Every attachment of this node that holds an address.
    pub async fn attachments(&self) -> Result<Vec<Held>, PluginError> {
        let prefix = format!("{ATTACHMENT_PREFIX}{}/", self.node);
        let r = self.store.range(&prefix).await?;
        Ok(r.kvs
            .iter()
            .filter_map(|kv| {
                let rest = kv.key.strip_prefix(&prefix)?;
                let (cid, ifname) = rest.split_once('/')?;
                Some(Held {
                    container_id: cid.to_string(),
                    ifname: ifname.to_string(),
                    ip: parse_ip(kv).ok(),
                })
            })
            .collect())
    }

    /// Deletes address keys whose attachment key is gone (never made by this plugin's
    /// transactions, but possible after manual edits); returns how many.
    pub async fn sweep_orphans(&self) -> Result<usize, PluginError> {
        let prefix = format!("{ADDRESS_PREFIX}{}/", self.node);
        let mut swept = 0;
        for kv in self.store.range(&prefix).await?.kvs {
            let Ok(rec) = serde_json::from_slice::<AddressRecord>(&kv.value) else {
                continue;
            };
            let att_key = attachment_key(&self.node, &rec.container_id, &rec.ifname);
            let r = self
                .store
                .txn(
                    Txn::new()
                        .when([
                            Compare::mod_revision(&kv.key, kv.mod_revision),
                            Compare::absent(&att_key),
                        ])
                        .and_then([Op::delete(&kv.key)]),
                )
                .await?;
            swept += usize::from(r.succeeded);
        }
        Ok(swept)
    }
}

fn parse_ip(kv: &KeyValue) -> Result<IpAddr, PluginError> {
    std::str::from_utf8(&kv.value)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            PluginError::StoreData(format!(
                "store key {} should hold an ip address, found {:?}",
                kv.key,
                String::from_utf8_lossy(&kv.value)
            ))
        })
}

/// A requested address must be a pod address of the node's CIDR.
fn check_requested(cidr: IpNet, ip: IpAddr) -> Result<(), PluginError> {
    let offsets = pod_offsets(cidr);
    match offset_of(cidr, ip) {
        None => Err(PluginError::RequestedIp(format!(
            "requested ip {ip} is outside the node's pod cidr {cidr}"
        ))),
        Some(o) if !offsets.contains(&o) => Err(PluginError::RequestedIp(format!(
            "requested ip {ip} is reserved in pod cidr {cidr} (network, gateway or broadcast address)"
        ))),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let s = podnet_store::embedded::SqliteStore::open(&dir.path().join("s.db")).unwrap();
        (dir, Arc::new(s))
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn allocate_release_exhaust() {
        let (_d, s) = store();
        let ipam = Ipam::new(s.clone(), "n1");
        let net: IpNet = "10.1.0.0/29".parse().unwrap();
        rt().block_on(async {
            let a = ipam.allocate(net, "c1", "eth0", None, None).await.unwrap();
            assert_eq!(a.ip.to_string(), "10.1.0.2");
            assert!(a.new);
            let again = ipam.allocate(net, "c1", "eth0", None, None).await.unwrap();
            assert_eq!(
                again,
                Allocation {
                    ip: a.ip,
                    new: false
                }
            );
            let b = ipam.allocate(net, "c2", "eth0", None, None).await.unwrap();
            assert_eq!(b.ip.to_string(), "10.1.0.3");
            let req: IpAddr = "10.1.0.6".parse().unwrap();
            let c = ipam
                .allocate(net, "c3", "eth0", None, Some(req))
                .await
                .unwrap();
            assert_eq!(c.ip, req);
            let e = ipam
                .allocate(net, "c4", "eth0", None, Some(req))
                .await
                .unwrap_err();
            assert!(
                e.to_string().contains("already allocated to container c3"),
                "{e}"
            );
            let e = ipam
                .allocate(net, "c4", "eth0", None, Some("10.1.0.7".parse().unwrap()))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("reserved"), "{e}");
            let e = ipam
                .allocate(net, "c4", "eth0", None, Some("10.2.0.2".parse().unwrap()))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("outside"), "{e}");
            ipam.allocate(net, "c4", "eth0", None, None).await.unwrap();
            ipam.allocate(net, "c5", "eth0", None, None).await.unwrap();
            let e = ipam
                .allocate(net, "c6", "eth0", None, None)
                .await
                .unwrap_err();
            assert!(matches!(e, PluginError::Exhausted(_)), "{e}");
            assert_eq!(ipam.release("c1", "eth0").await.unwrap(), Some(a.ip));
            assert_eq!(ipam.release("c1", "eth0").await.unwrap(), None);
            assert!(s.get(&address_key("n1", a.ip)).await.unwrap().is_none());
            assert!(s
                .get(&attachment_key("n1", "c1", "eth0"))
                .await
                .unwrap()
                .is_none());
            let d = ipam.allocate(net, "c6", "eth0", None, None).await.unwrap();
            assert_eq!(d.ip, a.ip);
            assert_eq!(ipam.attachments().await.unwrap().len(), 5);
        });
    }
}
