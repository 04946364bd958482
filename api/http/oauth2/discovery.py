"""Authorization server metadata, RFC 8414 §2, describing exactly what is served.

One document at two addresses: RFC 8414 §3's `/.well-known/oauth-authorization-server` and
`/.well-known/openid-configuration`, where OpenID clients (openid-client's default
`discovery()`) look first. RFC 8414 §5: "Despite the reuse of these apparently
OpenID-specific identifiers, their usage in this specification is actually referring to a
general OAuth 2.0 feature and is not specific to OpenID Connect." So the second address
serves the same OAuth document, claiming nothing of OpenID Connect: no `userinfo_endpoint`,
`subject_types_supported` or `id_token_signing_alg_values_supported`, since keyledger issues
no ID tokens.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from api.http.runtime import runtime_of
from api.settings import Settings
from domain.client_keys import ASSERTION_ALGORITHMS

# Every OAuth endpoint takes the same three (RFC 6749 §2.3.1, RFC 7523 §2.2).
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

# RFC 8414 §2 makes this member REQUIRED, with no exception for a server without an
# authorization endpoint: "JSON array containing a list of the OAuth 2.0 "response_type"
# values that this authorization server supports". An empty array says it best, but
# validators refuse one (Authlib: '"response_types_supported" is required'). `none` is the
# registered value that obtains nothing at an authorization endpoint (OAuth 2.0 Multiple
# Response Type Encoding Practices §4: "the Authorization Server SHOULD NOT return an OAuth
# 2.0 Authorization Code, Access Token, Access Token Type, or ID Token"): with no
# `authorization_endpoint` and only `client_credentials` among the grant types, it claims
# no front-channel flow, and no client can use it to get anything.
RESPONSE_TYPES = ("none",)


def metadata(settings: Settings) -> dict[str, Any]:
    issuer = settings.issuer_url
    return {
        "issuer": issuer,
        "token_endpoint": settings.token_endpoint,
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": list(RESPONSE_TYPES),
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


@get(
    ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"],
    summary="RFC 8414 metadata (the same OAuth document at both addresses)",
    tags=["discovery"],
)
async def authorization_server_metadata(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return metadata(runtime_of(request.app.state).settings)
