"""Document-level access control, end to end on the real store and embedder (no mocks of the
store): trimming by the caller's groups, ACLs from the folder source's mapping file, the
front matter that grants nothing, and the gate's ``no_acl_leak`` check.

The two-group tests take the ``store`` fixture, one VectorStore per entry of ``STORES`` (Qdrant
local mode, and Azure AI Search through its contract-test server): a new store joins them by
adding its factory there."""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from assets.evaluation.retrieval import Retriever
from assets.ingestion.documents import with_source_metadata
from core.access import acl_for, parse_acl_mapping
from core.types import ParsedDocument, Point
from pipelines.cli import main
from pipelines.definitions import GOLDEN_SET_JOB, build_definitions, build_resources
from pipelines.settings import Settings
from resources.azure_search import AzureAISearchStore
from resources.embedders import SentenceTransformerEmbedder
from resources.settings import EvaluationSettings, SettingsError
from resources.sources import LocalFolderSource, SourceUnavailableError
from resources.vector_stores import QdrantVectorStore
from tests.azure_search_server import AzureSearchContractServer
from tests.conftest import EVERY_STORE, store_settings
from tests.golden_fixture import write_golden_set
from tests.test_evaluation_gate import checks, settings_for


@contextmanager
def qdrant_store(folder: Path):
    store = QdrantVectorStore(path=str(folder / "qdrant"))
    try:
        yield store
    finally:
        store.close()


@contextmanager
def azure_search_store(folder: Path):
    with AzureSearchContractServer() as server:
        store = AzureAISearchStore(endpoint=server.endpoint, api_key=server.admin_key)
        try:
            yield store
        finally:
            store.close()


STORES = {"qdrant": qdrant_store, "azure_search": azure_search_store}

QUERY = "How large is the executive bonus pool this year?"
DOCUMENTS = {  # name: (text, acl)
    "board": ("The executive bonus pool this year is 4.2 million euros, approved by the board in March.", ["board"]),
    "staff": ("Staff bonuses are paid every quarter and depend on the warehouse's safety record.", ["staff"]),
    "both": ("Bonus payments appear on the payslip of the month after approval.", ["board", "staff"]),
    "public": ("Our cafeteria serves breakfast from seven until half past nine.", []),
    "forklift": ("Forklift drivers renew their licence every three years at the training centre.", ["staff"]),
}


@pytest.fixture(scope="module")
def embedder():
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module", params=sorted(STORES))
def store(request, tmp_path_factory):
    """A VectorStore of each kind in STORES, empty."""
    with STORES[request.param](tmp_path_factory.mktemp(request.param)) as vector_store:
        yield vector_store


@pytest.fixture(scope="module")
def collection(store, embedder) -> str:
    """DOCUMENTS in collection ``acl__v1``, searched through the alias ``acl``."""
    names = list(DOCUMENTS)
    vectors = embedder.embed([DOCUMENTS[name][0] for name in names])
    store.ensure_collection("acl__v1", embedder.dimension())
    store.upsert("acl__v1", [
        Point(id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)), vector=vector,
              payload={"text": DOCUMENTS[name][0], "acl": DOCUMENTS[name][1], "source": name})
        for name, vector in zip(names, vectors)])
    store.point_alias("acl", "acl__v1")
    return "acl"


def found(store, embedder, collection, mode, groups, unlabelled="public") -> list[str]:
    retriever = Retriever(store, embedder, collection, mode, unlabelled=unlabelled)
    return [hit.payload["source"] for hit in retriever.search(QUERY, len(DOCUMENTS), groups=groups)]


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_a_group_never_sees_another_groups_best_match(store, embedder, collection, mode):
    assert found(store, embedder, collection, mode, None)[0] == "board"  # the best match, for a trusted caller
    staff = found(store, embedder, collection, mode, ["staff"])
    assert set(staff) == {"staff", "both", "public", "forklift"}  # k covers the corpus: all they may see
    board = found(store, embedder, collection, mode, ["board", "visitors"])
    assert board[0] == "board" and set(board) == {"board", "both", "public"}


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_unlabelled_documents_follow_the_policy(store, embedder, collection, mode):
    assert set(found(store, embedder, collection, mode, ["staff"], "deny")) == {"staff", "both", "forklift"}
    assert found(store, embedder, collection, mode, [], "public") == ["public"]
    assert found(store, embedder, collection, mode, [], "deny") == []
    assert found(store, embedder, collection, mode, ["nobody"], "deny") == []


