//! A controller in a child process, for tests that kill it without warning (SIGKILL): the test
//! binary runs itself again with one ignored test, which calls [`child_main`] to start the
//! controller library exactly as the binary does and prints its dashboard's URL once its
//! subscriptions are acknowledged. Also the readings such tests take of a controller from
//! outside: messages in flight, every device's received ranges, and ranges as sets.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use roomready_protocol::TopicPrefix;
use roomready_simulator::dashboard::{Dashboard, DashboardOptions};
use roomready_testkit::http::Http;

use crate::WAIT;

/// What the child prints once its dashboard listens.
const READY: &str = "CONTROLLER_URL ";
/// The variable naming the child's config file.
const CONFIG: &str = "ROOMREADY_CHILD_CONFIG";

/// The body of the ignored test a child runs: starts the controller on the config
/// [`CONFIG`] names and serves until killed. Returns at once when it is not set (the test run
/// by itself does nothing).
pub fn child_main() {
    let Some(config) = std::env::var_os(CONFIG) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = roomready_controller::config::Config::load(Path::new(&config))
            .expect("the child's config");
        let running = roomready_controller::start(&config)
            .await
            .expect("the child controller starts");
        // Ready once its subscriptions are acknowledged: what the fleet publishes before that
        // never reaches the session (a fresh one), and the test would count it as lost. The
        // parent bounds the wait.
        let mut subscribed = running.ingest_stats.subscribed.subscribe();
        let _ = subscribed.wait_for(|s| *s).await;
        println!("{READY}{}", running.url());
        std::future::pending::<()>().await;
    });
}

/// The controller in a child process, and its dashboard's URL. Killed when dropped, so a
/// failing test leaves no controller behind.
pub struct ChildController {
    pub child: Child,
    pub url: String,
}

impl ChildController {
    /// Starts the child running the ignored test `child_test` (its full path, e.g.
    /// `controller_kill::controller_child`) on `config`; waits until it serves.
    pub fn start(child_test: &str, config: &Path) -> ChildController {
        let mut child = Command::new(std::env::current_exe().expect("this test binary"))
            .args([child_test, "--exact", "--ignored", "--nocapture"])
            .env(CONFIG, config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child controller");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(url) = line.strip_prefix(READY) {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("the child controller did not start within {WAIT:?}"));
        ChildController { child, url }
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for ChildController {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages a controller received from the broker and has not committed yet.
pub fn in_flight(http: &Http) -> u64 {
    let ingest = http.get("/api/v1/ingest").json();
    let count = |name: &str| ingest[name].as_u64().unwrap_or(0);
    count("received").saturating_sub(count("taken") + count("duplicates") + count("undecodable"))
}

/// Messages a controller took (committed, not duplicates).
pub fn taken(http: &Http) -> u64 {
    http.get("/api/v1/ingest").json()["taken"]
        .as_u64()
        .unwrap_or(0)
}

/// Every device's received ranges, as a controller's API reports them (up to 1,000 devices).
pub fn store_ranges(http: &Http) -> BTreeMap<String, String> {
    let page = http.get("/api/v1/devices?per_page=1000&sort=id").json();
    let mut ranges = BTreeMap::new();
    for device in page["devices"].as_array().expect("devices") {
        let id = device["id"].as_str().expect("id").to_owned();
        let detail = http.get(&format!("/api/v1/devices/{id}")).json();
        ranges.insert(
            id,
            detail["seq"]["ranges"].as_str().unwrap_or("").to_owned(),
        );
    }
    ranges
}

/// The numbers of `ranges` ("1-40,42") as a set.
pub fn numbers(ranges: &str) -> BTreeSet<u64> {
    let mut set = BTreeSet::new();
    for part in ranges.split(',').filter(|p| !p.is_empty()) {
        let part = part.rsplit('!').next().unwrap_or(part);
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse().expect("number"), hi.parse().expect("number")),
            None => {
                let n: u64 = part.parse().expect("number");
                (n, n)
            }
        };
        set.extend(lo..=hi);
    }
    set
}

/// Polls a controller's API (another process: there is no event to await) until `done`, for at
/// most `limit`; whether it came.
pub async fn poll_until(
    http: &Http,
    limit: std::time::Duration,
    done: impl Fn(&Http) -> bool + Send + Clone + 'static,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let check = done.clone();
        if http.run(move |http| check(http)).await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// An independent witness of everything the devices publish on `broker`: a dashboard with a
/// persistent session, subscribed before it is returned.
pub async fn witness(broker: &roomready_agent::config::BrokerUrl) -> Dashboard {
    let mut witness = Dashboard::connect_with(
        broker,
        &TopicPrefix::default(),
        &DashboardOptions {
            persistent: true,
            ..DashboardOptions::default()
        },
    );
    witness
        .wait_subscribed(WAIT)
        .await
        .expect("the witness subscribes");
    witness
}
