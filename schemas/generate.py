"""`make schemas`: write one JSON Schema per audit message type into this folder."""

from __future__ import annotations

import json
from pathlib import Path

from projections.audit_format import AUDIT_TYPES, schema_for

HERE = Path(__file__).parent


def main() -> None:
    for event_class, event_type in AUDIT_TYPES.items():
        path = HERE / f"{event_type}.json"
        path.write_text(json.dumps(schema_for(event_class), indent=2) + "\n")
        print(path)


if __name__ == "__main__":
    main()
