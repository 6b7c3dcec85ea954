"""Fixtures for the Daraja simulator suite: the simulator as its own process, a callback
receiver, and `Sim`, a thin raw-HTTP helper (no client library) that resets the simulator
before each test.

Client tests may reuse `simulator_url`, `receiver` and `sim`; the credentials the process
accepts are the module constants below.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from plumbing.settings import SANDBOX_PASSKEY, SANDBOX_SHORTCODE
from tests import services

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSUMER_KEY = "sim-test-consumer-key"
CONSUMER_SECRET = "sim-test-consumer-secret"
SHORTCODE = SANDBOX_SHORTCODE
PASSKEY = SANDBOX_PASSKEY
#: Seconds from push to prompt resolution, and to the late number's callback.
CALLBACK_DELAY_S = 0.2
LATE_CALLBACK_DELAY_S = 2.0
#: A number with no scenario: it pays.
PAYING_PHONE = "254712345678"
NAIROBI = timezone(timedelta(hours=3))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def simulator_env(**extra: str) -> dict[str, str]:
    """The process environment for a simulator with the suite's credentials and delays."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPESA_", "SIM_"))}
    env.update(
        MPESA_ENVIRONMENT="sandbox",
        MPESA_CONSUMER_KEY=CONSUMER_KEY,
        MPESA_CONSUMER_SECRET=CONSUMER_SECRET,
        MPESA_BUSINESS_SHORTCODE=SHORTCODE,
        MPESA_PASSKEY=PASSKEY,
        MPESA_PARTY_B=SHORTCODE,
        MPESA_TRANSACTION_TYPE="CustomerPayBillOnline",
        SIM_CALLBACK_DELAY=str(CALLBACK_DELAY_S),
        SIM_LATE_CALLBACK_DELAY=str(LATE_CALLBACK_DELAY_S),
    )
    env.update(extra)
    return env


def start_simulator(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m khalex_pay.boot.simulator` on `port`, logging to `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "khalex_pay.boot.simulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until_up(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Block until the simulator answers, failing with its log if it dies or is too slow."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"simulator exited {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/simulator/chaos", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"simulator did not start in time:\n{log_path.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process we started, killing it if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a simulator running as its own process for the whole session."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("simulator") / "simulator.log"
    process = start_simulator(port, simulator_env(), log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, url, log_path)
        yield url
    finally:
        stop(process)


@dataclass(frozen=True)
class ReceivedCallback:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def stk(self) -> dict[str, Any]:
        """`Body.stkCallback`."""
        callback: dict[str, Any] = self.json()["Body"]["stkCallback"]
        return callback


class _ReceiverServer(ThreadingHTTPServer):
    receiver: CallbackReceiver


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _ReceiverServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.receiver.record(ReceivedCallback(self.path, headers, body, time.monotonic()))
        # Paths under /fail answer 500, to prove the simulator never retries; under
        # /decline they refuse a C2B validation as Daraja's C2B00012.
        status = 500 if self.path.startswith("/fail") else 200
        answer = b'{"ResultCode": 0, "ResultDesc": "Accepted"}'
        if self.path.startswith("/decline"):
            answer = b'{"ResultCode": "C2B00012", "ResultDesc": "Rejected"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the recorded calls instead."""


class CallbackReceiver:
    """A local HTTP server (in a thread) recording every callback posted to it."""

    def __init__(self) -> None:
        self._server = _ReceiverServer(("127.0.0.1", 0), _ReceiverHandler)
        self._server.receiver = self
        self._calls: list[ReceivedCallback] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str = "/cb/stk") -> str:
        return self.base_url + path

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, call: ReceivedCallback) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self._calls.clear()

    def calls(self, checkout_id: str | None = None) -> list[ReceivedCallback]:
        """Callbacks received so far, optionally only those for `checkout_id`."""
        with self._changed:
            calls = list(self._calls)
        if checkout_id is None:
            return calls
        return [c for c in calls if _checkout_id_of(c) == checkout_id]

    def wait_for(
        self, checkout_id: str, count: int = 1, timeout: float = 5.0
    ) -> list[ReceivedCallback]:
        """Wait for `count` callbacks for `checkout_id`; fail if they do not come."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self._matching(checkout_id)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{len(found)} of {count} callbacks for {checkout_id}")
                self._changed.wait(left)
        return found

    def _matching(self, checkout_id: str) -> list[ReceivedCallback]:
        return [c for c in self._calls if _checkout_id_of(c) == checkout_id]


def _checkout_id_of(call: ReceivedCallback) -> str | None:
    try:
        return str(call.stk["CheckoutRequestID"])
    except (ValueError, KeyError, TypeError):
        return None


@pytest.fixture(scope="session")
def callback_receiver() -> Iterator[CallbackReceiver]:
    """One receiver for the session (use `receiver` in tests: it starts empty)."""
    receiver = CallbackReceiver()
    receiver.start()
    yield receiver
    receiver.close()


@pytest.fixture
def receiver(callback_receiver: CallbackReceiver) -> CallbackReceiver:
    """The callback receiver, emptied for this test."""
    callback_receiver.clear()
    return callback_receiver


def nairobi_timestamp(moment: datetime | None = None) -> str:
    """Daraja's `YYYYMMDDHHmmss` in Nairobi time."""
    return (moment or datetime.now(NAIROBI)).strftime("%Y%m%d%H%M%S")


