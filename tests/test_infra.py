"""Deployment files under ``infra/``, checked statically: no cloud, cluster or Docker engine.

- ``infra/ray/cluster.yaml`` against the JSON schema that ships with Ray (the one `ray up`
  uses), and through Ray's own config preparation; broken copies must fail.
- ``infra/kuberay/*.yaml``: the KubeRay CRD fields used, GPU requests, secrets from Secrets,
  entrypoints that the real CLI parser accepts.
- ``infra/docker/Dockerfile`` and ``infra/compose/``: pinned images, non-root users, the
  project and its pins installed, MLflow with basic-auth on PostgreSQL and S3, loopback ports.
- No literal credential anywhere under ``infra/``; every command in ``infra/README.md``
  exists in the ``heliobench`` and ``ray`` CLIs.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
CLUSTER_YAML = INFRA / "ray" / "cluster.yaml"
RAYCLUSTER_YAML = INFRA / "kuberay" / "raycluster.yaml"
RAYJOB_YAML = INFRA / "kuberay" / "rayjob.yaml"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
MLFLOW_DOCKERFILE = INFRA / "compose" / "mlflow.Dockerfile"
COMPOSE_YAML = INFRA / "compose" / "compose.yaml"
COMPOSE_ENV = INFRA / "compose" / ".env.example"
LAB_ENV = INFRA / "lab.env.example"
README = INFRA / "README.md"

#: Names of settings whose values are credentials.
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|access_key|private_key|_key$|^key$)")


def _pins() -> dict[str, str]:
    """The exact versions pyproject.toml pins (``name==version``)."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^;\s]+)", dep.strip())
        if m:
            out[m.group(1).lower()] = m.group(3)
    return out


PINS = _pins()


def _env_file(path: Path) -> dict[str, str]:
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"{path}:{n}: not KEY=VALUE: {line!r}"
        key, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path}:{n}: bad variable name {key!r}"
        assert " " not in value and not value.startswith(("'", '"')), f"{path}:{n}: unquoted values without spaces only"
        out[key] = value
    return out


# --------------------------------------------------------------------------------------
# Ray cluster launcher
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_schema() -> dict:
    import ray.autoscaler

    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema = json.loads(path.read_text())
    assert "draft-07" in schema["$schema"]
    return schema


@pytest.fixture(scope="module")
def validator(ray_schema):
    from jsonschema import Draft7Validator

    Draft7Validator.check_schema(ray_schema)
    return Draft7Validator(ray_schema)


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_yaml_matches_rays_schema(validator, cluster):
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(cluster)]
    assert not errors, "\n".join(errors)


