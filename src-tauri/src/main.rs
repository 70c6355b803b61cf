//! `switchyard-desktop`: the Switchyard window and tray around a gateway
//! that runs in this process. Given a subcommand (`key`, `secret`, `serve`,
//! …) it is the core's command line instead, so one installed binary does
//! both. Everything that is not window, tray or process life is in the
//! `switchyard` crate.

mod shell;
mod tray;
mod window;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use switchyard::cli::{Cli, Command, Global};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard-desktop",
    version,
    about = "Switchyard: the window and tray of your personal multi-model AI gateway. \
             With a subcommand, the same command line as `switchyard`."
)]
struct Args {
    #[command(flatten)]
    global: Global,
    /// Listen here instead of the config's server.listen (e.g. 127.0.0.1:0 for any free port)
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Run under the name `switchyard` (the .deb's `/usr/bin/switchyard` does
/// that), this binary is exactly the core's command line: its help, its
/// name, no window without a subcommand.
fn invoked_as_cli(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|name| name == "switchyard")
}

fn main() -> ExitCode {
    if invoked_as_cli(std::env::args_os().next().as_deref()) {
        return switchyard::cli::main();
    }
    let args = Args::parse();
    let Some(command) = args.command else {
        return shell::run(args.global, args.listen);
    };
    if args.listen.is_some() {
        Args::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--listen belongs to the window; for the gateway alone use `serve --listen ADDR`",
            )
            .exit();
    }
    let cli = Cli {
        global: args.global,
        command: Some(command),
    };
    match switchyard::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_name_switchyard_makes_it_the_command_line() {
        let cli = |a: &str| invoked_as_cli(Some(std::ffi::OsStr::new(a)));
        assert!(cli("switchyard"));
        assert!(cli("/usr/bin/switchyard"));
        assert!(!cli("switchyard-desktop"));
        assert!(!cli("/usr/bin/switchyard-desktop"));
        assert!(!cli("/opt/switchyard/switchyard-desktop"));
        assert!(!invoked_as_cli(None));
    }

    #[test]
    fn no_subcommand_opens_the_window_with_the_given_paths() {
        let args = Args::try_parse_from([
            "switchyard-desktop",
            "--config",
            "/tmp/s.toml",
            "--data-dir",
            "/tmp/d",
            "--listen",
            "127.0.0.1:0",
        ])
        .expect("valid arguments");
        assert!(args.command.is_none());
        assert_eq!(args.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(
            args.global.config.as_deref(),
            Some(std::path::Path::new("/tmp/s.toml"))
        );
    }

    #[test]
    fn a_subcommand_is_the_core_command_line() {
        let args = Args::try_parse_from(["switchyard-desktop", "key", "list"]).expect("valid");
        assert!(matches!(args.command, Some(Command::Key { .. })));
        let args = Args::try_parse_from(["switchyard-desktop", "serve", "--listen", "127.0.0.1:0"])
            .expect("valid");
        assert!(matches!(
            args.command,
            Some(Command::Serve { listen: Some(_) })
        ));
    }
}