def test_retriever_rejects_an_unknown_policy(store, embedder):
    with pytest.raises(ValueError, match="public, deny"):
        Retriever(store, embedder, "acl", unlabelled="open")


# The folder source's ACL mapping file.

MAPPING = """\
"**": [staff]
pages/: [web, staff]
"**/procedure-*.md": [ops]
procedure-1.md: []
"""


def test_mapping_last_match_wins_and_double_star_spans_folders():
    rules = parse_acl_mapping(MAPPING)
    assert acl_for("notes-3.txt", rules) == ["staff"]
    assert acl_for("deep/er/manual-4.pdf", rules) == ["staff"]
    assert acl_for("pages/page-2.html", rules) == ["web", "staff"]
    assert acl_for("procedure-5.md", rules) == ["ops"]  # `**/` matches no folder too
    assert acl_for("pages/old/procedure-9.md", rules) == ["ops"]  # a later pattern beats pages/
    assert acl_for("procedure-1.md", rules) == []  # an empty list: no acl
    assert acl_for("x.txt", parse_acl_mapping("'*.md': [a]")) == []  # nothing matches: no acl
    assert acl_for("sub/x.md", parse_acl_mapping("'*.md': [a]")) == []  # `*` stays within a folder


@pytest.mark.parametrize(("text", "problem"), [
    ("", "at least one pattern"),
    ("- a\n- b\n", "at least one pattern"),
    ("a.md: hr\n", "pattern 'a.md': groups must be a list"),
    ("a.md: [hr, 3]\n", "groups must be a list"),
    ("*.md: [hr]\n", "quote a pattern that starts with *"),
    ("a.md: [hr]\na.md: [ops]\n", "line 2: pattern 'a.md' is given twice"),
    ("a.md: [hr\n", "not valid YAML"),
])
def test_malformed_mapping_is_rejected_with_the_problem(text, problem):
    with pytest.raises(ValueError, match=problem.replace("*", r"\*")):
        parse_acl_mapping(text)


def test_folder_source_puts_the_acl_in_item_metadata(tmp_path):
    root = tmp_path / "corpus"
    (root / "pages").mkdir(parents=True)
    for name in ("procedure-1.md", "procedure-5.md", "notes.txt", "pages/page-2.html"):
        (root / name).write_text("x", encoding="utf-8")
    (root / "acl.yaml").write_text(MAPPING, encoding="utf-8")
    source = LocalFolderSource(root=str(root), acl_file=str(root / "acl.yaml"))
    listed = {Path(item.uri).name: item.metadata for item in source.list_items()}
    assert listed == {"notes.txt": {"acl": ["staff"]}, "page-2.html": {"acl": ["web", "staff"]},
                      "procedure-1.md": {}, "procedure-5.md": {"acl": ["ops"]}}  # the mapping is no document
    assert source.item((root / "procedure-5.md").as_uri()).metadata == {"acl": ["ops"]}
    assert source.item((root / "acl.yaml").as_uri()) is None


@pytest.mark.parametrize(("content", "problem"), [(None, "No such file"), ("a: [", "not valid YAML")])
def test_missing_or_malformed_mapping_makes_the_source_unavailable(tmp_path, content, problem):
    mapping = tmp_path / "acl.yaml"
    if content is not None:
        mapping.write_text(content, encoding="utf-8")
    source = LocalFolderSource(root=str(tmp_path), acl_file=str(mapping))
    for call in (lambda: list(source.list_items()), lambda: source.item((tmp_path / "x.md").as_uri())):
        with pytest.raises(SourceUnavailableError, match=f"ACL mapping file {mapping}: .*{problem}"):
            call()


def point_acls(settings) -> dict[str, set[tuple[str, ...]]]:
    """Each source's distinct payload acls in the collection."""
    resources = build_resources(settings)
    store, ledger = resources["vector_store"], resources["ledger"]
    try:
        collection = f"{settings.collection}__{next(iter(ledger.status_counts()))}"
        acls: dict[str, set[tuple[str, ...]]] = {}
        for _, payload in store.payloads(collection):
            acls.setdefault(Path(payload["source"]).name, set()).add(tuple(payload["acl"]))
        return acls
    finally:
        store.close()


