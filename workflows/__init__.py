"""Deterministic orchestration: ``TandemWorkflow`` and the keys it keeps visible in the UI."""
