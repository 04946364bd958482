"""`keyledger ledger verify | export`: audit the event store's history against its checkpoints.

Both read the store directly and need no server, no key-encryption key and no pepper: an
auditor with read access to the database (or only an export) and the ledger's public key can
run them anywhere.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from api.cli import options as o
from api.cli.output import CliError, emit, emit_json, table
from api.cli.remote import AdminApi

if TYPE_CHECKING:
    from adapters.event_store import Ledger
    from api.usecases.ledger_verification import VerificationReport

READS_STORE = (
    "Reads the event store at --database-url (default: KEYLEDGER_DATABASE_URL); needs no "
    "server and no installation secrets."
)


@click.group(
    short_help="The verifiable ledger: checkpoints, proofs, verify, export.",
    help="The Merkle tree over every event, its signed checkpoints and their proofs. "
    "checkpoint, prove, consistency, keys and rotate-key go through the admin API; "
    "verify and export read the store itself.",
)
def ledger() -> None:
    pass


def _database_url(given: str | None) -> str:
    if given:
        return given
    from api.settings import Settings

    return Settings.from_env().database_url


@contextmanager
def _store(database_url: str) -> Iterator[Ledger]:
    from adapters.event_store import Ledger, NotInstalled

    try:
        store = Ledger(database_url, create=False)
    except NotInstalled as exc:
        raise CliError(str(exc)) from None
    try:
        yield store
    finally:
        store.close()


database_url_option = click.option(
    "--database-url",
    metavar="URL",
    help="The event store to read (default: KEYLEDGER_DATABASE_URL, else the default store).",
)
archives_option = click.option(
    "--archives",
    "--archive-dir",  # its first name, when it took directories only
    "archives",
    metavar="DIR|S3URL",
    help="Where the archives of token events removed by retention are (a directory or "
    "s3://bucket/prefix), when not where each "
    "removal recorded them; their events are read with the store's.",
)


@ledger.command(
    help="Recompute the tree from the events and check every checkpoint against it. "
    + READS_STORE
    + " Exit status 1 when anything differs.",
    epilog=o.example(
        "keyledger ledger verify --key 'auth.example.com/ledger+1a2b3c4d+AcW...'",
        "keyledger ledger verify --export history.jsonl --checkpoint kept.note --key ...",
    ),
)
@database_url_option
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="VERIFIER_KEY",
    help="A ledger public key as name+keyid+base64 (GET /ledger/keys); repeatable. "
    "Without one, the store's own keys are used, which proves less.",
)
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A checkpoint note kept elsewhere; repeatable.",
)
@click.option(
    "--audit-topic",
    is_flag=True,
    help="Recompute from the audit topic (KEYLEDGER_KAFKA_* and KEYLEDGER_AUDIT_TOPIC) instead "
    "of the store, and check the checkpoints published there too.",
)
@click.option(
    "--export",
    "export_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Recompute from this export instead of the store.",
)
@archives_option
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def verify(
    database_url: str | None,
    keys: tuple[str, ...],
    checkpoint_files: tuple[Path, ...],
    audit_topic: bool,
    export_file: Path | None,
    archives: str | None,
    as_json: bool,
) -> None:
    from adapters.ledger_signer import ed25519_verify
    from adapters.ledger_sources import ExportEntries, ExportError, StoreEntries
    from api.usecases.ledger_verification import verify_ledger
    from domain.checkpoint import CheckpointError, NoteKey

    try:
        verifier_keys = [NoteKey.decode(k) for k in keys]
    except CheckpointError as exc:
        raise CliError(f"--key: {exc}") from None
    try:
        notes = [(str(p), p.read_text(encoding="utf-8")) for p in checkpoint_files]
        if export_file is not None and not export_file.is_file():
            raise FileNotFoundError(f"no export at {export_file}")
    except OSError as exc:
        raise CliError(
            f"cannot read {exc.filename or exc}: {exc.strerror or 'not found'}"
        ) from None
    except UnicodeDecodeError:
        raise CliError("a --checkpoint file is not a text note") from None
    url = None if export_file is not None and database_url is None else database_url
    if audit_topic:
        if not verifier_keys:
            raise CliError("--audit-topic needs --key: the topic alone cannot vouch for its keys")
        report = _verify_topic(notes, verifier_keys)
        _show(report, as_json)
        if not report.ok:
            sys.exit(1)
        return
    try:
        if url is None and export_file is not None:
            report = verify_ledger(ExportEntries(export_file), notes, verifier_keys, ed25519_verify)
        else:
            with _store(_database_url(url)) as store:
                tables = _tables(store)
                stored = [
                    (f"stored checkpoint {c.size}", c.note) for c in tables.checkpoints(limit=10**9)
                ]
                if not verifier_keys:
                    verifier_keys = _store_keys(store)
                    click.echo(
                        "note: no --key given: trusting the store's own ledger keys", err=True
                    )
                source: Any = (
                    ExportEntries(export_file)
                    if export_file
                    else StoreEntries(tables, _archived(store, archives))
                )
                with _archives_readable():
                    report = verify_ledger(
                        source, [*stored, *notes], verifier_keys, ed25519_verify, recorded=tables
                    )
    except ExportError as exc:
        raise CliError(str(exc)) from None
    _show(report, as_json)
    if not report.ok:
        sys.exit(1)


def _verify_topic(notes: list[tuple[str, str]], keys: list[Any]) -> VerificationReport:
    from adapters.ledger_signer import ed25519_verify
    from adapters.ledger_sources import AuditTopicEntries, ExportError
    from api.bootstrap import kafka_config
    from api.settings import Settings
    from api.usecases.ledger_verification import verify_ledger

    settings = Settings.from_env()
    source = AuditTopicEntries(kafka_config(settings), settings.audit_topic)
    try:
        source.entries()  # read once: the topic's checkpoints join the given ones
    except (ExportError, TimeoutError, OSError) as exc:
        raise CliError(f"reading {settings.audit_topic}: {exc}") from None
    except Exception as exc:  # aiokafka's errors: the broker, its TLS or SASL
        raise CliError(f"reading {settings.audit_topic}: {type(exc).__name__}: {exc}") from None
    return verify_ledger(source, [*source.notes, *notes], keys, ed25519_verify)


def _archived(store: Ledger, archives: str | None) -> list[Iterator[Any]]:
    """The rows of every archive retention removed from the store, each archive found and
    its manifest checked against the hash its removal recorded now; each is verified whole
    when first read (an `ArchiveError` then)."""
    from adapters.removed_archives import archive_of
    from api.usecases.token_retention import removed_periods
    from domain.token_periods import TokenPeriod
    from domain.token_retention import ArchiveError

    archived = []
    for removed in removed_periods(store):
        try:
            archive = archive_of(removed, archives)
        except ArchiveError as exc:
            raise CliError(f"{exc}: its {removed.events} events {_ARCHIVE_HINT}") from None
        archived.append(archive.rows(TokenPeriod.named(removed.period)))
    return archived


_ARCHIVE_HINT = "cannot be read (--archives names where the archives are)"


@contextmanager
def _archives_readable() -> Iterator[None]:
    from adapters.token_archives import ArchiveError

    try:
        yield
    except ArchiveError as exc:
        raise CliError(f"an archive of removed token events {_ARCHIVE_HINT}: {exc}") from None


def _tables(store: Ledger) -> Any:
    from api.bootstrap import ledger_tables

    tables = ledger_tables(store)
    tables.create()
    return tables


def _store_keys(store: Ledger) -> list[Any]:
    from eventsourcing.application import AggregateNotFoundError

    from adapters.ledger_signer import note_key
    from domain.ledger_keys import LEDGER_KEYS_ID

    try:
        keys: Any = store.repository.get(LEDGER_KEYS_ID)
    except AggregateNotFoundError:
        return []
    return [note_key(k) for k in keys.keys]


def _show(report: VerificationReport, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "events": report.events,
                "recorded_size": report.recorded_size,
                "checkpoints": [dataclasses.asdict(c) for c in report.checkpoints],
                "difference": dataclasses.asdict(report.difference) if report.difference else None,
                "problems": report.problems,
            }
        )
        return
    emit(f"events: {report.events}, tree records {report.recorded_size or 0} leaves")
    for check in report.checkpoints:
        size = "?" if check.size is None else check.size
        detail = f" ({check.detail})" if check.detail else ""
        emit(f"checkpoint {size} from {check.source}: {check.status}{detail}")
    if report.difference is not None:
        d = report.difference
        emit(f"first difference at index {d.index} (position {d.position}): {d.kind}: {d.detail}")
    for problem in report.problems:
        emit(f"problem: {problem}")
    emit("verified: the store matches every checkpoint" if report.ok else "NOT VERIFIED")


@ledger.command(
    help="Write every event (position, identity, topic, stored state) as JSON Lines, for "
    "`ledger verify --export` elsewhere; the events of months retention removed are read "
    "from their archives and written at their positions. " + READS_STORE,
    epilog=o.example("keyledger ledger export --output history.jsonl"),
)
@database_url_option
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The file to write (default: standard output).",
)
@archives_option
def export(database_url: str | None, output: Path | None, archives: str | None) -> None:
    from adapters.ledger_sources import with_archived, write_export
    from api.bootstrap import ledger_tables

    with _store(_database_url(database_url)) as store:
        rows = with_archived(ledger_tables(store), _archived(store, archives))
        with _archives_readable():
            if output is None:
                count = write_export(rows, sys.stdout)
            else:
                with output.open("w", encoding="utf-8") as out:
                    count = write_export(rows, out)
    click.echo(f"exported {count} events", err=True)


@ledger.command(
    short_help="Ask for a checkpoint now and print it.",
    help="Ask the server for a checkpoint now; print the signed note (C2SP tlog-checkpoint) "
    "once the ledger builder has signed it (the server waits up to 10 s). "
    "Needs keyledger:admin:keys.",
    epilog=o.example(
        'keyledger ledger checkpoint --reason "quarterly audit" > kept/$(date +%F).note'
    ),
)
@o.reason
@o.as_json
@o.remote
def checkpoint(api: AdminApi, reason: str | None, as_json: bool) -> None:
    answer = api.call("POST", "/admin/ledger/checkpoints", body={"reason": reason})
    if as_json:
        emit_json(answer)
    elif answer["checkpoint"] is None:
        raise CliError(
            f"the request is recorded at position {answer['position']}, but no ledger "
            "builder signed a checkpoint within 10 s (is KEYLEDGER_LEDGER_IN_SERVE off?)"
        )
    else:
        click.echo(answer["checkpoint"]["note"], nl=False)


@ledger.command(
    short_help="An event's inclusion proof.",
    help="The inclusion proof of one event in the tree of a checkpoint (the latest by "
    "default): its leaf and audit path, checked here against the checkpoint the server "
    "returns. Name the event by its position (the audit message's `sequence`) or by "
    "--aggregate and --version.",
    epilog=o.example(
        "keyledger ledger prove --position 4711",
        "keyledger ledger prove --aggregate 6f1c...e2 --version 3 --json",
    ),
)
@click.option("--position", type=click.IntRange(min=1), help="the event's audit sequence")
@click.option("--aggregate", type=click.UUID, help="the event's aggregate id")
@click.option("--version", "version_", type=click.IntRange(min=1), help="the event's version")
@click.option("--size", type=click.IntRange(min=1), help="the tree size (a checkpoint's)")
@o.as_json
@o.remote
def prove(
    api: AdminApi,
    position: int | None,
    aggregate: Any,
    version_: int | None,
    size: int | None,
    as_json: bool,
) -> None:
    if position is None and (aggregate is None or version_ is None):
        raise click.UsageError("give --position, or --aggregate and --version")
    answer = api.get(
        "/admin/ledger/proofs/inclusion",
        position=position,
        aggregate=None if aggregate is None else str(aggregate),
        version=version_,
        size=size,
    )
    verdict = _check_inclusion(answer)
    if as_json:
        emit_json({**answer, "verified": verdict})
        return
    emit(f"event at position {answer['position']} is leaf {answer['index']} of {answer['size']}")
    emit(f"leaf hash {answer['leaf_hash']}; path of {len(answer['path'])} hashes")
    emit(verdict)


def _check_inclusion(answer: dict[str, Any]) -> str:
    import base64

    from domain.checkpoint import Checkpoint, CheckpointError
    from domain.merkle_tree import leaf_hash, verify_inclusion

    note = answer.get("checkpoint")
    if not note:
        return "no checkpoint of that size to check against"
    try:
        body = note[: note.rfind("\n\n") + 1]
        root = Checkpoint.parse(body).root
    except (CheckpointError, ValueError):
        return "the checkpoint returned cannot be read"
    leaf = leaf_hash(base64.b64decode(answer["entry"]))
    path = [base64.b64decode(p) for p in answer["path"]]
    if verify_inclusion(leaf, answer["index"], answer["size"], path, root):
        return "verified against the checkpoint's root (check its signature with the key)"
    raise CliError("the proof does NOT verify against the checkpoint's root")


@ledger.command(
    short_help="A consistency proof between two tree sizes.",
    help="The proof that the tree at TO extends the tree at FROM (RFC 9162 §2.1.4).",
    epilog=o.example("keyledger ledger consistency 1200 5400"),
)
@click.argument("from_size", metavar="FROM", type=click.IntRange(min=1))
@click.argument("to_size", metavar="TO", type=click.IntRange(min=1))
@o.as_json
@o.remote
def consistency(api: AdminApi, from_size: int, to_size: int, as_json: bool) -> None:
    answer = api.get("/admin/ledger/proofs/consistency", **{"from": from_size, "to": to_size})
    if as_json:
        emit_json(answer)
        return
    emit(f"tree {answer['from']} -> {answer['to']}: {len(answer['proof'])} hashes")
    for digest in answer["proof"]:
        emit(digest)


@ledger.command(
    "keys",
    short_help="The ledger's public keys.",
    help="Every ledger public key, as the verifier keys `ledger verify --key` takes.",
    epilog=o.example("keyledger ledger keys -q > ledger.keys"),
)
@o.as_json
@o.quiet
@o.remote
def ledger_keys(api: AdminApi, as_json: bool, quiet: bool) -> None:
    answer = api.get("/ledger/keys")
    if as_json:
        emit_json(answer)
    elif quiet:
        for key in answer["keys"]:
            emit(key["verifier_key"])
    else:
        rows = [
            [k["name"], k["key_id"], k["generated_at"], k["verifier_key"]] for k in answer["keys"]
        ]
        table(["name", "key id", "generated", "verifier key"], rows)


@ledger.command(
    "rotate-key",
    short_help="A new checkpoint-signing key.",
    help="A new ledger key signs every checkpoint from now on; earlier checkpoints keep "
    "verifying with theirs. Needs keyledger:admin:keys.",
    epilog=o.example('keyledger ledger rotate-key --reason "yearly"'),
)
@o.reason
@o.as_json
@o.remote
def rotate_key(api: AdminApi, reason: str | None, as_json: bool) -> None:
    answer = api.call("POST", "/admin/ledger/keys/rotate", body={"reason": reason})
    if as_json:
        emit_json(answer)
    else:
        emit(answer["key"]["verifier_key"])
