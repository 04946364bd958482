"""Checkpoints are C2SP signed notes that other ecosystems' verifiers accept byte for byte."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteKey,
    open_checkpoint,
    open_note,
    sign_note,
)

# The example of golang.org/x/mod/sumdb/note (note.go's package documentation).
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SIGNER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def new_key(name: str = "keyledger.example/ledger") -> tuple[NoteKey, Ed25519PrivateKey]:
    private = Ed25519PrivateKey.generate()
    return NoteKey(name, private.public_key().public_bytes_raw()), private


def test_signing_reproduces_the_go_sumdb_note_example_byte_for_byte() -> None:
    private = Ed25519PrivateKey.from_private_bytes(GO_SIGNER_SEED)
    key = NoteKey("PeterNeumann", private.public_key().public_bytes_raw())
    assert key.encoded() == GO_VERIFIER_KEY
    assert sign_note(GO_TEXT, key, private.sign) == GO_NOTE


def test_the_go_example_opens_with_its_verifier_key_and_fails_once_altered() -> None:
    key = NoteKey.decode(GO_VERIFIER_KEY)
    assert open_note(GO_NOTE, key, ed25519_verify) == GO_TEXT
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), key, ed25519_verify)


def test_a_checkpoint_body_is_origin_size_and_base64_root_each_on_its_line() -> None:
    checkpoint = Checkpoint("keyledger.example/ledger", 20852163, bytes(range(32)))
    assert checkpoint.body() == (
        "keyledger.example/ledger\n20852163\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    )
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


@pytest.mark.parametrize(
    "body",
    [
        "origin\n012\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",  # leading zero
        "origin\n-1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "origin\n12\nAAECAwQF\n",  # not 32 bytes
        "origin\n12\nnot base64!\n",
        "origin\n12\n",
        "origin\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",  # no final newline
        "\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    ],
)
def test_a_malformed_checkpoint_body_is_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)


def test_a_signed_checkpoint_opens_only_under_its_key_and_origin() -> None:
    key, private = new_key()
    checkpoint = Checkpoint(key.name, 7, b"\x07" * 32)
    note = sign_note(checkpoint.body(), key, private.sign)
    assert open_checkpoint(note, key, ed25519_verify) == checkpoint
    other, _ = new_key()
    with pytest.raises(CheckpointError, match="no signature by"):
        open_checkpoint(note, other, ed25519_verify)
    foreign = Checkpoint("elsewhere.example/log", 7, b"\x07" * 32)
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(sign_note(foreign.body(), key, private.sign), key, ed25519_verify)


def test_signatures_by_unknown_keys_are_ignored_and_a_bad_known_one_rejects_the_note() -> None:
    key, private = new_key()
    witness, witness_private = new_key("witness.example/w1")
    body = Checkpoint(key.name, 3, b"\x03" * 32).body()
    cosigned = sign_note(body, key, private.sign) + sign_note(
        body, witness, witness_private.sign
    ).removeprefix(body + "\n")
    assert open_note(cosigned, key, ed25519_verify) == body
    forged = sign_note(body, key, lambda message: private.sign(message + b"x"))
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(forged, key, ed25519_verify)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key.replace("+c74f20a3+", "+c74f20a4+"),
        lambda key: key.replace("+ARpc", "+AhRpc"),
        lambda key: key.replace("PeterNeumann", "Peter Neumann"),
        lambda key: key.rsplit("+", 1)[0],
    ],
)
def test_a_mangled_verifier_key_is_refused(mangle: object) -> None:
    with pytest.raises(CheckpointError):
        NoteKey.decode(mangle(GO_VERIFIER_KEY))  # type: ignore[operator]


def test_control_characters_and_missing_signature_blocks_are_refused() -> None:
    key, private = new_key()
    with pytest.raises(CheckpointError, match="control"):
        sign_note("origin\n1\x07\n", key, private.sign)
    with pytest.raises(CheckpointError):
        open_note("origin\n1\nAAAA\n", key, ed25519_verify)


def test_a_verifier_key_whose_base64_holds_a_plus_sign_decodes() -> None:
    # From the tests of transparency-dev/formats (note/note_cosigv1_test.go).
    text = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
    assert NoteKey.decode(text).encoded() == text
