//! `roomready-controller user add|remove|list`, the binary an admin runs: users added with their
//! role and a password piped on standard input (or typed twice on a terminal, echo off), listed
//! without their hashes, removed; a duplicate, a bad role, a bad name, a bad password, a missing
//! or unusable users file are each a clear message and their own exit code, and leave the file
//! as it was.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use roomready_controller::users::{Role, Users};

const EXE: &str = env!("CARGO_BIN_EXE_roomready-controller");

/// Runs `roomready-controller ARGS` with `stdin` as its standard input (a pipe, so not a
/// terminal; `None`: /dev/null).
fn cli(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(EXE)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG")
        .spawn()
        .expect("the controller binary runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        // The command may exit before reading everything (a refused name): ignore a broken pipe.
        let _ = pipe.write_all(bytes);
    }
    child.wait_with_output().expect("the binary ends")
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `output` failed with `code` and a message holding `reason` on stderr, and wrote
/// nothing to stdout.
#[track_caller]
fn refused(output: &Output, code: i32, reason: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    assert!(stderr(output).contains(reason), "{}", stderr(output));
    assert_eq!(stdout(output), "", "nothing on stdout when refused");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("the users file")
}

#[test]
fn users_are_added_listed_and_removed_with_the_password_on_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("users");
    let file = path_arg(&users);

    // A missing file is no users yet.
    let empty = cli(&["user", "list", "--users", file], None);
    assert_eq!(empty.status.code(), Some(0), "{}", stderr(&empty));
    assert_eq!(stdout(&empty), "");

    // The first line of standard input is the password; its line end is not part of it, spaces
    // are.
    let added = cli(
        &[
            "user", "add", "alice", "--role", "operator", "--users", file,
        ],
        Some(b"correct horse battery\n"),
    );
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    assert_eq!(
        stderr(&added).trim_end(),
        format!("roomready-controller: added alice (operator) to {file}")
    );
    // Through the config's `users_file`, a CRLF line end, and lines after the first ignored.
    let config = dir.path().join("controller.toml");
    std::fs::write(
        &config,
        "broker_url = \"mqtt://127.0.0.1:1883\"\nusers_file = \"users\"\n",
    )
    .expect("config");
    let added = cli(
        &[
            "user",
            "add",
            "bob.b@example-1",
            "--role",
            "viewer",
            "--config",
            path_arg(&config),
        ],
        Some(b" battery staple \r\nsecond line\n"),
    );
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    // And a password without any line end.
    let added = cli(
        &["user", "add", "carol", "--role", "viewer", "--users", file],
        Some("pässwörd-ohne-zeilenende".as_bytes()),
    );
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));

    // What was typed is what logs in.
    let loaded = Users::load(&users).expect("the file the command wrote");
    assert_eq!(
        loaded.verify("alice", "correct horse battery"),
        Some(Role::Operator)
    );
    assert_eq!(
        loaded.verify("bob.b@example-1", " battery staple "),
        Some(Role::Viewer)
    );
    assert_eq!(loaded.verify("bob.b@example-1", "battery staple"), None);
    assert_eq!(
        loaded.verify("carol", "pässwörd-ohne-zeilenende"),
        Some(Role::Viewer)
    );
    let text = read(&users);
    assert!(!text.contains("horse"), "no password in the file: {text}");
    assert_eq!(text.matches("$argon2id$").count(), 3, "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&users)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner reads the hashes");
    }

    // The list: names and roles, in the order added, no hash.
    let listed = cli(&["user", "list", "--config", path_arg(&config)], None);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert_eq!(
        stdout(&listed),
        "alice\toperator\nbob.b@example-1\tviewer\ncarol\tviewer\n"
    );
    assert!(!stdout(&listed).contains('$') && !stderr(&listed).contains('$'));

    // Refusals: a clear reason, exit 64, the file untouched.
    let before = read(&users);
    refused(
        &cli(
            &["user", "add", "alice", "--role", "viewer", "--users", file],
            Some(b"another password\n"),
        ),
        64,
        "user \"alice\" exists already: remove it first to change it",
    );
    let bad_role = cli(
        &["user", "add", "dave", "--role", "admin", "--users", file],
        Some(b"long enough password\n"),
    );
    refused(&bad_role, 64, "invalid value 'admin' for '--role <ROLE>'");
    assert!(
        stderr(&bad_role).contains("[possible values: viewer, operator]"),
        "{}",
        stderr(&bad_role)
    );
    refused(
        &cli(
            &["user", "add", "eve/x", "--role", "viewer", "--users", file],
            Some(b"long enough password\n"),
        ),
        64,
        "user name \"eve/x\": character '/' at byte 3 is not allowed (allowed: A-Z a-z 0-9 . _ @ -)",
    );
    refused(
        &cli(
            &["user", "add", "", "--role", "viewer", "--users", file],
            Some(b"long enough password\n"),
        ),
        64,
        "user name \"\" must be 1 to 64 characters",
    );
    refused(
        &cli(
            &[
                "user",
                "add",
                &"n".repeat(65),
                "--role",
                "viewer",
                "--users",
                file,
            ],
            Some(b"long enough password\n"),
        ),
        64,
        "must be 1 to 64 characters",
    );
    for (what, input) in [
        ("short", b"seven7!\n".to_vec()),
        ("empty line", b"\n".to_vec()),
        (
            "longer than 1024 bytes",
            [b"x".repeat(1025), b"\n".to_vec()].concat(),
        ),
        ("a line without end past 4 KiB", b"y".repeat(10_000)),
    ] {
        let out = cli(
            &["user", "add", "frank", "--role", "viewer", "--users", file],
            Some(&input),
        );
        assert_eq!(out.status.code(), Some(64), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the password must be 8 to 1024 bytes long"),
            "{what}: {}",
            stderr(&out)
        );
    }
    // Standard input neither a terminal nor holding anything (/dev/null): no password.
    refused(
        &cli(
            &["user", "add", "frank", "--role", "viewer", "--users", file],
            None,
        ),
        64,
        "the password must be 8 to 1024 bytes long",
    );
    // Not text.
    refused(
        &cli(
            &["user", "add", "frank", "--role", "viewer", "--users", file],
            Some(b"\xff\xfe not utf-8 \xc3\n"),
        ),
        64,
        "cannot read the password from standard input",
    );
    assert_eq!(read(&users), before, "refusals leave the file as it was");

    // Remove: gone from the list; again, a clear refusal.
    let removed = cli(
        &["user", "remove", "bob.b@example-1", "--users", file],
        None,
    );
    assert_eq!(removed.status.code(), Some(0), "{}", stderr(&removed));
    assert_eq!(
        stderr(&removed).trim_end(),
        format!("roomready-controller: removed bob.b@example-1 from {file}")
    );
    assert_eq!(
        stdout(&cli(&["user", "list", "--users", file], None)),
        "alice\toperator\ncarol\tviewer\n"
    );
    refused(
        &cli(
            &["user", "remove", "bob.b@example-1", "--users", file],
            None,
        ),
        64,
        "there is no user \"bob.b@example-1\"",
    );
    assert_eq!(
        Users::load(&users)
            .expect("load")
            .verify("alice", "correct horse battery"),
        Some(Role::Operator),
        "the others keep their passwords"
    );
}

