"""Answer parsing: clear answers parse, ambiguous ones fail with a reason (never guessed)."""

from __future__ import annotations

import pytest

from vlmlab.rating.parse import ParseFailure, parse_emotion, parse_json_answer, parse_rating

EMOTIONS = ["happy", "sad", "angry", "fearful", "surprised", "neutral"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("happy", "happy"),
        ("The face looks Happy.", "happy"),
        ("Anger.", "angry"),
        ("I think the person is scared", "fearful"),
        ("surprise!", "surprised"),
        ("It is not happy, it is sad.", "sad"),
        ("**Neutral**", "neutral"),
    ],
)
def test_emotion_parses(text, expected):
    assert parse_emotion(text, EMOTIONS) == expected


@pytest.mark.parametrize("text", ["", "I cannot tell.", "happy or sad", "disgusted"])
def test_emotion_fails(text):
    with pytest.raises(ParseFailure):
        parse_emotion(text, EMOTIONS)


@pytest.mark.parametrize(
    "text, expected",
    [("7", 7), ("7/9", 7), ("7 out of 9", 7), ("I'd say seven.", 7), ("Rating: 3.", 3), ("On a scale of 1-9, 8", 8), (" 9\n", 9)],
)
def test_rating_parses(text, expected):
    assert parse_rating(text) == expected


@pytest.mark.parametrize("text", ["", "between 6 and 7", "12", "0", "6.5", "high", "3 or 4"])
def test_rating_fails(text):
    with pytest.raises(ParseFailure):
        parse_rating(text)


def test_json_answer():
    a = parse_json_answer('```json\n{"emotion": "Angry", "valence": "2", "arousal": 8}\n```', EMOTIONS)
    assert (a.emotion, a.valence, a.arousal) == ("angry", 2, 8)
    with pytest.raises(ParseFailure, match="lacks arousal"):
        parse_json_answer('{"emotion": "sad", "valence": 2}', EMOTIONS)
    with pytest.raises(ParseFailure, match="invalid JSON"):
        parse_json_answer('{"emotion": sad}', EMOTIONS)
    with pytest.raises(ParseFailure, match="no JSON"):
        parse_json_answer("sad, 2, 3", EMOTIONS)
