#!/usr/bin/env bash
# Rollout benchmark (issue 16, item 6): the release `roomready-controller run`, as its own
# process on Mosquitto, rolls a signed agent release out to DEVICES (10,000) simulated devices
# in rings 0, 1 and 2, on this machine's cores.
#
# Usage:
#   tests/bench/rollout.sh                  # build (release), measure, update docs/benchmarks.md
#   CONTROLLER_BIN=target/release/roomready-controller ROOMREADY_SIM=target/release/roomready-sim \
#       DEVICES=1000 OUT=/tmp/b.md tests/bench/rollout.sh
#
# The fleet is simulator/scenarios/rollout-10k.toml (its counts rewritten for another DEVICES):
# ring 0 1 % of the devices, ring 1 10 %, ring 2 the rest, every device a real agent that can
# update itself from the scenario's signed release (update server, signature, self-test, swap,
# restart, trial confirmed by its first state). `roomready-sim run --hold` keeps the fleet up
# until this script stops it. The controller gets the run's topic prefix (`sim<pid>s<seed>`);
# once it has every device placed and online, and after IDLE (10) seconds measured at rest, the
# rollout is started with `roomready-controller rollout start` (RINGS, default
# 0:10:0,1:100:0,2:500:0: RING:CONCURRENCY:GATE_MINUTES; a gate of 0 minutes is the shortest
# the plan allows) and followed through /api/v1/rollouts until it is done. It records:
#   - time from start to done (the rollout's created_at to its `done` log line) and per ring
#     (its first update sent to its last device healthy);
#   - the controller's CPU time (utime + stime from /proc/PID/stat) over the rollout, in seconds
#     and as % of one core, and its peak RSS (VmHWM); the same for roomready-sim and Mosquitto;
#   - where each device's time goes (the runner's step instants, the history's send and answer
#     times) and, with PERF=1, where the controller's CPU goes: `perf record` (99 Hz, DWARF
#     stacks) over the rollout, each sample put under the store call or task it is in;
#   - then checks that the rollout is done with every device healthy and none failed, that each
#     device was sent exactly one update command and answered `succeeded` exactly once, that
#     every device reports the new agent version, and that the simulator's own judgement
#     (every device reported, no `seq` gap) passes; any miss fails the script.
#
# Environment: CONTROLLER_BIN and ROOMREADY_SIM (default: cargo build --release -p
# roomready-controller -p roomready-simulator, honouring CARGO_TARGET_DIR), DEVICES, RINGS, IDLE,
# TIMEOUT (3600 s for the rollout), OUT (docs/benchmarks.md), KEEP (a directory to keep the
# run's files in: the rollout's detail, the history pages, the samples, the logs), PERF (1:
# profile the controller; without CONTROLLER_BIN it builds one with symbols under
# $CARGO_TARGET_DIR/perf).
# Requirements: Linux /proc, mosquitto (Debian: mosquitto), python3, curl, ss (iproute2); perf
# for PERF=1. Not part of CI.

set -euo pipefail
export LC_ALL=C

die() { printf 'rollout.sh: %s\n' "$*" >&2; exit 1; }
note() { printf 'rollout.sh: %s\n' "$*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# free_port, hwm
# shellcheck source=tests/bench/lib.sh
source "$REPO/tests/bench/lib.sh"
DEVICES=${DEVICES:-10000}
RINGS=${RINGS:-0:10:0,1:100:0,2:500:0}
IDLE=${IDLE:-10}
TIMEOUT=${TIMEOUT:-3600}
OUT=${OUT:-$REPO/docs/benchmarks.md}
SCENARIO=$REPO/simulator/scenarios/rollout-10k.toml
MOSQUITTO=$(command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null || true)
[[ -n $MOSQUITTO ]] || die "mosquitto is required (Debian: apt-get install mosquitto)"
for tool in python3 curl ss; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required (Debian: apt-get install python3 curl iproute2)"
done
[[ -r /proc/self/status ]] || die "Linux /proc is required"
for n in DEVICES IDLE TIMEOUT; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"
done
[[ $DEVICES -ge 100 ]] || die "DEVICES must be at least 100 (ring 0 is 1 % of them)"
[[ $RINGS =~ ^0:[0-9]+:[0-9]+,1:[0-9]+:[0-9]+,2:[0-9]+:[0-9]+$ ]] \
    || die "RINGS must be 0:C:G,1:C:G,2:C:G (RING:CONCURRENCY:GATE_MINUTES)"

TARGET=${CARGO_TARGET_DIR:-$REPO/target}
if [[ -n ${PERF:-} ]]; then
    command -v perf >/dev/null 2>&1 || die "PERF needs perf (Debian: linux-perf)"
    if [[ -z ${CONTROLLER_BIN:-} ]]; then
        # The same release build with its symbols and line tables kept (the profile's stacks
        # need them), in a target directory of its own so the stripped one is not rebuilt.
        note "building roomready-controller (release, with symbols) for the profile"
        (cd "$REPO" && CARGO_TARGET_DIR=$TARGET/perf CARGO_PROFILE_RELEASE_STRIP=none \
            CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
            cargo build --release -p roomready-controller --bin roomready-controller >&2)
        CONTROLLER_BIN=$TARGET/perf/release/roomready-controller
    fi
fi
if [[ -z ${CONTROLLER_BIN:-} || -z ${ROOMREADY_SIM:-} ]]; then
    note "building roomready-controller and roomready-sim (release)"
    (cd "$REPO" && cargo build --release -p roomready-controller -p roomready-simulator \
        --bin roomready-controller --bin roomready-sim >&2)
    CONTROLLER_BIN=${CONTROLLER_BIN:-$TARGET/release/roomready-controller}
    ROOMREADY_SIM=${ROOMREADY_SIM:-$TARGET/release/roomready-sim}
fi
[[ -x $CONTROLLER_BIN ]] || die "not an executable: $CONTROLLER_BIN"
[[ -x $ROOMREADY_SIM ]] || die "not an executable: $ROOMREADY_SIM"

WORK=$(mktemp -d)
PIDS=()
# Stops PID with SIGTERM, then SIGKILL after 30 s.
stop() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    # Newest first: the sampler, the controller, the fleet, then their broker.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop "${PIDS[i]}"; done
    wait 2>/dev/null || true
    if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cp -r "$WORK"/. "$KEEP"/; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Clock ticks of CPU time (utime + stime) PID has used; 0 once it is gone.
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# kB of VmRSS of PID now.
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now_ms() { date +%s%3N; }
# Clock ticks the whole machine spent busy (all CPUs: everything but idle and iowait).
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)

