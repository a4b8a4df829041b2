"""RAVE's benchmarks, one module per method family, run from the repository root.

``python -m workflows.benchmarks.<name> [options]``, ``<name>`` one of:

* ``sampling_efficiency``: RAVE against plain MD, metadynamics, OPES and the expanded ensemble on
  model potentials with exact free energies (runners, references, evaluation, tables);
* ``alanine_dipeptide``: the same methods on alanine dipeptide in vacuum, F(phi) against a
  reference made by ``alanine_reference``;
* ``training``: the wall time of the learning step; ``mbar_solver``: rave's MBAR solver against
  pymbar; ``bias_overhead``: MD steps/s with and without the bias; ``walker_scaling``: walker
  throughput serial and on Dask; ``unbinding``: ligand unbinding events, biased and unbiased;
* ``harness``: the shared output folder, CSV, result record (JSON) and ``compare``;
* ``page``: writes ``docs/benchmarks.md`` and its figures from ``docs/benchmarks/results/``.
"""
