"""Starting processes: the one package that wires `api` and `workers` to the use cases.

Every process (API, worker, scheduler, dev, the CLI's commands) starts through
`khalex_pay.boot.bootstrap.bootstrap`; nothing else imports `api` or `workers`.
"""
