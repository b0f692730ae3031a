"""Kafka client plumbing (kafka-python): topics, playing and recording event logs, changelogs."""
