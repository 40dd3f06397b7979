"""Experiment tracking: experiments, runs, params, metrics (with series), tags, artifacts."""
