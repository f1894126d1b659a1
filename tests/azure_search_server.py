"""A contract-test server for Azure AI Search's data-plane REST API (api-version 2026-04-01).

Azure AI Search is a managed service that cannot run here, so the store that writes to it is
tested against this: a loopback HTTP server speaking the wire format that
``azure-search-documents`` 12.0.0 sends, and answering the way Microsoft documents the service
(status codes, ``{"error": {"code", "message", "details"}}`` bodies, per-key indexing results).
It implements these paths (``{i}`` an index or alias name, ``{a}`` an alias name):

- ``POST /indexes``, ``GET /indexes`` (``$select``), ``PUT|GET|DELETE /indexes('{i}')``,
  ``GET /indexes('{i}')/search.stats``
- ``POST /indexes('{i}')/docs/search.index`` (upload, merge, mergeOrUpload, delete; 200 or 207)
- ``GET /indexes('{i}')/docs/$count``, ``GET /indexes('{i}')/docs('{key}')`` (``$select``)
- ``POST /indexes('{i}')/docs/search.post.search``: simple-syntax text ranked by BM25, exhaustive
  cosine vector queries, hybrid fused by Reciprocal Rank Fusion (k=60), an OData ``$filter``
  subset, ``select``, ``orderby``, ``top``/``skip``, ``count`` and server-side paging
- ``POST /aliases``, ``GET /aliases``, ``PUT|GET|DELETE /aliases('{a}')``

Every request needs ``api-version`` and an ``api-key`` (or an accepted bearer token). Unlike the
service, writes are searchable at once (the service is near-real-time: searchable after a
refresh of about a second), vector search is exact rather than HNSW, every analyzer tokenises
like ``standard.lucene`` and only the cosine metric is implemented. Test hooks on
``AzureSearchContractServer`` inject throttling and per-key failures and record every request.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self

import bm25s

from tests.contract_http import JsonHandler, Routes, serving

API_VERSION = "2026-04-01"
MAX_BATCH_ACTIONS = 1000
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_SKIP = 100_000
DEFAULT_TOP = 50
PAGE_LIMIT = 1000  # the service pages results server-side beyond this many per response
RRF_K = 60

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,126}[a-z0-9_]$")  # and no "--" or "__" (see valid_name)
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
DOCUMENT_KEY = re.compile(r"^[A-Za-z0-9_\-=]{1,1024}$")
ANALYZER = re.compile(r"^(standard\.lucene|standardasciifolding\.lucene|keyword|pattern|simple|stop|whitespace"
                      r"|[a-z]{2}(-[a-z]{2,4})?\.(lucene|microsoft))$")
SCALAR_TYPES = {"Edm.String", "Edm.Int32", "Edm.Int64", "Edm.Double", "Edm.Boolean", "Edm.DateTimeOffset"}
VECTOR_TYPE = "Collection(Edm.Single)"
VECTOR_ALGORITHMS = {"hnsw", "exhaustiveKnn"}


class ServiceError(Exception):
    """An error answered as the service answers it: a status and an OData error body."""

    def __init__(self, status: int, message: str, code: str = "", details: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.details = status, message, code, details

    def body(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_definition(message: str) -> ServiceError:
    return ServiceError(400, f"The request is invalid. Details: definition : {message}", "InvalidRequestParameter",
                        [{"code": "InvalidField", "message": f"{message} Parameters: definition"}])


def invalid_actions(message: str, code: str = "InvalidRequestParameter") -> ServiceError:
    return ServiceError(400, f"The request is invalid. Details: actions : {message}", code)


def invalid_expression(message: str, parameter: str) -> ServiceError:
    return ServiceError(400, f"Invalid expression: {message}\r\nParameter name: {parameter}")


def usable_field(fields: dict[str, dict], name: str, capability: str, parameter: str) -> dict:
    """The field's definition, if it exists and is ``filterable`` or ``sortable`` as the
    expression in ``parameter`` needs; otherwise the service's error."""
    spec = fields.get(name)
    if spec is None:
        raise invalid_expression(f"Could not find a property named '{name}' on type 'search.document'.", parameter)
    if not spec[capability]:
        use = {"filterable": "filter", "sortable": "sort"}[capability]
        raise invalid_expression(f"'{name}' is not a {capability} field. Only {capability} fields can be used in "
                                 f"{use} expressions.", parameter)
    return spec


def valid_name(name: str) -> bool:
    """The service's rule for index and alias names: 2 to 128 lowercase letters, digits, dashes and
    underscores, starting with a letter or digit, no consecutive dashes or underscores."""
    return bool(NAME.match(name)) and "--" not in name and "__" not in name


# --- Index definitions ---------------------------------------------------------------------------

def _is_vector(spec: dict) -> bool:
    return spec["type"] == VECTOR_TYPE


def _is_collection(spec: dict) -> bool:
    return spec["type"].startswith("Collection(")


def _is_text(spec: dict) -> bool:
    return spec["type"] in ("Edm.String", "Collection(Edm.String)")


