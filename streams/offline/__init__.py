"""The embedded adapter: the same core, driven from an event log in one process (no broker)."""