def test_cluster_yaml_passes_ray_up_preparation(cluster):
    """What `ray up` does before touching the cloud: defaults, merged commands, checks."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(cluster))
    validate_config(prepared)
    assert prepared["available_node_types"][prepared["head_node_type"]]["max_workers"] == 0
    assert prepared["worker_setup_commands"][: len(cluster["setup_commands"])] == cluster["setup_commands"]


@pytest.mark.parametrize(
    ("breakage", "validator_name", "where"),
    [
        ("missing provider", "required", ""),
        ("unknown top-level key", "additionalProperties", ""),
        ("max_workers not an integer", "type", "max_workers"),
        ("unknown key in a node type", "additionalProperties", "available_node_types/gpu_g5"),
        ("GPU count not an integer", "type", "available_node_types/gpu_g5/resources/GPU"),
        ("setup_commands not a list", "type", "setup_commands"),
    ],
)
def test_broken_cluster_yaml_fails_validation(validator, cluster, breakage, validator_name, where):
    broken = copy.deepcopy(cluster)
    if breakage == "missing provider":
        del broken["provider"]
    elif breakage == "unknown top-level key":
        broken["max_worker"] = 3  # a typo of max_workers
    elif breakage == "max_workers not an integer":
        broken["max_workers"] = "twelve"
    elif breakage == "unknown key in a node type":
        broken["available_node_types"]["gpu_g5"]["setup_commands"] = ["true"]
    elif breakage == "GPU count not an integer":
        broken["available_node_types"]["gpu_g5"]["resources"]["GPU"] = "one"
    elif breakage == "setup_commands not a list":
        broken["setup_commands"] = "pip install ."
    errors = list(validator.iter_errors(broken))
    assert errors, f"{breakage}: the schema accepted it"
    found = {(e.validator, "/".join(map(str, e.absolute_path))) for e in errors}
    assert (validator_name, where) in found, found


def test_cluster_has_cpu_head_and_autoscaling_gpu_and_cpu_workers(cluster):
    types = cluster["available_node_types"]
    head = types[cluster["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and "InstanceType" in head["node_config"]
    gpu = [t for name, t in types.items() if name != cluster["head_node_type"] and t["resources"].get("GPU", 0) >= 1]
    cpu = [t for name, t in types.items() if name != cluster["head_node_type"] and t["resources"].get("GPU", 0) == 0]
    assert gpu and cpu, "a GPU worker group and a CPU worker group"
    assert any(t["node_config"]["InstanceType"] == "g5.xlarge" and t["resources"]["GPU"] == 1 for t in gpu)
    for t in gpu + cpu:
        assert 0 <= t["min_workers"] <= t["max_workers"]
    assert sum(t["min_workers"] for t in gpu + cpu) <= cluster["max_workers"]
    assert max(t["max_workers"] for t in gpu) >= 4, "room for `train --workers 4 --gpu`"
    assert cluster["idle_timeout_minutes"] > 0 and cluster["upscaling_speed"] > 0
    assert cluster["provider"]["type"] == "aws"


def test_cluster_installs_the_project_on_every_node(cluster):
    setup = "\n".join(cluster["setup_commands"])
    assert "libopenjp2-7" in setup
    assert re.search(r"git clone .*https://\S+\.git", setup) and re.search(r"git fetch .*origin \S+", setup), "the repository at a git ref"
    assert re.search(r"pip install .*-e ~/heliobench", setup)
    assert f"torch=={PINS['torch']}" in setup and f"=={PINS['ray']}" in setup, "the project's pins"
    # The lab environment reaches every Ray process: file mount + profile read before `ray start`.
    assert "~/heliobench-lab.env" in cluster["file_mounts"]
    assert "heliobench-lab.env" in setup and ".bashrc" in setup
    head_start = " ".join(cluster["head_start_ray_commands"])
    worker_start = " ".join(cluster["worker_start_ray_commands"])
    assert "ray start --head" in head_start and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head_start
    assert "--address=$RAY_HEAD_IP:6379" in worker_start
    assert any("boto3" in c for c in cluster["head_setup_commands"]), "the AWS autoscaler needs boto3 on the head"


# --------------------------------------------------------------------------------------
# KubeRay
# --------------------------------------------------------------------------------------


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _containers(pod_template: dict) -> list[dict]:
    containers = pod_template["spec"]["containers"]
    assert containers, "a pod template without containers"
    return containers


def _check_cluster_spec(spec: dict, where: str) -> None:
    """The RayCluster spec fields HelioBench relies on (KubeRay ray.io/v1)."""
    assert spec["rayVersion"] == PINS["ray"], f"{where}: rayVersion must match the project's Ray pin"
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict), f"{where}: headGroupSpec.rayStartParams"
    assert all(isinstance(v, str) for v in head["rayStartParams"].values()), f"{where}: rayStartParams values are strings"
    for c in _containers(head["template"]):
        assert c["image"] and c["resources"]["limits"], f"{where}: head container image and limits"
    groups = spec["workerGroupSpecs"]
    names = [g["groupName"] for g in groups]
    assert len(names) == len(set(names)), f"{where}: duplicate groupName"
    for g in groups:
        for key in ("replicas", "minReplicas", "maxReplicas"):
            assert isinstance(g[key], int), f"{where}: {g['groupName']}.{key}"
        assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], f"{where}: {g['groupName']} replica bounds"
        assert isinstance(g["rayStartParams"], dict) and g["template"]["spec"]["containers"]
    gpu = [g for g in groups if any("nvidia.com/gpu" in c["resources"].get("limits", {}) for c in _containers(g["template"]))]
    assert gpu, f"{where}: a worker group that requests nvidia.com/gpu"
    for g in gpu:
        for c in _containers(g["template"]):
            assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1
            assert "gpu" in c["image"], f"{where}: the GPU group runs the CUDA image"
        assert any(t.get("key") == "nvidia.com/gpu" for t in g["template"]["spec"].get("tolerations", []))
    cpu = [g for g in groups if g not in gpu]
    assert cpu, f"{where}: a CPU worker group for Ray Data and Tune"


def _all_containers(spec: dict) -> list[dict]:
    out = list(_containers(spec["headGroupSpec"]["template"]))
    for g in spec["workerGroupSpecs"]:
        out += _containers(g["template"])
    return out


def _check_env(container: dict, where: str) -> None:
    env = {e["name"]: e for e in container.get("env", [])}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert name in env, f"{where}: {container['name']} lacks {name}"
        ref = env[name].get("valueFrom", {}).get("secretKeyRef")
        assert ref and ref["name"] and ref["key"] and "value" not in env[name], f"{where}: {name} must come from a Secret"
    for name, e in env.items():
        if SECRET_NAME.search(name):
            assert "value" not in e, f"{where}: {name} has a literal value"


def _lab_keys() -> set[str]:
    return set(_env_file(LAB_ENV))


def test_raycluster():
    (doc,) = _docs(RAYCLUSTER_YAML)
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster" and doc["metadata"]["name"]
    spec = doc["spec"]
    _check_cluster_spec(spec, "RayCluster")
    assert spec["enableInTreeAutoscaling"] is True and spec["autoscalerOptions"]["idleTimeoutSeconds"] > 0
    for c in _all_containers(spec):
        _check_env(c, "RayCluster")


def _cli_args(entrypoint: str, env: dict[str, str]) -> list[str]:
    words = shlex.split(entrypoint)
    assert words[0] == "heliobench", entrypoint
    return [re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: env[m.group(1)], w) for w in words[1:]]


def test_rayjobs():
    docs = _docs(RAYJOB_YAML)
    assert [d["kind"] for d in docs] == ["RayJob", "RayJob"] and all(d["apiVersion"] == "ray.io/v1" for d in docs)
    from heliobench.cli import build_parser

    parser = build_parser()
    seen = {}
    for doc in docs:
        spec, name = doc["spec"], doc["metadata"]["name"]
        # KubeRay's own RayJob validation (ray-operator/controllers/ray/utils/validation.go).
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 47, f"{name}: not a valid RayJob name"
        assert bool(spec.get("rayClusterSpec")) != bool(spec.get("clusterSelector")), f"{name}: rayClusterSpec or clusterSelector"
        if spec.get("ttlSecondsAfterFinished", 0) > 0:
            assert spec.get("shutdownAfterJobFinishes"), f"{name}: ttlSecondsAfterFinished needs shutdownAfterJobFinishes"
        assert spec.get("activeDeadlineSeconds", 1) > 0 and spec.get("backoffLimit", 0) >= 0
        assert spec.get("submissionMode", "K8sJobMode") == "K8sJobMode", f"{name}: the submitter pod template needs K8sJobMode"
        entry = spec["entrypoint"]
        # The submitter pod runs `ray job submit -- ENTRYPOINT` in bash: variables in the
        # entrypoint expand there, so the submitter template must define them.
        submitter = spec["submitterPodTemplate"]["spec"]
        assert submitter["restartPolicy"] == "Never"
        sub_env = {e["name"] for c in submitter["containers"] for e in c.get("env", [])}
        for var in re.findall(r"\$\{?([A-Z_]+)", entry):
            assert var in sub_env, f"{name}: ${var} is not set in the submitter pod"
        args = parser.parse_args(_cli_args(entry, {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}))
        seen[args.verb] = (doc, args)
        assert args.tracking_uri == "http://mlflow:5000" and args.shards.startswith("s3://") and args.storage.startswith("s3://")
        assert (REPO / "benchmarks" / f"{args.benchmark}.yaml").is_file()
        if "rayClusterSpec" in spec:
            _check_cluster_spec(spec["rayClusterSpec"], name)
            for c in _all_containers(spec["rayClusterSpec"]):
                _check_env(c, name)
        else:
            assert spec["clusterSelector"]["ray.io/cluster"] == _docs(RAYCLUSTER_YAML)[0]["metadata"]["name"]
            assert not spec.get("shutdownAfterJobFinishes"), f"{name}: the selected cluster is shared, not the job's to delete"
    doc, train = seen["train"]
    assert train.benchmark == "ch_segmentation" and train.workers == 4 and train.gpu
    entry = " ".join(doc["spec"]["entrypoint"].split())
    assert "heliobench train ch_segmentation --workers 4 --gpu --tracking-uri $MLFLOW_TRACKING_URI" in entry
    assert doc["spec"]["shutdownAfterJobFinishes"] is True and "rayClusterSpec" in doc["spec"]
    gpu_max = max(g["maxReplicas"] for g in doc["spec"]["rayClusterSpec"]["workerGroupSpecs"] if g["groupName"] == "gpu")
    assert gpu_max >= train.workers
    assert "tune" in seen and seen["tune"][1].benchmark == "ch_segmentation"
    assert (REPO / "tune_spaces" / "ch_segmentation.yaml").is_file()


def test_kubernetes_secrets_are_the_lab_environment():
    """Every secretKeyRef names a key of the lab environment file (the Secret is made from it)."""
    keys = _lab_keys()
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                refs.add((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in (RAYCLUSTER_YAML, RAYJOB_YAML):
        for doc in _docs(path):
            walk(doc)
    assert refs and {name for name, _ in refs} == {"heliobench-lab"}
    assert {key for _, key in refs} <= keys, {key for _, key in refs} - keys


# --------------------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------------------


def _dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and ARG defaults substituted."""
    joined, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        joined.append(buf + line)
        buf = ""
    args: dict[str, str] = {}
    out = []
    for line in joined:
        instr, _, rest = line.strip().partition(" ")
        instr = instr.upper()
        rest = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), rest.strip())
        if instr == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args[k] = v
        out.append((instr, rest))
    return out


