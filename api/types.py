"""Type aliases shared by the API modules."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from payments.container import Container

#: A request whose user, auth and state we do not use.
AnyRequest = Request[Any, Any, State]
#: The per-process container, injected by name into handlers.
Deps = NamedDependency[Container]
