"""Regenerate the sample corpus PDFs from their text sources.

Each file in ``pdf_sources/<name>.md`` (a ``# Title`` line, an ``Author:`` line,
then blank-line separated paragraphs and optional ``## Heading`` lines) is
rendered with reportlab into ``corpus/<subfolder>/<name>.pdf``. The PDF title
and author metadata are taken from the source, and every page carries a footer
with its page number.

Usage:  python golden_sets/sample/build_pdfs.py
"""

from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "pdf_sources"
CORPUS = HERE / "corpus"

# Source name -> corpus subfolder.
SUBFOLDERS = {
    "code-of-business-conduct": "hr",
    "fy2024-annual-business-summary": "finance",
    "fleet-maintenance-standard": "operations",
    "dockflow-master-subscription-terms": "dockflow-product",
}

_base = getSampleStyleSheet()
STYLES = {
    "title": ParagraphStyle("T", parent=_base["Title"], fontName="Helvetica-Bold", fontSize=20, leading=24),
    "author": ParagraphStyle("A", parent=_base["Normal"], fontName="Helvetica-Oblique", fontSize=10, spaceAfter=14),
    "h2": ParagraphStyle("H2", parent=_base["Heading2"], fontName="Helvetica-Bold", fontSize=14, leading=18,
                         spaceBefore=12, spaceAfter=6),
    "body": ParagraphStyle("B", parent=_base["BodyText"], fontName="Times-Roman", fontSize=12, leading=16,
                           spaceAfter=8),
}


def parse(path):
    """Return (title, author, blocks) where blocks are (style, text) tuples."""
    title, author, blocks = path.stem, "Harbor Point Logistics", []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        for line in (ln.strip() for ln in block.splitlines() if ln.strip()):
            if line.startswith("# "):
                title = line[2:].strip()
            elif line.startswith("Author:"):
                author = line.split(":", 1)[1].strip()
            elif line.startswith("## "):
                blocks.append(("h2", line[3:].strip()))
            else:
                blocks.append(("body", line))
    return title, author, blocks


def build(src):
    title, author, blocks = parse(src)
    out = CORPUS / SUBFOLDERS[src.stem] / f"{src.stem}.pdf"
    out.parent.mkdir(parents=True, exist_ok=True)

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(inch, 0.6 * inch, f"Harbor Point Logistics - {title}")
        canvas.drawRightString(LETTER[0] - inch, 0.6 * inch, f"Page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(str(out), pagesize=LETTER, title=title, author=author,
                            leftMargin=inch, rightMargin=inch, topMargin=inch, bottomMargin=inch)
    story = [Paragraph(escape(title), STYLES["title"]), Paragraph(escape(author), STYLES["author"])]
    story += [Paragraph(escape(text), STYLES[style]) for style, text in blocks]
    story.append(Spacer(1, 6))
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out


if __name__ == "__main__":
    for source in sorted(SOURCES.glob("*.md")):
        print(build(source).relative_to(HERE))
