//! The agent process SIGKILLed mid-stream and started again on the same journal: the controller
//! sees every `seq` from 1 to the last one, with no gap, and the numbering goes on where it was.
#![cfg(unix)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use roomready_protocol::{DeviceId, ResponseStatus};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_tests::controller::{Controller, Seen};
use roomready_tests::{WAIT, agent_exe};
use tokio::process::{Child, Command};

fn start_agent(config: &Path) -> Child {
    Command::new(agent_exe())
        .args(["run", "--config", config.to_str().expect("utf-8 path")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start roomready-agent")
}

/// The highest `n` such that every seq in 1..=n was seen, and the highest seen.
fn coverage(seen: &Seen) -> (u64, u64) {
    (seen.contiguous(), seen.seqs().last().copied().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_leaves_no_gap() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("facts.toml"),
        "kind = \"teams_rooms_windows\"\napp_version = \"4.0.51.0\"\n[registry]\n",
    )
    .expect("facts");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "broker_url = \"mqtt://{}:{}\"\ndevice_id = \"mtr-kill\"\nfacts_file = \"facts.toml\"\n\
             endpoints = []\nreport_interval_secs = 3600\n",
            broker.url().host,
            broker.url().port
        ),
    )
    .expect("config");
    let device = DeviceId::new("mtr-kill").expect("valid id");
    let mut controller = Controller::connect(&broker.url(), &device, "controller-kill", false);
    controller
        .wait_until(WAIT, |s| s.subscribed)
        .await
        .unwrap_or_else(|s| panic!("controller not subscribed: {s:?}"));

    // A steady stream of check_now commands: each gives a response, a state and an event.
    let sender = Controller::connect(&broker.url(), &device, "controller-kill-sender", false);
    let stream = tokio::spawn(async move {
        for n in 0.. {
            sender
                .command(format!(
                    r#"{{"schema":"roomready.command/1","id":"k-{n}","command":"check_now"}}"#
                ))
                .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    let mut agent = start_agent(&config);
    let before = controller
        .wait_until(WAIT, |s| coverage(s).1 >= 90)
        .await
        .unwrap_or_else(|s| panic!("no traffic before the kill: {:?}", coverage(&s)));
    agent.start_kill().expect("SIGKILL the agent");
    agent.wait().await.expect("the agent is gone");
    let top_before = coverage(&before).1;

    let mut agent = start_agent(&config);
    let after = controller
        .wait_until(WAIT, |s| coverage(s).1 >= top_before + 60)
        .await
        .unwrap_or_else(|s| panic!("no traffic after the restart: {:?}", coverage(&s)));
    stream.abort();
    let top = coverage(&after).1;
    let done = controller
        .wait_until(WAIT, |s| coverage(s).0 >= top)
        .await
        .unwrap_or_else(|s| {
            let mut seqs = s.seqs();
            seqs.dedup();
            let missing: Vec<u64> = (1..=top)
                .filter(|n| seqs.binary_search(n).is_err())
                .collect();
            panic!("seqs missing after SIGKILL and restart: {missing:?}")
        });
    // The restarted agent numbered on from the journal: its first message follows the last one
    // issued before the kill (it may re-send some of those first: duplicates are allowed).
    assert!(top > top_before, "numbering went on: {top} > {top_before}");
    assert_eq!(
        done.reused_seqs(),
        Vec::<u64>::new(),
        "no seq names two messages"
    );
    let all = done.seqs();
    let mut unique = all.clone();
    unique.dedup();
    println!(
        "SIGKILL at seq {top_before}: {} messages, {} unique, {} duplicates",
        all.len(),
        unique.len(),
        all.len() - unique.len()
    );
    assert!(
        done.responses
            .iter()
            .all(|r| r.id == "iv-1" || r.status == ResponseStatus::Accepted)
    );
    // Exactly once across a restart, with the stream stopped (the ledger keeps the last 256
    // ids; a busy stream would push an old one out): a request answered before a SIGKILL, sent
    // again with other arguments, is answered from the ledger after the restart, not run again.
    controller
        .command(
            r#"{"schema":"roomready.command/1","id":"iv-1","command":"set_interval","seconds":3600}"#,
        )
        .await;
    controller
        .wait_until(WAIT, |s| !s.answers("iv-1").is_empty())
        .await
        .unwrap_or_else(|s| panic!("iv-1 not answered: {} responses", s.responses.len()));
    agent.start_kill().expect("SIGKILL the agent");
    agent.wait().await.expect("the agent is gone");
    let online_before = controller.seen().onlines();
    let mut agent = start_agent(&config);
    let top_iv = coverage(&controller.seen()).1;
    // Subscribed again (its `online` follows the subscription): a command sent earlier would
    // reach no one, as with any MQTT 3.1.1 clean session.
    controller
        .wait_until(WAIT, |s| s.onlines() > online_before)
        .await
        .unwrap_or_else(|s| panic!("the restarted agent did not come online: {:?}", s.statuses));
    controller
        .command(
            r#"{"schema":"roomready.command/1","id":"iv-1","command":"set_interval","seconds":7}"#,
        )
        .await;
    let again = controller
        .wait_until(WAIT, |s| {
            let mut seqs: Vec<u64> = s.answers("iv-1").iter().map(|r| r.seq).collect();
            seqs.dedup();
            seqs.len() >= 2
        })
        .await
        .unwrap_or_else(|s| panic!("iv-1 not answered again: {:?}", s.answers("iv-1")));
    let answers = again.answers("iv-1");
    let last = answers.last().expect("two answers");
    assert!(
        last.seq > top_iv,
        "answered by the restarted agent: {answers:?}"
    );
    assert_eq!(
        last.message.as_deref(),
        Some("report interval is now 3600 s"),
        "the remembered answer, not a second run: {answers:?}"
    );
    agent.start_kill().expect("stop the agent");
    let _ = agent.wait().await;
}
