//! The `podnet-cni` plugin executable: run by a container runtime with the `CNI_*`
//! environment and the network configuration on stdin. See docs/cni.md.

fn main() {
    std::process::exit(podnet_cni::plugin::main());
}