def _image_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def test_runtime_dockerfile():
    instrs = _dockerfile(DOCKERFILE)
    names = [i for i, _ in instrs]
    froms = [r for i, r in instrs if i == "FROM"]
    assert froms and all(_image_pinned(f.split()[0]) for f in froms), froms
    assert froms[0].startswith("python:3.11-slim")
    runs = "\n".join(r for i, r in instrs if i == "RUN")
    assert "libopenjp2-7" in runs
    assert f'"torch=={PINS["torch"]}"' in runs and "--index-url" in runs, "torch pinned to the project's version"
    assert "download.pytorch.org/whl/cpu" in runs, "the CPU wheel by default"
    assert re.search(rf'"ray\[[a-z,]*data[a-z,]*\]=={re.escape(PINS["ray"])}"', runs) and "train" in runs and "tune" in runs
    assert ("COPY", ". /opt/heliobench") in instrs and re.search(r"pip install \.( |$)", runs), "the project installed"
    users = [r for i, r in instrs if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    last_pip = max(k for k, (instr, rest) in enumerate(instrs) if instr == "RUN" and "pip install" in rest)
    assert names.index("USER") > last_pip, "installs as root, runs as the user"
    assert ("ENTRYPOINT", '["heliobench"]') in instrs
    envs = " ".join(r for i, r in instrs if i == "ENV")
    assert "HELIOBENCH_ROOT=/opt/heliobench" in envs, "cards and specs found outside site-packages"
    assert ":latest" not in DOCKERFILE.read_text()
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "work", ".git"} <= set(ignore)


