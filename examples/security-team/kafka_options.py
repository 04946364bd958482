"""TLS and SASL options for the consumers, as keyledger's own `KEYLEDGER_KAFKA_*` settings.

    --security-protocol SASL_SSL --sasl-mechanism SCRAM-SHA-512 --sasl-username security-team
    --ssl-cafile ca.pem            (the password: KAFKA_SASL_PASSWORD or --sasl-password-file)

The password never goes on the command line, where `ps` shows it to every user.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def add_security_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Kafka TLS and SASL")
    group.add_argument("--security-protocol", choices=PROTOCOLS, default="PLAINTEXT")
    group.add_argument("--sasl-mechanism", choices=MECHANISMS)
    group.add_argument("--sasl-username")
    group.add_argument(
        "--sasl-password-file", type=Path, help="else the KAFKA_SASL_PASSWORD variable"
    )
    group.add_argument("--ssl-cafile", help="PEM CA certificates (default: the system's)")
    group.add_argument("--ssl-certfile", help="PEM client certificate, for mutual TLS")
    group.add_argument("--ssl-keyfile", help="its unencrypted PEM private key")
    group.add_argument("--no-check-hostname", action="store_true", help="check the CA chain only")


def security_kwargs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """aiokafka's arguments for the options given; a usage error for a bad combination."""
    protocol = args.security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        context = create_ssl_context(
            cafile=args.ssl_cafile, certfile=args.ssl_certfile, keyfile=args.ssl_keyfile
        )
        context.check_hostname = not args.no_check_hostname
        kwargs["ssl_context"] = context
    elif args.ssl_cafile or args.ssl_certfile:
        parser.error(f"--ssl-* options need --security-protocol SSL or SASL_SSL, not {protocol}")
    if protocol.startswith("SASL_"):
        password = (
            args.sasl_password_file.read_text().rstrip("\r\n")
            if args.sasl_password_file
            else os.environ.get("KAFKA_SASL_PASSWORD")
        )
        if not (args.sasl_mechanism and args.sasl_username and password):
            parser.error(
                f"{protocol} needs --sasl-mechanism, --sasl-username and a password "
                "(--sasl-password-file or KAFKA_SASL_PASSWORD)"
            )
        kwargs.update(
            sasl_mechanism=args.sasl_mechanism,
            sasl_plain_username=args.sasl_username,
            sasl_plain_password=password,
        )
    elif args.sasl_mechanism or args.sasl_username:
        parser.error(f"--sasl-* options need --security-protocol SASL_*, not {protocol}")
    return kwargs
