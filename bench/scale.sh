#!/usr/bin/env bash
# Scale benchmark: how the reported TLS handshake latency holds up as a
# round grows from 10 to 10,000 checks, against the one-at-a-time figure
# of the same run, on one loopback testbed (nginx serving TLS on :8443 on
# every 127/8 address; port 9444 blackholed by an iptables rule on lo).
#
# For each size it starts the release binary on a config of N TLS checks
# (distinct addresses 127.1.x.y), scrapes /metrics once per round with the
# scrape timeout Prometheus would announce, and prints one table: reported
# handshake p50 / p99 across the checks of all its rounds, checks that succeeded,
# scrape wall time, CPU per check, peak RSS, the exporter's own task delay
# (p99), exposition size and the time to render it again (a second scrape
# served from the same round by min_interval).
#
# Usage: sudo bench/scale.sh   (root: installs nginx, adds and removes one
#                               iptables rule on lo; ~4 minutes)
#        SIZES="10 150" ROUNDS=2 sudo -E bench/scale.sh   for a shorter run
#        BASELINE=/path/to/old/reachability_exporter sudo -E bench/scale.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/reachability-scale.XXXXXX)
BIN="$ROOT/target/release/reachability_exporter"
# BASELINE=path/to/another/build runs each size with it too, side by side
# (an older commit's binary, say: the configs use no key it lacks).
BASELINE=${BASELINE:-}
SIZES=${SIZES:-"10 150 1000 10000"}
ROUNDS=${ROUNDS:-3}
PIDS=()
HZ=$(getconf CLK_TCK)
RULE=(INPUT -i lo -p tcp --dport 9444 -j DROP)

log() { printf '%s\n' "$*" >&2; }
cleanup() {
    set +e
    iptables -D "${RULE[@]}" 2>/dev/null
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [ "${KEEP_WORK:-}" = "" ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

need=()
command -v nginx >/dev/null || need+=(nginx)
command -v openssl >/dev/null || need+=(openssl)
command -v iptables >/dev/null || need+=(iptables)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    log "installing: ${need[*]}"
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
    rm -f /usr/sbin/policy-rc.d
fi
(cd "$ROOT" && cargo build --release --locked -q)

cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key -out ca.pem -days 2 -subj "/CN=scale CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout server.key -out server.csr -subj "/CN=bench.test" 2>/dev/null
printf 'subjectAltName=DNS:bench.test\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out server.pem -days 2 -extfile san.ext 2>/dev/null
mkdir -p nginx
cat > nginx.conf <<EOF
user root;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 16384; }
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
        ssl_session_tickets off;
        location / { return 200 "ok\n"; }
    }
}
EOF
ulimit -n "$(ulimit -Hn)"
nginx -c "$WORK/nginx.conf" -g 'daemon off;' & PIDS+=("$!")
iptables -I "${RULE[@]}"
for _ in $(seq 1 100); do
    curl -sf --cacert ca.pem --resolve bench.test:8443:127.1.0.1 https://bench.test:8443/ >/dev/null && break
    sleep 0.1
done

addr() { printf '127.1.%d.%d' $(($1 / 250)) $(($1 % 250 + 1)); }

# config N [BLACKHOLED]: N TLS checks, the last BLACKHOLED of them to :9444.
config() {
    local n=$1 dark=${2:-0} i port
    printf 'listen: 127.0.0.1:9799\nmin_interval: 1m\nallowed_ranges: [127.0.0.0/8]\nservices:\n  scale:\n    timeout: 3s\n    tls:\n'
    for i in $(seq 0 $((n - 1))); do
        port=8443
        [ "$i" -ge $((n - dark)) ] && port=9444
        printf '      - { target: "%s:%d", sni: bench.test, ca_file: ca.pem }\n' "$(addr "$i")" "$port"
    done
}

