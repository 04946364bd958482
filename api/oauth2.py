"""The OAuth 2.0 endpoints under `/oauth2`: token (RFC 6749 §3.2) and JWK Set (RFC 7517)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.openapi.datastructures import ResponseSpec

from api.client_auth import extract_credentials
from api.errors import NO_STORE
from api.form import MAX_FORM_BYTES, parse_form, require_form_content_type, single
from domain.oauth_errors import InvalidRequest, UnsupportedGrantType
from domain.policy import TokenRequest

GRANT_TYPE = "client_credentials"


class TokenResponse(msgspec.Struct):
    """RFC 6749 §5.1."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


class ErrorResponse(msgspec.Struct):
    """RFC 6749 §5.2."""

    error: str
    error_description: str | None = None


_ERRORS = {
    400: ResponseSpec(
        ErrorResponse,
        description="invalid_request, invalid_scope, invalid_target, unsupported_grant_type",
    ),
    401: ResponseSpec(ErrorResponse, description="invalid_client"),
    413: ResponseSpec(ErrorResponse, description="body over 16 KiB"),
    503: ResponseSpec(ErrorResponse, description="temporarily_unavailable"),
}


class OAuth2Controller(Controller):
    path = "/oauth2"
    tags = ["oauth2"]

    @post(
        "/token",
        status_code=200,
        request_max_body_size=MAX_FORM_BYTES,
        responses=_ERRORS,
        summary="Exchange client credentials for an access token",
        description=(
            "grant_type=client_credentials as application/x-www-form-urlencoded; "
            "client_secret_basic or client_secret_post; optional scope and resource."
        ),
    )
    async def token(self, request: Request[Any, Any, Any]) -> Response[TokenResponse]:
        require_form_content_type(request.headers.get("content-type"))
        try:
            body = await request.body()
        except ClientException as exc:
            if exc.status_code == 413:
                raise
            raise InvalidRequest("the request body could not be read") from None
        params = parse_form(body, repeatable=frozenset({"resource"}))
        grant_type = single(params, "grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        if grant_type != GRANT_TYPE:
            raise UnsupportedGrantType
        credentials = extract_credentials(
            request.headers.get("authorization"),
            single(params, "client_id"),
            single(params, "client_secret"),
        )
        token_request = TokenRequest(
            scope=single(params, "scope"), resources=tuple(params.get("resource", ()))
        )
        issued = await request.app.state.runtime.issuer.issue(credentials, token_request)
        return Response(issued.response_body(), headers=NO_STORE)

    @get("/jwks", summary="The public keys that verify access tokens (RFC 7517 JWK Set)")
    async def jwks(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        return Response(
            request.app.state.runtime.keys.jwks(), headers={"Cache-Control": "public, max-age=60"}
        )