#[test]
fn users_file_problems_are_clear_errors_with_their_own_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Which file: exactly one of --users and --config.
    let neither = cli(&["user", "list"], None);
    assert_eq!(neither.status.code(), Some(64), "{}", stderr(&neither));
    assert!(
        stderr(&neither).contains("--users <FILE>"),
        "{}",
        stderr(&neither)
    );
    let users = dir.path().join("users");
    let config = dir.path().join("controller.toml");
    std::fs::write(&config, "broker_url = \"mqtt://127.0.0.1:1883\"\n").expect("config");
    let both = cli(
        &[
            "user",
            "list",
            "--users",
            path_arg(&users),
            "--config",
            path_arg(&config),
        ],
        None,
    );
    assert_eq!(both.status.code(), Some(64), "{}", stderr(&both));
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
    // A config without users_file, and one that does not parse: 78, naming the file.
    refused(
        &cli(&["user", "list", "--config", path_arg(&config)], None),
        78,
        &format!("{} sets no users_file", config.display()),
    );
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "users_file = \n").expect("config");
    refused(
        &cli(&["user", "list", "--config", path_arg(&broken)], None),
        78,
        &broken.display().to_string(),
    );

    // A users file with a line that does not parse is never half read: 66, file and line.
    std::fs::write(&users, "# users\nalice operator\n").expect("users");
    refused(
        &cli(&["user", "list", "--users", path_arg(&users)], None),
        66,
        &format!(
            "{}:2: expected NAME ROLE HASH, found 2 fields",
            users.display()
        ),
    );
    refused(
        &cli(
            &[
                "user",
                "add",
                "bob",
                "--role",
                "viewer",
                "--users",
                path_arg(&users),
            ],
            Some(b"long enough password\n"),
        ),
        66,
        "expected NAME ROLE HASH",
    );
    assert_eq!(read(&users), "# users\nalice operator\n", "left as it was");
    // A directory is no users file.
    refused(
        &cli(&["user", "list", "--users", path_arg(dir.path())], None),
        66,
        "cannot read",
    );
    // A users file that cannot be written: 73, naming it.
    let nowhere: PathBuf = dir.path().join("no-such-dir").join("users");
    refused(
        &cli(
            &[
                "user",
                "add",
                "bob",
                "--role",
                "viewer",
                "--users",
                path_arg(&nowhere),
            ],
            Some(b"long enough password\n"),
        ),
        73,
        &format!("{}: cannot write", nowhere.display()),
    );
}

