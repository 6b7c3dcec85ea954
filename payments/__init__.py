"""The payment use cases API and workers share: initiate, push, take callbacks, reconcile, orders,
the outbox relay and the shop's webhooks. Imports `domain`, `daraja`, `store` and `plumbing`.
"""