# The scenario, its ring sizes rewritten for DEVICES: 1 %, 10 %, the rest.
RING0=$((DEVICES / 100)) RING1=$((DEVICES / 10))
RING2=$((DEVICES - RING0 - RING1))
python3 - "$SCENARIO" "$WORK/scenario.toml" "$RING0" "$RING1" "$RING2" <<'PY'
import re, sys
src, dst, *counts = sys.argv[1:]
text = open(src).read()
for ring, count in enumerate(counts):
    text, n = re.subn(rf'(name = "ring{ring}"\ncount = )\d+', rf"\g<1>{count}", text)
    assert n == 1, f"group ring{ring} not found in {src}"
open(dst, "w").write(text)
PY
VERSION=$(awk -F'"' '/^\[update\]/ {u = 1} u && /^version/ {print $2; exit}' "$SCENARIO")
[[ -n $VERSION ]] || die "no [update] version in $SCENARIO"

ulimit -n "$(ulimit -Hn)"
PORT=$(free_port)
cat >"$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
max_connections -1
persistence false
max_queued_messages 0
max_inflight_messages 1000
log_dest none
CONF
"$MOSQUITTO" -c "$WORK/mosquitto.conf" &
MOSQ_PID=$!
PIDS+=("$MOSQ_PID")
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
done

note "fleet: $DEVICES devices ($RING0 / $RING1 / $RING2 in rings 0 / 1 / 2), update to $VERSION"
"$ROOMREADY_SIM" run "$WORK/scenario.toml" --seed 1 --broker "mqtt://127.0.0.1:$PORT" --hold \
    --json "$WORK/sim.json" >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
PIDS+=("$SIM_PID")
FLEET_T0=$(now_ms)
# The run's own topic prefix (simulator/README.md: `sim<pid>s<seed>`).
PREFIX="sim${SIM_PID}s1"

HTTP_PORT=$(free_port)
API="http://127.0.0.1:$HTTP_PORT/api/v1"
cat >"$WORK/controller.toml" <<CONF
broker_url = "mqtt://127.0.0.1:$PORT"
topic_prefix = "$PREFIX"
database = "controller.db"
listen = "127.0.0.1:$HTTP_PORT"
CONF
RUST_LOG=warn "$CONTROLLER_BIN" run --config "$WORK/controller.toml" 2>"$WORK/controller.err" &
CONTROLLER=$!
PIDS+=("$CONTROLLER")

# One line a second: ms, then CPU ticks and RSS (kB) of the controller, the fleet and the broker.
sample() {
    while kill -0 "$CONTROLLER" 2>/dev/null; do
        echo "$(now_ms) $(ticks "$CONTROLLER") $(rss "$CONTROLLER") $(ticks "$SIM_PID") $(rss "$SIM_PID") $(ticks "$MOSQ_PID") $(rss "$MOSQ_PID")"
        sleep 1
    done
}
sample >"$WORK/samples" &
PIDS+=("$!")

# GET PATH into FILE; false when the controller does not answer.
get() { curl -fsS --max-time 30 -o "$2" "$API$1" 2>/dev/null; }

