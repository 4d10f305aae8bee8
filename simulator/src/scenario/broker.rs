//! The broker a scenario run manages, stopped and started again for `broker_down`: the embedded
//! broker in this process, or the same broker in a child process (`roomready-sim broker`).
//!
//! Why a child process at all: an in-process broker holds the server side of every device
//! connection in the same file table as the devices' client sides, so 10,000 devices need more
//! than 20,000 descriptors, above the hard limit of many machines (20,000 here). In a child
//! process each side has its own table. The runner picks the child when the fleet would not fit
//! (see [`fits_in_process`]) and it knows the `roomready-sim` executable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::broker::EmbeddedBroker;

/// How long a child broker has to report its address, and to exit once asked.
const CHILD_TIMEOUT: Duration = Duration::from_secs(15);

/// Descriptors the process needs besides device and broker sockets (files, the dashboard, the
/// farm, probes in flight).
const SPARE_FDS: u64 = 512;

/// Where the broker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    InProcess,
    /// In a child process: `EXE broker --bind ADDR [--persist DIR]`.
    Child(PathBuf),
}

/// Why the broker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ManagedBrokerError {
    #[error(transparent)]
    Embedded(#[from] crate::broker::BrokerError),
    #[error("the broker process ({exe}) could not start: {reason}")]
    Child { exe: String, reason: String },
}

enum Running {
    InProcess(EmbeddedBroker),
    /// Boxed: a child process handle is large next to the broker's.
    Child(Box<Child>),
}

/// A broker on a fixed loopback address that can be stopped and started again there.
pub struct ManagedBroker {
    placement: Placement,
    addr: SocketAddr,
    /// Where sessions and queued messages persist across a restart (`None`: in memory).
    storage: Option<PathBuf>,
    running: Option<Running>,
}

/// Whether `devices` connections, both ends in this process, fit under `limit` descriptors.
pub fn fits_in_process(devices: u64, limit: u64) -> bool {
    devices.saturating_mul(2).saturating_add(SPARE_FDS) <= limit
}

impl ManagedBroker {
    /// Starts a broker on a free loopback port.
    pub async fn start(
        placement: Placement,
        storage: Option<PathBuf>,
    ) -> Result<ManagedBroker, ManagedBrokerError> {
        let mut broker = ManagedBroker {
            placement,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage,
            running: None,
        };
        broker.start_again().await?;
        Ok(broker)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts the stopped broker on its address (the first start picks the port).
    pub async fn start_again(&mut self) -> Result<(), ManagedBrokerError> {
        if self.running.is_some() {
            return Ok(());
        }
        let (running, addr) = match &self.placement {
            Placement::InProcess => {
                let broker = EmbeddedBroker::start_at(self.addr, self.storage.as_deref()).await?;
                let addr = broker.addr();
                (Running::InProcess(broker), addr)
            }
            Placement::Child(exe) => {
                let (child, addr) = spawn_child(exe, self.addr, self.storage.as_deref()).await?;
                (Running::Child(Box::new(child)), addr)
            }
        };
        self.addr = addr;
        self.running = Some(running);
        Ok(())
    }

    /// Stops the broker (its connections close; with storage, sessions are kept on disk).
    pub async fn stop(&mut self) {
        match self.running.take() {
            None => {}
            Some(Running::InProcess(broker)) => {
                if let Err(e) = broker.stop().await {
                    tracing::warn!(%e, "the embedded broker did not stop cleanly");
                }
            }
            Some(Running::Child(mut child)) => {
                // Closing its stdin asks it to stop; it exits once the broker has.
                drop(child.stdin.take());
                match tokio::time::timeout(CHILD_TIMEOUT, child.wait()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(%e, "the broker process could not be waited for"),
                    Err(_) => {
                        tracing::warn!("the broker process did not stop in time: killing it");
                        let _ = child.kill().await;
                    }
                }
            }
        }
    }
}

/// Starts `exe broker --bind ADDR [--persist DIR]` and reads the address it reports.
async fn spawn_child(
    exe: &Path,
    addr: SocketAddr,
    storage: Option<&Path>,
) -> Result<(Child, SocketAddr), ManagedBrokerError> {
    let failed = |reason: String| ManagedBrokerError::Child {
        exe: exe.display().to_string(),
        reason,
    };
    let mut command = Command::new(exe);
    command
        .arg("broker")
        .arg("--bind")
        .arg(addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(dir) = storage {
        command.arg("--persist").arg(dir);
    }
    let mut child = command.spawn().map_err(|e| failed(e.to_string()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| failed("no stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(CHILD_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| failed(format!("no address within {}s", CHILD_TIMEOUT.as_secs())))?
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed("it exited before reporting its address".into()))?;
    let addr = line
        .strip_prefix("listening ")
        .and_then(|a| a.trim().parse().ok())
        .ok_or_else(|| failed(format!("unexpected first line {line:?}")))?;
    Ok((child, addr))
}

/// `roomready-sim broker`: the embedded broker on `bind` until stdin closes (or Ctrl-C), its
/// address printed first as `listening ADDR`.
pub async fn serve(bind: SocketAddr, persist: Option<PathBuf>) -> Result<(), ManagedBrokerError> {
    use std::io::Write as _;
    use tokio::io::AsyncReadExt as _;
    let broker = EmbeddedBroker::start_at(bind, persist.as_deref()).await?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening {}", broker.addr());
        let _ = out.flush();
    }
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 256];
    loop {
        tokio::select! {
            read = stdin.read(&mut sink) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    broker.stop().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleets_that_fit() {
        assert!(fits_in_process(100, 1024));
        assert!(!fits_in_process(10_000, 20_000));
        assert!(fits_in_process(9_000, 20_000));
        assert!(!fits_in_process(u64::MAX, u64::MAX - 1));
    }

    #[tokio::test]
    async fn in_process_restarts_on_the_same_port() {
        let mut broker = ManagedBroker::start(Placement::InProcess, None)
            .await
            .expect("starts");
        let addr = broker.addr();
        assert_ne!(addr.port(), 0);
        broker.stop().await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "stopped"
        );
        broker.start_again().await.expect("starts again");
        assert_eq!(broker.addr(), addr);
        tokio::net::TcpStream::connect(addr)
            .await
            .expect("listening again");
        broker.stop().await;
    }
}
