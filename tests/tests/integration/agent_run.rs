//! `roomready-agent run` as a process against the simulator's embedded broker, watched by its
//! dashboard: it reports, probes its endpoints, and goes offline cleanly on SIGTERM with plain
//! (colourless) logs on a pipe.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use roomready_protocol::{Presence, StatusReason, TopicPrefix, Verdict, codes};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::dashboard::Dashboard;
use roomready_testkit::openssl::{OpensslServer, need_openssl};
use roomready_testkit::pki::TestCert;
use roomready_tests::agent_exe;

const WAIT: Duration = Duration::from_secs(20);

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_then_goes_offline_on_sigterm() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "facts.toml",
        "kind = \"teams_rooms_windows\"\napp_version = \"4.0.51.0\"\n",
    );
    let config = write(
        dir.path(),
        "agent.toml",
        &format!(
            "broker_url = \"{}\"\ndevice_id = \"cli-1\"\nfacts_file = \"facts.toml\"\nendpoints = []\n",
            broker.url()
        ),
    );
    let mut dashboard = Dashboard::connect(&broker.url(), &TopicPrefix::default());
    // A terminal type that has colours, and no NO_COLOR: the logs still go to a pipe, so they
    // must be plain text.
    let child = tokio::process::Command::new(agent_exe())
        .args(["run", "--config", config.to_str().expect("utf-8")])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the agent");

    let view = dashboard
        .wait_until(WAIT, |v| {
            v.devices.values().any(|d| {
                d.state.is_some()
                    && d.status
                        .as_ref()
                        .is_some_and(|s| s.status == Presence::Online)
            })
        })
        .await
        .unwrap_or_else(|t| panic!("no state from the agent: {:?}", t.0));
    let state = view
        .devices
        .values()
        .find_map(|d| d.state.clone())
        .expect("state");
    assert_eq!(state.device.as_str(), "cli-1");
    assert_eq!(state.verdict, Verdict::NotReady);
    assert_eq!(state.seq, 1, "the first message of a fresh agent");
    assert_eq!(state.findings[0].code, codes::TLS12_APP_TOO_OLD);

    let pid = libc::pid_t::try_from(child.id().expect("running")).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("agent exits after SIGTERM")
        .expect("wait");
    assert_eq!(output.status.code(), Some(0));
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("journal opened"), "{logs}");
    assert!(
        !logs.contains('\x1b'),
        "no colour codes in logs to a pipe: {logs:?}"
    );

    let view = dashboard
        .wait_until(WAIT, |v| {
            v.devices.values().any(|d| {
                d.status
                    .as_ref()
                    .is_some_and(|s| s.status == Presence::Offline)
            })
        })
        .await
        .unwrap_or_else(|t| panic!("no offline status: {:?}", t.0));
    let status = view
        .devices
        .values()
        .find_map(|d| d.status.clone())
        .expect("status");
    assert_eq!(
        status.reason,
        Some(StatusReason::Shutdown),
        "clean stop, not the last will"
    );
    assert!(status.seq >= state.seq);
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_probes_the_configured_endpoints() {
    if !need_openssl("run_probes_the_configured_endpoints") {
        return;
    }
    let cert = TestCert::new();
    let server = OpensslServer::start(&cert, &["-tls1", "-cipher", "ALL:@SECLEVEL=0"]);
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "facts.toml",
        "kind = \"teams_rooms_windows\"\napp_version = \"4.0.105.0\"\n[registry]\n",
    );
    let config = write(
        dir.path(),
        "agent.toml",
        &format!(
            "broker_url = \"{}\"\ndevice_id = \"probe-1\"\nfacts_file = \"facts.toml\"\n\
             endpoints = [\"localhost:{}\"]\nca_file = {:?}\n",
            broker.url(),
            server.port,
            cert.ca_pem.to_str().expect("utf-8"),
        ),
    );
    let mut dashboard = Dashboard::connect(&broker.url(), &TopicPrefix::default());
    let mut child = tokio::process::Command::new(agent_exe())
        .args(["run", "--config", config.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the agent");
    let view = dashboard
        .wait_until(WAIT, |v| v.states_where(|_| true) == 1)
        .await
        .unwrap_or_else(|t| panic!("no state: {:?}", t.0));
    let state = view
        .devices
        .values()
        .find_map(|d| d.state.clone())
        .expect("state");
    assert_eq!(state.endpoints.len(), 1, "{state:?}");
    assert_eq!(state.verdict, Verdict::NotReady);
    assert!(
        state
            .findings
            .iter()
            .any(|f| f.code == codes::ENDPOINT_NO_TLS12)
    );
    let _ = child.kill().await;
    broker.stop().await.expect("broker stops");
}
