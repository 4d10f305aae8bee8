//! `roomready-release`: the publisher of agent updates, installed without the simulator.
//! `keygen` makes the signing key pair; `release` packs, signs and publishes an agent binary
//! into a feed directory that any static web server can serve.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use roomready_feed::cli::{self, KeygenArgs, ReleaseArgs, exit};

#[derive(Parser)]
#[command(
    name = "roomready-release",
    version,
    about = "Sign and publish roomready-agent updates into a feed.",
    after_help = "Exit codes: 0 done, 1 the command failed (named on stderr), 64 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Keygen(KeygenArgs),
    Release(ReleaseArgs),
}

fn main() -> ExitCode {
    let cli: Cli = match cli::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let mut stdout = std::io::stdout().lock();
    let done = match &cli.command {
        Command::Keygen(args) => cli::run_keygen(args, &mut stdout),
        Command::Release(args) => cli::run_release(args, &mut stdout),
    };
    match done {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("roomready-release: {}", chain(&e));
            ExitCode::from(exit::FAILED)
        }
    }
}

/// The error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
