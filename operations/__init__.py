"""The operators' side: payment details, queues and dead letters, alerts, metrics, retention and
operator tokens. Reads what `payments` writes; `payments` never imports it.
"""
