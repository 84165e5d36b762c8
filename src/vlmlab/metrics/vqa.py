"""VQA accuracy, one mode per published evaluator, each equal to its source.

Every mode scores a question as the mean over the 10 leave-one-out subsets of the human answers of
min(1, matches / 3) (0/1/2/3/4+ matching annotators: 0, 0.3, 0.6, 0.9, 1.0); they differ only in
how the prediction and the answers are normalised before comparing (README "VQA accuracy modes"):

- `official`: GT-Vision-Lab/VQA master `vqaEval.py` (since the 2021 commit a013f00 "Fixed
  processing answers bug"). Both sides: newlines/tabs to spaces, stripped. When the ten answers
  then all agree, nothing more on either side; when they disagree, both sides get
  `process_punctuation` and `process_digit_article`.
- `vqa2016`: the same file from 2016 to 2021 (commit 458a8b2). The prediction is always cleaned
  and fully normalised; the answers are compared raw when all ten agree, and otherwise get
  `process_punctuation` only (no lower-casing, number words or articles).
- `openflamingo`: mlfoundations/open_flamingo `eval/vqa_metric.py`, copied unchanged by
  ForJadeForest/Lever-LM (`open_mmicl/metrics/vqa_metrics.py`): both sides always cleaned and fully
  normalised; an answer without `answer_type` counts as "other".
- `okvqa`: `openflamingo` with the prediction first stemmed the way OpenFlamingo evaluates OK-VQA
  (`ok_vqa_utils.py`). It needs `nltk` (with punkt, averaged_perceptron_tagger, wordnet data) and
  `inflection`.
- `lmms-eval`: EvolvingLMMs-Lab/lmms-eval `EvalAIAnswerProcessor.__call__` on both sides, as its
  ok_vqa, textvqa and vizwiz_vqa tasks apply it: lower-case, "," and "?" deleted, "'s" split off
  to " 's", then cleaned and fully normalised (its comma rule also catches "1,,000").
- `lmms-eval-vqav2`: lmms-eval's vqav2 task, which calls only the processor's
  `process_punctuation` and `process_digit_article` on both sides (no "," / "?" / "'s" step).

Call `vqa_accuracy(predictions, annotations, mode="official")` with `{question_id: answer}` and a
list of VQA annotation dicts; `question_accuracy(prediction, answers)` scores one question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from vlmlab.errors import ConfigError, DataError, RunError

MODES = ("official", "vqa2016", "openflamingo", "okvqa", "lmms-eval", "lmms-eval-vqav2")

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
ARTICLES = ("a", "an", "the")
PUNCTUATION = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
# Kept verbatim from the official code, including the lookahead "(?!<=\d)" that was meant as a
# lookbehind: a period is removed unless a digit follows it.
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
# lmms-eval's EvalAIAnswerProcessor uses this one instead: it also sees "1,,000" as a number.
_LMMS_COMMA_STRIP = re.compile(r"(?<=\d)(\,)+(?=\d)")


def process_punctuation(text: str, comma_number: re.Pattern[str] = _COMMA_STRIP) -> str:
    """The official processPunctuation.

    A punctuation mark next to a space (or any text containing a digit-comma-digit) is deleted,
    otherwise replaced by a space; then periods not followed by a digit are deleted (the official
    code passes re.UNICODE (=32) as the `count` argument, so at most 32 of them; kept).
    """
    out = text
    has_comma_number = comma_number.search(text) is not None
    for p in PUNCTUATION:
        if (p + " " in text or " " + p in text) or has_comma_number:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=re.UNICODE)


def process_digit_article(text: str) -> str:
    """The official processDigitArticle: lower-case, number words -> digits, drop articles, contractions."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _full(text: str) -> str:
    """Cleaned, then both official normalisations (the step every mode shares in some form)."""
    return process_digit_article(process_punctuation(_clean(text)))


def _lmms_steps(text: str) -> str:
    """What lmms-eval's vqav2 task applies: cleaned, then the processor's two official-style steps."""
    return process_digit_article(process_punctuation(_clean(text), _LMMS_COMMA_STRIP))


