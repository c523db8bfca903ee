"""Fails CI on a skipped test whose reason CI is not expected to meet.

    python3 .ci/check_skips.py PYTEST_OUTPUT

reads the output of `pytest -rs` (each skip listed as `SKIPPED [n] path:line: reason`). CI has
everything the suite can ask for: ../shared/data beside the clone, the grid_s1 release in
models/releases, Debian's chromium and chromium-driver (.ci/run installs them), Linux. So a
skip there means something went missing, and the tests it hides would keep CI green: about 90
skip without ../shared or the release. A reason CI may legitimately meet goes in EXPECTED,
with why.
"""

import re
import sys
from pathlib import Path

# (regular expression matched against the reason, why CI meets it). None today.
EXPECTED: list[tuple[str, str]] = []

SKIP_LINE = re.compile(r"^SKIPPED \[(\d+)\] (\S+?):(\d+): (.*)$")
SUMMARY_LINE = re.compile(r"^=*\s*\d+ passed\b")


def unexpected_skips(output: str) -> tuple[list[str], int]:
    """(the skip lines no EXPECTED reason covers, the number of tests skipped in all)."""
    unexpected, skipped = [], 0
    for line in output.splitlines():
        if match := SKIP_LINE.match(line.strip()):
            skipped += int(match[1])
            if not any(re.search(pattern, match[4]) for pattern, _ in EXPECTED):
                unexpected.append(line.strip())
    return unexpected, skipped


def _count(lines: list[str]) -> int:
    return sum(int(SKIP_LINE.match(line)[1]) for line in lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    output = Path(argv[1]).read_text(errors="replace")
    if not any(SUMMARY_LINE.match(line.strip()) for line in output.splitlines()):
        print(f"check_skips: no pytest summary line in {argv[1]}: was it `pytest -rs` output?")
        return 1
    unexpected, skipped = unexpected_skips(output)
    if unexpected:
        print(f"FAILED: {_count(unexpected)} tests skipped for reasons CI should never meet:")
        for line in unexpected:
            print(f"  {line}")
        print("Restore what they need (../shared/data, models/releases/grid_s1, chromium) or")
        print("add the reason to EXPECTED in .ci/check_skips.py, saying why CI meets it.")
        return 1
    print(f"check_skips: {skipped} skipped, none unexpected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
