"""Statistics over evaluation results: pure functions, no I/O."""