def _lmms_eval(text: str) -> str:
    """lmms-eval's `EvalAIAnswerProcessor.__call__`: its word_tokenize step, then `_lmms_steps`."""
    return _lmms_steps(text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip())


def normalize_prediction(prediction: str, mode: str = "official", answers: Sequence[str] | None = None) -> str:
    """The prediction as the chosen mode compares it with the human answers.

    `official` needs the answers: it normalises the prediction only when they disagree.
    """
    return normalize(prediction, answers or [], mode)[0]


def normalize_answers(answers: Sequence[str], mode: str = "official") -> list[str]:
    """The human answers as the chosen mode compares them (see the module docstring for the rule)."""
    return normalize("", answers, mode)[1]


def normalize(prediction: str, answers: Sequence[str], mode: str = "official") -> tuple[str, list[str]]:
    """(prediction, answers) after the chosen mode's normalisation, ready for exact comparison."""
    if mode == "official":
        gts = [_clean(a) for a in answers]
        if len(set(gts)) > 1:
            return _full(prediction), [process_digit_article(process_punctuation(a)) for a in gts]
        return _clean(prediction), gts
    if mode == "vqa2016":
        gts = [process_punctuation(a) for a in answers] if len(set(answers)) > 1 else list(answers)
        return _full(prediction), gts
    if mode == "lmms-eval":
        return _lmms_eval(prediction), [_lmms_eval(a) for a in answers]
    if mode == "lmms-eval-vqav2":
        return _lmms_steps(prediction), [_lmms_steps(a) for a in answers]
    if mode == "okvqa":
        prediction = okvqa_stem(prediction)
    elif mode != "openflamingo":
        raise ConfigError(f"unknown VQA mode {mode!r}; choose one of {', '.join(MODES)}")
    return _full(prediction), [_full(a) for a in answers]


def question_accuracy(prediction: str, answers: Sequence[str], mode: str = "official") -> float:
    """Accuracy of one prediction in [0, 1]: mean over leave-one-out subsets of min(1, matches / 3)."""
    if not answers:
        raise DataError("a VQA question has no human answers")
    pred, gts = normalize(prediction, answers, mode)
    matches = [g == pred for g in gts]
    total = sum(matches)
    accs = [min(1.0, float(total - m) / 3) for m in matches]
    return float(sum(accs)) / len(accs)


@dataclass
class VqaScores:
    """Result of `vqa_accuracy`; percentages rounded to 2 decimals as the official tool prints them.

    Attributes:
        mode: one of MODES.
        accuracy: overall accuracy in percent (rounded).
        accuracy_exact: overall accuracy in percent, unrounded.
        per_question: accuracy in percent per question id (rounded).
        per_answer_type / per_question_type: accuracy in percent per type (rounded).
    """

    mode: str
    accuracy: float
    accuracy_exact: float
    per_question: dict[Any, float]
    per_answer_type: dict[str, float]
    per_question_type: dict[str, float]

    def to_dict(self) -> dict:
        """JSON-ready dict with the CLI's keys."""
        return {
            "accuracy": self.accuracy,
            "accuracy_exact": self.accuracy_exact,
            "mode": self.mode,
            "n": len(self.per_question),
            "per_answer_type": self.per_answer_type,
            "per_question_type": self.per_question_type,
            "per_question": {str(k): v for k, v in self.per_question.items()},
        }


