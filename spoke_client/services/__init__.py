"""Use cases the UI and the CLI call: each write is one transaction with its change-log and audit entries."""
