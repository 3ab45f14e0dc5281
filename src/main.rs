fn main() -> std::process::ExitCode {
    hsmca::cli::main()
}
