//! Runs a built-in the way `podnet image <argv...>` does, for trying one by hand:
//! `cargo run -p podnet-images --example image -- agnhost netexec --http-port=8080`.

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    podnet_images::main_from_args(&argv)
}
