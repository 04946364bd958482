"""OpenAPI for the token endpoint, an ASGI route that schema generation cannot see."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    PathItem,
    RequestBody,
    Schema,
)

_STRING = Schema(type=OpenAPIType.STRING)
_ERROR = OpenAPIMediaType(
    schema=Schema(
        type=OpenAPIType.OBJECT,
        required=["error"],
        properties={"error": _STRING, "error_description": _STRING},
    )
)


def _error(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(description=description, content={"application/json": _ERROR})


TOKEN_OPERATION = Operation(
    tags=["oauth2"],
    summary="Exchange client credentials for an access token",
    description=(
        "RFC 6749 §4.4 client_credentials grant. The body is "
        "application/x-www-form-urlencoded. The client authenticates with HTTP Basic "
        "(client_secret_basic, form-url-encoded id and secret), with client_id and "
        "client_secret in the body (client_secret_post), or, if it registered public keys, "
        "with a signed JWT in client_assertion (private_key_jwt, RFC 7523); one method only."
    ),
    operation_id="token",
    request_body=RequestBody(
        required=True,
        content={
            "application/x-www-form-urlencoded": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["grant_type"],
                    properties={
                        "grant_type": Schema(type=OpenAPIType.STRING, enum=["client_credentials"]),
                        "scope": Schema(
                            type=OpenAPIType.STRING,
                            description="space-delimited; omitted: the client's default scopes",
                        ),
                        "resource": Schema(
                            type=OpenAPIType.ARRAY,
                            items=_STRING,
                            description="RFC 8707 resource indicators (repeatable)",
                        ),
                        "client_id": _STRING,
                        "client_secret": _STRING,
                        "client_assertion_type": Schema(
                            type=OpenAPIType.STRING,
                            enum=["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
                        ),
                        "client_assertion": Schema(
                            type=OpenAPIType.STRING,
                            description="RFC 7523 §2.2: a JWT signed with a registered key",
                        ),
                    },
                )
            )
        },
    ),
    responses={
        "200": OpenAPIResponse(
            description="RFC 6749 §5.1 access token response (an RFC 9068 JWT)",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["access_token", "token_type", "expires_in", "scope"],
                        properties={
                            "access_token": _STRING,
                            "token_type": Schema(type=OpenAPIType.STRING, enum=["Bearer"]),
                            "expires_in": Schema(type=OpenAPIType.INTEGER),
                            "scope": _STRING,
                        },
                    )
                )
            },
        ),
        "400": _error("invalid_request, unsupported_grant_type, invalid_scope or invalid_target"),
        "401": _error("invalid_client (with WWW-Authenticate: Basic)"),
        "413": _error("invalid_request: body over 16 KiB"),
        "503": _error("temporarily_unavailable: the event store cannot record the token now"),
    },
)


def document_token_endpoint(app: Litestar) -> None:
    """Add POST /oauth2/token to the app's OpenAPI document (an `on_startup` hook)."""
    schema = app.openapi_schema
    schema.paths = {**(schema.paths or {}), "/oauth2/token": PathItem(post=TOKEN_OPERATION)}
