"""The one place the HTTP layer finds the application: the `Runtime` the lifespan built.

Litestar handlers receive it (or a use case from it) by dependency injection; the raw ASGI
endpoints of the OAuth hot path, which skip Litestar's request handling, ask `runtime_of`.
Either way it is typed: no handler reads untyped attributes off `app.state`.
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import SkipValidation

from api.bootstrap import Runtime

# The runtime, injected as it is: its fields are services, not request data to validate.
RuntimeDependency = NamedDependency[SkipValidation[Runtime]]


def runtime_of(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime
