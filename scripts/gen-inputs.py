#!/usr/bin/env python3
"""Writes the inputs of scripts/bench-memory.sh (stdlib only, deterministic: same arguments, same
bytes). Files that already exist are kept unless --force; each file is written under a temporary
name and renamed when complete, so an interrupted run never leaves a truncated input behind.

  alias.yaml           a "billion laughs": ~430 bytes, 9 levels of 9 aliases (9^9 scalars)
  drills-N.yaml        N minimal probe drills (names d-00001..., monthly crons)
  cluster-N.yaml       what `kubectl get pods,deployments,replicasets,namespaces,
                       poddisruptionbudgets -A -o yaml` prints for N pods: 100 namespaces,
                       N/10 Deployments with one ReplicaSet each, 10 pods per ReplicaSet, a few
                       PodDisruptionBudgets; a pod is ~4.2 KB, the file ~4.9 KB per pod with
                       the Deployments and ReplicaSets (100,000 pods: ~490 MB). Items come in
                       kubectl's order (kind by kind as asked, then namespace and name) with
                       `kind: List` after them, and are written as they are generated.

Five namespaces are those deploy/examples/firedrill.yaml names (pake-api, pake-ai, database,
monitoring, kube-system), with workloads its targets, protected globs and never_target match.

Usage:
    gen-inputs.py [--out DIR] [--pods N] [--drills N] [--only alias,drills,cluster] [--force]
"""
import argparse
import calendar
import os
import random
import sys
import time

BOMB_LEVELS = "abcdefghi"

# Like runner/benches/config_and_plan.rs: the example's blackouts and a small safety section.
DRILLS_HEADER = """\
# {n:,} probe drills for scripts/bench-memory.sh, written by scripts/gen-inputs.py.
timezone: Europe/Berlin
concurrency: 4
blackouts:
  - {{ name: year-end, from: 2026-12-20, to: 2027-01-04 }}
  - {{ name: weekends, weekdays: [Sat, Sun] }}
  - {{ name: nightly, times: "22:00-06:00" }}
safety:
  protected: [kube-system/*, monitoring/prometheus*]
  never_target: [role=primary]
  min_healthy:
    - {{ namespace: pake-api, selector: app=pake-api, min: 2 }}
  limits: {{ partition: 10m, cpu: 95% }}
drills:
"""

NAMESPACES = 100
PODS_PER_REPLICASET = 10

# The namespaces deploy/examples/firedrill.yaml names, each with its first deployments as
# (name, labels besides app=name): what the drills' targets select (app=pake-api,
# app=pake-ai-worker, app=postgresql,role=replica), what safety.protected covers
# (kube-system/*, monitoring/prometheus*, monitoring/grafana*, database/pake-postgresql-primary*)
# and what safety.never_target refuses (role=primary). Their other deployments are `svc-NN`.
NAMED = {
    "kube-system": [
        ("coredns", {"k8s-app": "kube-dns"}),
        ("metrics-server", {}),
        ("cluster-autoscaler", {}),
        ("ebs-csi-controller", {}),
    ],
    "monitoring": [
        ("prometheus-server", {"app": "prometheus"}),
        ("grafana", {"app": "grafana"}),
        ("alertmanager", {"app": "alertmanager"}),
        ("prometheus-pushgateway", {"app": "prometheus-pushgateway"}),
        ("kube-state-metrics", {}),
    ],
    "database": [
        ("pake-postgresql-primary", {"app": "postgresql", "role": "primary"}),
        ("pake-postgresql-replica-a", {"app": "postgresql", "role": "replica"}),
        ("pake-postgresql-replica-b", {"app": "postgresql", "role": "replica"}),
        ("pgbouncer", {}),
    ],
    "pake-api": [
        ("pake-api", {"app": "pake-api", "track": "stable"}),
        ("pake-api-canary", {"app": "pake-api", "track": "canary"}),
        ("pake-api-admin", {}),
    ],
    "pake-ai": [
        ("pake-ai-worker", {"app": "pake-ai-worker", "pool": "cpu"}),
        ("pake-ai-worker-gpu", {"app": "pake-ai-worker", "pool": "gpu"}),
        ("pake-ai-gateway", {}),
    ],
}
NAMED_ORDER = ["kube-system", "monitoring", "database", "pake-api", "pake-ai"]

