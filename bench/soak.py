#!/usr/bin/env python3
"""Soak: N scrapes of 50 mixed checks on loopback; RSS and open fds must stay
flat (within 10 % from the end of the warm-up to the end).

  soak.py EXPORTER_BINARY [SCRAPES]     (default 20,000; CI runs 500)

The 50 checks: 20 TCP connects that pass (to a listener that accepts and
never answers, on 20 loopback addresses), 15 refused (closed ports), and 15
TLS handshakes that time out after 100 ms (the same listener: it never
answers the ClientHello). Prints the curve's samples at the start (after
warm-up) and at the end, and exits 1 if either figure grew by more than
10 %.
"""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def listener() -> int:
    """Accepts on an ephemeral port of every loopback address; returns it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", 0))
    s.listen(4096)
    held = []

    def run() -> None:
        while True:
            c, _ = s.accept()
            held.append(c)
            if len(held) > 2000:
                for old in held[:1000]:
                    old.close()
                del held[:1000]

    threading.Thread(target=run, daemon=True).start()
    return s.getsockname()[1]


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    binary = sys.argv[1]
    scrapes = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    port, closed, web = listener(), closed_port(), closed_port()
    lines = [
        f"listen: 127.0.0.1:{web}",
        "allowed_ranges: [127.0.0.0/8]",
        "services:",
        "  pass:",
        "    tcp: [" + ", ".join(f'"127.3.0.{i}:{port}"' for i in range(1, 21)) + "]",
        "  refused:",
        "    tcp: [" + ", ".join(f'"127.3.1.{i}:{closed}"' for i in range(1, 16)) + "]",
        "  timeout:",
        "    timeout: 100ms",
        "    tls: [" + ", ".join(f'{{ target: "127.3.2.{i}:{port}", sni: x.test }}' for i in range(1, 16)) + "]",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        config = f.name
    proc = subprocess.Popen([binary, "--config.file", config, "--log.level", "error"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", web), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
        warmup = max(scrapes // 10, 10)
        every = max(scrapes // 20, 1)
        samples = []
        t0 = time.time()
        for i in range(1, scrapes + 1):
            conn.request("GET", "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "5"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or b'reachability_service_up{service="pass"} 1' not in body:
                raise SystemExit(f"scrape {i}: status {r.status}\n{body[:2000].decode()}")
            if i >= warmup and (i - warmup) % every == 0 or i == scrapes:
                samples.append((i, rss_kib(proc.pid), fds(proc.pid)))
        took = time.time() - t0
    finally:
        proc.terminate()
        proc.wait()
        os.unlink(config)
    (i0, r0, f0), (i1, r1, f1) = samples[0], samples[-1]
    print("scrape      RSS KiB  open fds")
    for i, r, fd in samples:
        print(f"{i:>6}  {r:>11}  {fd:>8}")
    grow_r = (r1 - r0) / r0
    grow_f = (f1 - f0) / f0
    print(
        f"soak: {scrapes} scrapes of 50 checks in {took:.0f} s; from scrape {i0} to {i1}: "
        f"RSS {r0} -> {r1} KiB ({grow_r:+.1%}), open fds {f0} -> {f1} ({grow_f:+.1%})"
    )
    if grow_r > 0.10 or grow_f > 0.10:
        print("soak: FAILED: grew by more than 10 %")
        sys.exit(1)
    print("soak: flat within 10 %")


if __name__ == "__main__":
    main()
