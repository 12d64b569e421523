#!/usr/bin/env bash
# Mutation testing of the code whose mistakes would mislead users most:
# the verdict rules and plans (src/verdict/), the error → reason map
# (src/reason.rs), the config validation (src/config/) and the censor
# search's proof (src/locate.rs). cargo-mutants
# breaks one thing at a time (a condition negated, a match arm deleted, a
# value replaced) and runs the tests that cover that file; a mutant that
# no test notices is "missed". Not run by CI: it rebuilds once per mutant
# (an hour or more on 2 cores). bench/RESULTS.md has the last table, with
# every remaining missed mutant explained.
#
# Usage: bench/mutants.sh [verdict|plan|reason|config|config-sections|config-reading|locate ...]   (default: all)
# Needs: cargo install --locked cargo-mutants
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
out=${MUTANTS_OUT:-target/mutants}
mkdir -p "$out"
run() { # NAME FILES... -- CARGO TEST SELECTION (--lib, --test NAME)
    local name=$1
    shift
    local files=()
    while [ "$1" != -- ]; do files+=(-f "$1"); shift; done
    shift
    echo "== $name"
    # The test selection goes to the build (`cargo test --no-run`) too, so
    # that a mutant rebuilds only the tests that will run (--cargo-test-arg
    # would reach the test run only: every test target rebuilt, ~1 min a
    # mutant).
    local sel=()
    for a in "$@"; do sel+=(--cargo-arg="$a"); done
    # MUTANTS_IN_PLACE=1: mutate this tree and build in its target/ (warm:
    # no 10-minute baseline build in a copy). Leave src/ alone meanwhile.
    # No --timeout: cargo-mutants takes 5 times the baseline's test time
    # (at least 20 s), so a mutant that loops (a bisection's bounds) costs
    # seconds, not minutes. MUTANTS_ITERATE=1: only what the last run of
    # this set did not catch.
    cargo mutants --no-shuffle ${MUTANTS_IN_PLACE:+--in-place} ${MUTANTS_ITERATE:+--iterate} "${files[@]}" \
        -o "$out/$name" "${sel[@]}" >"$out/$name.log" 2>&1 || true
    local m="$out/$name/mutants.out"
    printf '%s: caught %s, missed %s, timeout %s, unviable %s\n' "$name" \
        "$(wc -l <"$m/caught.txt")" "$(wc -l <"$m/missed.txt")" \
        "$(wc -l <"$m/timeout.txt")" "$(wc -l <"$m/unviable.txt")"
    sed 's/^/  missed: /' "$m/missed.txt"
}
want=${*:-verdict plan reason config config-sections config-reading locate}
for w in $want; do
    case $w in
        verdict) run verdict src/verdict/mod.rs -- --lib ;;
        plan) run plan src/verdict/plan.rs -- --test=bundled_config --test=golden --test=verdicts ;;
        reason) run reason src/reason.rs -- --lib --test=probes --test=call_ports --test=http --test=verdicts ;;
        config) run config src/config/validate.rs src/config/values.rs src/config/dns.rs src/config/tcp.rs \
            src/config/tls.rs src/config/call_port.rs src/config/http.rs src/config/transfer.rs \
            src/config/quic.rs src/config/allow.rs src/config/locate.rs -- --lib --test=config_errors --test=bundled_config ;;
        # The rest of src/config/: the top-level sections, then how a file
        # is read (YAML errors, the phrases that name keys).
        config-sections) run config-sections src/config/resolver.rs src/config/pace.rs \
            src/config/regime.rs src/config/test_list.rs src/config/remote_write.rs src/config/web.rs \
            src/config/listen.rs src/config/check.rs src/config/kind.rs \
            -- --lib --test=config_errors --test=bundled_config --test=test_lists --test=web_config ;;
        config-reading) run config-reading src/config/decode.rs src/config/words.rs \
            -- --lib --test=config_errors --test=bundled_config --test=test_lists --test=web_config ;;
        locate) run locate src/locate.rs -- --lib ;;
        *) echo "unknown set $w (verdict, plan, reason, config, config-sections, config-reading, locate)" >&2; exit 2 ;;
    esac
done
