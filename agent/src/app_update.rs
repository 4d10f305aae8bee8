//! The Teams Rooms app update path: the agent does not update the app itself (Microsoft ships it
//! through the Store, Windows Update or an admin's script), but it can run the update an admin
//! configured (`app_update_command`) when the controller sends `update_app`, bounded by a
//! timeout, and report how it went. [`AppUpdater`] is the seam: a command on a device
//! ([`CommandUpdater`]), a simulated update in the simulator.

pub(crate) mod settings;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

/// The default bound on an app update run.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Why an app update did not succeed; the `reason` codes travel in the command response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppUpdateError {
    /// The command could not be started.
    #[error("cannot start {program}: {detail}")]
    Spawn { program: String, detail: String },
    /// It ran longer than its timeout and was killed.
    #[error("no result within {} s; the command was killed", .0.as_secs_f64())]
    Timeout(Duration),
    /// It ended with a failure status.
    #[error("exited with {status}{}", tail(.output))]
    Failed { status: String, output: String },
}

impl AppUpdateError {
    /// The machine-readable reason for the command response.
    pub fn reason(&self) -> &'static str {
        match self {
            AppUpdateError::Spawn { .. } => "spawn_failed",
            AppUpdateError::Timeout(_) => "timeout",
            AppUpdateError::Failed { .. } => "exit_status",
        }
    }
}

fn tail(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// Runs an app update; the `Ok` text says what happened, for the response's message.
pub trait AppUpdater: Send + Sync + 'static {
    fn update(&self) -> Pin<Box<dyn Future<Output = Result<String, AppUpdateError>> + Send + '_>>;
}

/// A shareable updater, as the agent's settings hold it.
#[derive(Clone)]
pub struct AppUpdate(pub Arc<dyn AppUpdater>);

impl fmt::Debug for AppUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppUpdate(..)")
    }
}

/// The admin's update command, run without a shell: `argv[0]` with the rest as arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandUpdater {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// The last non-empty line of `bytes`, at most 200 characters: what a failing script said.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

impl AppUpdater for CommandUpdater {
    fn update(&self) -> Pin<Box<dyn Future<Output = Result<String, AppUpdateError>> + Send + '_>> {
        Box::pin(async move {
            let program = self.argv.first().cloned().unwrap_or_default();
            let child = tokio::process::Command::new(&program)
                .args(self.argv.iter().skip(1))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| AppUpdateError::Spawn {
                    program: program.clone(),
                    detail: e.to_string(),
                })?;
            // On timeout the future, and with it the child, is dropped: kill_on_drop kills it.
            let output = tokio::time::timeout(self.timeout, child.wait_with_output())
                .await
                .map_err(|_| AppUpdateError::Timeout(self.timeout))?
                .map_err(|e| AppUpdateError::Spawn {
                    program: program.clone(),
                    detail: e.to_string(),
                })?;
            if output.status.success() {
                let said = last_line(&output.stdout);
                Ok(if said.is_empty() {
                    format!("{program} exited 0")
                } else {
                    format!("{program} exited 0: {said}")
                })
            } else {
                let mut said = last_line(&output.stderr);
                if said.is_empty() {
                    said = last_line(&output.stdout);
                }
                Err(AppUpdateError::Failed {
                    status: output.status.to_string(),
                    output: said,
                })
            }
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> CommandUpdater {
        CommandUpdater {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout,
        }
    }

    #[tokio::test]
    async fn success_failure_timeout_and_spawn_errors() {
        let ok = sh(
            "echo updating; echo done: 5.2.115.0",
            Duration::from_secs(10),
        )
        .update()
        .await;
        assert_eq!(ok, Ok("/bin/sh exited 0: done: 5.2.115.0".to_owned()));

        let failed = sh("echo 'no network' >&2; exit 3", Duration::from_secs(10))
            .update()
            .await
            .expect_err("exit 3");
        assert_eq!(failed.reason(), "exit_status");
        assert!(
            failed.to_string().contains("3") && failed.to_string().contains("no network"),
            "{failed}"
        );

        let hung = sh("exec sleep 60", Duration::from_millis(200))
            .update()
            .await
            .expect_err("killed");
        assert_eq!(hung, AppUpdateError::Timeout(Duration::from_millis(200)));
        assert_eq!(hung.reason(), "timeout");

        let missing = CommandUpdater {
            argv: vec!["/nonexistent/update-app".into()],
            timeout: Duration::from_secs(1),
        }
        .update()
        .await
        .expect_err("missing");
        assert_eq!(missing.reason(), "spawn_failed");
        assert!(
            missing.to_string().contains("/nonexistent/update-app"),
            "{missing}"
        );
    }
}
