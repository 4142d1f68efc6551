"""DTWAlignTrainer: one step per alignment x mixup with the components in log_history, gradient-accumulation scaling,
the card hook, and the guard against the Trainer's own label smoothing."""

import math

import pytest
import torch

from dtw_align_hf.testing_utils import synthetic_audio
from dtw_align_hf.trainer import LOGGED_KEYS, DTWAlignTrainer, DTWAlignTrainingArguments


TRANSCRIPTS = ["das kleine rote haus", "ein hund", "die katze sieht den baum", "das haus"]
TRANSLATIONS = ["the small red house", "a dog runs", "the cat sees the tree", "the house"]


def make_examples(n=4):
    return [
        {
            "id": f"utt{i}",
            "audio": synthetic_audio(0.6 + 0.15 * i, seed=i + 1),
            "transcript": TRANSCRIPTS[i % 4],
            "translation": TRANSLATIONS[i % 4],
        }
        for i in range(n)
    ]


class ProcessorCollator:
    """Minimal collator for these tests (the data package's DataCollatorSpeechTranslation is tested in test_data)."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, features):
        return dict(
            self.processor(
                audio=[f["audio"] for f in features],
                sampling_rate=16000,
                text=[f["transcript"] for f in features],
                text_target=[f["translation"] for f in features],
            )
        )


def make_args(tmp_path, **overrides):
    kwargs = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 2,
        "max_steps": 1,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "optim": "sgd",
        "lr_scheduler_type": "constant",
        "dataloader_num_workers": 0,
        "seed": 0,
        "do_predict": False,
    }
    kwargs.update(overrides)
    return DTWAlignTrainingArguments(**kwargs)


def train_logs(trainer):
    return [entry for entry in trainer.state.log_history if "loss" in entry]


COMBINATIONS = [
    ("dtw", "interpolation"),
    ("dtw", "discrete"),
    ("dtw", "none"),
    ("ot", "interpolation"),
    ("ot", "discrete"),
    ("ot", "none"),
    ("none", "none"),
]


@pytest.mark.parametrize(("alignment", "mixup"), COMBINATIONS)
def test_one_step_logs_components(tmp_path, make_model, tiny_processor, alignment, mixup):
    model = make_model(alignment=alignment, mixup=mixup)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer = DTWAlignTrainer(
        model=model,
        args=make_args(tmp_path),
        train_dataset=make_examples(2),
        data_collator=ProcessorCollator(tiny_processor),
    )
    assert trainer.loss_is_scaled_for_ga is True  # the model divides by num_items_in_batch
    trainer.train()

    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert any(n.startswith("adapter") for n in changed)
    assert any(n.startswith("mt.") for n in changed)

    logs = train_logs(trainer)
    assert len(logs) == 1
    entry = logs[0]
    assert "loss/st" in entry and "loss/mt" in entry
    if alignment != "none":
        for key in ("align/valid_frac", "align/frames_per_token"):
            assert key in entry and math.isfinite(entry[key])
        assert "align/seconds" not in entry  # timed only with alignment_timing=True (no host-device sync)
        assert entry["align/valid_frac"] == pytest.approx(1.0)
    else:
        assert not any(k.startswith("align/") for k in entry)
    if alignment != "none" and mixup != "none":
        assert "loss/mix" in entry and "loss/kl" in entry
        cfg = model.config
        total = (
            cfg.st_weight * entry["loss/st"]
            + cfg.mt_weight * entry["loss/mt"]
            + cfg.mix_weight * entry["loss/mix"]
            + cfg.kl_weight * entry["loss/kl"]
        )
        assert entry["loss"] == pytest.approx(total, rel=1e-4)
    else:
        assert "loss/mix" not in entry
    assert {k for k in entry if "/" in k} <= set(LOGGED_KEYS)


def test_gradient_accumulation_matches_full_batch(tmp_path, make_model, tiny_processor):
    """bs=4 x GA=1 and bs=2 x GA=2 give the same logged loss, components and updated weights."""
    results = []
    for bs, ga in ((4, 1), (2, 2)):
        model = make_model(alignment="dtw", mixup="interpolation")
        trainer = DTWAlignTrainer(
            model=model,
            args=make_args(tmp_path / f"bs{bs}", per_device_train_batch_size=bs, gradient_accumulation_steps=ga),
            train_dataset=make_examples(4),
            data_collator=ProcessorCollator(tiny_processor),
        )
        # a sequential sampler so both runs see the same examples in the same order
        sampler = torch.utils.data.SequentialSampler(trainer.train_dataset)
        trainer._get_train_sampler = lambda *a, _s=sampler, **k: _s
        trainer.train()
        results.append((train_logs(trainer)[0], {n: p.detach().clone() for n, p in model.named_parameters()}))
    (log_a, params_a), (log_b, params_b) = results
    for key in ("loss", "loss/st", "loss/mt", "loss/mix", "loss/kl"):
        assert log_a[key] == pytest.approx(log_b[key], rel=1e-4, abs=1e-6), key
    for name, value in params_a.items():
        torch.testing.assert_close(value, params_b[name], rtol=1e-4, atol=1e-6)


def test_label_smoothing_factor_is_rejected_for_dtw_align(tmp_path, make_model, tiny_processor):
    with pytest.raises(ValueError, match="label_smoothing_factor"):
        DTWAlignTrainer(
            model=make_model(),
            args=make_args(tmp_path, label_smoothing_factor=0.1),
            train_dataset=make_examples(2),
            data_collator=ProcessorCollator(tiny_processor),
        )


def test_checkpoint_gets_model_card(tmp_path, make_model, tiny_processor):
    args = make_args(tmp_path, max_steps=2, save_strategy="steps", save_steps=2)
    trainer = DTWAlignTrainer(
        model=make_model(),
        args=args,
        train_dataset=make_examples(2),
        data_collator=ProcessorCollator(tiny_processor),
        card_info={"stage": "finetune_st", "dataset": "demo", "languages": ["de", "en"]},
    )
    trainer.train()
    out = tmp_path / "out"
    for card in (out / "README.md", out / "checkpoint-2" / "README.md"):
        text = card.read_text()
        assert "DTW-Align" in text and "Alignment method: **dtw**" in text and "2509.18987" in text


def test_evaluate_generates_and_scores_with_sacrebleu(tmp_path, make_model, tiny_processor):
    from dtw_align_hf.trainer import make_compute_metrics

    compute_metrics = make_compute_metrics(tiny_processor.tokenizer)
    trainer = DTWAlignTrainer(
        model=make_model(),
        args=make_args(tmp_path, per_device_eval_batch_size=2, generation_max_length=6, generation_num_beams=1),
        eval_dataset=make_examples(3),
        data_collator=ProcessorCollator(tiny_processor),
        compute_metrics=compute_metrics,
    )
    metrics = trainer.evaluate()
    for key in ("eval_loss", "eval_bleu", "eval_chrf"):
        assert key in metrics
    assert 0.0 <= metrics["eval_bleu"] <= 100.0
    assert compute_metrics.signatures["bleu_signature"].startswith("nrefs:1|case:mixed")
    assert len(compute_metrics.hypotheses) == 3
    assert not any(isinstance(v, str) for v in trainer.state.log_history[-1].values())


# ---------------------------------------------------------------------------------------------------------------------
# stage 1 (a plain M2M100): gradient accumulation must not change the loss (issue 10, bug 2)

MT_PAIRS = [(TRANSCRIPTS[i % 4], TRANSLATIONS[i % 4] + " " * (i % 2)) for i in range(8)]


class TextPairCollator:
    """transcript -> input_ids, translation -> labels (-100 on padding); no decoder_input_ids, like a user's."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, features):
        src = self.tokenizer([f["transcript"] for f in features], padding=True, return_tensors="pt")
        tgt = self.tokenizer([f["translation"] for f in features], padding=True, return_tensors="pt")
        labels = tgt["input_ids"].masked_fill(tgt["attention_mask"] == 0, -100)
        return {"input_ids": src["input_ids"], "attention_mask": src["attention_mask"], "labels": labels}


