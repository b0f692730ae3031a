"""streams: real-time e-commerce personalization on Kafka."""

__version__ = "0.1.0"
