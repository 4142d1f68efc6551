"""One collator fed by the processor (the ids of processor(...) and of the run scripts), the stage-1 text collator,
a batch with no usable example (skipped, never fatal), and batching by total audio length (issues 10, 11)."""

import numpy as np
import pytest
import torch

from dtw_align_hf.data import (
    DataCollatorSpeechTranslation,
    DataCollatorTextTranslation,
    SecondsBatchedStream,
    SecondsBatchSampler,
    is_skipped_batch,
)
from dtw_align_hf.data.filtering import BadSampleFilter
from dtw_align_hf.data.validation import BadRecordCounter
from dtw_align_hf.testing_utils import synthetic_audio
from tests.conftest import TRANSCRIPTS, TRANSLATIONS


def _features(n=3, seconds=(1.0, 0.7, 0.9)):
    return [
        {
            "id": f"u{i}",
            "audio": synthetic_audio(seconds[i], seed=i + 1),
            "sampling_rate": 16000,
            "transcript": TRANSCRIPTS[i],
            "translation": TRANSLATIONS[i],
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def lang_processor(tiny_lang_tokenizer_dir):
    from transformers import AutoTokenizer

    from dtw_align_hf import DTWAlignProcessor
    from dtw_align_hf.processing_dtw_align import make_feature_extractor

    tokenizer = AutoTokenizer.from_pretrained(tiny_lang_tokenizer_dir)
    return DTWAlignProcessor(make_feature_extractor(), tokenizer, tgt_lang="en")


@pytest.mark.parametrize("which", ["plain", "lang"])
def test_collator_gives_the_processors_ids(tiny_processor, lang_processor, which):
    processor = tiny_processor if which == "plain" else lang_processor
    features = _features()
    batch = DataCollatorSpeechTranslation(processor)(features)
    reference = processor(
        audio=[f["audio"] for f in features],
        sampling_rate=16000,
        text=[f["transcript"] for f in features],
        text_target=[f["translation"] for f in features],
    )
    assert set(batch) == set(reference)
    for key in reference:
        torch.testing.assert_close(batch[key], reference[key], msg=key)
    tok = processor.tokenizer
    first = processor.encode_transcripts(TRANSCRIPTS[0])[0]
    assert batch["input_ids"][0, : len(first)].tolist() == first and tok.eos_token_id not in first  # no EOS added
    labels = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert labels[-1] == tok.eos_token_id
    if which == "lang":  # the target-language token is kept in the labels, first
        assert labels[0] == processor.lang_token_id("en")


def test_text_collator_gives_the_processors_ids(lang_processor):
    features = _features()
    batch = DataCollatorTextTranslation(lang_processor, max_source_length=256, max_target_length=256)(features)
    reference = lang_processor(
        text=[f["transcript"] for f in features], text_target=[f["translation"] for f in features]
    )
    torch.testing.assert_close(batch["input_ids"], reference["input_ids"])
    torch.testing.assert_close(batch["attention_mask"], reference["text_attention_mask"])
    torch.testing.assert_close(batch["labels"], reference["labels"])
    tok = lang_processor.tokenizer
    dec = batch["decoder_input_ids"]
    assert dec[:, 0].tolist() == [tok.eos_token_id] * 3  # fairseq's decoder start
    labels = batch["labels"].masked_fill(batch["labels"] == -100, tok.pad_token_id)
    assert torch.equal(dec[:, 1:], labels[:, :-1])
    short = DataCollatorTextTranslation(lang_processor, max_source_length=2, max_target_length=3)(features)
    assert short["input_ids"].shape[1] == 2 and short["labels"].shape[1] == 3


# ------------------------------------------------------------------------------------------- batches of bad samples


def test_a_batch_with_no_usable_example_is_skipped_not_fatal(tiny_processor):
    counter = BadRecordCounter("train")
    guard = BadSampleFilter(DataCollatorSpeechTranslation(tiny_processor), {"train": counter})
    bad = _features()
    bad[0]["audio"] = None  # failed to decode (counted by SafeAudioDecoder)
    bad[1]["audio"] = np.full(8000, np.nan, dtype=np.float32)
    bad[2]["audio"] = np.zeros(0, dtype=np.float32)
    out = guard(bad)
    assert is_skipped_batch(out) and int(out["skipped_batch"]) == 3
    assert out["labels"].ne(-100).sum() == 0  # the Trainer's token count sees 0 items
    assert guard.skipped_batches == 1 and counter.skipped == 2
    assert set(counter.skipped_records()) == {"u1", "u2"}
    guard(bad)  # the same bad records again (a second epoch): counted once
    assert counter.skipped == 2 and guard.skipped_batches == 2
    # a batch with one good example keeps it
    mixed = _features()
    mixed[1]["audio"] = np.full(8000, np.nan, dtype=np.float32)
    kept = guard(mixed)
    assert not is_skipped_batch(kept) and kept["labels"].shape[0] == 2


# -------------------------------------------------------------------------------------------- batching by seconds


def _padded(batch, durations):
    return len(batch) * max(durations[i] for i in batch)


@pytest.mark.parametrize("shuffle", [True, False])
def test_seconds_batch_sampler_limit_and_coverage(shuffle):
    rng = np.random.default_rng(0)
    durations = rng.uniform(0.5, 8.0, size=300).round(2).tolist()
    sampler = SecondsBatchSampler(durations, 20.0, shuffle=shuffle, seed=1, sort_window=64)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(300))  # each example once per epoch
        assert all(_padded(b, durations) <= 20.0 for b in batches)
        assert all(sum(durations[i] for i in b) <= 20.0 for b in batches)
        if epoch == 0:
            first = batches
    assert (batches != first) == shuffle  # reshuffled per epoch
    assert list(SecondsBatchSampler(durations, 20.0, shuffle=shuffle, seed=1, sort_window=64)) == first
    # an over-long clip forms a batch of its own; nothing is dropped
    odd = SecondsBatchSampler([1.0, 30.0, 2.0], 10.0, shuffle=False)
    assert list(odd) == [[0], [1], [2]]
    with pytest.raises(ValueError, match="positive"):
        SecondsBatchSampler(durations, 0)


def test_seconds_batch_sampler_under_accelerate_sharding():
    """With num_replicas=W the batch count is a multiple of W, so accelerate's BatchSamplerShard (what the Trainer's
    accelerator.prepare wraps a batch sampler in) gives every process its share without repeating any example."""
    from accelerate.data_loader import BatchSamplerShard

    durations = np.random.default_rng(3).uniform(0.5, 8.0, size=101).tolist()
    for world in (2, 3):
        sampler = SecondsBatchSampler(durations, 15.0, seed=0, num_replicas=world)
        assert len(sampler) % world == 0
        shards = [list(BatchSamplerShard(sampler, num_processes=world, process_index=r)) for r in range(world)]
        assert len({len(s) for s in shards}) == 1
        seen = [i for s in shards for b in s for i in b]
        assert sorted(seen) == list(range(101))
        assert all(_padded(b, durations) <= 15.0 for s in shards for b in s)


def test_seconds_batch_sampler_reads_durations_without_decoding():
    import datasets

    ds = datasets.Dataset.from_dict({"id": ["a", "b", "c"], "duration": [1.0, 2.0, 3.0], "audio": ["x", "y", "z"]})
    ds = ds.with_transform(lambda b: (_ for _ in ()).throw(AssertionError("decoded")) if "audio" in b else b)
    assert sorted(i for b in SecondsBatchSampler.from_dataset(ds, 4.0) for i in b) == [0, 1, 2]
    with pytest.raises(KeyError, match="duration"):
        SecondsBatchSampler.from_dataset(ds.remove_columns("duration"), 4.0)


def _stream(n=200, shards=4):
    import datasets

    rng = np.random.default_rng(5)
    rows = {"id": [f"s{i}" for i in range(n)], "duration": rng.uniform(0.3, 6.0, size=n).round(2).tolist()}
    return datasets.Dataset.from_dict(rows).to_iterable_dataset(num_shards=shards)


@pytest.mark.parametrize("shards", [4, 1])
def test_seconds_batched_stream_limit_and_coverage(shards):
    stream = _stream(shards=shards)
    wrapped = SecondsBatchedStream(stream, 12.0, buffer_size=50, seed=0)
    for epoch in range(2):
        wrapped.set_epoch(epoch)
        batches = list(wrapped)
        ids = [ex["id"] for b in batches for ex in b]
        assert sorted(ids) == sorted(f"s{i}" for i in range(200))
        assert all(len(b) * max(ex["duration"] for ex in b) <= 12.0 for b in batches)
    # two processes: disjoint halves, together everything once
    per_rank = [
        [ex["id"] for b in SecondsBatchedStream(stream, 12.0, rank=r, world_size=2, buffer_size=50) for ex in b]
        for r in range(2)
    ]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == sorted(f"s{i}" for i in range(200))
    # through a DataLoader with workers, batches stay whole and nothing is seen twice
    loader = torch.utils.data.DataLoader(
        wrapped, batch_size=None, num_workers=2, collate_fn=lambda b: [e["id"] for e in b]
    )
    ids = [i for batch in loader for i in batch]
    assert sorted(ids) == sorted(f"s{i}" for i in range(200))


def test_deprecated_tokenizer_spelling_goes_through_the_processor(tiny_processor):
    features = _features()
    legacy = DataCollatorSpeechTranslation(
        tokenizer=tiny_processor.tokenizer, feature_extractor=tiny_processor.feature_extractor
    )(features)
    current = DataCollatorSpeechTranslation(tiny_processor)(features)
    for key in current:
        torch.testing.assert_close(legacy[key], current[key], msg=key)
    with pytest.raises(TypeError, match="processor"):
        DataCollatorSpeechTranslation()


class _Seconds(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, labels=None):
        return {"loss": ((x * self.w - labels) ** 2).mean()}


@pytest.mark.parametrize("streamed", [False, True])
def test_seconds_dataloader_trains_with_the_trainer(tmp_path, streamed):
    """The `get_train_dataloader` override the run scripts use: a real Trainer trains on it, every batch within the
    limit, every example once per epoch."""
    import datasets
    from transformers import Trainer, TrainingArguments

    from dtw_align_hf.data import seconds_dataloader

    durations = np.random.default_rng(0).uniform(0.5, 4.0, size=40).round(2).tolist()
    ds = datasets.Dataset.from_dict({"id": list(range(40)), "duration": durations})
    seen: list[list[int]] = []

    def collate(features):
        seen.append([f["id"] for f in features])
        x = torch.tensor([[f["duration"]] for f in features], dtype=torch.float32)
        return {"x": x, "labels": 2 * x}

    class SecondsTrainer(Trainer):
        def get_train_dataloader(self):
            a = self.args
            return seconds_dataloader(
                self.train_dataset, self.data_collator, 8.0, seed=a.seed, rank=a.process_index,
                world_size=a.world_size, accelerator=self.accelerator,
            )  # fmt: skip

    train = ds.to_iterable_dataset(num_shards=2) if streamed else ds
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], remove_unused_columns=False, disable_tqdm=True,
        num_train_epochs=2, max_steps=-1 if not streamed else 1000, save_strategy="no", logging_steps=1,
        learning_rate=0.05,
    )  # fmt: skip
    if streamed:  # a stream has no length: stop after two passes
        n_batches = len(list(SecondsBatchedStream(train, 8.0)))
        args.max_steps = 2 * n_batches
    trainer = SecondsTrainer(model=_Seconds(), args=args, train_dataset=train, data_collator=collate)
    trainer.train()
    assert all(len(b) * max(durations[i] for i in b) <= 8.0 for b in seen)
    ids = [i for b in seen for i in b]
    assert sorted(ids) == sorted(list(range(40)) * 2)
    assert float(trainer.model.w.detach()) > 0.5  # it trained
