#!/usr/bin/env bash
# Scale benchmark (issue 6, item 5): simulator/scenarios/scale-10k.toml, 10,000 simulated devices
# in one `roomready-sim run` process, against the embedded broker and against Mosquitto, in the
# same run.
#
# Usage:
#   tests/bench/scale.sh                    # build (release), measure, update docs/benchmarks.md
#   SCENARIO=simulator/scenarios/mixed-fleet.toml ROOMREADY_SIM=target/release/roomready-sim tests/bench/scale.sh
#
# For each broker it records, from the run's --json outcome and /proc:
#   - time to converge: from the start until every expectation held at once (all 10,000
#     retained states seen by the dashboard subscriber, verdict counts right, no seq gap);
#   - peak RSS (VmHWM) of roomready-sim (devices, dashboard and, when embedded, the broker), plus
#     Mosquitto's own peak when it is the broker; total and per device;
#   - messages per second: messages the dashboard received / time to converge.
# Targets: converge <= 60 s, total RSS <= 2 GiB.
#
# Environment: ROOMREADY_SIM (default: cargo build --release -p roomready-simulator, honouring
# CARGO_TARGET_DIR), SCENARIO, OUT (docs/benchmarks.md).
# Requirements: Linux /proc, mosquitto (Debian: mosquitto), python3, ss (iproute2). Not part of CI.

set -euo pipefail
export LC_ALL=C