note "waiting for the controller to have every device placed and online"
deadline=$((SECONDS + 600))
while :; do
    kill -0 "$SIM_PID" 2>/dev/null || die "roomready-sim exited: $(tail -20 "$WORK/sim.err" "$WORK/sim.out")"
    kill -0 "$CONTROLLER" 2>/dev/null || die "the controller exited: $(tail -20 "$WORK/controller.err")"
    if get /groups "$WORK/groups.json"; then
        counts=$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["rings"]; print(sum(r["devices"] for r in g), sum(r["online"] for r in g))' "$WORK/groups.json")
        [[ $counts == "$DEVICES $DEVICES" ]] && break
    fi
    [[ $SECONDS -lt $deadline ]] || die "the controller has ${counts:-no} devices (placed, online) after 600 s"
    sleep 1
done
FLEET_MS=$(($(now_ms) - FLEET_T0))
note "fleet up in the controller after $((FLEET_MS / 1000)) s; $IDLE s at rest"
sleep 5
IDLE_T0=$(now_ms) IDLE_C0=$(ticks "$CONTROLLER")
sleep "$IDLE"
IDLE_T1=$(now_ms) IDLE_C1=$(ticks "$CONTROLLER")

note "rollout start --rings $RINGS --version $VERSION"
START_MS=$(now_ms) START_CTRL=$(ticks "$CONTROLLER") START_SIM=$(ticks "$SIM_PID") START_MOSQ=$(ticks "$MOSQ_PID")
START_BUSY=$(busy) START_LOAD=$(cut -d' ' -f1 /proc/loadavg)
PERF_PID=
if [[ -n ${PERF:-} ]]; then
    # 99 samples a second of the controller's own CPU time, with DWARF call stacks: a few
    # thousand samples over the rollout, little overhead.
    perf record -q -F 99 --call-graph dwarf,16384 -p "$CONTROLLER" -o "$WORK/perf.data" 2>"$WORK/perf.err" &
    PERF_PID=$!
    PIDS+=("$PERF_PID")
    sleep 1
fi
started=$("$CONTROLLER_BIN" rollout start --config "$WORK/controller.toml" --target agent \
    --version "$VERSION" --rings "$RINGS") || die "rollout start failed"
ID=$(awk '/^rollout [0-9]+ started$/ {print $2}' <<<"$started")
[[ -n $ID ]] || die "unexpected answer from rollout start: $started"

deadline=$((SECONDS + TIMEOUT))
last_note=0 state=
while :; do
    if get /rollouts "$WORK/rollouts.json"; then
        state= stages=
        read -r state stages < <(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1])):
    if r["id"] == int(sys.argv[2]):
        print(r["state"], ",".join(f"{s}={n}" for s, n in r["stages"] if n))
' "$WORK/rollouts.json" "$ID") || true
        if [[ $state == done ]]; then break; fi
        [[ -z $state || $state == running ]] || die "rollout $ID is $state: $stages"
        if [[ $((SECONDS - last_note)) -ge 15 ]]; then note "rollout $ID: $stages"; last_note=$SECONDS; fi
    fi
    kill -0 "$CONTROLLER" 2>/dev/null || die "the controller exited: $(tail -20 "$WORK/controller.err")"
    [[ $SECONDS -lt $deadline ]] || die "rollout $ID not done after $TIMEOUT s: ${stages:-}"
    sleep 1
done
DONE_MS=$(now_ms) DONE_CTRL=$(ticks "$CONTROLLER") DONE_SIM=$(ticks "$SIM_PID") DONE_MOSQ=$(ticks "$MOSQ_PID")
DONE_BUSY=$(busy) DONE_LOAD=$(cut -d' ' -f1 /proc/loadavg)
CTRL_HWM=$(hwm "$CONTROLLER") SIM_HWM=$(hwm "$SIM_PID") MOSQ_HWM=$(hwm "$MOSQ_PID")
if [[ -n $PERF_PID ]]; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    perf script -i "$WORK/perf.data" -F comm,tid,ip,sym >"$WORK/stacks.txt" 2>/dev/null \
        || die "perf script failed: $(tail -5 "$WORK/perf.err")"
    grep -q 'roomready_controller::' "$WORK/stacks.txt" \
        || die "the profile has no roomready_controller symbols: is $CONTROLLER_BIN stripped?"
fi
THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$CONTROLLER/status")
note "rollout $ID done after $(((DONE_MS - START_MS) / 1000)) s; checking every device"

# What the controller knows, for the checks: the rollout, every device's row, and the update
# commands and answers since the start (history pages of up to 10,000, newest first).
get "/rollouts/$ID" "$WORK/detail.json" || die "GET /rollouts/$ID failed"
pages=$(((DEVICES + 999) / 1000))
for page in $(seq 1 "$pages"); do
    get "/devices?per_page=1000&page=$page" "$WORK/devices-$page.json" || die "GET /devices page $page failed"
