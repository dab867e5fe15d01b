//! Node pod CIDRs, as kube-controller-manager's range allocator: blocks of
//! `nodeCIDRMaskSize` from the cluster CIDR, lowest free first; a podCIDR the user set
//! is claimed when it is such a block and free, otherwise reported on the Node.

use ipnet::IpNet;
use podnet_model::k8s_openapi::api::core::v1::Node;
use podnet_model::Kind;
use rand::Rng;

use super::claimer::Claimer;
use super::conditions::{
    set_node_condition, Problem, ALREADY_ALLOCATED, EXHAUSTED, INVALID, POD_CIDR_ALLOCATED,
};
use super::service::{uid_for, AllocPlan, Ctx, Planned};
use crate::alloc::ranges::{block, block_count};
use crate::alloc::{AllocKey, Allocations, Owner};

fn problem(reason: &'static str, message: String) -> Problem {
    Problem::new(POD_CIDR_ALLOCATED, reason, message)
}

pub type NodePlan = AllocPlan<Node>;

pub fn plan_node(
    node: &Node,
    ctx: &Ctx<'_>,
    allocs: &mut Allocations,
    rng: &mut impl Rng,
) -> Planned<Node> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let cluster = ctx.cfg.cluster_cidr;
    let len = ctx.cfg.node_cidr_mask_size;
    let mut new = node.clone();
    let uid = uid_for(
        Kind::Node,
        None,
        name,
        node.metadata.uid.as_ref(),
        allocs,
        rng,
    );
    new.metadata.uid = Some(uid.clone());
    let owner = Owner::new(Kind::Node, None, name, &uid);
    let mut c = Claimer::new(allocs, owner.clone());
    let mut problems = Vec::new();
    let mut spec = new.spec.take().unwrap_or_default();
    let requested = spec.pod_cidr.clone().filter(|s| !s.is_empty());
    let aligned = |net: &IpNet| {
        net.prefix_len() == len && net.network() == net.addr() && cluster.contains(net)
    };
    let chosen = match requested {
        Some(s) => match s.parse::<IpNet>() {
            Ok(net) if aligned(&net) => match c.claim(AllocKey::PodCidr(net)) {
                Ok(()) => Some(net),
                Err(Some(holder)) => {
                    problems.push(problem(
                        ALREADY_ALLOCATED,
                        format!("pod CIDR {net} is already allocated to {holder}"),
                    ));
                    None
                }
                Err(None) => None,
            },
            _ => {
                problems.push(problem(
                    INVALID,
                    format!("expected a /{len} block inside cluster CIDR {cluster}, found {s:?}"),
                ));
                None
            }
        },
        None => {
            let held = c
                .owned(|k| matches!(k, AllocKey::PodCidr(n) if aligned(n)))
                .into_iter()
                .find(|k| c.held_unused(k));
            let fresh = || {
                (0..block_count(cluster, len))
                    .filter_map(|i| block(cluster, len, i))
                    .map(AllocKey::PodCidr)
                    .find(|k| c.is_free(k))
            };
            match held.or_else(fresh) {
                Some(k @ AllocKey::PodCidr(net)) => c.claim(k).is_ok().then_some(net),
                Some(_) => None,
                None => {
                    problems.push(problem(
                        EXHAUSTED,
                        format!(
                            "expected a free /{len} block in cluster CIDR {cluster}, found none left"
                        ),
                    ));
                    None
                }
            }
        }
    };
    if c.busy {
        c.rollback();
        return Planned::Busy;
    }
    if let Some(net) = chosen {
        spec.pod_cidr = Some(net.to_string());
        spec.pod_cidrs = Some(vec![net.to_string()]);
    }
    new.spec = Some(spec);
    let had_status = node.status.is_some();
    let status = new.status.get_or_insert_with(Default::default);
    set_node_condition(&mut status.conditions, problems.first(), &ctx.now);
    if !had_status && new.status.as_ref().is_some_and(|s| s.conditions.is_none()) {
        new.status = None;
    }
    let object = (new != *node).then_some(new);
    Planned::Plan(c.finish(owner, object, problems, |k| {
        matches!(k, AllocKey::PodCidr(_))
    }))
}
