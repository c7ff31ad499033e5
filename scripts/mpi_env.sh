# Sourced by the project's scripts: lets Open MPI run as root (containers, CI) and place more ranks than cores
# (a laptop or a 2-core VM running the default 4-rank job). Both only widen what mpirun accepts.
if [[ $EUID -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=1
