#!/usr/bin/env bash
# Probe benchmark (issue 3, section 6): roomready vs sslscan vs testssl.sh on local endpoints.
#
# Usage:
#   tests/bench/probe.sh                          # build roomready-agent (release), run, write docs/benchmarks.md
#   ROOMREADY_BIN=/path/to/roomready-agent tests/bench/probe.sh
#   RUNS=31 TESTSSL_RUNS=5 OUT=/tmp/b.md tests/bench/probe.sh
#
# It starts `openssl s_server` on free 127.0.0.1 ports with a CA and server certificate made for
# the run (RSA 2048), one server per protocol mix (TLS 1.0 only, 1.1 only, 1.2 only, 1.3 only,
# 1.2+1.3, 1.0-1.3), and probes each one with:
#   - roomready:  roomready-agent check --facts F --endpoint 127.0.0.1:PORT --ca-file CA --json
#                 (one full probe: TLS 1.0, 1.1, 1.2, 1.3 concurrently + suites + certificate)
#   - sslscan:    protocol-only flags (--no-ciphersuites --no-renegotiation --no-compression
#                 --no-heartbleed --no-groups --no-fallback --no-check-certificate)
#   - sslscan:    the same without --no-check-certificate (informational: it fetches the certificate too)
#   - testssl.sh: testssl.sh -p (protocols only)
# It reports the median wall time of each, the ratios roomready/sslscan and roomready/testssl.sh,
# and each tool's per-version verdict (accepted or not) with whether they agree.
# The fast tools are run round-robin (one run of each per round) so that background load hits
# them alike; testssl.sh runs afterwards, fewer times, because one run takes seconds.
# Wall time is measured with bash's $EPOCHREALTIME around the process (fork/exec included).
# Not part of CI.
#
# Environment:
#   ROOMREADY_BIN   roomready-agent binary; default: `cargo build --release -p roomready-agent`
#                   then ${CARGO_TARGET_DIR:-<repo>/target}/release/roomready-agent
#   ROOMREADY_LABEL free text describing where the binary came from (printed in the report)
#   RUNS            timed runs per endpoint for roomready and sslscan (default 15)
#   TESTSSL_RUNS    timed runs per endpoint for testssl.sh (default 3)
#   WARMUP          untimed runs per endpoint and tool before timing (default 1)
#   TIMEOUT         roomready --timeout and sslscan --timeout, seconds (default 5)
#   SSLSCAN         sslscan command (default: sslscan)
#   TESTSSL         testssl.sh command (default: testssl.sh, else testssl as Debian names it)
#   OPENSSL         openssl command for the servers and certificates (default: openssl)
#   OUT             report file (default: <repo>/docs/benchmarks.md); this benchmark's section
#                   (between <!-- probe:begin/end --> markers) is replaced, the rest kept
#   KEEP_WORK=1     keep the scratch directory (servers' certificates, every tool's raw output)
#
# Requirements: bash >= 5 (EPOCHREALTIME), openssl (1.1.1 or 3.x, with TLS 1.0/1.1 available at
# @SECLEVEL=0), sslscan 2.x, testssl.sh 3.x, jq, ss (iproute2), awk, sort, mktemp, and cargo
# unless ROOMREADY_BIN is given. No python.

set -euo pipefail
export LC_ALL=C

die() { printf 'probe.sh: %s\n' "$*" >&2; exit 1; }
note() { printf 'probe.sh: %s\n' "$*" >&2; }

[[ ${BASH_VERSINFO[0]} -ge 5 ]] || die "bash 5 or later is required (for \$EPOCHREALTIME); this is $BASH_VERSION"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${RUNS:-15}
TESTSSL_RUNS=${TESTSSL_RUNS:-3}
WARMUP=${WARMUP:-1}
TIMEOUT=${TIMEOUT:-5}
SSLSCAN=${SSLSCAN:-sslscan}
OPENSSL=${OPENSSL:-openssl}
OUT=${OUT:-$REPO/docs/benchmarks.md}
for n in RUNS TESTSSL_RUNS WARMUP TIMEOUT; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, got '${!n}'"
done
[[ $RUNS -ge 1 && $TESTSSL_RUNS -ge 1 ]] || die "RUNS and TESTSSL_RUNS must be at least 1"

