// Who sent what to whom, recorded at the MPI interface: a small PMPI interposition layer (as mpiP and Score-P
// record), independent of the consolidation code that computes its own byte counts, so that "measured = model"
// compares two independent things.
//
// comm_log.cpp defines MPI_Send, MPI_Isend, MPI_Bcast, MPI_Allgatherv and MPI_Reduce_scatter: each calls its PMPI_
// twin and, while a pass is being recorded, adds to this rank's row of the stage's matrix the bytes the call's
// arguments say go to each world rank (count times MPI_Type_size; for a collective, this rank's contribution to each
// other member: its block of an allgatherv, the root's buffer of a bcast, block q of a reduce-scatter to rank q). What
// the library's algorithm forwards on the way (a ring's relays, a tree's inner nodes) is not the caller's data and is
// not counted, exactly as in bytes_sent. Reads of other ranks' slices in place through a shared window do not go
// through MPI and are not in the matrix; the consolidation counts them itself (ConsolidationSample::read_from).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cnnpar::comm_log {

// Starts recording one forward pass of `stages` stages: a zeroed [stage][world rank] row, stage 0 current.
void begin(std::size_t stages);
// Later MPI calls count towards stage s.
void stage(std::size_t s);
// Stops recording; returns the bytes this rank sent to each world rank, [stage * P + peer].
std::vector<std::uint64_t> end();

}  // namespace cnnpar::comm_log
