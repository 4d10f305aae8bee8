//! `roomready-controller`: `run` the controller from a config file, or manage its users.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use roomready_controller::config::Config;
use roomready_controller::users::{Role, Users};

mod rollout_cmd;

/// Exit codes (BSD sysexits), shown in `--help`.
mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 64;
    pub const DATA_ERROR: u8 = 65;
    pub const NO_INPUT: u8 = 66;
    pub const SOFTWARE: u8 = 70;
    pub const CANT_CREATE: u8 = 73;
    pub const IO_ERROR: u8 = 74;
    pub const CONFIG: u8 = 78;

    pub const HELP: &str = "Exit codes: 0 ok, 64 usage error, 65 rollout refused (no device \
                            in its rings, another under way, a state that does not allow it), \
                            66 users file unreadable, 70 internal error, 73 users file not \
                            written, 74 database or listen address unusable, 78 bad config file";
}

#[derive(Parser)]
#[command(
    name = "roomready-controller",
    version,
    about = "The roomready controller: the fleet's dashboard, history, API and commands.",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Subscribe to the fleet and serve the dashboard until interrupted (Ctrl-C, SIGTERM).
    Run {
        /// The config file (controller.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Manage the dashboard's users (the users file).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Start, list, show, pause, resume or abort staged rollouts (in the database the config
    /// names; a running controller carries them out).
    Rollout {
        #[command(subcommand)]
        action: rollout_cmd::RolloutAction,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user; the password is asked for (twice) on a terminal, or read as the first line
    /// of standard input.
    Add {
        name: String,
        #[arg(long, value_parser = ["viewer", "operator"])]
        role: String,
        #[command(flatten)]
        file: UsersFile,
    },
    /// Remove a user.
    Remove {
        name: String,
        #[command(flatten)]
        file: UsersFile,
    },
    /// List the users and their roles.
    List {
        #[command(flatten)]
        file: UsersFile,
    },
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct UsersFile {
    /// The users file.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// The config file whose `users_file` to use.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    init_logging();
    let code = match cli.command {
        Command::Run { config } => run(&config),
        Command::User { action } => user(action),
        Command::Rollout { action } => rollout_cmd::run(action),
    };
    ExitCode::from(code)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

fn fail(code: u8, error: &anyhow::Error) -> u8 {
    eprintln!("roomready-controller: {error:#}");
    code
}

fn run(config_path: &Path) -> u8 {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roomready-controller: bad config: {e}");
            return exit::CONFIG;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                exit::SOFTWARE,
                &anyhow::Error::new(e).context("tokio runtime"),
            );
        }
    };
    runtime.block_on(async {
        // Listening for Ctrl-C and SIGTERM before the dashboard's address is printed.
        let stop = roomready_controller::shutdown_signal();
        let running = match roomready_controller::start(&config).await {
            Ok(running) => running,
            Err(e) => {
                let code = match &e {
                    roomready_controller::StartError::Users(
                        roomready_controller::users::UsersError::Read { .. },
                    ) => exit::NO_INPUT,
                    roomready_controller::StartError::Store(_)
                    | roomready_controller::StartError::Web(
                        roomready_controller::web::ServerError::Bind { .. },
                    ) => exit::IO_ERROR,
                    _ => exit::CONFIG,
                };
                return fail(code, &anyhow::Error::new(e));
            }
        };
        tracing::info!(
            url = running.url(),
            database = %roomready_controller::database_name(&config),
            broker = %config.broker.url,
            "serving the dashboard"
        );
        eprintln!("roomready-controller: dashboard at {}", running.url());
        stop.await;
        tracing::info!("stopping");
        running.stop().await;
        exit::OK
    })
}

fn users_path(file: &UsersFile) -> anyhow::Result<PathBuf> {
    match (&file.users, &file.config) {
        (Some(path), _) => Ok(path.clone()),
        (None, Some(config)) => Config::load(config)
            .map_err(anyhow::Error::new)?
            .users_file
            .with_context(|| format!("{} sets no users_file", config.display())),
        (None, None) => anyhow::bail!("give --users FILE or --config FILE"),
    }
}

fn user(action: UserAction) -> u8 {
    let file = match &action {
        UserAction::Add { file, .. }
        | UserAction::Remove { file, .. }
        | UserAction::List { file } => file,
    };
    let path = match users_path(file) {
        Ok(path) => path,
        Err(e) => return fail(exit::CONFIG, &e),
    };
    let mut users = match Users::load(&path) {
        Ok(users) => users,
        Err(e) => return fail(exit::NO_INPUT, &anyhow::Error::new(e)),
    };
    match action {
        UserAction::List { .. } => {
            for user in users.list() {
                println!("{}\t{}", user.name, user.role);
            }
            exit::OK
        }
        UserAction::Remove { name, .. } => {
            if let Err(e) = users.remove(&name) {
                return fail(exit::USAGE, &anyhow::Error::new(e));
            }
            match users.save(&path) {
                Ok(()) => {
                    eprintln!(
                        "roomready-controller: removed {name} from {}",
                        path.display()
                    );
                    exit::OK
                }
                Err(e) => fail(exit::CANT_CREATE, &anyhow::Error::new(e)),
            }
        }
        UserAction::Add { name, role, .. } => {
            let Some(role) = Role::parse(&role) else {
                return exit::USAGE;
            };
            let password = match read_password() {
                Ok(p) => p,
                Err(e) => return fail(exit::USAGE, &e),
            };
            if let Err(e) = users.add(&name, role, &password) {
                return fail(exit::USAGE, &anyhow::Error::new(e));
            }
            match users.save(&path) {
                Ok(()) => {
                    eprintln!(
                        "roomready-controller: added {name} ({role}) to {}",
                        path.display()
                    );
                    exit::OK
                }
                Err(e) => fail(exit::CANT_CREATE, &anyhow::Error::new(e)),
            }
        }
    }
}

/// The password: asked twice without echo on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .take_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = prompt("Password: ")?;
    let second = prompt("Again: ")?;
    anyhow::ensure!(first == second, "the two passwords differ");
    Ok(first)
}

trait TakeLine {
    fn take_line(&mut self, line: &mut String) -> std::io::Result<usize>;
}

impl<R: std::io::BufRead> TakeLine for R {
    /// One line of at most 4 KiB.
    fn take_line(&mut self, line: &mut String) -> std::io::Result<usize> {
        let mut limited = std::io::Read::take(self, 4096);
        limited.read_line(line)
    }
}

fn prompt(text: &str) -> anyhow::Result<String> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let _echo = EchoOff::new();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take_line(&mut line)
        .context("cannot read the password")?;
    eprintln!();
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Terminal echo off while it lives (Unix); elsewhere the password is echoed.
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> EchoOff {
        #[cfg(unix)]
        {
            // SAFETY: tcgetattr/tcsetattr on standard input with a zeroed termios to fill.
            unsafe {
                let mut term: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(libc::STDIN_FILENO, &mut term) == 0 {
                    let saved = term;
                    term.c_lflag &= !libc::ECHO;
                    libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term);
                    return EchoOff { saved: Some(saved) };
                }
            }
            EchoOff { saved: None }
        }
        #[cfg(not(unix))]
        EchoOff {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}
