"""The generated German -> English corpus (dtw_align_hf.data.grammar): agreement, word order, determinism."""

import pytest

from dtw_align_hf.data import grammar as g
from dtw_align_hf.data.grammar import NP, Clause


def _noun(de):
    return next(n for n in g.NOUNS if n.de == de)


def _verb(inf):
    return next(v for v in g.VERBS if v.inf == inf)


def _s(words):
    return " ".join(words)


HUND, KATZE, KIND, BALL, APFEL, MILCH = (_noun(w) for w in ("Hund", "Katze", "Kind", "Ball", "Apfel", "Milch"))
GROSS, ALT = ("groß", "big"), ("alt", "old")


@pytest.mark.parametrize(
    ("np_", "case", "de", "en"),
    [
        (NP(HUND, "def"), "nom", "der Hund", "the dog"),
        (NP(HUND, "def"), "acc", "den Hund", "the dog"),
        (NP(HUND, "def"), "dat", "dem Hund", "the dog"),
        (NP(KATZE, "def"), "dat", "der Katze", "the cat"),
        (NP(KIND, "def"), "acc", "das Kind", "the child"),
        (NP(HUND, "def", plural=True), "dat", "den Hunden", "the dogs"),
        (NP(KIND, "def", plural=True), "dat", "den Kindern", "the children"),
        (NP(HUND, "indef"), "nom", "ein Hund", "a dog"),
        (NP(HUND, "indef"), "acc", "einen Hund", "a dog"),
        (NP(HUND, "indef"), "dat", "einem Hund", "a dog"),
        (NP(KATZE, "indef"), "dat", "einer Katze", "a cat"),
        (NP(APFEL, "indef"), "acc", "einen Apfel", "an apple"),
        # weak endings after the definite article
        (NP(HUND, "def", adj=GROSS), "nom", "der große Hund", "the big dog"),
        (NP(HUND, "def", adj=GROSS), "acc", "den großen Hund", "the big dog"),
        (NP(KIND, "def", adj=GROSS), "acc", "das große Kind", "the big child"),
        (NP(KATZE, "def", adj=GROSS), "dat", "der großen Katze", "the big cat"),
        (NP(HUND, "def", plural=True, adj=GROSS), "nom", "die großen Hunde", "the big dogs"),
        # mixed endings after ein / kein
        (NP(HUND, "indef", adj=ALT), "nom", "ein alter Hund", "an old dog"),
        (NP(HUND, "indef", adj=ALT), "acc", "einen alten Hund", "an old dog"),
        (NP(KIND, "indef", adj=ALT), "nom", "ein altes Kind", "an old child"),
        (NP(KATZE, "indef", adj=ALT), "acc", "eine alte Katze", "an old cat"),
        (NP(KIND, "indef", adj=ALT), "dat", "einem alten Kind", "an old child"),
        (NP(BALL, "kein"), "acc", "keinen Ball", "no ball"),
        (NP(HUND, "kein", plural=True), "dat", "keinen Hunden", "no dogs"),
        # strong endings after a number; "müde" keeps one e
        (NP(HUND, "num", plural=True, adj=GROSS, number="zwei"), "nom", "zwei große Hunde", "two big dogs"),
        (NP(HUND, "num", plural=True, adj=GROSS, number="drei"), "dat", "drei großen Hunden", "three big dogs"),
        (NP(HUND, "def", adj=("müde", "tired")), "acc", "den müden Hund", "the tired dog"),
        (NP(MILCH, "none"), "acc", "Milch", "milk"),
    ],
)
def test_noun_phrase_agreement(np_, case, de, en):
    assert _s(np_.de(case)) == de
    assert _s(np_.en()) == en


SEHEN, KOMMEN, SCHLAFEN = _verb("sehen"), _verb("kommen"), _verb("schlafen")
DOG, CAT = NP(HUND, "def"), NP(KATZE, "def")


