"""Bring up the local PostgreSQL and Redis the tests need (`make services`, `make test`).

For each one that is not answering: start it if it is installed; else install it with
apt-get when we are root on Debian or Ubuntu; else start both with `docker compose` when a
Docker engine answers; else say in one line what to install. It exits non-zero when either
is still down: the tests never skip for a missing service. Standard library only, so it runs
before anything is installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Where the tests look for them (tests/services.py).
PG_PORT, REDIS_PORT = 5432, 6379
#: The compose file with just the two services, on these ports, for tests only.
COMPOSE_FILE = Path(__file__).with_name("services.compose.yml")
#: Seconds to wait for a service that was just started.
START_WAIT_S = 30
#: What to install, said once, when nothing here can do it.
WHAT_TO_INSTALL = (
    "install PostgreSQL and Redis (apt-get install postgresql redis-server, "
    "brew install postgresql redis) or Docker, then run make test again"
)


@dataclass(frozen=True)
class Machine:
    """What this machine has, as far as bringing the services up goes."""

    pg_up: bool
    redis_up: bool
    pg_installed: bool
    redis_installed: bool
    root_on_apt: bool  # root on Debian/Ubuntu, with apt-get
    docker: bool  # a Docker engine that answers, and `docker compose`


@dataclass(frozen=True)
class Plan:
    """The steps, in order (`start-pg`, `install-pg`, `compose-redis`, ...), or why there are
    none."""

    steps: tuple[str, ...]
    cannot: str = ""


def plan(m: Machine) -> Plan:
    """What to do to get both services answering on this machine."""
    steps: list[str] = []
    missing: list[str] = []
    for name, up, installed in (
        ("pg", m.pg_up, m.pg_installed),
        ("redis", m.redis_up, m.redis_installed),
    ):
        if up:
            continue
        if installed:
            steps.append(f"start-{name}")
        elif m.root_on_apt:
            steps.extend((f"install-{name}", f"start-{name}"))
        else:
            missing.append(name)
    if missing and m.docker:
        steps.extend(f"compose-{name}" for name in missing)
    elif missing:
        names = " and ".join({"pg": "PostgreSQL", "redis": "Redis"}[n] for n in missing)
        verb = "are" if len(missing) == 2 else "is"
        return Plan(tuple(steps), f"{names} {verb} not installed here: {WHAT_TO_INSTALL}")
    return Plan(tuple(steps))


# --- Looking at the machine ------------------------------------------------------------------


def pg_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", PG_PORT), timeout=1).close()
    except OSError:
        return False
    return True


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def root_on_apt() -> bool:
    release = Path("/etc/os-release")
    text = release.read_text(encoding="utf-8").lower() if release.is_file() else ""
    debian_like = any(word in text for word in ("id=debian", "id=ubuntu", "id_like=debian"))
    return os.geteuid() == 0 and debian_like and shutil.which("apt-get") is not None


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return all(_quiet(["docker", *args]) == 0 for args in (["info"], ["compose", "version"]))


def look() -> Machine:
    clusters = Path("/etc/postgresql")
    return Machine(
        pg_up=pg_up(),
        redis_up=redis_up(),
        pg_installed=shutil.which("pg_ctlcluster") is not None
        and clusters.is_dir()
        and any(clusters.iterdir()),
        redis_installed=shutil.which("redis-server") is not None,
        root_on_apt=root_on_apt(),
        docker=docker_answers(),
    )


# --- Doing it --------------------------------------------------------------------------------


def _quiet(command: list[str]) -> int:
    """Run a fixed command of this script's, its output hidden; its exit status."""
    return subprocess.run(command, capture_output=True, check=False).returncode  # noqa: S603


def _loud(command: list[str], **env: str) -> None:
    """Run a fixed command of this script's where the person can see it; stop if it fails."""
    subprocess.run(command, check=True, env={**os.environ, **env})  # noqa: S603


def _say(text: str) -> None:
    print(f"ensure-services: {text}", file=sys.stderr)  # noqa: T201


def _pg_cluster() -> Path:
    return sorted(Path("/etc/postgresql").iterdir())[0] / "main"


def start_pg() -> None:
    _say("starting PostgreSQL")
    version = _pg_cluster().parent.name
    for action in ("start", "reload"):  # reload: an apt-get install may have started it
        _quiet(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action])


def start_redis() -> None:
    _say("starting Redis")
    for folder in ("/var/lib/redis", "/var/log/redis"):
        Path(folder).mkdir(parents=True, exist_ok=True)
    _quiet([
        "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
        "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
        "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
    ])  # fmt: skip


def install(package: str) -> None:
    _say(f"installing {package} with apt-get")
    _loud(["apt-get", "update", "-qq"], DEBIAN_FRONTEND="noninteractive")
    _loud(["apt-get", "install", "-y", "-qq", package], DEBIAN_FRONTEND="noninteractive")


def trust_local_postgres() -> None:
    """The tests connect as `postgres` from 127.0.0.1 without a password (TEST_PG_ADMIN_URL)."""
    hba = _pg_cluster() / "pg_hba.conf"
    lines = "host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust\n"
    _say(f"letting postgres connect from this machine without a password ({hba})")
    hba.write_text(lines + hba.read_text(encoding="utf-8"), encoding="utf-8")


def compose(service: str) -> None:
    _say(f"starting {service} with docker compose ({COMPOSE_FILE.name})")
    _loud(["docker", "compose", "-f", str(COMPOSE_FILE), "up", "-d", "--wait", service])


def install_pg() -> None:
    install("postgresql")
    trust_local_postgres()


#: What each step of a plan does.
ACTIONS: dict[str, Callable[[], None]] = {
    "start-pg": start_pg,
    "start-redis": start_redis,
    "install-pg": install_pg,
    "install-redis": lambda: install("redis-server"),
    "compose-pg": lambda: compose("postgres"),
    "compose-redis": lambda: compose("redis"),
}


def wait(up: Callable[[], bool], name: str, port: int) -> bool:
    deadline = time.monotonic() + START_WAIT_S
    while not (answered := up()) and time.monotonic() < deadline:
        time.sleep(1)
    if not answered:
        _say(f"{name} is not answering on 127.0.0.1:{port}")
    return answered


def main() -> int:
    if pg_up() and redis_up():
        _say("PostgreSQL and Redis are up")
        return 0
    todo = plan(look())
    if todo.cannot:
        _say(todo.cannot)
        return 1
    for step in todo.steps:
        ACTIONS[step]()
    if not (wait(pg_up, "PostgreSQL", PG_PORT) and wait(redis_up, "Redis", REDIS_PORT)):
        return 1
    _say("PostgreSQL and Redis are up")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