def _with_defaults(spec: dict) -> dict:
    """A field as the service stores it: unspecified attributes take the service's defaults."""
    vector, collection = _is_vector(spec), _is_collection(spec)
    defaults = {"key": False, "retrievable": True, "stored": True, "searchable": _is_text(spec) or vector,
                "filterable": not vector, "sortable": not collection, "facetable": not vector}
    return {**spec, **{name: value for name, value in defaults.items() if spec.get(name) is None}}


def validate_index(definition: dict) -> dict:
    """The definition normalised, or the service's 400 for what it rejects."""
    name = definition.get("name") or ""
    if not valid_name(name):
        raise invalid_definition("Index name must only contain lowercase letters, digits, dashes or underscores, "
                                 "cannot start or end with dashes, cannot contain consecutive dashes or "
                                 "underscores and is limited to 2 to 128 characters.")
    vector_search = definition.get("vectorSearch") or {}
    algorithms = {a.get("name"): a for a in vector_search.get("algorithms") or []}
    profiles = {p.get("name"): p for p in vector_search.get("profiles") or []}
    for algorithm in algorithms.values():
        if algorithm.get("kind") not in VECTOR_ALGORITHMS:
            raise invalid_definition(f"The vector search algorithm kind '{algorithm.get('kind')}' is not supported.")
        parameters = algorithm.get("hnswParameters") or algorithm.get("exhaustiveKnnParameters") or {}
        if parameters.get("metric", "cosine") != "cosine":
            raise ServiceError(400, "contract server: only the cosine metric is implemented")
    for profile in profiles.values():
        if profile.get("algorithm") not in algorithms:
            raise invalid_definition(f"The vector search profile '{profile.get('name')}' references an algorithm "
                                     f"configuration '{profile.get('algorithm')}' that does not exist.")
    fields, seen = [], set()
    for raw in definition.get("fields") or []:
        spec = _with_defaults(raw)
        field_name, field_type = spec.get("name") or "", spec.get("type")
        if not FIELD_NAME.match(field_name) or field_name.startswith("azureSearch"):
            raise invalid_definition(f"Invalid field name '{field_name}'. Field names must start with a letter and "
                                     "contain only letters, digits or underscores.")
        if field_name in seen:
            raise invalid_definition(f"Field '{field_name}' is defined more than once.")
        seen.add(field_name)
        inner = field_type[len("Collection("):-1] if _is_collection(spec) else field_type
        if inner not in SCALAR_TYPES and field_type != VECTOR_TYPE:
            raise invalid_definition(f"The type '{field_type}' of field '{field_name}' is not supported.")
        if _is_vector(spec):
            profile = profiles.get(spec.get("vectorSearchProfile"))
            if not spec.get("dimensions") or not spec.get("vectorSearchProfile"):
                raise invalid_definition(f"The vector field '{field_name}' must have the properties 'dimensions' "
                                         "and 'vectorSearchProfile' set.")
            if profile is None:
                raise invalid_definition(f"The vector field '{field_name}' references a vector search profile "
                                         f"'{spec['vectorSearchProfile']}' that does not exist.")
            if not 2 <= spec["dimensions"] <= 4096:
                raise invalid_definition(f"The vector field '{field_name}' must have 'dimensions' between 2 and 4096.")
            if not spec["searchable"] or spec["filterable"] or spec["sortable"] or spec["facetable"]:
                raise invalid_definition(f"The vector field '{field_name}' must be searchable and cannot be "
                                         "filterable, sortable or facetable.")
        elif spec.get("dimensions") or spec.get("vectorSearchProfile"):
            raise invalid_definition(f"The field '{field_name}' is not a vector field and cannot have 'dimensions' "
                                     "or 'vectorSearchProfile' set.")
        if spec.get("analyzer") and not ANALYZER.match(spec["analyzer"]):
            raise invalid_definition(f"The analyzer '{spec['analyzer']}' of field '{field_name}' is not supported.")
        fields.append(spec)
    keys = [spec for spec in fields if spec["key"]]
    if len(keys) != 1:
        raise invalid_definition("The index must contain exactly one key field.")
    if keys[0]["type"] != "Edm.String":
        raise invalid_definition(f"The key field '{keys[0]['name']}' must be of type Edm.String.")
    return {**definition, "fields": fields}


@dataclass
class Index:
    definition: dict
    etag: int
    documents: dict[str, dict] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, dict]:
        return {spec["name"]: spec for spec in self.definition["fields"]}

    @property
    def key(self) -> str:
        return next(spec["name"] for spec in self.definition["fields"] if spec["key"])

    def as_json(self) -> dict:
        return {"@odata.etag": f'"0x{self.etag:X}"', **self.definition}


# --- Documents -----------------------------------------------------------------------------------

