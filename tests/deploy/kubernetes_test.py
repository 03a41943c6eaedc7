#!/usr/bin/env python3
"""deploy/kubernetes: render every overlay with `kubectl kustomize` (no
cluster needed) and check the rendered objects: the workload kind and
hostNetwork, ports against the config's listeners, probe paths and ports,
resources, the preStop drain and the grace period against
fleet.drain_timeout, the scrape annotations, Service selectors, the
ServiceMonitor, the Secret (placeholders only, no usable credential), and
that the ConfigMap's config, rendered by the pod's own init script with test
secrets, passes `anyturn check-config`.

Environment: ANYTURN_BINARY (the daemon), ANYTURN_SOURCE_DIR (the repository),
KUBECTL (default: kubectl on PATH). Exit code 77 (ctest: skipped) when
kubectl is missing.
"""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

SOURCE_DIR = os.environ.get("ANYTURN_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))
KUSTOMIZE_DIR = os.path.join(SOURCE_DIR, "deploy", "kubernetes")
BINARY = os.environ.get("ANYTURN_BINARY", "anyturn")
KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")

# overlay -> (workload kind, hostNetwork)
OVERLAYS = {
    "daemonset": ("DaemonSet", True),
    "statefulset": ("StatefulSet", False),
    "servicemonitor": ("DaemonSet", True),
    "xdp": ("DaemonSet", True),
}

TEST_SECRETS = {
    "ANYTURN_REST_SECRET": "0f1e2d3c4b5a69788796a5b4c3d2e1f0test-rest",
    "ANYTURN_ADMIN_KEY": "a1b2c3d4e5f60718293a4b5c6d7e8f90test-admin",
    "ANYTURN_API_KEY": "9f8e7d6c5b4a39281706f5e4d3c2b1a0test-api",
}


def render(overlay):
    out = subprocess.run([KUBECTL, "kustomize", os.path.join(KUSTOMIZE_DIR, "overlays", overlay)],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def port_of(endpoint):
    """'0.0.0.0:9641' / '[::]:3478' / '$(POD_IP):9641' -> 9641"""
    return int(endpoint.rsplit(":", 1)[1])


def host_of(endpoint):
    return endpoint.rsplit(":", 1)[0].strip("[]")


def arg_value(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def run_init_script(script, template_text, env_values, workdir):
    """Runs the pod's render-config.sh (from the ConfigMap) as the init
    container would, with the template and output in `workdir`."""
    script_path = os.path.join(workdir, "render-config.sh")
    template = os.path.join(workdir, "anyturn.yaml.template")
    rendered = os.path.join(workdir, "anyturn.yaml")
    with open(script_path, "w") as f:
        f.write(script)
    with open(template, "w") as f:
        f.write(template_text)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ANYTURN_TEMPLATE": template,
           "ANYTURN_RENDERED": rendered, "ANYTURN_BINARY": BINARY}
    env.update(env_values)
    proc = subprocess.run(["/bin/sh", script_path], capture_output=True, text=True, env=env,
                          timeout=30)
    return proc, rendered


class Overlay:
    """The rendered objects of one overlay and the parts every check needs."""

    def __init__(self, name):
        self.name = name
        self.objs = render(name)
        self.kind, self.host_network = OVERLAYS[name]
        self.workload = one(self.objs, self.kind, "anyturn")
        self.pod = self.workload["spec"]["template"]
        self.spec = self.pod["spec"]
        self.container = next(c for c in self.spec["containers"] if c["name"] == "anyturn")
        self.init = next(c for c in self.spec.get("initContainers", []) if c["name"] == "render-config")
        volume = next(v for v in self.spec["volumes"] if v["name"] == "template")
        self.configmap = one(self.objs, "ConfigMap", volume["configMap"]["name"])
        self.template = self.configmap["data"]["anyturn.yaml"]
        self.script = self.configmap["data"]["render-config.sh"]
        # The config as the daemon sees it (placeholders are quoted strings).
        self.config = yaml.safe_load(self.template)
        secret_names = {e["valueFrom"]["secretKeyRef"]["name"] for e in self.init["env"]
                        if "secretKeyRef" in e.get("valueFrom", {})}
        assert len(secret_names) == 1, secret_names
        self.secret = one(self.objs, "Secret", secret_names.pop())
        self.args = self.container.get("args", [])

    def container_port(self, ref):
        if isinstance(ref, int):
            return ref
        return next(p["containerPort"] for p in self.container["ports"] if p["name"] == ref)

    def http_listen(self):
        return arg_value(self.args, "--http-listen") or self.config["http"]["listen"]

    def drain_timeout(self):
        flag = arg_value(self.args, "--drain-timeout")
        return int(flag) if flag else int(self.config.get("fleet", {}).get("drain_timeout", 3600))


class KubernetesOverlays(unittest.TestCase):
    overlays = {}

    @classmethod
    def setUpClass(cls):
        cls.overlays = {name: Overlay(name) for name in OVERLAYS}

    def test_workload_kind_and_host_network(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                self.assertEqual(bool(o.spec.get("hostNetwork", False)), o.host_network)
                other = "StatefulSet" if o.kind == "DaemonSet" else "DaemonSet"
                self.assertFalse([x for x in o.objs if x["kind"] == other], f"a stray {other}")
                # JSON lines for the cluster's log pipeline (docs/logging.md).
                self.assertEqual(o.config.get("log", {}).get("format"), "json")
                if o.host_network:
                    # Cluster DNS still works for a pod on the node's network.
                    self.assertEqual(o.spec.get("dnsPolicy"), "ClusterFirstWithHostNet")

    def test_image_is_the_dockerfiles(self):
        # docker/Dockerfile: "docker build -f docker/Dockerfile -t anyturn ."
        with open(os.path.join(SOURCE_DIR, "docker", "Dockerfile")) as f:
            m = re.search(r"docker build .*-t\s+([\w./-]+)", f.read())
        expected = m.group(1).split(":")[0] if m else "anyturn"
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                for c in [o.container, o.init]:
                    repo = c["image"].rsplit(":", 1)[0]
                    self.assertEqual(repo.rsplit("/", 1)[-1], expected, c["name"])

    def test_ports_match_the_listeners(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                ports = {(p["containerPort"], p.get("protocol", "TCP")) for p in o.container["ports"]}
                for listen in o.config["listen"]:
                    self.assertIn((port_of(listen), "UDP"), ports)
                    self.assertIn((port_of(listen), "TCP"), ports)
                for listen in o.config["tls"]["listen"]:
                    self.assertIn((port_of(listen), "TCP"), ports)
                self.assertIn((port_of(o.http_listen()), "TCP"), ports)
                self.assertEqual(o.container_port("http"), port_of(o.http_listen()))

    def test_side_server_is_reachable_by_the_kubelet(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                host = host_of(o.http_listen())
                self.assertNotIn(host, ("127.0.0.1", "::1", "localhost"))
                if o.host_network:
                    # On the node's network: the pod IP only, not every interface.
                    self.assertEqual(host, "$(POD_IP)")
                    env = {e["name"]: e for e in o.container["env"]}
                    self.assertEqual(env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP")
                self.assertTrue(o.config["http"].get("enabled", True))

    def test_probes(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                http_port = port_of(o.http_listen())
                ready = o.container["readinessProbe"]["httpGet"]
                live = o.container["livenessProbe"]["httpGet"]
                self.assertEqual(ready["path"], "/readyz")
                self.assertEqual(live["path"], "/healthz")
                self.assertEqual(o.container_port(ready["port"]), http_port)
                self.assertEqual(o.container_port(live["port"]), http_port)
                # The kubelet probes the pod IP (no host override to loopback).
                self.assertNotIn("host", ready)
                self.assertNotIn("host", live)

    def test_resources(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                for c in [o.container, o.init]:
                    res = c.get("resources", {})
                    self.assertIn("cpu", res.get("requests", {}), c["name"])
                    self.assertIn("memory", res.get("requests", {}), c["name"])
                    self.assertIn("memory", res.get("limits", {}), c["name"])

    def test_prestop_drains_and_grace_period_matches_drain_timeout(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                cmd = " ".join(o.container["lifecycle"]["preStop"]["exec"]["command"])
                # SIGUSR1 to the daemon (PID 1, the image's entrypoint) starts the
                # drain; the hook waits until the daemon exits.
                self.assertIn("kill -USR1 1", cmd)
                self.assertRegex(cmd, r"while kill -0 1")
                self.assertEqual(o.container["command"], ["anyturn"])
                self.assertFalse(o.spec.get("shareProcessNamespace", False))
                grace = o.spec["terminationGracePeriodSeconds"]
                drain = o.drain_timeout()
                self.assertGreater(grace, drain)
                self.assertLessEqual(grace, drain + 120)

    def test_scrape_annotations(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                ann = o.pod["metadata"]["annotations"]
                self.assertEqual(ann["prometheus.io/scrape"], "true")
                self.assertEqual(int(ann["prometheus.io/port"]), port_of(o.http_listen()))
                self.assertEqual(ann["prometheus.io/path"], "/metrics")

    def test_services_select_the_pods(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                labels = o.pod["metadata"]["labels"]
                selector = o.workload["spec"]["selector"]["matchLabels"]
                self.assertTrue(selector.items() <= labels.items())
                names = {p["name"] for p in o.container["ports"]}
                for svc in [x for x in o.objs if x["kind"] == "Service"]:
                    sel = svc["spec"].get("selector", {})
                    self.assertTrue(sel, svc["metadata"]["name"])
                    self.assertTrue(sel.items() <= labels.items(), svc["metadata"]["name"])
                    for p in svc["spec"]["ports"]:
                        self.assertIn(p["targetPort"], names)
                for x in o.objs:
                    if x["kind"] != "Namespace":
                        self.assertEqual(x["metadata"].get("namespace"), "anyturn", x["kind"])

    def test_statefulset_is_behind_load_balancers(self):
        o = self.overlays["statefulset"]
        lbs = [s for s in o.objs if s["kind"] == "Service" and s["spec"].get("type") == "LoadBalancer"]
        protocols = {p["protocol"] for s in lbs for p in s["spec"]["ports"]}
        self.assertEqual(protocols, {"UDP", "TCP"})
        for s in lbs:
            # The client's own address must reach anyturn.
            self.assertEqual(s["spec"]["externalTrafficPolicy"], "Local")
        self.assertEqual(one(o.objs, "Service", o.workload["spec"]["serviceName"])["spec"]["clusterIP"],
                         "None")
        self.assertEqual(arg_value(o.args, "--relay-ip"), "$(POD_IP)")
        # Peers are pods: a private range must be allowed explicitly.
        self.assertTrue(o.config["peers"]["allow"])

    def test_servicemonitor(self):
        o = self.overlays["servicemonitor"]
        sm = one(o.objs, "ServiceMonitor", "anyturn")
        sel = sm["spec"]["selector"]["matchLabels"]
        services = [s for s in o.objs if s["kind"] == "Service"
                    and sel.items() <= s["metadata"].get("labels", {}).items()]
        self.assertEqual(len(services), 1)
        svc_ports = {p["name"]: p for p in services[0]["spec"]["ports"]}
        for ep in sm["spec"]["endpoints"]:
            self.assertEqual(ep["path"], "/metrics")
            self.assertEqual(o.container_port(svc_ports[ep["port"]]["targetPort"]),
                             port_of(o.http_listen()))
        for name in ("daemonset", "statefulset"):
            self.assertFalse([x for x in self.overlays[name].objs if x["kind"] == "ServiceMonitor"])

    def test_config_reader_is_its_writer(self):
        # render-config writes the config 0600; the anyturn container must
        # run as the same user to read it (root included: all capabilities
        # but the added ones are dropped, so no CAP_DAC_OVERRIDE).
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                def user(c):
                    return c.get("securityContext", {}).get(
                        "runAsUser", o.spec.get("securityContext", {}).get("runAsUser"))
                self.assertEqual(user(o.init), user(o.container))
                for c in [o.init, o.container]:
                    self.assertEqual(c["securityContext"]["capabilities"]["drop"], ["ALL"], c["name"])

    def test_xdp(self):
        o = self.overlays["xdp"]
        self.assertEqual(arg_value(o.args, "--xdp-mode"), "auto")
        self.assertTrue(arg_value(o.args, "--xdp"))
        caps = o.container["securityContext"]["capabilities"]
        self.assertEqual(sorted(caps["add"]), ["BPF", "NET_ADMIN", "PERFMON"])
        self.assertFalse(o.container["securityContext"].get("privileged", False))
        self.assertFalse(o.container["securityContext"]["allowPrivilegeEscalation"])
        # Added capabilities reach root containers only.
        self.assertEqual(o.container["securityContext"]["runAsUser"], 0)
        fwd = next(c for c in o.spec["initContainers"] if c["name"] == "lo-forwarding")
        script = " ".join(fwd["command"])
        self.assertIn("/proc/sys/net/ipv4/conf/lo/forwarding", script)
        self.assertIn("/proc/sys/net/ipv6/conf/lo/forwarding", script)
        self.assertNotIn("conf/all/", script)
        self.assertTrue(fwd["securityContext"]["privileged"])
        self.assertIn("memory", fwd["resources"]["limits"])
        # The daemon accepts the overlay's flags on the rendered config.
        with tempfile.TemporaryDirectory() as tmp:
            proc, rendered = run_init_script(o.script, o.template, TEST_SECRETS, tmp)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            flags = [a for a in o.args if "$(" not in a and a not in ("--relay-ip", "--http-listen",
                                                                      "--node-id", "--config",
                                                                      "/run/anyturn/anyturn.yaml")]
            check = subprocess.run([BINARY, "check-config", rendered] + flags,
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        # The other overlays add no capability.
        for name in ("daemonset", "statefulset", "servicemonitor"):
            self.assertNotIn("add", self.overlays[name].container["securityContext"]["capabilities"])

    def test_secret_holds_placeholders_only(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                data = {k: base64.b64decode(v).decode() for k, v in o.secret.get("data", {}).items()}
                data.update(o.secret.get("stringData", {}))
                placeholders = set(re.findall(r"\$\{(ANYTURN_[A-Z0-9_]+)\}", o.template))
                self.assertEqual(placeholders, set(TEST_SECRETS))
                from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in o.init["env"]
                               if "secretKeyRef" in e.get("valueFrom", {})}
                self.assertEqual(set(from_secret), placeholders)
                for env_name, key in from_secret.items():
                    self.assertIn(key, data)
                    # Shorter than any key or secret the validator accepts.
                    self.assertLess(len(data[key]), 16, env_name)

    def test_config_passes_check_config_with_test_secrets(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                with tempfile.TemporaryDirectory() as tmp:
                    proc, rendered = run_init_script(o.script, o.template, TEST_SECRETS, tmp)
                    self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
                    self.assertIn("configuration OK", proc.stdout)
                    with open(rendered) as f:
                        text = f.read()
                    self.assertIsNone(re.search(r"\$\{ANYTURN_[A-Z0-9_]+\}", text))
                    cfg = yaml.safe_load(text)
                    self.assertEqual(cfg["auth"]["secrets"], [TEST_SECRETS["ANYTURN_REST_SECRET"]])
                    self.assertEqual(cfg["http"]["admin_keys"], [TEST_SECRETS["ANYTURN_ADMIN_KEY"]])
                    self.assertEqual(os.stat(rendered).st_mode & 0o077, 0)

    def test_placeholders_or_a_missing_key_stop_the_pod(self):
        for o in self.overlays.values():
            with self.subTest(overlay=o.name):
                data = {k: base64.b64decode(v).decode() for k, v in o.secret.get("data", {}).items()}
                with tempfile.TemporaryDirectory() as tmp:
                    # The Secret as committed: check-config refuses it.
                    proc, _ = run_init_script(o.script, o.template, data, tmp)
                    self.assertNotEqual(proc.returncode, 0, proc.stdout)
                    self.assertIn("auth.secrets", proc.stdout + proc.stderr)
                with tempfile.TemporaryDirectory() as tmp:
                    partial = dict(TEST_SECRETS)
                    del partial["ANYTURN_ADMIN_KEY"]
                    proc, _ = run_init_script(o.script, o.template, partial, tmp)
                    self.assertNotEqual(proc.returncode, 0)
                    self.assertIn("ANYTURN_ADMIN_KEY is not set", proc.stderr)


if __name__ == "__main__":
    if not KUBECTL:
        print("SKIPPED: kubectl is not installed (Debian package kubectl)")
        sys.exit(77)
    unittest.main(verbosity=2)
