#!/usr/bin/env bash
# Side-by-side benchmark: reachability_exporter against Debian's
# prometheus-blackbox-exporter, in the same run on the same machine, on
# equivalent modules (a TLS connect to a loopback server with our CA and
# SNI), alternating which goes first from phase to phase. Prints one table
# with both figures and their ratio.
#
# Testbed, all on loopback: nginx serving TLS on :8443 (every 127/8
# address), unbound on 127.0.0.1:5354 with the zone bench.test (n1 … n500 →
# 127.1.x.y), coturn for STUN on 127.0.0.1:3479, and a TCP server that
# accepts and never answers on :9443 (so 500 probes stay in flight at once).
#
# Usage: sudo bench/compare.sh   (root: installs packages; ~5 minutes)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE="$ROOT/bench"
WORK=$(mktemp -d /tmp/reachability-bench.XXXXXX)
# The static binary the container image ships (glibc static-pie).
OURS="$ROOT/target/x86_64-unknown-linux-gnu/release/reachability_exporter"
BB=/usr/bin/prometheus-blackbox-exporter
PIDS=()
HZ=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [ "${KEEP_WORK:-}" = "" ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT
spawn() { "$@" & PIDS+=("$!"); }

install_packages() {
    local need=()
    [ -x "$BB" ] || need+=(prometheus-blackbox-exporter)
    command -v nginx >/dev/null || need+=(nginx)
    command -v unbound >/dev/null || need+=(unbound)
    command -v turnserver >/dev/null || need+=(coturn)
    command -v wrk >/dev/null || need+=(wrk)
    command -v openssl >/dev/null || need+=(openssl)
    command -v python3 >/dev/null || need+=(python3)
    command -v strip >/dev/null || need+=(binutils)
    [ ${#need[@]} -eq 0 ] && return 0
    log "installing: ${need[*]}"
    local made=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
    [ -n "$made" ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

# Waits (up to 60 s) until the machine is at least 90 % idle over a second.
wait_idle() {
    local i a b
    for i in $(seq 1 60); do
        a=$(awk '/^cpu /{ print $2+$3+$4+$5+$6+$7+$8, $5 }' /proc/stat)
        sleep 1
        b=$(awk '/^cpu /{ print $2+$3+$4+$5+$6+$7+$8, $5 }' /proc/stat)
        if awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); exit !((y[2] - x[2]) / (y[1] - x[1]) > 0.9) }'; then
            return 0
        fi
    done
    log "the machine did not become idle; measuring anyway"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# Resets VmHWM to the current RSS (Linux: write 5 to clear_refs).
reset_hwm() { echo 5 > "/proc/$1/clear_refs"; }

testbed() {
    cd "$WORK"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=bench.test" 2>/dev/null
    printf 'subjectAltName=DNS:bench.test\n' > san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile san.ext 2>/dev/null
    cd - >/dev/null
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server {
        listen 8443 ssl;
        ssl_certificate $WORK/server.pem;
        ssl_certificate_key $WORK/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "ok\n"; }
    }
}
EOF
    ulimit -n "$(ulimit -Hn)"
    spawn nginx -c "$WORK/nginx.conf" -g 'daemon off;'
    {
        cat <<EOF
server:
    interface: 127.0.0.1@5354
    access-control: 127.0.0.0/8 allow
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: "$WORK/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    local-zone: "." static
    local-zone: "bench.test." static
    local-data: "bench.test. SOA ns.bench.test. root.bench.test. 1 3600 600 86400 60"
EOF
        for i in $(seq 1 500); do
            printf '    local-data: "n%d.bench.test. A 127.1.%d.%d"\n' "$i" $((i / 250)) $((i % 250 + 1))
        done
        printf 'remote-control:\n    control-enable: no\n'
    } > "$WORK/unbound.conf"
    spawn unbound -d -c "$WORK/unbound.conf"
    spawn turnserver --stun-only --no-cli --no-tls --no-dtls --listening-ip=127.0.0.1 \
        --listening-port=3479 --no-stdout-log --log-file=/dev/null \
        --pidfile="$WORK/turnserver.pid" --userdb="$WORK/turndb" >/dev/null 2>&1
    spawn python3 "$HERE/client.py" stall 9443
    local i
    for i in $(seq 1 100); do
        curl -sf --cacert "$WORK/ca.pem" --resolve bench.test:8443:127.1.1.244 https://bench.test:8443/ >/dev/null 2>&1 \
            && ss -Hlnt 'sport = :9443' | grep -q . && ss -Hlun 'sport = :5354' | grep -q . && return 0
        sleep 0.1
    done
    log "the testbed did not start"
    return 1
}

write_configs() {
    cat > "$WORK/blackbox.yml" <<EOF
modules:
  tls:
    prober: tcp
    timeout: 5s
    tcp:
      tls: true
      tls_config:
        ca_file: $WORK/ca.pem
        server_name: bench.test
  tls_stall:
    prober: tcp
    timeout: 3s
    tcp:
      tls: true
      tls_config:
        ca_file: $WORK/ca.pem
        server_name: bench.test
  dns:
    prober: dns
    timeout: 5s
    dns:
      query_name: n1.bench.test
      query_type: A
      transport_protocol: udp
      preferred_ip_protocol: ip4
EOF
    cat > "$WORK/ours.yml" <<EOF
listen: 127.0.0.1:9799
allowed_ranges: [127.0.0.0/8]
resolvers:
  system: { udp: "127.0.0.1:5354" }
probe_allow: ["127.0.0.0/8"]
modules:
  tls: { kind: tls, sni: bench.test, ca_file: ca.pem, timeout: 5s }
  tls_stall: { kind: tls, sni: bench.test, ca_file: ca.pem, timeout: 3s }
services:
  idle:
    tcp: ["127.0.0.1:8443"]
EOF
    # 1,000 configured checks: TLS to the 500 addresses, 500 DNS names;
    # started all at once (pace lifted), as blackbox_exporter's 1,000
    # concurrent requests are: this measures throughput, not latency.
    {
        printf 'listen: 127.0.0.1:9799\npace: { starts_per_second: 1000000, spread: 90%% }\nallowed_ranges: [127.0.0.0/8]\nresolvers:\n  system: { udp: "127.0.0.1:5354" }\nservices:\n  fan:\n    dns:\n      names:\n'
        for i in $(seq 1 500); do printf '        - n%d.bench.test\n' "$i"; done
        printf '    tls:\n'
        for i in $(seq 1 500); do
            printf '      - { target: "127.1.%d.%d:8443", sni: bench.test, ca_file: ca.pem }\n' $((i / 250)) $((i % 250 + 1))
        done
    } > "$WORK/ours-1000.yml"
    : > "$WORK/bb-1000.txt"; : > "$WORK/ours-fanout.txt"; : > "$WORK/bb-fanout.txt"
    for i in $(seq 1 500); do
        local a="127.1.$((i / 250)).$((i % 250 + 1))"
        echo "http://127.0.0.1:9115/probe?module=tls&target=$a:8443" >> "$WORK/bb-1000.txt"
        echo "http://127.0.0.1:9115/probe?module=dns&target=127.0.0.1:5354" >> "$WORK/bb-1000.txt"
        echo "http://127.0.0.1:9115/probe?module=tls_stall&target=$a:9443" >> "$WORK/bb-fanout.txt"
        echo "http://127.0.0.1:9799/probe?module=tls_stall&target=$a:9443" >> "$WORK/ours-fanout.txt"
    done
}

# start NAME: starts an exporter, waits for it, and sets PID.
start() {
    case $1 in
        bb) "$BB" --config.file "$WORK/blackbox.yml" --web.listen-address 127.0.0.1:9115 --log.level=error >/dev/null 2>&1 &
            PID=$!; PORT=9115 ;;
        ours) "$OURS" --config.file "${2:-$WORK/ours.yml}" --log.level error >/dev/null 2>&1 &
            PID=$!; PORT=9799 ;;
    esac
    PIDS+=("$PID")
    local i
    for i in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null 2>&1 && break
        sleep 0.1
    done
    sleep 2
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }

