//! Test helper: behaves as `podnet image <argv...>` does (runs a built-in image with
//! `podnet_images::main_from_args`), so the runtime's tests need no CLI.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((sub, rest)) if sub == "image" => podnet_images::main_from_args(rest),
        _ => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "usage: podnet-image-shim image <argv...>: expected the subcommand \"image\", found {:?}",
                args.first()
            );
            ExitCode::from(2)
        }
    }
}