done
since=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["created_at"])' "$WORK/detail.json")
for kind in command response; do
    before= n=0
    while :; do
        n=$((n + 1))
        get "/history?kind=$kind&since=$since&limit=10000${before:+&before=$before}" "$WORK/history-$kind-$n.json" \
            || die "GET /history ($kind) failed"
        before=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); print(min(e["id"] for e in h) if len(h) == 10000 else "")' "$WORK/history-$kind-$n.json")
        [[ -n $before ]] || break
    done
done

# The fleet's own judgement: stopped now, it judges and writes its report.
stop "$SIM_PID"
[[ -s $WORK/sim.json ]] || die "roomready-sim wrote no report: $(tail -20 "$WORK/sim.err")"
stop "$CONTROLLER"

MOSQ_VERSION=$({ "$MOSQUITTO" -h 2>/dev/null || true; } | awk 'NR==1 {print $3}')
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
REPORT="$WORK/report.md"
MEASURED="START_MS=$START_MS DONE_MS=$DONE_MS IDLE_T0=$IDLE_T0 IDLE_T1=$IDLE_T1 IDLE_C0=$IDLE_C0 IDLE_C1=$IDLE_C1
START_CTRL=$START_CTRL DONE_CTRL=$DONE_CTRL START_SIM=$START_SIM DONE_SIM=$DONE_SIM START_MOSQ=$START_MOSQ
DONE_MOSQ=$DONE_MOSQ START_BUSY=$START_BUSY DONE_BUSY=$DONE_BUSY CTRL_HWM=$CTRL_HWM SIM_HWM=$SIM_HWM
MOSQ_HWM=$MOSQ_HWM THREADS=$THREADS FLEET_MS=$FLEET_MS CLK_TCK=$CLK_TCK DEVICES=$DEVICES CORES=$(nproc)"
echo "$MEASURED" >"$WORK/measured"
RB_WORK=$WORK RB_VERSION=$VERSION RB_ID=$ID RB_RINGS=$RINGS RB_CPU_MODEL=$CPU_MODEL \
RB_KERNEL=$(uname -sr) RB_COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown) \
RB_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') RB_MOSQ=$MOSQ_VERSION RB_LOAD="$START_LOAD $DONE_LOAD" \
    python3 - >"$REPORT" <<'PY'
import glob, json, os, sys
from collections import Counter
from datetime import datetime

env = lambda k: os.environ["RB_" + k]
work, version, rid, rings_arg = env("WORK"), env("VERSION"), env("ID"), env("RINGS")
cpu_model, kernel, commit, date, mosq = env("CPU_MODEL"), env("KERNEL"), env("COMMIT"), env("DATE"), env("MOSQ")
load0, load1 = env("LOAD").split()
m = {k: int(v) for k, v in (kv.split("=") for kv in open(os.path.join(work, "measured")).read().split())}
devices, clk, cores, threads, fleet_ms = m["DEVICES"], m["CLK_TCK"], m["CORES"], m["THREADS"], m["FLEET_MS"]
idle_t0, idle_t1, idle_c0, idle_c1 = m["IDLE_T0"], m["IDLE_T1"], m["IDLE_C0"], m["IDLE_C1"]
start_ms, done_ms = m["START_MS"], m["DONE_MS"]
c0, c1, s0, s1 = m["START_CTRL"], m["DONE_CTRL"], m["START_SIM"], m["DONE_SIM"]
m0, m1, b0, b1 = m["START_MOSQ"], m["DONE_MOSQ"], m["START_BUSY"], m["DONE_BUSY"]
ctrl_hwm, sim_hwm, mosq_hwm = m["CTRL_HWM"], m["SIM_HWM"], m["MOSQ_HWM"]
load = lambda p: json.load(open(os.path.join(work, p)))
detail = load("detail.json")
summary = detail["summary"]
rows = [d for f in sorted(glob.glob(os.path.join(work, "devices-*.json"))) for d in json.load(open(f))["devices"]]
history = lambda kind: [e for f in glob.glob(os.path.join(work, f"history-{kind}-*.json")) for e in json.load(open(f))]
commands, responses = history("command"), history("response")
sim = load("sim.json")
ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

# The checks: any failure fails the benchmark.
problems = []
stages = Counter(d["stage"] for d in detail["devices"])
if summary["state"] != "done":
    problems.append(f"rollout state {summary['state']}")
if len(detail["devices"]) != devices or stages["healthy"] != devices:
    problems.append(f"{len(detail['devices'])} devices in the rollout, stages {dict(stages)}")
actions = [l["action"] for l in detail["log"]]
if actions != ["started", "done"]:
    problems.append(f"log {actions}")
