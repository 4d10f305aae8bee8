# Shell functions the benchmark scripts share; sourced after the script defines `die`.

# A TCP port nothing listens on yet, in 20000..39999 (Mosquitto's `listener 0` is no ephemeral
# port, so the scripts pick one).
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 20000))
        if ! ss -Htln "sport = :$port" | grep -q .; then echo "$port"; return; fi
    done
    die "no free port found"
}

# kB of VmHWM (peak RSS) of PID so far; 0 once it is gone.
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
