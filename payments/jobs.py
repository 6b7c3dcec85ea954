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
#: Ask Daraja for a payment's outcome (args: payment id).
QUERY_PAYMENT: Final = JobKind("reconcile", "query_payment")

#: POST one event to the shop's webhook (args: webhook event id). Its own queue: a shop
#: that is down or slow never holds up a payment job.
DELIVER_WEBHOOK: Final = JobKind("webhooks", "deliver_webhook")

ALL: Final = (SEND_PUSH, PROCESS_CALLBACK, QUERY_PAYMENT, DELIVER_WEBHOOK)
QUEUES: Final = tuple(job.queue for job in ALL)
