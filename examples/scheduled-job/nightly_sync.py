"""A nightly job: copy the stock levels from the stock API into a CSV file.

It runs, does its work with one access token, and exits; cron (or a Kubernetes CronJob, or a
systemd timer) starts it again tomorrow. Credentials come from the environment, never from
the command line (where `ps` shows them) or a file in the repository:

    CLIENT_ID, CLIENT_SECRET   this job's keyledger client
    KEYLEDGER_URL              keyledger's base URL (default http://127.0.0.1:8000)
    STOCK_URL                  the stock API (default http://127.0.0.1:8001)
    STOCK_AUDIENCE             the stock API's audience (default https://stock.internal)

Exit status: 0 done; 2 keyledger refused the credentials (`invalid_client`); 3 the client
may not have the scope or audience it asked for (`invalid_scope`, `invalid_target`); 1 any
other failure (keyledger or the stock API unreachable, or refusing).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import httpx

SCOPE = "stock:read"  # the one thing this job does: read stock levels

FIXES = {
    "invalid_client": (
        2,
        "keyledger refused this job's credentials. Check CLIENT_ID and CLIENT_SECRET; if the "
        "secret was rotated, the old one stops working when its grace period ends "
        "(keyledger clients show $CLIENT_ID).",
    ),
    "invalid_scope": (
        3,
        f"the client may not request scope {SCOPE!r}. An admin can allow it: "
        "keyledger clients set-scopes $CLIENT_ID --scope stock:read.",
    ),
    "invalid_target": (
        3,
        "the client may not request a token for the stock API's audience. An admin can allow "
        "it: keyledger clients set-audiences $CLIENT_ID https://stock.internal.",
    ),
}


class JobFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def fetch_token(http: httpx.Client, keyledger: str, audience: str) -> str:
    """One token for this run, for reading stock at the stock API and nothing else."""
    metadata = http.get(f"{keyledger}/.well-known/oauth-authorization-server").json()
    try:
        client_id, secret = os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]
    except KeyError as missing:
        raise JobFailed(2, f"{missing.args[0]} is not set") from None
    response = http.post(
        metadata["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": SCOPE, "resource": audience},
        auth=(client_id, secret),
    )
    if response.status_code == 200:
        token: str = response.json()["access_token"]
        return token
    error = response.json().get("error", "") if response.content else ""
    status, fix = FIXES.get(error, (1, f"keyledger answered {response.status_code}"))
    raise JobFailed(status, f"{error or 'error'}: {fix}")


def sync(output: Path) -> int:
    keyledger = os.environ.get("KEYLEDGER_URL", "http://127.0.0.1:8000").rstrip("/")
    stock = os.environ.get("STOCK_URL", "http://127.0.0.1:8001").rstrip("/")
    audience = os.environ.get("STOCK_AUDIENCE", "https://stock.internal")
    with httpx.Client(timeout=30) as http:
        token = fetch_token(http, keyledger, audience)
        reply = http.get(f"{stock}/stock", headers={"Authorization": f"Bearer {token}"})
        if reply.status_code != 200:
            raise JobFailed(1, f"the stock API answered {reply.status_code}: {reply.text}")
        items = reply.json()["items"]
    with output.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["sku", "available"])
        writer.writeheader()
        writer.writerows(items)
    return len(items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("stock.csv"))
    args = parser.parse_args()
    try:
        count = sync(args.output)
    except JobFailed as failed:
        print(f"nightly-sync: {failed}", file=sys.stderr)
        return failed.status
    except (httpx.HTTPError, ValueError, KeyError) as down:
        print(f"nightly-sync: {type(down).__name__}: {down}", file=sys.stderr)
        return 1
    print(f"nightly-sync: wrote {count} items to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
