"""CPU time of one utterance through a random base-size Whisper encoder, per fixed window (README, "Speech encoders").

OMP_NUM_THREADS=1 python docs/whisper_window_cost.py
"""

import time

import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder


torch.set_num_threads(1)
for window in (30.0, 10.0, 5.0, 3.0):
    config = WhisperConfig(
        d_model=512,
        encoder_layers=6,
        encoder_attention_heads=8,
        encoder_ffn_dim=2048,
        num_mel_bins=80,
        max_source_positions=int(window * 50),
    )
    encoder = WhisperEncoder(config).eval()
    features = torch.randn(1, 80, int(window * 100))
    with torch.no_grad():
        encoder(features)  # warm-up
        times = []
        for _ in range(3):
            start = time.perf_counter()
            encoder(features)
            times.append(time.perf_counter() - start)
    print(f"window {window:4.1f} s: {min(times):.3f} s")  # noqa: T201
