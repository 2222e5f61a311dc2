"""Print redaction recall and prose damage over the generated corpus.

    .venv/bin/python -m tests.redaction_corpus.measure [--misses N]

Recall: the share of (secret, text) cases whose secret (after its documented prefix) is gone
from ``redact(text)``, per family and per syntax. Prose damage: the share of ordinary texts
that ``redact`` changes at all, per family.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from tests.redaction_corpus import Case, negatives, positives, vendor_keyed
from utils._redaction import redact


def leaked(case: Case) -> bool:
    """True when the case's secret survives redaction."""
    return case.core in redact(case.text)


def figures() -> dict[str, object]:
    """Recall per family and per syntax, prose damage per family, and the misses."""
    cases = positives() + vendor_keyed()
    by_family: dict[str, list[bool]] = defaultdict(list)
    by_form: dict[str, list[bool]] = defaultdict(list)
    misses = []
    for case in cases:
        hidden = not leaked(case)
        by_family[case.family].append(hidden)
        by_form[case.form].append(hidden)
        if not hidden:
            misses.append(case)
    damage: dict[str, list[bool]] = defaultdict(list)
    damaged = []
    for family, text in negatives():
        changed = redact(text) != text
        damage[family].append(changed)
        if changed:
            damaged.append((family, text, redact(text)))
    return {
        "cases": len(cases),
        "recall": sum(not leaked(c) for c in cases) / len(cases),
        "by_family": by_family,
        "by_form": by_form,
        "misses": misses,
        "negatives": sum(len(v) for v in damage.values()),
        "damage": sum(sum(v) for v in damage.values()) / sum(len(v) for v in damage.values()),
        "damage_by_family": damage,
        "damaged": damaged,
    }


def main(argv: list[str]) -> int:
    """Print the figures; ``--misses N`` also lists N missed cases."""
    show = int(argv[argv.index("--misses") + 1]) if "--misses" in argv else 0
    f = figures()
    print(f"recall: {f['recall']:.2%} of {f['cases']} secret cases hidden")
    print(f"prose damage: {f['damage']:.2%} of {f['negatives']} ordinary texts changed")
    print("\nrecall by family:")
    for family, hits in sorted(f["by_family"].items()):  # type: ignore[attr-defined]
        print(f"  {family:16} {sum(hits) / len(hits):7.2%}  ({len(hits)})")
    print("\nrecall by syntax:")
    for form, hits in sorted(f["by_form"].items()):  # type: ignore[attr-defined]
        print(f"  {form!r:50} {sum(hits) / len(hits):7.2%}  ({len(hits)})")
    print("\nprose damage by family:")
    for family, changed in sorted(f["damage_by_family"].items()):  # type: ignore[attr-defined]
        print(f"  {family:16} {sum(changed) / len(changed):7.2%}  ({len(changed)})")
    for family, text, out in f["damaged"][:show]:  # type: ignore[index]
        print(f"DAMAGED {family}: {text!r}\n     -> {out!r}")
    for case in f["misses"][:show]:  # type: ignore[index]
        print(f"MISS {case.name}: {case.text[:160]!r}\n  -> {redact(case.text)[:160]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