def _check_value(spec: dict, value: Any, position: int) -> None:
    if value is None:
        return
    if _is_vector(spec):
        if not isinstance(value, list) or not all(isinstance(x, (int, float)) for x in value):
            raise invalid_actions(f"{position}: The vector field '{spec['name']}' must be an array of numbers.")
        if len(value) != spec["dimensions"]:
            raise invalid_actions(
                f"{position}: There's a mismatch in vector dimensions. The vector field '{spec['name']}', with "
                f"dimension of '{spec['dimensions']}', expects a length of '{spec['dimensions']}'. However, the "
                f"provided vector has a length of '{len(value)}'. Please ensure that the vector length matches the "
                "expected length of the vector field.")
        return
    inner = spec["type"][len("Collection("):-1] if _is_collection(spec) else spec["type"]
    values = value if _is_collection(spec) else [value]
    if _is_collection(spec) and not isinstance(value, list):
        raise invalid_actions(f"{position}: Cannot convert a value to target type '{spec['type']}' "
                              f"for field '{spec['name']}'.")
    python_types = {"Edm.String": str, "Edm.DateTimeOffset": str, "Edm.Boolean": bool,
                    "Edm.Int32": int, "Edm.Int64": int, "Edm.Double": (int, float)}[inner]
    for item in values:
        if not isinstance(item, python_types) or (inner != "Edm.Boolean" and isinstance(item, bool)):
            raise invalid_actions(f"{position}: Cannot convert the literal '{item}' to the expected type "
                                  f"'{inner}' for field '{spec['name']}'.")


def validate_actions(index: Index, body: Any) -> list[tuple[str, str, dict]]:
    """(action, key, fields) per action, or the service's 400 for the whole batch."""
    actions = body.get("value") if isinstance(body, dict) else None
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_BATCH_ACTIONS:
        raise ServiceError(400, f"The request is invalid. Details: actions : The items collection must have from 1 "
                                f"to {MAX_BATCH_ACTIONS} valid items to be indexed.")
    fields, key_name, parsed = index.fields, index.key, []
    for position, action in enumerate(actions):
        document = {name: value for name, value in action.items() if name != "@search.action"}
        kind = action.get("@search.action", "upload")
        if kind not in ("upload", "merge", "mergeOrUpload", "delete"):
            raise invalid_actions(f"{position}: Invalid action '{kind}'.")
        unknown = next((name for name in document if name not in fields), None)
        if unknown:
            raise ServiceError(400, f"The request is invalid. Details: The property '{unknown}' does not exist on "
                                    "type 'search.documentFields'. Make sure to only use property names that are "
                                    "defined by the type.")
        key = document.get(key_name)
        if not isinstance(key, str) or not key:
            raise invalid_actions(f"{position}: Document key cannot be missing or empty.", "MissingDocumentKey")
        if not DOCUMENT_KEY.match(key):
            raise invalid_actions(f"{position}: Invalid document key: '{key}'. Keys can only contain letters, "
                                  "digits, underscore (_), dash (-), or equal sign (=).", "InvalidDocumentKey")
        if key.startswith("_"):
            raise invalid_actions(f"{position}: Invalid document key: '{key}'. Keys cannot start with a leading "
                                  "underscore.", "InvalidDocumentKey")
        if kind != "delete":
            for name, value in document.items():
                _check_value(fields[name], value, position)
        parsed.append((kind, key, document))
    return parsed


def apply_action(index: Index, kind: str, key: str, document: dict) -> tuple[int, str | None]:
    """Apply one action; the per-key status code and error message the service reports."""
    existing = index.documents.get(key)
    if kind == "delete":
        index.documents.pop(key, None)
        return 200, None
    if kind == "merge" and existing is None:
        return 404, "Document not found."
    if kind == "upload" or existing is None:
        index.documents[key] = dict(document)
        return (201 if existing is None else 200), None
    existing.update(document)
    return 200, None


def stored_value(spec: dict, document: dict) -> Any:
    value = document.get(spec["name"])
    return [] if value is None and _is_collection(spec) and not _is_vector(spec) else value


def returnable(spec: dict) -> bool:
    return spec["retrievable"] and spec["stored"]


def projection(index: Index, select: str | None, parameter: str) -> list[dict]:
    """The fields a response carries: ``select`` checked like the service, else every retrievable field."""
    fields = index.fields
    if not select or select.strip() == "*":
        return [spec for spec in fields.values() if returnable(spec)]
    chosen = []
    for name in (part.strip() for part in select.split(",")):
        if name not in fields:
            raise invalid_expression(f"Could not find a property named '{name}' on type 'search.document'.",
                                     parameter)
        if not returnable(fields[name]):
            raise invalid_expression(f"The field '{name}' is not retrievable.", parameter)
        chosen.append(fields[name])
    return chosen


# --- OData $filter -------------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w:-])"
                   r"|(?P<datetime>\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2}))"
                   r"|(?P<name>[A-Za-z_][\w.]*(?:/[A-Za-z_]\w*)*)|(?P<punct>[(),:]))")
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}
Predicate = Callable[[dict, dict], bool]  # (document, lambda bindings) -> matches


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = TOKEN.match(text, position)
        if not match:
            raise invalid_expression(f"Syntax error at position {position} in '{text}'.", "$filter")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


