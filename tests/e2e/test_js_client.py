"""The shop page's JavaScript client (`/khalex-pay.js`), run by `node --test` against dev mode.

The shop's server (Python, with the dev API key) creates one order per JS test and hands
their checkout tokens to node in KHALEX_TOKENS; node then pays with only the token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests import services
from tests.processes import UNLIMITED, Processes, dev_key

pytestmark = pytest.mark.e2e

#: The node tests, and the orders they pay (one each: one payment in flight per order).
JS_TESTS = Path(__file__).resolve().parent.parent / "js"
TOKENS = ("events", "polling", "invalid", "cancelled", "busy", "vue")
ORDER = {
    "customerName": "Wanjiru",
    "customerEmail": "wanjiru@example.com",
    "customerPhone": "0712345678",
    "deliveryAddress": "Moi Avenue, Nairobi",
    "items": [
        {"productId": "set-01", "productName": "Chess set", "quantity": 1, "unitPrice": 1500}
    ],
}


def _node() -> str:
    node = shutil.which("node")
    if node is None:  # never skipped: the client's tests are part of the suite
        pytest.fail("node (Node.js 20 or later) is needed to test khalex-pay.js; install it")
    return node


def test_the_js_client_pays_watches_and_reports_errors_against_dev_mode(tmp_path: Path) -> None:
    node = _node()
    port = services.free_port()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
        "SIM_CALLBACK_DELAY": "0.5",
        **UNLIMITED,
    }
    with Processes(env, tmp_path) as procs:
        proc = procs.start("dev", "dev", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        services.wait_for_http(f"{base}/health/live", proc=proc)
        types = httpx.get(f"{base}/khalex-pay.d.ts", timeout=15)
        assert types.status_code == 200
        assert "export declare function createPayments" in types.text
        assert "export declare function usePayments" in types.text
        shop = {"Authorization": f"Bearer {dev_key(tmp_path / 'dev.log')}"}
        tokens = {}
        for name in TOKENS:
            answer = httpx.post(
                f"{base}/api/orders", json={**ORDER, "notes": name}, headers=shop, timeout=15
            )
            assert answer.status_code == 201, answer.text
            tokens[name] = answer.json()["checkoutToken"]

        run = subprocess.run(
            [node, "--test", "--test-reporter=tap", str(JS_TESTS)],
            env={**os.environ, "KHALEX_BASE_URL": base, "KHALEX_TOKENS": json.dumps(tokens)},
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "# fail 0" in report, report[-3000:]
    assert "# pass 15" in report, report[-3000:]  # every JS test ran
