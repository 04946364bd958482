"""Introspection over random histories agrees with a plain model, live and rebuilt (issue 4),
and the admin API's bearer check agrees with introspection (issue 14, invariant 8)."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import FixedClock
from adapters.projection_tables import clients_table
from adapters.signing import JwtVerifier
from api.bootstrap import Runtime, build
from api.settings import Settings
from api.usecases.access_tokens import AccessTokenValidator
from api.usecases.admin_access import BearerError
from api.usecases.client_admin import ClientAdmin, NewCredentials, register_client
from api.usecases.credentials import Credentials
from api.usecases.introspection import TokenIntrospector
from domain.admin_scopes import Admin
from domain.client import ClientCommandRejected
from domain.client_settings import ClientSettings
from domain.policy import TokenRequest
from projections.clients import ClientsFollower, ClientsView
from projections.tokens import RevokedTokensFollower, RevokedTokensView, revoked_tokens_table

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
T = Admin.installation("t")
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "issue",
                "issue",
                "revoke",
                "revoke_all",
                "revoke_generation",
                "rotate",
                "suspend",
                "reactivate",
                "delete",
                "advance",
            ]
        ),
        st.integers(0, 2),
        st.integers(1, 200),
    ),
    max_size=30,
)


@dataclass
class ModelClient:
    credentials: NewCredentials
    status: str = "active"
    revoked_before: float | None = None
    generation_cutoffs: dict[int, float] = field(default_factory=dict)
    generation: int = 1


@dataclass
class ModelToken:
    token: str
    client: int
    iat: int
    exp: int
    generation: int
    revoked: bool = False


def model_active(t: ModelToken, c: ModelClient, now: float) -> bool:
    """RFC 7662 'active', as a plain statement of what each command means."""
    cut_all = c.revoked_before is not None and t.iat <= c.revoked_before
    cut_gen = t.generation in c.generation_cutoffs and t.iat <= c.generation_cutoffs[t.generation]
    return not t.revoked and c.status == "active" and now < t.exp and not cut_all and not cut_gen


def admin_status(runtime: Runtime, token: str) -> int:
    try:
        runtime.admin_verifier.verify(f"Bearer {token}")
    except BearerError as refused:
        return refused.status_code
    return 200


@settings(max_examples=30, deadline=None)
@given(ops=OPS)
def test_active_matches_the_model_for_every_token_and_after_a_rebuild(
    ops: list[tuple[str, int, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(START)
        runtime = build(
            Settings(
                database_url=f"sqlite:///{tmp}/k.db",
                keys_dir=Path(tmp) / "keys",
                issuer="https://auth.example",
                kafka_bootstrap="off",
                follow_interval=10.0,
            ),
            clock=clock,
        )
        loop = asyncio.new_event_loop()
        loop.run_until_complete(runtime.start())
        try:
            admin = ClientAdmin(runtime.ledger, runtime.hasher, clock)
            settings_ = ClientSettings.create(name="c", allowed_scopes=["a"])
            clients = [
                ModelClient(
                    register_client(runtime.ledger, runtime.hasher, clock, settings_, actor="t")
                )
                for _ in range(3)
            ]
            tokens: list[ModelToken] = []

            def settle() -> None:
                runtime.follower.catch_up()
                runtime.revoked_follower.catch_up()

            settle()
            for op, i, n in ops:
                c, now = clients[i], clock.now()
                cid = c.credentials.client_id
                try:
                    if op == "advance":
                        clock.advance(n)
                    elif op == "issue" and c.status == "active":
                        creds = Credentials(cid, c.credentials.client_secret, "client_secret_basic")
                        issued = loop.run_until_complete(
                            runtime.issuer.issue(creds, TokenRequest(None))
                        )
                        iat = int(now.timestamp())
                        tokens.append(
                            ModelToken(issued.access_token, i, iat, iat + 300, c.generation)
                        )
                    elif op == "revoke" and tokens:
                        t = tokens[n % len(tokens)]
                        owner = clients[t.client].credentials.client_id
                        runtime.revoker.revoke_presented(owner, t.token)
                        t.revoked = t.revoked or now.timestamp() < t.exp
                    elif op == "revoke_all":
                        admin.revoke_tokens(
                            cid, by=T, cutoff=now, secret_generation=None, reason=None
                        )
                        c.revoked_before = now.timestamp()
                    elif op == "revoke_generation":
                        admin.revoke_tokens(cid, by=T, cutoff=now, secret_generation=1, reason=None)
                        c.generation_cutoffs[1] = now.timestamp()
                    elif op == "rotate":
                        c.credentials = admin.rotate_secret(cid, by=T)
                        c.generation += 1
                    elif op in ("suspend", "reactivate", "delete"):
                        getattr(admin, op)(cid, by=T, reason="r")
                        if op == "suspend":  # a suspension voids every token held before it
                            c.revoked_before = now.timestamp()
                        c.status = {
                            "suspend": "suspended",
                            "reactivate": "active",
                            "delete": "deleted",
                        }[op]
                except ClientCommandRejected:
                    pass
                settle()

            def answers(introspector: TokenIntrospector) -> list[bool]:
                return [introspector.introspect(t.token)["active"] for t in tokens]

            now = clock.now().timestamp()
            expected = [model_active(t, clients[t.client], now) for t in tokens]
            assert answers(runtime.introspector) == expected
            # Invariant 8: the admin API judges the same tokens the same way (active tokens
            # lack keyledger:admin here, so they are 403; every inactive one is 401).
            assert [admin_status(runtime, t.token) for t in tokens] == [
                403 if active else 401 for active in expected
            ]

            # Rebuild both read models from the first event into fresh views and tables.
            views = ClientsView(), RevokedTokensView()
            ClientsFollower(
                runtime.ledger, clients_table(runtime.ledger.datastore), views[0]
            ).catch_up()
            RevokedTokensFollower(
                runtime.ledger, revoked_tokens_table(runtime.ledger.datastore), views[1]
            ).catch_up()
            verifier = JwtVerifier(runtime.keys, runtime.settings.issuer_url)
            rebuilt = TokenIntrospector(AccessTokenValidator(verifier, *views, clock))
            assert answers(rebuilt) == expected
        finally:
            loop.run_until_complete(runtime.stop())
            loop.close()
