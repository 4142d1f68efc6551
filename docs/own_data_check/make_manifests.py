"""Used by docs/own_data_check/run.sh: TSV manifests with non-standard column names (key, wav, sentence, english)
built from a demo corpus folder, plus a tiny text-only parallel file.

    python docs/own_data_check/make_manifests.py .cache/demo_corpus/de-en-<key> OUT_DIR
"""

import csv
import json
import sys
from pathlib import Path


root, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for split, n in (("train", 120), ("dev", 8), ("test", 8)):
    rows = [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()][:n]
    with open(out / f"{split}.tsv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["key", "wav", "sentence", "english"])
        for r in rows:
            writer.writerow([r["id"], str(root / r["audio"]), r["transcript"], r["translation"]])
(out / "extra.tsv").write_text(
    "sentence\tenglish\nDas ist ein Haus.\tThis is a house.\nIch habe Hunger.\tI am hungry.\n"
)