need() { command -v "$1" >/dev/null 2>&1 || die "required tool '$1' not found${2:+: $2}"; }
need "$OPENSSL" "install openssl"
need "$SSLSCAN" "install sslscan (apt-get install sslscan) or set SSLSCAN"
need jq "install jq"
need ss "install iproute2"
need awk
need sort
need mktemp
if [[ -z ${TESTSSL:-} ]]; then
    if command -v testssl.sh >/dev/null 2>&1; then TESTSSL=testssl.sh
    elif command -v testssl >/dev/null 2>&1; then TESTSSL=testssl
    else die "required tool 'testssl.sh' not found (nor 'testssl'): install testssl.sh (apt-get install testssl.sh) or set TESTSSL"
    fi
fi
need "$TESTSSL" "set TESTSSL to the testssl.sh script"

CMD_ENV="RUNS=$RUNS TESTSSL_RUNS=$TESTSSL_RUNS WARMUP=$WARMUP TIMEOUT=$TIMEOUT"
[[ -n ${ROOMREADY_BIN:-} ]] && CMD_ENV="ROOMREADY_BIN=$ROOMREADY_BIN $CMD_ENV"
if [[ -z ${ROOMREADY_BIN:-} ]]; then
    need cargo "install a Rust toolchain or set ROOMREADY_BIN"
    note "building roomready-agent (cargo build --release -p roomready-agent)"
    (cd "$REPO" && cargo build --release -p roomready-agent) >&2 || die "cargo build failed"
    target_dir=${CARGO_TARGET_DIR:-$REPO/target}
    [[ $target_dir = /* ]] || target_dir=$REPO/$target_dir
    ROOMREADY_BIN=$target_dir/release/roomready-agent
    if rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null); then
        # read-only: no index refresh
        dirty=$(GIT_OPTIONAL_LOCKS=0 git -C "$REPO" status --porcelain --untracked-files=no -- . \
            ':(exclude)docs' ':(exclude)tests/bench' ':(exclude)*.md' 2>/dev/null | head -1)
        rev="commit $rev${dirty:+ with uncommitted changes}"
    else
        rev="not a git checkout"
    fi
    : "${ROOMREADY_LABEL:=release build by this script of the working tree at $REPO ($rev)}"
fi
[[ -x $ROOMREADY_BIN ]] || die "roomready-agent binary not found or not executable: $ROOMREADY_BIN"
: "${ROOMREADY_LABEL:=given as ROOMREADY_BIN}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/roomready-bench.XXXXXX")
SERVER_PIDS=()
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_WORK:-0} = 1 ]]; then note "scratch directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- certificates -------------------------------------------------------------------------------
note "making a CA and a server certificate for 127.0.0.1/localhost in $WORK"
"$OPENSSL" req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=roomready bench CA" \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>"$WORK/openssl.log" || die "openssl req (CA) failed: $(cat "$WORK/openssl.log")"
"$OPENSSL" req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>"$WORK/openssl.log" || die "openssl req (server) failed: $(cat "$WORK/openssl.log")"
cat >"$WORK/server.ext" <<'EOF'
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
EOF
"$OPENSSL" x509 -req -sha256 -days 30 -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -extfile "$WORK/server.ext" -out "$WORK/server.pem" 2>"$WORK/openssl.log" \
    || die "openssl x509 (server) failed: $(cat "$WORK/openssl.log")"
printf 'kind = "teams_rooms_windows"\napp_version = "4.0.64.0"\nos_build = "19045.1"\n' >"$WORK/facts.toml"

# --- endpoints ----------------------------------------------------------------------------------
# name|s_server flags|expected accepted versions (1.0 1.1 1.2 1.3 as y/n)
ENDPOINT_SPECS=(
    "tls1.0-only|-tls1 -cipher ALL:@SECLEVEL=0|y n n n"
    "tls1.1-only|-tls1_1 -cipher ALL:@SECLEVEL=0|n y n n"
    "tls1.2-only|-tls1_2|n n y n"
    "tls1.3-only|-tls1_3|n n n y"
    "tls1.2+1.3|-no_ssl3 -no_tls1 -no_tls1_1|n n y y"
    "tls1.0-1.3|-no_ssl3 -cipher ALL:@SECLEVEL=0|y y y y"
)
VERSIONS=(1.0 1.1 1.2 1.3)
NAMES=()
declare -A PORT FLAGS EXPECT

listening() { [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]; }

start_server() { # name flags -> sets PORT[name]
    local name=$1 flags=$2 port pid tries i
    for tries in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        listening "$port" && continue
        # shellcheck disable=SC2086 # flags are words on purpose
        "$OPENSSL" s_server -accept "127.0.0.1:$port" -cert "$WORK/server.pem" -key "$WORK/server.key" \
            -CAfile "$WORK/ca.pem" -www -quiet $flags >"$WORK/server-$name.log" 2>&1 </dev/null &
        pid=$!
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            if listening "$port"; then
                SERVER_PIDS+=("$pid")
                PORT[$name]=$port
                return 0
            fi
            sleep 0.1
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    die "could not start openssl s_server for $name ($flags): $(tail -5 "$WORK/server-$name.log")"
}

for spec in "${ENDPOINT_SPECS[@]}"; do
    IFS='|' read -r name flags expect <<<"$spec"
    NAMES+=("$name")
    FLAGS[$name]=$flags
    EXPECT[$name]=$expect
    start_server "$name" "$flags"
    note "endpoint $name: 127.0.0.1:${PORT[$name]} (openssl s_server $flags)"
done

# --- tools --------------------------------------------------------------------------------------
SSLSCAN_PROTO_FLAGS=(--no-colour --no-ciphersuites --no-renegotiation --no-compression --no-heartbleed
    --no-groups --no-fallback --no-check-certificate)
SSLSCAN_CERT_FLAGS=(--no-colour --no-ciphersuites --no-renegotiation --no-compression --no-heartbleed
    --no-groups --no-fallback)
TOOLS=(roomready sslscan sslscan_cert)

# run_tool TOOL NAME TAG: runs once, output in $WORK/out/TOOL-NAME-TAG.*, prints elapsed microseconds
run_tool() {
    local tool=$1 name=$2 tag=$3 port=${PORT[$2]} base="$WORK/out/$1-$2-$3" t0 t1 rc=0
    case $tool in
    roomready)
        t0=${EPOCHREALTIME/./}
        "$ROOMREADY_BIN" check --facts "$WORK/facts.toml" --endpoint "127.0.0.1:$port" \
            --ca-file "$WORK/ca.pem" --timeout "$TIMEOUT" --json >"$base.json" 2>"$base.err" || rc=$?
        t1=${EPOCHREALTIME/./}
        # 0..3 are verdicts (ready, at_risk, not_ready, unknown); 64 and up are errors
        [[ $rc -le 3 ]] || die "roomready-agent failed (exit $rc) on $name: $(head -c 500 "$base.err")"
        ;;
    sslscan | sslscan_cert)
        local -a flags=("${SSLSCAN_PROTO_FLAGS[@]}")
        [[ $tool = sslscan ]] || flags=("${SSLSCAN_CERT_FLAGS[@]}")
        t0=${EPOCHREALTIME/./}
        "$SSLSCAN" "${flags[@]}" --timeout="$TIMEOUT" --xml="$base.xml" "127.0.0.1:$port" \
            >"$base.txt" 2>"$base.err" || rc=$?
        t1=${EPOCHREALTIME/./}
        [[ $rc -eq 0 ]] || die "sslscan failed (exit $rc) on $name: $(head -c 500 "$base.err")"
        ;;
    testssl)
        t0=${EPOCHREALTIME/./}
        "$TESTSSL" -p --jsonfile "$base.json" --warnings off --quiet --color 0 "127.0.0.1:$port" \
            >"$base.txt" 2>"$base.err" || rc=$?
        t1=${EPOCHREALTIME/./}
        # testssl.sh exits non-zero for some findings; only a missing JSON result is a failure
        [[ -s $base.json ]] || die "testssl.sh produced no JSON (exit $rc) on $name: $(head -c 500 "$base.err")"
        ;;
    esac
    printf '%s\n' $((t1 - t0))
}

# verdict TOOL NAME TAG VERSION -> "yes", "no" or "?:<raw>"
verdict() {
    local tool=$1 name=$2 tag=$3 v=$4 base="$WORK/out/$1-$2-$3" raw
    case $tool in
    roomready)
        raw=$(jq -r --arg v "tls$v" '[.endpoints[0].versions[] | select(.version == $v) | .outcome][0] // "missing"' "$base.json")
        case $raw in
        accepted) echo yes ;;
        refused | downgraded | closed | connection_reset) echo "no" ;;
        *) echo "?:$raw" ;;
        esac
        ;;
    sslscan | sslscan_cert)
        raw=$(sed -n "s/.*<protocol type=\"tls\" version=\"$v\" enabled=\"\([01]\)\".*/\1/p" "$base.xml" | head -1)
        case $raw in
        1) echo yes ;;
        0) echo "no" ;;
        *) echo "?:missing" ;;
        esac
        ;;
    testssl)
        local id
        case $v in 1.0) id=TLS1 ;; 1.1) id=TLS1_1 ;; 1.2) id=TLS1_2 ;; 1.3) id=TLS1_3 ;; esac
        raw=$(jq -r --arg id "$id" '[.[] | select(.id == $id) | .finding][0] // "missing"' "$base.json")
        if [[ $raw == *"not offered"* ]]; then echo "no"
        elif [[ $raw == offered* ]]; then echo yes
        else echo "?:$raw"
        fi
        ;;
    esac
}