# (namespace, name, minAvailable or None, maxUnavailable or None, matchLabels)
PDBS = [
    ("pake-api", "pake-api", '"50%"', None, {"app": "pake-api"}),
    ("pake-ai", "pake-ai-worker", None, "1", {"app": "pake-ai-worker"}),
    ("database", "postgresql", "2", None, {"app": "postgresql"}),
    ("kube-system", "coredns", None, "1", {"k8s-app": "kube-dns"}),
    ("monitoring", "prometheus-server", "1", None, {"app": "prometheus"}),
]

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated name suffixes
EPOCH = calendar.timegm((2026, 9, 20, 0, 0, 0))  # workloads are created after this, pods by ~2027-01
# The benchmark plans the example drills --at 2027-01-15T10:00:00Z, in its nightly blackout, so
# the fires start at 06:00 New York = 11:00Z; a pod created at 10:55Z is younger than min_pod_age.
YOUNG = calendar.timegm((2027, 1, 15, 10, 55, 0))


def stamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Ids:
    """Deterministic uids, hashes and suffixes."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def uid(self):
        h = "%032x" % self.rng.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def hex64(self):
        return "%064x" % self.rng.getrandbits(256)

    def suffix(self, n):
        return "".join(self.rng.choices(ALPHABET, k=n))

    def suffixes(self, k, n):
        """n different suffixes of k characters, in the order drawn."""
        seen = {}
        while len(seen) < n:
            seen.setdefault(self.suffix(k), None)
        return list(seen)

    def below(self, n):
        return self.rng.randrange(n)


def write_atomically(path, force, write):
    """Calls write(file) into path.partial and renames it to path; skips an existing path."""
    if os.path.exists(path) and not force:
        print(f"reusing {path} ({os.path.getsize(path):,} bytes)", file=sys.stderr)
        return
    start = time.monotonic()
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8", buffering=1 << 20) as f:
        write(f)
    os.replace(partial, path)
    print(
        f"wrote {path} ({os.path.getsize(path):,} bytes) in {time.monotonic() - start:.1f}s",
        file=sys.stderr,
    )


def write_alias(f):
    f.write('# A "billion laughs": 9 levels of 9 aliases expand to 9^9 = 387,420,489 scalars.\n')
    f.write("a: &a [" + ",".join(['"lol"'] * 9) + "]\n")
    for prev, level in zip(BOMB_LEVELS, BOMB_LEVELS[1:]):
        f.write(f"{level}: &{level} [" + ",".join([f"*{prev}"] * 9) + "]\n")


def write_drills(f, n):
    width = max(5, len(str(n)))
    f.write(DRILLS_HEADER.format(n=n))
    chunk = []
    for i in range(1, n + 1):
        # 16,800 different monthly slots, in business hours: drills rarely share an instant.
        minute, hour, day = i * 7 % 60, 8 + i // 60 % 10, 1 + i // 600 % 28
        chunk.append(
            f'  - name: d-{i:0{width}d}\n    kind: probe\n    schedule: "{minute} {hour} {day} * *"\n    duration: 5m\n'
        )
        if len(chunk) == 10_000:
            f.write("".join(chunk))
            chunk.clear()
    f.write("".join(chunk))


# ---- the cluster snapshot, in kubectl's layout: keys sorted, list items not indented ----------


def indent(text, by):
    pad = " " * by
    return "".join(pad + line + "\n" if line else "\n" for line in text.splitlines())


def label_lines(labels, by):
    pad = " " * by
    return "".join(f"{pad}{k}: {v}\n" for k, v in sorted(labels.items()))


def container_block(w):
    """The containers of a workload's pod template at column 0 (kubectl's layout). A pod adds
    the service-account token's mount (SA_MOUNT) after these lines: volumeMounts comes last."""
    return f"""\
- env:
  - name: LOG_LEVEL
    value: info
  - name: PORT
    value: "{w["port"]}"
  - name: DB_HOST
    value: pgbouncer.database
  - name: OTEL_EXPORTER_OTLP_ENDPOINT
    value: http://otel-collector.monitoring:4317
  - name: POD_NAME
    valueFrom:
      fieldRef:
        apiVersion: v1
        fieldPath: metadata.name
  image: {w["image"]}
  imagePullPolicy: IfNotPresent
  livenessProbe:
    failureThreshold: 3
    httpGet:
      path: /healthz
      port: http
      scheme: HTTP
    initialDelaySeconds: 15
    periodSeconds: 10
    successThreshold: 1
    timeoutSeconds: 2
  name: {w["container"]}
  ports:
  - containerPort: {w["port"]}
    name: http
    protocol: TCP
  readinessProbe:
    failureThreshold: 3
    httpGet:
      path: /ready
      port: http
      scheme: HTTP
    initialDelaySeconds: 5
    periodSeconds: 5
    successThreshold: 1
    timeoutSeconds: 2
  resources:
    limits:
      cpu: "2"
      memory: 1Gi
    requests:
      cpu: 250m
      memory: 512Mi
  terminationMessagePath: /dev/termination-log
  terminationMessagePolicy: File
  volumeMounts:
  - mountPath: /etc/{w["name"]}
    name: config
    readOnly: true
"""


