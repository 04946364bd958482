"""The OpenAPI document tells the truth (issue 14): schemathesis against the real app.

Every operation in `/schema/openapi.json` is called in-process with generated valid and
invalid requests (schemathesis's examples, coverage and fuzzing phases), once without
credentials and once with an admin token. Every answer must be documented (status code,
content type, body schema), none may be a server error, and an answer that refuses the
request must not have written anything to the event log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.python import asgi

from adapters.clock import SystemClock
from api.bootstrap import build
from api.http.app import create_app
from api.settings import Settings
from api.usecases.client_admin import ADMIN_SCOPE, NewCredentials, register_client
from api.usecases.introspection import INTROSPECT_SCOPE
from domain.client_settings import ClientSettings
from tests.integration.helpers import basic

# Bounded and reproducible: a fixed seed, derandomized Hypothesis, few examples per operation.
CONFIG: dict[str, Any] = {
    "seed": 14,
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
    "generation": {"max-examples": 25, "deterministic": True, "database": "none"},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
    },
}
NEW_CLIENT = {"name": "reports", "allowed_scopes": ["reports:read"]}
FORM_PATHS = ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/admin/dashboard/login")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 renames subtests through `node._nodeid`, gone in pytest 9.2."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


class Served:
    """The app in-process (schemathesis runs its lifespan), clients to aim at, and an admin."""

    def __init__(self, settings: Settings, config: dict[str, Any]) -> None:
        self.runtime = build(settings)
        self.app = create_app(runtime=self.runtime)
        self.schema = schemathesis.openapi.from_asgi(
            "/schema/openapi.json", self.app, config=schemathesis.Config.from_dict(config)
        )  # starts the app's lifespan

        def register(name: str, *scopes: str) -> NewCredentials:
            return register_client(
                self.runtime.ledger,
                self.runtime.hasher,
                SystemClock(),
                ClientSettings.create(name=name, allowed_scopes=list(scopes)),
                actor="test",
            )

        self.admin = register("ops", ADMIN_SCOPE)
        self.caller = register("gateway", "invoices:read", INTROSPECT_SCOPE)  # OAuth endpoints
        self.managed = register("billing", "invoices:read")  # admin commands change it
        self.doomed = register("legacy", "invoices:read")  # DELETE decommissions it
        self.runtime.follower.catch_up()
        self.admin_token = self.token(self.admin)
        self.caller_token = self.token(self.caller)

    def token(self, client: NewCredentials) -> str:
        with asgi.get_client(self.app) as http:
            response = http.post(
                "/oauth2/token",
                data="grant_type=client_credentials",
                headers=basic(client.client_id, client.client_secret),
            )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def log_position(self) -> int:
        position: int = self.runtime.ledger.recorder.max_notification_id() or 0
        return position

    def aim_at_real_ids(self) -> Any:
        """Half the generated requests name a real client, token or set of credentials."""
        jti = jwt.decode(self.caller_token, options={"verify_signature": False})["jti"]

        @self.schema.hook
        def flatmap_path_parameters(context: Any, parameters: Any) -> Any:
            client = self.doomed if context.operation.method == "delete" else self.managed
            real = {"client_id": client.client_id, "jti": jti}
            if not isinstance(parameters, dict) or not real.keys() & parameters.keys():
                return st.just(parameters)
            aimed = {k: real.get(k, v) for k, v in parameters.items()}
            return st.sampled_from([parameters, aimed])

        @self.schema.hook
        def flatmap_body(context: Any, body: Any) -> Any:
            path = context.operation.path
            if not isinstance(body, dict):
                return st.just(body)
            if path == "/admin/clients":  # a name and scopes the settings accept
                return st.sampled_from([body, {**body, **NEW_CLIENT}])
            if path not in FORM_PATHS:
                return st.just(body)
            client = self.admin if path == "/admin/dashboard/login" else self.caller
            aimed = {k: v for k, v in body.items() if k in ("grant_type", "scope", "resource")}
            aimed |= {"client_id": client.client_id, "client_secret": client.client_secret}
            if path in ("/oauth2/introspect", "/oauth2/revoke"):
                aimed["token"] = self.caller_token
            return st.sampled_from([body, aimed])

        return self.schema


def _served(tmp_path: Path, config: dict[str, Any], **settings: Any) -> Iterator[Served]:
    served = Served(
        Settings(
            database_url=f"sqlite:///{tmp_path}/keyledger.db",
            keys_dir=tmp_path / "keys",
            issuer="https://auth.example.test",
            follow_interval=0.02,
            kafka_bootstrap="off",
            **settings,
        ),
        config,
    )
    yield served
    asgi.shutdown_lifespans()  # schemathesis ends it with the test too: a fresh store each


@pytest.fixture
def anonymous(tmp_path: Path) -> Iterator[Served]:
    """No credentials, or made-up ones, on every route."""
    yield from _served(tmp_path, CONFIG)


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Served]:
    """Real ids and credentials half the time, and a failure budget that does not run out."""
    config = CONFIG | {"generation": CONFIG["generation"] | {"with-security-parameters": False}}
    yield from _served(tmp_path, config, abuse_failure_burst=1_000_000)


@pytest.fixture
def anonymous_api(anonymous: Served) -> Any:
    return anonymous.schema


@pytest.fixture
def admin_api(admin: Served) -> Any:
    return admin.aim_at_real_ids()


def _call_and_validate(served: Served, case: schemathesis.Case, headers: dict[str, str]) -> None:
    before = served.log_position()
    response = case.call_and_validate(headers=headers)
    if response.status_code >= 400:
        assert served.log_position() == before, "a refused request wrote to the event log"


anonymous_schema = schemathesis.pytest.from_fixture("anonymous_api")
admin_schema = schemathesis.pytest.from_fixture("admin_api")


@anonymous_schema.parametrize()
def test_every_answer_to_an_anonymous_caller_is_documented(
    case: schemathesis.Case, anonymous: Served
) -> None:
    _call_and_validate(anonymous, case, {})


@admin_schema.parametrize()
def test_every_answer_to_an_admin_is_documented(case: schemathesis.Case, admin: Served) -> None:
    if case.operation.path in FORM_PATHS:  # the OAuth endpoints: their own client credentials
        _call_and_validate(admin, case, {})
    else:
        _call_and_validate(admin, case, {"Authorization": f"Bearer {admin.admin_token}"})


@pytest.mark.parametrize(
    "query",
    [
        "/admin/clients/{client_id}?at={t}",
        "/admin/alerts?since={t}",
        "/admin/analytics/issuance?until={t}",
        "/admin/analytics/issuance?granularity=day&since={t}",
        "/admin/analytics/top-clients?until={t}",
    ],
)
@pytest.mark.parametrize("t", ["0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_at_the_edge_of_the_calendar_is_refused_not_a_server_error(
    admin: Served, query: str, t: str
) -> None:
    path = query.format(client_id=admin.managed.client_id, t=t)
    with asgi.get_client(admin.app) as http:
        response = http.get(path, headers={"Authorization": f"Bearer {admin.admin_token}"})
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")
