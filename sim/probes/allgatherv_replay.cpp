// Consecutive Allgatherv boundaries of a pass replayed under SMPI without the rest of the program: each rank enters
// the first at the simulated time a results file recorded for it, computes between boundaries as long as it did in
// the pass, and every rank's entry and exit of every boundary are printed (rank, then entry s and exit s per
// boundary, on the first entries' clock). The input (replay_input.py): P and L, then per rank its first entry and,
// per boundary, its block bytes and the compute before it. compare_replay.py sets the exits against the pass's and
// the model's. Build and run: docs/simulation.md ("A boundary replayed alone").
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
  int listed = 0, layers = 0;
  if (!(in >> listed >> layers) || listed != p || layers < 1) {
    if (rank == 0)
      std::fprintf(stderr, "allgatherv_replay: %s lists %d ranks and %d boundaries; this run has %d ranks\n",
                   argc > 1 ? argv[1] : "(no file)", listed, layers, p);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  std::vector<double> first_entry(p), compute(static_cast<size_t>(p) * layers);
  std::vector<std::vector<int>> counts(layers, std::vector<int>(p));
  for (int r = 0; r < p; ++r) {
    in >> first_entry[r];
    for (int l = 0; l < layers; ++l) {
      double bytes = 0;
      in >> bytes >> compute[static_cast<size_t>(r) * layers + l];
      counts[l][r] = static_cast<int>(bytes / sizeof(float));
    }
  }
  std::vector<double> times(2 * static_cast<size_t>(layers));
  MPI_Barrier(MPI_COMM_WORLD);
  const double origin = 0.01;  // simulated seconds: every rank is out of the barrier long before
  // smpi_execute converts seconds to flops at smpi/host-speed: run with the platform's core speed (as smpi_run.sh).
  smpi_execute(origin + first_entry[rank] - MPI_Wtime());
  for (int l = 0; l < layers; ++l) {
    if (l > 0) smpi_execute(compute[static_cast<size_t>(rank) * layers + l]);
    std::vector<int> displs(p);
    int total = 0;
    for (int r = 0; r < p; ++r) { displs[r] = total; total += counts[l][r]; }
    std::vector<float> gathered(static_cast<size_t>(total) + 1, 1.0f);
    times[2 * l] = MPI_Wtime() - origin;
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gathered.data(), counts[l].data(), displs.data(), MPI_FLOAT,
                   MPI_COMM_WORLD);
    times[2 * l + 1] = MPI_Wtime() - origin;
  }
  std::vector<double> all(times.size() * p);
  MPI_Gather(times.data(), static_cast<int>(times.size()), MPI_DOUBLE, all.data(), static_cast<int>(times.size()),
             MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (rank == 0)
    for (int r = 0; r < p; ++r) {
      std::printf("%d", r);
      for (size_t k = 0; k < times.size(); ++k) std::printf(" %.9f", all[r * times.size() + k]);
      std::printf("\n");
    }
  MPI_Finalize();
  return 0;
}
