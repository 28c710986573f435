"""Validator: challenges, verification, scoring, weight setting, epoch keeper (next issues)."""