class FilterParser:
    """Recursive descent over the OData subset the store sends; anything else is the service's 400."""

    def __init__(self, text: str, fields: dict[str, dict]):
        self.text, self.fields, self.tokens, self.position = text, fields, _tokenize(text), 0
        self.variables: dict[str, dict] = {}

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.position != len(self.tokens):
            self._syntax_error()
        return predicate

    def _syntax_error(self):
        at = self.tokens[self.position][2] if self.position < len(self.tokens) else len(self.text)
        raise invalid_expression(f"Syntax error at position {at} in '{self.text}'.", "$filter")

    def _peek(self, value: str | None = None) -> bool:
        if self.position >= len(self.tokens):
            return False
        return value is None or self.tokens[self.position][1] == value

    def _take(self, kind: str | None = None, value: str | None = None) -> str:
        if self.position >= len(self.tokens):
            self._syntax_error()
        token_kind, token, _ = self.tokens[self.position]
        if (kind and token_kind != kind) or (value and token != value):
            self._syntax_error()
        self.position += 1
        return token

    def _or(self) -> Predicate:
        return self._chain("or", self._and, any)

    def _and(self) -> Predicate:
        return self._chain("and", self._unary, all)

    def _chain(self, word: str, operand, combine) -> Predicate:
        """``operand (word operand)*``, the operands' results combined by ``any`` or ``all``."""
        parts = [operand()]
        while self._peek(word):
            self._take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else (lambda doc, env: combine(part(doc, env) for part in parts))

    def _unary(self) -> Predicate:
        if self._peek("not"):
            self._take()
            inner = self._unary()
            return lambda doc, env: not inner(doc, env)
        if self._peek("("):
            self._take()
            inner = self._or()
            self._take(value=")")
            return inner
        if self._peek("search.in"):
            return self._search_in()
        name = self._take("name")
        if name in ("true", "false"):  # a boolean literal is a whole expression
            return lambda doc, env: name == "true"
        if name.endswith(("/any", "/all")):
            return self._lambda(name)
        if self._peek("("):
            raise invalid_expression(f"Unknown function '{name}'.", "$filter")
        return self._comparison(name)

    def _operand(self, name: str) -> tuple[Callable[[dict, dict], Any], str]:
        """A field (checked filterable, not a collection) or a lambda variable; its reader and Edm type."""
        if name in self.variables:
            return (lambda doc, env: env[name]), self.variables[name]["type"][len("Collection("):-1]
        spec = self._field(name)
        if _is_collection(spec):
            raise invalid_expression(f"The field '{name}' is a collection; use any or all to filter on it.",
                                     "$filter")
        return (lambda doc, env: doc.get(name)), spec["type"]

    def _field(self, name: str) -> dict:
        return usable_field(self.fields, name, "filterable", "$filter")

    def _literal(self, edm_type: str) -> Any:
        kind, token, _ = self.tokens[self.position] if self.position < len(self.tokens) else (None, None, 0)
        if kind == "string" and edm_type in ("Edm.String", "Edm.DateTimeOffset"):
            self.position += 1
            return token[1:-1].replace("''", "'")
        if kind == "number" and edm_type in ("Edm.Int32", "Edm.Int64", "Edm.Double"):
            self.position += 1
            return float(token) if edm_type == "Edm.Double" or "." in token else int(token)
        if kind == "datetime" and edm_type == "Edm.DateTimeOffset":
            self.position += 1
            return token
        if kind == "name" and token in ("true", "false") and edm_type == "Edm.Boolean":
            self.position += 1
            return token == "true"
        if kind == "name" and token == "null":
            self.position += 1
            return None
        if kind is None:
            self._syntax_error()
        raise invalid_expression(f"A binary operator with incompatible types was detected. Found operand types "
                                 f"'{edm_type}' and the literal {token}.", "$filter")

    def _comparison(self, name: str) -> Predicate:
        read, edm_type = self._operand(name)
        operator = self._take("name")
        if operator not in COMPARISONS:
            self.position -= 1
            self._syntax_error()
        literal, compare = self._literal(edm_type), COMPARISONS[operator]
        return lambda doc, env: compare(read(doc, env), literal)

    def _search_in(self) -> Predicate:
        self._take(value="search.in")
        self._take(value="(")
        read, edm_type = self._operand(self._take("name"))
        if edm_type != "Edm.String":
            raise invalid_expression("search.in can only be used on string fields.", "$filter")
        self._take(value=",")
        values = self._literal("Edm.String")
        delimiters = " ,"
        if self._peek(","):
            self._take()
            delimiters = self._literal("Edm.String")
        self._take(value=")")
        allowed = {value for value in re.split("[" + re.escape(delimiters) + "]", values or "") if value}
        return lambda doc, env: read(doc, env) in allowed

    def _lambda(self, name: str) -> Predicate:
        collection, quantifier = name.rsplit("/", 1)
        spec = self._field(collection)
        if not _is_collection(spec) or _is_vector(spec):
            raise invalid_expression(f"The '{quantifier}' operator can only be applied to a collection field; "
                                     f"'{collection}' is not one.", "$filter")
        self._take(value="(")
        if self._peek(")"):
            self._take()
            if quantifier == "all":
                self._syntax_error()
            return lambda doc, env: bool(doc.get(collection))
        variable = self._take("name")
        self._take(value=":")
        self.variables[variable] = spec
        body = self._or()
        del self.variables[variable]
        self._take(value=")")
        check = any if quantifier == "any" else all
        return lambda doc, env: check(body(doc, {**env, variable: item}) for item in doc.get(collection) or [])


