"""Random client histories against a plain model (issue 3, part 7).

The real application (event store on SQLite, admin use cases, the token issuer with group
commit, the clients follower) runs beside a dict-based model that predicts every command's
and every token request's outcome. An invariant folds each client's events up to every
earlier moment and compares the result with what the model recorded at that moment.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from adapters.clock import FixedClock
from api.bootstrap import build
from api.settings import Settings
from api.usecases.client_admin import ClientAdmin, ClientChanges
from api.usecases.credentials import Credentials
from domain.admin_scopes import Admin
from domain.client import ClientCommandRejected
from domain.client_settings import ClientSettings
from domain.oauth_errors import OAuthError
from domain.policy import TokenRequest

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
T = Admin.installation("t")
SCOPES = ["a", "b", "c", "d"]
scope_sets = st.lists(st.sampled_from(SCOPES), min_size=1, max_size=4, unique=True)


@dataclass(frozen=True)
class Secret:
    value: str
    generation: int
    expires_at: datetime | None


@dataclass(frozen=True)
class Model:
    status: str
    allowed: frozenset[str]
    defaults: frozenset[str]
    ttl: int
    secrets: tuple[Secret, ...]
    retired: tuple[str, ...] = field(default=())  # every secret ever replaced or revoked

    def live(self, now: datetime) -> list[Secret]:
        return [s for s in self.secrets if s.expires_at is None or now < s.expires_at]


class ClientLifecycle(RuleBasedStateMachine):
    clients = Bundle("clients")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp())
        self.clock = FixedClock(START)
        self.loop = asyncio.new_event_loop()
        self.runtime = build(
            Settings(
                database_url=f"sqlite:///{self.tmp}/k.db",
                keys_dir=self.tmp / "keys",
                issuer="https://auth.example",
                kafka_bootstrap="off",
                follow_interval=10.0,
            ),
            clock=self.clock,
        )
        self.loop.run_until_complete(self.runtime.start())
        self.admin = ClientAdmin(self.runtime.ledger, self.runtime.hasher, self.clock)
        self.model: dict[str, Model] = {}
        self.snapshots: dict[str, list[tuple[datetime, Model]]] = {}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.runtime.stop())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _record(self, cid: str, model: Model) -> None:
        self.model[cid] = model
        history = self.snapshots.setdefault(cid, [])
        if history and history[-1][0] == self.clock.now():
            history.pop()
        history.append((self.clock.now(), model))
        self.runtime.follower.catch_up()

    def _command(
        self, cid: str, expected: Model | None, method: str, run: Callable[[], object]
    ) -> None:
        """Run a command; `expected` None means the model says it must be rejected."""
        try:
            run()
        except ClientCommandRejected:
            assert expected is None, f"{method} was rejected but the model allows it"
            return
        assert expected is not None, f"{method} succeeded but the model rejects it"
        self._record(cid, expected)

    @rule(target=clients, allowed=scope_sets, ttl=st.integers(60, 86_400), data=st.data())
    def register(self, allowed: list[str], ttl: int, data: st.DataObject) -> str:
        defaults = data.draw(st.lists(st.sampled_from(allowed), unique=True))
        settings_ = ClientSettings.create(
            name="c", allowed_scopes=allowed, default_scopes=defaults, token_ttl=ttl
        )
        created = self.admin.register(settings_, by=T)
        assert created.client_secret is not None
        self._record(
            created.client_id,
            Model(
                "active",
                frozenset(allowed),
                frozenset(defaults),
                ttl,
                (Secret(created.client_secret, 1, None),),
            ),
        )
        return created.client_id

    @rule(cid=clients, grace=st.sampled_from([0, 60, 3600]))
    def rotate(self, cid: str, grace: int) -> None:
        m = self.model[cid]
        try:
            new = self.admin.rotate_secret(cid, grace=timedelta(seconds=grace), by=T)
        except ClientCommandRejected:
            assert m.status == "deleted"
            return
        assert m.status != "deleted"
        current, dropped = m.secrets[0], m.secrets[1:]
        previous = replace(current, expires_at=self.clock.now() + timedelta(seconds=grace))
        self._record(
            cid,
            replace(
                m,
                secrets=(Secret(new.client_secret, new.generation, None), previous),
                retired=m.retired + tuple(s.value for s in dropped) + (current.value,),
            ),
        )

    @rule(cid=clients)
    def revoke_previous(self, cid: str) -> None:
        m = self.model[cid]
        live_previous = [s for s in m.live(self.clock.now()) if s.expires_at is not None]
        ok = m.status != "deleted" and bool(live_previous)
        self._command(
            cid,
            replace(m, secrets=m.secrets[:1]) if ok else None,
            "revoke_previous_secret",
            lambda: self.admin.revoke_previous_secret(cid, by=T, reason=None),
        )

    @rule(cid=clients)
    def suspend(self, cid: str) -> None:
        m = self.model[cid]
        self._command(
            cid,
            replace(m, status="suspended") if m.status == "active" else None,
            "suspend",
            lambda: self.admin.suspend(cid, by=T, reason="r"),
        )

    @rule(cid=clients)
    def reactivate(self, cid: str) -> None:
        m = self.model[cid]
        self._command(
            cid,
            replace(m, status="active") if m.status == "suspended" else None,
            "reactivate",
            lambda: self.admin.reactivate(cid, by=T, reason=None),
        )

    @rule(cid=clients, allowed=scope_sets)
    def change_scopes(self, cid: str, allowed: list[str]) -> None:
        m = self.model[cid]
        new = replace(m, allowed=frozenset(allowed), defaults=m.defaults & frozenset(allowed))
        self._command(
            cid,
            None if m.status == "deleted" else new,
            "change_scopes",
            lambda: self.admin.update(
                cid, ClientChanges(allowed_scopes=allowed, default_scopes=None), by=T, reason=None
            ),
        )

    @rule(cid=clients, ttl=st.integers(60, 86_400))
    def change_lifetime(self, cid: str, ttl: int) -> None:
        m = self.model[cid]
        self._command(
            cid,
            None if m.status == "deleted" else replace(m, ttl=ttl),
            "change_token_lifetime",
            lambda: self.admin.update(cid, ClientChanges(token_ttl=ttl), by=T, reason=None),
        )

    @rule(cid=clients)
    def delete(self, cid: str) -> None:
        m = self.model[cid]
        gone = replace(
            m, status="deleted", secrets=(), retired=m.retired + tuple(s.value for s in m.secrets)
        )
        self._command(
            cid,
            None if m.status == "deleted" else gone,
            "delete",
            lambda: self.admin.delete(cid, by=T, reason=None),
        )

    @rule(seconds=st.integers(1, 7200))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(
        cid=clients,
        which=st.sampled_from(["current", "previous", "retired", "wrong"]),
        scope=st.one_of(st.none(), scope_sets.map(" ".join), st.just("a  b"), st.just("zz")),
    )
    def request_token(self, cid: str, which: str, scope: str | None) -> None:
        m, now = self.model[cid], self.clock.now()
        pool = {"current": m.secrets[:1], "previous": m.secrets[1:], "retired": (), "wrong": ()}[
            which
        ]
        secret = (
            pool[0].value
            if pool
            else (m.retired[-1] if which == "retired" and m.retired else "kl_secret_x")
        )
        live = {s.value for s in m.live(now)}
        wanted = (
            m.defaults
            if scope is None
            else frozenset(scope.split(" "))
            if "  " not in scope
            else None
        )
        if m.status != "active" or secret not in live:
            expected: str | tuple[frozenset[str], int] = "invalid_client"
        elif not wanted or not wanted <= m.allowed:
            expected = "invalid_scope"
        else:
            expected = (wanted, m.ttl)
        issue = self.runtime.issuer.issue(
            Credentials(cid, secret, "client_secret_basic"), TokenRequest(scope)
        )
        if isinstance(expected, str):
            with pytest.raises(OAuthError) as refused:
                self.loop.run_until_complete(issue)
            assert refused.value.error == expected
            return
        issued = self.loop.run_until_complete(issue)
        assert (frozenset(issued.scope.split(" ")), issued.expires_in) == expected

    @precondition(lambda self: bool(self.snapshots))
    @invariant()
    def the_past_rebuilt_from_events_is_what_the_model_recorded(self) -> None:
        for cid, history in self.snapshots.items():
            for at, m in history:
                then = self.admin.state_at(cid, at, by=T)
                assert (then.status, then.allowed_scopes, then.default_scopes, then.token_ttl) == (
                    m.status,
                    m.allowed,
                    m.defaults,
                    m.ttl,
                )
                assert [s.generation for s in then.secrets] == [s.generation for s in m.secrets]
                assert [s.expires_at for s in then.secrets] == [s.expires_at for s in m.secrets]


ClientLifecycle.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestClientLifecycle = ClientLifecycle.TestCase