/// On a terminal the password is asked twice with the echo off, and the echo is back on
/// afterwards: what is typed never shows, two that differ are refused. The terminal is a
/// pseudo-terminal whose other end this test holds (Linux: `openpty`).
#[cfg(target_os = "linux")]
#[test]
fn on_a_terminal_the_password_is_asked_twice_without_echo() {
    use terminal::Pty;

    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("users");
    let file = path_arg(&users);

    let pty = Pty::open();
    let mut add = pty.spawn(&["user", "add", "tina", "--role", "operator", "--users", file]);
    add.wait_for_prompt("Password: ");
    pty.wait_for_echo_off();
    pty.type_line("typed on a tty");
    add.wait_for_prompt("Again: ");
    pty.wait_for_echo_off();
    pty.type_line("typed on a tty");
    let out = add.finish();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("added tina (operator)"),
        "{}",
        stderr(&out)
    );
    assert!(pty.echo_on(), "the terminal's echo is restored");
    let shown = pty.shown();
    assert!(
        !shown.contains("typed"),
        "the password was echoed to the terminal: {shown:?}"
    );
    assert_eq!(
        Users::load(&users)
            .expect("load")
            .verify("tina", "typed on a tty"),
        Some(Role::Operator)
    );

    // Two entries that differ: refused, nothing written.
    let before = read(&users);
    let mut add = pty.spawn(&["user", "add", "uma", "--role", "viewer", "--users", file]);
    add.wait_for_prompt("Password: ");
    pty.wait_for_echo_off();
    pty.type_line("first version");
    add.wait_for_prompt("Again: ");
    pty.wait_for_echo_off();
    pty.type_line("second version");
    let out = add.finish();
    refused(&out, 64, "the two passwords differ");
    assert!(pty.echo_on(), "the echo is restored after a refusal too");
    assert_eq!(read(&users), before);
}

