//! The load generator of the controller benchmark (`tests/bench/controller.sh`): a fleet of
//! `--devices` devices' states plus `--events` events, built with `roomready-protocol`'s types
//! from the golden fixtures in `protocol/tests/fixtures`, published at full speed with QoS 1
//! (rumqttc, `--connections` clients, each device's messages on one client so its `seq` arrives
//! in order), then, against a running controller, page timings and check-to-screen latency.
//! Prints one JSON object with every figure on standard output.
//!
//! ```text
//! controller_load --broker 127.0.0.1:1883 --controller http://127.0.0.1:8080 \
//!                 --controller-pid PID --database controller.db      # the controller
//! controller_load --broker 127.0.0.1:1883 --prefix peer --until-exit PID   # a peer subscriber
//! ```
//!
//! Ingest: the clock starts before the first publish and stops when the controller's
//! `/api/v1/ingest` counts every message (taken + duplicates), or, with `--until-exit`, when
//! that process (e.g. `mosquitto_sub -C N`) has exited. Pages: `--requests` sequential GETs per
//! path over one keep-alive HTTP/1.1 connection on loopback, timed from the request's first byte
//! written to the response's last byte read (so server time plus loopback). Latency: one
//! `check_completed` event or verdict-changing state at a time, from the publish call to the
//! matching `history` entry arriving on a subscriber of `/api/v1/live`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use roomready_protocol::{
    DeviceId, Event, EventBody, Message, State, Timestamp, TopicPrefix, Topics, Verdict,
};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(about = "Load generator of tests/bench/controller.sh")]
struct Args {
    /// The broker, HOST:PORT (plain MQTT).
    #[arg(long)]
    broker: String,
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Publishing clients.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value = "roomready")]
    prefix: String,
    /// The controller's base URL: wait for its ingest counters, then time pages and latency.
    #[arg(long)]
    controller: Option<String>,
    /// The controller's process id, for its peak RSS (VmHWM) after each phase.
    #[arg(long)]
    controller_pid: Option<u32>,
    /// The controller's database file, for its size (and its -wal's) after ingest.
    #[arg(long)]
    database: Option<PathBuf>,
    /// Instead of a controller: ingest is done when this process has exited.
    #[arg(long)]
    until_exit: Option<u32>,
    /// Requests per page.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Check-to-screen samples.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// The golden fixtures.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../protocol/tests/fixtures"))]
    fixtures: PathBuf,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

type Fail = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Fail> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// The three kinds of state in the fleet, from the fixtures.
struct Templates {
    not_ready: State,
    at_risk: State,
    ready: State,
    event: Event,
}

fn fixture<T: Message>(dir: &Path, name: &str) -> Result<T, Fail> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    T::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

impl Templates {
    fn load(dir: &Path) -> Result<Templates, Fail> {
        let not_ready: State = fixture(dir, "state.json")?;
        let at_risk: State = fixture(dir, "state_endpoints.json")?;
        let mut ready = not_ready.clone();
        ready.verdict = Verdict::Ready;
        ready.findings.clear();
        ready.facts.app_version = Some("4.0.105.0".into());
        Ok(Templates {
            not_ready,
            at_risk,
            ready,
            event: fixture(dir, "event_check_completed.json")?,
        })
    }

    /// 60 % ready, 20 % at risk (endpoint findings, the largest payload), 20 % not ready.
    fn state(&self, index: usize) -> &State {
        match index % 10 {
            0..=5 => &self.ready,
            6 | 7 => &self.at_risk,
            _ => &self.not_ready,
        }
    }

    fn make_state(&self, template: &State, device: &DeviceId, seq: u64, ts: Timestamp) -> State {
        let mut state = template.clone();
        state.device = device.clone();
        state.seq = seq;
        state.ts = ts;
        state
    }

