"""Helpers for the tests and benches, which share them from here: benches may not import tests/, and tests may
import casem but not bench/. No production module imports this package."""
