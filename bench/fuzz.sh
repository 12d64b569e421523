#!/usr/bin/env bash
# Fuzzes the parsers that take bytes from outside — the STUN decoder and
# its TCP framing, the config loader, the DNS answer classification — with
# tests/fuzz.rs's generator: 10 million executions each (FUZZ_ITERATIONS
# overrides), optimised with overflow checks on, one thread per target; each
# target checks an oracle (a property of every result), not only that
# nothing panics. Prints each target's count.
# CI runs the same targets 20,000 times each as part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_ITERATIONS=${FUZZ_ITERATIONS:-10000000}
start=$(date +%s)
cargo test --profile fuzz --locked --test fuzz -- --nocapture --test-threads 4 2>&1 \
    | grep -E 'executions|record sets|test result'
echo "fuzz: $FUZZ_ITERATIONS executions per target, $(( $(date +%s) - start )) s"
