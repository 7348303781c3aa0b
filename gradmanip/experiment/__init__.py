"""What a training run needs around the trainer: config checks, logs, progress, checkpoints,
graceful stops, evaluation and the end-of-run summary."""
