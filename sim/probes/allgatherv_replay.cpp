// One MPI_Allgatherv replayed alone under SMPI: each rank enters at the simulated time a results file recorded for
// it (written by replay_input.py: P, then per rank its block bytes and entry time), and every rank's entry and exit
// are printed (rank, entry s, exit s, on the entry times' clock). Compared with the model's play of the same
// boundary by compare_replay.py: what the collective does by itself, apart from the rest of the pass.
// Build and run: docs/simulation.md ("A boundary replayed alone").
#include <mpi.h>
#include <smpi/smpi.h>

#include <cstdio>
#include <fstream>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, p = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  std::ifstream in(argc > 1 ? argv[1] : "");
  int listed = 0;
  if (!(in >> listed) || listed != p) {
    if (rank == 0) std::fprintf(stderr, "allgatherv_replay: %s lists %d ranks, not %d\n", argc > 1 ? argv[1] : "(no file)", listed, p);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  std::vector<int> counts(p), displs(p);
  std::vector<double> enter(p);
  for (int r = 0; r < p; ++r) {
    double bytes = 0;
    in >> bytes >> enter[r];
    counts[r] = static_cast<int>(bytes / sizeof(float));
  }
  int total = 0;
  for (int r = 0; r < p; ++r) { displs[r] = total; total += counts[r]; }
  std::vector<float> gathered(static_cast<size_t>(total) + 1, 1.0f);
  MPI_Barrier(MPI_COMM_WORLD);
  const double origin = 0.01;  // simulated seconds: every rank is out of the barrier long before
  // smpi_execute converts seconds to flops at smpi/host-speed: run with the platform's core speed (as smpi_run.sh).
  smpi_execute(origin + enter[rank] - MPI_Wtime());
  double times[2];
  times[0] = MPI_Wtime();
  MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gathered.data(), counts.data(), displs.data(), MPI_FLOAT,
                 MPI_COMM_WORLD);
  times[1] = MPI_Wtime();
  std::vector<double> all(2 * static_cast<size_t>(p));
  MPI_Gather(times, 2, MPI_DOUBLE, all.data(), 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (rank == 0)
    for (int r = 0; r < p; ++r) std::printf("%d %.9f %.9f\n", r, all[2 * r] - origin, all[2 * r + 1] - origin);
  MPI_Finalize();
  return 0;
}
