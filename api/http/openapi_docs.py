"""The parts of the OpenAPI document that Litestar's schema generation cannot see.

Token (RFC 6749 §4.4), introspection (RFC 7662) and revocation (RFC 7009) are ASGI routes
that read their own form bodies, and admin commands read `If-Match` themselves, so
`complete_openapi` adds them at startup. Request bodies the server refuses unknown fields
in are documented closed (`ClosedStructs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

# Litestar's own Struct schema plugin: no public name yet (litestar 2.25).
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.enums import ParamType
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)

from api.http.oauth2.form import MAX_FORM_BYTES

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

_STRING = Schema(type=OpenAPIType.STRING)
_INTEGER = Schema(type=OpenAPIType.INTEGER)
_ERROR = OpenAPIMediaType(
    schema=Schema(
        type=OpenAPIType.OBJECT,
        required=["error", "error_description"],
        properties={"error": _STRING, "error_description": _STRING},
    )
)
_NO_STORE: dict[str, OpenAPIHeader | Reference] = {
    "Cache-Control": OpenAPIHeader(schema=_STRING, description="no-store")
}
_FORM = "application/x-www-form-urlencoded"
CLIENT_AUTH = "client_basic"  # the security scheme: client_secret_basic (RFC 6749 §2.3.1)


class ClosedStructs(StructSchemaPlugin):
    """A Struct with `forbid_unknown_fields` is `additionalProperties: false`, as it parses."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        config = getattr(field_definition.type_, "__struct_config__", None)
        if isinstance(config, msgspec.structs.StructConfig) and config.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


def _error(
    description: str, headers: dict[str, OpenAPIHeader | Reference] | None = None
) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"application/json": _ERROR},
        headers={**_NO_STORE, **(headers or {})},
    )


def _json(schema: Schema, description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"application/json": OpenAPIMediaType(schema=schema)},
        headers=_NO_STORE,
    )


def _form(required: list[str], properties: dict[str, Schema | Reference]) -> RequestBody:
    return RequestBody(
        required=True,
        content={
            _FORM: OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.OBJECT, required=required, properties=properties)
            )
        },
    )


