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

fn main() -> ExitCode {
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
