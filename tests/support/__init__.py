"""Helpers shared by test modules: tiny specs and checkpoints, a local Hub server, CLI runners.

Test modules import from here, never from each other.
"""