def test_mlflow_dockerfile():
    instrs = _dockerfile(MLFLOW_DOCKERFILE)
    assert all(_image_pinned(r.split()[0]) for i, r in instrs if i == "FROM")
    runs = " ".join(r for i, r in instrs if i == "RUN")
    assert re.search(r'"mlflow\[auth\]==[\d.]+"', runs) and "psycopg2" in runs and "boto3" in runs
    assert [r for i, r in instrs if i == "USER"][-1] not in ("root", "0")


# --------------------------------------------------------------------------------------
# Shared services (compose)
# --------------------------------------------------------------------------------------

#: Compose service keys used here; anything else is probably a typo.
SERVICE_KEYS = {"image", "build", "restart", "command", "entrypoint", "environment", "env_file", "volumes",
                "ports", "healthcheck", "depends_on", "secrets", "networks", "user", "deploy"}
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_YAML.read_text())


def _strings(node):
    """Every string value in a parsed YAML document (comments excluded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _command_text(svc: dict) -> str:
    cmd = svc.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def test_compose_services_and_healthchecks(compose):
    services = compose["services"]
    assert {"mlflow", "postgres", "s3", "create-buckets"} <= set(services)
    for name, svc in services.items():
        assert set(svc) <= SERVICE_KEYS, f"{name}: unexpected keys {set(svc) - SERVICE_KEYS}"
        image = INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) == ":-" else "x:1", svc["image"])
        assert _image_pinned(image), f"{name}: image {svc['image']!r} is not pinned"
        if svc.get("restart") != "no":
            hc = svc.get("healthcheck")
            assert hc and hc["test"] and hc["interval"] and hc["retries"], f"{name}: a long-running service needs a healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, which has no healthcheck"
    mlflow_deps = services["mlflow"]["depends_on"]
    assert mlflow_deps["postgres"]["condition"] == mlflow_deps["s3"]["condition"] == "service_healthy"
    assert mlflow_deps["create-buckets"]["condition"] == "service_completed_successfully"
    assert services["create-buckets"]["depends_on"]["s3"]["condition"] == "service_healthy"
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:15") and "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") and not v.startswith((".", "/")) for v in pg["volumes"])
    assert set(compose["volumes"]) >= {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith((".", "/"))}
    assert (COMPOSE_YAML.parent / "postgres-init" / "10-mlflow-auth.sql").read_text().count("CREATE DATABASE mlflow_auth")


def test_compose_mlflow_server(compose):
    svc = compose["services"]["mlflow"]
    cmd = _command_text(svc)
    assert "mlflow server" in cmd and "--app-name basic-auth" in cmd
    assert re.search(r"--backend-store-uri \"?postgresql\+psycopg2://", cmd)
    assert re.search(r"--artifacts-destination \"?s3://", cmd)
    assert "database_uri = %s" in cmd and "postgresql+psycopg2://" in cmd and "/mlflow_auth" in cmd, "users in PostgreSQL too"
    env = svc["environment"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"] and "MLFLOW_AUTH_CONFIG_PATH" in cmd
    for name in ("MLFLOW_FLASK_SERVER_SECRET_KEY", "MLFLOW_AUTH_ADMIN_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert INTERPOLATION.fullmatch(env[name]), f"mlflow: {name} must come from .env"
    assert env["MLFLOW_S3_ENDPOINT_URL"].startswith("http://s3:")


def test_compose_ports_are_loopback_only(compose):
    published = [(name, p) for name, svc in compose["services"].items() for p in svc.get("ports", [])]
    assert {name for name, _ in published} >= {"mlflow", "s3"}
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port!r} not bound to 127.0.0.1"
    assert "ports" not in compose["services"]["postgres"]


def test_compose_secrets_come_from_the_env_file(compose):
    example = _env_file(COMPOSE_ENV)
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        assert isinstance(env, dict)
        for key, value in env.items():
            if SECRET_NAME.search(key) or key in ("MINIO_ROOT_USER", "POSTGRES_USER"):
                assert isinstance(value, str) and INTERPOLATION.fullmatch(value), f"{name}: {key} is not ${{VAR}}"
    values = list(_strings(compose))
    used = {m.group(1) for v in values for m in INTERPOLATION.finditer(v)}
    assert used <= set(example), f".env.example lacks {used - set(example)}"
    required = {m.group(1) for v in values for m in INTERPOLATION.finditer(v) if m.group(2) == ":?"}
    for key in required:
        assert example[key], f".env.example: {key} is empty"
        if SECRET_NAME.search(key) or key == "S3_ROOT_USER":
            assert "CHANGE-ME" in example[key], f".env.example: {key} must be a CHANGE-ME placeholder"


# --------------------------------------------------------------------------------------
# Credentials anywhere under infra/
# --------------------------------------------------------------------------------------

AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b")
AWS_SECRET = re.compile(r"(?i)aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}\b")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
URL_PASSWORD = re.compile(r"://[^/\s:@'\"]+:([^@\s'\"]+)@")
ASSIGNMENT = re.compile(r"(?i)\b([a-z0-9_]*(?:password|passwd|secret|token|access_key)[a-z0-9_]*)\b['\"]?\s*[:=]\s*(\S+)")


def _placeholder(value: str) -> bool:
    value = value.strip("'\",")
    return (not value or value.startswith(("$", "{", "<", "…", "[", "(")) or "CHANGE-ME" in value
            or value in ("|", ">-", "true", "false", "null")
            or re.match(r"[A-Za-z_][\w.]*\(", value) is not None)  # a call, e.g. getpass(...)


def _python_literal_secrets(path: Path) -> list[str]:
    """String literals given to secret-named variables, arguments, keys or fields of a Python file.

    Code names passwords everywhere (``password: str``, ``password=creds["pg"]``); only a
    literal value would be a written-down credential.
    """
    import ast

    def named(node) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return ""

    def literal(node) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        pairs = []
        if isinstance(node, ast.Assign):
            pairs = [(named(t), node.value) for t in node.targets]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            pairs = [(named(node.target), node.value)]
        elif isinstance(node, ast.keyword) and node.arg:
            pairs = [(node.arg, node.value)]
        elif isinstance(node, ast.Dict):
            pairs = [(named(k), v) for k, v in zip(node.keys, node.values) if k is not None]
        for name, value in pairs:
            text = literal(value)
            if SECRET_NAME.search(name) and text is not None and not _placeholder(text):
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                found.append(f"{where}:{value.lineno}: {name} = {text[:20]!r}")
    return found


def test_no_literal_credentials_in_infra():
    # A filled-in infra/compose/.env (git-ignored, local) is the one place real secrets belong.
    files = [p for p in INFRA.rglob("*") if p.is_file() and p.name != ".env" and "__pycache__" not in p.parts]
    assert len(files) >= 10
    problems = []
    for path in files:
        if path.suffix == ".py":
            problems += _python_literal_secrets(path)
        for n, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.relative_to(REPO)}:{n}"
            if AWS_KEY_ID.search(line) or AWS_SECRET.search(line) or PRIVATE_KEY.search(line):
                problems.append(f"{where}: looks like a key: {line.strip()[:80]}")
            for m in URL_PASSWORD.finditer(line):
                if not _placeholder(m.group(1)):
                    problems.append(f"{where}: password in a URL")
            if path.suffix == ".py":
                continue
            for m in ASSIGNMENT.finditer(line):
                if not _placeholder(m.group(2)):
                    problems.append(f"{where}: {m.group(1)} = {m.group(2)[:20]!r}")
    assert not problems, "\n".join(problems)


def test_python_secret_scan_catches_literals(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text('password = "hunter2-literal"\nconnect(password="x1y2z3w4")\nd = {"secret_key": "abcdef123"}\n'
                   'ok = getpass()\npassword: str = os.environ["X"]\n')
    found = _python_literal_secrets(bad)
    assert len(found) == 3, found


def test_env_examples_are_placeholders_only():
    for path in (COMPOSE_ENV, LAB_ENV):
        for key, value in _env_file(path).items():
            if SECRET_NAME.search(key) and not key.endswith("_BUCKET"):
                assert "CHANGE-ME" in value, f"{path.name}: {key}={value!r} is not a CHANGE-ME placeholder"


# --------------------------------------------------------------------------------------
# The README's commands exist
# --------------------------------------------------------------------------------------


def _readme_commands() -> list[tuple[str, bool]]:
    """(command line, complete?): lines of the bash blocks (complete) and inline code spans
    that start with `heliobench`/`ray` (possibly only naming a command)."""
    text = README.read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        buf, heredoc = "", None
        for line in block.splitlines():
            if heredoc:  # the body of a here-document is not a shell command
                heredoc = None if line.strip() == heredoc else heredoc
                continue
            if m := re.search(r"<<-?\s*'?(\w+)'?", line):
                heredoc = m.group(1)
            if line.rstrip().endswith("\\"):
                buf += line.rstrip()[:-1] + " "
                continue
            lines.append(((buf + line).strip(), True))
            buf = ""
    inline = [(" ".join(s.split()), False) for s in re.findall(r"`((?:heliobench|ray)\s[^`]+)`", text)]
    return lines + inline


def _heliobench_args(words: list[str]) -> list[str] | None:
    """The arguments of a `heliobench` command: at the start, or after `--` (ray job submit)."""
    for i, w in enumerate(words):
        if w == "heliobench" and (i == 0 or words[i - 1] == "--"):
            return words[i + 1:]
    return None


def test_readme_heliobench_commands_parse():
    from heliobench.cli import build_parser

    parser = build_parser()
    verbs = set(parser._subparsers._group_actions[0].choices)
    checked = set()
    for line, complete in _readme_commands():
        args = _heliobench_args(shlex.split(line, comments=True))
        if not args:
            continue
        assert args[0] in verbs, f"infra/README.md: `heliobench {args[0]}` is not a verb"
        if "--help" in args:
            continue
        try:
            ns = parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"infra/README.md: `heliobench {' '.join(args)}` is rejected by the CLI")
        checked.add(ns.verb)
        if getattr(ns, "benchmark", None):
            assert (REPO / "benchmarks" / f"{ns.benchmark}.yaml").is_file(), line
        if getattr(ns, "card", None):
            assert (REPO / "datasets" / f"{ns.card}.yaml").is_file(), line
    assert {"ingest", "catalog", "split", "shard", "train", "tune", "evaluate", "leaderboard", "submit", "sim"} <= checked


def test_readme_ray_commands_exist(monkeypatch):
    from ray.scripts.scripts import cli

    monkeypatch.chdir(REPO)
    seen = set()
    for line, complete in _readme_commands():
        words = shlex.split(line, comments=True)
        if not words or words[0] != "ray":
            continue
        cmd, rest, name = cli, words[1:], "ray"
        while hasattr(cmd, "commands") and rest:
            assert rest[0] in cmd.commands, f"infra/README.md: `{name} {rest[0]}` is not a ray command"
            name += f" {rest[0]}"
            cmd, rest = cmd.commands[rest[0]], rest[1:]
        if complete:
            cmd.make_context(name, list(rest))  # parses and validates the options; runs nothing
        seen.add(name)
    assert {"ray up", "ray dashboard", "ray attach", "ray exec", "ray job submit", "ray rsync-down", "ray down"} <= seen


# --------------------------------------------------------------------------------------
# Shared services on one machine (make services) and the fresh-machine set-up
# --------------------------------------------------------------------------------------


def test_makefile_installs_and_starts_the_shared_services():
    make = (REPO / "Makefile").read_text()
    apt = re.search(r"^APT_PACKAGES\s*:=\s*(.+)$", make, re.M).group(1).split()
    assert {"postgresql", "libopenjp2-7", "chromium"} <= set(apt)
    for target in ("services", "shared-tracking", "services-down", "test", "test-fast", "test-cluster"):
        assert re.search(rf"^{re.escape(target)}:", make, re.M), f"make {target}"
    assert "infra/local/services.py up" in make and "infra/local/services.py down" in make
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert any(d.startswith("mlflow[auth]") for d in deps["project"]["dependencies"])
    assert any(d.startswith("psycopg2-binary") for d in deps["project"]["optional-dependencies"]["test"])
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_local_services_cli_parses():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(INFRA / "local" / "services.py"), "up", "--help"], capture_output=True, text=True, check=True)
    assert "--mlflow-port" in out.stdout and "--pg-port" in out.stdout
