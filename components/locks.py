"""Locks that serialize the registry's read-decide-write of aliases.

Which lock holds depends on where the registry lives:

- a Postgres tracking store (`postgresql://...`): a session-level advisory lock in that database;
- an MLflow server (`http(s)://...`) with a Prefect server configured (`PREFECT_API_URL`): a
  Prefect global concurrency limit of one slot, leased, so a crashed holder frees it;
- anything else (SQLite, a local folder, or a server with no Prefect server): a file lock, which
  holds only among processes on this host.

The first two hold across machines; the file lock is the embedded default's.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from components.errors import RegistryError

LOCK_DIR = Path.home() / ".cache" / "ganops" / "locks"
POLL_SECONDS = 0.2  # how often a waiting Postgres advisory lock retries


def lock_key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


def lock_kind(uri: str) -> str:
    """'postgres', 'prefect' or 'file': the lock `promotion_lock` takes for this tracking URI."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme.startswith("postgresql"):
        return "postgres"
    if scheme in ("http", "https") and _prefect_server_url():
        return "prefect"
    return "file"


def _prefect_server_url() -> str | None:
    """PREFECT_API_URL (set but empty: none), else the active Prefect profile's."""
    if "PREFECT_API_URL" in os.environ:
        return os.environ["PREFECT_API_URL"] or None
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


@contextmanager
def promotion_lock(uri: str, timeout: float = 600) -> Iterator[str]:
    """Hold the registry `uri`'s promotion lock for the block; yields the lock's kind. A lock
    not acquired within `timeout` seconds raises RegistryError."""
    kind = lock_kind(uri)
    if kind == "file" and uri.split(":", 1)[0].lower() in ("http", "https"):
        print(
            f"warning: registry {uri} is a server but PREFECT_API_URL is not set: the promotion "
            "lock is a file lock and holds on this host only",
            file=sys.stderr,
        )
    hold = {"postgres": _advisory_lock, "prefect": _prefect_lock, "file": _file_lock}[kind]
    with hold(uri, timeout):
        yield kind


@contextmanager
def _file_lock(uri: str, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(LOCK_DIR / f"registry-{lock_key(uri)}.lock"))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise RegistryError(
            f"registry {uri}: another promotion held the lock for {timeout}s"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _advisory_lock(uri: str, timeout: float) -> Iterator[None]:
    """pg_try_advisory_lock on its own connection; the lock dies with the session, so a crashed
    holder never blocks the next promotion."""
    import sqlalchemy

    key = int(lock_key("ganops-promotion " + uri), 16) & (2**63 - 1)  # bigint
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            deadline = time.monotonic() + timeout
            while not conn.execute(sqlalchemy.text(f"SELECT pg_try_advisory_lock({key})")).scalar():
                if time.monotonic() > deadline:
                    raise RegistryError(
                        f"registry {uri}: another promotion held the lock for {timeout}s"
                    )
                time.sleep(POLL_SECONDS)
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text(f"SELECT pg_advisory_unlock({key})"))
    finally:
        engine.dispose()


@contextmanager
def _prefect_lock(uri: str, timeout: float) -> Iterator[None]:
    """One slot of the global concurrency limit `ganops-promotion-<key>` (created on first
    use). The slot is leased and renewed while held; a crashed holder's lease lapses."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = f"ganops-promotion-{lock_key(uri)}"
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another promotion created it meanwhile
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
    held = ExitStack()
    try:
        held.enter_context(concurrency(name, occupy=1, timeout_seconds=timeout, strict=True))
    except TimeoutError:
        raise RegistryError(
            f"registry {uri}: another promotion held {name!r} for {timeout}s"
        ) from None
    with held:
        yield
