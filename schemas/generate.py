"""`make schemas`: one JSON Schema per audit message type, and the AsyncAPI 3.0 document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from projections.alert_format import ALERT_TYPE, alert_schema
from projections.audit_format import all_schemas
from projections.topics import asyncapi_document

HERE = Path(__file__).parent


def _write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(path)


def main() -> None:
    for event_type, schema in all_schemas().items():
        _write(HERE / f"{event_type}.json", schema)
    _write(HERE / f"{ALERT_TYPE}.json", alert_schema())
    _write(HERE / "asyncapi.json", asyncapi_document())


if __name__ == "__main__":
    main()
