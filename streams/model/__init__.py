"""Offline next-item models for session-based recommendation: data, baselines, metrics, training."""
