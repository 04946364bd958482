"""`ClientSettings`: what an admin chooses for a client, validated as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from domain.scope import ScopeSyntaxError, is_scope_token

MIN_TOKEN_TTL = 60
MAX_TOKEN_TTL = 86_400
DEFAULT_TOKEN_TTL = 300
MAX_NAME_LENGTH = 200


class InvalidClientSettings(ValueError):
    """A client setting outside what the model allows; the message names the setting."""


@dataclass(frozen=True)
class ClientSettings:
    """What an admin chooses for a client, validated as a whole."""

    name: str
    allowed_scopes: tuple[str, ...]
    default_scopes: tuple[str, ...]
    token_ttl: int
    audiences: tuple[str, ...]
    default_audience: str | None = None

    @classmethod
    def create(
        cls,
        *,
        name: str,
        allowed_scopes: frozenset[str] | set[str] | list[str] | tuple[str, ...],
        default_scopes: frozenset[str] | set[str] | list[str] | tuple[str, ...] | None = None,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        audiences: frozenset[str] | set[str] | list[str] | tuple[str, ...] = (),
        default_audience: str | None = None,
    ) -> ClientSettings:
        """Validate and normalise; default scopes default to all allowed scopes."""
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
            raise InvalidClientSettings(f"name must be 1 to {MAX_NAME_LENGTH} printable characters")
        allowed = _scope_tokens(allowed_scopes)
        defaults = allowed if default_scopes is None else _scope_tokens(default_scopes)
        if not set(defaults) <= set(allowed):
            extra = " ".join(sorted(set(defaults) - set(allowed)))
            raise InvalidClientSettings(f"default scopes not in the allowed scopes: {extra}")
        if isinstance(token_ttl, bool) or not MIN_TOKEN_TTL <= token_ttl <= MAX_TOKEN_TTL:
            raise InvalidClientSettings(
                f"token lifetime must be {MIN_TOKEN_TTL} to {MAX_TOKEN_TTL} seconds"
            )
        valid_audiences = tuple(sorted({_audience(a) for a in audiences}))
        if default_audience is not None and default_audience not in valid_audiences:
            raise InvalidClientSettings(
                f"the default audience is not one of the allowed audiences: {default_audience!r}"
            )
        return cls(
            name=name,
            allowed_scopes=allowed,
            default_scopes=defaults,
            token_ttl=token_ttl,
            audiences=valid_audiences,
            default_audience=default_audience,
        )


Scopes = frozenset[str] | set[str] | list[str] | tuple[str, ...]


def _scope_tokens(
    tokens: frozenset[str] | set[str] | list[str] | tuple[str, ...],
) -> tuple[str, ...]:
    for token in tokens:
        if not is_scope_token(token):
            raise InvalidClientSettings(str(ScopeSyntaxError(token, token)))
    return tuple(sorted(set(tokens)))


def _audience(value: str) -> str:
    """RFC 8707 §2: an absolute URI, without a fragment component."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a malformed host or port raises here, not in urlsplit
    except ValueError:
        parts = None
    if (
        parts is None
        or not parts.scheme
        or "#" in value
        or not value.isprintable()
        or any(c.isspace() for c in value)
        or value != value.strip()
    ):
        raise InvalidClientSettings(f"audience must be an absolute URI without fragment: {value!r}")
    return value