probe_url() { # NAME → the TLS /probe URL
    case $1 in
        bb) echo "http://127.0.0.1:9115/probe?module=tls&target=127.0.0.1:8443" ;;
        ours) echo "http://127.0.0.1:9799/probe?module=tls&target=127.0.0.1:8443" ;;
    esac
}

declare -A R   # results: R[name.metric]

# Phase: idle RSS, then CPU per TLS probe at 16 and 64 connections (10 s
# of wrk each), then RSS after the load.
phase_load() {
    local n=$1 c t0 t1 reqs
    wait_idle
    start "$n"
    R[$n.idle_rss]=$(rss_kib "$PID")
    R[$n.idle_anon]=$(awk '/^RssAnon:/ { print $2 }' "/proc/$PID/status")
    for c in 16 64; do
        wait_idle
        t0=$(cpu_ticks "$PID")
        reqs=$(wrk -t2 -c"$c" -d10s -H 'X-Prometheus-Scrape-Timeout-Seconds: 10' "$(probe_url "$n")" \
            | awk '/requests in/ { print $1 } /Requests\/sec/ { rps = $2 } END { }')
        t1=$(cpu_ticks "$PID")
        R[$n.rps$c]=$(awk -v r="$reqs" 'BEGIN { printf "%.0f", r / 10 }')
        R[$n.cpu$c]=$(awk -v a="$t0" -v b="$t1" -v r="$reqs" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / r }')
    done
    sleep 2
    R[$n.load_rss]=$(rss_kib "$PID")
    stop
}