# roomready's raw outcome (and detail) for the report
rr_outcome() {
    jq -r --arg v "tls$3" '.endpoints[0].versions[] | select(.version == $v)
        | .outcome + (if .suite then " " + (.suite.name // .suite.code) else "" end)
                   + (if .detail then " (" + .detail + ")" else "" end)' "$WORK/out/roomready-$1-$2.json"
}

testssl_raw() {
    local id
    case $2 in 1.0) id=TLS1 ;; 1.1) id=TLS1_1 ;; 1.2) id=TLS1_2 ;; 1.3) id=TLS1_3 ;; esac
    jq -r --arg id "$id" '[.[] | select(.id == $id) | .finding][0] // "missing"' "$WORK/out/testssl-$1-r1.json"
}

# stats FILE -> "median min max" in milliseconds (3 decimals), input in microseconds
stats() {
    sort -n "$1" | awk '{ a[NR] = $1 } END {
        if (NR % 2) m = a[(NR + 1) / 2]; else m = (a[NR / 2] + a[NR / 2 + 1]) / 2;
        printf "%.3f %.3f %.3f\n", m / 1000, a[1] / 1000, a[NR] / 1000 }'
}

mkdir -p "$WORK/out" "$WORK/times"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
T_START=${EPOCHREALTIME/./}

