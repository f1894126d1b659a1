"""A small golden set the tests write: five documents about a fictional observatory,
reference passages that are long sentences (so that absurdly small chunks cannot hold
them), and questions with scripted answers for the local chat server."""

from __future__ import annotations

import json
from pathlib import Path

DOCUMENTS = {
    "telescopes.md": (
        "# Telescopes at Kestrel Ridge Observatory\n\n"
        "The main instrument at Kestrel Ridge Observatory is a 2.4 metre reflecting telescope named Halcyon, "
        "installed in 2011 on the north dome and used mainly for spectroscopy of variable stars.\n\n"
        "A smaller 60 centimetre telescope called Wren sits in the south dome and is reserved for student "
        "training sessions on weekday evenings during the academic term.\n"
    ),
    "visiting.md": (
        "# Visiting the observatory\n\n"
        "Public stargazing nights at Kestrel Ridge take place on the first Saturday of every month from April "
        "to October, and tickets cost 12 euros for adults and 6 euros for children under fourteen.\n\n"
        "Visitors must park at the lower car park and take the shuttle bus, because the summit road is closed "
        "to private cars after sunset to keep headlights away from the domes.\n"
    ),
    "weather.md": (
        "# Weather and closures\n\n"
        "Observing is cancelled when the wind speed at the summit mast exceeds 45 kilometres per hour or when "
        "relative humidity rises above 85 percent, since condensation can damage the primary mirror.\n\n"
        "Cancellations are announced on the observatory website by four o'clock in the afternoon, and ticket "
        "holders receive a full refund or a voucher for another public night.\n"
    ),
    "staff.md": (
        "# Staff and roles\n\n"
        "The observatory director is Dr. Imogen Vasquez, who joined from the Canary Islands in 2019 and leads "
        "the survey of eclipsing binary stars with the Halcyon spectrograph.\n\n"
        "Night assistants work in pairs on twelve hour shifts, and at least one of them must hold a current "
        "first aid certificate and a licence to operate the dome crane.\n"
    ),
    "data.md": (
        "# Data policy\n\n"
        "Raw frames from every night are copied to the archive server in the basement before nine in the "
        "morning and kept for ten years, while reduced spectra are published after a twelve month embargo.\n\n"
        "External researchers request archive access through a form on the website, and requests are reviewed "
        "by the time allocation committee at its quarterly meeting.\n"
    ),
}

QUESTIONS = [
    ("q1", "What is the main telescope at Kestrel Ridge and when was it installed?",
     "The main telescope is Halcyon, a 2.4 metre reflector installed in 2011 on the north dome.",
     "telescopes.md", 0),
    ("q2", "How much do tickets for public stargazing nights cost?",
     "Tickets cost 12 euros for adults and 6 euros for children under fourteen.", "visiting.md", 0),
    ("q3", "Why must visitors take the shuttle bus?",
     "The summit road is closed to private cars after sunset to keep headlights away from the domes.",
     "visiting.md", 1),
    ("q4", "When is observing cancelled because of the weather?",
     "Observing is cancelled when the wind exceeds 45 km/h or humidity rises above 85 percent.", "weather.md", 0),
    ("q5", "Who is the observatory director?",
     "The director is Dr. Imogen Vasquez, who joined in 2019.", "staff.md", 0),
    ("q6", "How long are raw frames kept?",
     "Raw frames are kept for ten years in the archive.", "data.md", 0),
]
UNANSWERABLE = [
    ("q7", "What is the observatory's annual electricity bill?"),
    ("q8", "Which airline offers discounts to observatory visitors?"),
]


def _paragraph(name: str, index: int) -> str:
    return [p for p in DOCUMENTS[name].split("\n\n") if not p.startswith("#")][index].strip()


def write_golden_set(root: Path) -> dict[str, str]:
    """Write corpus/ and questions.jsonl under ``root``; returns question -> answer."""
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for name, text in DOCUMENTS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    rows = [
        {"id": qid, "question": question, "ground_truth": answer, "reference_contexts": [_paragraph(name, index)],
         "reference_sources": [name], "answerable": True, "tags": ["fixture"]}
        for qid, question, answer, name, index in QUESTIONS
    ] + [
        {"id": qid, "question": question, "ground_truth": "The knowledge base does not contain this information.",
         "reference_contexts": [], "reference_sources": [], "answerable": False, "tags": ["unanswerable"]}
        for qid, question in UNANSWERABLE
    ]
    (root / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {question: answer for _, question, answer, _, _ in QUESTIONS}