    fn make_event(&self, device: &DeviceId, seq: u64, ts: Timestamp, state: &State) -> Event {
        let mut event = self.event.clone();
        event.device = device.clone();
        event.seq = seq;
        event.ts = ts;
        event.body = EventBody::CheckCompleted {
            verdict: state.verdict,
            findings: u32::try_from(state.findings.len()).unwrap_or(u32::MAX),
        };
        event
    }
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_unix_ms(ms)
}

fn device_id(index: usize) -> DeviceId {
    DeviceId::new(format!("bench-{index:05}")).expect("bench-NNNNN is a valid device id")
}

/// Every message of the fleet, per publishing client: (topic, payload, retained).
type Plan = Vec<Vec<(String, Vec<u8>, bool)>>;

fn plan(args: &Args, t: &Templates, prefix: &TopicPrefix) -> (Plan, usize) {
    let connections = args.connections.max(1);
    let mut plan: Plan = vec![Vec::new(); connections];
    let base = now().unix_ms().saturating_sub(3_600_000);
    let topics: Vec<Topics> = (0..args.devices)
        .map(|i| Topics::new(prefix, &device_id(i)))
        .collect();
    let mut bytes = 0;
    for i in 0..args.devices {
        let state = t.make_state(
            t.state(i),
            &device_id(i),
            1,
            Timestamp::from_unix_ms(base + i as u64),
        );
        let payload = state.encode();
        bytes += payload.len();
        plan[i % connections].push((topics[i].state().to_owned(), payload, true));
    }
    for n in 0..args.events {
        let i = n % args.devices.max(1);
        let seq = 2 + (n / args.devices.max(1)) as u64;
        let ts = Timestamp::from_unix_ms(base + 100_000 + n as u64);
        let event = t.make_event(&device_id(i), seq, ts, t.state(i));
        let payload = event.encode();
        bytes += payload.len();
        plan[i % connections].push((topics[i].events().to_owned(), payload, false));
    }
    (plan, bytes)
}

