"""What every process needs before it does anything: settings, correlation ids, logs, Sentry.

Imports only the standard library, third-party packages and `domain` (to mask phone numbers),
so every layer above may lean on it.
"""