SA_MOUNT = """\
  - mountPath: /var/run/secrets/kubernetes.io/serviceaccount
    name: kube-api-access-@SA@
    readOnly: true
"""

TEMPLATE_VOLUMES = """\
- configMap:
    defaultMode: 420
    name: {name}-config
  name: config
"""

SA_VOLUME = """\
- name: kube-api-access-@SA@
  projected:
    defaultMode: 420
    sources:
    - serviceAccountToken:
        expirationSeconds: 3607
        path: token
    - configMap:
        items:
        - key: ca.crt
          path: ca.crt
        name: kube-root-ca.crt
    - downwardAPI:
        items:
        - fieldRef:
            apiVersion: v1
            fieldPath: metadata.namespace
          path: namespace
"""


def workloads(pods, ids):
    """Namespaces (sorted, as the API server lists them) and their deployments, each with what
    its ReplicaSet and pods need. Deployment d lives in namespace d % 100, so even a small
    snapshot fills the five named namespaces first."""
    deployments = max(1, pods // PODS_PER_REPLICASET)
    names = NAMED_ORDER + [f"ns-{i:03d}" for i in range(len(NAMED_ORDER), NAMESPACES)]
    per_ns = {name: [] for name in names}
    for d in range(deployments):
        ns = names[d % NAMESPACES]
        j = d // NAMESPACES
        named = NAMED.get(ns, [])
        if j < len(named):
            name, extra = named[j]
        else:
            name, extra = f"svc-{j:02d}", {}
        labels = {"app": name, **extra}
        count = pods // deployments + (1 if d < pods % deployments else 0)
        created = EPOCH + ids.below(30 * 86400)
        w = {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "replicas": count,
            "uid": ids.uid(),
            "rs_uid": ids.uid(),
            "hash": ids.suffix(10),
            "created": created,
            "rs_created": created + ids.below(60 * 86400),
            "port": 8080 + d % 3,
            "container": name if len(name) <= 20 else "app",
            "image": f"registry.example.com/{ns}/{name}:1.{d % 40}.{d % 7}",
            "digest": ids.hex64(),
            "revision": 1 + d % 9,
        }
        w["containers"] = container_block(w)
        w["pod_parts"] = pod_parts(w)
        w["pod_labels"] = label_lines(dict(labels, **{"pod-template-hash": w["hash"]}), 6)
        per_ns[ns].append(w)
    for ns in per_ns.values():
        ns.sort(key=lambda w: w["name"])
    return sorted(per_ns.items())


def pod_parts(w):
    """What every pod of a workload shares, rendered once: (containers, volumes), with @SA@
    where each pod's service-account volume name goes."""
    containers = indent(w["containers"], 4) + indent(SA_MOUNT, 4)
    volumes = indent(TEMPLATE_VOLUMES.format(name=w["name"]), 4) + indent(SA_VOLUME, 4)
    return containers, volumes


def pod_text(w, name, ids, p, index):
    """One Pod as kubectl prints it (~4.2 KB)."""
    sa = ids.suffix(5)
    created = w["rs_created"] + ids.below(20 * 86400)
    # A few pods in the named namespaces are brand new (younger than the example's min_pod_age
    # at the benchmark's instant), and a few pods everywhere are not ready, so the guard has
    # something to leave alone besides protected and never_target.
    if p == 1 and w["namespace"] in NAMED:
        created = YOUNG
    started = created + 2 + ids.below(6)
    ready_at = started + 8 + ids.below(20)
    ready = index % 97 != 13
    node = 1 + index // 110 % 900
    host_ip = f"10.0.{node // 250}.{node % 250 + 2}"
    pod_ip = f"10.{64 + index // 65024}.{index // 254 % 256}.{index % 254 + 1}"
    r = '"True"' if ready else '"False"'
    not_ready = "" if ready else (
        f"      message: 'containers with unready status: [{w['container']}]'\n"
        "      reason: ContainersNotReady\n"
    )
    containers, volumes = w["pod_parts"]
    return f"""\
- apiVersion: v1
  kind: Pod
  metadata:
    annotations:
      prometheus.io/port: "9090"
      prometheus.io/scrape: "true"
    creationTimestamp: "{stamp(created)}"
    generateName: {w["name"]}-{w["hash"]}-
    labels:
{w["pod_labels"]}    name: {name}
    namespace: {w["namespace"]}
    ownerReferences:
    - apiVersion: apps/v1
      blockOwnerDeletion: true
      controller: true
      kind: ReplicaSet
      name: {w["name"]}-{w["hash"]}
      uid: {w["rs_uid"]}
    resourceVersion: "{300_000_000 + index * 7}"
    uid: {ids.uid()}
  spec:
    containers:
{containers.replace("@SA@", sa)}    dnsPolicy: ClusterFirst
    enableServiceLinks: true
    nodeName: ip-{host_ip.replace(".", "-")}.ec2.internal
    preemptionPolicy: PreemptLowerPriority
    priority: 0
    restartPolicy: Always
    schedulerName: default-scheduler
    securityContext:
      fsGroup: 10001
    serviceAccount: {w["name"]}
    serviceAccountName: {w["name"]}
    terminationGracePeriodSeconds: 30
    volumes:
{volumes.replace("@SA@", sa)}  status:
    conditions:
    - lastProbeTime: null
      lastTransitionTime: "{stamp(created + 1)}"
      status: "True"
      type: Initialized
    - lastProbeTime: null
      lastTransitionTime: "{stamp(ready_at)}"
{not_ready}      status: {r}
      type: Ready
    - lastProbeTime: null
      lastTransitionTime: "{stamp(ready_at)}"
{not_ready}      status: {r}
      type: ContainersReady
    - lastProbeTime: null
      lastTransitionTime: "{stamp(created)}"
      status: "True"
      type: PodScheduled
    containerStatuses:
    - containerID: containerd://{ids.hex64()}
      image: {w["image"]}
      imageID: {w["image"].rsplit(":", 1)[0]}@sha256:{w["digest"]}
      lastState: {{}}
      name: {w["container"]}
      ready: {"true" if ready else "false"}
      restartCount: {0 if ready else 1 + index % 5}
      started: true
      state:
        running:
          startedAt: "{stamp(started)}"
    hostIP: {host_ip}
    hostIPs:
    - ip: {host_ip}
    phase: Running
    podIP: {pod_ip}
    podIPs:
    - ip: {pod_ip}
    qosClass: Burstable
    startTime: "{stamp(created)}"
"""


def template_text(w, by):
    """A pod template (Deployment and ReplicaSet spec.template) indented by `by`."""
    text = f"""\
metadata:
  annotations:
    prometheus.io/port: "9090"
    prometheus.io/scrape: "true"
  creationTimestamp: null
  labels:
{label_lines(w["labels"], 4)}spec:
  containers:
{indent(w["containers"], 2)}  dnsPolicy: ClusterFirst
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext:
    fsGroup: 10001
  serviceAccount: {w["name"]}
  serviceAccountName: {w["name"]}
  terminationGracePeriodSeconds: 30
  volumes:
{indent(TEMPLATE_VOLUMES.format(name=w["name"]), 2)}"""
    return indent(text, by)


def deployment_text(w, ids):
    n = w["replicas"]
    return f"""\
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    annotations:
      deployment.kubernetes.io/revision: "{w["revision"]}"
      meta.helm.sh/release-name: {w["name"]}
      meta.helm.sh/release-namespace: {w["namespace"]}
    creationTimestamp: "{stamp(w["created"])}"
    generation: {w["revision"]}
    labels:
{label_lines(dict(w["labels"], **{"app.kubernetes.io/managed-by": "Helm"}), 6)}    name: {w["name"]}
    namespace: {w["namespace"]}
    resourceVersion: "{200_000_000 + ids.below(90_000_000)}"
    uid: {w["uid"]}
  spec:
    progressDeadlineSeconds: 600
    replicas: {n}
    revisionHistoryLimit: 10
    selector:
      matchLabels:
{label_lines(w["labels"], 8)}    strategy:
      rollingUpdate:
        maxSurge: 25%
        maxUnavailable: 25%
      type: RollingUpdate
    template:
{template_text(w, 6)}  status:
    availableReplicas: {n}
    conditions:
    - lastTransitionTime: "{stamp(w["created"] + 40)}"
      lastUpdateTime: "{stamp(w["created"] + 40)}"
      message: Deployment has minimum availability.
      reason: MinimumReplicasAvailable
      status: "True"
      type: Available
    - lastTransitionTime: "{stamp(w["created"])}"
      lastUpdateTime: "{stamp(w["rs_created"] + 50)}"
      message: ReplicaSet "{w["name"]}-{w["hash"]}" has successfully progressed.
      reason: NewReplicaSetAvailable
      status: "True"
      type: Progressing
    observedGeneration: {w["revision"]}
    readyReplicas: {n}
    replicas: {n}
    updatedReplicas: {n}
"""


def replicaset_text(w, ids):
    n = w["replicas"]
    selector = dict(w["labels"], **{"pod-template-hash": w["hash"]})
    template = dict(w, labels=selector)
    return f"""\
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata:
    annotations:
      deployment.kubernetes.io/desired-replicas: "{n}"
      deployment.kubernetes.io/max-replicas: "{n + (n + 3) // 4}"
      deployment.kubernetes.io/revision: "{w["revision"]}"
      meta.helm.sh/release-name: {w["name"]}
      meta.helm.sh/release-namespace: {w["namespace"]}
    creationTimestamp: "{stamp(w["rs_created"])}"
    generation: 1
    labels:
{label_lines(selector, 6)}    name: {w["name"]}-{w["hash"]}
    namespace: {w["namespace"]}
    ownerReferences:
    - apiVersion: apps/v1
      blockOwnerDeletion: true
      controller: true
      kind: Deployment
      name: {w["name"]}
      uid: {w["uid"]}
    resourceVersion: "{200_000_000 + ids.below(90_000_000)}"
    uid: {w["rs_uid"]}
  spec:
    replicas: {n}
    selector:
      matchLabels:
{label_lines(selector, 8)}    template:
{template_text(template, 6)}  status:
    availableReplicas: {n}
    fullyLabeledReplicas: {n}
    observedGeneration: 1
    readyReplicas: {n}
    replicas: {n}
"""


def namespace_text(name, ids):
    labels = {"kubernetes.io/metadata.name": name}
    annotations = ""
    if name in NAMED and name != "kube-system":
        labels["team"] = name.split("-")[-1]
        annotations = '    annotations:\n      firedrill.io/enabled: "true"\n'
    return f"""\
- apiVersion: v1
  kind: Namespace
  metadata:
{annotations}    creationTimestamp: "{stamp(EPOCH - 86400 * (30 + ids.below(300)))}"
    labels:
{label_lines(labels, 6)}    name: {name}
    resourceVersion: "{100_000 + ids.below(900_000)}"
    uid: {ids.uid()}
  spec:
    finalizers:
    - kubernetes
  status:
    phase: Active
"""


def pdb_text(ns, name, min_available, max_unavailable, match, expected, ids):
    if min_available is not None:
        m = min_available.strip('"')
        desired = -(-expected * int(m[:-1]) // 100) if m.endswith("%") else int(m)
    else:
        desired = max(0, expected - int(max_unavailable))
    allowed = max(0, expected - desired)
    spec = ""
    if max_unavailable is not None:
        spec += f"    maxUnavailable: {max_unavailable}\n"
    if min_available is not None:
        spec += f"    minAvailable: {min_available}\n"
    return f"""\
- apiVersion: policy/v1
  kind: PodDisruptionBudget
  metadata:
    creationTimestamp: "{stamp(EPOCH + ids.below(30 * 86400))}"
    generation: 1
    name: {name}
    namespace: {ns}
    resourceVersion: "{200_000_000 + ids.below(90_000_000)}"
    uid: {ids.uid()}
  spec:
{spec}    selector:
      matchLabels:
{label_lines(match, 8)}  status:
    conditions:
    - lastTransitionTime: "{stamp(EPOCH + 40 * 86400)}"
      message: ""
      observedGeneration: 1
      reason: {"SufficientPods" if allowed else "InsufficientPods"}
      status: "{"True" if allowed else "False"}"
      type: DisruptionAllowed
    currentHealthy: {expected}
    desiredHealthy: {desired}
    disruptionsAllowed: {allowed}
    expectedPods: {expected}
    observedGeneration: 1
"""


def write_cluster(f, pods):
    ids = Ids(pods)
    namespaces = workloads(pods, ids)
    # kubectl prints the kinds in the order asked for, each sorted by namespace and name.
    f.write("apiVersion: v1\nitems:\n")
    index = 0
    for _, deployments in namespaces:
        # (name, workload, position in its ReplicaSet), sorted by name across the namespace.
        pods = sorted(
            (f"{w['name']}-{w['hash']}-{suffix}", w, p)
            for w in deployments
            for p, suffix in enumerate(ids.suffixes(5, w["replicas"]))
        )
        for start in range(0, len(pods), 1000):
            chunk = pods[start : start + 1000]
            f.write("".join(pod_text(w, name, ids, p, index + i) for i, (name, w, p) in enumerate(chunk)))
            index += len(chunk)
    for _, deployments in namespaces:
        f.write("".join(deployment_text(w, ids) for w in deployments))
    for _, deployments in namespaces:
        by_name = sorted(deployments, key=lambda w: f"{w['name']}-{w['hash']}")
        f.write("".join(replicaset_text(w, ids) for w in by_name))
    f.write("".join(namespace_text(name, ids) for name, _ in namespaces))
    names = {name for name, _ in namespaces}
    pdbs = [p for p in PDBS if p[0] in names]
    # And one budget in every tenth generic namespace, on its first service.
    for name, deployments in namespaces:
        if name.startswith("ns-") and int(name[3:]) % 10 == 0 and deployments:
            w = deployments[0]
            pdbs.append((name, w["name"], '"80%"', None, {"app": w["labels"]["app"]}))
    by_ns = dict(namespaces)

    def expected(ns, match):
        return sum(w["replicas"] for w in by_ns[ns] if match.items() <= w["labels"].items())

    f.write("".join(pdb_text(*p, expected(p[0], p[4]), ids) for p in sorted(pdbs)))
    f.write('kind: List\nmetadata:\n  resourceVersion: ""\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="target/bench-inputs", help="directory (created)")
    parser.add_argument("--pods", type=int, default=100_000, help="pods in the snapshot")
    parser.add_argument("--drills", type=int, default=30_000, help="drills in the drill file")
    parser.add_argument("--only", default="alias,drills,cluster", help="which files, comma-separated")
    parser.add_argument("--force", action="store_true", help="rewrite files that exist")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - {"alias", "drills", "cluster"} or args.pods < 1 or args.drills < 1:
        parser.error("--only takes alias, drills, cluster; --pods and --drills are at least 1")
    os.makedirs(args.out, exist_ok=True)
    if "alias" in only:
        write_atomically(os.path.join(args.out, "alias.yaml"), args.force, write_alias)
    if "drills" in only:
        path = os.path.join(args.out, f"drills-{args.drills}.yaml")
        write_atomically(path, args.force, lambda f: write_drills(f, args.drills))
    if "cluster" in only:
        path = os.path.join(args.out, f"cluster-{args.pods}.yaml")
        write_atomically(path, args.force, lambda f: write_cluster(f, args.pods))


if __name__ == "__main__":
    main()
