"""Document-level access control: which chunks a caller may see.

Every chunk carries its document's ``acl`` (the groups allowed to read it; empty when the
source gave none). A caller presents its groups; a chunk is visible when the two intersect.
A chunk without an acl is visible to everyone under the ``public`` policy and to no one under
``deny``. Stores translate an ``AccessFilter`` into their native filter; ``allows`` is the
same rule in Python, for in-process candidates (BM25) and for the gate's leak check.

A local folder has no metadata of its own, so its documents' acls come from a mapping file
(``glob: [groups]``) parsed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

UNLABELLED_POLICIES = ("public", "deny")


def check_policy(unlabelled: str) -> None:
    if unlabelled not in UNLABELLED_POLICIES:
        raise ValueError(f"unlabelled must be one of {', '.join(UNLABELLED_POLICIES)}, not {unlabelled!r}")


@dataclass(frozen=True)
class AccessFilter:
    groups: tuple[str, ...]
    unlabelled: str = "public"

    def __post_init__(self) -> None:
        check_policy(self.unlabelled)

    @classmethod
    def of(cls, groups: Iterable[str] | None, unlabelled: str) -> AccessFilter | None:
        """The filter for a caller's groups; None (no trimming) for a trusted caller that gives none."""
        return None if groups is None else cls(tuple(sorted({str(g) for g in groups})), unlabelled)

    def allows(self, acl: Iterable[str] | None) -> bool:
        acl = list(acl or [])
        if not acl:
            return self.unlabelled == "public"
        return not set(acl).isdisjoint(self.groups)


AclRules = list[tuple[re.Pattern, list[str]]]


def glob_regex(glob: str) -> re.Pattern:
    """A mapping-file glob as a pattern over a file's path relative to the source folder:
    ``*`` and ``?`` stay within one folder, ``**`` spans folders (``**/`` also matches none),
    and a trailing ``/`` means everything under that folder."""
    glob = glob.strip().lstrip("/")
    glob += "**" if glob.endswith("/") else ""
    tokens = re.split(r"(\*\*/|\*\*|\*|\?)", glob)
    wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(token, re.escape(token)) for token in tokens))


def parse_acl_mapping(text: str) -> AclRules:
    """The rules of an ACL mapping file (YAML, ``glob: [groups]``, in order); ValueError says
    what is wrong. An empty list is a rule too: the files it matches have no acl."""
    try:
        mapping = yaml.load(text, Loader=_MappingLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None) or str(error)
        hint = " (quote a pattern that starts with *)" if "alias" in str(error) else ""
        raise ValueError(f"not valid YAML{f' at line {mark.line + 1}' if mark else ''}: {problem}{hint}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError("must be a YAML mapping of glob: [groups], with at least one pattern")
    rules = []
    for glob, groups in mapping.items():
        if not isinstance(groups, list) or not all(isinstance(g, str) and g.strip() for g in groups):
            raise ValueError(f"pattern {glob!r}: groups must be a list of names ([] for no acl)")
        rules.append((glob_regex(glob), list(dict.fromkeys(g.strip() for g in groups))))
    return rules


def acl_for(relative_path: str, rules: AclRules) -> list[str]:
    """CODEOWNERS semantics: the last pattern that matches the path decides."""
    return next((groups for pattern, groups in reversed(rules) if pattern.fullmatch(relative_path)), [])


class _MappingLoader(yaml.SafeLoader):
    """Safe YAML whose keys must be strings, each once: a repeated pattern's place in the
    last-match-wins order would be ambiguous."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str) or key in seen:
                problem = "is not a string" if not isinstance(key, str) else "is given twice"
                raise ValueError(f"line {key_node.start_mark.line + 1}: pattern {key!r} {problem}")
            seen.add(key)
        return super().construct_mapping(node, deep)
