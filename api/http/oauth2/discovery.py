"""Authorization server metadata, RFC 8414 §2, describing exactly what is served."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from api.http.runtime import runtime_of
from api.settings import Settings
from domain.client_keys import ASSERTION_ALGORITHMS

# Every OAuth endpoint takes the same three (RFC 6749 §2.3.1, RFC 7523 §2.2).
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def metadata(settings: Settings) -> dict[str, Any]:
    issuer = settings.issuer_url
    return {
        "issuer": issuer,
        "token_endpoint": settings.token_endpoint,
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "grant_types_supported": ["client_credentials"],
        # REQUIRED by RFC 8414; keyledger has no authorization endpoint, so none.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        # RFC 8414 §2: the JWS algorithms private_key_jwt assertions may be signed with.
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": [],
    }


@get("/.well-known/oauth-authorization-server", summary="RFC 8414 metadata", tags=["discovery"])
async def authorization_server_metadata(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return metadata(runtime_of(request.app.state).settings)