/// Publishes every message of `messages` with QoS 1; returns when the broker acknowledged all.
async fn publish_all(broker: (String, u16), id: String, messages: Vec<(String, Vec<u8>, bool)>) {
    let mut options = MqttOptions::new(id, broker.0, broker.1);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(1000)
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let count = messages.len();
    tokio::spawn(async move {
        for (topic, payload, retain) in messages {
            if client
                .publish(topic, QoS::AtLeastOnce, retain, payload)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut acked = 0;
    while acked < count {
        match eventloop.poll().await {
            Ok(MqttEvent::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => {
                eprintln!("controller_load: publisher: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn vm_hwm_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn file_size(path: &Path, suffix: &str) -> u64 {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    std::fs::metadata(PathBuf::from(name)).map_or(0, |m| m.len())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
}

async fn run(args: Args) -> Result<(), Fail> {
    let prefix = TopicPrefix::new(args.prefix.clone())?;
    let templates = Templates::load(&args.fixtures)?;
    let (host, port) = args
        .broker
        .rsplit_once(':')
        .ok_or("--broker must be HOST:PORT")?;
    let broker = (host.to_owned(), port.parse::<u16>()?);
    let (plan, payload_bytes) = plan(&args, &templates, &prefix);
    let total = args.devices + args.events;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut http = match &args.controller {
        Some(url) => Some(Http::connect(url).await?),
        None => None,
    };
    let counted =
        |v: &Value| v["taken"].as_u64().unwrap_or(0) + v["duplicates"].as_u64().unwrap_or(0);
    let before = match &mut http {
        Some(http) => {
            // Connected, then a second for the SUBACKs: nothing published is missed.
            while http.get_json("/healthz").await?["broker_connected"] != true {
                if Instant::now() > deadline {
                    return Err("the controller did not connect to the broker".into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            counted(&http.get_json("/api/v1/ingest").await?)
        }
        None => 0,
    };

    // Ingest.
    let started = Instant::now();
    let publishers: Vec<_> = plan
        .into_iter()
        .enumerate()
        .map(|(n, messages)| {
            tokio::spawn(publish_all(
                broker.clone(),
                format!("bench-load-{}-{n}", std::process::id()),
                messages,
            ))
        })
        .collect();
    let broker_acked = tokio::spawn(async move {
        for p in publishers {
            let _ = p.await;
        }
        Instant::now()
    });
    let mut last = 0;
    loop {
        if Instant::now() > deadline {
            return Err(
                format!("ingest: {last} of {total} counted after {:?}", args.timeout).into(),
            );
        }
        if let Some(pid) = args.until_exit {
            if !alive(pid) {
                break;
            }
        } else if let Some(http) = &mut http {
            last = counted(&http.get_json("/api/v1/ingest").await?) - before;
            if last >= total as u64 {
                break;
            }
        } else {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let broker_acked_secs = broker_acked
        .await
        .map(|t| t.duration_since(started).as_secs_f64())?;
    let mut out = json!({
        "devices": args.devices,
        "events": args.events,
        "messages": total,
        "payload_bytes": payload_bytes,
        "connections": args.connections,
        "ingest_secs": ingest_secs,
        "publish_acked_secs": broker_acked_secs,
        "messages_per_sec": total as f64 / ingest_secs,
        "hwm_after_ingest_kib": vm_hwm_kib(args.controller_pid),
    });
    if let Some(db) = &args.database {
        out["db_bytes"] = json!(file_size(db, ""));
        out["wal_bytes"] = json!(file_size(db, "-wal"));
    }
    let Some(mut http) = http else {
        println!("{out}");
        return Ok(());
    };
    let ingest = http.get_json("/api/v1/ingest").await?;
    out["ingest_counters"] = ingest;

    // Pages.
    let one = format!("/api/v1/devices/{}", device_id(args.devices / 2));
    let paths = [
        "/",
        "/?verdict=not_ready",
        "/?sort=verdict&order=desc&page=50",
        "/api/v1/summary",
        "/api/v1/devices?verdict=at_risk&per_page=100",
        "/api/v1/findings",
        one.as_str(),
        "/metrics",
    ];
    let mut pages = Vec::new();
    for path in paths {
        let mut times = Vec::with_capacity(args.requests);
        let mut bytes = 0;
        for _ in 0..args.requests {
            let t0 = Instant::now();
            let (status, body) = http.get(path).await?;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            if status != 200 {
                return Err(format!("GET {path}: {status}").into());
            }
            bytes = body.len();
        }
        pages.push(json!({ "path": path, "bytes": bytes, "ms": percentiles(&mut times) }));
    }
    out["pages"] = Value::Array(pages);
    out["hwm_after_pages_kib"] = json!(vm_hwm_kib(args.controller_pid));

    // Check-to-screen latency.
    out["latency"] = latency(&args, &templates, &prefix, &broker).await?;
    out["hwm_end_kib"] = json!(vm_hwm_kib(args.controller_pid));
    if let Some(db) = &args.database {
        out["db_bytes_end"] = json!(file_size(db, ""));
        out["wal_bytes_end"] = json!(file_size(db, "-wal"));
    }
    println!("{out}");
    Ok(())
}

fn percentiles(ms: &mut [f64]) -> Value {
    if ms.is_empty() {
        return json!({ "n": 0 });
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
        ms[rank.clamp(1, ms.len()) - 1]
    };
    json!({
        "n": ms.len(),
        "p50": at(50.0),
        "p95": at(95.0),
        "p99": at(99.0),
        "max": ms.last().copied().unwrap_or(0.0),
    })
}

async fn latency(
    args: &Args,
    t: &Templates,
    prefix: &TopicPrefix,
    broker: &(String, u16),
) -> Result<Value, Fail> {
    let url = args.controller.as_deref().ok_or("no controller")?;
    let mut live = Live::open(url).await?;
    let mut options = MqttOptions::new(
        format!("bench-latency-{}", std::process::id()),
        broker.0.clone(),
        broker.1,
    );
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    // Every device's next seq after the ingest: state 1, events 2..
    let per_device = args.events.div_ceil(args.devices.max(1)) as u64;
    let mut next: HashMap<usize, u64> = HashMap::new();
    let mut verdicts: HashMap<usize, Verdict> = HashMap::new();
    let mut events_ms = Vec::new();
    let mut states_ms = Vec::new();
    // Let the live stream settle (its first summary) before timing.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for n in 0..args.samples {
        let i = (n * 7919) % args.devices.max(1);
        let device = device_id(i);
        let seq = next.entry(i).or_insert(2 + per_device);
        let this = *seq;
        *seq += 1;
        let topics = Topics::new(prefix, &device);
        let state = n % 2 == 1;
        let (topic, payload, retain) = if state {
            // A state whose verdict differs from the device's last: a `verdict` history entry.
            let current = *verdicts.entry(i).or_insert(t.state(i).verdict);
            let template = if current == Verdict::Ready {
                &t.not_ready
            } else {
                &t.ready
            };
            verdicts.insert(i, template.verdict);
            let s = t.make_state(template, &device, this, now());
            (topics.state().to_owned(), s.encode(), true)
        } else {
            let e = t.make_event(&device, this, now(), t.state(i));
            (topics.events().to_owned(), e.encode(), false)
        };
        let t0 = Instant::now();
        client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        tokio::time::timeout(Duration::from_secs(10), live.until(device.as_str(), this))
            .await
            .map_err(|_| format!("no live entry for {device} seq {this} within 10 s"))??;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if state {
            states_ms.push(ms)
        } else {
            events_ms.push(ms)
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut all: Vec<f64> = events_ms.iter().chain(&states_ms).copied().collect();
    let _ = client.disconnect().await;
    Ok(json!({
        "all": percentiles(&mut all),
        "check_completed": percentiles(&mut events_ms),
        "state": percentiles(&mut states_ms),
    }))
}

/// A subscriber of `/api/v1/live` (HTTP/1.0, so the body is the raw event stream).
struct Live {
    reader: BufReader<TcpStream>,
}

impl Live {
    async fn open(base: &str) -> Result<Live, Fail> {
        let addr = base.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        stream
            .write_all(b"GET /api/v1/live HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            .await?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        if !line.contains(" 200") {
            return Err(format!("/api/v1/live: {}", line.trim()).into());
        }
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            if line.trim().is_empty() {
                break;
            }
        }
        Ok(Live { reader })
    }

    /// Reads events until a `history` entry of `device` with `seq`.
    async fn until(&mut self, device: &str, seq: u64) -> Result<(), Fail> {
        let mut name = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Err("the live stream ended".into());
            }
            let line = line.trim_end();
            if let Some(event) = line.strip_prefix("event:") {
                name = event.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data:") {
                if name == "history" {
                    let entry: Value = serde_json::from_str(data.trim())?;
                    if entry["device"] == device && entry["seq"] == seq {
                        return Ok(());
                    }
                }
            } else if line.is_empty() {
                name.clear();
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Http {
    reader: BufReader<TcpStream>,
}

impl Http {
    async fn connect(base: &str) -> Result<Http, Fail> {
        let addr = base.trim_start_matches("http://").trim_end_matches('/');
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            reader: BufReader::new(stream),
        })
    }

    async fn get_json(&mut self, path: &str) -> Result<Value, Fail> {
        let (status, body) = self.get(path).await?;
        if status != 200 {
            return Err(format!("GET {path}: {status}").into());
        }
        Ok(serde_json::from_slice(&body)?)
    }

    async fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), Fail> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("GET {path}: bad status line {line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding")
                    && value.eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            let length = length.ok_or_else(|| format!("GET {path}: no length"))?;
            body.resize(length, 0);
            self.reader.read_exact(&mut body).await?;
        }
        Ok((status, body))
    }
}
