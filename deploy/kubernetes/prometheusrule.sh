#!/usr/bin/env bash
# Writes prometheusrule.yaml: alerts/reachability.rules.yml as a
# PrometheusRule for prometheus-operator. Run it after changing the rules;
# the interop suite (kubernetes scenario) fails while the two differ.
set -euo pipefail
cd "$(dirname "$0")"
rules=../../alerts/reachability.rules.yml
{
    cat <<'HEAD'
# alerts/reachability.rules.yml as a PrometheusRule, for prometheus-operator.
# Written by prometheusrule.sh from that file: edit the rules there, then run
# the script. Prometheus picks it up when its ruleSelector (and
# ruleNamespaceSelector) match: kube-prometheus-stack, for one, selects
# `release: <its release name>` unless told otherwise; add that label below.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: reachability-exporter
  labels:
    app.kubernetes.io/name: reachability-exporter
spec:
HEAD
    sed -n '/^groups:/,$p' "$rules" | sed 's/^\(.\)/  \1/'
} >prometheusrule.yaml