sent = Counter(e["device"] for e in commands if e["data"].get("by") == f"rollout #{rid}")
if len(sent) != devices or set(sent.values()) != {1}:
    problems.append(f"update commands: {len(sent)} devices, per device {Counter(sent.values())}")
if len(commands) != sum(sent.values()):
    problems.append(f"{len(commands)} commands sent since the start, {sum(sent.values())} by the rollout")
answers = Counter((e["device"], e["data"].get("status")) for e in responses)
succeeded = Counter(d for (d, s), n in answers.items() if s == "succeeded" for _ in range(n))
bad = {k: n for k, n in answers.items() if k[1] in ("failed", "rejected")}
if len(succeeded) != devices or set(succeeded.values()) != {1} or bad:
    problems.append(f"answers: {len(succeeded)} devices succeeded, per device {Counter(succeeded.values())}, failed/rejected {len(bad)}")
versions = Counter(r.get("agent_version") for r in rows)
if len(rows) != devices or versions[version] != devices:
    problems.append(f"{len(rows)} devices listed, agent versions {dict(versions)}")
for e in sim["expectations"]:
    if e["status"] != "pass":
        problems.append(f"roomready-sim: {e['name']}: expected {e['expected']}, observed {e['observed']}")
if problems:
    sys.stderr.write("rollout.sh: checks failed:\n  " + "\n  ".join(problems) + "\n")
    sys.exit(1)

# Times: the controller's own clock, from the rollout's creation to its `done` line.
created = ts(summary["created_at"])
done_at = ts(next(l["at"] for l in detail["log"] if l["action"] == "done"))
total = done_at - created
plan = summary["plan"]["rings"]
rings = []
for r in plan:
    mine = [d for d in detail["devices"] if d["ring"] == r["ring"]]
    first = min(ts(d["sent_at"]) for d in mine)
    last = max(ts(d["healthy_since"]) for d in mine)
    rings.append((r, len(mine), first, last))
gates = sum(r["gate"] for r in plan)

# CPU: the samples (one a second) give each window's ticks.
samples = [list(map(int, l.split())) for l in open(os.path.join(work, "samples")) if len(l.split()) == 7]
def window(a_ms, b_ms, col):
    inside = [s for s in samples if a_ms <= s[0] <= b_ms]
    if len(inside) < 2:
        return None
    return (inside[-1][col] - inside[0][col]) / clk, (inside[-1][0] - inside[0][0]) / 1000
secs = lambda a, b: (b - a) / clk
wall_s = (done_ms - start_ms) / 1000
ctrl_s, sim_s, mosq_s = secs(c0, c1), secs(s0, s1), secs(m0, m1)
idle_s = (idle_t1 - idle_t0) / 1000
idle_pct = 100 * secs(idle_c0, idle_c1) / idle_s
peak_rss = lambda col: max((s[col] for s in samples), default=0)
mib = lambda kb: kb / 1024
pct = lambda c, w: f"{100 * c / w:.0f} %"

print(f"## Rollout: {devices:,} devices in 3 rings (tests/bench/rollout.sh)\n")
print("### How it was produced\n")
print(f"Generated by `tests/bench/rollout.sh` on {date}: {cores} CPU(s) ({cpu_model}), {kernel}; commit {commit}. "
      f"Three processes share those cores: the release `roomready-controller run` (defaults: SQLite in WAL, "
      f"MQTT 5), Mosquitto {mosq} on loopback (no persistence, unbounded queues), and the fleet, "
      f"`roomready-sim run simulator/scenarios/rollout-10k.toml --hold` (release): {devices:,} real agents "
      f"(rumqttc, journal in memory, no endpoints probed), {rings[0][1]:,} in ring 0, {rings[1][1]:,} in ring 1 "
      f"and {rings[2][1]:,} in ring 2 (1 %, 10 %, the rest), each able to update itself from the run's update "
      f"server: a freshly signed release {version} (above the agent's 0.1.0) that each device downloads, "
      "checks (digest, ed25519 signature), self-tests (a `sh` process), swaps in and restarts into; the new "
      "agent confirms its trial with its first state and answers `succeeded`.\n")
print(f"Once the controller had every device placed and online ({int(fleet_ms)/1000:.0f} s after the fleet "
      f"started), the rollout was started with `roomready-controller rollout start --target agent "
      f"--version {version} --rings {rings_arg}` (RING:CONCURRENCY:GATE_MINUTES) and followed through "
      "`/api/v1/rollouts` once a second. The health gate is **0 minutes**, the shortest the plan allows "
      "(`Plan::check` has no lower bound): a device is healthy at the first runner step that sees it online "
      "with a state made after its update and a verdict no worse than before, so the times below are net of "
      "any gate. CPU time is utime + stime from `/proc/PID/stat`; peak RSS is VmHWM.\n")