def parse_filter(text: str | None, fields: dict[str, dict]) -> Predicate:
    return FilterParser(text, fields).parse() if text and text.strip() else (lambda doc, env: True)


# --- Ranking -------------------------------------------------------------------------------------

def analyze(text: str) -> list[str]:
    """The standard analyzer's view of text: Unicode words, lowercased."""
    return re.findall(r"\w+", text.lower())


def text_ranking(index: Index, query: str, search_fields: list[dict]) -> list[tuple[str, float]]:
    """Matching keys by BM25 score, best first (search mode ``any``; operators are ignored)."""
    terms = analyze(re.sub(r"[+|\-\"()*~^]", " ", query))
    keys = list(index.documents)
    corpus = []
    for key in keys:
        document = index.documents[key]
        words = []
        for spec in search_fields:
            value = document.get(spec["name"])
            for item in value if isinstance(value, list) else [value]:
                words.extend(analyze(item) if isinstance(item, str) else [])
        corpus.append(words)
    if not terms or not any(corpus):
        return []
    bm25 = bm25s.BM25(method="lucene", k1=1.2, b=0.75)  # the service's (Lucene's) parameters and idf
    bm25.index(corpus, show_progress=False)
    scores = bm25.get_scores(terms)
    ranked = [(key, float(score)) for key, score in zip(keys, scores) if score > 0]
    return sorted(ranked, key=lambda pair: -pair[1])


def cosine_score(a: list[float], b: list[float]) -> float:
    """The service's cosine score, 1 / (1 + cosine distance): from 1/3 (opposite) to 1 (same)."""
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    similarity = sum(x * y for x, y in zip(a, b)) / norm if norm else 0.0
    return 1.0 / (1.0 + (1.0 - similarity))


