#!/usr/bin/env python3
"""Reads Prometheus metrics with a parser certplan did not write.

The file named on the command line (`-` for stdin) is parsed by
`prometheus_client.parser.text_string_to_metric_families`, the text
exposition parser of Prometheus' Python client library, and every metric
family is printed as JSON, in the order of the text:

    [{"name": ..., "type": ..., "help": ...,
      "samples": [{"name": ..., "labels": {...}, "value": ...}]}]

Usage: parse_metrics.py FILE

Exits 1 when the parser refuses the text (its message on stderr), 2 when it
cannot run (prometheus_client missing: tests/run.sh installs it).
"""

import json
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    print(f"parse_metrics.py: {e}; tests/run.sh installs prometheus-client", file=sys.stderr)
    sys.exit(2)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: parse_metrics.py FILE", file=sys.stderr)
        return 2
    if sys.argv[1] == "-":
        text = sys.stdin.read()
    else:
        with open(sys.argv[1], encoding="utf-8") as f:
            text = f.read()
    try:
        # The parser is a generator: it raises while it is consumed.
        families = [
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "samples": [
                    {"name": sample.name, "labels": sample.labels, "value": sample.value}
                    for sample in family.samples
                ],
            }
            for family in text_string_to_metric_families(text)
        ]
    except Exception as e:  # noqa: BLE001 - whatever the parser raises, the text is refused
        print(f"parse_metrics.py: prometheus_client refuses the metrics: {e!r}", file=sys.stderr)
        return 1
    json.dump(families, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
