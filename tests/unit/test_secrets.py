"""Client secrets: generated, prefixed, hashed with a pepper, compared in constant time."""

import base64
import stat
from pathlib import Path

from adapters.client_secrets import SecretHasher, generate_secret
from adapters.installation import read_secrets

PEPPER = b"p" * 32


def test_secrets_carry_the_scanner_prefix_and_256_random_bits() -> None:
    secret = generate_secret()
    assert secret.startswith("kl_secret_")
    raw = base64.urlsafe_b64decode(secret.removeprefix("kl_secret_") + "=")
    assert len(raw) == 32


def test_every_secret_is_different() -> None:
    assert len({generate_secret() for _ in range(1000)}) == 1000


def test_the_stored_hash_does_not_contain_the_secret() -> None:
    secret = generate_secret()
    stored = SecretHasher(PEPPER).hash(secret)
    assert secret not in stored
    assert secret.removeprefix("kl_secret_") not in stored


def test_a_hash_matches_only_its_own_secret() -> None:
    hasher = SecretHasher(PEPPER)
    secret = generate_secret()
    stored = hasher.hash(secret)
    assert hasher.matches(secret, stored)
    assert not hasher.matches(generate_secret(), stored)


def test_the_pepper_changes_the_hash() -> None:
    secret = generate_secret()
    assert SecretHasher(PEPPER).hash(secret) != SecretHasher(b"q" * 32).hash(secret)


def test_the_pepper_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = read_secrets(tmp_path, None, None, create=True).pepper
    assert read_secrets(tmp_path, None, None, create=True).pepper == first
    mode = stat.S_IMODE((tmp_path / "secret-pepper").stat().st_mode)
    assert mode == 0o600


def test_a_configured_pepper_wins_over_the_file(tmp_path: Path) -> None:
    assert read_secrets(tmp_path, None, "x" * 40, create=True).pepper == b"x" * 40
    assert not (tmp_path / "secret-pepper").exists()
