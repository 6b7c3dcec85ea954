"""`make screenshots`: each stage of the reference checkout at desktop and phone size.

Plays every story against real `khalex-pay dev` servers (as the browser tests do) and writes
docs/screenshots/<stage>-<size>.png, the viewport as a shopper sees it. Usage:
`python -m tests.browser.screenshots docs/screenshots [STAGE ...]` (only the stages named,
e.g. `4-paid-by-paybill`; every stage when none is).
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, Route, sync_playwright

from tests.browser.shopper import DevServer, Shopper, dev_server, fresh_number, launch, msisdn

#: The sizes shown in the README.
SIZES = ("desktop", "phone")
#: A short expiry for the "ignored" and "late" stories.
SHORT_EXPIRY_S = 8

Story = Callable[[DevServer, list[Shopper]], None]


def _held(server: DevServer, shoppers: list[Shopper]) -> None:
    """Each shopper pays with a fresh number whose prompt waits on the handset."""
    numbers = [fresh_number() for _ in shoppers]
    server.chaos(manualPhones=[msisdn(n) for n in numbers])
    for shopper, number in zip(shoppers, numbers, strict=True):
        shopper.pay(number)


def _answer(server: DevServer, shoppers: list[Shopper], action: str, stage: str) -> None:
    _held(server, shoppers)
    for shopper in shoppers:
        shopper.wait_for("waiting")
        server.press(shopper.phone, action)
    for shopper in shoppers:
        shopper.wait_for(stage, 30)


def form(server: DevServer, shoppers: list[Shopper]) -> None:
    for shopper in shoppers:
        shopper.page.fill("#customerName", "Wanjiru")


def form_invalid(server: DevServer, shoppers: list[Shopper]) -> None:
    for shopper in shoppers:
        shopper.pay("0612 34")
        shopper.page.wait_for_selector("#error-phoneNumber:not(:empty)")


def sending(server: DevServer, shoppers: list[Shopper]) -> None:
    """The initiate is held back by the browser until the picture is taken."""
    held: list[Route] = []

    def hold(route: Route) -> None:  # never answered: the page stays on "sending"
        held.append(route)

    for shopper in shoppers:
        shopper.page.route("**/api/payments/initiate", hold)
        shopper.pay(fresh_number())
    for shopper in shoppers:
        shopper.wait_for("sending")


def waiting(server: DevServer, shoppers: list[Shopper]) -> None:
    _held(server, shoppers)
    for shopper in shoppers:
        shopper.wait_for("waiting")
    shoppers[0].page.wait_for_timeout(1500)  # the countdown has started


def waiting_help(server: DevServer, shoppers: list[Shopper]) -> None:
    waiting(server, shoppers)
    for shopper in shoppers:
        shopper.page.click("#help-waiting summary")
        shopper.page.locator("#help-waiting").scroll_into_view_if_needed()


def paid(server: DevServer, shoppers: list[Shopper]) -> None:
    _answer(server, shoppers, "pay", "paid")


def paid_by_paybill(server: DevServer, shoppers: list[Shopper]) -> None:
    """No prompt came: the shopper follows "Didn't get the prompt?" on M-Pesa's Pay Bill menu."""
    server.paybill_registration()
    _held(server, shoppers)
    for shopper in shoppers:
        shopper.wait_for("waiting")
        server.pay_by_paybill(shopper.phone, shopper.open_paybill_steps())
    for shopper in shoppers:
        shopper.wait_for("paid", 20)


def cancelled(server: DevServer, shoppers: list[Shopper]) -> None:
    _answer(server, shoppers, "cancel", "failed")


def wrong_pin(server: DevServer, shoppers: list[Shopper]) -> None:
    _answer(server, shoppers, "wrong-pin", "failed")


def not_reached(server: DevServer, shoppers: list[Shopper]) -> None:
    _answer(server, shoppers, "ignore", "failed")


def insufficient_funds(server: DevServer, shoppers: list[Shopper]) -> None:
    for shopper in shoppers:
        shopper.pay("0700000001")
        shopper.wait_for("failed")


def confirming(server: DevServer, shoppers: list[Shopper]) -> None:
    server.chaos(pushTimeoutRate=1.0, hangS=4)
    try:
        _held(server, shoppers)
        for shopper in shoppers:
            shopper.wait_for("confirming", 20)
    finally:
        server.chaos(pushTimeoutRate=0.0, hangS=30)


def rate_limited(server: DevServer, shoppers: list[Shopper]) -> None:
    for shopper in shoppers:
        number = fresh_number()
        for _ in range(3):
            shopper.page.reload()
            shopper.pay(number)
            shopper.wait_for("paid")
        shopper.page.reload()
        shopper.pay(number)
        shopper.wait_for("failed")


def daraja_down(server: DevServer, shoppers: list[Shopper]) -> None:
    for shopper in shoppers:
        shopper.pay(fresh_number())
    for shopper in shoppers:
        shopper.wait_for("failed", 60)