die() { printf 'scale.sh: %s\n' "$*" >&2; exit 1; }
note() { printf 'scale.sh: %s\n' "$*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# free_port, hwm
# shellcheck source=tests/bench/lib.sh
source "$REPO/tests/bench/lib.sh"
SCENARIO=${SCENARIO:-$REPO/simulator/scenarios/scale-10k.toml}
OUT=${OUT:-$REPO/docs/benchmarks.md}
MOSQUITTO=$(command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null || true)
[[ -n $MOSQUITTO ]] || die "mosquitto is required (Debian: apt-get install mosquitto)"
for tool in python3 ss; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
[[ -r /proc/self/status ]] || die "Linux /proc is required"
[[ -r $SCENARIO ]] || die "cannot read $SCENARIO"

if [[ -z ${ROOMREADY_SIM:-} ]]; then
    note "building roomready-sim (release)"
    (cd "$REPO" && cargo build --release -p roomready-simulator >&2)
    ROOMREADY_SIM=${CARGO_TARGET_DIR:-$REPO/target}/release/roomready-sim
fi
[[ -x $ROOMREADY_SIM ]] || die "not an executable: $ROOMREADY_SIM"

WORK=$(mktemp -d)
MOSQ_PID=
cleanup() {
    [[ -n $MOSQ_PID ]] && kill "$MOSQ_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# kB of VmHWM (peak RSS) of PID and, summed, of its child processes (the embedded broker runs
# in a child when a fleet does not fit in one process), polled every 100 ms until PID exits;
# FILE gets "PID_PEAK CHILDREN_PEAK".
watch_peak() {
    local pid=$1 file=$2 peak=0 children=0 h sum child
    while kill -0 "$pid" 2>/dev/null; do
        h=$(hwm "$pid"); [[ -n $h && $h -gt $peak ]] && peak=$h
        sum=0
        for child in $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
            h=$(hwm "$child"); sum=$((sum + ${h:-0}))
        done
        [[ $sum -gt $children ]] && children=$sum
        echo "$peak $children" >"$file"
        sleep 0.1
    done
}

# run NAME [--broker URL]: runs the scenario, leaves NAME.json, NAME.peak, NAME.log in $WORK.
run() {
    local name=$1; shift
    note "running $(basename "$SCENARIO") on $name"
    # The hard limit on open files here is 20,000; the simulator raises its soft limit itself.
    "$ROOMREADY_SIM" run "$SCENARIO" --json "$WORK/$name.json" "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    watch_peak "$pid" "$WORK/$name.peak" &
    local watcher=$!
    local status=0
    wait "$pid" || status=$?
    wait "$watcher" || true
    cat "$WORK/$name.log" >&2
    [[ $status -eq 0 ]] || note "$name: roomready-sim exited $status (an expectation failed)"
}

run embedded

port=$(free_port)
cat >"$WORK/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
max_connections -1
persistence false
max_queued_messages 100000
EOF
ulimit -n "$(ulimit -Hn)"
"$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
MOSQ_PID=$!
for _ in $(seq 1 100); do ss -Htln "sport = :$port" | grep -q . && break; sleep 0.05; done
watch_peak "$MOSQ_PID" "$WORK/broker-process.peak" &
MOSQ_WATCH=$!
run mosquitto --broker "mqtt://127.0.0.1:$port"
# `mosquitto -h` prints the version first and exits 3.
MOSQ_VERSION=$({ "$MOSQUITTO" -h 2>/dev/null || true; } | awk 'NR==1 {print $3}')
kill "$MOSQ_PID" 2>/dev/null || true
wait "$MOSQ_PID" 2>/dev/null || true
MOSQ_PID=
wait "$MOSQ_WATCH" 2>/dev/null || true

REPORT="$WORK/report.md"
python3 - "$WORK" "$SCENARIO" "$MOSQ_VERSION" "$(nproc)" "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$REPORT" <<'PY'
import json, os, sys
work, scenario, mosq_version, cores, commit = sys.argv[1:6]
def load(name):
    with open(os.path.join(work, name + ".json")) as f:
        out = json.load(f)
    with open(os.path.join(work, name + ".peak")) as f:
        own, children = (f.read().split() + ["0", "0"])[:2]
    out["peak_kb"], out["children_kb"] = int(own), int(children)
    return out
emb, mos = load("embedded"), load("mosquitto")
with open(os.path.join(work, "broker-process.peak")) as f:
    mos_broker_kb = int(f.read().split()[0])
def mib(kb): return kb / 1024
def row(label, o, broker_kb):
    total = o["peak_kb"] + broker_kb
    conv = o["converged_ms"]
    conv_s = "did not converge" if conv is None else f"{conv/1000:.1f} s"
    rate = "-" if not conv else f"{o['messages'] / (conv/1000):,.0f}"
    passed = all(e["status"] == "pass" for e in o["expectations"])
    return (f"| {label} | {conv_s} | {o['ramp_ms']/1000:.1f} s | {mib(total):,.0f} MiB"
            f" ({mib(o['peak_kb']):,.0f} + {mib(broker_kb):,.0f}) | {total/o['devices']:.1f} KiB"
            f" | {o['messages']:,} | {rate} | {'pass' if passed else 'FAIL'} |"), conv, total
embedded = ("embedded (mqtt5 0.49, in a child process)" if emb["children_kb"]
            else "embedded (mqtt5 0.49, in-process)")
r1, c1, t1 = row(embedded, emb, emb["children_kb"])
r2, c2, t2 = row(f"Mosquitto {mosq_version}", mos, mos_broker_kb)
o_kib = mos["peak_kb"] / mos["devices"]
print("## Scale: 10,000 simulated devices (`tests/bench/scale.sh`)\n")
print(f"`roomready-sim run {os.path.relpath(scenario)}` (release build, commit {commit}, {cores} cores): "
      f"{emb['devices']:,} devices started at the scenario's `ramp_per_sec`, each a real agent "
      "(rumqttc client, journal in memory) publishing its retained `online` status, a state and "
      "a check event; one dashboard subscriber. Converged = every expectation held at once "
      "(all retained states seen by the subscriber, verdict counts right, no `seq` gap). Peak RSS is "
      "VmHWM of `roomready-sim` (devices and dashboard) plus the broker's: the embedded broker "
      "runs in a child `roomready-sim broker` process at this size (both ends of 10,000 "
      "connections would need more than the 20,000 descriptors one process may have here), "
      "Mosquitto in its own.\n")
print("| broker | time to converge | ramp-up | peak RSS total (sim + broker) | per device | messages seen | messages/s | expectations |")
print("|---|---|---|---|---|---|---|---|")
print(r1); print(r2)
if c1 and c2:
    print(f"\nRatios embedded / Mosquitto: time to converge {c1/c2:.2f}, peak RSS total {t1/t2:.2f}"
          f" (the brokers alone: {mib(emb['children_kb']):,.0f} MiB against {mib(mos_broker_kb):,.0f} MiB,"
          f" {emb['children_kb']/max(mos_broker_kb,1):.1f}x). The simulator's own share, about"
          f" {o_kib:.0f} KiB per device, is 10,000 full agents (tokio tasks, rumqttc buffers, outboxes).")
print("\nTargets: converge ≤ 60 s, total ≤ 2 GiB. The ramp-up is paced (`ramp_per_sec`), so most of "
      "the time to converge is the ramp itself; the broker is never overrun with connection retries.")
PY
cat "$REPORT"
"$REPO/tests/bench/splice.sh" scale "$REPORT" "$OUT"
note "wrote the scale section of $OUT"
