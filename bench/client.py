#!/usr/bin/env python3
"""Load and timing client for bench/compare.sh (standard library only).

  client.py latency URL N METRIC
      N sequential GETs on one keep-alive connection; prints p50 and p99 of
      (request latency - the value of METRIC in the response), in ms: the
      exporter's own overhead around the probe it reports.
  client.py burst URLFILE CONCURRENCY TIMEOUT
      GETs every URL in URLFILE (one per line), CONCURRENCY at a time, each
      on its own connection; prints the wall time in seconds, and the count
      of answers by status.
  client.py stall PORT
      A TCP server on 0.0.0.0:PORT that accepts and never answers: a TLS
      probe to it stays in flight until its timeout.
"""

import asyncio
import socket
import statistics
import sys
import time
import urllib.parse


def metric_value(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise SystemExit(f"{name} not in the response:\n{body[:500]}")


def latency(url: str, n: int, metric: str) -> None:
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    sock = socket.create_connection((u.hostname, u.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    req = (
        f"GET {path} HTTP/1.1\r\nHost: {u.hostname}\r\n"
        "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n"
    ).encode()
    overhead = []
    for _ in range(n):
        t0 = time.perf_counter()
        sock.sendall(req)
        status = f.readline()
        length = None
        chunked = False
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
            if k.lower() == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int(f.readline().split(b";")[0], 16)
                if size == 0:
                    f.readline()
                    break
                parts.append(f.read(size))
                f.readline()
            body = b"".join(parts)
        else:
            body = f.read(length or 0)
        t1 = time.perf_counter()
        if b" 200 " not in status:
            raise SystemExit(f"status {status!r}: {body[:300]!r}")
        overhead.append((t1 - t0) - metric_value(body.decode(), metric))
    overhead.sort()
    p50 = statistics.median(overhead) * 1000
    p99 = overhead[min(len(overhead) - 1, int(len(overhead) * 0.99))] * 1000
    print(f"{p50:.3f} {p99:.3f}")


async def get(url: str, timeout: float) -> int:
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    r, w = await asyncio.open_connection(u.hostname, u.port)
    w.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {u.hostname}\r\nConnection: close\r\n"
            f"X-Prometheus-Scrape-Timeout-Seconds: {timeout}\r\n\r\n"
        ).encode()
    )
    await w.drain()
    status = await r.readline()
    await r.read()
    w.close()
    try:
        return int(status.split()[1])
    except (IndexError, ValueError):
        return 0


async def burst(urlfile: str, concurrency: int, timeout: float) -> None:
    urls = [line.strip() for line in open(urlfile) if line.strip()]
    sem = asyncio.Semaphore(concurrency)
    counts: dict[int, int] = {}

    async def one(url: str) -> None:
        async with sem:
            try:
                s = await get(url, timeout)
            except OSError:
                s = 0
            counts[s] = counts.get(s, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(u) for u in urls))
    print(f"{time.perf_counter() - t0:.3f}", " ".join(f"{k}:{v}" for k, v in sorted(counts.items())))


async def stall(port: int) -> None:
    held = []

    async def hold(r, w):
        held.append(w)
        await r.read()

    server = await asyncio.start_server(hold, "0.0.0.0", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    cmd = sys.argv[1]
    if cmd == "latency":
        latency(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "burst":
        asyncio.run(burst(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    elif cmd == "stall":
        asyncio.run(stall(int(sys.argv[2])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
