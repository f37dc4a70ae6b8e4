"""The study side: fa-run over many inputs and what reads its results.

``inputs`` expands the inputs (videos, images, folders, lists; shards) and lays out a
directory per input; ``outdir`` owns an output directory (the records file and its part
file, summary.json, run.json, the lock, removal, frames done); ``batch`` runs fa-run over
the inputs on top of ``fatools.run`` (the run record, resume, skip, refuse);
``collect`` makes fa-collect's table of a results tree and ``index`` its index.html.
"""
