"""Every ```python block of the README, the model-card templates and the metric cards runs, against tiny models.

The blocks are read from the Markdown when the tests are collected, so an edited README is tested as it stands.

Conventions for README writers (also in the eco handoff):

- Each ```python block runs on its own (a fresh namespace), in a scratch folder where `runs/demo/finetune_st_whisper` is a
  tiny saved DTW-Align model with its processor (its generation config carries `max_length` and `num_beams`, as the
  demo's checkpoint does), and `metrics/` and `examples/` link to the repository's folders. Write paths as the demo
  writes them.
- A block may use these names without defining them: `wav` and `waveform_16khz` (1 s of 16 kHz mono float32 audio),
  `speech`, `text`, `speech_mask`, `text_mask` (random embeddings `(2, 40, 16)` / `(2, 8, 16)` with boolean masks,
  sample 1 padded), `model` and `processor` (the tiny model, loaded), `base` (its folder, "runs/demo/finetune_st_whisper").
- An HTML comment right above the fence (blank lines between are fine) changes how the block runs:
  `<!-- snippet: skip (reason) -->` skips it (for the Hub, a GPU, data we do not have; say which in the reason);
  `<!-- snippet: setup CODE -->` runs the one-line Python `CODE` first (e.g. to define a name the prose introduces).
- A block must not print transformers' `max_new_tokens` / `max_length` conflict warning (nor any warning that
  mentions `max_length`).
- Model-card templates are rendered first (`render_model_card("runs/demo/finetune_st_whisper", ...)`), so their
  `{{ hub_model_id or model_name }}` becomes the scratch model's path.
- Other fences (```bash, ```bibtex, ```text, ...) are not run.
"""

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch


REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = "runs/demo/finetune_st_whisper"
LINKED = ("metrics", "examples", "docs", "recipes")
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(skip|setup)\b\s*(.*?)\s*-->\s*$")
LENGTH_WARNING = re.compile(r"max_length|max_new_tokens")

# Blocks that fail today, by a piece of their code: strict xfails, so each must fail until its fix lands (then the
# test reports XPASS as a failure: delete the entry). A `skip` marker in the Markdown takes precedence. Entries in
# NOT_RUN are xfails that are not even run (the block would wait on the network).
KNOWN_FAILURES: dict[str, str] = {}


NOT_RUN = {"train = load_covost2("}


@dataclass
class Snippet:
    doc: str
    line: int
    code: str
    skip: str | None = None
    setup: str = ""

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def extract_snippets(text: str, doc: str) -> list[Snippet]:
    """The ```python blocks of a Markdown text, with the snippet markers written right above each."""
    snippets = []
    for match in FENCE.finditer(text):
        if match.group(1).lower() not in ("python", "py", "python3"):
            continue
        snippet = Snippet(doc, text[: match.start()].count("\n") + 1, match.group(2))
        for line in reversed(text[: match.start()].splitlines()):
            if not line.strip():
                continue
            marker = MARKER.match(line)
            if marker is None:
                break
            kind, arg = marker.groups()
            if kind == "skip":
                snippet.skip = arg.strip("()") or "marked skip"
            else:
                snippet.setup = arg + "\n" + snippet.setup
        snippets.append(snippet)
    return snippets


def _rendered_cards() -> list[tuple[str, str]]:
    from dtw_align_hf.model_card import TEMPLATE_DIR, TEMPLATES, render_model_card

    stages = {template: stage for stage, template in TEMPLATES.items()}
    out = []
    for path in sorted(TEMPLATE_DIR.glob("*.md")):
        stage = stages.get(path.name)
        if stage is None:
            continue
        card = render_model_card(MODEL_DIR, card_info={"stage": stage, "languages": ["de", "en"]})
        out.append((f"model_cards/{path.name}", card.content))
    return out


def collect() -> list[Snippet]:
    docs = [("README.md", (REPO / "README.md").read_text(encoding="utf-8"))]
    docs += _rendered_cards()
    for path in sorted(REPO.glob("metrics/*/README.md")) + sorted(REPO.glob("examples/README.md")):
        docs.append((str(path.relative_to(REPO)), path.read_text(encoding="utf-8")))
    return [s for doc, text in docs for s in extract_snippets(text, doc)]


