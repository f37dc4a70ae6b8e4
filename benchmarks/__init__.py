"""fatools' benchmarks: facetorch's way against fa-run, side by side, with compute twins of
facetorch's models (random weights, real architectures; nothing downloaded).

Run from the checkout's root, as modules of this package:

    python -m benchmarks.speed [--quick] ...    speed and pipeline overhead (speed.py)
    python -m benchmarks.effects ...            how the speed options change outputs
    python -m benchmarks.memory ...             peak memory on a 1- and a 10-minute clip
    python -m benchmarks.twins DIR              write the compute twins into a model store
    benchmarks/gpu/run.sh OUTDIR                the one prepared run on a lent GPU machine

Modules: ``instrument`` (timing models and stages), ``sides`` (the seed's way and
fa-run's, the clips and stores they run on, decoding), ``report`` (medians, ratios,
ceilings, targets, the printed table), ``twins``, ``memory``, ``effects``, ``speed``
(the command line).  benchmarks/README.md explains every figure.
"""
