"""`python -m api.http.ops.readiness_probe`: exit 0 when this container's server is ready.

The image's HEALTHCHECK. Standard library only (the image has no curl, and nothing heavy is
imported every few seconds): `GET /readyz` on the address and port `keyledger serve` reads
from the environment, loopback when it binds every address, ignoring any proxy settings.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

TIMEOUT = 4.0
_EVERY_ADDRESS = ("", "0.0.0.0", "::")


def readiness_url(environ: Mapping[str, str]) -> str:
    """Where `keyledger serve` answers `/readyz`, from its KEYLEDGER_HOST and _PORT."""
    host = environ.get("KEYLEDGER_HOST", "").strip()
    host = "127.0.0.1" if host in _EVERY_ADDRESS else host
    if ":" in host:
        host = f"[{host}]"
    port = environ.get("KEYLEDGER_PORT", "").strip() or "8000"
    scheme = "https" if environ.get("KEYLEDGER_TLS_CERT_FILE", "").strip() else "http"
    return f"{scheme}://{host}:{port}/readyz"


def main() -> int:
    url = readiness_url(os.environ)
    # With TLS, the certificate names the public host, not loopback: the probe asks about
    # readiness, not identity, so it does not check the certificate.
    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=unchecked)
    )
    try:
        with opener.open(url, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except OSError as exc:
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"not ready: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