@EVERY_STORE
def test_an_acl_only_change_reindexes_payloads_without_embedding(ingest, settings, corpus, index_state):
    """The mapping file in the corpus folder is not indexed; the front matter's acl grants nothing;
    editing only the mapping re-indexes the payloads of the files whose acl changed, embedding nothing."""
    mapping = corpus / "acl.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    current = replace(settings, acl_file=str(mapping))

    first = ingest(current)
    assert first["success"], first["errors"]
    assert first["documents"]["new"] == 8
    acls = point_acls(current)
    assert acls["procedure-1.md"] == {()}  # its front matter says [employees, ops]: ignored
    assert acls["procedure-5.md"] == {("ops",)} and acls["notes-3.txt"] == {("staff",)}
    assert acls["page-2.html"] == acls["page-6.html"] == {("web", "staff")}

    mapping.write_text(MAPPING.replace("pages/: [web, staff]", "pages/: [web]"), encoding="utf-8")
    second = ingest(current)
    assert second["success"], second["errors"]
    assert second["documents"]["changed"] == 2 and second["documents"]["unchanged"] == 6
    assert second["embedded"] == 0 and second["upserted"] > 0
    acls = point_acls(current)
    assert acls["page-2.html"] == acls["page-6.html"] == {("web",)}
    assert acls["notes-3.txt"] == {("staff",)}
    ids, expected, _ = index_state(current)
    assert ids == expected


def test_a_broken_mapping_fails_the_run_and_deletes_nothing(ingest, settings, corpus, index_state):
    mapping = corpus / "acl.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    current = replace(settings, acl_file=str(mapping))
    assert ingest(current)["success"]
    before, _, _ = index_state(current)

    mapping.write_text("'**': [staff\n", encoding="utf-8")
    summary = ingest(current)
    assert not summary["success"]
    assert any(f"ACL mapping file {mapping.resolve()}: not valid YAML" in error for error in summary["errors"])
    after, expected, _ = index_state(current)
    assert after == before == expected


