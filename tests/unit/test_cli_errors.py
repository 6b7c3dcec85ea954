"""The command line's failures of its surroundings end in one line with the fix, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from khalex_pay.cli import main
from tests.services import ROOT, free_port

pytestmark = pytest.mark.unit


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_a_database_that_is_down_is_named_with_its_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shop:pw@127.0.0.1:1/khalex")

    assert main(["keys", "list"]) == 1

    line = _one_line(capsys)
    assert line.startswith("khalex-pay: cannot reach the database postgresql+psycopg://shop:***@")
    assert "make services" in line
    assert "pw@" not in line


def test_a_sqlite_file_that_cannot_be_opened_names_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")

    assert main(["keys", "list"]) == 1

    assert _one_line(capsys).endswith("(unable to open database file): fix DATABASE_URL's path")


def test_a_database_without_tables_says_run_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")

    assert main(["orders", "list"]) == 1

    assert _one_line(capsys).endswith("has no tables yet: run khalex-pay migrate")


def test_redis_down_is_named_with_its_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")

    assert main(["dlq", "list"]) == 1

    line = _one_line(capsys)
    assert line.startswith("khalex-pay: cannot reach Redis at redis://127.0.0.1:1/0")
    assert line.endswith("start Redis (make services) or fix REDIS_URL")


def test_a_busy_port_names_a_free_one_to_try(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        assert main(["dev", "--port", str(port)]) == 1
        dev = _one_line(capsys)
        assert main(["api", "--port", str(port)]) == 1
        api = _one_line(capsys)

    assert dev.startswith(f"khalex-pay: port {port} is in use; try make dev PORT=")
    assert api.startswith(f"khalex-pay: port {port} is in use; try --port ")
    suggested = int(api.rsplit(" ", 1)[1])
    socket.create_server(("127.0.0.1", suggested)).close()  # it is free


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "khalex_pay.cli", "settings", "--markdown"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # like `| head` that has read enough, before anything is written

    _, err = proc.communicate(timeout=60)

    assert err == b""
    assert proc.returncode == 141


def test_a_bug_still_shows_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setitem(main.__globals__["_COMMANDS"], "migrate", broken)

    with pytest.raises(RuntimeError, match="a bug"):
        main(["migrate"])
