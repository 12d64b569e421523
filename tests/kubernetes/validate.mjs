// node validate.mjs DIR CONFIG_OUT
//
// Validates every Kubernetes object in DIR/*.yaml (all but the plain
// Prometheus config) against its API schema (kubernetes-models and
// @kubernetes-models/prometheus-operator), then checks what the README
// promises of the exporter's containers: read-only root, non-root, all
// capabilities dropped, no privilege escalation, probes on /-/healthy and
// /-/ready, requests and limits, the node name from the downward API, and
// a ConfigMap that exists. Writes the ConfigMap's config.yaml to CONFIG_OUT
// for `--config.check`. The PrometheusRule must hold exactly the groups of
// alerts/reachability.rules.yml (prometheusrule.sh writes it from them).
// Prints one line per object; exits 1 on a problem.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ConfigMap, Service } from "kubernetes-models/v1";
import { DaemonSet, Deployment } from "kubernetes-models/apps/v1";
import { PodMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const MODELS = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/DaemonSet": DaemonSet,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};
const [dir, configOut] = process.argv.slice(2);
const problems = [];
const objects = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
  if (file === "prometheus-scrape-config.yaml") continue; // a Prometheus config, checked by promtool
  for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
    if (doc.errors.length) {
      problems.push(`${file}: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    const key = `${obj.apiVersion}/${obj.kind}`;
    const Model = MODELS[key];
    if (!Model) {
      problems.push(`${file}: no schema known for ${key}`);
      continue;
    }
    try {
      new Model(obj).validate();
      objects.push({ file, obj });
      console.log(`ok ${file}: ${obj.kind}/${obj.metadata.name}`);
    } catch (e) {
      problems.push(`${file}: ${obj.kind}/${obj.metadata?.name}: ${e.message}`);
    }
  }
}

const configMaps = new Map(objects.filter((o) => o.obj.kind === "ConfigMap").map((o) => [o.obj.metadata.name, o.obj]));
for (const { file, obj } of objects.filter((o) => ["Deployment", "DaemonSet"].includes(o.obj.kind))) {
  const spec = obj.spec.template.spec;
  const c = spec.containers.find((c) => c.name === "reachability-exporter");
  const where = `${file}: ${obj.kind}/${obj.metadata.name}`;
  if (!c) {
    problems.push(`${where}: no reachability-exporter container`);
    continue;
  }
  const sc = c.securityContext ?? {};
  const need = (ok, what) => ok || problems.push(`${where}: ${what}`);
  need(sc.readOnlyRootFilesystem === true, "readOnlyRootFilesystem is not true");
  need(sc.runAsNonRoot === true, "runAsNonRoot is not true");
  need(sc.allowPrivilegeEscalation === false, "allowPrivilegeEscalation is not false");
  need((sc.capabilities?.drop ?? []).includes("ALL"), "capabilities are not all dropped");
  need(c.livenessProbe?.httpGet?.path === "/-/healthy", "liveness probe is not /-/healthy");
  need(c.readinessProbe?.httpGet?.path === "/-/ready", "readiness probe is not /-/ready");
  need(c.resources?.requests && c.resources?.limits, "resources lack requests or limits");
  need(c.ports?.some((p) => p.name === "metrics" && p.containerPort === 9799), "no metrics port 9799");
  need(
    c.env?.some((e) => e.name === "NODE_NAME" && e.valueFrom?.fieldRef?.fieldPath === "spec.nodeName"),
    "NODE_NAME does not come from spec.nodeName",
  );
  const volumes = (spec.volumes ?? []).filter((v) => v.configMap);
  need(volumes.length > 0, "mounts no ConfigMap");
  for (const v of volumes) {
    need(configMaps.has(v.configMap.name), `ConfigMap ${v.configMap.name} is not defined`);
  }
}
// The plain Prometheus config: Debian's promtool is built without Kubernetes
// service discovery and cannot parse it, so its shape is checked here.
{
  const text = readFileSync(join(dir, "prometheus-scrape-config.yaml"), "utf8");
  const cfg = parseAllDocuments(text)[0].toJS();
  const job = cfg?.scrape_configs?.find((j) => j.job_name === "reachability");
  const need = (ok, what) => ok || problems.push(`prometheus-scrape-config.yaml: ${what}`);
  need(job, "no scrape config with job_name reachability (ReachabilityExporterDown expects it)");
  if (job) {
    need(job.kubernetes_sd_configs?.[0]?.role === "pod", "not discovering pods");
    need(/^\d+s$/.test(job.scrape_timeout ?? ""), "no scrape_timeout");
    const keeps = (job.relabel_configs ?? []).filter((r) => r.action === "keep");
    need(
      keeps.some((r) => r.source_labels?.includes("__meta_kubernetes_pod_container_port_name") && r.regex === "metrics"),
      "does not keep only the port named metrics",
    );
    need(
      keeps.some((r) => r.source_labels?.includes("__meta_kubernetes_pod_label_reachability_exporter_scrape")),
      "does not keep only pods labelled reachability-exporter/scrape",
    );
    console.log("ok prometheus-scrape-config.yaml: job reachability");
  }
}
// The PrometheusRule and the plain rules file must not drift apart; and
// ReachabilityExporterDown matches the job prometheus-operator derives from
// the PodMonitor's name (<namespace>/<name>).
{
  for (const { file, obj } of objects.filter((o) => o.obj.kind === "PodMonitor")) {
    if (obj.metadata.name !== "reachability-exporter") {
      problems.push(`${file}: PodMonitor ${obj.metadata.name}: the job <namespace>/${obj.metadata.name} escapes ReachabilityExporterDown`);
    }
  }
  const rules = parseAllDocuments(readFileSync(join(dir, "../../alerts/reachability.rules.yml"), "utf8"))[0].toJS();
  const pr = objects.filter((o) => o.obj.kind === "PrometheusRule");
  if (pr.length !== 1) problems.push(`${pr.length} PrometheusRule objects, expected 1`);
  for (const { file, obj } of pr) {
    if (isDeepStrictEqual(obj.spec.groups, rules.groups)) {
      console.log(`ok ${file}: the groups of alerts/reachability.rules.yml`);
    } else {
      problems.push(`${file}: its groups differ from alerts/reachability.rules.yml (run deploy/kubernetes/prometheusrule.sh)`);
    }
  }
}
for (const cm of configMaps.values()) {
  if (cm.data?.["config.yaml"] && configOut) writeFileSync(configOut, cm.data["config.yaml"]);
}
for (const p of problems) console.log(`FAIL ${p}`);
process.exit(problems.length ? 1 : 0);
