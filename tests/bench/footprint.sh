#!/usr/bin/env bash
# Footprint benchmark (issue 4, item 7): the release agent connected to a broker and idle.
#
# Usage:
#   tests/bench/footprint.sh                       # build (release), measure, update docs/benchmarks.md
#   IDLE_SECS=10 ROOMREADY_BIN=target/release/roomready-agent tests/bench/footprint.sh
#
# It starts Mosquitto on a free loopback port, then `roomready-agent run` with a config that
# probes no endpoints (the idle daemon: connected, subscribed to its commands, one check done, its
# journal on disk), waits until the agent's retained `online` status is on the broker, and
# measures over IDLE_SECS seconds (default 60): resident memory (VmRSS at the end, VmHWM = peak),
# CPU time (utime + stime from /proc/PID/stat) and the stripped binary's size. The reference peer,
# measured the same way in the same run, is `mosquitto_sub` subscribed to one topic: a minimal C
# MQTT client, idle and connected. The section "footprint" of docs/benchmarks.md is replaced.
#
# Targets: RSS <= 8 MiB, idle CPU <= 0.1 %, binary <= 10 MiB.
#
# Environment: ROOMREADY_BIN (default: cargo build --release -p roomready-agent, honouring
# CARGO_TARGET_DIR), IDLE_SECS (60), OUT (docs/benchmarks.md).
# Requirements: Linux /proc, mosquitto and mosquitto_sub (Debian: mosquitto, mosquitto-clients),
# strip (binutils), ss (iproute2). Not part of CI.

set -euo pipefail
export LC_ALL=C

die() { printf 'footprint.sh: %s\n' "$*" >&2; exit 1; }
note() { printf 'footprint.sh: %s\n' "$*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IDLE_SECS=${IDLE_SECS:-60}
OUT=${OUT:-$REPO/docs/benchmarks.md}
[[ $IDLE_SECS =~ ^[0-9]+$ && $IDLE_SECS -gt 0 ]] || die "IDLE_SECS must be a positive whole number"
for tool in mosquitto mosquitto_sub strip ss; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required (Debian: apt-get install mosquitto mosquitto-clients binutils iproute2)"
done
[[ -r /proc/self/status ]] || die "Linux /proc is required"

if [[ -z ${ROOMREADY_BIN:-} ]]; then
    note "building roomready-agent (release)"
    (cd "$REPO" && cargo build --release -p roomready-agent >&2)
    ROOMREADY_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/roomready-agent
fi
[[ -x $ROOMREADY_BIN ]] || die "not an executable: $ROOMREADY_BIN"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 20000))
        if ! ss -Htln "sport = :$port" | grep -q .; then echo "$port"; return; fi
    done
    die "no free port found"
}

# The broker.
PORT=$(free_port)
cat >"$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest none
CONF
mosquitto -c "$WORK/mosquitto.conf" &
PIDS+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || die "mosquitto did not start on port $PORT"

# The agent, idle: no endpoints, a long interval.
DEVICE=bench-footprint
printf 'kind = "teams_rooms_windows"\napp_version = "4.0.105.0"\n[registry]\n' >"$WORK/facts.toml"
cat >"$WORK/agent.toml" <<CONF
broker_url = "mqtt://127.0.0.1:$PORT"
device_id = "$DEVICE"
facts_file = "facts.toml"
report_interval_secs = 86400
endpoints = []
journal_dir = "journal"
CONF
RUST_LOG=warn "$ROOMREADY_BIN" run --config "$WORK/agent.toml" 2>"$WORK/agent.err" &
AGENT=$!
PIDS+=("$AGENT")
# Connected once its retained `online` status is on the broker.
timeout 20 mosquitto_sub -p "$PORT" -h 127.0.0.1 -C 1 -t "roomready/v1/$DEVICE/status" \
    | grep -q '"status":"online"' || die "the agent did not come online: $(cat "$WORK/agent.err")"
timeout 20 mosquitto_sub -p "$PORT" -h 127.0.0.1 -C 1 -t "roomready/v1/$DEVICE/state" >/dev/null \
    || die "the agent published no state"

# The reference peer: a minimal C MQTT client, idle and connected.
mosquitto_sub -p "$PORT" -h 127.0.0.1 -t "bench/idle" >/dev/null &
PEER=$!
PIDS+=("$PEER")
sleep 1

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

