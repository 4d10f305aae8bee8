//! The release binary given hostile files where it expects a facts file, a registry dump, a
//! config, a password or a journal directory: a FIFO with no writer, a device that never ends, a
//! file over its limit, a file where a directory belongs, a symbolic link loop. Each is refused
//! at once with an error naming the file and what is wrong, and the documented exit code.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use roomready_agent::files;

const AGENT: &str = env!("CARGO_BIN_EXE_roomready-agent");
/// How long a refusal may take before the test calls it a hang (a blocking read never returns).
const HANG: Duration = Duration::from_secs(20);

/// Runs the agent with `args`, killing it and failing when it has not exited within [`HANG`].
fn agent(args: &[&str]) -> Output {
    let child = Command::new(AGENT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run roomready-agent");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HANG) {
        Ok(output) => output.expect("wait for roomready-agent"),
        Err(_) => {
            // SAFETY: kill on the child's pid, which is not reaped while the thread waits on it.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("roomready-agent {args:?} still running after {HANG:?}: it blocked on a file");
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    path
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

const FACTS: &str =
    "kind = \"teams_rooms_windows\"\napp_version = \"4.0.105.0\"\nos_build = \"19045.4894\"\n";

#[test]
fn check_refuses_a_facts_file_that_is_not_a_regular_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipe = fifo(dir.path(), "facts.toml");
    for (path, what) in [
        (utf8(&pipe), "it is a FIFO (named pipe), not a regular file"),
        ("/dev/zero", "it is a device, not a regular file"),
        (utf8(dir.path()), "it is a directory, not a regular file"),
    ] {
        let out = agent(&["check", "--facts", path]);
        assert_eq!(out.status.code(), Some(66), "{path}: {}", stderr(&out));
        let message = stderr(&out);
        assert!(
            message.contains(&format!("{path}: cannot read facts file: {what}")),
            "{message}"
        );
    }
}

#[test]
fn check_refuses_a_facts_file_over_its_limit_naming_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("facts.toml");
    // Valid TOML all the way: only the size is wrong.
    let mut text = String::from(FACTS);
    while text.len() as u64 <= files::FACTS.bytes {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, &text).expect("write");
    let out = agent(&["check", "--facts", utf8(&path)]);
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(
            "cannot read facts file: it is larger than 1 MiB, the limit for a facts file"
        ),
        "{message}"
    );
}

#[test]
fn check_refuses_a_registry_dump_that_is_a_fifo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = dir.path().join("facts.toml");
    std::fs::write(&facts, FACTS).expect("write");
    let pipe = fifo(dir.path(), "dump.txt");
    let out = agent(&[
        "check",
        "--facts",
        utf8(&facts),
        "--registry-dump",
        utf8(&pipe),
    ]);
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("it is a FIFO (named pipe), not a regular file"),
        "{}",
        stderr(&out)
    );
}

/// A config for `run` whose broker is never reached: every case here fails before connecting.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    std::fs::write(dir.join("facts.toml"), FACTS).expect("write facts");
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "broker_url = \"mqtt://127.0.0.1:9\"\ndevice_id = \"mtr-1\"\nfacts_file = \"facts.toml\"\n{extra}"
        ),
    )
    .expect("write config");
    path
}

#[test]
fn run_refuses_a_config_or_password_that_is_not_a_regular_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipe = fifo(dir.path(), "agent.toml");
    let out = agent(&["run", "--config", utf8(&pipe)]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("cannot read config file: it is a FIFO (named pipe), not a regular file"),
        "{}",
        stderr(&out)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "username = \"u\"\npassword_file = \"/dev/zero\"\n",
    );
    let out = agent(&["run", "--config", utf8(&config)]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("key \"password_file\""), "{message}");
    assert!(
        message.contains("cannot read /dev/zero: it is a device, not a regular file"),
        "{message}"
    );
}

#[test]
fn run_says_what_is_in_the_way_of_the_journal_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("journal"), b"").expect("a file where the journal goes");
    let config = write_config(dir.path(), "journal_dir = \"journal\"\n");
    let out = agent(&["run", "--config", utf8(&config)]);
    assert_eq!(out.status.code(), Some(74), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("it exists and is not a directory (a file is in its place)"),
        "{}",
        stderr(&out)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("loop", dir.path().join("loop")).expect("a link to itself");
    let config = write_config(dir.path(), "journal_dir = \"loop\"\n");
    let out = agent(&["run", "--config", utf8(&config)]);
    assert_eq!(out.status.code(), Some(74), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("it is a symbolic link that loops or leads nowhere"),
        "{}",
        stderr(&out)
    );
}
