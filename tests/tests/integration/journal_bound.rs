//! The journal's size bound end to end: an agent whose broker is down keeps checking every 10 ms
//! into a real on-disk journal bounded to 16 KiB. The file never exceeds the bound; when the bound
//! forces the journal to drop records, the agent says so in a `records_dropped` event; when the
//! broker is back, an independent controller (a persistent session, so that nothing is missed for
//! any reason but the bound) receives the newest state and can account for every missing `seq`:
//!
//! - after the first overflow, exactly: the missing seqs number the sum of the `records_dropped`
//!   counts, and no state is among them (events go first);
//! - after a long outage, where the bound also drops older notices (they are events too), as an
//!   inequality: the counts received never exceed the seqs missing, and the last record the
//!   agent stored is always delivered.
//!
//! How many checks the agent makes is decided by the test: the facts source hands out one set of
//! facts per permit, numbered through the app version, so each state says which check made it.

// Rewrites of the journal file are detected by its inode (a rewrite renames a new file over it).
#![cfg(unix)]

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use roomready_agent::Storage;
use roomready_agent::clock::SystemClock;
use roomready_agent::command::ledger::Ledger;
use roomready_agent::facts::{Facts, FactsError, FactsSource};
use roomready_agent::link::Reconnect;
use roomready_agent::link::journal::{Fsync, Journal, JournalOptions};
use roomready_agent::{Agent, AgentError, AgentSettings};
use roomready_protocol::{DeviceId, EventBody, Presence, State};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_tests::WAIT;
use roomready_tests::controller::{Controller, Seen};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

/// The journal's bound: small, so that a few dozen checks overflow it.
const BOUND: u64 = 16 * 1024;
/// App versions are `4.0.{VERSION_BASE + k}.0` for check `k` (all above the TLS 1.2 minimum, so
/// the verdict never changes).
const VERSION_BASE: u64 = 100;

/// Facts handed out one set per permit: the test decides how many checks the agent makes.
/// `asked` counts the agent's requests for facts; when it reaches `k + 1`, check `k` is done and
/// everything it made is in the journal (the agent asks for the next check only after storing
/// the previous one's messages).
#[derive(Clone)]
struct GatedFacts {
    permits: Arc<Semaphore>,
    asked: Arc<watch::Sender<u64>>,
}

impl FactsSource for GatedFacts {
    async fn collect(&self) -> Result<Facts, FactsError> {
        let mut check = 0;
        self.asked.send_modify(|n| {
            *n += 1;
            check = *n;
        });
        self.permits
            .acquire()
            .await
            .expect("the semaphore is never closed")
            .forget();
        Ok(facts(check))
    }
}

fn facts(check: u64) -> Facts {
    roomready_tests::rooms_facts(&format!("4.0.{}.0", VERSION_BASE + check)).0
}

/// Which check made `state`.
fn check_of(state: &State) -> Option<u64> {
    let version = state.facts.app_version.as_deref()?;
    let build: u64 = version.split('.').nth(2)?.parse().ok()?;
    build.checked_sub(VERSION_BASE)
}

/// The check that made the state with the highest seq received.
fn newest_check(seen: &Seen) -> Option<u64> {
    seen.states.iter().max_by_key(|s| s.seq).and_then(check_of)
}

/// The highest seq the agent had issued when it came online (the `online` status carries it).
fn last_issued(seen: &Seen) -> Option<u64> {
    seen.statuses
        .iter()
        .filter(|s| s.status == Presence::Online)
        .map(|s| s.seq)
        .max()
}

/// What the controller can say about seqs 1..=`last`.
#[derive(Debug)]
struct Tally {
    /// Seqs in 1..=last never received.
    missing: Vec<u64>,
    /// The counts of the `records_dropped` events received (each once, however often repeated).
    notices: Vec<u64>,
    /// The running total of the newest `records_dropped` event received.
    total: Option<u64>,
}

impl Tally {
    fn of(seen: &Seen, last: u64) -> Tally {
        let mut seqs = seen.seqs();
        seqs.dedup();
        let missing = (1..=last)
            .filter(|n| seqs.binary_search(n).is_err())
            .collect();
        let mut notices: Vec<(u64, u64, u64)> = seen
            .events
            .iter()
            .filter_map(|e| match e.body {
                EventBody::RecordsDropped { count, total } => Some((e.seq, count, total)),
                _ => None,
            })
            .collect();
        notices.sort_unstable();
        notices.dedup();
        Tally {
            missing,
            total: notices.last().map(|&(_, _, total)| total),
            notices: notices.into_iter().map(|(_, count, _)| count).collect(),
        }
    }

    fn reported(&self) -> u64 {
        self.notices.iter().sum()
    }
}

fn inode(file: &Path) -> u64 {
    std::fs::metadata(file)
        .expect("the journal file exists")
        .ino()
}

fn size(file: &Path) -> u64 {
    std::fs::metadata(file)
        .expect("the journal file exists")
        .len()
}