note "idle for $IDLE_SECS s"
a0=$(cpu_ticks "$AGENT"); p0=$(cpu_ticks "$PEER"); t0=$EPOCHREALTIME
sleep "$IDLE_SECS"
a1=$(cpu_ticks "$AGENT"); p1=$(cpu_ticks "$PEER"); t1=$EPOCHREALTIME
kill -0 "$AGENT" 2>/dev/null || die "the agent exited: $(cat "$WORK/agent.err")"

ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
pct() { awk -v t="$1" -v hz="$TICKS" -v s="$ELAPSED" 'BEGIN { printf "%.3f", 100 * t / hz / s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

A_RSS=$(kib "$AGENT" VmRSS); A_HWM=$(kib "$AGENT" VmHWM); A_THREADS=$(kib "$AGENT" Threads)
P_RSS=$(kib "$PEER" VmRSS); P_HWM=$(kib "$PEER" VmHWM)
A_CPU=$((a1 - a0)); P_CPU=$((p1 - p0))
cp "$ROOMREADY_BIN" "$WORK/agent.stripped"
strip "$WORK/agent.stripped"
BIN_BYTES=$(stat -c %s "$WORK/agent.stripped")
BIN_MIB=$(awk -v b="$BIN_BYTES" 'BEGIN { printf "%.2f", b / 1048576 }')
PEER_BIN=$(command -v mosquitto_sub)
JOURNAL_BYTES=$( { du -sb "$WORK/journal" 2>/dev/null || echo 0; } | awk '{ print $1 }')

verdict() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; then echo met; else echo "**missed**"; fi; }
PROFILE=$(awk '/^\[profile.release\]/ { on = 1; next } /^\[/ { on = 0 } on && NF { printf "%s%s", sep, $0; sep = ", " }' "$REPO/Cargo.toml")

report=$(mktemp "$WORK/report.XXXXXX")
{
    echo "## Footprint: the idle agent"
    echo
    echo "Issue 4, item 7. Generated by \`tests/bench/footprint.sh\` (IDLE_SECS=$IDLE_SECS) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "$(nproc) CPU(s), $(uname -sr); commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo "The release agent (\`[profile.release]\`: $PROFILE) runs \`roomready-agent run\` against"
    echo "Mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{ print $3 }') on loopback with no endpoints to probe: connected, subscribed to its"
    echo "\`cmd\` topic, one check done and journaled, then idle for $ELAPSED s. The reference peer is"
    echo "\`mosquitto_sub\` subscribed to one topic, idle on the same broker in the same run."
    echo
    echo "| measure | roomready-agent | mosquitto_sub | ratio | target | |"
    echo "|---|---:|---:|---:|---:|---|"
    echo "| resident memory at the end (VmRSS) | $(mib "$A_RSS") MiB | $(mib "$P_RSS") MiB | $(ratio "$A_RSS" "$P_RSS") | <= 8 MiB | $(verdict "$(mib "$A_RSS")" 8) |"
    echo "| peak resident memory (VmHWM) | $(mib "$A_HWM") MiB | $(mib "$P_HWM") MiB | $(ratio "$A_HWM" "$P_HWM") | | |"
    echo "| CPU while idle (utime + stime) | $(pct "$A_CPU") % ($A_CPU ticks) | $(pct "$P_CPU") % ($P_CPU ticks) | | <= 0.1 % | $(verdict "$(pct "$A_CPU")" 0.1) |"
    echo "| stripped binary | $BIN_MIB MiB | $(awk -v b="$(stat -c %s "$PEER_BIN")" 'BEGIN { printf "%.2f", b / 1048576 }') MiB (dynamically linked) | | <= 10 MiB | $(verdict "$BIN_MIB" 10) |"
    echo
    echo "Threads: $A_THREADS (tokio's multi-threaded runtime: one worker per core, plus the blocking pool"
    echo "when used). Journal directory after one check: $JOURNAL_BYTES bytes. CPU ticks are ${TICKS} Hz, so"
    echo "over $ELAPSED s one tick is $(awk -v hz="$TICKS" -v s="$ELAPSED" 'BEGIN { printf "%.3f", 100 / hz / s }') %: an idle process shows 0 or 1."
    echo "mosquitto_sub links libmosquitto and libc dynamically; the agent is one static-Rust binary"
    echo "(glibc dynamically), so the binary sizes are not like for like."
} >"$report"
"$REPO/tests/bench/splice.sh" footprint "$report" "$OUT"
note "rss $(mib "$A_RSS") MiB (peer $(mib "$P_RSS")), hwm $(mib "$A_HWM") MiB, cpu $(pct "$A_CPU") %, binary $BIN_MIB MiB; written to $OUT"