# --- process start-up floor (no probing) --------------------------------------------------------
# roomready `check` without --endpoint (facts file, assessment, JSON; no network) and `sslscan
# --version` (start-up and OpenSSL initialisation): what each run costs before any probe.
floor_run() { # TOOL -> elapsed microseconds
    local t0 t1 rc=0
    case $1 in
    roomready)
        t0=${EPOCHREALTIME/./}
        "$ROOMREADY_BIN" check --facts "$WORK/facts.toml" --json >/dev/null 2>&1 || rc=$?
        t1=${EPOCHREALTIME/./}
        [[ $rc -le 3 ]] || die "roomready-agent check without endpoints failed (exit $rc)"
        ;;
    sslscan)
        t0=${EPOCHREALTIME/./}
        "$SSLSCAN" --version >/dev/null 2>&1 || true
        t1=${EPOCHREALTIME/./}
        ;;
    esac
    printf '%s\n' $((t1 - t0))
}
note "start-up floor: roomready check without endpoints, sslscan --version: $WARMUP warm-up + $RUNS timed rounds"
for ((i = 1; i <= WARMUP; i++)); do floor_run roomready >/dev/null; floor_run sslscan >/dev/null; done
for ((i = 1; i <= RUNS; i++)); do
    floor_run roomready >>"$WORK/times/floor-roomready"
    floor_run sslscan >>"$WORK/times/floor-sslscan"
done

# --- fast tools: round-robin ---------------------------------------------------------------------
for name in "${NAMES[@]}"; do
    note "$name: roomready, sslscan, sslscan+cert: $WARMUP warm-up + $RUNS timed rounds"
    for ((i = 1; i <= WARMUP; i++)); do
        for tool in "${TOOLS[@]}"; do run_tool "$tool" "$name" "w$i" >/dev/null; done
    done
    for ((i = 1; i <= RUNS; i++)); do
        for tool in "${TOOLS[@]}"; do
            run_tool "$tool" "$name" "r$i" >>"$WORK/times/$tool-$name"
        done
    done
done

