"""Reference TLS 1.3 handshake timing for the interop suite's latency scenario.

Usage: tls_reference.py IP PORT SERVER_NAME CA_FILE COUNT
Prints COUNT lines "connect_seconds handshake_seconds".

The TLS context (trust store, parameters) is built once, before any clock
starts, as the exporter builds its client configuration once per config
load: curl's time_appconnect also counts building OpenSSL's context for
each transfer (about 3 ms here, with no delay on the path), which is time on
the client, not on the path.
"""

import socket
import ssl
import sys
import time


def main() -> None:
    ip, port, name, ca_file, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    for _ in range(count):
        t0 = time.perf_counter()
        sock = socket.create_connection((ip, port), timeout=5)
        t1 = time.perf_counter()
        tls = ctx.wrap_socket(sock, server_hostname=name)
        t2 = time.perf_counter()
        tls.close()
        print(f"{t1 - t0:.6f} {t2 - t1:.6f}")


if __name__ == "__main__":
    main()
