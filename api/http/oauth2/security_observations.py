"""Turning OAuth error answers into security observations for the audit topic."""

from __future__ import annotations

from types import TracebackType

from litestar.types import Scope

from adapters.metrics import AUTHENTICATION_FAILURES, OAUTH_ERRORS, client_label
from api.http.client_address import client_address
from api.http.runtime import runtime_of
from api.logs import bind_client
from api.usecases.credentials import Credentials
from domain.oauth_errors import OAuthError
from domain.observations import (
    AUTHENTICATION_FAILED,
    AUTHENTICATION_FAILURE_REASONS,
    SecurityObservation,
)


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _user_agent(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            return str(value.decode("latin-1"))
    return None


class Observing:
    """Records the observation an `OAuthError` leaving its block makes, and lets it go on.

    The block fills in what it learns as it goes (`params`, `credentials`), so the
    observation says as much as the request revealed before it failed.
    """

    def __init__(self, scope: Scope, endpoint: str) -> None:
        self._scope = scope
        self._endpoint = endpoint
        self.params: dict[str, list[str]] = {}
        self.credentials: Credentials | None = None

    def __enter__(self) -> Observing:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, OAuthError):
            self._record(error)

    def _record(self, error: OAuthError) -> None:
        runtime = runtime_of(self._scope["app"].state)
        credentials = self.credentials
        presented = credentials.client_id if credentials else _first(self.params, "client_id")
        registered = presented is not None and runtime.view.get(presented) is not None
        if presented is not None and registered:
            bind_client(presented)
        OAUTH_ERRORS.labels(
            self._endpoint, error.error, client_label(presented if registered else None)
        ).inc()
        observation = SecurityObservation.of_error(
            error,
            endpoint=self._endpoint,
            at=runtime.clock.now(),
            client_id=credentials.client_id if credentials else _first(self.params, "client_id"),
            auth_method=credentials.method if credentials else None,
            source_ip=client_address(self._scope),
            user_agent=_user_agent(self._scope),
            requested_scope=_first(self.params, "scope"),
            requested_resources=tuple(self.params.get("resource", ())),
        )
        if observation is None:
            return
        if observation.kind == AUTHENTICATION_FAILED:
            reason = error.reason if error.reason in AUTHENTICATION_FAILURE_REASONS else "other"
            AUTHENTICATION_FAILURES.labels(reason).inc()
        runtime.observations.record(observation)
