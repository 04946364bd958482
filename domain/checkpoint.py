"""Checkpoints of the ledger: C2SP tlog-checkpoint v1 bodies inside C2SP signed-note v1 notes.

    example.com/keyledger            <- origin
    20852163                         <- tree size
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=   <- root hash, base64
                                     <- blank line
    — example.com/keyledger Az3grlgt...   <- em dash, key name, base64(key ID || signature)

Signing and verifying are passed in (Ed25519 lives in an adapter); this module only formats,
parses and applies the rules of both specifications.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from domain.merkle_tree import HASH_SIZE

ED25519 = b"\x01"  # signed-note: "0x01 — Ed25519 signatures as specified by this document."
SIGNATURE_PREFIX = "\u2014 "
# signed-note: "Verifiers ... MUST accept at least up to 16 signatures."
MAX_SIGNATURES = 16
MAX_NOTE_BYTES = 16_384
_DECIMAL = re.compile(r"0|[1-9][0-9]*")

# verify(public_key, signature, message) -> bool
SignatureCheck = Callable[[bytes, bytes, bytes], bool]


class CheckpointError(ValueError):
    """A note or checkpoint that is malformed, unsigned by the expected key, or forged."""


@dataclass(frozen=True)
class Checkpoint:
    """The head of the ledger's tree at one size."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """tlog-checkpoint: origin, size (no leading zeroes), base64 root, each ending in \\n."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(line == "" for line in lines[:-1]):
            raise CheckpointError("a checkpoint is at least three non-empty lines, each ended")
        origin, size, root = lines[0], lines[1], lines[2]
        if not _DECIMAL.fullmatch(size):
            raise CheckpointError(f"the tree size {size!r} is not a decimal without leading zeroes")
        try:
            digest = base64.b64decode(root, validate=True)
        except binascii.Error:
            raise CheckpointError("the root hash is not base64") from None
        if len(digest) != HASH_SIZE:
            raise CheckpointError(f"the root hash is {len(digest)} bytes, not {HASH_SIZE}")
        return cls(origin, int(size), digest)


@dataclass(frozen=True)
class NoteKey:
    """A signed-note Ed25519 key as verifiers know it: name, key ID and public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]."""
        return hashlib.sha256(self.name.encode() + b"\n" + ED25519 + self.public_key).digest()[:4]

    def encoded(self) -> str:
        """The verifier key text used by Go's note package and its tools: name+id+key."""
        key = base64.b64encode(ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{key}"

    @classmethod
    def decode(cls, text: str) -> NoteKey:
        parts = text.strip().split("+", 2)  # the base64 key itself may hold a "+"
        if len(parts) != 3:
            raise CheckpointError("a verifier key reads name+keyid+base64key")
        name, key_id, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError("the verifier key is not base64") from None
        if raw[:1] != ED25519 or len(raw) != 33:
            raise CheckpointError("only Ed25519 verifier keys (type 0x01) are supported")
        key = cls(_valid_name(name), raw[1:])
        if key.key_id.hex() != key_id.lower():
            raise CheckpointError("the verifier key's ID does not match its name and key")
        return key


def _valid_name(name: str) -> str:
    # signed-note: "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus"
    if not name or "+" in name or any(c.isspace() for c in name):
        raise CheckpointError(f"invalid key name {name!r}")
    return name


def sign_note(text: str, key: NoteKey, sign: Callable[[bytes], bytes]) -> str:
    """The note text, a blank line, and one signature line by `key`."""
    _check_text(text)
    signature = base64.b64encode(key.key_id + sign(text.encode())).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{_valid_name(key.name)} {signature}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise CheckpointError("a note's text ends in a newline")
    # signed-note: "MUST NOT contain any ASCII control characters ... other than newline"
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise CheckpointError("a note must not contain control characters")


def open_note(note: str, key: NoteKey, verify: SignatureCheck) -> str:
    """The text of a note signed by `key`; any failure is a CheckpointError."""
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise CheckpointError("the note is too large")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise CheckpointError("a signed note is text, a blank line and signature lines")
    text, lines = note[: cut + 1], note[cut + 2 : -1].split("\n")
    _check_text(text)
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError("the note has too many signatures")
    verified = False
    for line in lines:
        name, raw = _signature_line(line)
        # "Verifiers MUST ignore signatures from unknown keys, even if they share a name or ID"
        if name != key.name or raw[:4] != key.key_id:
            continue
        # "If a signature from a known key fails to verify, clients SHOULD reject the whole note."
        if not verify(key.public_key, raw[4:], text.encode()):
            raise CheckpointError(f"the signature by {name} does not verify")
        verified = True
    if not verified:
        raise CheckpointError(f"the note carries no signature by {key.name}")
    return text


def _signature_line(line: str) -> tuple[str, bytes]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise CheckpointError("a signature line starts with an em dash and a space")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise CheckpointError("a signature is not base64") from None
    if len(raw) < 5:
        raise CheckpointError("a signature is shorter than its key ID")
    return _valid_name(name), raw


def open_checkpoint(note: str, key: NoteKey, verify: SignatureCheck) -> Checkpoint:
    """A checkpoint whose note verifies under `key` and whose origin is the key's name."""
    checkpoint = Checkpoint.parse(open_note(note, key, verify))
    if checkpoint.origin != key.name:
        raise CheckpointError(f"the checkpoint's origin {checkpoint.origin!r} is not {key.name!r}")
    return checkpoint
