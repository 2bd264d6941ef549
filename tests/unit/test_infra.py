"""Offline checks of the deployment files (no Docker engine or cluster here: nothing is run):
Kubernetes manifests against the API schemas (kubernetes-validate, strict), the compose file and
the Dockerfile by their structure; plus the stack manager's state and the promotion lock's
choice, which need no server."""

from __future__ import annotations

import importlib.util
import json
import re
import stat

import pytest
import yaml

from ..conftest import ROOT

INFRA = ROOT / "infra"
K8S_VERSION = "1.33.0"
SECRET_KEYS = {
    line.split("=", 1)[0]
    for line in (INFRA / "compose.env.example").read_text().splitlines()
    if line and not line.startswith("#")
}


def _manifests() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted((INFRA / "k8s").rglob("*.yaml")):  # jobs/: started by hand
        docs += [
            (f"{path.name}:{d['kind']}/{d['metadata']['name']}", d)
            for d in yaml.safe_load_all(path.read_text())
            if d
        ]
    return docs


def _images(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["image"]] if isinstance(node.get("image"), str) else []
        return found + [i for v in node.values() for i in _images(v)]
    if isinstance(node, list):
        return [i for v in node for i in _images(v)]
    return []


def _pinned(image: str) -> bool:
    """name:tag with a version number in the tag (never latest), or our own ganops:cpu/cuda."""
    name, _, tag = image.rpartition(":")
    return bool(name) and (image in ("ganops:cpu", "ganops:cuda") or re.search(r"\d+\.\d+", tag))


@pytest.mark.parametrize("name,doc", _manifests(), ids=lambda x: x if isinstance(x, str) else "")
def test_k8s_manifest_validates_against_the_api_schema(name, doc):
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert doc["metadata"]["namespace"] == "ganops"
    for image in _images(doc):
        assert _pinned(image), f"{name}: image {image} is not pinned"


def test_k8s_secrets_are_references_to_keys_compose_also_uses():
    refs = re.findall(
        r"secretKeyRef: \{name: ganops-stack, key: (\w+)\}",
        "".join(p.read_text() for p in (INFRA / "k8s").rglob("*.yaml")),
    )
    assert refs and set(refs) <= SECRET_KEYS
    kinds = {doc["kind"] for _, doc in _manifests()}
    assert "Secret" not in kinds  # created by hand from infra/.env (infra/k8s/secrets.md)
    assert {"Deployment", "StatefulSet", "Service", "Role", "RoleBinding"} <= kinds


def test_gpu_job_template_renders_to_a_valid_job():
    import kubernetes_validate

    template = json.loads((INFRA / "k8s" / "base-job-template.json").read_text())
    values = {
        "name": "ganops-run", "namespace": "ganops", "image": "ganops:cuda", "gpus": 1,
        "cpu": "8", "memory": "32Gi", "image_pull_policy": "IfNotPresent",
        "service_account_name": "prefect-worker", "finished_job_ttl": 3600,
        "labels": {"app": "ganops"}, "env": [{"name": "MLFLOW_TRACKING_URI", "value": "x"}],
        "command": ["prefect", "flow-run", "execute"],
    }  # fmt: skip

    def render(node):
        if isinstance(node, dict):
            return {k: render(v) for k, v in node.items()}
        if isinstance(node, list):
            return [render(v) for v in node]
        m = re.fullmatch(r"\{\{ (\w+) \}\}", node) if isinstance(node, str) else None
        return values[m[1]] if m else node

    job = render(template["job_configuration"]["job_manifest"])
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1


def test_multinode_job_meets_at_pod_0_through_its_service():
    """infra/k8s/jobs/train-multinode.yaml: the rendezvous endpoint is pod 0's name under the
    headless Service, and N (pods, train.nodes) and M (GPUs, train.devices) agree everywhere."""
    from components.config import load_params

    text = (INFRA / "k8s" / "jobs" / "train-multinode.yaml").read_text()
    docs = {d["kind"]: d for d in yaml.safe_load_all(text)}
    job, service = docs["Job"], docs["Service"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:3] == ["ganops", "stage", "train"]
    sets = [a.removeprefix("--set=") for a in container["command"] if a.startswith("--set=")]
    train = load_params(ROOT / "params.yaml", sets).train  # the image's params.yaml, overridden
    host, port = train.rdzv_endpoint.rsplit(":", 1)
    assert host == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    assert pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"]
    assert (
        service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    )
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert int(port) in {p["containerPort"] for p in container["ports"]}
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == train.nodes > 1
    resources = container["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"]
    assert resources["limits"]["nvidia.com/gpu"] == train.devices
    (node_rank,) = [e for e in container["env"] if e["name"] == "GANOPS_NODE_RANK"]
    assert "job-completion-index" in node_rank["valueFrom"]["fieldRef"]["fieldPath"]
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {docs["PersistentVolumeClaim"]["metadata"]["name"]}
    assert docs["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]


def _compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def test_compose_services_are_pinned_loopback_and_wired():
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "s3", "mlflow", "prefect-server", "worker"} <= set(services)
    dockerfile = (INFRA / "Dockerfile").read_text()
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        if "image" in svc:
            assert _pinned(svc["image"]), f"{name}: {svc['image']}"
        if "build" in svc:
            assert re.search(rf"^FROM \S+ AS {svc['build']['target']}$", dockerfile, re.M)
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in compose.get("volumes", {}) or (INFRA / source).exists(), volume
        for config in svc.get("configs", []):
            assert config["source"] in compose["configs"]
    mlflow = " ".join(services["mlflow"]["command"])
    for flag in ("--app-name basic-auth", "--artifacts-destination s3://mlflow", "db upgrade"):
        assert flag in mlflow


