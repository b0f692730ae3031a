"""`streams bench`: throughput, latency, state size and recovery, against a bare-Kafka ceiling."""