# run NAME CONFIG HEADER ROUNDS [BINARY]: ROUNDS rounds, each by a fresh
# exporter (so every round starts cold, as after a restart); prints one row.
run() {
    local name=$1 cfg=$2 header=$3 rounds=$4 bin=${5:-$BIN} r pid cpu0 cpu1 t0 t1 t2 hwm=0 h
    : > "$WORK/$name.rows"
    for r in $(seq 1 "$rounds"); do
        "$bin" --config.file "$cfg" --log.level=warn & pid=$!
        for _ in $(seq 1 300); do curl -sf http://127.0.0.1:9799/-/ready >/dev/null && break; sleep 0.1; done
        echo 5 > "/proc/$pid/clear_refs"
        cpu0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        t0=$(date +%s.%N)
        curl -sf -H "X-Prometheus-Scrape-Timeout-Seconds: $header" http://127.0.0.1:9799/metrics > "$WORK/$name.$r.prom"
        t1=$(date +%s.%N)
        cpu1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        # Served from the same round (min_interval): rendering only.
        curl -sf http://127.0.0.1:9799/metrics > /dev/null
        t2=$(date +%s.%N)
        h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
        [ "$h" -gt "$hwm" ] && hwm=$h
        kill "$pid"; wait "$pid" 2>/dev/null || true
        printf '%s %s %s %s\n' "$t0" "$t1" "$t2" "$((cpu1 - cpu0))" >> "$WORK/$name.rows"
    done
    python3 - "$WORK" "$name" "$rounds" "$hwm" "$HZ" <<'EOF'
import re, statistics, sys
work, name, rounds, hwm, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = [l.split() for l in open(f"{work}/{name}.rows")]
def q(v, p):
    v = sorted(v)
    return v[max(0, min(len(v) - 1, int(round(p * len(v) + 0.5)) - 1))] if v else float("nan")
alld, oks, walls, cpus, delays, sizes, renders, fails = [], [], [], [], [], [], [], {}
for r in range(1, rounds + 1):
    text = open(f"{work}/{name}.{r}.prom").read()
    d = [float(m.group(1)) for m in re.finditer(r'^reachability_tls_handshake_duration_seconds\{[^}]*\} (\S+)$', text, re.M)]
    ok = len(re.findall(r'^reachability_tls_handshake_success\{[^}]*\} 1(\.0)?$', text, re.M))
    n = len(re.findall(r'^reachability_tls_handshake_success\{', text, re.M))
    for m in re.finditer(r'^reachability_failure_info\{[^}]*stage="([^"]+)",reason="([^"]+)"\} 1', text, re.M):
        fails[m.groups()] = fails.get(m.groups(), 0) + 1
    delay = re.search(r'^reachability_exporter_task_delay_seconds\{quantile="0.99"\} (\S+)$', text, re.M)
    t0, t1, t2, ticks = float(rows[r-1][0]), float(rows[r-1][1]), float(rows[r-1][2]), int(rows[r-1][3])
    alld.extend(d); oks.append(f"{ok}/{n}")
    walls.append(t1 - t0); cpus.append(ticks / hz / max(n, 1)); sizes.append(len(text)); renders.append(t2 - t1)
    delays.append(float(delay.group(1)) if delay else float("nan"))
med = statistics.median
failed = ", ".join(f"{c / rounds:g}× {s}/{r}" for (s, r), c in sorted(fails.items()))
# Handshake quantiles over every check of every round.
print(f"| {name} | {q(alld, 0.5)*1e3:.2f} | {q(alld, 0.99)*1e3:.2f} | {' '.join(sorted(set(oks)))} | {med(walls):.2f} | {med(cpus)*1e3:.3f} | {hwm/1024:.1f} | {med(delays)*1e3:.2f} | {med(sizes)/1024:.0f} | {med(renders)*1e3:.1f} | {failed or '—'} |")
EOF
}

printf '| round | handshake p50 (ms) | p99 (ms) | succeeded | scrape (s) | CPU/check (ms) | peak RSS (MiB) | own task delay p99 (ms) | exposition (KiB) | render (ms) | failures (per round) |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
# One at a time: a round of one check, many rounds.
config 1 > one.yml
run one-at-a-time one.yml 10 $((ROUNDS * 10))
for n in $SIZES; do
    config "$n" > "tls-$n.yml"
    header=10
    [ "$n" -gt 1000 ] && header=30
    rounds=$ROUNDS
    [ "$n" -gt 1000 ] && rounds=1
    run "tls-$n" "tls-$n.yml" "$header" "$rounds"
    [ -n "$BASELINE" ] && run "tls-$n (baseline)" "tls-$n.yml" "$header" "$rounds" "$BASELINE"
done
config 1000 100 > dark.yml
run "tls-1000-100-blackholed" dark.yml 10 "$ROUNDS"
[ -n "$BASELINE" ] && run "tls-1000-100-blackholed (baseline)" dark.yml 10 "$ROUNDS" "$BASELINE"
exit 0
