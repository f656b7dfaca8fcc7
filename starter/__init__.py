"""Processes an operator runs: the ``tandem`` CLI and the embedded dev stack."""