/// An agent reporting into a bounded journal while its broker is down, and a controller whose
/// persistent session waits for the broker to come back.
struct Outage {
    addr: SocketAddr,
    broker_dir: tempfile::TempDir,
    _journal_dir: tempfile::TempDir,
    journal_file: PathBuf,
    controller: Controller,
    permits: Arc<Semaphore>,
    asked: watch::Receiver<u64>,
    stop: oneshot::Sender<()>,
    agent: JoinHandle<Result<roomready_agent::Stopped, AgentError>>,
}

impl Outage {
    async fn start(device: &str) -> Outage {
        let device = DeviceId::new(device).expect("valid id");
        // The broker runs once, for the controller to leave a persistent session with its
        // subscriptions; it keeps the session (and what is published for it) across the outage.
        let broker_dir = tempfile::tempdir().expect("tempdir");
        let broker = EmbeddedBroker::start_persistent(
            "127.0.0.1:0".parse().expect("addr"),
            broker_dir.path(),
        )
        .await
        .expect("broker starts");
        let addr = broker.addr();
        let mut controller = Controller::connect(
            &broker.url(),
            &device,
            &format!("controller-{device}"),
            true,
        );
        controller
            .wait_until(WAIT, |s| s.subscribed)
            .await
            .unwrap_or_else(|s| panic!("controller not subscribed: {s:?}"));
        let url = broker.url();
        broker.stop().await.expect("broker stops");

        let journal_dir = tempfile::tempdir().expect("tempdir");
        let (journal, recovery) = Journal::open(JournalOptions {
            dir: journal_dir.path().to_owned(),
            max_bytes: BOUND,
            fsync: Fsync::Never,
        })
        .expect("journal opens");
        assert_eq!(recovery.records, 0, "a new journal");
        let journal_file = journal.path().to_owned();

        let mut settings = AgentSettings::new(device, url);
        settings.report_interval = Duration::from_millis(10);
        settings.keep_alive = Duration::from_secs(5);
        settings.reconnect = Reconnect {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            stable_after: Duration::from_secs(1),
        };
        let permits = Arc::new(Semaphore::new(0));
        let (asked_tx, asked) = watch::channel(0);
        let facts = GatedFacts {
            permits: Arc::clone(&permits),
            asked: Arc::new(asked_tx),
        };
        let storage = Storage::Opened {
            spool: Box::new(journal),
            ledger: Ledger::memory(),
            notices: Vec::new(),
            answers: Vec::new(),
        };
        let agent = Agent::with_storage(settings, facts, SystemClock, storage);
        let (stop, stopped) = oneshot::channel::<()>();
        let agent = tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        Outage {
            addr,
            broker_dir,
            _journal_dir: journal_dir,
            journal_file,
            controller,
            permits,
            asked,
            stop,
            agent,
        }
    }

    /// Lets the agent make `n` more checks (on its 10 ms timer).
    fn allow(&self, n: usize) {
        self.permits.add_permits(n);
    }

    /// Checks completed (stored in the journal) so far.
    fn checks_done(&self) -> u64 {
        self.asked.borrow().saturating_sub(1)
    }

    /// Waits until check `n` is completed and stored.
    async fn wait_checks(&mut self, n: u64) {
        let done = tokio::time::timeout(WAIT, self.asked.wait_for(|asked| *asked > n))
            .await
            .map(|r| r.is_ok());
        assert!(
            done.is_ok_and(|alive| alive),
            "check {n} not done; {} done",
            self.checks_done()
        );
    }

    /// The broker back on its address, with its sessions.
    async fn restore(&self) -> EmbeddedBroker {
        EmbeddedBroker::start_persistent(self.addr, self.broker_dir.path())
            .await
            .expect("broker restarts on the same port")
    }