def test_search_command_trims_to_the_callers_groups_and_requires_them(ingest, settings, corpus, capsys):
    mapping = corpus / "acl.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    current = replace(settings, acl_file=str(mapping))
    data_dir = ["--data-dir", str(current.data_dir)]
    assert main(["search", "cold-chain log", "--all", *data_dir]) == 1
    assert "alias knowledge points to no index yet" in capsys.readouterr().err

    collection = ingest(current)["collection"]
    store = build_resources(current)["vector_store"]
    try:
        store.point_alias(current.collection, collection)
    finally:
        store.close()
    assert main(["search", "cold-chain log", "--group", "web", "-k", "20", "--json", *data_dir]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["groups"] == ["web"] and report["hits"]
    seen = {(Path(hit["source"]).name, tuple(hit["acl"])) for hit in report["hits"]}
    visible = {("page-2.html", ("web", "staff")), ("page-6.html", ("web", "staff")), ("procedure-1.md", ())}
    assert seen == visible  # k covers them all; procedure-1.md is unlabelled, public by default
    assert all(hit["text"] for hit in report["hits"])
    assert main(["search", "cold-chain log", "--all", "-k", "20", "--json", *data_dir]) == 0
    assert len({hit["source"] for hit in json.loads(capsys.readouterr().out)["hits"]}) > 2
    with pytest.raises(SystemExit) as refused:
        main(["search", "cold-chain log", *data_dir])
    assert refused.value.code == 2 and "one of the arguments --group --all is required" in capsys.readouterr().err


def test_the_source_is_the_only_origin_of_a_documents_acl():
    """What a parser found (front matter, headers) never survives: only source metadata grants access."""
    parsed = ParsedDocument(title="t", content_type="text/markdown", blocks=[], acl=["self-granted"])
    assert with_source_metadata(parsed, {}).acl == []
    assert with_source_metadata(parsed, {"acl": ["hr"], "title": "Policy"}) == replace(parsed, acl=["hr"], title="Policy")


# The gate: questions with groups, and a store that forgets to trim.

GOLDEN_ACL = "staff.md: [staff]\ndata.md: [staff, researchers]\n"
GROUP_QUESTIONS = [
    {"id": "g1", "question": "Who is the observatory director?", "groups": ["staff"], "answerable": True,
     "ground_truth": "Dr. Imogen Vasquez.", "reference_sources": ["staff.md"]},
    {"id": "g2", "question": "Who is the observatory director?", "groups": ["visitors"], "answerable": False,
     "ground_truth": "Visitors may not see the staff pages."},
    {"id": "g3", "question": "How long are raw frames kept in the archive?", "groups": [], "answerable": False,
     "ground_truth": "A caller without groups sees only unlabelled pages."},
]


class FilterIgnoringStore:
    """Test double: the real store, whose search drops the access filter (a store that forgot to
    trim). Everything else is the real store's."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def search_many(self, name, vectors, limit, *, accesses, **options):
        return self._store.search_many(name, vectors, limit, accesses=[None] * len(vectors), **options)


@pytest.fixture
def golden_with_groups(tmp_path):
    root = tmp_path / "golden"
    write_golden_set(root)
    (root / "acl.yaml").write_text(GOLDEN_ACL, encoding="utf-8")
    with (root / "questions.jsonl").open("a", encoding="utf-8") as questions:
        questions.writelines(json.dumps(row) + "\n" for row in GROUP_QUESTIONS)
    return root


@EVERY_STORE
def test_gate_passes_when_the_store_trims_and_fails_no_acl_leak_when_it_does_not(tmp_path, golden_with_groups,
                                                                                  vector_backend, request):
    """The golden-set job scores the candidate with the hybrid retrieval of the store that serves:
    on Azure AI Search, the service's own hybrid (text and vector in one query)."""
    settings = settings_for(tmp_path, golden_with_groups, retriever="hybrid",
                            **store_settings(vector_backend, request))
    result = build_definitions(settings).resolve_job_def(GOLDEN_SET_JOB).execute_in_process(raise_on_error=False)
    assert result.success
    passed, reason = checks(result)["no_acl_leak"]
    assert passed and "in the 3 questions asked with groups" in reason
    summary = result.output_for_node("rag_evaluation")
    assert summary["gate_passed"] and summary["unlabelled_access"] == "public"
    if vector_backend == "azure_search":
        queries = request.getfixturevalue("azure_search").bodies("search.post.search")
        assert sum(bool(q.get("search") and q.get("vectorQueries")) for q in queries) >= len(GROUP_QUESTIONS)

    dense = replace(settings, retriever="dense")  # the filter-ignoring store's best matches rank first
    leaky = FilterIgnoringStore(build_resources(dense)["vector_store"])
    try:
        definitions = build_definitions(dense, {"vector_store": leaky})
        result = definitions.resolve_job_def(GOLDEN_SET_JOB).execute_in_process(raise_on_error=False)
    finally:
        leaky.close()
    assert not result.success
    check = {e.check_name: e for e in (ev.event_specific_data for ev in result.all_events
                                       if ev.event_type_value == "ASSET_CHECK_EVALUATION")}["no_acl_leak"]
    assert not check.passed
    leaks = check.metadata["leaking_questions"].value
    assert set(leaks) == {"g2", "g3"} and leaks["g2"] >= 1  # the director's page reached a visitor
    assert check.metadata["checked_questions"].value == 3
    assert "Imogen" not in json.dumps({k: getattr(v, "value", None) for k, v in check.metadata.items()})
    assert checks(result)["retrieval_floor"][0]  # the scores alone would have passed
    assert not result.asset_materializations_for_node("promoted_index")


def test_unlabelled_policy_defaults_to_deny_in_production():
    assert Settings.from_env({}).unlabelled_access == "public"
    production = Settings.from_env({"RAGPIPE_PROFILE": "production"})
    assert production.values_for(EvaluationSettings)["unlabelled_access"] == "deny"
    chosen = Settings.from_env({"RAGPIPE_PROFILE": "production", "RAGPIPE_UNLABELLED_ACCESS": "public"})
    assert chosen.unlabelled_access == "public"
    with pytest.raises(SettingsError, match="RAGPIPE_UNLABELLED_ACCESS='open' must be one of public, deny"):
        Settings.from_env({"RAGPIPE_UNLABELLED_ACCESS": "open"})