#[cfg(target_os = "linux")]
mod terminal {
    use std::io::{Read as _, Write as _};
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    use std::process::{Child, Command, Output, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(20);

    /// A pseudo-terminal: the master (the "keyboard and screen") and the slave the child gets
    /// as its standard input.
    pub struct Pty {
        master: std::fs::File,
        slave: OwnedFd,
    }

    /// A child on the terminal, its stderr read as it comes.
    pub struct OnTerminal {
        child: Child,
        stderr: mpsc::Receiver<Vec<u8>>,
        seen: Vec<u8>,
    }

    impl Pty {
        pub fn open() -> Pty {
            let (mut master, mut slave) = (-1, -1);
            // SAFETY: openpty fills in two new descriptors; no name buffer, default termios and
            // window size (null pointers are allowed for all three).
            let rc = unsafe {
                libc::openpty(
                    &mut master,
                    &mut slave,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    std::ptr::null(),
                )
            };
            assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
            // SAFETY: both descriptors were just opened and are owned by nothing else.
            let (master, slave) =
                unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
            // The master is read without blocking: after the child is gone, whatever the
            // terminal echoed is there, or nothing.
            // SAFETY: fcntl on a descriptor this function owns.
            unsafe {
                let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
            let pty = Pty {
                master: std::fs::File::from(master),
                slave,
            };
            assert!(pty.echo_on(), "a new terminal echoes");
            pty
        }

        /// Starts the controller binary with the terminal as its standard input.
        pub fn spawn(&self, args: &[&str]) -> OnTerminal {
            let mut child = Command::new(super::EXE)
                .args(args)
                .stdin(Stdio::from(self.slave.try_clone().expect("dup the slave")))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .env_remove("RUST_LOG")
                .spawn()
                .expect("the controller binary runs");
            let mut pipe = child.stderr.take().expect("stderr");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            });
            OnTerminal {
                child,
                stderr: rx,
                seen: Vec::new(),
            }
        }

        /// Whether the terminal echoes what is typed.
        pub fn echo_on(&self) -> bool {
            // SAFETY: tcgetattr fills in the zeroed termios for a descriptor this owns.
            let mut term: libc::termios = unsafe { std::mem::zeroed() };
            let rc = unsafe { libc::tcgetattr(self.slave.as_raw_fd(), &mut term) };
            assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
            term.c_lflag & libc::ECHO != 0
        }

        /// Waits until the child has turned the echo off. The terminal signals no event for
        /// it, so its attributes are read every few milliseconds (bounded).
        pub fn wait_for_echo_off(&self) {
            let deadline = Instant::now() + WAIT;
            while self.echo_on() {
                assert!(
                    Instant::now() < deadline,
                    "the echo was not turned off for the password within {WAIT:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }

        /// Types `line` and Enter.
        pub fn type_line(&self, line: &str) {
            (&self.master)
                .write_all(format!("{line}\n").as_bytes())
                .expect("type on the terminal");
        }

        /// What the terminal has shown (echoed) since it was last read.
        pub fn shown(&self) -> String {
            let mut shown = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match (&self.master).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => shown.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("reading the terminal: {e}"),
                }
            }
            String::from_utf8_lossy(&shown).into_owned()
        }
    }

    impl OnTerminal {
        /// Waits until the child has written `prompt` to stderr (since the last prompt).
        pub fn wait_for_prompt(&mut self, prompt: &str) {
            let deadline = Instant::now() + WAIT;
            loop {
                let text = String::from_utf8_lossy(&self.seen).into_owned();
                if let Some(at) = text.find(prompt) {
                    self.seen.drain(..at + prompt.len());
                    return;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                match self.stderr.recv_timeout(left) {
                    Ok(bytes) => self.seen.extend(bytes),
                    Err(_) => panic!("no prompt {prompt:?} within {WAIT:?}; stderr: {text}"),
                }
            }
        }

        /// Waits for the child to exit; its stdout, and everything it wrote to stderr.
        pub fn finish(mut self) -> Output {
            let status = self.child.wait().expect("the binary ends");
            let mut stdout = Vec::new();
            if let Some(mut pipe) = self.child.stdout.take() {
                pipe.read_to_end(&mut stdout).expect("stdout");
            }
            let mut stderr = std::mem::take(&mut self.seen);
            // The reader thread ends at EOF, after the child is gone.
            while let Ok(bytes) = self.stderr.recv_timeout(WAIT) {
                stderr.extend(bytes);
            }
            Output {
                status,
                stdout,
                stderr,
            }
        }
    }
}
