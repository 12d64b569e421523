# Censor location (`locate:`) on a path of real routers, sourced by run.sh.
#
# A chain of routers from the suite's client namespace (which gets a second
# link and a default route through it) to a server of its own:
#   client 10.251.1.1 - r1 - r2 - r3 - server 10.251.4.2
# r1 is hop 1 (10.251.1.2, facing the client), r2 hop 2 (10.251.2.2),
# r3 hop 3 (10.251.3.2), the server hop 4. Each router forwards, and
# answers ICMP time exceeded from the address facing the client. The same
# over IPv6: link i is fd51:i::/64 (fd51:i::1 towards the client,
# fd51:i::2 towards the server), the server fd51:4::2.
# The censor goes into a router's FORWARD chain: a packet whose TTL ends
# at that router expires before the chain sees it, so a censor in router
# k acts on packets that reach hop k + 1: the search reports hop k + 1, and
# the routers at hops k + 1 and k.
# The exporter runs in the client namespace as uid 65534 with no
# capability, as the container does, on 127.0.0.1:9810 (where the dashboard
# scenario's Prometheus scrapes it).

HOP_NS=()
HOP_NET=10.251
HOP_NET6=fd51

hop_ns() { if [ "$1" = 0 ]; then echo "$CLI"; else echo "re-h$1-$$"; fi; } # INDEX: 0 client, 1-3 routers, 4 server
in_hop() { local i=$1; shift; ip netns exec "$(hop_ns "$i")" "$@"; }