def vqa_accuracy(
    predictions: Mapping[Any, str],
    annotations: Sequence[Mapping[str, Any]],
    *,
    mode: str = "official",
    question_ids: Sequence[Any] | None = None,
    allow_missing: bool = False,
) -> VqaScores:
    """VQA accuracy over questions, per question, per answer type and per question type.

    Args:
        predictions: answer per question id.
        annotations: VQA annotation dicts (`question_id`, `answers` [{`answer`}], `answer_type`,
            `question_type`), as in the VQA v2 / OK-VQA annotation files.
        mode: one of MODES (module docstring).
        question_ids: the questions to evaluate (default: every annotated question).
        allow_missing: evaluate only questions that have both a prediction and an annotation
            instead of raising DataError.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown VQA mode {mode!r}; choose one of {', '.join(MODES)}")
    by_id = {a["question_id"]: a for a in annotations}
    expected = list(question_ids) if question_ids is not None else list(by_id)
    no_annotation = [q for q in (question_ids or []) if q not in by_id]
    if no_annotation:
        raise DataError(f"{len(no_annotation)} question id(s) have no annotation (e.g. {no_annotation[:5]}); use the matching annotation file")
    expected_set = set(expected)
    extra = [q for q in predictions if q not in expected_set]
    absent = [q for q in expected if q not in predictions]
    if (extra or absent) and not allow_missing:
        parts = []
        if extra:
            parts.append(f"{len(extra)} predicted question id(s) are not in the annotations (e.g. {extra[:5]})")
        if absent:
            parts.append(f"{len(absent)} question id(s) have no prediction (e.g. {absent[:5]})")
        raise DataError("; ".join(parts) + "; fix the ids or pass --allow-missing")
    ids = [q for q in expected if q in predictions]
    if not ids:
        raise DataError("no question has both a prediction and an annotation")

    per_q: dict[Any, float] = {}
    by_ans: dict[str, list[float]] = {}
    by_ques: dict[str, list[float]] = {}
    for q in ids:
        ann = by_id[q]
        try:
            answers = [a["answer"] for a in ann["answers"]]
        except (KeyError, TypeError) as exc:
            raise DataError(f"annotation of question {q!r} has no answers[].answer list") from exc
        acc = question_accuracy(predictions[q], answers, mode)
        per_q[q] = acc
        by_ans.setdefault(str(ann.get("answer_type", "other")), []).append(acc)
        by_ques.setdefault(str(ann.get("question_type", "unknown")), []).append(acc)

    def pct(values: Sequence[float]) -> float:
        return round(100 * float(sum(values)) / len(values), 2)

    overall = list(per_q.values())
    return VqaScores(
        mode=mode,
        accuracy=pct(overall),
        accuracy_exact=100 * float(sum(overall)) / len(overall),
        per_question={q: round(100 * a, 2) for q, a in per_q.items()},
        per_answer_type={k: pct(v) for k, v in by_ans.items()},
        per_question_type={k: pct(v) for k, v in by_ques.items()},
    )


# OpenFlamingo's OK-VQA stemming (open_flamingo/eval/ok_vqa_utils.py): words the automatic rules
# miss or get wrong, mapped to what the OK-VQA v1.1 answers contain.
OKVQA_MANUAL_MATCHES = {
    "police": "police", "las": "las", "vegas": "vegas", "yes": "yes", "jeans": "jean", "hell's": "hell",
    "domino's": "domino", "morning": "morn", "clothes": "cloth", "are": "are", "riding": "ride",
    "leaves": "leaf", "dangerous": "danger", "clothing": "cloth", "texting": "text", "kiting": "kite",
    "firefighters": "firefight", "ties": "tie", "married": "married", "teething": "teeth",
    "gloves": "glove", "tennis": "tennis", "dining": "dine", "directions": "direct", "waves": "wave",
    "christmas": "christmas", "drives": "drive", "pudding": "pud", "coding": "code", "plating": "plate",
    "quantas": "quanta", "hornes": "horn", "graves": "grave", "mating": "mate", "paned": "pane",
    "alertness": "alert", "sunbathing": "sunbath", "tenning": "ten", "wetness": "wet",
    "urinating": "urine", "sickness": "sick", "braves": "brave", "firefighting": "firefight",
    "lenses": "lens", "reflections": "reflect", "backpackers": "backpack", "eatting": "eat",
    "designers": "design", "curiousity": "curious", "playfulness": "play", "blindness": "blind",
    "hawke": "hawk", "tomatoe": "tomato", "rodeoing": "rodeo", "brightness": "bright",
    "circuses": "circus", "skateboarders": "skateboard", "staring": "stare", "electronics": "electron",
    "electicity": "elect", "mountainous": "mountain", "socializing": "social", "hamburgers": "hamburg",
    "caves": "cave", "transitions": "transit", "wading": "wade", "creame": "cream",
    "toileting": "toilet", "sautee": "saute", "buildings": "build", "belongings": "belong",
    "stockings": "stock", "walle": "wall", "cumulis": "cumuli", "travelers": "travel",
    "conducter": "conduct", "browsing": "brows", "pooping": "poop", "haircutting": "haircut",
    "toppings": "top", "hearding": "heard", "sunblocker": "sunblock", "bases": "base",
    "markings": "mark", "mopeds": "mope", "kindergartener": "kindergarten", "pies": "pie",
    "scrapbooking": "scrapbook", "couponing": "coupon", "meetings": "meet", "elevators": "elev",
    "lowes": "low", "men's": "men", "childrens": "children", "shelves": "shelve", "paintings": "paint",
    "raines": "rain", "paring": "pare", "expressions": "express", "routes": "rout", "pease": "peas",
    "vastness": "vast", "awning": "awn", "boy's": "boy", "drunkenness": "drunken", "teasing": "teas",
    "conferences": "confer", "ripeness": "ripe", "suspenders": "suspend", "earnings": "earn",
    "reporters": "report", "kid's": "kid", "containers": "contain", "corgie": "corgi", "porche": "porch",
    "microwaves": "microwave", "batter's": "batter", "sadness": "sad", "apartments": "apart",
    "oxygenize": "oxygen", "striping": "stripe", "purring": "pure", "professionals": "profession",
    "piping": "pipe", "farmer's": "farmer", "potatoe": "potato", "emirates": "emir", "womens": "women",
    "veteran's": "veteran", "wilderness": "wilder", "propellers": "propel", "alpes": "alp",
    "charioteering": "chariot", "swining": "swine", "illness": "ill", "crepte": "crept",
    "adhesives": "adhesive", "regent's": "regent", "decorations": "decor", "rabbies": "rabbi",
    "overseas": "oversea", "travellers": "travel", "casings": "case", "smugness": "smug", "doves": "dove",
    "nationals": "nation", "mustange": "mustang", "ringe": "ring", "gondoliere": "gondolier",
    "vacationing": "vacate", "reminders": "remind", "baldness": "bald", "settings": "set",
    "glaced": "glace", "coniferous": "conifer", "revelations": "revel", "personals": "person",
    "daughter's": "daughter", "badness": "bad", "projections": "project", "polarizing": "polar",
    "vandalizers": "vandal", "minerals": "miner", "protesters": "protest", "controllers": "control",
    "weddings": "wed", "sometimes": "sometime", "earing": "ear",
}


def okvqa_stem(text: str) -> str:
    """OpenFlamingo's OK-VQA stemming of one answer (needs nltk + its data, and inflection)."""
    try:
        import inflection
        import nltk
        from nltk.corpus.reader import VERB
    except ImportError as exc:
        raise RunError("okvqa mode needs `pip install nltk inflection` (plus nltk data punkt, "
                       "averaged_perceptron_tagger, wordnet)") from exc
    try:
        tagged = nltk.pos_tag(nltk.tokenize.word_tokenize(text))
        lemmatizer = nltk.stem.WordNetLemmatizer()
        words = []
        for w, p in tagged:
            if w in OKVQA_MANUAL_MATCHES:
                w = OKVQA_MANUAL_MATCHES[w]
            elif w.endswith("ing"):
                w = lemmatizer.lemmatize(w, VERB)
            elif p.startswith("NNS") or p.startswith("NNPS"):
                w = inflection.singularize(w)
            words.append(w)
    except LookupError as exc:
        raise RunError("okvqa mode needs nltk data that is not installed: punkt, "
                       "averaged_perceptron_tagger and wordnet (nltk.download)") from exc
    return " ".join(words)