print("Checked at the end, or the script fails: the rollout `done` with its log `started`, `done`; "
      f"{devices:,} devices `healthy`, none failed or rolled back; exactly one update command per device "
      "(the controller's history since the start holds no other) and exactly one `succeeded` answer, no "
      f"`failed` or `rejected`; every device's own latest state reports agent {version}; and the fleet's own "
      "judgement, made when it was stopped: every device reported, no `seq` gap in what any device sent "
      "before, during or after its update.\n")
print("### Figures\n")
print("| measure | value |")
print("|---|---:|")
print(f"| start to done, {devices:,} devices, 3 rings (controller clock) | **{total:.1f} s** |")
print(f"| … net of the 3 health gates ({gates // 60} min in all) | {total - gates:.1f} s |")
for r, n, first, last in rings:
    print(f"| ring {r['ring']}: {n:,} devices, {r['concurrency']:,} at once, first sent to last healthy | {last - first:.1f} s ({n / max(last - first, 1e-9):.1f} devices/s) |")
print(f"| start → first update sent (the runner's next step) | {rings[0][2] - created:.1f} s |")
for (a, _, _, last), (b, _, first, _) in zip(rings, rings[1:]):
    print(f"| ring {a['ring']} healthy → ring {b['ring']}'s first update sent | {first - last:.1f} s |")
print(f"| controller CPU over the rollout ({wall_s:.0f} s wall) | {ctrl_s:.1f} s, {pct(ctrl_s, wall_s)} of one core |")
print(f"| controller CPU at rest before it, {devices:,} devices online | {idle_pct:.1f} % of one core |")
print(f"| controller peak RSS (VmHWM, whole run) | {mib(ctrl_hwm):.0f} MiB ({threads} threads) |")
print(f"| roomready-sim CPU over the rollout | {sim_s:.1f} s, {pct(sim_s, wall_s)} of one core |")
print(f"| roomready-sim peak RSS ({devices:,} agents, update server, dashboard) | {mib(sim_hwm):.0f} MiB |")
print(f"| Mosquitto CPU over the rollout | {mosq_s:.1f} s, {pct(mosq_s, wall_s)} of one core |")
print(f"| Mosquitto peak RSS | {mib(mosq_hwm):.0f} MiB |")
print(f"| all three, CPU over the rollout | {ctrl_s + sim_s + mosq_s:.1f} s, {pct(ctrl_s + sim_s + mosq_s, wall_s)} of one core ({cores} cores) |")
others = secs(b0, b1) - (ctrl_s + sim_s + mosq_s)
print(f"| everything else on the machine meanwhile (/proc/stat) | {max(others, 0):.1f} s, {pct(max(others, 0), wall_s)} of one core (load average {load0} → {load1}) |")
print()
print("Per ring, CPU as % of one core (from the once-a-second samples):\n")
print("| ring | window | controller | roomready-sim | Mosquitto |")
print("|---|---:|---:|---:|---:|")
for r, n, first, last in rings:
    a, b = int(first * 1000), int(last * 1000)
    cols = [window(a, b, col) for col in (1, 3, 5)]
    if any(c is None for c in cols):
        print(f"| {r['ring']} | {last - first:.1f} s | (too short to sample) | | |")
    else:
        print(f"| {r['ring']} | {last - first:.1f} s | " + " | ".join(pct(c, w) for c, w in cols) + " |")
print()

# Where a device's time goes, from the timestamps: the runner stamps every device it moves in
# one step with that step's instant (sent_at, healthy_since), the controller's history the
# moment each command was recorded and sent and each answer received.
recorded = {e["data"]["id"]: ts(e["at"]) for e in commands}
answered = {e["data"]["id"]: ts(e["at"]) for e in responses if e["data"].get("status") == "succeeded"}
# When the device made its answer (its own clock, this machine's).
made = {e["data"]["id"]: ts(e["ts"]) for e in responses if e["data"].get("status") == "succeeded"}
def q(xs):
    xs = sorted(xs)
    return (xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.9))]) if xs else (0.0, 0.0)
fmt = lambda pq: f"{pq[0]:.2f} / {pq[1]:.2f} s"
lat = {}
all_steps = set()
for r, n, first, last in rings:
    mine = [d for d in detail["devices"] if d["ring"] == r["ring"]]
    steps = sorted({ts(d["sent_at"]) for d in mine} | {ts(d["healthy_since"]) for d in mine})
    all_steps |= set(steps)
    lat[r["ring"]] = dict(
        steps=len(steps), interval=q([b - a for a, b in zip(steps, steps[1:])]),
        send=q([recorded[d["command"]] - ts(d["sent_at"]) for d in mine]),
        device=q([made[d["command"]] - recorded[d["command"]] for d in mine]),
        transit=q([answered[d["command"]] - made[d["command"]] for d in mine]),
        observe=q([ts(d["healthy_since"]) - answered[d["command"]] for d in mine]),
        total=q([ts(d["healthy_since"]) - ts(d["sent_at"]) for d in mine]))