def fuse(rankings: list[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    """Reciprocal Rank Fusion as the service applies it: sum of 1 / (60 + rank), rank from 1."""
    if len(rankings) == 1:
        return rankings[0]
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, (key, _) in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def order(index: Index, ranked: list[tuple[str, float]], orderby: str | None) -> list[tuple[str, float]]:
    if not orderby:
        return ranked
    clauses = []
    for clause in (part.strip() for part in orderby.split(",")):
        match = re.fullmatch(r"(search\.score\(\)|\w+)(?:\s+(asc|desc))?", clause)
        if not match:
            raise invalid_expression(f"Syntax error in '{orderby}'.", "$orderby")
        name, direction = match.group(1), match.group(2) or "asc"
        if name != "search.score()":
            usable_field(index.fields, name, "sortable", "$orderby")
        clauses.append((name, direction == "desc"))
    result = list(ranked)
    for name, descending in reversed(clauses):  # stable sorts, last clause first; nulls sort lowest
        def sort_key(pair, name=name):
            value = pair[1] if name == "search.score()" else index.documents[pair[0]].get(name)
            return (value is not None, value if value is not None else 0)
        result.sort(key=sort_key, reverse=descending)
    return result


def search(index: Index, body: dict, endpoint: str, index_name: str) -> dict:
    fields = index.fields
    matches = parse_filter(body.get("filter"), fields)
    allowed = {key for key, document in index.documents.items() if matches(document, {})}
    skip, top = body.get("skip") or 0, body.get("top")
    if not 0 <= skip <= MAX_SKIP:
        raise ServiceError(400, f"Value must be between 0 and {MAX_SKIP}.\r\nParameter name: $skip",
                           "ParameterValueOutOfRange")
    select = projection(index, body.get("select"), "$select")
    rankings = []
    text = body.get("search")
    vector_queries = body.get("vectorQueries") or []
    post_filter = body.get("vectorFilterMode") in ("postFilter", "strictPostFilter")
    for query in vector_queries:
        if query.get("kind") != "vector":
            raise ServiceError(400, f"contract server: vector query kind '{query.get('kind')}' is not implemented "
                                    "(no vectorizer)")
        k = query.get("k") or 50
        for name in (part.strip() for part in (query.get("fields") or "").split(",")):
            spec = fields.get(name)
            if spec is None or not _is_vector(spec):
                raise ServiceError(400, f"The field '{name}' in the vector field list is not a vector field."
                                        "\r\nParameter name: vector.fields")
            if len(query.get("vector") or []) != spec["dimensions"]:
                raise ServiceError(400, f"The vector field '{name}' expects a length of '{spec['dimensions']}'. "
                                        f"However, the provided vector has a length of "
                                        f"'{len(query.get('vector') or [])}'.\r\nParameter name: vector")
            candidates = [key for key, document in index.documents.items()
                          if document.get(name) is not None and (post_filter or key in allowed)]
            scored = sorted(((key, cosine_score(query["vector"], index.documents[key][name])) for key in candidates),
                            key=lambda pair: -pair[1])[:k]
            rankings.append([pair for pair in scored if pair[0] in allowed])
    if text and text.strip() != "*":
        searchable = [spec for spec in fields.values() if spec["searchable"] and _is_text(spec)]
        if body.get("searchFields"):
            names = [name.strip() for name in body["searchFields"].split(",")]
            unsearchable = [name for name in names if name not in fields or not fields[name]["searchable"]]
            if unsearchable:
                raise invalid_expression(f"The field '{unsearchable[0]}' is not searchable.", "searchFields")
            searchable = [fields[name] for name in names]
        rankings.append([pair for pair in text_ranking(index, text, searchable) if pair[0] in allowed])
    elif not vector_queries:
        rankings.append([(key, 1.0) for key in index.documents if key in allowed])
    ranked = order(index, fuse(rankings), body.get("orderby"))
    page = min(top, PAGE_LIMIT) if top is not None else DEFAULT_TOP
    hits = ranked[skip:skip + page]
    result: dict[str, Any] = {}
    if body.get("count"):
        result["@odata.count"] = len(ranked)
    result["value"] = [{"@search.score": score, **{spec["name"]: stored_value(spec, index.documents[key])
                                                   for spec in select}} for key, score in hits]
    remaining = (top - page) if top is not None else len(ranked) - skip - page
    if remaining > 0 and skip + page < len(ranked):
        next_body = {**body, "skip": skip + page, **({"top": remaining} if top is not None else {})}
        result["@odata.nextLink"] = (f"{endpoint}/indexes('{index_name}')/docs/search.post.search"
                                     f"?api-version={API_VERSION}")
        result["@search.nextPageParameters"] = next_body
    return result


# --- The server ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class _Fault:
    path: str
    remaining: int
    status: int
    retry_after: float


ROUTES = Routes([
    ("POST", r"/indexes", "create_index"),
    ("GET", r"/indexes", "list_indexes"),
    ("PUT", r"/indexes\('(?P<name>[^']*)'\)", "put_index"),
    ("GET", r"/indexes\('(?P<name>[^']*)'\)", "get_index"),
    ("DELETE", r"/indexes\('(?P<name>[^']*)'\)", "delete_index"),
    ("GET", r"/indexes\('(?P<name>[^']*)'\)/search\.stats", "index_stats"),
    ("POST", r"/indexes\('(?P<name>[^']*)'\)/docs/search\.index", "index_documents"),
    ("GET", r"/indexes\('(?P<name>[^']*)'\)/docs/\$count", "count_documents"),
    ("GET", r"/indexes\('(?P<name>[^']*)'\)/docs\('(?P<key>(?:[^']|'')*)'\)", "get_document"),
    ("POST", r"/indexes\('(?P<name>[^']*)'\)/docs/search\.post\.search", "search_documents"),
    ("POST", r"/aliases", "create_alias"),
    ("GET", r"/aliases", "list_aliases"),
    ("PUT", r"/aliases\('(?P<name>[^']*)'\)", "put_alias"),
    ("GET", r"/aliases\('(?P<name>[^']*)'\)", "get_alias"),
    ("DELETE", r"/aliases\('(?P<name>[^']*)'\)", "delete_alias"),
])


class AzureSearchContractServer:
    """The contract server on a free loopback port; use as a context manager.

    ``endpoint`` and ``admin_key`` are what a ``SearchClient`` needs; ``bearer_tokens`` are also
    accepted as ``Authorization: Bearer`` (over HTTPS when given a ``certificate``). Test hooks: ``fail_next`` (throttle a path),
    ``fail_keys`` (per-key 503 in a 207), and ``requests`` / ``count`` / ``bodies`` to assert on.
    """

    def __init__(self, admin_key: str = "contract-admin-key", bearer_tokens: tuple[str, ...] = (),
                 certificate: Path | None = None):
        self.admin_key, self.bearer_tokens, self.certificate = admin_key, set(bearer_tokens), certificate
        self.endpoint = ""
        self.requests: list[RecordedRequest] = []
        self.indexes: dict[str, Index] = {}
        self.aliases: dict[str, dict] = {}
        self._faults: list[_Fault] = []
        self._failing_keys: dict[str, int] = {}
        self._etag = 0
        self._lock = threading.RLock()
        self._stack = ExitStack()

    def __enter__(self) -> Self:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.endpoint = self._stack.enter_context(serving(handler, self.certificate))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    # Test hooks

    def fail_next(self, path: str, times: int = 1, status: int = 503, retry_after: float = 1.0) -> None:
        """Answer the next ``times`` requests whose path contains ``path`` with ``status`` (429 or
        503) and a ``Retry-After`` of ``retry_after`` seconds, before touching any state."""
        with self._lock:
            self._faults.append(_Fault(path, times, status, retry_after))

    def fail_keys(self, keys: list[str] | set[str], attempts: int = 1) -> None:
        """Make each key fail with a per-key 503 (in a 207 answer) in the next ``attempts`` batches
        that carry it; the rest of those batches is applied."""
        with self._lock:
            self._failing_keys.update({key: attempts for key in keys})

    def count(self, path: str, method: str | None = None) -> int:
        """How many requests went to a path containing ``path``."""
        return len(self.bodies(path, method))

    def bodies(self, path: str, method: str | None = None) -> list[Any]:
        """The JSON bodies of the requests to a path containing ``path``, oldest first."""
        with self._lock:
            return [request.body for request in self.requests
                    if path in request.path and method in (None, request.method)]

    # Service behaviour

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               raw: bytes | None) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body or text, extra headers) for one request."""
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, _json_or_none(raw)))
            auth = self._authenticate(headers)
            if auth:
                return auth.status, auth.body(), {}
            if query.get("api-version", [None])[0] != API_VERSION:
                error = ServiceError(400, "Invalid or missing api-version query string parameter.")
                return error.status, error.body(), {}
            for fault in self._faults:
                if fault.remaining > 0 and fault.path in path:
                    fault.remaining -= 1
                    error = ServiceError(fault.status, HTTPStatus(fault.status).phrase)
                    return fault.status, error.body(), {"Retry-After": str(fault.retry_after)}
            if raw is not None and len(raw) > MAX_REQUEST_BYTES:
                error = ServiceError(413, f"The request is too large. The maximum request size is "
                                          f"{MAX_REQUEST_BYTES} bytes.", "RequestEntityTooLarge")
                return 413, error.body(), {}
            route = ROUTES.match(method, path)
            if route is not None:
                name, params = route
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return 400, ServiceError(400, "The request is invalid. Details: The request body is not "
                                                  "valid JSON.").body(), {}
                try:
                    status, payload = getattr(self, name)(body=body, query=query, **params)
                except ServiceError as error:
                    return error.status, error.body(), {}
                return status, payload, {}
            return 404, ServiceError(404, f"contract server: no route for {method} {path}").body(), {}

    def _authenticate(self, headers: Any) -> ServiceError | None:
        key, authorization = headers.get("api-key"), headers.get("Authorization") or ""
        if key is not None:
            return None if key == self.admin_key else ServiceError(403, "Authorization failed.")
        if authorization.startswith("Bearer "):
            return None if authorization[len("Bearer "):] in self.bearer_tokens else \
                ServiceError(401, "Authentication failed: the bearer token is not valid.")
        return ServiceError(401, "Authentication failed: an api-key header or a bearer token is required.")

    def _next_etag(self) -> int:
        self._etag += 1
        return self._etag

    def _index(self, name: str) -> tuple[str, Index]:
        """An index by its name or an alias's; the service's 404 otherwise."""
        target = self.aliases[name]["indexes"][0] if name in self.aliases else name
        if target not in self.indexes:
            raise ServiceError(404, f"The index '{name}' for service 'contract' was not found.")
        return target, self.indexes[target]

    def create_index(self, body: dict, query: dict) -> tuple[int, Any]:
        definition = validate_index(body)
        if definition["name"] in self.indexes or definition["name"] in self.aliases:
            raise ServiceError(409, f"Cannot create index '{definition['name']}' because it already exists.",
                               "ResourceNameAlreadyInUse")
        index = self.indexes[definition["name"]] = Index(definition, self._next_etag())
        return 201, index.as_json()

    def list_indexes(self, body: dict, query: dict) -> tuple[int, Any]:
        selected = [part.strip() for part in query.get("$select", ["*"])[0].split(",")]
        definitions = [index.as_json() for index in self.indexes.values()]
        if selected != ["*"]:
            definitions = [{name: value for name, value in definition.items() if name in selected}
                           for definition in definitions]
        return 200, {"value": definitions}

    def put_index(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        target = self.aliases[name]["indexes"][0] if name in self.aliases else name
        if body.get("name") not in (name, target):
            raise invalid_definition(f"The index name '{body.get('name')}' in the request body does not match "
                                     f"the name '{name}' in the URL.")
        definition = validate_index({**body, "name": target})
        existing = self.indexes.get(target)
        if existing is None:
            self.indexes[target] = Index(definition, self._next_etag())
            return 201, self.indexes[target].as_json()
        new_fields = {spec["name"]: spec for spec in definition["fields"]}
        for field_name, spec in existing.fields.items():
            if new_fields.get(field_name) != spec:
                raise ServiceError(400, f"The request is invalid. Details: definition : Existing field(s) "
                                        f"'{field_name}' cannot be changed or removed.", "OperationNotAllowed")
        existing.definition, existing.etag = definition, self._next_etag()
        return 200, existing.as_json()

    def get_index(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        return 200, self._index(name)[1].as_json()

    def delete_index(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        if name not in self.indexes:  # an alias cannot be used to delete an index
            raise ServiceError(404, f"The index '{name}' for service 'contract' was not found.")
        mapped = sorted(alias for alias, spec in self.aliases.items() if name in spec["indexes"])
        if mapped:
            raise ServiceError(400, f"The index '{name}' cannot be deleted because it is mapped to alias(es) "
                                    f"{', '.join(repr(alias) for alias in mapped)}. Delete the alias(es) or map "
                                    "them to a different index before deleting the index.", "CannotDeleteIndex")
        del self.indexes[name]
        return 204, None

    def index_stats(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        index = self._index(name)[1]
        vectors = [spec for spec in index.definition["fields"] if _is_vector(spec)]
        return 200, {"documentCount": len(index.documents),
                     "storageSize": sum(len(json.dumps(document)) for document in index.documents.values()),
                     "vectorIndexSize": sum(4 * spec["dimensions"] for spec in vectors
                                            for document in index.documents.values()
                                            if document.get(spec["name"]) is not None)}

    def index_documents(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        index = self._index(name)[1]
        results = []
        for kind, key, document in validate_actions(index, body):
            if self._failing_keys.get(key, 0) > 0:
                self._failing_keys[key] -= 1
                results.append({"key": key, "status": False, "statusCode": 503,
                                "errorMessage": "Service unavailable; the document was not indexed, retry later."})
                continue
            status, message = apply_action(index, kind, key, document)
            results.append({"key": key, "status": message is None, "statusCode": status, "errorMessage": message})
        return (200 if all(result["status"] for result in results) else 207), {"value": results}

    def count_documents(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        return 200, str(len(self._index(name)[1].documents))

    def get_document(self, body: dict, query: dict, name: str, key: str) -> tuple[int, Any]:
        index = self._index(name)[1]
        document = index.documents.get(key.replace("''", "'"))
        select = projection(index, query.get("$select", [None])[0], "$select")
        if document is None:
            raise ServiceError(404, f"Document with key '{key}' was not found.")
        return 200, {spec["name"]: stored_value(spec, document) for spec in select}

    def search_documents(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        return 200, search(self._index(name)[1], body, self.endpoint, name)

    def _alias(self, body: dict, name: str) -> dict:
        if not valid_name(name):
            raise ServiceError(400, "Alias name must only contain lowercase letters, digits, dashes or "
                                    "underscores, cannot start or end with dashes, cannot contain consecutive "
                                    "dashes or underscores and is limited to 2 to 128 characters.")
        if name in self.indexes:
            raise ServiceError(400, f"The alias name '{name}' is already used by an index.")
        indexes = body.get("indexes")
        if not isinstance(indexes, list) or len(indexes) != 1:
            raise ServiceError(400, "The request is invalid. Details: An alias must map to exactly one index.")
        if indexes[0] not in self.indexes:
            raise ServiceError(400, f"The index '{indexes[0]}' mapped by alias '{name}' does not exist.")
        return {"name": name, "indexes": list(indexes), "etag": self._next_etag()}

    @staticmethod
    def _alias_json(alias: dict) -> dict:
        return {"@odata.etag": f'"0x{alias["etag"]:X}"', "name": alias["name"], "indexes": alias["indexes"]}

    def create_alias(self, body: dict, query: dict) -> tuple[int, Any]:
        name = body.get("name") or ""
        if name in self.aliases:
            raise ServiceError(409, f"Cannot create alias '{name}' because it already exists.",
                               "ResourceNameAlreadyInUse")
        alias = self.aliases[name] = self._alias(body, name)
        return 201, self._alias_json(alias)

    def list_aliases(self, body: dict, query: dict) -> tuple[int, Any]:
        return 200, {"value": [self._alias_json(alias) for alias in self.aliases.values()]}

    def put_alias(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        if body.get("name", name) != name:
            raise ServiceError(400, f"The alias name '{body.get('name')}' in the request body does not match "
                                    f"the name '{name}' in the URL.")
        created = name not in self.aliases
        alias = self.aliases[name] = self._alias(body, name)
        return (201 if created else 200), self._alias_json(alias)

    def get_alias(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        if name not in self.aliases:
            raise ServiceError(404, f"The alias '{name}' for service 'contract' was not found.")
        return 200, self._alias_json(self.aliases[name])

    def delete_alias(self, body: dict, query: dict, name: str) -> tuple[int, Any]:
        if self.aliases.pop(name, None) is None:
            raise ServiceError(404, f"The alias '{name}' for service 'contract' was not found.")
        return 204, None


def _json_or_none(raw: bytes | None) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class _Handler(JsonHandler):
    server_state: AzureSearchContractServer

    def _answer(self) -> None:
        path, query, raw = self.read_request()
        self.send_payload(*self.server_state.handle(self.command, path, query, self.headers, raw))

    do_GET = do_PUT = do_POST = do_DELETE = _answer