make_chain() {
    for i in 1 2 3 4; do
        ip netns add "$(hop_ns "$i")"
        HOP_NS+=("$(hop_ns "$i")")
        ip -n "$(hop_ns "$i")" link set lo up
    done
    # Link i joins namespace i-1 (.1) and namespace i (.2) on 10.251.i.0/24.
    for i in 1 2 3 4; do
        local a="rh$i-a-$$" b="rh$i-b-$$"
        ip link add "${a:0:15}" type veth peer name "${b:0:15}"
        ip link set "${a:0:15}" netns "$(hop_ns $((i - 1)))"
        ip link set "${b:0:15}" netns "$(hop_ns "$i")"
        ip -n "$(hop_ns $((i - 1)))" addr add "$HOP_NET.$i.1/24" dev "${a:0:15}"
        ip -n "$(hop_ns "$i")" addr add "$HOP_NET.$i.2/24" dev "${b:0:15}"
        ip -n "$(hop_ns $((i - 1)))" addr add "$HOP_NET6:$i::1/64" dev "${a:0:15}" nodad
        ip -n "$(hop_ns "$i")" addr add "$HOP_NET6:$i::2/64" dev "${b:0:15}" nodad
        ip -n "$(hop_ns $((i - 1)))" link set "${a:0:15}" up
        ip -n "$(hop_ns "$i")" link set "${b:0:15}" up
    done
    # Towards the server: via the next link; back: via the previous one.
    ip -n "$(hop_ns 0)" route add default via "$HOP_NET.1.2"
    ip -n "$(hop_ns 0)" -6 route add "$HOP_NET6::/16" via "$HOP_NET6:1::2"
    for i in 1 2 3; do
        in_hop "$i" sysctl -qw net.ipv4.ip_forward=1
        in_hop "$i" sysctl -qw net.ipv6.conf.all.forwarding=1
        ip -n "$(hop_ns "$i")" route add default via "$HOP_NET.$((i + 1)).2"
        ip -n "$(hop_ns "$i")" -6 route add default via "$HOP_NET6:$((i + 1))::2"
        for j in $(seq 1 $((i - 1))); do
            ip -n "$(hop_ns "$i")" route add "$HOP_NET.$j.0/24" via "$HOP_NET.$i.1"
            ip -n "$(hop_ns "$i")" -6 route add "$HOP_NET6:$j::/64" via "$HOP_NET6:$i::1"
        done
    done
    ip -n "$(hop_ns 4)" route add default via "$HOP_NET.4.1"
    ip -n "$(hop_ns 4)" -6 route add default via "$HOP_NET6:4::1"
    # The server: a TLS server any name may reach (the certificate names
    # blocked.lab; the neutral name's handshake is not validated).
    cat > "$WORK/hop-server.py" <<'EOF'
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
def serve(c):
    try:
        ctx.wrap_socket(c, server_side=True).close()
    except (OSError, ssl.SSLError):
        c.close()
s = socket.create_server(("::", 443), family=socket.AF_INET6, dualstack_ipv6=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
    spawn ip netns exec "$(hop_ns 4)" python3 "$WORK/hop-server.py" "$WORK/server.pem" "$WORK/server.key"
    wait_for "the hop server" in_hop 4 bash -c "ss -Hltn 'sport = :443' | grep -q ."
    # The unprivileged exporter reads its config and CA from here.
    mkdir -p "$WORK/hops"
    cp "$WORK/ca.pem" "$EXPORTER" "$WORK/hops/"
    chmod 755 "$WORK" "$WORK/hops" "$WORK/hops/reachability_exporter"
    chmod 644 "$WORK/hops/ca.pem"
    cat > "$WORK/hops/exporter.yaml" <<EOF
listen: 127.0.0.1:9810
timeout: 1s
services:
  far:
    control_sni: neutral.lab
    locate: { every: 10m, max_hops: 8 }
    tls: [{ target: "$HOP_NET.4.2:443", sni: blocked.lab, ca_file: ca.pem }]
  far6:
    control_sni: neutral.lab
    locate: { every: 10m, max_hops: 8 }
    tls: [{ target: "[$HOP_NET6:4::2]:443", sni: blocked.lab, ca_file: ca.pem }]
EOF
}

remove_chain() {
    for ns in "${HOP_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
}

# start_hop_exporter: an unprivileged exporter in the client namespace,
# searching for the censor of the chain's server; stop_hop_exporter.
start_hop_exporter() {
    ip netns exec "$(hop_ns 0)" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
        "$WORK/hops/reachability_exporter" --config.file "$WORK/hops/exporter.yaml" --log.level debug 2>"$WORK/hops/exporter.log" &
    HOP_PID=$!
    PIDS+=("$HOP_PID")
    wait_for "the unprivileged exporter" in_hop 0 curl -sf http://127.0.0.1:9810/-/ready
}
stop_hop_exporter() {
    kill "$HOP_PID"
    wait "$HOP_PID" 2>/dev/null || true
}

# located: starts the exporter, scrapes until the search of each target
# (IPv4 and IPv6) has ended (or 60 s pass), leaves the last scrape in LAST
# and stops the exporter.
located() {
    start_hop_exporter || return 1
    LAST=""
    local far pending
    for _ in $(seq 1 60); do
        LAST=$(in_hop 0 curl -sf --max-time 4 -H 'X-Prometheus-Scrape-Timeout-Seconds: 3' http://127.0.0.1:9810/metrics) || true
        # Each target searched, or with no verdict 1 (no search will come).
        pending=0
        for far in far far6; do
            [ -n "$(value "$LAST" reachability_censor_located_timestamp_seconds service=\"$far\")" ] \
                || [ "$(value "$LAST" reachability_blocking_suspected service=\"$far\" kind=\"sni_filtered\")" = 0 ] \
                || pending=1
        done
        [ "$pending" = 0 ] && break
        sleep 1
    done
    stop_hop_exporter
    # What the search saw, for a failure's report.
    LAST+=$'\n'$(grep -i censor "$WORK/hops/exporter.log" || true)
}

# censor_at ROUTER ACTION: the SNI censor in router ROUTER's FORWARD chain,
# for IPv4 and IPv6 alike.
censor_at() {
    in_hop "$1" iptables -A FORWARD -p tcp --dport 443 -m string --string blocked.lab --algo bm "${@:2}"
    in_hop "$1" ip6tables -A FORWARD -p tcp --dport 443 -m string --string blocked.lab --algo bm "${@:2}"
}
uncensor() { in_hop "$1" iptables -F FORWARD; in_hop "$1" ip6tables -F FORWARD; } # ROUTER

FAR=(service=\"far\" target=\"$HOP_NET.4.2:443\")
FAR6=(service=\"far6\" target=\"[$HOP_NET6:4::2]:443\")

# located_at ROUTER ACTION...: the SNI censor in router ROUTER's FORWARD
# chain, doing ACTION, is located at hop ROUTER + 1, between the routers
# at hops ROUTER + 1 and ROUTER (each named by its address facing the
# client, 10.251.K.2 and fd51:K::2), on a path of 4 hops, over IPv4 and
# over IPv6.
located_at() {
    local r=$1
    shift
    censor_at "$r" "$@"
    located
    uncensor "$r"
    for far in FAR FAR6; do
        local -n labels=$far
        expect "$LAST" 1 reachability_blocking_suspected "${labels[@]}" kind=\"sni_filtered\"
        expect "$LAST" $((r + 1)) reachability_censor_hop "${labels[@]}" kind=\"sni_filtered\"
        expect "$LAST" 4 reachability_censor_path_hops "${labels[@]}"
        for h in $((r + 1)) "$r"; do
            local address="$HOP_NET.$h.2"
            [ "$far" = FAR6 ] && address="$HOP_NET6:$h::2"
            expect "$LAST" 1 reachability_censor_hop_info "${labels[@]}" hop=\"$h\" address=\"$address\"
        done
    done
}

s_hop_reset() { located_at 2 -j REJECT --reject-with tcp-reset; }
s_hop_drop() { located_at 1 -j DROP; }

s_hop_clean() {
    located
    for far in FAR FAR6; do
        local -n labels=$far
        expect "$LAST" 0 reachability_blocking_suspected "${labels[@]}" kind=\"sni_filtered\"
        expect "$LAST" absent reachability_censor_hop "${labels[@]}"
        expect "$LAST" absent reachability_censor_path_hops "${labels[@]}"
    done
}

# Router 2 sends no ICMP and the censor sits behind it: the packet's
# arrival at hop 2 cannot be proven, so no hop is claimed (a wrong one
# would be worse), though the search ended.
s_hop_silent_router() {
    censor_at 2 -j REJECT --reject-with tcp-reset
    in_hop 2 iptables -A OUTPUT -p icmp --icmp-type time-exceeded -j DROP
    located
    uncensor 2
    in_hop 2 iptables -F OUTPUT
    expect "$LAST" 1 reachability_blocking_suspected "${FAR[@]}" kind=\"sni_filtered\"
    is_number "$(value "$LAST" reachability_censor_located_timestamp_seconds "${FAR[@]}")" \
        || ERRORS+=("no search ended")
    expect "$LAST" absent reachability_censor_hop "${FAR[@]}"
    expect "$LAST" 4 reachability_censor_path_hops "${FAR[@]}"
}
