"""examples/microservices, run as its README says against a live `keyledger serve`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.examples import program, run_setup, tokens_issued
from tests.e2e.server import cli, environment, free_port, serve

FOLDER = "microservices"
JSON = {"Content-Type": "application/json"}


@dataclass
class Deployment:
    keyledger: str
    env: dict[str, str]
    database_url: str
    clients: dict[str, str]
    tmp: Path


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """keyledger serving, and the README's clients registered by its own set-up block."""
    database_url = f"sqlite:///{tmp_path}/k.db"
    env = environment(database_url, tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "keyledger.log") as base:
        clients = run_setup(FOLDER, env)
        yield Deployment(
            base, {**env, **clients, "KEYLEDGER_URL": base}, database_url, clients, tmp_path
        )


def stock_api(d: Deployment, port: int, *args: str, **env: str):  # type: ignore[no-untyped-def]
    return program(
        FOLDER,
        "stock_api.py",
        "--port",
        str(port),
        *args,
        env={**d.env, **env},
        log=d.tmp / f"stock-{port}.log",
        ready_url=f"http://127.0.0.1:{port}/stock",
    )


def orders(d: Deployment, stock_port: int, port: int, **env: str):  # type: ignore[no-untyped-def]
    return program(
        FOLDER,
        "orders.py",
        "--port",
        str(port),
        env={**d.env, "STOCK_URL": f"http://127.0.0.1:{stock_port}", **env},
        log=d.tmp / "orders.log",
        ready_url=f"http://127.0.0.1:{port}/orders",
    )


async def place_orders(port: int, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        return await asyncio.gather(
            *(http.post("/orders", json={"sku": "apple", "quantity": 1}) for _ in range(count))
        )


def token_for(d: Deployment, client: str, **form: str) -> str:
    response = httpx.post(
        f"{d.keyledger}/oauth2/token",
        data={"grant_type": "client_credentials", **form},
        auth=(d.clients[f"{client}_CLIENT_ID"], d.clients[f"{client}_CLIENT_SECRET"]),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_the_readme_set_up_registers_both_clients(deployment: Deployment) -> None:
    assert set(deployment.clients) >= {
        "ORDERS_CLIENT_ID",
        "ORDERS_CLIENT_SECRET",
        "STOCK_CLIENT_ID",
        "STOCK_CLIENT_SECRET",
    }


def test_forty_concurrent_orders_share_one_token(deployment: Deployment) -> None:
    stock_port, orders_port = free_port(), free_port()
    with stock_api(deployment, stock_port), orders(deployment, stock_port, orders_port):
        replies = asyncio.run(place_orders(orders_port, 40))
    assert [r.status_code for r in replies] == [201] * 40
    assert tokens_issued(deployment.database_url, deployment.clients["ORDERS_CLIENT_ID"]) == 1


def test_orders_fetches_a_new_token_shortly_before_the_old_one_expires(
    deployment: Deployment,
) -> None:
    client_id = deployment.clients["ORDERS_CLIENT_ID"]
    assert cli(deployment.env, "clients", "set-token-ttl", client_id, "60").returncode == 0
    time.sleep(1.2)  # the server's read model follows the log within a second
    stock_port, orders_port = free_port(), free_port()
    # 60 s tokens refreshed 57 s early: the second token is due 3 s after the first.
    with (
        stock_api(deployment, stock_port),
        orders(deployment, stock_port, orders_port, TOKEN_REFRESH_MARGIN="57"),
    ):
        first = asyncio.run(place_orders(orders_port, 20))
        assert tokens_issued(deployment.database_url, client_id) == 1
        time.sleep(3.5)
        second = asyncio.run(place_orders(orders_port, 20))
    assert [r.status_code for r in first + second] == [201] * 40
    assert tokens_issued(deployment.database_url, client_id) == 2


def test_the_stock_api_answers_rfc_6750_errors(deployment: Deployment) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    reserve_only = token_for(deployment, "ORDERS")
    not_for_stock = token_for(deployment, "STOCK")  # its aud is keyledger itself
    with stock_api(deployment, port):
        anonymous = httpx.get(f"{base}/stock")
        garbage = httpx.get(f"{base}/stock", headers={"Authorization": "Bearer not.a.jwt"})
        wrong_scope = httpx.get(
            f"{base}/stock", headers={"Authorization": f"Bearer {reserve_only}"}
        )
        wrong_audience = httpx.post(
            f"{base}/stock/apple/reserve",
            json={"quantity": 1},
            headers={"Authorization": f"Bearer {not_for_stock}"},
        )
        bad_body = httpx.post(
            f"{base}/stock/apple/reserve",
            content=b"{not json",
            headers={"Authorization": f"Bearer {reserve_only}", **JSON},
        )
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (
        401,
        'Bearer realm="stock"',
    )
    assert (garbage.status_code, garbage.json()["error"]) == (401, "invalid_token")
    assert (wrong_scope.status_code, wrong_scope.json()["error"]) == (403, "insufficient_scope")
    assert 'error="insufficient_scope"' in wrong_scope.headers["www-authenticate"]
    assert (wrong_audience.status_code, wrong_audience.json()["error"]) == (401, "invalid_token")
    assert bad_body.status_code == 400


def test_the_introspecting_stock_api_refuses_a_revoked_token_at_once(
    deployment: Deployment,
) -> None:
    port = free_port()
    token = token_for(deployment, "ORDERS")
    owner = (deployment.clients["ORDERS_CLIENT_ID"], deployment.clients["ORDERS_CLIENT_SECRET"])
    revoked = httpx.post(f"{deployment.keyledger}/oauth2/revoke", data={"token": token}, auth=owner)
    assert revoked.status_code == 200
    with stock_api(deployment, port, "--validate", "introspect"):
        reply = httpx.post(
            f"http://127.0.0.1:{port}/stock/apple/reserve",
            json={"quantity": 1},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert (reply.status_code, reply.json()["error"]) == (401, "invalid_token")


def test_orders_replaces_a_token_the_stock_api_stopped_accepting(deployment: Deployment) -> None:
    client_id = deployment.clients["ORDERS_CLIENT_ID"]
    stock_port, orders_port = free_port(), free_port()
    with (
        stock_api(
            deployment, stock_port, "--validate", "introspect", INTROSPECTION_CACHE_SECONDS="0.5"
        ),
        orders(deployment, stock_port, orders_port),
    ):
        assert [r.status_code for r in asyncio.run(place_orders(orders_port, 3))] == [201] * 3
        time.sleep(1.1)  # tokens issued within the cut-off's second count as before it
        assert cli(deployment.env, "clients", "revoke-tokens", client_id, "--yes").returncode == 0
        time.sleep(1.5)  # every replica (and the stock API's cache) has seen it
        after = asyncio.run(place_orders(orders_port, 3))
    assert [r.status_code for r in after] == [201] * 3
    assert tokens_issued(deployment.database_url, client_id) == 2


def test_orders_answers_400_to_a_malformed_order(deployment: Deployment) -> None:
    stock_port, orders_port = free_port(), free_port()
    with stock_api(deployment, stock_port), orders(deployment, stock_port, orders_port):
        url = f"http://127.0.0.1:{orders_port}/orders"
        replies = [
            httpx.post(url, content=b"{not json", headers=JSON),
            httpx.post(url, json={"quantity": 1}),
            httpx.post(url, json=["apple"]),
            httpx.post(url, json={"sku": "apple", "quantity": "many"}),
        ]
    assert [r.status_code for r in replies] == [400] * 4
    assert tokens_issued(deployment.database_url, deployment.clients["ORDERS_CLIENT_ID"]) == 0