def test_compose_takes_every_secret_from_the_env_file_without_defaults():
    text = (INFRA / "compose.yaml").read_text()
    used = re.findall(r"\$\{(\w+)([^}]*)\}", text)
    assert used
    for var, rest in used:
        assert var in SECRET_KEYS, f"${{{var}}} is not in infra/compose.env.example"
        assert rest.startswith(":?"), f"${{{var}{rest}}} has a default or no error"
    placeholders = [
        line.split("=", 1)[1]
        for line in (INFRA / "compose.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    assert all("change-me" in value for value in placeholders)


def test_dockerfile_has_cpu_and_cuda_images_from_the_lock():
    text = (INFRA / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert [s for _, s in stages] == ["cpu", "cuda"]
    for image, _ in stages:
        assert _pinned(image), image
    torch_pin = re.search(r'"torch==([\d.]+)', (ROOT / "pyproject.toml").read_text())[1]
    for part in text.split("\nFROM ")[1:]:
        assert f'"torch=={torch_pin}"' in part
        assert "requirements.lock" in part and ".[stack]" in part
        assert re.search(r"^USER (?!root)\w+", part, re.M)
    assert "download.pytorch.org/whl/cpu" in text and "download.pytorch.org/whl/cu" in text
    assert not re.search(r"(?i)^ENV .*(password|secret)", text, re.M)


# ---------------------------------------------------------------- the stack manager, offline


def _stack_module():
    spec = importlib.util.spec_from_file_location("ganops_stack", INFRA / "stack" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stack_state_is_private_and_reused(tmp_path, monkeypatch):
    stack = _stack_module()
    monkeypatch.setenv("STACK_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("STACK_PORTS", "auto")
    state = stack.load_state(stack.stack_dir())
    path = tmp_path / "s" / "stack.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(set(state["ports"].values())) == len(state["ports"])  # one port per listener
    assert stack.load_state(stack.stack_dir()) == state  # the second start reuses it
    env = stack.client_env(state)
    assert env["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{state['ports']['mlflow']}"
    assert env["PREFECT_API_URL"].endswith("/api") and ":" in env["PREFECT_API_AUTH_STRING"]
    env_file = stack.write_env_file(stack.stack_dir(), state)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert state["mlflow_users"]["reader"] not in env_file.read_text()  # only the pipeline's


def test_stack_status_without_a_stack_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    stack = _stack_module()
    monkeypatch.setenv("STACK_DIR", str(tmp_path / "none"))
    assert stack.main(["status"]) == 1
    assert "make stack" in capsys.readouterr().out
    assert stack.main(["down"]) == 0


@pytest.mark.parametrize(
    "uri,prefect_api,kind",
    [
        ("sqlite:///mlflow.db", None, "file"),
        ("file:///tmp/mlruns", "http://127.0.0.1:4200/api", "file"),
        ("postgresql://u:p@db:5432/mlflow", None, "postgres"),
        ("postgresql+psycopg2://u:p@db:5432/mlflow", None, "postgres"),
        ("http://mlflow:5000", "http://prefect:4200/api", "prefect"),
        ("http://mlflow:5000", None, "file"),  # no Prefect server: this host only (warned)
    ],
)
def test_promotion_lock_holds_across_hosts_when_the_store_is_a_server(
    uri, prefect_api, kind, monkeypatch
):
    from components import locks

    monkeypatch.setenv("PREFECT_API_URL", prefect_api or "")  # empty: no server
    assert locks.lock_kind(uri) == kind


def test_file_lock_is_kept_for_the_embedded_default(tmp_path, monkeypatch):
    from components import locks

    monkeypatch.setattr(locks, "LOCK_DIR", tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with locks.promotion_lock(uri, timeout=5) as kind:
        assert kind == "file"
        assert list(tmp_path.glob("registry-*.lock"))
