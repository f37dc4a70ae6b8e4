"""Stand-in models with the real models' input/output contracts, for offline tests.

``fatools.testing`` writes them into a model store; the modules here build them.
"""
