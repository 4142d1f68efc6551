"""Helper process for reproducible corpus builds (run as a script by :mod:`dtw_align_hf.data.demo`).

espeak-ng keeps state across calls that ``espeak_Initialize`` does not reset (the glottal phase and the
flutter-table index), so an utterance's exact samples depend on everything the process synthesised before. To
make a corpus depend only on its seed, the builder starts this script in a fresh interpreter that never
synthesises; it forks one child per fixed-size stream of utterances (``maxtasksperchild=1``), so every stream
starts from the same pristine library state whatever the number of workers or the parent's history.

Usage: ``python _synth_server.py JOBS_JSON RESULTS_JSON``; JOBS_JSON holds ``{"streams": [[job, ...], ...],
"workers": n}``; one line per finished stream (its utterance count) goes to stdout for the progress bar.
This file is loaded by path (not as part of the package) so that the package ``__init__`` (torch, transformers)
is not imported here.
"""

import importlib.util
import json
import multiprocessing as mp
import sys
from pathlib import Path

import soundfile as sf


def _load_synth():
    spec = importlib.util.spec_from_file_location("_dtw_align_synth", Path(__file__).with_name("synth.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_synth = _load_synth()


def _run_stream(jobs):
    # durations keep 5 decimals (0.08 of a 16 kHz sample), so round(duration * 16000) is the exact length
    out = []
    for job in jobs:
        if "phrases" in job:  # demo_speech="varied"
            utt = _synth.synthesize_phrases(
                job["phrases"],
                job["voice"],
                variant=job["variant"],
                pitch=job["pitch"],
                pauses=job["pauses"],
                lead=job["lead"],
                trail=job["trail"],
                noise_dbfs=job["noise_dbfs"],
                noise_seed=job["seed"],
                seed=job["seed"],
            )
        else:
            utt = _synth.get_synthesizer().synthesize(
                job["text"],
                job["voice"],
                variant=job["variant"],
                rate=job["rate"],
                pitch=job["pitch"],
                sampling_rate=16000,
                seed=job["seed"],
            )
        sf.write(job["path"], utt.audio, utt.sampling_rate, format="FLAC", subtype="PCM_16")
        out.append(
            {
                "id": job["id"],
                "duration": round(utt.duration, 5),
                "words": [w.to_dict() for w in utt.words],
                "missing": len(utt.missing),
            }
        )
    return out


def main(jobs_path: str, results_path: str) -> int:
    spec = json.loads(Path(jobs_path).read_text(encoding="utf-8"))
    streams, workers = spec["streams"], int(spec["workers"])
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    results = []
    with mp.get_context(method).Pool(workers, maxtasksperchild=1) as pool:
        for res in pool.imap_unordered(_run_stream, streams):
            results.extend(res)
            sys.stdout.write(f"{len(res)}\n")
            sys.stdout.flush()
    Path(results_path).write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
