"""`streams deliver`: promotion triggers and audience-segment changes to a marketing tool over HTTPS.

A connector process in its own consumer group, beside the workers: `config` (what and where, from
the environment), `formats` (a batch of outputs as the receiver's requests), `sender` (rate limit,
retries, the receiver's answer), `metrics`, and `connector` (the consumer loop that commits an
input offset only once everything before it was acknowledged or dead-lettered).
"""
