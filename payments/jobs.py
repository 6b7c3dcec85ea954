"""The jobs workers run: one queue each, so a backlog of one never starves another."""

from __future__ import annotations

from typing import Final, NamedTuple


class JobKind(NamedTuple):
    queue: str
    actor: str


#: Send the STK push for a payment (args: payment id).
SEND_PUSH: Final = JobKind("payments", "send_push")
#: Apply one stored callback (args: inbox id).
PROCESS_CALLBACK: Final = JobKind("callbacks", "process_callback")
#: Match one stored PayBill (C2B) confirmation to its order (args: c2b payment id).
PROCESS_C2B: Final = JobKind("callbacks", "process_c2b")
#: Ask Daraja for a payment's outcome (args: payment id).
QUERY_PAYMENT: Final = JobKind("reconcile", "query_payment")

#: POST one event to the shop's webhook (args: webhook event id). Its own queue: a shop
#: that is down or slow never holds up a payment job.
DELIVER_WEBHOOK: Final = JobKind("webhooks", "deliver_webhook")

ALL: Final = (SEND_PUSH, PROCESS_CALLBACK, PROCESS_C2B, QUERY_PAYMENT, DELIVER_WEBHOOK)
#: Each queue once, in the order of ALL.
QUEUES: Final = tuple(dict.fromkeys(job.queue for job in ALL))
