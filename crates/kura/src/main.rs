//! The `kura` binary: see the `kura` library crate for the commands.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    kura::main_entry()
}