# The three client authentication methods every OAuth endpoint takes (one per request).
_CLIENT_FIELDS: dict[str, Schema | Reference] = {
    "client_id": _STRING,
    "client_secret": _STRING,
    "client_assertion_type": Schema(
        type=OpenAPIType.STRING,
        enum=["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
    ),
    "client_assertion": Schema(
        type=OpenAPIType.STRING, description="RFC 7523 §2.2: a JWT signed with a registered key"
    ),
}
_CLIENT_AUTH_TEXT = (
    "The client authenticates with HTTP Basic (client_secret_basic, form-url-encoded id and "
    "secret), with client_id and client_secret in the body (client_secret_post), or, if it "
    "registered public keys, with a signed JWT in client_assertion (private_key_jwt, "
    "RFC 7523); one method only."
)
# What every OAuth endpoint may answer before it looks at its own parameters.
_REFUSALS: dict[str, OpenAPIResponse] = {
    "400": _error(
        "invalid_request: not form-url-encoded, a repeated or malformed parameter, "
        "or the body is not UTF-8"
    ),
    "401": _error(
        "invalid_client: client authentication failed (one description for every cause)",
        {"WWW-Authenticate": OpenAPIHeader(schema=_STRING, description="Basic")},
    ),
    "413": _error(f"invalid_request: the body is over {MAX_FORM_BYTES} bytes"),
    "429": _error(
        "too_many_requests: too many failed authentications from this client or address "
        "(or, at the token endpoint, the client's quota is used up)",
        {"Retry-After": OpenAPIHeader(schema=_INTEGER, description="seconds")},
    ),
    "503": _error("temporarily_unavailable: the event store cannot record this now; retry"),
}

TOKEN_OPERATION = Operation(
    tags=["oauth2"],
    summary="Exchange client credentials for an access token",
    description="RFC 6749 §4.4 client_credentials grant. " + _CLIENT_AUTH_TEXT,
    operation_id="token",
    request_body=_form(
        ["grant_type"],
        {
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
            **_CLIENT_FIELDS,
        },
    ),
    responses={
        "200": _json(
            Schema(
                type=OpenAPIType.OBJECT,
                required=["access_token", "token_type", "expires_in", "scope"],
                properties={
                    "access_token": _STRING,
                    "token_type": Schema(type=OpenAPIType.STRING, enum=["Bearer"]),
                    "expires_in": _INTEGER,
                    "scope": _STRING,
                },
            ),
            "RFC 6749 §5.1 access token response (an RFC 9068 JWT)",
        ),
        **_REFUSALS,
        "400": _error(
            "invalid_request, unsupported_grant_type, unauthorized_client, invalid_scope "
            "or invalid_target (RFC 6749 §5.2, RFC 8707 §2)"
        ),
    },
    security=[{CLIENT_AUTH: []}, {}],
)

_ACTIVE = Schema(
    type=OpenAPIType.OBJECT,
    required=["active", "scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"],
    properties={
        "active": Schema(const=True),
        "scope": _STRING,
        "client_id": _STRING,
        "sub": _STRING,
        "aud": Schema(one_of=[_STRING, Schema(type=OpenAPIType.ARRAY, items=_STRING)]),
        "iss": _STRING,
        "exp": _INTEGER,
        "iat": _INTEGER,
        "jti": _STRING,
        "token_type": Schema(type=OpenAPIType.STRING, enum=["Bearer"]),
    },
)
_INACTIVE = Schema(
    type=OpenAPIType.OBJECT,
    required=["active"],
    properties={"active": Schema(const=False)},
    additional_properties=False,
)

INTROSPECTION_OPERATION = Operation(
    tags=["oauth2"],
    summary="Is this token active, and what does it carry (RFC 7662)",
    description=(
        "RFC 7662 §2.1. The caller is a client whose allowed scopes include "
        "keyledger:introspect. " + _CLIENT_AUTH_TEXT
    ),
    operation_id="introspect",
    request_body=_form(
        ["token"],
        {
            "token": _STRING,
            "token_type_hint": Schema(type=OpenAPIType.STRING, description="accepted, not needed"),
            **_CLIENT_FIELDS,
        },
    ),
    responses={
        "200": _json(
            Schema(one_of=[_ACTIVE, _INACTIVE]),
            'RFC 7662 §2.2: the claims of an active token, else exactly {"active": false}',
        ),
        **_REFUSALS,
        "403": _error("unauthorized_client: the caller may not introspect tokens"),
    },
    security=[{CLIENT_AUTH: []}, {}],
)

REVOCATION_OPERATION = Operation(
    tags=["oauth2"],
    summary="Revoke one of the caller's own tokens (RFC 7009)",
    description="RFC 7009 §2.1. " + _CLIENT_AUTH_TEXT,
    operation_id="revoke",
    request_body=_form(
        ["token"],
        {
            "token": _STRING,
            "token_type_hint": Schema(type=OpenAPIType.STRING, description="accepted, not needed"),
            **_CLIENT_FIELDS,
        },
    ),
    responses={
        "200": _json(
            Schema(type=OpenAPIType.OBJECT, additional_properties=False),
            "RFC 7009 §2.2: revoked, or not a token of this server (nothing to do)",
        ),
        **_REFUSALS,
        "400": _error(
            "invalid_request, or unauthorized_client: the token belongs to another client"
        ),
    },
    security=[{CLIENT_AUTH: []}, {}],
)

OAUTH_PATHS = {
    "/oauth2/token": PathItem(post=TOKEN_OPERATION),
    "/oauth2/introspect": PathItem(post=INTROSPECTION_OPERATION),
    "/oauth2/revoke": PathItem(post=REVOCATION_OPERATION),
}


# RFC 9110 §13.1.1, read by `api.http.admin.controllers._expected_version`: Litestar handlers cannot
# declare a header they read themselves, so every operation that may answer 412 gets it.
IF_MATCH = Parameter(
    name="If-Match",
    param_in=ParamType.HEADER,
    required=False,
    schema=_STRING,
    description='The client version the command expects, as in its ETag ("7"), or *',
)
# RFC 6750 §3: a bearer-guarded route's 401 and 403 carry the challenge.
_CHALLENGE: dict[str, OpenAPIHeader | Reference] = {
    "WWW-Authenticate": OpenAPIHeader(schema=_STRING, description='Bearer realm="keyledger"')
}


def _document_headers(paths: dict[str, PathItem]) -> None:
    """If-Match where a 412 may answer, the bearer challenge on 401 and 403 (idempotent)."""
    for item in paths.values():
        for operation in (item.get, item.post, item.put, item.patch, item.delete):
            if operation is None:
                continue
            responses = operation.responses or {}
            parameters = operation.parameters or []
            if "412" in responses and IF_MATCH not in parameters:
                operation.parameters = [*parameters, IF_MATCH]
            if {"bearer": []} in (operation.security or []):
                for status in ("401", "403"):
                    response = responses.get(status)
                    if isinstance(response, OpenAPIResponse):
                        response.headers = {**(response.headers or {}), **_CHALLENGE}


def complete_openapi(app: Litestar) -> None:
    """Add what Litestar cannot see: the OAuth endpoints, headers (an `on_startup` hook)."""
    schema = app.openapi_schema
    _document_headers(schema.paths or {})
    schema.paths = {**(schema.paths or {}), **OAUTH_PATHS}
    components = schema.components if isinstance(schema.components, Components) else Components()
    components.security_schemes = {
        **(components.security_schemes or {}),
        CLIENT_AUTH: SecurityScheme(
            type="http",
            scheme="basic",
            description="client_secret_basic: the form-url-encoded client id and secret",
        ),
    }
    schema.components = components
