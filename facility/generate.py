"""A generated floor file, for demos, benchmarks and tests: ``python -m facility.generate`` writes one to stdout.

The issue's reference floor is the default: 2 sites, 10 rows, 250 racks of
42U with feeds A and B, 40 hosts a rack (10,000), 1U and 2U with nameplate draws.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import orjson


def floor_generate(
    *, sites: int = 2, rows_per_site: int = 5, racks_per_row: int = 25, hosts_per_rack: int = 40, seed: int = 1
) -> dict[str, Any]:
    """A floor document in the ``inventory_import`` format; the same for the same arguments."""
    rng = random.Random(seed)
    floor: dict[str, list[dict[str, Any]]] = {k: [] for k in ("sites", "rooms", "rows", "racks", "feeds", "units")}
    number = 0
    for s in range(sites):
        site = f"S{s + 1}"
        floor["sites"].append({"name": site})
        floor["rooms"].append({"site": site, "name": "H1"})
        for r in range(rows_per_site):
            row = chr(ord("A") + r)
            floor["rows"].append({"site": site, "room": "H1", "name": row, "order": r})
            for k in range(racks_per_row):
                rack = f"{site}-{row}{k + 1:02d}"
                floor["racks"].append({"name": rack, "site": site, "room": "H1", "row": row, "order": k})
                for side in ("A", "B"):
                    floor["feeds"].append(
                        {"rack": rack, "side": side, "pdu": f"{rack}-pdu-{side.lower()}", "amps": 32, "volts": 230}
                    )
                unit = 1
                for i in range(hosts_per_rack):
                    # Two 2U hosts at the bottom, 1U above: 40 hosts fill 42U exactly.
                    height = 2 if i < 2 else 1
                    if unit + height - 1 > 42:
                        break
                    number += 1
                    floor["units"].append(
                        {"hostname": f"node-{number:05d}", "rack": rack, "unit": unit, "height_u": height,
                         "nameplate_watts": float(rng.choice((250, 350, 450, 750)))}
                    )  # fmt: skip
                    unit += height
    return floor


if __name__ == "__main__":
    sys.stdout.buffer.write(orjson.dumps(floor_generate(), option=orjson.OPT_INDENT_2))
