"""`make bench`, part two: POST /oauth2/introspect over a working set of 10,000 live tokens.

Starts `keyledger serve` on a fresh PostgreSQL database, registers a resource server (scope
keyledger:introspect) and a client, has the server issue 10,000 tokens, then drives the
introspection endpoint with wrk (a separate process) cycling through all of them.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import tempfile
from pathlib import Path

import httpx

from bench.common import arguments, await_first_token, fresh_database, run_wrk
from tests.e2e.server import cli_json, environment, free_port, serve

LUA = """
local tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %(auth)s"
request = function()
  i = i %% #tokens + 1
  return wrk.format(nil, nil, nil, "token=" .. tokens[i])
end
"""


async def issue_tokens(base: str, client_id: str, secret: str, count: int) -> list[str]:
    tokens: list[str] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=32)) as http:

        async def one() -> None:
            response = await http.post(
                f"{base}/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )
            tokens.append(response.json()["access_token"])

        for start in range(0, count, 500):
            await asyncio.gather(*(one() for _ in range(min(500, count - start))))
    return tokens


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--tokens", type=int, default=10_000)
    args = parser.parse_args()
    with fresh_database(args.pg) as dsn, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = environment(dsn, work / "keys", free_port(), KEYLEDGER_WORKERS=str(args.workers))
        with serve(env, log=work / "serve.log") as base:
            rs = cli_json(
                env,
                "clients",
                "register",
                "--name",
                "orders-api",
                "--scope",
                "keyledger:introspect",
            )
            client = cli_json(
                env, "clients", "register", "--name", "job", "--scope", "x", "--token-ttl", "3600"
            )
            await_first_token(base, client["client_id"], client["client_secret"])
            await_first_token(base, rs["client_id"], rs["client_secret"])
            tokens = asyncio.run(
                issue_tokens(base, client["client_id"], client["client_secret"], args.tokens)
            )
            (work / "tokens.txt").write_text("\n".join(tokens) + "\n")
            auth = base64.b64encode(f"{rs['client_id']}:{rs['client_secret']}".encode()).decode()
            script = work / "introspect.lua"
            script.write_text(LUA % {"tokens": work / "tokens.txt", "auth": auth})
            check = httpx.post(
                f"{base}/oauth2/introspect",
                data={"token": tokens[0]},
                auth=(rs["client_id"], rs["client_secret"]),
            ).json()
            assert check["active"] is True, check
            url = f"{base}/oauth2/introspect"
            run_wrk(url, script, 3, args.connections, args.threads)  # warm-up (fills caches)
            rps, p50, p99, errors = run_wrk(
                url, script, args.duration, args.connections, args.threads
            )
    print(
        f"\nPOST /oauth2/introspect, {len(tokens)} live tokens, wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s, keyledger serve --workers {args.workers}"
    )
    print(f"requests/s {rps:.0f}   p50 {p50:.2f} ms   p99 {p99:.2f} ms   errors {errors}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
