"""`make bench`: what private_key_jwt adds to a token request (issue 8).

Two costs a client secret does not have: checking the assertion (signature and claims, per
algorithm) and recording its `jti` once in PostgreSQL (a committed insert per request, shared
by every replica). Timed in-process over fresh assertions, beside the secret's keyed hash.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from adapters.assertion_ids import UsedAssertionIds
from adapters.client_assertion import AssertionRules, AssertionVerifier
from adapters.client_secrets import SecretHasher, generate_secret
from adapters.event_store import Ledger
from bench.common import arguments, fresh_database
from domain.client_record import ClientRecord
from tests.assertions import ISSUER, TOKEN_ENDPOINT, assertion, client_key

COUNT = 2_000


def client(key_jwk: dict[str, object]) -> ClientRecord:
    now = datetime.now(UTC)
    return ClientRecord(
        client_id="bench-client",
        name="bench",
        status="active",
        allowed_scopes=frozenset({"a"}),
        default_scopes=frozenset({"a"}),
        token_ttl=300,
        audiences=(),
        secrets=(),
        version=1,
        registered_at=now,
        updated_at=now,
        auth_method="private_key_jwt",
        jwks=(key_jwk,),
    )


def main() -> int:
    args = arguments(__doc__).parse_args()
    verifier = AssertionVerifier(AssertionRules(ISSUER, TOKEN_ENDPOINT))
    print(f"\nprivate_key_jwt: per token request, {COUNT:,} fresh assertions each")
    print(f"{'step':<34}{'µs':>10}")
    hasher, secret = SecretHasher(b"p" * 32), generate_secret()
    start = time.perf_counter()
    for _ in range(COUNT):
        hasher.hash(secret)
    print(f"{'client secret: keyed hash':<34}{(time.perf_counter() - start) / COUNT * 1e6:>10.1f}")
    for alg in ("ES256", "EdDSA", "RS256", "PS256"):
        key = client_key(alg)
        record = client(key.public_jwk)
        signed = [assertion(key, record.client_id) for _ in range(COUNT)]
        now = datetime.now(UTC)
        verifier.verify(signed[0], record, now)  # the key is parsed once per client version
        start = time.perf_counter()
        for one in signed:
            verifier.verify(one, record, now)
        per = (time.perf_counter() - start) / COUNT * 1e6
        print(f"{f'assertion check, {alg}':<34}{per:>10.1f}")
    with fresh_database(args.pg) as dsn:
        ledger = Ledger(dsn)
        try:
            used = UsedAssertionIds(ledger.datastore)
            expires, now = datetime.fromtimestamp(time.time() + 300, UTC), datetime.now(UTC)
            start = time.perf_counter()
            for i in range(COUNT):
                assert used.use("bench-client", f"jti-{i}", expires, now)
            per = (time.perf_counter() - start) / COUNT * 1e6
            replayed = not used.use("bench-client", "jti-0", expires, now)
        finally:
            ledger.close()
    print(f"{'jti recorded once, PostgreSQL':<34}{per:>10.1f}")
    print(f"replay refused: {replayed}")
    return 0 if replayed else 1


if __name__ == "__main__":
    sys.exit(main())
