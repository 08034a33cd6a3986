"""Exercises of the catalogue as those who set them and those who answer them see them."""

from __future__ import annotations

from shared.readmodels.documents import Exercise, JsonObject, as_json

_ANSWER_KEY = ("acceptedAnswers", "tolerance")


def exercise(doc: Exercise, *, with_key: bool) -> JsonObject:
    """An exercise of the catalogue; without the answer key for those who answer it."""
    shown = as_json(doc)
    if with_key:
        return shown
    return {
        **shown,
        "questions": [
            {k: v for k, v in q.items() if k not in _ANSWER_KEY} for q in shown["questions"]
        ],
    }


def catalogue_row(doc: Exercise) -> JsonObject:
    """An exercise in the catalogue's list: everything but its questions, which are counted."""
    return {k: v for k, v in as_json(doc).items() if k != "questions"} | {
        "questions": len(doc.questions)
    }
