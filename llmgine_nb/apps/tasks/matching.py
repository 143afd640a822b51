"""Fuzzy matching of what people say to projects, users and tasks.

Standard library only: a light normaliser and stemmer, token overlap, and
``difflib`` similarity for typos.  Each ``match_*`` function returns ranked
:class:`Candidate` objects and applies one policy:

- **no candidates**: nothing scored above ``threshold``;
- **one candidate**: a clear match (an exact name, or a best score more than
  ``margin`` ahead of the next);
- **several candidates**: an ambiguous reference, best first - the cue to ask
  "do you mean 1) X, 2) Y or 3) Z?".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Generic, TypeVar

from .board import InvalidInput, Project, Task, User

__all__ = [
    "Candidate",
    "match_projects",
    "match_users",
    "match_tasks",
    "name_score",
    "statement_score",
    "NAME_THRESHOLD",
    "TASK_THRESHOLD",
    "MARGIN",
]

T = TypeVar("T")

NAME_THRESHOLD = 0.6  # below this a name is not a plausible reference at all
TASK_THRESHOLD = 0.3  # statements carry extra words, so task scores run lower
MARGIN = 0.1  # a best score this far ahead of the runner-up is a clear match
_TOKEN_SIMILAR = 0.8  # two words this similar count as the same word (typos, stems)


@dataclass(frozen=True)
class Candidate(Generic[T]):
    """One possible meaning of a reference: the item, a score in [0, 1], and the text that matched."""

    item: T
    score: float
    matched: str


# -- normalising ------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
# Words that carry no meaning for telling tasks apart, including the status
# verbs people wrap a task in ("I've just finished ...").
_STOPWORDS = frozenset(
    """
    a an the and or of to for in on at by with from into about out up off over
    i i've ive ve me my mine we our us you your he she they them their it its this that these those
    is are was were be been being am have has had do did does done doing
    just already finally now today yesterday also still all some any
    finish finished finishing complete completed completing wrap wrapped
    task tasks thing things stuff job work
    please can could would will should want need
    """.split()
)
_IRREGULAR = {"sent": "send", "wrote": "write", "written": "write", "made": "make", "paid": "pay", "bought": "buy"}


def _normalise(text: str) -> str:
    lowered = str(text).lower().replace("\u2019", "'")
    lowered = re.sub(r"'s\b", "", lowered)  # "Sam's" -> "sam"
    return " ".join(_WORD.findall(lowered))


def _stem(word: str) -> str:
    """A deliberately crude stemmer: both sides go through it, so consistency beats accuracy."""
    word = _IRREGULAR.get(word, word)
    if len(word) > 5 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _content_tokens(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _normalise(text).split():
        if word not in _STOPWORDS:
            seen.setdefault(_stem(word), None)
    return list(seen)


def _word_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    ratio = SequenceMatcher(None, a, b).ratio()
    return ratio if ratio >= _TOKEN_SIMILAR else 0.0


def _coverage(of: Sequence[str], by: Sequence[str]) -> float:
    """How much of ``of`` is found in ``by`` (0..1), allowing near-identical words."""
    if not of or not by:
        return 0.0
    return sum(max(_word_similarity(w, other) for other in by) for w in of) / len(of)


# -- scoring ----------------------------------------------------------------------


def name_score(query: str, name: str) -> float:
    """How well ``query`` names ``name`` (0..1): exact 1.0, whole words ~0.9, prefixes ~0.75, typos by similarity."""
    q, n = _normalise(query), _normalise(name)
    if not q or not n:
        return 0.0
    if q == n:
        return 1.0
    q_words, n_words = q.split(), n.split()
    best = 0.0
    if all(w in n_words for w in q_words):
        best = 0.85 + 0.1 * len(q_words) / len(n_words)
    elif len(q) >= 2 and all(any(nw.startswith(w) for nw in n_words) for w in q_words):
        best = 0.7 + 0.2 * len(q) / len(n)
    best = max(best, 0.9 * SequenceMatcher(None, q, n).ratio())
    # A typo in one word of a longer name ("Recruitmnet" for "Recruitment Drive").
    if len(q_words) <= len(n_words):
        best = max(best, 0.85 * _coverage(q_words, n_words) * (0.8 + 0.2 * len(q_words) / len(n_words)))
    return min(best, 1.0)


def statement_score(statement: str, title: str, description: str = "") -> float:
    """How well a statement ("I've finished sending the forms") refers to a task (0..1).

    Mostly how much of the task's title the statement covers, plus how much
    of the statement the title (and, at a discount, the description) explains.
    """
    said = _content_tokens(statement)
    title_words = _content_tokens(title)
    if not said or not title_words:
        return 0.0
    title_covered = _coverage(title_words, said)
    said_explained = _coverage(said, title_words)
    description_words = _content_tokens(description)
    if description_words:
        said_explained = max(said_explained, 0.5 * said_explained + 0.5 * _coverage(said, title_words + description_words))
    return 0.6 * title_covered + 0.4 * said_explained


# -- the ranking policy ----------------------------------------------------------------


def _rank(
    scored: Iterable[Candidate[T]], *, threshold: float, margin: float, limit: int
) -> list[Candidate[T]]:
    ranked = sorted((c for c in scored if c.score >= threshold), key=lambda c: -c.score)
    if not ranked:
        return []
    top = ranked[0].score
    if top >= 1.0 and (len(ranked) == 1 or ranked[1].score < 1.0):
        return ranked[:1]  # an exact name wins outright
    close = [c for c in ranked if c.score >= top - margin - 1e-9]
    return close[: max(1, limit)]


# Ids and email names are matched too, but never count as exact: "sam" being
# Sam Carter's id must not hide that "Sam" could also be Sam Lee.
_ALIAS_CAP = 0.95


def _best_label(query: str, name: str, aliases: Iterable[str]) -> tuple[float, str]:
    best = (name_score(query, name), name)
    for alias in aliases:
        best = max(best, (min(name_score(query, alias), _ALIAS_CAP), alias))
    return best


def _require_query(text: str, what: str) -> None:
    if not _normalise(text):
        raise InvalidInput(f"Say which {what} you mean; the text to match was empty.")


def match_projects(
    name: str,
    projects: Iterable[Project],
    *,
    threshold: float = NAME_THRESHOLD,
    margin: float = MARGIN,
    limit: int = 3,
) -> list[Candidate[Project]]:
    """Rank ``projects`` by how well ``name`` names them (see the module docstring for the policy).

    Pass ``board.active_projects()`` when the project is for a new task.
    """
    _require_query(name, "project")
    scored = (Candidate(p, *_best_label(name, p.name, [p.id])) for p in projects)
    return _rank(scored, threshold=threshold, margin=margin, limit=limit)


def match_users(
    name: str,
    users: Iterable[User],
    *,
    threshold: float = NAME_THRESHOLD,
    margin: float = MARGIN,
    limit: int = 3,
) -> list[Candidate[User]]:
    """Rank ``users`` by how well ``name`` ("Sam", "sam's", "Sam Carter", an email) names them."""
    _require_query(name, "person")
    query = str(name).strip().lower()
    candidates = []
    for user in users:
        if query == user.email:
            candidates.append(Candidate(user, 1.0, user.email))
            continue
        score, label = _best_label(name, user.name, [user.id, user.email.split("@")[0]])
        candidates.append(Candidate(user, score, label))
    return _rank(candidates, threshold=threshold, margin=margin, limit=limit)


def match_tasks(
    statement: str,
    tasks: Iterable[Task],
    *,
    threshold: float = TASK_THRESHOLD,
    margin: float = MARGIN,
    limit: int = 3,
) -> list[Candidate[Task]]:
    """Rank ``tasks`` by how well ``statement`` refers to them.

    Pass ``board.active_tasks(user_id)`` for "I've just finished ..." updates.
    A task id in the statement ("T3") is an exact match.
    """
    _require_query(statement, "task")
    task_list = list(tasks)
    words = set(_normalise(statement).split())
    by_id = [t for t in task_list if t.id.lower() in words]
    if len(by_id) == 1:
        return [Candidate(by_id[0], 1.0, by_id[0].id)]
    scored = (Candidate(t, statement_score(statement, t.title, t.description), t.title) for t in task_list)
    return _rank(scored, threshold=threshold, margin=margin, limit=limit)
