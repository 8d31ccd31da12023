"""Measuring side of inferwatch: config, wire dialects, the probe runner and the scheduler.

Nothing here imports textual or rich (tests/test_layering.py enforces it): the prober runs in its
own process, away from the UI's event loop, so that rendering never lands inside a measured TTFT.
"""
