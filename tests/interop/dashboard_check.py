"""Checks a Grafana dashboard's shape and extracts every query in it.

Usage:
  dashboard_check.py shape DASHBOARD.json     exits 1 with a message per problem
  dashboard_check.py queries DASHBOARD.json   prints "TITLE<TAB>PROMQL" per query

Shape: schemaVersion 39; unique panel ids; grid positions inside the 24
columns and not overlapping; every panel and target using the `datasource`
variable (no hard-coded data source UID); `datasource`, `instance` and
`service` template variables as the README describes; a unit on every panel
that shows numbers.

Queries: every panel target and every template-variable query, with
Grafana's variables replaced by values Prometheus accepts ($instance and
$service by `.*`, $__range by 5m, $__rate_interval by 1m); a
`label_values(EXPR, LABEL)` variable query becomes `count by (LABEL) (EXPR)`.
"""

import json
import re
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
SUBST = {"$instance": ".*", "$service": ".*", "$__range": "5m", "$__rate_interval": "1m"}


def all_panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def shape(dash):
    problems = []
    if dash.get("schemaVersion") != 39:
        problems.append(f"schemaVersion is {dash.get('schemaVersion')}, want 39")
    ids = [p["id"] for p in all_panels(dash)]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        problems.append(f"duplicate panel ids: {sorted(dup)}")
    boxes = []
    for p in all_panels(dash):
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] <= 0 or g["h"] <= 0 or g["x"] + g["w"] > 24:
            problems.append(f"panel {p['title']!r}: gridPos {g} is outside the 24 columns")
        for other, og in boxes:
            if g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"] and g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]:
                problems.append(f"panels {other!r} and {p['title']!r} overlap")
        boxes.append((p["title"], g))
        if p["type"] == "row":
            continue
        if p.get("datasource") != DS:
            problems.append(f"panel {p['title']!r}: datasource {p.get('datasource')}, want {DS}")
        if not p.get("targets"):
            problems.append(f"panel {p['title']!r} has no query")
        for t in p.get("targets", []):
            if t.get("datasource") != DS:
                problems.append(f"panel {p['title']!r} target {t.get('refId')}: datasource {t.get('datasource')}, want {DS}")
        if "unit" not in p.get("fieldConfig", {}).get("defaults", {}):
            problems.append(f"panel {p['title']!r} sets no unit")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no `datasource` variable of type datasource for prometheus")
    for name in ("instance", "service"):
        v = variables.get(name)
        if not v or not v.get("multi") or not v.get("includeAll"):
            problems.append(f"no multi-select `{name}` variable with All")
        elif v.get("datasource") != DS:
            problems.append(f"variable {name}: datasource {v.get('datasource')}, want {DS}")
    text = json.dumps(dash)
    for uid in set(re.findall(r'"uid": "([^"]*)"', text)):
        if uid not in ("${datasource}", "-- Grafana --", dash.get("uid")):
            problems.append(f"hard-coded data source uid {uid!r}")
    return problems


def substitute(q):
    for k, v in SUBST.items():
        q = q.replace(k, v)
    return q


def queries(dash):
    for p in all_panels(dash):
        for t in p.get("targets", []):
            yield p["title"], substitute(t["expr"])
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
        if m:
            q = f"count by ({m.group(2)}) ({m.group(1)})"
        yield f"variable {v['name']}", substitute(q)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    dash = json.load(open(path))
    if mode == "shape":
        problems = shape(dash)
        for p in problems:
            print(p)
        sys.exit(1 if problems else 0)
    for title, q in queries(dash):
        print(f"{title}\t{q}")


if __name__ == "__main__":
    main()
