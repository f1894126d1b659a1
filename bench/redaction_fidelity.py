"""How much non-PII text cleaning and the default PII policy change: encyclopedic prose full of
numbers, and numeric tables (CSV and XLSX through the real loaders).

    .venv/bin/python bench/redaction_fidelity.py [--paragraphs 500] [--rows 500] [--seed 13]

Nothing generated is personal data (places and companies appear, and the default policy
keeps them), so any change counts: a paragraph or row is damaged when its text after cleaning
and screening differs from what was written, or a written cell value is missing from its row.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import resources  # noqa: F401  (offline defaults before library imports)
from assets.ingestion.cleaning import clean_text
from assets.ingestion.parsing import parse_document
from assets.screening.pii import PiiEngine
from core.types import PiiConfig

PLACES = ["the Yukon", "Victoria", "the Danube basin", "Bavaria", "the Transvaal", "Patagonia", "Lake Baikal",
          "the Ruhr", "Kerala", "Tasmania", "the Atacama", "Anatolia", "Saxony", "Flanders", "Hokkaido"]
COMPANIES = ["the Hudson's Bay Company", "Siemens", "the East India Company", "De Beers", "Krupp", "Rio Tinto"]
SUBJECTS = ["gold", "silver", "wool", "copper", "coal", "wheat", "tin", "cotton", "timber", "rubber"]
UNITS = ["million ounces", "tonnes", "km²", "hectares", "barrels", "m³", "kilometres", "bushels", "kWh"]
MONTHS = ["January", "March", "May", "July", "September", "November"]


def _isbn13(rng: random.Random) -> str:
    digits = [9, 7, 8] + [rng.randrange(10) for _ in range(9)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    body = "".join(map(str, digits + [check]))
    return f"{body[:3]}-{body[3]}-{body[4:7]}-{body[7:12]}-{body[12]}"


def _sentence_case(name: str) -> str:
    return name[0].upper() + name[1:]


def _sentence(rng: random.Random) -> str:
    year = rng.randrange(1600, 2020)
    place, subject, unit = rng.choice(PLACES), rng.choice(SUBJECTS), rng.choice(UNITS)
    templates = [
        f"In the decade {year}–{year + 9} {rng.randrange(2, 90)} {unit} of {subject} were produced in {place}.",
        f"By {year} the population of {place} had reached {rng.randrange(10_000, 9_999_999):,}.",
        f"Output rose {rng.uniform(0.5, 40):.1f}% between {year} and {year + rng.randrange(2, 30)}.",
        (f"The mean yield was {rng.uniform(0.01, 9):.3f} {unit} per worker, about {rng.randrange(2, 9)}½ times "
         f"the {year - rng.randrange(5, 50)} figure."),
        (f"Its centre lies at {rng.uniform(-80, 80):.4f}° N, {rng.uniform(-170, 170):.4f}° E, "
         f"{rng.randrange(5, 4800)} m above sea level."),
        (f"The standard account (ISBN {_isbn13(rng)}) dates the charter to {rng.randrange(1, 28)} "
         f"{rng.choice(MONTHS)} {year}."),
        (f"{_sentence_case(rng.choice(COMPANIES))} shipped {rng.randrange(1000, 99999)} {unit} in {year}-{year % 100 + 1:02d}"
         f" at {rng.uniform(1, 99):.2f} shillings each."),
        (f"The constant was measured as {rng.uniform(1, 9):.3f}e-{rng.randrange(3, 30)} in {year}, a correction of "
         f"{rng.randrange(1, 9)}/{rng.randrange(10, 99)} on the {year - 20} value."),
        (f"About {rng.randrange(3, 97)} per cent of the land, some {rng.randrange(100, 99999):,} km², lay between "
         f"{rng.randrange(100, 999)} and {rng.randrange(1000, 2999)} metres, with temperatures of −{rng.randrange(1, 45)} °C"
         f" in {rng.choice(MONTHS)}."),
        (f"The {year} census recorded {rng.randrange(100_000, 9_999_999)} inhabitants and "
         f"{rng.randrange(1000, 999_999)} dwellings; by {year + 10} the figure was {rng.uniform(1, 20):.2f} million."),
        (f"Records {rng.randrange(1000000, 9999999)}–{rng.randrange(1000000, 9999999)} of the {year} survey cover "
         f"{place}, ratio {rng.randrange(1, 9)}:{rng.randrange(1, 99)}."),
    ]
    return rng.choice(templates)


def paragraphs(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(_sentence(rng) for _ in range(rng.randrange(3, 7))) for _ in range(count)]


def table_rows(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed + 1)
    rows = []
    for index in range(count):
        epoch = rng.randrange(1_000_000_000, 1_800_000_000)
        rows.append([
            f"SMP-{index:05d}", f"{rng.uniform(-1, 1):.9f}", str(epoch), str(epoch * 1000 + rng.randrange(1000)),
            f"{rng.uniform(1, 9):.3e}", f"{rng.randrange(-99999, 99999)}", f"{rng.uniform(-1000, 1000):.2f}",
            str(rng.randrange(10**9, 10**12)), f"{rng.randrange(1, 28):02d}/{rng.randrange(1, 13):02d}/{rng.randrange(1950, 2030)}",
            _isbn13(rng),
        ])
    return rows


HEADER = ["sample", "weight", "epoch", "epoch_ms", "signal", "delta", "balance", "order_id", "date", "isbn"]


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADER, *rows])
    return buffer.getvalue().encode()


def _xlsx_bytes(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)  # strings, as a spreadsheet of exported text keeps them
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@dataclass
class Fidelity:
    name: str
    total: int = 0
    damaged: list[tuple[str, str]] = field(default_factory=list)

    @property
    def share(self) -> float:
        return len(self.damaged) / self.total if self.total else 0.0


def prose_fidelity(engine: PiiEngine, texts: list[str]) -> Fidelity:
    result = Fidelity("prose paragraphs", total=len(texts))
    for original, screened in zip(texts, engine.anonymize_many([clean_text(t) for t in texts]), strict=True):
        if screened.text != original:
            result.damaged.append((original, screened.text))
    return result


def table_fidelity(engine: PiiEngine, name: str, content: bytes, rows: list[list[str]]) -> Fidelity:
    document = parse_document(name, content)
    lines = [line for block in document.blocks for line in block.text.split("\n")]
    screened = [line for r in engine.anonymize_many([b.text for b in document.blocks]) for line in r.text.split("\n")]
    result = Fidelity(f"{name} rows", total=len(rows))
    for row in rows:
        before = next((line for line in lines if f"| {row[0]} |" in line), "")
        after = next((line for line in screened if f"| {row[0]} |" in line), "")
        if before != after or any(value not in after for value in row):
            result.damaged.append((" | ".join(row), after))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=500)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args()
    engine = PiiEngine(PiiConfig())
    rows = table_rows(args.rows, args.seed)
    results = [
        prose_fidelity(engine, paragraphs(args.paragraphs, args.seed)),
        table_fidelity(engine, "measurements.csv", _csv_bytes(rows), rows),
        table_fidelity(engine, "measurements.xlsx", _xlsx_bytes(rows), rows),
    ]
    print(f"{'set':<24} {'items':>6} {'damaged':>8} {'share':>7}")
    for result in results:
        print(f"{result.name:<24} {result.total:>6} {len(result.damaged):>8} {result.share:>7.2%}")
    for result in results:
        for before, after in result.damaged[:args.examples]:
            print(f"\n{result.name}:\n  written:  {before}\n  screened: {after}")


if __name__ == "__main__":
    main()