def test_word_order_of_each_construction():
    c = Clause(DOG, SEHEN, obj=CAT)
    assert _s(c.de_main()) == "der Hund sieht die Katze" and _s(c.en()) == "the dog sees the cat"
    t = Clause(DOG, SEHEN, obj=CAT, time="heute")  # V2 inversion after a fronted time word
    assert _s(t.de_main(front_time=True)) == "heute sieht der Hund die Katze"
    assert _s(t.en(front_time=True)) == "today the dog sees the cat"
    assert _s(t.de_main()) == "der Hund sieht heute die Katze" and _s(t.en()) == "the dog sees the cat today"
    assert _s(c.de_sub("weil")) == "weil der Hund die Katze sieht"  # verb last
    p = Clause(DOG, SEHEN, obj=CAT, tense="perf")
    assert _s(p.de_main()) == "der Hund hat die Katze gesehen" and _s(p.en()) == "the dog saw the cat"
    assert _s(p.de_sub("weil")) == "weil der Hund die Katze gesehen hat"
    assert _s(Clause(DOG, KOMMEN, tense="perf").de_main()) == "der Hund ist gekommen"  # sein
    plural = Clause(NP(HUND, "def", plural=True), KOMMEN, tense="perf")
    assert _s(plural.de_main()) == "die Hunde sind gekommen" and _s(plural.en()) == "the dogs came"
    m = Clause(DOG, SEHEN, obj=CAT, tense="modal", modal="wollen")
    assert _s(m.de_main()) == "der Hund will die Katze sehen" and _s(m.en()) == "the dog wants to see the cat"
    assert _s(m.de_sub("obwohl")) == "obwohl der Hund die Katze sehen will"
    assert _s(m.de_inverted()) == "will der Hund die Katze sehen"
    n = Clause(DOG, SEHEN, obj=CAT, neg=True)
    assert _s(n.de_main()) == "der Hund sieht die Katze nicht" and _s(n.en()) == "the dog does not see the cat"
    k = Clause(DOG, SEHEN, obj=NP(KATZE, "kein"), neg=True)
    assert _s(k.de_main()) == "der Hund sieht keine Katze" and _s(k.en()) == "the dog does not see a cat"
    np_ = Clause(DOG, SEHEN, obj=CAT, tense="perf", neg=True)
    assert (
        _s(np_.de_main()) == "der Hund hat die Katze nicht gesehen" and _s(np_.en()) == "the dog did not see the cat"
    )
    cannot = Clause(NP(HUND, "def", plural=True), SCHLAFEN, tense="modal", modal="können", neg=True)
    assert _s(cannot.de_main()) == "die Hunde können nicht schlafen" and _s(cannot.en()) == "the dogs cannot sleep"
    pp = Clause(DOG, _verb("spielen"), pp=("mit", NP(BALL, "def")))
    assert _s(pp.de_main()) == "der Hund spielt mit dem Ball" and _s(pp.en()) == "the dog plays with the ball"
    im = Clause(DOG, SCHLAFEN, pp=("in", NP(_noun("Haus"), "def")))
    assert _s(im.de_main()) == "der Hund schläft im Haus" and _s(im.en()) == "the dog sleeps in the house"
    acc = Clause(DOG, _verb("kaufen"), obj=NP(APFEL, "indef"), pp=("für", NP(KIND, "def")))
    assert _s(acc.de_main()) == "der Hund kauft einen Apfel für das Kind"
    pred = Clause(NP(HUND, "def", plural=True), None, pred_adj=GROSS, neg=True)
    assert _s(pred.de_main()) == "die Hunde sind nicht groß" and _s(pred.en()) == "the dogs are not big"
    name = Clause(NP(None, "name", name="Anna"), SEHEN, obj=CAT)
    assert _s(name.de_main()) == "Anna sieht die Katze" and _s(name.en()) == "Anna sees the cat"


def test_generated_pairs_are_deterministic_unique_and_sized():
    pairs = g.generate_pairs(600, seed=3)
    assert pairs == g.generate_pairs(600, seed=3)
    assert pairs[:100] == g.generate_pairs(100, seed=3)  # a prefix: dev/test do not move with the train size
    assert pairs != g.generate_pairs(600, seed=4)
    assert len({de for de, _ in pairs}) == len({en for _, en in pairs}) == 600
    for de, en in pairs:
        assert 3 <= len(de.split()) <= 14, de
        assert de[0].isupper() and de.endswith(".") and en[0].isupper() and en.endswith("."), (de, en)
    text = " ".join(en for _, en in pairs)
    assert " a a" not in text and " a e" not in text and " a o" not in text  # a/an
    assert "dog see " not in text and "does not sees" not in text
    shapes = {"weil ": 0, " hat ": 0, "nicht": 0, " will ": 0, "keine": 0}
    for de, _ in pairs:
        for key in shapes:
            shapes[key] += key in de
    assert all(count >= 5 for count in shapes.values()), shapes


def test_grammar_splits_are_disjoint_and_independent_of_the_train_size():
    small = g.grammar_splits({"train": 20, "dev": 10, "test": 10}, seed=0)
    large = g.grammar_splits({"train": 60, "dev": 10, "test": 10}, seed=0)
    assert small["dev"] == large["dev"] and small["test"] == large["test"]
    sets = [set(large[s]) for s in ("train", "dev", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert [len(large[s]) for s in ("train", "dev", "test")] == [60, 10, 10]


def test_vocabulary_is_small():
    vocab = g.vocabulary(3000)
    assert 150 <= len(vocab["de"]) <= 300 and 120 <= len(vocab["en"]) <= 250
    assert {"der", "den", "dem", "einen", "gesehen", "weil"} <= vocab["de"]
    assert {"the", "an", "sees", "because"} <= vocab["en"]