SNIPPETS = collect()


def _params():
    for snippet in SNIPPETS:
        marks = []
        known = next((key for key in KNOWN_FAILURES if key in snippet.code), None)
        if known and not snippet.skip:
            marks.append(pytest.mark.xfail(reason=KNOWN_FAILURES[known], strict=True, run=known not in NOT_RUN))
        yield pytest.param(snippet, id=snippet.id, marks=marks)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder with `runs/demo/finetune_st_whisper` (tiny model + processor) and links to the repository's folders."""
    from dtw_align_hf import DTWAlignForSpeechTranslation
    from dtw_align_hf.testing_utils import make_tiny_model

    root = tmp_path_factory.mktemp("snippets")
    model, processor = make_tiny_model(tmp_path_factory.mktemp("snippet_parts"), alignment_backend="torch")
    # as in the demo's checkpoint: stage 1 writes max_length and num_beams, from_pretrained_parts carries them over
    # and clears max_new_tokens (one length bound, as modeling_dtw_align.from_pretrained_parts does)
    model.generation_config.max_length = 48
    model.generation_config.max_new_tokens = None
    model.generation_config.num_beams = 2
    model.save_pretrained(root / MODEL_DIR)
    processor.save_pretrained(root / MODEL_DIR)
    for name in LINKED:
        if (REPO / name).exists():
            (root / name).symlink_to(REPO / name)
    return root, DTWAlignForSpeechTranslation


def _namespace(root: Path, model_class) -> dict:
    from dtw_align_hf import DTWAlignProcessor
    from dtw_align_hf.testing_utils import synthetic_audio

    torch.manual_seed(0)
    speech_mask = torch.ones(2, 40, dtype=torch.bool)
    speech_mask[1, 30:] = False
    text_mask = torch.ones(2, 8, dtype=torch.bool)
    text_mask[1, 5:] = False
    wav = synthetic_audio(1.0, seed=7)
    return {
        "__name__": "__snippet__",
        "wav": wav,
        "waveform_16khz": wav,
        "speech": torch.randn(2, 40, 16),
        "text": torch.randn(2, 8, 16),
        "speech_mask": speech_mask,
        "text_mask": text_mask,
        "model": model_class.from_pretrained(root / MODEL_DIR).eval(),
        "processor": DTWAlignProcessor.from_pretrained(root / MODEL_DIR),
        "base": MODEL_DIR,
    }


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_snippets_were_found():
    docs = {s.doc for s in SNIPPETS}
    assert "README.md" in docs and "model_cards/dtw_align_st.md" in docs


def test_marker_parsing():
    text = (
        "intro\n<!-- snippet: skip (needs the Hub) -->\n\n```python\nx = 1\n```\n"
        "<!-- snippet: setup y = 2 -->\n```py\nprint(y)\n```\n```bash\nls\n```\n"
    )
    first, second = extract_snippets(text, "doc.md")
    assert (first.line, first.skip, first.code) == (4, "needs the Hub", "x = 1\n")
    assert (second.skip, second.setup.strip(), second.code) == (None, "y = 2", "print(y)\n")


@pytest.mark.parametrize("snippet", list(_params()))
def test_snippet_runs(snippet, scratch, monkeypatch, capsys):
    if snippet.skip:
        pytest.skip(f"{snippet.id}: {snippet.skip}")
    root, model_class = scratch
    monkeypatch.chdir(root)
    namespace = _namespace(root, model_class)
    handler = _Records()
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if snippet.setup:
                exec(compile(snippet.setup, f"{snippet.id} (setup)", "exec"), namespace)  # noqa: S102 (the docs code)
            exec(compile(snippet.code, snippet.id, "exec"), namespace)  # noqa: S102 (the docs code)
    finally:
        transformers_logger.removeHandler(handler)
    printed = capsys.readouterr()
    messages = handler.messages + [str(w.message) for w in caught] + [printed.err]
    length = [m for m in messages if LENGTH_WARNING.search(m)]
    assert not length, f"{snippet.id} printed a generation-length warning: {length}"
