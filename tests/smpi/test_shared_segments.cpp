// Shared windows under SimGrid's SMPI (run by smpirun; ctest smpi.shared_segments). Every node rank allocates a
// segment of 400 floats with MPI_Win_allocate_shared, stamps it with its world rank and position, publishes (sync,
// node barrier, sync), and reads every peer's segment in place through shared_segments(): each float must carry its
// writer's stamp. It also counts how often MPI_Win_shared_query(q > 0) returns the window's start, which SimGrid 3.32
// does for every q (why shared_segments exists). Exit 0 iff every rank saw every stamp.
//
// Equal sizes, because SimGrid 3.32 supports only those and the leader-allocates pattern (NodeWindow): its node rank 0
// allocates its own size times the node's rank count and places rank q's segment at q times q's own size, so segments
// of unequal sizes overlap or run past the end.
#include <mpi.h>

#include <cstdio>
#include <vector>

#include "cnnpar/consolidation.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int q_me = 0, n = 1;
  MPI_Comm_rank(node, &q_me);
  MPI_Comm_size(node, &n);
  auto floats = [](int) { return std::size_t{400}; };
  float* mine = nullptr;
  MPI_Win win;
  MPI_Win_allocate_shared(static_cast<MPI_Aint>(floats(q_me) * sizeof(float)), sizeof(float), MPI_INFO_NULL, node,
                          &mine, &win);
  MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  for (std::size_t i = 0; i < floats(q_me); ++i) mine[i] = static_cast<float>(rank * 1000 + static_cast<int>(i));
  MPI_Win_sync(win);
  MPI_Barrier(node);
  MPI_Win_sync(win);

  std::vector<int> world_of(static_cast<std::size_t>(n));
  MPI_Allgather(&rank, 1, MPI_INT, world_of.data(), 1, MPI_INT, node);
  const std::vector<char*> segments = cnnpar::shared_segments(win, node, mine);
  long bad = 0, query_same_as_start = 0;
  for (int q = 0; q < n; ++q) {
    const auto* seg = reinterpret_cast<const float*>(segments[static_cast<std::size_t>(q)]);
    for (std::size_t i = 0; i < floats(q); ++i)
      if (seg[i] != static_cast<float>(world_of[static_cast<std::size_t>(q)] * 1000 + static_cast<int>(i))) ++bad;
    MPI_Aint size = 0;
    int unit = 0;
    char* queried = nullptr;
    MPI_Win_shared_query(win, q, &size, &unit, &queried);
    if (q > 0 && queried == segments[0]) ++query_same_as_start;
  }
  MPI_Win_unlock_all(win);
  MPI_Win_free(&win);
  long totals[2] = {bad, query_same_as_start}, sums[2] = {0, 0};
  MPI_Allreduce(totals, sums, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("shared_segments: %ld wrong floats; MPI_Win_shared_query(q > 0) returned the window start %ld times\n",
                sums[0], sums[1]);
  MPI_Comm_free(&node);
  MPI_Finalize();
  return sums[0] == 0 ? 0 : 1;
}
