"""Fault-injection suite (pytest marker `resilience`): `kdeps run` against a misbehaving provider."""