# --- testssl.sh ---------------------------------------------------------------------------------
for name in "${NAMES[@]}"; do
    note "$name: testssl.sh -p: $WARMUP warm-up + $TESTSSL_RUNS timed runs (seconds each)"
    for ((i = 1; i <= WARMUP; i++)); do run_tool testssl "$name" "w$i" >/dev/null; done
    for ((i = 1; i <= TESTSSL_RUNS; i++)); do
        run_tool testssl "$name" "r$i" >>"$WORK/times/testssl-$name"
    done
done

T_END=${EPOCHREALTIME/./}
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)

# --- verdicts -----------------------------------------------------------------------------------
# Per tool and endpoint: the verdict vector of run 1, and how many timed runs differed from it.
declare -A V UNSTABLE
for name in "${NAMES[@]}"; do
    for tool in "${TOOLS[@]}" testssl; do
        n=$RUNS
        [[ $tool = testssl ]] && n=$TESTSSL_RUNS
        first=""
        diff=0
        for ((i = 1; i <= n; i++)); do
            vec=""
            for v in "${VERSIONS[@]}"; do vec+="$(verdict "$tool" "$name" "r$i" "$v") "; done
            if [[ $i -eq 1 ]]; then first=$vec; elif [[ $vec != "$first" ]]; then diff=$((diff + 1)); fi
        done
        read -r -a arr <<<"$first"
        for k in 0 1 2 3; do V[$tool,$name,${VERSIONS[$k]}]=${arr[$k]}; done
        UNSTABLE[$tool,$name]=$diff
    done
done

# --- report -------------------------------------------------------------------------------------
first_line() { "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -v '^[[:space:]]*$' | head -1 | sed 's/^[[:space:]]*//'; }
SSLSCAN_VERSION=$("$SSLSCAN" --version 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | awk 'NF { gsub(/^[ \t]+/, ""); printf "%s%s", sep, $0; sep = ", " }')
TESTSSL_VERSION=$("$TESTSSL" --version 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -Eo 'testssl(\.sh)?[[:space:]]+[0-9][^ ]*' | head -1 | tr -s ' ')
TESTSSL_OPENSSL=$("$TESTSSL" --version 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -Eo 'Using "[^"]*"' | head -1)
RR_VERSION=$(first_line "$ROOMREADY_BIN" --version)
OPENSSL_VERSION=$(first_line "$OPENSSL" version)
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
TOTAL_S=$(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')

declare -A MED MIN MAX
for name in "${NAMES[@]}"; do
    for tool in "${TOOLS[@]}" testssl; do
        read -r "MED[$tool,$name]" "MIN[$tool,$name]" "MAX[$tool,$name]" < <(stats "$WORK/times/$tool-$name")
    done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else if (a / b < 0.1) printf "%.4f", a / b; else printf "%.3f", a / b }'; }
# ratio a/b also as 1/N, for ratios far below 1
ratio_frac() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0 || a <= 0) print "n/a"; else printf "%.4f (1/%.0f)", a / b, b / a }'; }
fmt_ms() { awk -v x="$1" 'BEGIN { if (x >= 1000) printf "%.0f", x; else if (x >= 100) printf "%.1f", x; else printf "%.2f", x }'; }

