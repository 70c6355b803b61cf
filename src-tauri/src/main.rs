//! `switchyard-desktop`: the desktop entry point. It shares the core's
//! command line; with no subcommand it runs the gateway.

fn main() -> std::process::ExitCode {
    switchyard::cli::main_defaulting_to_serve()
}
