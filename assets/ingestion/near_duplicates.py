"""Near-duplicate detection: MinHash signatures of word shingles, looked up with LSH.

Exact duplicates (same doc_id) are already embedded once and are not reported here; this
catches the same text saved twice with a changed date, a re-export, a lightly edited copy.
Signatures persist in the ledger so a document is compared with every indexed one, not
only with those in the same run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.types import ParsedDocument, quarantine

NUM_PERM = 128
# Stored signatures are only comparable within one scheme, so it is named, never defaulted.
SCHEME = "affine32"
SHINGLE_WORDS = 5
_WORD = re.compile(r"\w+")


def signature(text: str):
    """A MinHash over the text's lowercased word 5-grams."""
    from datasketch import MinHash

    words = _WORD.findall(text.lower())
    shingles = {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(max(len(words) - SHINGLE_WORDS + 1, 1))}
    minhash = MinHash(num_perm=NUM_PERM, scheme=SCHEME)
    minhash.update_batch([shingle.encode() for shingle in shingles])
    return minhash


@dataclass(frozen=True)
class StoredSignature:
    source: str
    doc_id: str
    hashvalues: bytes


@dataclass
class NearDuplicateIndex:
    """An LSH of the known signatures plus those added this run; ``review`` marks or rejects
    a document. The known signatures are loaded at the first review, so a run with nothing to
    parse (an unchanged rerun, most targeted runs' nothing-new) does not pay for them."""

    mode: str
    threshold: float
    known: Iterable[StoredSignature] = ()  # consumed as it streams, at the first review
    added: list[StoredSignature] = field(default_factory=list)
    _lsh: Any = field(default=None, init=False, repr=False)
    _doc_ids: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def _load(self) -> None:
        from datasketch import MinHash, MinHashLSH

        self._lsh = MinHashLSH(threshold=self.threshold, num_perm=NUM_PERM)
        for stored in self.known:
            values = np.frombuffer(stored.hashvalues, dtype=np.uint32)
            self._insert(stored.source, stored.doc_id, MinHash(hashvalues=values, scheme=SCHEME))
        self.known = ()

    def review(self, source: str, doc_id: str, document: ParsedDocument) -> None:
        """Set ``near_duplicate_of`` (mode ``mark``) or quarantine the document (``skip``).

        A document whose exact content is already known is no near-duplicate: like its twin,
        it goes the exact-duplicate way (embedded once, indexed at both sources)."""
        if self._lsh is None:
            self._load()
        minhash = signature(document.text)
        similar = [other for other in self._lsh.query(minhash) if other != source]
        exact_twin = any(self._doc_ids[other] == doc_id for other in similar)
        original = None if exact_twin or not similar else min(similar)
        if original and self.mode == "skip":
            raise quarantine(f"near-duplicate of {original} (MinHash Jaccard >= {self.threshold}); "
                             "skipped by RAGPIPE_NEAR_DUPLICATES=skip")
        document.near_duplicate_of = original
        self._insert(source, doc_id, minhash)
        self.added.append(StoredSignature(source, doc_id, minhash.hashvalues.astype(np.uint32).tobytes()))

    def _insert(self, source: str, doc_id: str, minhash) -> None:
        if source in self._doc_ids:
            self._lsh.remove(source)
        self._lsh.insert(source, minhash)
        self._doc_ids[source] = doc_id