def _reference_token_mean_ce(model, batch):
    """Cross-entropy over every target token of the full batch, computed here (independent of the Trainer)."""
    with torch.no_grad():
        labels = batch["labels"]
        decoder_input_ids = torch.full_like(labels, model.config.pad_token_id)  # fairseq: </s> starts decoding
        decoder_input_ids[:, 0] = model.config.decoder_start_token_id
        decoder_input_ids[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == -100, model.config.pad_token_id)
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=decoder_input_ids
        ).logits
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100).item()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_stage1_gradient_accumulation_does_not_change_the_loss(tmp_path, tiny_mt_dir, tiny_tokenizer, label_smoothing):
    from transformers import M2M100ForConditionalGeneration

    examples = [{"transcript": s, "translation": t} for s, t in MT_PAIRS]
    collator = TextPairCollator(tiny_tokenizer)
    results = []
    for bs, ga in ((8, 1), (4, 2), (2, 4)):
        model = M2M100ForConditionalGeneration.from_pretrained(tiny_mt_dir)
        model.config.dropout = model.config.attention_dropout = model.config.activation_dropout = 0.0
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        if bs == 8:
            reference = _reference_token_mean_ce(model.eval(), collator(examples))
        trainer = DTWAlignTrainer(
            model=model.train(),
            args=make_args(
                tmp_path / f"bs{bs}",
                per_device_train_batch_size=bs,
                gradient_accumulation_steps=ga,
                label_smoothing_factor=label_smoothing,
                remove_unused_columns=False,
            ),
            train_dataset=examples,
            data_collator=collator,
        )
        sampler = torch.utils.data.SequentialSampler(trainer.train_dataset)
        trainer._get_train_sampler = lambda *a, _s=sampler, **k: _s
        trainer.train()
        results.append((train_logs(trainer)[0]["loss"], {n: p.detach().clone() for n, p in model.named_parameters()}))
    losses = [loss for loss, _ in results]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4) and losses[2] == pytest.approx(losses[0], rel=1e-4)
    if label_smoothing == 0.0:
        # the logged loss is the token-mean CE of the 8 examples (4.34 for GA 1, 8.68 and 17.35 before the fix)
        assert losses[0] == pytest.approx(reference, rel=1e-4)
    for _, params in results[1:]:
        for name, value in results[0][1].items():
            torch.testing.assert_close(params[name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_length_penalty_reaches_generation(tmp_path, make_model, tiny_processor):
    """`generation_length_penalty` (CMOT decodes with 1.2) is passed to generate in evaluate and predict."""
    model = make_model()
    seen = []
    original = model.generate

    def recording_generate(*args, **kwargs):
        seen.append(kwargs.get("length_penalty"))
        return original(*args, **kwargs)

    model.generate = recording_generate
    trainer = DTWAlignTrainer(
        model=model,
        args=make_args(
            tmp_path,
            per_device_eval_batch_size=2,
            generation_max_length=5,
            generation_num_beams=2,
            generation_length_penalty=1.2,
        ),
        eval_dataset=make_examples(2),
        data_collator=ProcessorCollator(tiny_processor),
    )
    trainer.evaluate()
    trainer.predict(make_examples(2))
    assert seen and all(value == 1.2 for value in seen)
    trainer.predict(make_examples(2), length_penalty=0.7)  # an explicit value wins
    assert seen[-1] == 0.7


def test_all_bad_batch_is_skipped_and_the_run_goes_on(tmp_path, make_model, tiny_processor):
    """A batch in which every sample is rejected (NaN audio) is skipped and counted; training finishes."""
    import numpy as np

    from dtw_align_hf.data import BadRecordCounter, BadSampleFilter, DataCollatorSpeechTranslation

    data = make_examples(4)
    for example in data[2:]:
        example["audio"] = np.full(8000, np.nan, dtype=np.float32)
    counter = BadRecordCounter("train")
    collator = BadSampleFilter(DataCollatorSpeechTranslation(tiny_processor), {"train": counter})
    model = make_model()
    trainer = DTWAlignTrainer(model=model, args=make_args(tmp_path, max_steps=2), train_dataset=data,
                              data_collator=collator)  # fmt: skip
    sampler = torch.utils.data.SequentialSampler(trainer.train_dataset)
    trainer._get_train_sampler = lambda *a, _s=sampler, **k: _s
    after_first = {}
    original = trainer.training_step

    def step(model, inputs, num_items_in_batch=None):
        if trainer.state.global_step == 1 and not after_first:
            after_first.update({n: p.detach().clone() for n, p in model.named_parameters()})
        return original(model, inputs, num_items_in_batch)

    trainer.training_step = step
    trainer.train()
    assert trainer.state.global_step == 2
    assert collator.skipped_batches == 1 and counter.skipped == 2
    for name, value in model.named_parameters():  # the skipped step changed nothing (plain SGD, zero gradient)
        torch.testing.assert_close(value.detach(), after_first[name], msg=name)


def test_max_batch_seconds_forms_the_training_batches(tmp_path, make_model, tiny_processor):
    """`max_batch_seconds`: no padded batch exceeds it and every example is seen once in the epoch."""
    import datasets

    data = make_examples(6)
    for example in data:
        example["duration"] = len(example["audio"]) / 16000
        example["audio"] = example["audio"].tolist()
    dataset = datasets.Dataset.from_list(data).with_format("numpy", columns=["audio"], output_all_columns=True)
    trainer = DTWAlignTrainer(
        model=make_model(),
        args=make_args(tmp_path, max_steps=-1, num_train_epochs=1),
        train_dataset=dataset,
        data_collator=ProcessorCollator(tiny_processor),
        max_batch_seconds=2.0,
    )
    seen = []
    original = trainer.training_step

    def step(model, inputs, num_items_in_batch=None):
        seen.append(inputs["attention_mask"].shape)
        return original(model, inputs, num_items_in_batch)

    trainer.training_step = step
    trainer.train()
    assert sum(shape[0] for shape in seen) == 6
    assert all(b * t / 16000 <= 2.0 + 1e-6 for b, t in seen)
    assert len(seen) > 1  # 6 clips of 0.6-1.35 s do not fit in one 2 s batch


def test_group_by_length_buckets_a_stream(tmp_path, make_model, tiny_processor):
    """`train_sampling_strategy=group_by_length` on a stream (the Trainer alone ignores it): each batch holds
    clips of neighbouring lengths."""

    data = [dict(e, length=len(e["audio"])) for e in make_examples(4) + make_examples(4)]

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from data

    trainer = DTWAlignTrainer(
        model=make_model(),
        args=make_args(tmp_path, max_steps=4, train_sampling_strategy="group_by_length"),
        train_dataset=Stream(),
        data_collator=ProcessorCollator(tiny_processor),
    )
    seen = []
    original = trainer.training_step

    def step(model, inputs, num_items_in_batch=None):
        seen.append(sorted(inputs["attention_mask"].sum(-1).tolist()))
        return original(model, inputs, num_items_in_batch)

    trainer.training_step = step
    trainer.train()
    lengths = sorted(e["length"] for e in data)
    assert sorted(seen) == [lengths[i : i + 2] for i in range(0, 8, 2)]  # pairs of neighbours in sorted order


def test_one_step_logs_ctc(tmp_path, make_model, tiny_processor):
    model = make_model(ctc_weight=0.5)
    trainer = DTWAlignTrainer(
        model=model,
        args=make_args(tmp_path),
        train_dataset=make_examples(2),
        data_collator=ProcessorCollator(tiny_processor),
    )
    trainer.train()
    entry = train_logs(trainer)[0]
    assert math.isfinite(entry["loss/ctc"]) and entry["ctc/valid_frac"] == pytest.approx(1.0)
    total = entry["loss/st"] + entry["loss/mt"] + entry["loss/mix"] + entry["loss/kl"] + 0.5 * entry["loss/ctc"]
    assert entry["loss"] == pytest.approx(total, rel=1e-4)
