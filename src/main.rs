//! The hsmca command: everything is in the library; this only calls it.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hsmca::main()
}
