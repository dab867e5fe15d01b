//! Builds the `podnet` CNI shim (`shim/main.rs`: no standard library, no libc) with
//! `rustc` directly, because its panic strategy and link flags differ from the
//! workspace's. The result's path is `env!("PODNET_CNI_SHIM")` for the crate (the
//! `podnet-cni` binary embeds it for `podnet-cni install`); empty when the target is
//! not x86_64 Linux, the only one the shim's raw system calls are written for.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "shim/main.rs";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !(target.starts_with("x86_64-") && target.contains("-linux-")) {
        println!("cargo:warning=the podnet CNI shim is x86_64 Linux only; not built for {target}");
        println!("cargo:rustc-env=PODNET_CNI_SHIM=");
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("podnet-cni-shim");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "podnet_cni_shim",
            "--crate-type",
            "bin",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=0",
            "-C",
            "lto=fat",
        ])
        .args(["-C", "relocation-model=static", "-C", "strip=symbols"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-C", "link-arg=-static"])
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status()
        .expect("running rustc for the CNI shim");
    assert!(status.success(), "building the CNI shim ({src}) failed");
    println!("cargo:rustc-env=PODNET_CNI_SHIM={}", out.display());
}
