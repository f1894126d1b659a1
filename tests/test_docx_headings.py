"""DOCX headings that are headings only by inheritance or outline level open their sections.

Corporate templates derive their heading styles from Word's built-in ones or mark a style or a
paragraph with an outline level; a heading missed there leaves every later block under the
previous, stale heading. Real DOCX files written by python-docx, parsed by the real loader.
"""

from __future__ import annotations

import io

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from assets.ingestion.parsing import parse_document

BODY = "Body text long enough to read as narrative prose rather than as a title of anything."


def _outline(element, level: int) -> None:
    properties = element.get_or_add_pPr()
    outline = OxmlElement("w:outlineLvl")
    outline.set(qn("w:val"), str(level))
    properties.append(outline)


def _sections(document: docx.Document) -> dict[str, str]:
    buffer = io.BytesIO()
    document.save(buffer)
    return {block.text: block.section for block in parse_document("plan.docx", buffer.getvalue()).blocks}


def test_headings_by_derived_style_outline_level_and_paragraph_outline_open_their_sections():
    document = docx.Document()
    document.styles.element.remove(document.styles["Heading 3"].element)  # a template without it
    derived = document.styles.add_style("Corp Heading 2", WD_STYLE_TYPE.PARAGRAPH)
    derived.base_style = document.styles["Heading 2"]
    outlined = document.styles.add_style("Corp Level 3", WD_STYLE_TYPE.PARAGRAPH)
    _outline(outlined.element, 2)
    document.add_heading("Chapter One", 1)
    document.add_heading("Built-in section", 2)
    document.add_paragraph("First body. " + BODY)
    document.add_paragraph("Derived section", style="Corp Heading 2")
    document.add_paragraph("Second body. " + BODY)
    document.add_paragraph("Outlined subsection", style="Corp Level 3")
    document.add_paragraph("Third body. " + BODY)
    _outline(document.add_paragraph("Chapter Two")._p, 0)
    document.add_paragraph("Fourth body. " + BODY)

    sections = _sections(document)

    assert sections["First body. " + BODY] == "Chapter One > Built-in section"
    assert sections["Second body. " + BODY] == "Chapter One > Derived section"
    assert sections["Third body. " + BODY] == "Chapter One > Derived section > Outlined subsection"
    assert sections["Fourth body. " + BODY] == "Chapter Two"


def test_body_styles_and_an_outline_level_of_body_text_stay_body():
    document = docx.Document()
    quote = document.styles.add_style("Corp Quote", WD_STYLE_TYPE.PARAGRAPH)
    quote.base_style = document.styles["Normal"]
    _outline(quote.element, 9)  # 9 is Word's "body text" level
    document.add_heading("Only Chapter", 1)
    document.add_paragraph("A quoted line", style="Corp Quote")
    document.add_paragraph("Closing body. " + BODY)

    sections = _sections(document)

    assert sections["A quoted line"] == "Only Chapter"
    assert sections["Closing body. " + BODY] == "Only Chapter"