print("Where each device's time went, p50 / p90 per ring (this machine's clock; the runner stamps every "
      "device it moves in a step with that step's instant; the history has when each command was sent, "
      "when the device made its answer and when the controller received it):\n")
print("| ring | at once | runner steps, interval | step → command sent | sent → `succeeded` made (the device's update) | made → received (broker, ingest) | received → healthy (the next step) | step → healthy |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r, n, first, last in rings:
    l = lat[r["ring"]]
    print(f"| {r['ring']} | {r['concurrency']:,} | {fmt(l['interval'])} ({l['steps']} steps) | {fmt(l['send'])} "
          f"| {fmt(l['device'])} | {fmt(l['transit'])} | {fmt(l['observe'])} | {fmt(l['total'])} |")
# The biggest step: how long its sends took, one after the other.
by_step = Counter(d["sent_at"] for d in detail["devices"])
big_step, big_n = by_step.most_common(1)[0]
big_s = max(recorded[d["command"]] for d in detail["devices"] if d["sent_at"] == big_step) - ts(big_step)
print()
print(f"Fleet: {sim['messages']:,} messages seen by the simulator's dashboard over the run; "
      f"ramp-up {sim['ramp_ms'] / 1000:.1f} s. Update commands {len(commands):,}, answers {len(responses):,}.\n")

# The profile (PERF=1): each sample under the store call or task it is in, innermost known frame
# first. Blocking-task labels can be folded together by the linker; the store functions cannot.
profile = None
stacks_file = os.path.join(work, "stacks.txt")
if os.path.exists(stacks_file):
    import re
    stacks = [x for x in open(stacks_file).read().split("\n\n") if x.strip()]
    rules = [
        ("observe", "runner: `observe`, the rollout's devices 512 per query", r"Store>::observe|sql::rollouts::observe"),
        ("detail", "runner: read the rollout with all its devices", r"sql::rollouts::detail"),
        ("list", "rollout list with stage counts (the runner each step, this script once a second)", r"sql::rollouts::(summary|list)"),
        ("save", "runner: save the devices that changed", r"save_rollout|sql::rollouts::save"),
        ("send", "runner: send (command and device look-ups, record, publish)", r"Store>::command\b|record_command|Store>::device\b|send_as"),
        ("step", "runner: the step itself and the rest of its tick", r"rollouts::run|rollouts::step"),
        ("commit", "ingest: commit to SQLite", r"Store>::commit|ingest::commit"),
        ("receive", "ingest: MQTT receive and decode", r"ingest::|rumqttc"),
        ("web", "web: HTTP and pages", r"web::|axum|hyper"),
    ]
    counts = Counter()
    locks = 0
    for x in stacks:
        for key, _, pat in rules:
            if re.search(pat, x):
                counts[key] += 1
                if key == "observe" and re.search(r"fcntl|posix_lock|unixShm|unixLock|unixUnlock", x):
                    locks += 1
                break
        else:
            counts["other"] += 1
    total_samples = len(stacks)
    share = {k: counts[k] / total_samples for k in counts}
    runner = sum(share.get(k, 0) for k in ("observe", "detail", "save", "send", "step"))
    profile = dict(share=share, runner=runner, n=total_samples,
                   locks=locks / max(counts["observe"], 1),
                   observe_ms=1000 * share.get("observe", 0) * ctrl_s / max(len(all_steps), 1),
                   runner_ms=1000 * runner * ctrl_s / max(len(all_steps), 1))
    print(f"Where the controller's CPU went over the rollout: `perf record -F 99 --call-graph dwarf` of the "
          f"controller process ({total_samples:,} samples, a build of the same commit with its symbols kept), "
          "each sample put under the store call or task it is in:\n")
    print("| | share of the controller's CPU |")
    print("|---|---:|")
    for key, label, _ in rules + [("other", "other: the async scheduler, timers, allocator", "")]:
        if counts[key]:
            print(f"| {label} | {100 * share[key]:.1f} % |")
    print(f"| **the rollout runner in all** (observe, detail, save, send, step) | **{100 * runner:.1f} %** |")
    print()

# The reading.
r2, n2, first2, last2 = rings[2]
l0, l1, l2 = lat[rings[0][0]["ring"]], lat[rings[1][0]["ring"]], lat[r2["ring"]]
rest_kb = max((x[2] for x in samples if x[0] <= start_ms), default=0)
print("### Reading\n")
print(f"- **What the time is.** Ring 2 is {last2 - first2:.0f} s of the {total:.0f} s. With a 0-minute gate "
      "nothing waits on a clock: a ring takes about its size / its concurrency × one device's time from "
      "the step that sends its update to the step that finds it healthy, p50 "
      f"{l0['total'][0]:.2f} s in ring 0, {l1['total'][0]:.2f} s in ring 1, {l2['total'][0]:.2f} s in ring 2. "
      f"In ring 2 that is mostly the device's own update, p50 {l2['device'][0]:.2f} s; it was "
      f"{l0['device'][0]:.2f} s with {rings[0][0]['concurrency']} updates in flight (ring 0) and "
      f"{l1['device'][0]:.2f} s with {rings[1][0]['concurrency']} (ring 1). It grows with the updates in "
      f"flight because all {devices:,} simulated agents (downloads, signature checks, a `sh` self-test each, "
      f"restarts, reconnections, first states) run in one process on the same {cores} cores as the "
      f"controller and the broker: ring 2 went at {n2 / max(last2 - first2, 1e-9):.0f} devices/s, which is "
      "what this machine's fleet manages, not a limit of the controller. The controller's own share of a "
      f"device's time is small: p50 {l2['send'][0]:.2f} s from the step's decision to the command sent, "
      f"{l2['transit'][0]:.3f} s for the answer to cross the broker and be committed, and "
      f"{l2['observe'][0]:.2f} s from then to `healthy` (the next step: steps came every "
      f"{l2['interval'][0]:.2f} s p50 in ring 2, the runner's floor being 0.25 s while commits wake it; "
      f"in ring 0 that floor is most of a device's time). The biggest step, {big_n} updates at once, took "
      f"{big_s:.2f} s to send them, one after the other. Real devices update each on their own hardware: "
      f"there ring 2 would take about {n2:,} / {r2['concurrency']} × one real update (download, restart, "
      "first check), and the controller's fraction of a second per device would not be what sets it.")
print(f"- **Controller CPU and memory.** {pct(ctrl_s, wall_s)} of one core over the rollout, against "
      f"{idle_pct:.1f} % at rest with the same {devices:,} devices online; peak RSS {mib(ctrl_hwm):.0f} MiB, "
      f"up from {mib(rest_kb):.0f} MiB just before the rollout (it grew through ring 2).")
if profile:
    sh = profile["share"]
    ingest = sh.get("commit", 0) + sh.get("receive", 0)
    verdict = (f"At {devices:,} devices it is the controller's hotspot." if profile["runner"] > ingest
               else f"At {devices:,} devices it is not yet the controller's hotspot.")
    tenfold = 10 * profile["runner_ms"]
    if tenfold > 250:
        outlook = (f"At this size a step fits the 0.25 s floor; in a rollout ten times the size "
                   f"({10 * devices:,} devices) a step would cost about {tenfold / 1000:.1f} s of CPU, steps "
                   "would come no faster than that, the runner alone would keep about a core busy for the "
                   "whole rollout, and the time from an answer to `healthy` would grow with it.")
    else:
        outlook = (f"In a rollout ten times the size ({10 * devices:,} devices) a step would cost about "
                   f"{tenfold:.0f} ms of CPU, still within the 0.25 s floor.")
    print(f"- **Does the rollout runner scale? {verdict}** It took {100 * profile['runner']:.0f} % of the "
          f"controller's CPU over the rollout, ingest {100 * ingest:.0f} %, `observe` "
          f"{100 * sh.get('observe', 0):.0f} %, reading the rollout with its devices "
          f"{100 * sh.get('detail', 0):.0f} %. Every step re-reads the rollout with all its {devices:,} devices "
          "and asks `observe` (controller/src/store/sql/rollouts.rs) about those in play (in flight, or "
          "waiting in the current ring or the next; controller/src/rollouts/step.rs, `in_play`) 512 at a "
          "time: one query for their rows and one for the answers to their commands, in one read "
          f"transaction, at most {2 * -(-devices // 512)} queries a step. The first run of this benchmark "
          f"(commit 218ece7) asked one or two point queries per device of the rollout, up to {2 * devices:,} "
          "a step, each in a read transaction of its own: `observe` was 49 % of the controller's CPU, the "
          "runner 67 %, peak RSS 156 MiB. Now `observe` costs about "
          f"{profile['observe_ms']:.0f} ms of CPU per step and the whole runner {profile['runner_ms']:.0f} ms "
          f"(their CPU over the {len(all_steps)} steps that moved a device; steps that moved nothing are not "
          "counted, so these are upper bounds); reading and saving the rollout's device list still grows with "
          f"the rollout's size. {outlook}")
else:
    print("- **Does the rollout runner scale?** Run with `PERF=1` for where the controller's CPU goes.")
if others > 0.1 * wall_s:
    print(f"- **This run shared the machine**: other processes used {pct(others, wall_s)} of one core while "
          f"it ran (load average {load0} → {load1}). The device side, bound by CPU, is what that slows; "
          "the controller's share (its steps, its CPU per step) much less.")
PY
cat "$REPORT"
"$REPO/tests/bench/splice.sh" rollout "$REPORT" "$OUT"
note "wrote the rollout section of $OUT"
