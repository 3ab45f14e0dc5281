#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hsmca::cli::main()
}