    async fn finish(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.agent)
            .await
            .expect("the agent stops")
            .expect("agent task")
            .expect("agent stops cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_overflow_is_accounted_for_exactly() {
    let mut outage = Outage::start("mtr-bound-first").await;
    let file = outage.journal_file.clone();
    let created = inode(&file);
    let empty = size(&file);
    // One check at a time, until the journal rewrote its file: while the broker is down nothing
    // is acknowledged, so the only rewrite is the one that makes room by dropping records.
    let mut checks = 0;
    let mut before = empty;
    while inode(&file) == created {
        assert!(
            checks < 1_000,
            "{checks} checks and the journal never dropped"
        );
        before = size(&file);
        checks += 1;
        outage.allow(1);
        outage.wait_checks(checks).await;
        assert!(size(&file) <= BOUND, "journal at {} bytes", size(&file));
    }
    println!(
        "first drop at check {checks}: the journal went from {before} to {} bytes (bound {BOUND}, \
         {:.0} bytes a check)",
        size(&file),
        (before - empty) as f64 / (checks - 1) as f64
    );

    let _broker = outage.restore().await;
    // Waiting only until the missing seqs are down to the reported count would stop too early if
    // the agent over-reported. The last record stored is never dropped (the bound never drops the
    // record being appended, and nothing was appended after it) and is sent last: wait for it too.
    let seen = outage
        .controller
        .wait_until(WAIT, |s| {
            last_issued(s).is_some_and(|last| {
                let tally = Tally::of(s, last);
                newest_check(s) == Some(checks)
                    && s.seqs().binary_search(&last).is_ok()
                    && tally.missing.len() as u64 <= tally.reported()
            })
        })
        .await
        .unwrap_or_else(|s| {
            let tally = last_issued(&s).map(|last| Tally::of(&s, last));
            panic!(
                "not everything accounted for: last issued {:?}, newest check {:?}, {tally:?}",
                last_issued(&s),
                newest_check(&s)
            )
        });
    let last = last_issued(&seen).expect("waited for it");
    let tally = Tally::of(&seen, last);
    println!(
        "{last} seqs issued; {} received, {} missing {:?}; records_dropped: {:?}",
        last as usize - tally.missing.len(),
        tally.missing.len(),
        tally.missing,
        tally.notices
    );
    assert_eq!(tally.notices.len(), 1, "one overflow, one notice");
    assert!(tally.notices[0] > 0, "a notice of no drop: {tally:?}");
    assert_eq!(
        tally.missing.len() as u64,
        tally.reported(),
        "every missing seq is reported as dropped, and nothing else is"
    );
    assert_eq!(
        tally.total,
        Some(tally.reported()),
        "the first notice's total is its count"
    );
    // Events are dropped first: every check's state arrived, the newest with the highest seq.
    let mut made: Vec<u64> = seen.states.iter().filter_map(check_of).collect();
    made.sort_unstable();
    made.dedup();
    assert_eq!(
        made,
        (1..=checks).collect::<Vec<_>>(),
        "every state arrives"
    );
    assert_eq!(newest_check(&seen), Some(checks));
    assert!(
        seen.seqs().last().is_some_and(|&top| top <= last),
        "nothing issued after the last check"
    );
    assert_eq!(
        seen.reused_seqs(),
        Vec::<u64>::new(),
        "no seq names two messages"
    );
    assert_eq!(seen.undecodable, 0);
    outage.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_keeps_the_bound_and_the_newest_state() {
    const CHECKS: u64 = 100;
    let mut outage = Outage::start("mtr-bound-long").await;
    let file = outage.journal_file.clone();
    // The agent checks on its 10 ms timer; the file is watched from outside while it does.
    outage.allow(CHECKS as usize);
    let mut largest = 0;
    let mut rewrites = 0;
    let mut current = inode(&file);
    let watched = tokio::time::timeout(WAIT, async {
        while outage.checks_done() < CHECKS {
            let now = size(&file);
            assert!(now <= BOUND, "journal at {now} bytes");
            largest = largest.max(now);
            if inode(&file) != current {
                current = inode(&file);
                rewrites += 1;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(
        watched.is_ok(),
        "{} of {CHECKS} checks done",
        outage.checks_done()
    );
    outage.wait_checks(CHECKS).await;
    assert!(size(&file) <= BOUND);
    assert!(
        rewrites >= 2,
        "the journal overflowed repeatedly: {rewrites}"
    );
    println!("{CHECKS} checks: journal at most {largest} bytes, {rewrites}+ rewrites seen");

    let _broker = outage.restore().await;
    // As above: once the last record stored is in, the backlog has been sent.
    let seen = outage
        .controller
        .wait_until(WAIT, |s| {
            last_issued(s).is_some_and(|last| {
                newest_check(s) == Some(CHECKS) && s.seqs().binary_search(&last).is_ok()
            })
        })
        .await
        .unwrap_or_else(|s| {
            panic!(
                "backlog not delivered: last issued {:?}, newest check {:?}, top seq {:?}",
                last_issued(&s),
                newest_check(&s),
                s.seqs().last()
            )
        });
    let last = last_issued(&seen).expect("waited for it");
    let tally = Tally::of(&seen, last);
    println!(
        "{last} seqs issued; {} received, {} missing; {} records_dropped notices received, \
         reporting {}: the other {} were reported by notices the bound dropped later",
        last as usize - tally.missing.len(),
        tally.missing.len(),
        tally.notices.len(),
        tally.reported(),
        tally.missing.len() as u64 - tally.reported().min(tally.missing.len() as u64)
    );
    assert!(!tally.notices.is_empty(), "the drops are reported");
    assert!(tally.notices.iter().all(|&count| count > 0), "{tally:?}");
    // Notices are events, so the bound drops older ones too: their counts are lost, but the
    // running total of the newest one (which nothing dropped: a later drop would have made a
    // newer notice) accounts for every missing seq.
    assert!(
        tally.reported() <= tally.missing.len() as u64,
        "more reported dropped than missing: {tally:?}"
    );
    assert_eq!(
        tally.total,
        Some(tally.missing.len() as u64),
        "the newest notice's total accounts for every gap"
    );
    assert_eq!(
        newest_check(&seen),
        Some(CHECKS),
        "the newest state arrives"
    );
    assert!(
        seen.seqs().last().is_some_and(|&top| top == last),
        "nothing issued after the last check"
    );
    assert_eq!(
        seen.reused_seqs(),
        Vec::<u64>::new(),
        "no seq names two messages"
    );
    assert_eq!(seen.undecodable, 0);
    outage.finish().await;
}