# Phase: /probe latency minus the probe's own reported duration.
phase_latency() {
    local n=$1 metric out
    wait_idle
    start "$n"
    case $n in
        bb) metric=probe_duration_seconds ;;
        ours) metric=reachability_exporter_scrape_duration_seconds ;;
    esac
    python3 "$HERE/client.py" latency "$(probe_url "$n")" 20 "$metric" >/dev/null
    out=$(python3 "$HERE/client.py" latency "$(probe_url "$n")" 200 "$metric")
    R[$n.p50]=${out% *}
    R[$n.p99]=${out#* }
    stop
}

# Phase: 500 TLS probes in flight at once (each to a server that never
# answers, 3 s timeout): peak RSS, and RSS 30 s later.
phase_fanout() {
    local n=$1 out
    wait_idle
    start "$n"
    reset_hwm "$PID"
    out=$(python3 "$HERE/client.py" burst "$WORK/$n-fanout.txt" 500 10)
    R[$n.fan_peak]=$(hwm_kib "$PID")
    R[$n.fan_answers]=${out#* }
    sleep 30
    R[$n.fan_after]=$(rss_kib "$PID")
    stop
}

# Phase: 1,000 checks (500 TLS to 500 addresses, 500 DNS): one /metrics
# scrape of a config holding them (ours), or 1,000 concurrent /probe
# requests (blackbox, which has no multi-target scrape).
phase_thousand() {
    local n=$1 t0 t1 s0 s1
    wait_idle
    if [ "$n" = ours ]; then
        start ours "$WORK/ours-1000.yml"
        # One warm-up scrape (resolvers and TLS configs are built at load).
        curl -sf -H 'X-Prometheus-Scrape-Timeout-Seconds: 10' http://127.0.0.1:9799/metrics >/dev/null
        wait_idle
        t0=$(cpu_ticks "$PID"); s0=$(date +%s.%N)
        curl -sf -H 'X-Prometheus-Scrape-Timeout-Seconds: 10' http://127.0.0.1:9799/metrics > "$WORK/1000.txt"
        s1=$(date +%s.%N); t1=$(cpu_ticks "$PID")
        local ok
        ok=$(grep -cE '^reachability_(tls_handshake|dns)_success\{.* 1(\.0)?$' "$WORK/1000.txt" || true)
        R[ours.thousand_ok]=$ok
    else
        start bb
        python3 "$HERE/client.py" burst "$WORK/bb-1000.txt" 1000 10 >/dev/null
        wait_idle
        t0=$(cpu_ticks "$PID"); s0=$(date +%s.%N)
        out=$(python3 "$HERE/client.py" burst "$WORK/bb-1000.txt" 1000 10)
        s1=$(date +%s.%N); t1=$(cpu_ticks "$PID")
        R[bb.thousand_ok]=${out#* }
    fi
    R[$n.k_wall]=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.3f", b - a }')
    R[$n.k_cpu]=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
    stop
}

size_mib() { # BINARY → stripped size in MiB
    strip -o "$WORK/stripped" "$1" 2>/dev/null || cp "$1" "$WORK/stripped"
    awk -v b="$(stat -c %s "$WORK/stripped")" 'BEGIN { printf "%.2f", b / 1048576 }'
}

main() {
    [ "$(id -u)" = 0 ] || { log "run as root (it installs packages)"; exit 1; }
    install_packages
    log "building the exporter (release, static, as the container ships it)"
    (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked -q --target x86_64-unknown-linux-gnu)
    ulimit -n "$(ulimit -Hn)"
    testbed
    write_configs
    log "phase: load (CPU per TLS probe, RSS)"
    phase_load bb; phase_load ours
    log "phase: /probe overhead"
    phase_latency ours; phase_latency bb
    log "phase: 500-target fan-out"
    phase_fanout bb; phase_fanout ours
    log "phase: 1,000 checks"
    phase_thousand ours; phase_thousand bb
    R[ours.size]=$(size_mib "$OURS")
    R[bb.size]=$(size_mib "$BB")

    local cpu model
    cpu=$(nproc); model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
    printf '\nreachability_exporter %s vs blackbox_exporter %s; %s CPUs (%s), %s, kernel %s\n\n' \
        "$("$OURS" --version | awk '{ print $2 }')" "$("$BB" --version 2>&1 | awk 'NR == 1 { print $3 }')" \
        "$cpu" "$model" "$(date -u +%F)" "$(uname -r)"
    printf '| %-44s | %14s | %14s | %7s | %-12s |\n' measure reachability blackbox ratio target
    printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..9})" "$(printf -- '-%.0s' {1..14})"
    row() { # LABEL OURS BB TARGET-RATIO (≤)
        local ratio verdict
        ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { if (b + 0 > 0) printf "%.3f", a / b; else print "-" }')
        verdict=$(awk -v r="$ratio" -v t="$4" 'BEGIN { if (t == "-" || r == "-") print "-"; else if (r + 0 <= t + 0) print "met (<= " t ")"; else print "MISSED (<= " t ")" }')
        printf '| %-44s | %14s | %14s | %7s | %-12s |\n' "$1" "$2" "$3" "$ratio" "$verdict"
    }
    row "CPU ms per TLS probe, 16 connections" "${R[ours.cpu16]}" "${R[bb.cpu16]}" 0.333
    row "CPU ms per TLS probe, 64 connections" "${R[ours.cpu64]}" "${R[bb.cpu64]}" 0.333
    row "requests/s, 16 connections" "${R[ours.rps16]}" "${R[bb.rps16]}" -
    row "requests/s, 64 connections" "${R[ours.rps64]}" "${R[bb.rps64]}" -
    row "idle RSS after start (KiB)" "${R[ours.idle_rss]}" "${R[bb.idle_rss]}" 0.333
    row "  of it private (RssAnon, KiB)" "${R[ours.idle_anon]}" "${R[bb.idle_anon]}" -
    row "RSS after the load (KiB)" "${R[ours.load_rss]}" "${R[bb.load_rss]}" -
    row "peak RSS, 500 probes in flight (KiB)" "${R[ours.fan_peak]}" "${R[bb.fan_peak]}" 0.25
    row "RSS 30 s after the fan-out (KiB)" "${R[ours.fan_after]}" "${R[bb.fan_after]}" 0.25
    row "/probe overhead p50 (ms)" "${R[ours.p50]}" "${R[bb.p50]}" -
    row "/probe overhead p99 (ms)" "${R[ours.p99]}" "${R[bb.p99]}" -
    row "1,000 checks: wall (s)" "${R[ours.k_wall]}" "${R[bb.k_wall]}" -
    row "1,000 checks: CPU (s)" "${R[ours.k_cpu]}" "${R[bb.k_cpu]}" -
    row "stripped binary (MiB)" "${R[ours.size]}" "${R[bb.size]}" -
    printf '\nabsolute targets: overhead p50 <= 0.15 ms: %s; 1,000 checks < 1 s wall: %s, < 0.5 s CPU: %s; binary <= 10 MiB: %s\n' \
        "$(awk -v v="${R[ours.p50]}" 'BEGIN { print (v <= 0.15) ? "met" : "MISSED" }')" \
        "$(awk -v v="${R[ours.k_wall]}" 'BEGIN { print (v < 1) ? "met" : "MISSED" }')" \
        "$(awk -v v="${R[ours.k_cpu]}" 'BEGIN { print (v < 0.5) ? "met" : "MISSED" }')" \
        "$(awk -v v="${R[ours.size]}" 'BEGIN { print (v <= 10) ? "met" : "MISSED" }')"
    printf 'fan-out answers: ours %s, blackbox %s; 1,000 checks: ours %s of 1000 passed, blackbox answers %s\n' \
        "${R[ours.fan_answers]}" "${R[bb.fan_answers]}" "${R[ours.thousand_ok]}" "${R[bb.thousand_ok]}"
}

main "$@"
