"""The checkout page as a shopper drives it in a real Chromium, and the dev server it talks to.

Playwright for Python drives the system's Chromium (`/usr/bin/chromium`, Debian's package:
`scripts/ensure-chromium` installs it); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, Playwright, ViewportSize

from tests import services
from tests.processes import Processes, dev_key

#: Debian's Chromium; the test command installs it when it is missing.
CHROMIUM = Path("/usr/bin/chromium")
#: Headless, and nothing that reaches out to the internet on its own.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: Every stage is checked at these sizes: a desktop and two phones (360 px is the narrowest).
VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
    "small-phone": {"width": 360, "height": 740},
}
#: Rate limits the functional tests stay under, while the per-phone one stays as shipped.
LIMITS = {"RATE_LIMIT_IP": "100000/60", "RATE_LIMIT_KEY": "100000/60"}


def launch(playwright: Playwright, user_data_dir: Path) -> BrowserContext:
    """Chromium with a fresh profile in `user_data_dir`."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/ensure-chromium (make test does)")
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport=VIEWPORTS["desktop"],
    )  # fmt: skip


@dataclass
class DevServer:
    """A running `khalex-pay dev`: its URL, the shop key from its banner and its database."""

    url: str
    key: str
    database: Path

    def chaos(self, **knobs: Any) -> None:
        httpx.put(f"{self.url}/simulator/chaos", json=knobs, timeout=10).raise_for_status()

    def prompts(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/simulator/prompts", timeout=10).json()
        found: list[dict[str, Any]] = answer["prompts"]
        return found

    def ledger(self, phone: str | None = None) -> list[dict[str, Any]]:
        pushes: list[dict[str, Any]] = httpx.get(f"{self.url}/simulator/ledger", timeout=10).json()[
            "pushes"
        ]
        return [p for p in pushes if phone is None or p["phoneNumber"] == msisdn(phone)]

    def prompt_for(self, phone: str, timeout_s: float = 20) -> dict[str, Any]:
        """The open prompt on `phone`'s handset, once it shows."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for prompt in self.prompts():
                if prompt["phoneNumber"] == msisdn(phone):
                    return prompt
            time.sleep(0.1)
        raise AssertionError(f"no prompt opened for {phone[:4]}****{phone[-4:]}")

    def press(self, phone: str, action: str) -> dict[str, Any]:
        """What the customer does on the handset: pay, cancel, wrong-pin or ignore."""
        prompt = self.prompt_for(phone)
        answer = httpx.post(
            f"{self.url}/simulator/prompts/{prompt['checkoutRequestId']}/{action}", timeout=10
        )
        assert answer.status_code == 200, answer.text
        pressed: dict[str, Any] = answer.json()
        return pressed

    def paybill_registration(self, timeout_s: float = 20) -> dict[str, Any]:
        """The C2B URLs registered with the simulator, once they are."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = httpx.get(f"{self.url}/simulator/paybill", timeout=10).json()
            if answer["registration"] is not None:
                registration: dict[str, Any] = answer["registration"]
                return registration
            time.sleep(0.1)
        raise AssertionError("dev mode never registered its C2B URLs")

    def pay_by_paybill(self, phone: str, steps: dict[str, str]) -> dict[str, Any]:
        """What a customer does from M-Pesa's Pay Bill menu, with the page's `steps`."""
        answer = httpx.post(
            f"{self.url}/simulator/paybill",
            json={
                "businessNumber": steps["business"],
                "accountReference": steps["account"],
                "amount": int(re.sub(r"\D", "", steps["amount"])),
                "phoneNumber": msisdn(phone),
            },
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        tx: dict[str, Any] = answer.json()["transaction"]
        return tx


@contextmanager
def dev_server(tmp: Path, **env: str) -> Iterator[DevServer]:
    """`khalex-pay dev` on a free port with `env`; stopped on exit."""
    port = services.free_port()
    database = tmp / "dev.db"
    settings = {"DATABASE_URL": f"sqlite:///{database}", "SIM_CALLBACK_DELAY": "0.3", **LIMITS}
    with Processes({**settings, **env}, tmp) as procs:
        proc = procs.start("dev", "dev", "--port", str(port))
        services.wait_for_http(f"http://127.0.0.1:{port}/health/live", proc=proc)
        yield DevServer(f"http://127.0.0.1:{port}", dev_key(tmp / "dev.log"), database)


def msisdn(phone: str) -> str:
    return "254" + phone[1:]


def fresh_number() -> str:
    """A number no simulator scenario uses (those are 0700000001.., 0708374149): it pays."""
    return "0711" + "".join(random.choices("0123456789", k=6))


class Shopper:
    """One browser tab on the checkout page, at one of the VIEWPORTS."""

    def __init__(self, page: Page, size: str, base: str) -> None:
        self.page = page
        self.size = size
        self.base = base
        self.phone = ""
        page.set_viewport_size(VIEWPORTS[size])
        page.goto(f"{base}/")

    def __repr__(self) -> str:
        return f"Shopper({self.size})"

    def pay(self, phone: str, name: str = "Wanjiru") -> None:
        """Type the number and name and press Pay, with the keyboard only."""
        self.phone = phone
        page = self.page
        for _ in range(12):  # skip link, header link, the products: then the phone field
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "phoneNumber":
                break
        else:
            raise AssertionError("Tab never reached the phone number field")
        page.keyboard.type(phone)
        page.keyboard.press("Tab")
        page.keyboard.type(name)
        page.keyboard.press("Enter")  # submits the form

    @property
    def stage(self) -> str:
        return self.page.get_attribute("#checkout", "data-stage") or ""

    def data(self, name: str) -> str | None:
        return self.page.get_attribute("#checkout", f"data-{name}")

    @property
    def trail(self) -> list[str]:
        return (self.data("trail") or "").split()

    def wait_for(self, stage: str, timeout_s: float = 20) -> None:
        """Wait until the page shows `stage`; then check the layout and the focus."""
        self.page.wait_for_selector(
            f'#checkout[data-stage="{stage}"]', state="attached", timeout=timeout_s * 1000
        )
        self.check_layout()
        if stage != "form":
            focused = self.page.evaluate(
                "document.activeElement.tagName + '|' + "
                "(document.activeElement.closest('.stage') || {}).id"
            )
            assert focused == f"H2|stage-{stage}", f"{self}: focus is on {focused}"

    def text(self) -> str:
        """The words on screen in the current stage."""
        return self.page.inner_text(f"#stage-{self.stage}")

    def check_layout(self) -> None:
        """No sideways scrolling at this width."""
        widths = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{self}: page is {widths[0]} px wide in {widths[1]}"

    def open_paybill_steps(self) -> dict[str, str]:
        """Open "Didn't get the prompt?" with the keyboard; its business number, account and
        amount as the page shows them."""
        self.page.focus("#help-waiting summary")
        self.page.keyboard.press("Enter")
        self.check_layout()
        return {
            name: self.page.inner_text(f"#help-waiting [data-fill={name}]").strip()
            for name in ("business", "account", "amount")
        }

    def visible(self, selector: str) -> bool:
        return self.page.is_visible(selector)
