"""Command-line tools: checkpoint averaging, paired bootstrap comparison, alignment accuracy (run as scripts)."""