tmp_out=$(mktemp "$WORK/report.XXXXXX")
{
    echo "## Probe benchmark: roomready vs sslscan vs testssl.sh"
    echo
    echo "Issue 3, section 6. Generated by \`tests/bench/probe.sh\`; do not edit by hand, re-run it."
    echo "Not part of CI."
    echo
    echo "### How it was produced"
    echo
    echo "- Command: \`$CMD_ENV tests/bench/probe.sh\` (the defaults are RUNS=15 TESTSSL_RUNS=3 WARMUP=1 TIMEOUT=5)"
    echo "- Date: $STARTED; the whole run took ${TOTAL_S} s"
    echo "- Machine: $(nproc) CPU(s)${CPU:+ ($CPU)}, $(uname -sr); load average before ${LOAD_BEFORE}, after ${LOAD_AFTER}"
    echo "- roomready: \`$RR_VERSION\`, $ROOMREADY_LABEL"
    echo "- sslscan: $SSLSCAN_VERSION"
    echo "- testssl.sh: ${TESTSSL_VERSION:-unknown version} (\`$TESTSSL\`)${TESTSSL_OPENSSL:+, $TESTSSL_OPENSSL}"
    echo "- Servers: $OPENSSL_VERSION, \`openssl s_server -www -quiet\` on 127.0.0.1 with an RSA 2048 certificate"
    echo "  (SAN IP:127.0.0.1) issued by a CA made for the run:"
    echo
    echo "  | endpoint | s_server flags | offers |"
    echo "  |---|---|---|"
    for name in "${NAMES[@]}"; do
        read -r -a e <<<"${EXPECT[$name]}"
        offers=""
        for k in 0 1 2 3; do [[ ${e[$k]} = y ]] && offers+="${offers:+, }TLS ${VERSIONS[$k]}"; done
        echo "  | $name | \`${FLAGS[$name]}\` | $offers |"
    done
    echo
    echo "What each tool does per run (one process, one endpoint):"
    echo
    echo "- **roomready**: \`roomready-agent check --facts F --endpoint 127.0.0.1:PORT --ca-file CA --timeout $TIMEOUT --json\`:"
    echo "  the full probe, concurrently: a TLS 1.3 handshake (rustls) and TLS 1.2, 1.1 and 1.0 hellos"
    echo "  offering every suite of the IANA registry (the server's first flight read to its end), the"
    echo "  certificate chain verified against the CA, and a hello offering exactly Microsoft's TLS 1.2"
    echo "  suites when the server's choice is not one of them; plus the rest of \`check\` (facts file,"
    echo "  assessment, JSON)."
    echo "- **sslscan**: \`sslscan ${SSLSCAN_PROTO_FLAGS[*]} --timeout=$TIMEOUT --xml=F 127.0.0.1:PORT\`"
    echo "  (protocol detection only; the issue's baseline)."
    echo "- **sslscan +cert**: the same without \`--no-check-certificate\`, so it also fetches and prints"
    echo "  the certificate (it does not verify the chain). Informational, closer to roomready's work."
    echo "- **testssl.sh**: \`$TESTSSL -p --jsonfile F --warnings off --quiet --color 0 127.0.0.1:PORT\`"
    echo "  (protocols only)."
    echo
    echo "Wall time of the whole process, measured with bash's \`\$EPOCHREALTIME\` (fork and exec included)."
    echo "roomready and both sslscan variants ran round-robin ($WARMUP untimed warm-up round, then $RUNS timed"
    echo "rounds per endpoint); testssl.sh ran afterwards, $WARMUP warm-up + $TESTSSL_RUNS timed runs per endpoint,"
    echo "fewer because each run takes seconds. **Timings were taken on a shared $(nproc)-core machine** (other"
    echo "work, such as builds, may have run at the same time: see the load averages above), so absolute"
    echo "figures are noisy; the medians and the ratios between tools measured in the same rounds are the"
    echo "figures to read."
    echo
    echo "### Wall time, median (ms)"
    echo
    echo "| endpoint | roomready | sslscan | sslscan +cert | testssl.sh -p | roomready / sslscan | roomready / sslscan +cert | roomready / testssl.sh |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for name in "${NAMES[@]}"; do
        echo "| $name | $(fmt_ms "${MED[roomready,$name]}") | $(fmt_ms "${MED[sslscan,$name]}") | $(fmt_ms "${MED[sslscan_cert,$name]}") | $(fmt_ms "${MED[testssl,$name]}") | $(ratio "${MED[roomready,$name]}" "${MED[sslscan,$name]}") | $(ratio "${MED[roomready,$name]}" "${MED[sslscan_cert,$name]}") | $(ratio_frac "${MED[roomready,$name]}" "${MED[testssl,$name]}") |"
    done
    echo
    echo "Paired view: the three fast tools ran in the same rounds, so each round compares them under"
    echo "the same background load. Rounds (of $RUNS) in which roomready finished before sslscan:"
    row=""
    for name in "${NAMES[@]}"; do
        won=$(paste "$WORK/times/roomready-$name" "$WORK/times/sslscan-$name" | awk '$1 < $2 { n++ } END { print n + 0 }')
        row+="${row:+, }$name $won"
    done
    echo "$row."
    echo
    read -r fr_med fr_min fr_max < <(stats "$WORK/times/floor-roomready")
    read -r fs_med fs_min fs_max < <(stats "$WORK/times/floor-sslscan")
    echo "Start-up floor, no probing (median, min - max, n=$RUNS): roomready \`check\` without \`--endpoint\`"
    echo "$(fmt_ms "$fr_med") ms ($(fmt_ms "$fr_min") - $(fmt_ms "$fr_max")); \`sslscan --version\` $(fmt_ms "$fs_med") ms"
    echo "($(fmt_ms "$fs_min") - $(fmt_ms "$fs_max")). The rest of each figure above is the probing:"
    echo
    echo "| endpoint | roomready median - floor | sslscan median - floor |"
    echo "|---|---:|---:|"
    for name in "${NAMES[@]}"; do
        echo "| $name | $(awk -v a="${MED[roomready,$name]}" -v b="$fr_med" 'BEGIN { printf "%.2f", a - b }') | $(awk -v a="${MED[sslscan,$name]}" -v b="$fs_med" 'BEGIN { printf "%.2f", a - b }') |"
    done
    echo
    echo "(A difference of medians, so approximate; \`sslscan --version\` stands for sslscan's start-up,"
    echo "which loads and initialises OpenSSL.)"
    echo
    echo "### Wall time, min - max (ms)"
    echo
    echo "| endpoint | roomready (n=$RUNS) | sslscan (n=$RUNS) | sslscan +cert (n=$RUNS) | testssl.sh -p (n=$TESTSSL_RUNS) |"
    echo "|---|---:|---:|---:|---:|"
    for name in "${NAMES[@]}"; do
        row="| $name |"
        for tool in "${TOOLS[@]}" testssl; do
            row+=" $(fmt_ms "${MIN[$tool,$name]}") - $(fmt_ms "${MAX[$tool,$name]}") |"
        done
        echo "$row"
    done
    echo
    echo "### Protocol verdicts"
    echo
    echo "Accepted (yes) or not (no) per version, from each tool's first timed run; \`?\` is an answer"
    echo "that is neither (shown raw). \"agree\" compares roomready with sslscan and testssl.sh;"
    echo "\"as configured\" compares roomready with what the server was started to offer."
    echo "roomready's own outcome, suite and detail are in the last column."
    echo
    echo "| endpoint | TLS | configured | roomready | sslscan | testssl.sh | agree | as configured | roomready outcome | testssl.sh finding |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    DISAGREE=0
    WRONG=0
    for name in "${NAMES[@]}"; do
        read -r -a e <<<"${EXPECT[$name]}"
        for k in 0 1 2 3; do
            v=${VERSIONS[$k]}
            exp=no
            [[ ${e[$k]} = y ]] && exp=yes
            r=${V[roomready,$name,$v]} s=${V[sslscan,$name,$v]} t=${V[testssl,$name,$v]}
            agree=yes
            if [[ $r != "$s" || $r != "$t" ]]; then agree="**NO**"; DISAGREE=$((DISAGREE + 1)); fi
            asconf=yes
            if [[ $r != "$exp" ]]; then asconf="**NO**"; WRONG=$((WRONG + 1)); fi
            echo "| $name | $v | $exp | $r | $s | $t | $agree | $asconf | $(rr_outcome "$name" r1 "$v") | $(testssl_raw "$name" "$v") |"
        done
    done
    echo
    CERT_DIFF=0
    for name in "${NAMES[@]}"; do
        for v in "${VERSIONS[@]}"; do
            [[ ${V[sslscan_cert,$name,$v]} = "${V[sslscan,$name,$v]}" ]] || CERT_DIFF=$((CERT_DIFF + 1))
        done
    done
    unstable_list=""
    for name in "${NAMES[@]}"; do
        for tool in "${TOOLS[@]}" testssl; do
            [[ ${UNSTABLE[$tool,$name]} -eq 0 ]] || unstable_list+="${unstable_list:+, }$tool on $name (${UNSTABLE[$tool,$name]} run(s))"
        done
    done
    if [[ -z $unstable_list ]]; then
        echo "Every timed run of every tool gave the same verdicts as its first run."
    else
        echo "Runs whose verdicts differed from the tool's first run: $unstable_list."
    fi
    if [[ $CERT_DIFF -eq 0 ]]; then
        echo "sslscan +cert gave the same verdicts as sslscan."
    else
        echo "sslscan +cert differed from sslscan on $CERT_DIFF version(s)."
    fi
    echo
    echo "Certificate (roomready, first run):"
    echo
    echo "| endpoint | certificate |"
    echo "|---|---|"
    for name in "${NAMES[@]}"; do
        cert=$(jq -r '.endpoints[0].certificate // empty | "valid: \(.valid)"
            + (if .error then ", error: \(.error)" else "" end)
            + (if .days_left != null then ", days left: \(.days_left)" else "" end)' "$WORK/out/roomready-$name-r1.json")
        echo "| $name | ${cert:-none (no TLS 1.2 or 1.3 handshake completed)} |"
    done
    echo
    echo "### Against the targets"
    echo
    max_ss=$(for name in "${NAMES[@]}"; do ratio "${MED[roomready,$name]}" "${MED[sslscan,$name]}"; echo; done | sort -n | tail -1)
    max_ts=$(for name in "${NAMES[@]}"; do ratio "${MED[roomready,$name]}" "${MED[testssl,$name]}"; echo; done | sort -n | tail -1)
    slower=""
    for name in "${NAMES[@]}"; do
        awk -v a="${MED[roomready,$name]}" -v b="${MED[sslscan,$name]}" 'BEGIN { exit !(a > b) }' && slower+="${slower:+, }$name"
    done
    over=""
    for name in "${NAMES[@]}"; do
        awk -v a="${MED[roomready,$name]}" -v b="${MED[testssl,$name]}" 'BEGIN { exit !(a * 100 >= b) }' && over+="${over:+, }$name"
    done
    if [[ -z $slower ]]; then
        echo "- **No slower than sslscan's protocol-only scan: met** on every endpoint (largest median ratio roomready / sslscan: $max_ss)."
    else
        echo "- **No slower than sslscan's protocol-only scan: not met** on $slower (largest median ratio roomready / sslscan: $max_ss)."
    fi
    net_rr=$(for name in "${NAMES[@]}"; do awk -v a="${MED[roomready,$name]}" -v b="$fr_med" 'BEGIN { printf "%.2f\n", a - b }'; done | sort -n | sed -n '1p;$p' | paste -sd' ')
    net_ss=$(for name in "${NAMES[@]}"; do awk -v a="${MED[sslscan,$name]}" -v b="$fs_med" 'BEGIN { printf "%.2f\n", a - b }'; done | sort -n | sed -n '1p;$p' | paste -sd' ')
    echo "  Net of process start-up, roomready's probing took ${net_rr% *} to ${net_rr#* } ms per endpoint and"
    echo "  sslscan's ${net_ss% *} to ${net_ss#* } ms (median minus start-up floor): compare these too, since part of"
    echo "  the end-to-end difference is start-up cost rather than probing."
    if [[ -z $over ]]; then
        echo "- **Under 1/100 of testssl.sh's time: met** on every endpoint (largest median ratio roomready / testssl.sh: $max_ts, target < 0.010)."
    else
        echo "- **Under 1/100 of testssl.sh's time: not met** on $over (largest median ratio roomready / testssl.sh: $max_ts, target < 0.010)."
    fi
    if [[ $DISAGREE -eq 0 ]]; then
        echo "- **Identical verdicts: met**: roomready, sslscan and testssl.sh agree on all $((${#NAMES[@]} * 4)) endpoint/version pairs."
    else
        echo "- **Identical verdicts: not met**: $DISAGREE endpoint/version pair(s) differ (marked **NO** above)."
    fi
    if [[ $WRONG -eq 0 ]]; then
        echo "- roomready's verdicts match the servers' configuration on every pair."
    else
        echo "- roomready's verdicts differ from the servers' configuration on $WRONG pair(s) (marked **NO** above)."
    fi
    echo
    echo "Caveats: loopback only, so network latency (where roomready's concurrent probes help most,"
    echo "and testssl.sh's many sequential connections hurt most) is absent; each figure includes process"
    echo "start-up; roomready does more per run than sslscan's protocol-only scan (suite, certificate"
    echo "chain verification, assessment)."
} >"$tmp_out"

"$REPO/tests/bench/splice.sh" probe "$tmp_out" "$OUT"
rm -f "$tmp_out"
note "report written to $OUT (section \"probe\")"
for name in "${NAMES[@]}"; do
    note "$(printf '%-12s roomready %8s ms  sslscan %8s ms  testssl.sh %9s ms  rr/sslscan %s  rr/testssl %s' "$name" \
        "$(fmt_ms "${MED[roomready,$name]}")" "$(fmt_ms "${MED[sslscan,$name]}")" "$(fmt_ms "${MED[testssl,$name]}")" \
        "$(ratio "${MED[roomready,$name]}" "${MED[sslscan,$name]}")" "$(ratio "${MED[roomready,$name]}" "${MED[testssl,$name]}")")"
done