def timeout(server: DevServer, shoppers: list[Shopper]) -> None:
    _held(server, shoppers)
    for shopper in shoppers:
        shopper.wait_for("failed", SHORT_EXPIRY_S + 20)


def late_success(server: DevServer, shoppers: list[Shopper]) -> None:
    timeout(server, shoppers)
    for shopper in shoppers:
        server.press(shopper.phone, "pay")
    for shopper in shoppers:
        shopper.wait_for("paid", 20)


def unavailable(server: DevServer, shoppers: list[Shopper]) -> None:
    for shopper in shoppers:
        shopper.pay(fresh_number())
        shopper.wait_for("unavailable")


#: Stories by server: name → story. The names are the files' names.
NORMAL: dict[str, Story] = {
    "1-form": form, "1-form-invalid-number": form_invalid, "2-sending": sending,
    "3-check-your-phone": waiting, "3-didnt-get-the-prompt": waiting_help, "4-paid": paid,
    "4-paid-by-paybill": paid_by_paybill,
    "5-cancelled": cancelled, "5-insufficient-funds": insufficient_funds,
    "5-wrong-pin": wrong_pin, "5-prompt-not-reached": not_reached,
    "5-rate-limited": rate_limited, "6-still-confirming": confirming,
}  # fmt: skip
SHORT: dict[str, Story] = {"5-timeout": timeout, "4-late-success": late_success}
NO_ROLLOUT: dict[str, Story] = {"7-rollout-off-contact": unavailable}
DARAJA_DOWN: dict[str, Story] = {"5-daraja-down": daraja_down}


#: Scrolls element `id` to `at` (start, center, end) of the window.
SCROLL = "([id, at]) => document.getElementById(id).scrollIntoView({block: at})"


def shoot(out: Path, page: Page, name: str, size: str) -> None:
    # The checkout card at the top of the window, as on a phone after the page scrolled.
    if size != "desktop":
        target = ("checkout", "start")
        if name == "3-didnt-get-the-prompt":
            target = ("help-waiting", "end")
        elif name.startswith("1-form"):
            target = ("phoneNumber", "center")
        page.evaluate(SCROLL, target)
    page.evaluate("document.activeElement.blur()")
    save(page, out / f"{name}-{size}.png")


def save(page: Page, path: Path) -> None:
    """The window as a 256-colour PNG: a third of the size, the same to the eye."""
    image = Image.open(io.BytesIO(page.screenshot()))
    image.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def play(out: Path, context_pages: Callable[[], dict[str, Page]], server: DevServer,
         stories: dict[str, Story]) -> None:  # fmt: skip
    for name, story in stories.items():
        pages = context_pages()
        shoppers = [Shopper(page, size, server.url) for size, page in pages.items()]
        story(server, shoppers)
        for shopper in shoppers:
            shoot(out, shopper.page, name, shopper.size)
            shopper.page.close()
        server.chaos(manualPhones=[])
        print(f"  {name}", file=sys.stderr)


#: The virtual phone's picture (not a checkout stage).
VIRTUAL_PHONE = "8-virtual-phone"


def main(out: Path, only: set[str] | None = None) -> None:
    """Write the stages named in `only` (every stage when None) to `out`."""
    every = {*NORMAL, *SHORT, *NO_ROLLOUT, *DARAJA_DOWN, VIRTUAL_PHONE}
    if only is not None and (unknown := only - every):
        raise SystemExit(f"no such stage: {', '.join(sorted(unknown))}")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_dir, sync_playwright() as playwright:
        tmp = Path(tmp_dir)
        context = launch(playwright, tmp / "profile")

        def pages() -> dict[str, Page]:
            return {size: context.new_page() for size in SIZES}

        servers = [
            ("normal", {}, NORMAL),
            ("short", {"PAYMENT_EXPIRY_S": str(SHORT_EXPIRY_S), "RECONCILE_AFTER_S": "2"}, SHORT),
            ("no-rollout", {"MPESA_ROLLOUT_PERCENT": "0"}, NO_ROLLOUT),
            ("daraja-down", {"SIM_CHAOS": json.dumps({"faultRate": 1.0})}, DARAJA_DOWN),
        ]
        for name, extra, every_story in servers:
            stories = {k: v for k, v in every_story.items() if only is None or k in only}
            if not stories:
                continue
            (tmp / name).mkdir()
            env = {"MPESA_TIMEOUT_S": "2", **extra}
            with dev_server(tmp / name, **env) as server:
                play(out, pages, server, stories)
        if only is None or VIRTUAL_PHONE in only:
            phone = context.new_page()
            (tmp / "phone").mkdir()
            with dev_server(tmp / "phone") as server:
                Shopper(phone, "phone", server.url).page.goto(f"{server.url}/phone")
                phone.wait_for_timeout(1200)
                save(phone, out / f"{VIRTUAL_PHONE}-phone.png")
        context.close()


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"),
        set(sys.argv[2:]) or None,
    )
