"""Training: the shared loop (checkpoint, resume, NaN guard, progress, logging) and the stages."""