def password_for(timestamp: str, shortcode: str = SHORTCODE, passkey: str = PASSKEY) -> str:
    """base64(shortcode + passkey + timestamp)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


def assert_daraja_error(answer: httpx.Response, status: int, code: str, message: str) -> None:
    """`answer` is Daraja's `{requestId, errorCode, errorMessage}` refusal with these values."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"requestId", "errorCode", "errorMessage"}, body
    assert (body["errorCode"], body["errorMessage"]) == (code, message)


def basic_auth(key: str = CONSUMER_KEY, secret: str = CONSUMER_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@dataclass
class Sim:
    """Raw HTTP calls to the simulator, with the suite's credentials."""

    base_url: str
    receiver: CallbackReceiver
    http: httpx.Client
    _token: str | None = field(default=None, repr=False)

    def token(self) -> str:
        """A bearer token, fetched once per test."""
        if self._token is None:
            answer = self.http.get(
                "/oauth/v1/generate",
                params={"grant_type": "client_credentials"},
                headers={"Authorization": basic_auth()},
            )
            assert answer.status_code == 200, answer.text
            self._token = str(answer.json()["access_token"])
        return self._token

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token()}"}

    def push_body(
        self, phone: str = PAYING_PHONE, amount: int | str = 1500, **fields: Any
    ) -> dict[str, Any]:
        """A valid push, as Daraja's own sample writes it; `fields` replace any key."""
        timestamp = nairobi_timestamp()
        body: dict[str, Any] = {
            "BusinessShortCode": int(SHORTCODE),
            "Password": password_for(timestamp),
            "Timestamp": timestamp,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": str(amount),
            "PartyA": phone,
            "PartyB": SHORTCODE,
            "PhoneNumber": phone,
            "CallBackURL": self.receiver.url(),
            "AccountReference": "KhalexChess",
            "TransactionDesc": "Khalex Chess",
        }
        body.update(fields)
        return body

    def push(self, body: dict[str, Any] | None = None, *, timeout: float = 10.0) -> httpx.Response:
        """POST processrequest with `body` (default: a valid push)."""
        return self.http.post(
            "/mpesa/stkpush/v1/processrequest",
            json=self.push_body() if body is None else body,
            headers=self.bearer(),
            timeout=timeout,
        )

    def push_ok(self, phone: str = PAYING_PHONE, **fields: Any) -> dict[str, Any]:
        """Push and return the accepted answer (failing the test otherwise)."""
        answer = self.push(self.push_body(phone, **fields))
        assert answer.status_code == 200, answer.text
        accepted: dict[str, Any] = answer.json()
        return accepted

    def query_body(self, checkout_id: str, **fields: Any) -> dict[str, Any]:
        timestamp = nairobi_timestamp()
        body: dict[str, Any] = {
            "BusinessShortCode": SHORTCODE,
            "Password": password_for(timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_id,
        }
        body.update(fields)
        return body

    def query(self, checkout_id: str, **fields: Any) -> httpx.Response:
        """POST stkpushquery for `checkout_id`."""
        return self.http.post(
            "/mpesa/stkpushquery/v1/query",
            json=self.query_body(checkout_id, **fields),
            headers=self.bearer(),
        )

    def ledger(self) -> list[dict[str, Any]]:
        pushes: list[dict[str, Any]] = self.http.get("/simulator/ledger").json()["pushes"]
        return pushes

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Until the simulator has no prompt timer or callback delivery left to run: after
        this, a callback that has not come will not come."""
        services.wait_until(
            lambda: self.http.get("/simulator/ledger").json()["pending"] == 0,
            timeout, 0.05, "the simulator's timers and callbacks to finish",
        )  # fmt: skip

    def entry(self, checkout_id: str) -> dict[str, Any]:
        """The ledger entry for `checkout_id`."""
        matches = [p for p in self.ledger() if p["checkoutRequestId"] == checkout_id]
        assert len(matches) == 1, matches
        return matches[0]

    def wait_resolved(self, checkout_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The ledger entry once its prompt has resolved."""
        deadline = time.monotonic() + timeout
        while (entry := self.entry(checkout_id))["resultCode"] is None:
            if time.monotonic() > deadline:
                pytest.fail(f"prompt {checkout_id} still open")
            time.sleep(0.05)
        return entry

    def wait_statuses(self, checkout_id: str, count: int, timeout: float = 5.0) -> list[Any]:
        """The callback statuses once `count` deliveries have finished."""
        deadline = time.monotonic() + timeout
        while len(statuses := self.entry(checkout_id)["callbackStatuses"]) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"only {statuses} delivered for {checkout_id}")
            time.sleep(0.05)
        return list(statuses)

    def chaos(self, **knobs: Any) -> httpx.Response:
        """PUT /simulator/chaos with `knobs`."""
        return self.http.put("/simulator/chaos", json=knobs)

    def set_chaos(self, **knobs: Any) -> dict[str, Any]:
        answer = self.chaos(**knobs)
        assert answer.status_code == 200, answer.text
        current: dict[str, Any] = answer.json()
        return current


@pytest.fixture
def sim(simulator_url: str, receiver: CallbackReceiver) -> Iterator[Sim]:
    """The simulator, reset for this test, with an empty callback receiver."""
    with httpx.Client(base_url=simulator_url, timeout=10) as http:
        assert http.post("/simulator/reset").status_code == 200
        yield Sim(simulator_url, receiver, http)
