"""Analysis of cnnpar_mpi results files (docs/results-schema.md): reports, scaling sweeps, memory-layout pictures,
a collective cost model and Perfetto traces.

Run it as `python3 -m analysis SUBCOMMAND ...` from the repository root (docs/analysis.md). Every subcommand reads
results files through `analysis.results`, which is the only module that knows the HDF5 layout, so a schema change
touches one file.
"""
