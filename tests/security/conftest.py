"""The security suite reuses the integration harness (PostgreSQL, a scripted Daraja)."""

from __future__ import annotations

from tests.integration.conftest import h

__all__ = ["h"]
