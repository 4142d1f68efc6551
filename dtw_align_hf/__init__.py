"""DTW-Align for end-to-end speech translation, as a Hugging Face Transformers model."""

__version__ = "0.1.0.dev0"
