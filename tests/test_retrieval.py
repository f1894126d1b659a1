"""The serving retriever: dense search, and hybrid dense + BM25 fused by RRF (real Qdrant
local mode and the bundled embedder)."""

import uuid

import pytest

from assets.evaluation.retrieval import Retriever, reciprocal_rank_fusion
from core.types import Hit, Point
from resources.embedders import SentenceTransformerEmbedder
from resources.vector_stores import QdrantVectorStore

TEXTS = [
    "Our dock doors open at six in the morning and close at ten at night on weekdays.",
    "Forklift drivers must renew their licence every three years at the training centre.",
    "Error XK-4471 on the handheld scanner means the battery contacts need cleaning.",
    "The cafeteria serves breakfast from seven until half past nine.",
    "Pallets heavier than one tonne are stored on the ground level racks only.",
]


def test_rrf_sums_reciprocal_ranks():
    a, b, c = (Hit(id=name, score=0.0, payload={"name": name}) for name in "abc")
    fused = reciprocal_rank_fusion([[a, b, c], [c, b]], limit=3, k=60)
    assert [hit.id for hit in fused] == ["c", "b", "a"]  # c: 1/63+1/61 > b: 1/62+1/62 > a: 1/61
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[1].score == pytest.approx(2 / 62)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    embedder = SentenceTransformerEmbedder()
    store = QdrantVectorStore(path=str(tmp_path_factory.mktemp("qdrant")))
    store.ensure_collection("docs__v1", embedder.dimension())
    vectors = embedder.embed(TEXTS)
    store.upsert("docs__v1", [Point(id=str(uuid.UUID(int=i + 1)), vector=v, payload={"text": t})
                              for i, (t, v) in enumerate(zip(TEXTS, vectors))])
    store.point_alias("docs", "docs__v1")
    yield store, embedder
    store.close()


def test_dense_retrieval_through_the_alias(store):
    vector_store, embedder = store
    hits = Retriever(vector_store, embedder, "docs").search("When does breakfast end at the cafeteria?", 2, groups=None)
    assert len(hits) == 2 and hits[0].payload["text"] == TEXTS[3]


def test_hybrid_ranks_an_exact_rare_term_first(store):
    vector_store, embedder = store
    hits = Retriever(vector_store, embedder, "docs__v1", mode="hybrid").search("what is XK-4471", 3, groups=None)
    assert hits[0].payload["text"] == TEXTS[2]
    assert len({hit.id for hit in hits}) == 3


def test_unknown_retriever_is_rejected(store):
    with pytest.raises(ValueError, match="dense, hybrid"):
        Retriever(*store, "docs", mode="sparse")


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_batched_search_ranks_as_one_search_at_a_time(store, mode):
    vector_store, embedder = store
    retriever = Retriever(vector_store, embedder, "docs", mode=mode)
    queries = ["When does breakfast end?", "what is XK-4471", "forklift licence renewal"]
    batched = retriever.search_many(queries, 3, groups=[None, None, None])
    assert [[hit.id for hit in hits] for hits in batched] == \
        [[hit.id for hit in retriever.search(query, 3, groups=None)] for query in queries]


def test_question_embeddings_are_cached_per_embedder(store, tmp_path):
    """The second evaluation of the same questions with the same model embeds nothing."""
    from assets.evaluation.golden import GoldenQuestion, GoldenSet
    from assets.evaluation.scoring import question_embeddings
    from resources.evaluation_store import EvaluationStore

    _, embedder = store
    calls: list[int] = []

    class Counting:
        def identity(self):
            return embedder.identity()

        def embed(self, texts):
            calls.append(len(texts))
            return embedder.embed(texts)

    questions = tuple(GoldenQuestion(f"q{i}", text, "a", (), ("a.md",), True, ()) for i, text in enumerate(TEXTS))
    golden = GoldenSet("g", tmp_path, questions, "f")
    cache = EvaluationStore(root=str(tmp_path / "evaluations"))
    first = question_embeddings(golden, Counting(), cache)
    assert calls == [len(TEXTS)]
    assert question_embeddings(golden, Counting(), cache) == first and calls == [len(TEXTS)]
    changed = GoldenSet("g", tmp_path, questions[:2], "f")  # other questions: another key
    assert len(question_embeddings(changed, Counting(), cache)) == 2 and calls == [len(TEXTS), 2]
