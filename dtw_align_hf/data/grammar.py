"""A generated German -> English corpus from a small hand-written grammar (``demo_text="grammar"``).

The Ding sentences are real but their lexicon is far too large for a tiny translation model trained for a few CPU
minutes (BLEU stays below 1). This module generates sentence pairs over a controlled vocabulary instead: 40
nouns with gender and plural, 25 verbs (3rd person singular/plural present, past participle, auxiliary haben or
sein), 3 modals, 12 adjectives, 12 adverbs and time words, 7 prepositions with their case, 6 names and the
numbers 2-5. Measured over 20000 generated pairs (:func:`vocabulary`): 272 German and 211 English word
types, so every word is seen many times in 400-1500 training pairs.

The German is grammatical (case and gender of articles: der/den/dem, ein/einen/einem, kein; weak adjective
endings after the definite article, mixed after ein/kein, strong after numbers; dative plural -n; "in dem" ->
"im") and differs from English in word order where German does:

- V2 inversion after a fronted time word: "Heute sieht der Hund die Katze." / "Today the dog sees the cat."
- verb-final subordinate clauses (weil / wenn / obwohl), also fronted, which inverts the main clause;
- perfect tense with the participle last: "Der Hund hat die Katze gesehen." / "The dog saw the cat.";
- modal + infinitive last: "Der Hund will die Katze sehen." / "The dog wants to see the cat.";
- negation with nicht (clause-final) or kein, against English do-support;
- prepositional phrases with dative or accusative: "mit dem Ball" / "with the ball".

What it can show: whether a model learns word reordering and a bilingual lexicon, and whether speech-text
alignment helps, on data a small model can fit. What it cannot show: anything about real-world vocabulary,
idioms, ambiguity or the long tail; semantics are loose (a horse may read a letter), and every translation is
one fixed rendering, so BLEU on it is not comparable to BLEU on natural text.

:func:`generate_pairs` is deterministic for a seed and returns unique pairs (unique German and unique English
sides); :func:`grammar_splits` cuts dev/test before train, so they do not change with the training size.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


# ---------------------------------------------------------------------------------------------------------------
# lexicon


@dataclass(frozen=True)
class Noun:
    de: str
    gender: str  # "m" | "f" | "n"
    de_pl: str | None  # None: mass noun (no plural, no indefinite article)
    en: str
    en_pl: str | None
    kind: str  # "animate" | "thing" | "food" | "drink" | "place"


def _n(de, gender, de_pl, en, en_pl, kind):
    return Noun(de, gender, de_pl, en, en_pl, kind)


NOUNS: tuple[Noun, ...] = (
    _n("Hund", "m", "Hunde", "dog", "dogs", "animate"),
    _n("Katze", "f", "Katzen", "cat", "cats", "animate"),
    _n("Mann", "m", "Männer", "man", "men", "animate"),
    _n("Frau", "f", "Frauen", "woman", "women", "animate"),
    _n("Kind", "n", "Kinder", "child", "children", "animate"),
    _n("Mädchen", "n", "Mädchen", "girl", "girls", "animate"),
    _n("Vogel", "m", "Vögel", "bird", "birds", "animate"),
    _n("Pferd", "n", "Pferde", "horse", "horses", "animate"),
    _n("Lehrer", "m", "Lehrer", "teacher", "teachers", "animate"),
    _n("Arzt", "m", "Ärzte", "doctor", "doctors", "animate"),
    _n("Freund", "m", "Freunde", "friend", "friends", "animate"),
    _n("Schwester", "f", "Schwestern", "sister", "sisters", "animate"),
    _n("Bruder", "m", "Brüder", "brother", "brothers", "animate"),
    _n("Maus", "f", "Mäuse", "mouse", "mice", "animate"),
    _n("Ball", "m", "Bälle", "ball", "balls", "thing"),
    _n("Buch", "n", "Bücher", "book", "books", "thing"),
    _n("Brief", "m", "Briefe", "letter", "letters", "thing"),
    _n("Zeitung", "f", "Zeitungen", "newspaper", "newspapers", "thing"),
    _n("Tasche", "f", "Taschen", "bag", "bags", "thing"),
    _n("Schlüssel", "m", "Schlüssel", "key", "keys", "thing"),
    _n("Blume", "f", "Blumen", "flower", "flowers", "thing"),
    _n("Bild", "n", "Bilder", "picture", "pictures", "thing"),
    _n("Hut", "m", "Hüte", "hat", "hats", "thing"),
    _n("Lampe", "f", "Lampen", "lamp", "lamps", "thing"),
    _n("Kiste", "f", "Kisten", "box", "boxes", "thing"),
    _n("Boot", "n", "Boote", "boat", "boats", "thing"),
    _n("Apfel", "m", "Äpfel", "apple", "apples", "food"),
    _n("Kuchen", "m", "Kuchen", "cake", "cakes", "food"),
    _n("Banane", "f", "Bananen", "banana", "bananas", "food"),
    _n("Ei", "n", "Eier", "egg", "eggs", "food"),
    _n("Milch", "f", None, "milk", None, "drink"),
    _n("Wasser", "n", None, "water", None, "drink"),
    _n("Tee", "m", None, "tea", None, "drink"),
    _n("Garten", "m", "Gärten", "garden", "gardens", "place"),
    _n("Park", "m", "Parks", "park", "parks", "place"),
    _n("Küche", "f", "Küchen", "kitchen", "kitchens", "place"),
    _n("Haus", "n", "Häuser", "house", "houses", "place"),
    _n("Tisch", "m", "Tische", "table", "tables", "place"),
    _n("Bett", "n", "Betten", "bed", "beds", "place"),
    _n("Auto", "n", "Autos", "car", "cars", "place"),
)


@dataclass(frozen=True)
class Verb:
    inf: str
    sg: str  # 3rd person singular present
    part: str  # past participle
    aux: str  # "haben" | "sein"
    en: str  # base form
    en_sg: str
    en_past: str
    objects: tuple[str, ...]  # noun kinds it takes as accusative object; () = intransitive


_ANY = ("animate", "thing", "food", "place")
_OBJ = ("thing", "food")

VERBS: tuple[Verb, ...] = (
    Verb("sehen", "sieht", "gesehen", "haben", "see", "sees", "saw", _ANY),
    Verb("finden", "findet", "gefunden", "haben", "find", "finds", "found", _ANY),
    Verb("kaufen", "kauft", "gekauft", "haben", "buy", "buys", "bought", _OBJ + ("drink",)),
    Verb("tragen", "trägt", "getragen", "haben", "carry", "carries", "carried", _OBJ),
    Verb("holen", "holt", "geholt", "haben", "fetch", "fetches", "fetched", _OBJ),
    Verb("malen", "malt", "gemalt", "haben", "paint", "paints", "painted", _ANY),
    Verb("lieben", "liebt", "geliebt", "haben", "love", "loves", "loved", ("animate", "food")),
    Verb("brauchen", "braucht", "gebraucht", "haben", "need", "needs", "needed", _OBJ + ("drink",)),
    Verb("hören", "hört", "gehört", "haben", "hear", "hears", "heard", ("animate",)),
    Verb("nehmen", "nimmt", "genommen", "haben", "take", "takes", "took", _OBJ),
    Verb("essen", "isst", "gegessen", "haben", "eat", "eats", "ate", ("food",)),
    Verb("trinken", "trinkt", "getrunken", "haben", "drink", "drinks", "drank", ("drink",)),
    Verb("kennen", "kennt", "gekannt", "haben", "know", "knows", "knew", ("animate",)),
    Verb("besuchen", "besucht", "besucht", "haben", "visit", "visits", "visited", ("animate",)),
    Verb("fragen", "fragt", "gefragt", "haben", "ask", "asks", "asked", ("animate",)),
    Verb("rufen", "ruft", "gerufen", "haben", "call", "calls", "called", ("animate",)),
    Verb("bringen", "bringt", "gebracht", "haben", "bring", "brings", "brought", _OBJ),
    Verb("waschen", "wäscht", "gewaschen", "haben", "wash", "washes", "washed", ("animate", "thing", "place")),
    Verb("verlieren", "verliert", "verloren", "haben", "lose", "loses", "lost", ("thing",)),
    Verb("schlafen", "schläft", "geschlafen", "haben", "sleep", "sleeps", "slept", ()),
    Verb("warten", "wartet", "gewartet", "haben", "wait", "waits", "waited", ()),
    Verb("spielen", "spielt", "gespielt", "haben", "play", "plays", "played", ()),
    Verb("lachen", "lacht", "gelacht", "haben", "laugh", "laughs", "laughed", ()),
    Verb("kommen", "kommt", "gekommen", "sein", "come", "comes", "came", ()),
    Verb("laufen", "läuft", "gelaufen", "sein", "run", "runs", "ran", ()),
)

# modal: (3sg, 3pl, English sg, English pl, English negated sg, English negated pl); "müssen" is not negated
# ("muss nicht" is "does not have to", not "must not")
MODALS: dict[str, tuple[str, str, str, str, str | None, str | None]] = {
    "wollen": ("will", "wollen", "wants to", "want to", "does not want to", "do not want to"),
    "können": ("kann", "können", "can", "can", "cannot", "cannot"),
    "müssen": ("muss", "müssen", "must", "must", None, None),
}

# adjective: (German base, English, noun kinds it goes with)
ADJECTIVES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("groß", "big", ("animate", "thing", "place")),
    ("klein", "small", ("animate", "thing", "food", "place")),
    ("alt", "old", ("animate", "thing", "place")),
    ("neu", "new", ("thing", "place")),
    ("rot", "red", ("thing", "food", "place")),
    ("blau", "blue", ("thing", "place")),
    ("grün", "green", ("thing", "food", "place")),
    ("schwarz", "black", ("animate", "thing")),
    ("weiß", "white", ("animate", "thing")),
    ("schön", "beautiful", ("animate", "thing", "place")),
    ("jung", "young", ("animate",)),
    ("müde", "tired", ("animate",)),
)

_PREDICATIVE = ("groß", "klein", "alt", "jung", "müde", "schön")  # "Der Hund ist müde."

# time words can be fronted (V2); "gestern" only with the perfect, "jetzt" not with it
TIME_WORDS: dict[str, str] = {
    "heute": "today",
    "jetzt": "now",
    "dann": "then",
    "oft": "often",
    "manchmal": "sometimes",
    "gestern": "yesterday",
}
MANNER_WORDS: dict[str, str] = {"schnell": "quickly", "langsam": "slowly", "laut": "loudly", "leise": "quietly"}
PLACE_WORDS: dict[str, str] = {"hier": "here", "dort": "there"}

_INSIDE = ("Garten", "Park", "Küche", "Haus", "Auto")
_FLAT = ("Tisch", "Bett")
# preposition: (case, English, nouns (kinds or German singulars) of its object)
PREPOSITIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "mit": ("dat", "with", ("animate", "thing")),
    "in": ("dat", "in", _INSIDE),
    "auf": ("dat", "on", _FLAT),
    "unter": ("dat", "under", _FLAT + ("Auto",)),
    "neben": ("dat", "next to", ("animate", "place")),
    "für": ("acc", "for", ("animate",)),
    "ohne": ("acc", "without", ("animate", "thing")),
}
NAMES: tuple[str, ...] = ("Anna", "Paul", "Lena", "Max", "Tom", "Maria")
NUMBERS: dict[str, str] = {"zwei": "two", "drei": "three", "vier": "four", "fünf": "five"}
CONJUNCTIONS: dict[str, str] = {"weil": "because", "wenn": "when", "obwohl": "although"}

_DEF = {
    "nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"},
}
_INDEF = {"nom": {"m": "ein", "f": "eine", "n": "ein"}, "acc": {"m": "einen", "f": "eine", "n": "ein"}}
_INDEF["dat"] = {"m": "einem", "f": "einer", "n": "einem"}
_WEAK = {"nom": {"m": "e", "f": "e", "n": "e"}, "acc": {"m": "en", "f": "e", "n": "e"}}
_WEAK["dat"] = {"m": "en", "f": "en", "n": "en"}
_MIXED = {"nom": {"m": "er", "f": "e", "n": "es"}, "acc": {"m": "en", "f": "e", "n": "es"}}
_MIXED["dat"] = {"m": "en", "f": "en", "n": "en"}
_STRONG_PL = {"nom": "e", "acc": "e", "dat": "en"}
_STRONG_SG = {  # mass nouns without an article ("kalte Milch" is not used, but kept for completeness)
    "nom": {"m": "er", "f": "e", "n": "es"},
    "acc": {"m": "en", "f": "e", "n": "es"},
    "dat": {"m": "em", "f": "er", "n": "em"},
}


def _adj_form(base: str, ending: str) -> str:
    return (base.removesuffix("e")) + ending


def _dative_plural(pl: str) -> str:
    return pl if pl.endswith(("n", "s")) else pl + "n"


def _article(english_next: str) -> str:
    return "an" if english_next[0].lower() in "aeiou" else "a"


# ---------------------------------------------------------------------------------------------------------------
# noun phrases and clauses


@dataclass(frozen=True)
class NP:
    """A noun phrase: ``det`` is "def", "indef", "none" (mass noun or bare plural), "num", "name" or "kein"."""

    noun: Noun | None
    det: str
    plural: bool = False
    adj: tuple[str, str] | None = None  # (German base, English)
    number: str | None = None
    name: str | None = None

    def de(self, case: str) -> list[str]:
        if self.name is not None:
            return [self.name]
        n = self.noun
        assert n is not None
        g = "pl" if self.plural else n.gender
        if self.plural:
            word = _dative_plural(n.de_pl) if case == "dat" else n.de_pl
        else:
            word = n.de
        out: list[str] = []
        if self.det == "def":
            out.append(_DEF[case][g])
            ending = "en" if self.plural else _WEAK[case][g]
        elif self.det == "indef":
            out.append(_INDEF[case][g])
            ending = _MIXED[case][g]
        elif self.det == "kein":
            if self.plural:
                out.append("keinen" if case == "dat" else "keine")
                ending = "en"
            else:
                out.append("k" + _INDEF[case][g])
                ending = _MIXED[case][g]
        elif self.det == "num":
            out.append(self.number)
            ending = _STRONG_PL[case]
        else:  # bare plural or mass noun
            ending = _STRONG_PL[case] if self.plural else _STRONG_SG[case][g]
        if self.adj is not None:
            out.append(_adj_form(self.adj[0], ending))
        out.append(word)
        return out

    def en(self, negated_kein: bool = False) -> list[str]:
        """English words; ``negated_kein``: a "kein" phrase rendered under "not" ("a cat", "cats", "milk")."""
        if self.name is not None:
            return [self.name]
        n = self.noun
        assert n is not None
        head = [self.adj[1]] if self.adj is not None else []
        head.append(n.en_pl if self.plural else n.en)
        det = "indef" if self.det == "kein" and negated_kein and not self.plural and n.de_pl else self.det
        if det == "def":
            return ["the", *head]
        if det == "indef":
            return [_article(head[0]), *head]
        if det == "num":
            return [NUMBERS[self.number], *head]
        if det == "kein" and not negated_kein:
            return ["no", *head]
        return head  # bare plural, mass noun, kein under "not"

    @property
    def singular(self) -> bool:
        return self.name is not None or not self.plural


@dataclass(frozen=True)
class Clause:
    subj: NP
    verb: Verb | None  # None: predicative "sein" + adjective
    obj: NP | None = None
    pred_adj: tuple[str, str] | None = None
    tense: str = "pres"  # "pres" | "perf" | "modal"
    modal: str | None = None
    neg: bool = False
    time: str | None = None  # a TIME_WORDS key
    manner: str | None = None  # a MANNER_WORDS or PLACE_WORDS key
    pp: tuple[str, NP] | None = None

    # -- German -------------------------------------------------------------------------------------------------
    def _de_parts(self) -> tuple[str, list[str], list[str]]:
        """(finite verb, middle field, verb-final part) of the German clause, subject excluded."""
        sg = self.subj.singular
        if self.verb is None:
            finite, final = ("ist" if sg else "sind"), [self.pred_adj[0]]
        elif self.tense == "pres":
            finite, final = (self.verb.sg if sg else self.verb.inf), []
        elif self.tense == "perf":
            aux = {"haben": ("hat", "haben"), "sein": ("ist", "sind")}[self.verb.aux]
            finite, final = aux[0 if sg else 1], [self.verb.part]
        else:
            m = MODALS[self.modal]
            finite, final = m[0 if sg else 1], [self.verb.inf]
        middle: list[str] = []
        if self.time is not None:
            middle.append(self.time)
        if self.obj is not None:
            middle += self.obj.de("acc")
        if self.neg and (self.obj is None or self.obj.det != "kein"):
            middle.append("nicht")
        if self.pp is not None:
            prep, np_ = self.pp
            case = PREPOSITIONS[prep][0]
            words = np_.de(case)
            if prep == "in" and words[0] == "dem":  # "in dem" contracts to "im"
                middle += ["im", *words[1:]]
            else:
                middle += [prep, *words]
        if self.manner is not None:
            middle.append(self.manner)
        return finite, middle, final

    def de_main(self, front_time: bool = False) -> list[str]:
        finite, middle, final = self._de_parts()
        subj = self.subj.de("nom")
        if front_time:
            assert self.time is not None and middle[0] == self.time
            return [self.time, finite, *subj, *middle[1:], *final]
        return [*subj, finite, *middle, *final]

    def de_inverted(self) -> list[str]:
        """Verb first (after a fronted subordinate clause)."""
        finite, middle, final = self._de_parts()
        return [finite, *self.subj.de("nom"), *middle, *final]

    def de_sub(self, conj: str) -> list[str]:
        finite, middle, final = self._de_parts()
        return [conj, *self.subj.de("nom"), *middle, *final, finite]

    # -- English ------------------------------------------------------------------------------------------------
    def en(self, front_time: bool = False) -> list[str]:
        sg = self.subj.singular
        kein = self.obj is not None and self.obj.det == "kein"
        if self.verb is None:
            vp = ["is" if sg else "are"] + (["not"] if self.neg else []) + [self.pred_adj[1]]
        elif self.tense == "modal":
            m = MODALS[self.modal]
            if self.neg:
                vp = m[4 if sg else 5].split() + [self.verb.en]
            else:
                vp = m[2 if sg else 3].split() + [self.verb.en]
        elif self.tense == "perf":
            vp = ["did", "not", self.verb.en] if self.neg else [self.verb.en_past]
        else:
            if self.neg:
                vp = ["does" if sg else "do", "not", self.verb.en]
            else:
                vp = [self.verb.en_sg if sg else self.verb.en]
        out = self.subj.en() + vp
        if self.obj is not None:
            out += self.obj.en(negated_kein=kein and self.neg)
        if self.pp is not None:
            prep, np_ = self.pp
            out += PREPOSITIONS[prep][1].split() + np_.en()
        if self.manner is not None:
            out.append({**MANNER_WORDS, **PLACE_WORDS}[self.manner])
        if self.time is not None:
            t = TIME_WORDS[self.time]
            out = [t, *out] if front_time else [*out, t]
        return out


# ---------------------------------------------------------------------------------------------------------------
# sampling


class _Sampler:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, seq: Sequence):
        return seq[int(self.rng.integers(len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def np(self, kinds: Sequence[str], role: str) -> NP:
        """A noun phrase of one of ``kinds``; ``role`` "subj", "obj" or "pp"."""
        if role == "subj" and self.chance(0.15):
            return NP(None, "name", name=self.pick(NAMES))
        if role == "obj" and "animate" in kinds and self.chance(0.1):
            return NP(None, "name", name=self.pick(NAMES))
        noun = self.pick([n for n in NOUNS if n.kind in kinds or n.de in kinds])
        adj = None
        adjs = [(a, e) for a, e, k in ADJECTIVES if noun.kind in k]
        if noun.kind == "place" and role == "pp" and noun.de in _INSIDE + _FLAT:
            adjs = [(a, e) for a, e in adjs if a in ("groß", "klein", "alt", "neu")]
        if adjs and self.chance(0.3):
            adj = self.pick(adjs)
        if noun.de_pl is None:  # mass noun: the milk / milk
            return NP(noun, self.pick(["def", "none"]), adj=None)
        r = self.rng.random()
        if r < 0.5:
            return NP(noun, "def", plural=self.chance(0.3), adj=adj)
        if r < 0.8 or role == "pp":
            return NP(noun, "indef", adj=adj) if role != "pp" or self.chance(0.5) else NP(noun, "def", adj=adj)
        if r < 0.9:
            return NP(noun, "num", plural=True, adj=adj, number=self.pick(list(NUMBERS)))
        return NP(noun, "none", plural=True, adj=adj)

    def clause(self, allow_time: bool = True) -> Clause:
        subj = self.np(("animate",), "subj")
        if self.chance(0.1):
            adjs = [(a, e) for a, e, _ in ADJECTIVES if a in _PREDICATIVE]
            adjs = [a for a in adjs if subj.adj is None or a[0] != subj.adj[0]]
            return Clause(subj, None, pred_adj=self.pick(adjs), neg=self.chance(0.3))
        verb = self.pick(VERBS)
        tense = self.pick(["pres", "pres", "perf", "modal"])
        modal = self.pick(list(MODALS)) if tense == "modal" else None
        obj = self.np(verb.objects, "obj") if verb.objects else None
        neg = self.chance(0.25) and modal != "müssen"
        if neg and obj is not None and obj.det in ("indef", "none") and obj.name is None:
            obj = NP(obj.noun, "kein", plural=obj.plural, adj=obj.adj)  # "keinen Ball" / "no ball"
        if neg and obj is not None and obj.det == "num":
            neg = False
        pp = None
        manner = None
        if not neg:
            if self.chance(0.3):
                prep = self.pick(list(PREPOSITIONS))
                pp = (prep, self.np(PREPOSITIONS[prep][2], "pp"))
            elif obj is None and self.chance(0.5):
                manner = self.pick(list(MANNER_WORDS) + list(PLACE_WORDS))
        time = None
        if allow_time and self.chance(0.35):
            choices = [
                t for t in TIME_WORDS if (t != "gestern" or tense == "perf") and (t != "jetzt" or tense != "perf")
            ]
            time = self.pick(choices)
        return Clause(subj, verb, obj=obj, tense=tense, modal=modal, neg=neg, time=time, manner=manner, pp=pp)

    def sentence(self) -> tuple[list[str], list[str]]:
        r = self.rng.random()
        if r < 0.25:  # main clause + subordinate clause
            main, sub, conj = self.clause(), self.clause(allow_time=False), self.pick(list(CONJUNCTIONS))
            if self.chance(0.3):  # fronted subordinate clause: the main clause starts with its finite verb
                main = dataclasses.replace(main, time=None)
                de = [*sub.de_sub(conj)[:-1], sub.de_sub(conj)[-1] + ",", *main.de_inverted()]
                en_sub = [CONJUNCTIONS[conj], *sub.en()]
                en = [*en_sub[:-1], en_sub[-1] + ",", *main.en()]
            else:
                front = main.time is not None and self.chance(0.5)
                de_main, en_main = main.de_main(front), main.en(front)
                de = [*de_main[:-1], de_main[-1] + ",", *sub.de_sub(conj)]
                en = [*en_main[:-1], en_main[-1] + ",", CONJUNCTIONS[conj], *sub.en()]
        else:
            c = self.clause()
            front = c.time is not None and self.chance(0.6)
            de, en = c.de_main(front), c.en(front)
        return de, en


def _finish(words: list[str]) -> str:
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def generate_pairs(n: int, seed: int = 0, *, min_words: int = 3, max_words: int = 14) -> list[tuple[str, str]]:
    """``n`` unique (German, English) sentence pairs drawn from the grammar, deterministic for ``seed``.

    Both sides are unique across the list. The list for a larger ``n`` starts with the list for a smaller one
    (draws are sequential), which :func:`grammar_splits` relies on. German sentences have ``min_words`` to
    ``max_words`` whitespace tokens.
    """
    sampler = _Sampler(np.random.default_rng([seed, 0x6772]))
    out: list[tuple[str, str]] = []
    seen_de: set[str] = set()
    seen_en: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"the grammar could not produce {n} unique pairs (got {len(out)})")
        de_words, en_words = sampler.sentence()
        if not min_words <= len(de_words) <= max_words:
            continue
        de, en = _finish(de_words), _finish(en_words)
        if de in seen_de or en in seen_en:
            continue
        seen_de.add(de)
        seen_en.add(en)
        out.append((de, en))
    return out


def grammar_splits(
    split_sizes: dict[str, int], seed: int = 0, *, max_words: int = 14
) -> dict[str, list[tuple[str, str]]]:
    """Disjoint splits of generated pairs; the non-train splits (sorted by name) take the first pairs, so dev
    and test stay the same when only the training size changes."""
    pairs = generate_pairs(sum(split_sizes.values()), seed, max_words=max_words)
    out, pos = {}, 0
    for name in sorted(split_sizes, key=lambda s: (s == "train", s)):
        out[name] = pairs[pos : pos + split_sizes[name]]
        pos += split_sizes[name]
    return {name: out[name] for name in split_sizes}


def _tokens(sentence: str) -> list[str]:
    return [w.strip(".,").lower() for w in sentence.split()]


@functools.lru_cache(maxsize=4)
def vocabulary(n: int = 20000, seed: int = 0) -> dict[str, frozenset[str]]:
    """Word types (lower-cased, punctuation stripped) of ``n`` generated pairs: ``{"de": ..., "en": ...}``."""
    pairs = generate_pairs(n, seed)
    return {
        "de": frozenset(w for de, _ in pairs for w in _tokens(de)),
        "en": frozenset(w for _, en in pairs for w in _tokens(en)),
    }


__all__ = ["NP", "Clause", "generate_pairs", "grammar_splits", "vocabulary"]
