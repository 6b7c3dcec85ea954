"""What happens to a push, chosen by the paying number (CONTRACT.md §5), and how Daraja
words each ResultCode.

Daraja words the same code differently in the callback and in the query (a 1037 callback
says "No response from user." while the query says "DS timeout user cannot be reached"),
so both texts are kept; clients must map on the code alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Delivery(enum.Enum):
    """How the callback for a resolved prompt goes out."""

    ONCE = "once"
    NEVER = "never"
    TWICE = "twice"
    LATE = "late"


@dataclass(frozen=True)
class Scenario:
    """One row of the scenario table."""

    result_code: int = 0
    delivery: Delivery = Delivery.ONCE
    #: The push is refused at once with "Unable to lock subscriber".
    refused: bool = False
    #: The push answer hangs past the client's timeout, yet the prompt goes out.
    hangs: bool = False


PAID = 0
INSUFFICIENT_FUNDS = 1
CANCELLED = 1032
UNREACHABLE = 1037
WRONG_PIN = 2001
#: TransactionType/PartyB do not match the merchant's product (a till/PayBill mix-up).
NOT_PERMITTED = 2028

#: Any number not listed pays.
DEFAULT = Scenario()

SCENARIOS = {
    "254708374149": Scenario(result_code=UNREACHABLE),  # Daraja's sandbox test number
    "254700000001": Scenario(result_code=INSUFFICIENT_FUNDS),
    "254700000002": Scenario(result_code=CANCELLED),
    "254700000003": Scenario(result_code=WRONG_PIN),
    "254700000004": Scenario(result_code=UNREACHABLE),
    "254700000005": Scenario(delivery=Delivery.NEVER),
    "254700000006": Scenario(delivery=Delivery.TWICE),
    "254700000007": Scenario(refused=True),
    "254700000008": Scenario(hangs=True),
    "254700000009": Scenario(delivery=Delivery.LATE),
}

#: Hand resolution from the virtual phone: action -> ResultCode.
ACTIONS = {"pay": PAID, "cancel": CANCELLED, "wrong-pin": WRONG_PIN, "ignore": UNREACHABLE}

_CALLBACK_DESC = {
    PAID: "The service request is processed successfully.",
    INSUFFICIENT_FUNDS: "The balance is insufficient for the transaction.",
    CANCELLED: "Request cancelled by user",
    UNREACHABLE: "No response from user.",
    WRONG_PIN: "The initiator information is invalid.",
    NOT_PERMITTED: "The request is not permitted according to product assignment",
}
_QUERY_DESC = {**_CALLBACK_DESC, UNREACHABLE: "DS timeout user cannot be reached"}


def scenario_for(party_a: str) -> Scenario:
    """The row for the paying number."""
    return SCENARIOS.get(party_a, DEFAULT)


def callback_desc(code: int) -> str:
    """ResultDesc as the callback words it."""
    return _CALLBACK_DESC.get(code, "Request failed")


def query_desc(code: int) -> str:
    """ResultDesc as the STK query words it."""
    return _QUERY_DESC.get(code, "Request failed")
