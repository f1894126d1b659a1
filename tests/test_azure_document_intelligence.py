"""The Azure AI Document Intelligence OCR backend, against a local contract-test server that
speaks the service's REST shape (prebuilt-layout analyze: POST → 202 + Operation-Location,
GET → running, then succeeded with ``analyzeResult``). No Azure service runs here."""

from __future__ import annotations

import pytest

from assets.ingestion.parsing import parse_document
from resources.ocr import AzureDocumentIntelligenceOcr
from tests import format_fixtures as fx
from tests.contract_http import JsonHandler, serving

API_VERSION = "2024-11-30"
KEY = "test-key"
CONTENT = "Expense Report\nScanned expense receipt\nHotel | Total\nParis | 250 EUR\nPage 1"
ANALYZE_RESULT = {
    "apiVersion": API_VERSION,
    "modelId": "prebuilt-layout",
    "content": CONTENT,
    "pages": [{"pageNumber": 1}],
    "paragraphs": [
        {"role": "title", "content": "Expense Report", "spans": [{"offset": 0, "length": 14}],
         "boundingRegions": [{"pageNumber": 1, "polygon": []}]},
        {"content": "Scanned expense receipt", "spans": [{"offset": 15, "length": 23}],
         "boundingRegions": [{"pageNumber": 1, "polygon": []}]},
        {"content": "Hotel", "spans": [{"offset": 39, "length": 5}], "boundingRegions": [{"pageNumber": 1}]},
        {"role": "pageNumber", "content": "Page 1", "spans": [{"offset": 70, "length": 6}],
         "boundingRegions": [{"pageNumber": 1}]},
    ],
    "tables": [{
        "rowCount": 2, "columnCount": 2, "spans": [{"offset": 39, "length": 30}],
        "boundingRegions": [{"pageNumber": 1, "polygon": []}],
        "cells": [
            {"kind": "columnHeader", "rowIndex": 0, "columnIndex": 0, "content": "Hotel"},
            {"kind": "columnHeader", "rowIndex": 0, "columnIndex": 1, "content": "Total"},
            {"rowIndex": 1, "columnIndex": 0, "content": "Paris"},
            {"rowIndex": 1, "columnIndex": 1, "content": "250 EUR"},
        ],
    }],
}


@pytest.fixture
def service():
    """Records what it received; reports "running" once before the result."""
    received: dict = {"polls": 0}

    class Handler(JsonHandler):
        def _authorised(self) -> bool:
            if self.headers.get("Ocp-Apim-Subscription-Key") == KEY:
                return True
            self.send_json(401, {"error": {"code": "401", "message": "Access denied"}})
            return False

        def do_POST(self):
            if not self._authorised():
                return
            received.update(path=self.path, content_type=self.headers["Content-Type"],
                            body=self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(202)
            self.send_header("Operation-Location", f"http://127.0.0.1:{self.server.server_port}"
                             f"/documentintelligence/documentModels/prebuilt-layout/analyzeResults/op-1"
                             f"?api-version={API_VERSION}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            if not self._authorised():
                return
            received["polls"] += 1
            if received["polls"] == 1:
                self.send_json(200, {"status": "running", "createdDateTime": "2026-11-22T10:00:00Z"})
            else:
                self.send_json(200, {"status": "succeeded", "analyzeResult": ANALYZE_RESULT})

    with serving(Handler) as url:
        yield url, received


def test_scanned_pdf_is_read_through_the_layout_model(service):
    endpoint, received = service
    ocr = AzureDocumentIntelligenceOcr(endpoint=endpoint, api_key=KEY, poll_interval_s=0.01)
    scan = fx.scanned_pdf()
    document = parse_document("file:///corpus/scan.pdf", scan, ocr=ocr)
    assert received["path"] == (f"/documentintelligence/documentModels/prebuilt-layout:analyze"
                                f"?api-version={API_VERSION}&pages=1-2000")
    assert received["content_type"] == "application/pdf" and received["body"] == scan
    assert received["polls"] == 2
    assert [(b.kind, b.section, b.page, b.text) for b in document.blocks] == [
        ("text", "Expense Report", 1, "Expense Report"),
        ("text", "Expense Report", 1, "Scanned expense receipt"),
        ("table", "Expense Report", 1, "| Hotel | Total |\n| --- | --- |\n| Paris | 250 EUR |"),
    ]


def test_a_rejected_key_fails_the_document_with_the_http_status(service):
    import httpx

    endpoint, _ = service
    ocr = AzureDocumentIntelligenceOcr(endpoint=endpoint, api_key="wrong", poll_interval_s=0.01)
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        parse_document("file:///corpus/scan.pdf", fx.scanned_pdf(), ocr=ocr)
