"""Generated test corpora: varied prose in Markdown, HTML, text and PDF."""

from __future__ import annotations

import io
import random
from pathlib import Path

SUBJECTS = ["The dock supervisor", "Each forklift operator", "The night shift", "A quality auditor",
            "The routing service", "Every inbound trailer", "The safety committee", "Our billing team"]
VERBS = ["reviews", "records", "schedules", "inspects", "approves", "escalates", "reconciles", "labels"]
OBJECTS = ["the pallet manifest", "damaged cartons", "the cold-chain log", "customs paperwork",
           "the cycle count", "hazardous goods", "the carrier invoice", "returned parcels"]
WHEN = ["before noon", "within two hours", "at the end of each shift", "every Monday",
        "after each delivery", "once a quarter", "before the trailer leaves", "on request"]


def prose(seed: int, sentences: int) -> str:
    rng = random.Random(seed)
    return " ".join(
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(WHEN)}"
        f" (step {rng.randint(1, 999)})."
        for _ in range(sentences)
    )


def markdown_doc(seed: int) -> str:
    """With an ``acl`` in its front matter, which the pipeline must ignore (only sources grant access)."""
    return (
        f"---\ntitle: Procedure {seed}\nauthor: Operations\ndate: 2025-0{seed % 9 + 1}-1{seed % 9}\n"
        f"acl: [employees, ops]\n---\n"
        f"# Procedure {seed}\n\n{prose(seed, 4)}\n\n## Scope\n\n{prose(seed + 100, 30)}\n\n"
        f"### Exceptions\n\n{prose(seed + 200, 5)}\n"
    )


def html_doc(seed: int) -> str:
    return (
        f"<html><head><title>Handbook page {seed}</title><style>p {{color: red}}</style>"
        f"<script>track('visit')</script></head><body><nav>Home | Search | Login</nav>"
        f"<h1>Handbook page {seed}</h1><p>{prose(seed, 6)}</p><h2>Rates</h2>"
        f"<table><tr><th>Lane</th><th>Rate</th></tr><tr><td>North</td><td>{seed}.50</td></tr></table>"
        f"<p>{prose(seed + 1, 8)}</p><footer>Copyright 2025 Harbor Point</footer></body></html>"
    )


def pdf_doc(seed: int) -> bytes:
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    buffer = io.BytesIO()
    styles = getSampleStyleSheet()
    document = SimpleDocTemplate(buffer, title=f"Manual {seed}", author="Safety Office")
    document.build([
        Paragraph(f"Manual {seed}", styles["Title"]),
        Paragraph(prose(seed, 12), styles["BodyText"]),
        PageBreak(),
        Paragraph(prose(seed + 7, 12), styles["BodyText"]),
    ])
    return buffer.getvalue()


def write_corpus(root: Path, count: int = 8) -> Path:
    """``count`` documents cycling through Markdown, HTML, text and PDF."""
    root.mkdir(parents=True, exist_ok=True)
    for seed in range(1, count + 1):
        kind = seed % 4
        if kind == 1:
            (root / f"procedure-{seed}.md").write_text(markdown_doc(seed), encoding="utf-8")
        elif kind == 2:
            (root / "pages").mkdir(exist_ok=True)
            (root / "pages" / f"page-{seed}.html").write_text(html_doc(seed), encoding="utf-8")
        elif kind == 3:
            (root / f"notes-{seed}.txt").write_text(f"Notes {seed}\n\n{prose(seed, 20)}\n", encoding="utf-8")
        else:
            (root / f"manual-{seed}.pdf").write_bytes(pdf_doc(seed))
    return root
