// The results-file writer (see results_file.hpp and docs/results-schema.md). The only code that writes HDF5.
#include "cnnpar/results_file.hpp"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string_view>

#include "cnnpar/sim_compute.hpp"
#include "cnnpar/version.hpp"

namespace cnnpar {

namespace {

// A simulated run (the SMPI build under scripts/smpi_run.sh) records what it ran on: the platform file (path and
// text), the smpirun configuration and the kernel rates. Empty strings and simulated = 0 for real runs.
std::string file_text(const char* path) {
  if (!path || !*path) return {};
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_simulation_meta(const h5::Object& meta) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
#ifdef CNNPAR_SMPI
  const std::int64_t simulated = 1;
#else
  const std::int64_t simulated = 0;
#endif
  meta.attr("simulated", simulated)
      .attr("smpi_platform", env("CNNPAR_SMPI_PLATFORM"))
      .attr("smpi_platform_xml", simulated ? file_text(std::getenv("CNNPAR_SMPI_PLATFORM")) : std::string())
      .attr("smpi_config", env("CNNPAR_SMPI_CONFIG"))
      .attr("smpi_compute_rates", simulated ? sim::rates() : std::string());
}


using Dims = std::vector<hsize_t>;

template <class T>
void put(const h5::Location& where, std::string_view path, const std::vector<T>& data, const Dims& dims,
         std::string_view units, std::string_view dim_names, std::string_view description) {
  where.write(path, data, dims).attr("units", units).attr("dims", dim_names).attr("description", description);
}

std::string event_description(Event e) {
  switch (e) {
    case Event::pack:
      return "0: every split's kernels compute their region in place (files written before kernels took boxes: a rows, "
             "sample, tiles or 2-D step's copy of its input region into the kernel's buffer)";
    case Event::compute: return "kernel time on this rank's region";
    case Event::unpack:
      return "0, as pack (files written before kernels took boxes: the copy of such a step's output into the tensor)";
    case Event::halo:
      return "exchange boundaries: the rank's point-to-point exchange of halos or redistributed boxes, entry to exit "
             "(0 for other boundaries)";
    case Event::wait: return "boundary time spent waiting for later ranks (see /meta wait_transfer_method)";
    case Event::transfer: return "boundary time after every rank had arrived";
  }
  return "";
}

std::string splits_text(const std::vector<SplitChoice>& splits) {
  std::string out;
  for (const SplitChoice& c : splits) out += (out.empty() ? "" : ",") + c.target + "=" + std::string(to_string(c.split));
  return out;
}

}  // namespace

std::string results_name(std::size_t ranks, std::size_t batch, std::string_view consolidation,
                         std::string_view plan) {
  return "cnnpar_np" + std::to_string(ranks) + "_b" + std::to_string(batch) + "_" + std::string(consolidation) + "_" +
         std::string(plan) + ".h5";
}

std::string default_results_name(const RunReport& r) {
  return results_name(r.ranks, r.batch, r.consolidation, r.plan);
}

void write_run(const h5::Location& where, const RunReport& r, const TensorDump* tensors) {
  const std::size_t L = r.layers.size(), P = r.ranks, I = r.iterations;

  // /meta: what was run, where, and what came out.
  const h5::Group meta = where.create_group("meta");
  meta.attr("schema", kResultsSchemaName)
      .attr("schema_version", std::int64_t{kResultsSchemaVersion})
      .attr("program_version", program_version())
      .attr("git_commit", git_commit())
      .attr("created_utc", r.created_utc)
      .attr("command_line", r.command_line)
      .attr("nprocs", std::int64_t(P))
      .attr("nodes", std::int64_t(r.nodes))
      .attr("mpi_library", r.mpi_library)
      .attr("kernels", r.kernels)
      .attr("fusion", r.fusion ? "on" : "off")
      .attr("network", to_string(r.net))
      .attr("network_name", r.net.name)
      .attr("splits", splits_text(r.splits))
      .attr("decomposition", r.decomposition)
      .attr("batch", std::int64_t(r.batch))
      .attr("iterations", std::int64_t(I))
      .attr("warmup", std::int64_t(r.warmup))
      .attr("seed", r.seed)
      .attr("weights_file", r.weights_file)
      .attr("input_file", r.input_name)
      .attr("input_first_index", std::int64_t(r.first_index))
      .attr("input_count", std::int64_t(r.batch))
      .attr("consolidation", r.consolidation)
      .attr("plan", r.plan)
      .attr("ranks_per_node", std::int64_t(r.ranks_per_node))
      .attr("activation_layout", "C,H,W,B (batch innermost)")
      .attr("slurm_job_id", r.slurm_job_id)
      .attr("slurm_job_nodelist", r.slurm_nodelist)
      .attr("slurm_ntasks", r.slurm_ntasks)
      .attr("output_checksum_fnv1a64", hex64(r.checksum))
      .attr("output_sum", r.output_sum)
      .attr("ranks_agree", std::int64_t(r.ranks_agree ? 1 : 0))
      .attr("verification", !r.verification                   ? "not requested"
                            : !r.verification->passed()         ? "differs"
                            : r.verification->exact_required    ? "bit-for-bit equal"
                                                                : "within the summation-order bound")
      .attr("verify_max_abs_diff", r.verification ? r.verification->output.max_abs_diff : -1.0)
      .attr("verify_bound_ratio", r.verification ? r.verification->worst_bound_ratio() : -1.0)
      .attr("serial_forward_s", r.serial_forward_s)
      .attr("timestamp_cost_s", r.timestamp_cost_s)
      .attr("timestamps_per_pass", std::int64_t(r.timestamps_per_pass))
      .attr("wait_transfer_method",
            "entry-timestamp skew: wait = latest entry over ranks - own entry; transfer = exit - max(own entry, "
            "latest entry); clocks aligned at start-up by min-RTT ping-pong with rank 0; clamped at 0");
  write_simulation_meta(meta);

  // /layers: one row per layer (its plan step: how it was split and what its boundary did).
  std::vector<std::string> names, operations, splits, units, boundaries;
  std::vector<std::int64_t> in_shape, out_shape, items, item_bytes;
  for (const PlanStep& step : r.steps) {
    const LayerInfo& l = r.layers[step.layer];
    names.push_back(l.name);
    operations.push_back(l.operation);
    splits.push_back(std::string(split_name(step)));
    units.push_back(l.op_unit);
    boundaries.push_back(std::string(to_string(step.action)));
    for (std::size_t v : {l.in.c, l.in.h, l.in.w}) in_shape.push_back(std::int64_t(v));
    for (std::size_t v : {l.out.c, l.out.h, l.out.w}) out_shape.push_back(std::int64_t(v));
    items.push_back(std::int64_t(step.layout.items));
    item_bytes.push_back(std::int64_t(step.layout.item_elems * sizeof(float)));
  }
  where.write("layers/name", names).attr("dims", "layer");
  where.write("layers/operation", operations).attr("dims", "layer");
  where.write("layers/split", splits).attr("dims", "layer");
  where.write("layers/op_unit", units).attr("dims", "layer");
  where.write("layers/boundary", boundaries).attr("dims", "layer");
  put(where, "layers/in_shape", in_shape, {L, 3}, "1", "layer,chw", "per-image input shape C,H,W");
  put(where, "layers/out_shape", out_shape, {L, 3}, "1", "layer,chw", "per-image output shape C,H,W");
  put(where, "layers/items", items, {L}, "1", "layer", "N: items the layer's work is split into (see split)");
  put(where, "layers/item_bytes", item_bytes, {L}, "B", "layer", "s: bytes of one item for the whole batch");
  std::vector<std::int64_t> fused(L);
  for (std::size_t l = 0; l < L && l < r.fused_with_next.size(); ++l) fused[l] = r.fused_with_next[l] ? 1 : 0;
  put(where, "layers/fused_with_next", fused, {L}, "1", "layer",
      "1: computed with the next layer by one kernel (a conv and its max-pool), times measured apart");

  // /partition, /comm, /work, /memory: [layer, rank].
  std::vector<std::int64_t> begin(L * P), count(L * P), second_begin(L * P), second_count(L * P), grid(L * 2);
  std::vector<std::uint64_t> sent(L * P), received(L * P), expected(L * P), expected_sent(L * P), ops(L * P),
      elements(L * P), weight_bytes(L * P);
  for (std::size_t l = 0; l < L; ++l) {
    const PlanStep& step = r.steps[l];
    for (std::size_t q = 0; q < P; ++q) {
      const std::size_t k = l * P + q;
      const Slice sl = step.layout.slices[q];
      begin[k] = std::int64_t(sl.begin);
      count[k] = std::int64_t(sl.count);
      second_begin[k] = std::int64_t(step.second(q).begin);
      second_count[k] = std::int64_t(step.second(q).count);
      sent[k] = r.records[q].bytes_sent[l + 1];
      received[k] = r.records[q].bytes_received[l + 1];
      expected[k] = r.expected_bytes[l][q].received;
      expected_sent[k] = r.expected_bytes[l][q].sent;
      ops[k] = step_ops(r.layers[step.layer], step, q, r.batch);
      elements[k] = step.partial() ? sl.count * step.layout.item_elems : output_elements(step, q);
      weight_bytes[k] = r.records[q].weight_bytes[l];
    }
  }
  for (std::size_t l = 0; l < L; ++l) {
    grid[2 * l] = std::int64_t(r.steps[l].grid_rows);
    grid[2 * l + 1] = std::int64_t(r.steps[l].grid_cols);
  }
  put(where, "layers/grid", grid, {L, 2}, "ranks", "layer,axis",
      "process grid R x C of a 2-D split (tiles, rows-channels, samples-channels); 1 x 1 otherwise");
  put(where, "partition/second_begin", second_begin, {L, P}, "items", "layer,rank",
      "2-D splits: first column or channel of the rank's block on the grid's second axis (0 otherwise)");
  put(where, "partition/second_count", second_count, {L, P}, "items", "layer,rank",
      "2-D splits: columns or channels in that block (0 otherwise)");
  put(where, "partition/begin", begin, {L, P}, "items", "layer,rank", "first item owned");
  put(where, "partition/count", count, {L, P}, "items", "layer,rank", "items owned");
  put(where, "comm/bytes_sent", sent, {L, P}, "B", "layer,rank",
      "bytes of this rank's data the boundary handed to MPI for other ranks");
  put(where, "comm/bytes_received", received, {L, P}, "B", "layer,rank",
      "bytes of other ranks' data this rank received through MPI");
  put(where, "comm/bytes_expected", expected, {L, P}, "B", "layer,rank",
      "model of bytes_received (plan.hpp; allgatherv per-layer: s*(N - n_r))");
  put(where, "comm/bytes_sent_expected", expected_sent, {L, P}, "B", "layer,rank",
      "model of bytes_sent (allgatherv per-layer: s*n_r*(P-1))");
  std::vector<std::uint64_t> input_sent(P), input_received(P), input_expected(P);
  for (std::size_t q = 0; q < P; ++q) {
    input_sent[q] = r.records[q].bytes_sent[0];
    input_received[q] = r.records[q].bytes_received[0];
    input_expected[q] = r.expected_broadcast[q].received;
  }
  put(where, "comm/input_bytes_sent", input_sent, {P}, "B", "rank", "input broadcast: bytes handed to MPI");
  put(where, "comm/input_bytes_received", input_received, {P}, "B", "rank",
      "input broadcast: bytes received through MPI");
  put(where, "comm/input_bytes_expected", input_expected, {P}, "B", "rank", "model of input_bytes_received");
  // Who sent what to whom (comm_log.hpp): stage 0 the input broadcast, stage l + 1 layer l's boundary.
  std::vector<std::uint64_t> matrix((L + 1) * P * P, 0);
  for (std::size_t q = 0; q < P; ++q) {
    const std::vector<std::uint64_t>& row = r.records[q].sent_to;
    for (std::size_t st = 0; st <= L && row.size() == (L + 1) * P; ++st)
      for (std::size_t to = 0; to < P; ++to) matrix[(st * P + q) * P + to] = row[st * P + to];
  }
  put(where, "comm/matrix", matrix, {L + 1, P, P}, "B", "stage,from,to",
      "bytes each rank passed to MPI for each other rank in the last timed pass, recorded at the MPI interface (PMPI); "
      "stage 0 the input broadcast, stage l+1 layer l's boundary");
  // Shared windows: who read what of whose data in place (consolidation.hpp), oriented as the MPI matrix, from the
  // writer to the reader, so the two compare cell by cell.
  std::vector<std::uint64_t> read_matrix((L + 1) * P * P, 0), read(L * P), input_read(P);
  for (std::size_t q = 0; q < P; ++q) {
    const RankRecord& rec = r.records[q];
    input_read[q] = rec.bytes_read_in_place[0];
    for (std::size_t l = 0; l < L; ++l) read[l * P + q] = rec.bytes_read_in_place[l + 1];
    for (std::size_t st = 0; st <= L && rec.read_from.size() == (L + 1) * P; ++st)
      for (std::size_t from = 0; from < P; ++from) read_matrix[(st * P + from) * P + q] = rec.read_from[st * P + from];
  }
  put(where, "comm/bytes_read_in_place", read, {L, P}, "B", "layer,rank",
      "bytes of other ranks' data this rank read in place through a shared window at the boundary: what the next "
      "step reads that another rank stored, and the boundary's own loads (0 under allgatherv); counted, not measured");
  put(where, "comm/input_bytes_read_in_place", input_read, {P}, "B", "rank",
      "input broadcast: bytes of the batch this rank read in place through a shared window, stored by another rank");
  put(where, "comm/shared_read_matrix", read_matrix, {L + 1, P, P}, "B", "stage,from,to",
      "bytes of rank from's data rank to read in place through the node's shared window in the last timed pass, not "
      "MPI traffic; stage 0 the input broadcast, stage l+1 layer l's boundary; column sums are bytes_read_in_place");
  put(where, "work/ops", ops, {L, P}, "operations (see /layers/op_unit)", "layer,rank",
      "exact operation count of this rank's slice for the batch");
  put(where, "work/elements_owned", elements, {L, P}, "floats", "layer,rank",
      "elements of the split this rank computed (row-parallel: input features times B)");
  put(where, "memory/weight_bytes", weight_bytes, {L, P}, "B", "layer,rank", "parameters held by this rank");
  std::vector<std::uint64_t> activation(P);
  for (std::size_t q = 0; q < P; ++q) activation[q] = r.records[q].activation_bytes;
  put(where, "memory/activation_bytes", activation, {P}, "B", "rank",
      "activation buffers this rank allocated (a node window counts on the rank that allocated it); all live for the "
      "whole run, so also the peak");

  // /timing: [iteration, layer, rank] and [iteration, rank].
  const DerivedTimes& t = r.times;
  // Every timed event (records.hpp): per step [iteration, layer, rank], and for the input broadcast (stage 0, which
  // computes nothing) [iteration, rank].
  for (const Event e : kAllEvents) {
    std::vector<double> steps(I * L * P), broadcast(I * P);
    for (std::size_t i = 0; i < I; ++i)
      for (std::size_t q = 0; q < P; ++q) {
        broadcast[i * P + q] = t.seconds(i, 0, e, q);
        for (std::size_t l = 0; l < L; ++l) steps[(i * L + l) * P + q] = t.seconds(i, l + 1, e, q);
      }
    const std::string name(to_string(e));
    put(where, "timing/" + name + "_s", steps, {I, L, P}, "s", "iteration,layer,rank", event_description(e));
    if (is_boundary_event(e))
      put(where, "timing/broadcast_" + name + "_s", broadcast, {I, P}, "s", "iteration,rank",
          "input broadcast: " + name);
  }
  std::vector<double> forward(I * P);
  for (std::size_t i = 0; i < I; ++i)
    for (std::size_t q = 0; q < P; ++q) forward[i * P + q] = r.records[q].forward_s[i];
  put(where, "timing/forward_s", forward, {I, P}, "s", "iteration,rank", "whole forward pass on this rank");

  // The same events as timestamps on rank 0's clock (each rank's offset applied), relative to the first timed
  // pass's earliest start: an exact timeline of every rank, for traces.
  double origin = r.records[0].forward_start_s[0] + r.records[0].clock_offset_s;
  for (const RankRecord& rec : r.records) origin = std::min(origin, rec.forward_start_s[0] + rec.clock_offset_s);
  std::vector<double> start(I * P), b_enter(I * P), b_exit(I * P), enter(I * L * P), exit_(I * L * P);
  for (std::size_t q = 0; q < P; ++q) {
    const RankRecord& rec = r.records[q];
    for (std::size_t i = 0; i < I; ++i) {
      start[i * P + q] = rec.forward_start_s[i] + rec.clock_offset_s - origin;
      b_enter[i * P + q] = t.begin_s[t.at(i, 0, Event::wait, q)] - origin;
      b_exit[i * P + q] = t.end_s[t.at(i, 0, Event::transfer, q)] - origin;
      for (std::size_t l = 0; l < L; ++l) {
        // An exchange boundary is recorded as one halo event; the others as wait then transfer.
        const bool exchange = r.steps[l].action == BoundaryAction::exchange;
        enter[(i * L + l) * P + q] = t.begin_s[t.at(i, l + 1, exchange ? Event::halo : Event::wait, q)] - origin;
        exit_[(i * L + l) * P + q] = t.end_s[t.at(i, l + 1, exchange ? Event::halo : Event::transfer, q)] - origin;
      }
    }
  }
  put(where, "timing/forward_start_s", start, {I, P}, "s", "iteration,rank",
      "when the pass began, on rank 0's clock, from the first timed pass's earliest start");
  put(where, "timing/broadcast_enter_s", b_enter, {I, P}, "s", "iteration,rank", "input broadcast entered (same clock)");
  put(where, "timing/broadcast_exit_s", b_exit, {I, P}, "s", "iteration,rank", "input broadcast left (same clock)");
  put(where, "timing/boundary_enter_s", enter, {I, L, P}, "s", "iteration,layer,rank",
      "the layer's boundary entered, i.e. its compute ended (same clock)");
  put(where, "timing/boundary_exit_s", exit_, {I, L, P}, "s", "iteration,layer,rank",
      "the layer's boundary left (same clock)");
  put(where, "timing/serial_layer_s", r.serial_layer_s, {L}, "s", "layer",
      "median per-layer time of the serial reference on rank 0");
  // Which kernels those times are of: a fused serial conv + pool + GELU reads each layer's input from the caches,
  // a plan that moves data between them from memory (analysis model compares like with like).
  std::vector<std::int64_t> serial_fused(L);
  for (std::size_t l = 0; l < L && l < r.serial_fused_with_next.size(); ++l)
    serial_fused[l] = r.serial_fused_with_next[l] ? 1 : 0;
  put(where, "timing/serial_fused_with_next", serial_fused, {L}, "1", "layer",
      "1: the serial reference computed the layer with the next one by one kernel (--fusion on)");

  // /ranks: where each rank ran.
  std::vector<std::string> hosts, bindings;
  std::vector<std::int64_t> nodes;
  std::vector<double> offsets;
  for (const RankRecord& rec : r.records) {
    hosts.push_back(rec.host);
    bindings.push_back(rec.binding);
    nodes.push_back(rec.node);
    offsets.push_back(rec.clock_offset_s);
  }
  where.write("ranks/host", hosts).attr("dims", "rank");
  where.write("ranks/cpu_binding", bindings).attr("dims", "rank").attr("description", "sched_getaffinity CPU list");
  put(where, "ranks/node", nodes, {P}, "1", "rank", "node index (MPI_Comm_split_type SHARED), by lowest rank");
  put(where, "ranks/clock_offset_s", offsets, {P}, "s", "rank", "added to the rank's clock to read rank 0's");

  if (tensors) {
    const std::size_t B = r.batch;
    const Shape in = r.net.input;
    put(where, "tensors/input", tensors->input, {B, in.c, in.h, in.w}, "1", "batch,c,h,w", "pixels / 255");
    for (std::size_t l = 0; l < L; ++l) {
      const LayerInfo& li = r.layers[l];
      const LayerWeights& w = tensors->weights[l];
      if (!w.weight.empty()) {
        const std::vector<std::size_t> shape = weight_shape(li);
        put(where, "tensors/" + li.name + ".weight", w.weight, Dims(shape.begin(), shape.end()), "1",
            "PyTorch layout", "layer weight");
        put(where, "tensors/" + li.name + ".bias", w.bias, {li.out.c}, "1", "out", "layer bias");
      }
      if (!tensors->layer_outputs.empty())
        put(where, "tensors/layers/" + li.name, tensors->layer_outputs[l], {B, li.out.c, li.out.h, li.out.w}, "1",
            "batch,c,h,w", "layer output");
    }
    put(where, "tensors/output", tensors->output, {B, r.layers.back().out.elements()}, "1", "batch,feature",
        "final output, PyTorch [N, features] order");
  }
}

void write_calibration(const h5::Location& where, const CollectiveTimings& t, std::size_t ranks, int nodes) {
  const char* algorithm = std::getenv("OMPI_MCA_coll_tuned_allgatherv_algorithm");
  where.create_group("calibration")
      .attr("nprocs", std::int64_t(ranks))
      .attr("nodes", std::int64_t(nodes))
      .attr("repetitions", std::int64_t(t.repetitions))
      .attr("method", "per call: barrier, clock around the call only, slowest rank kept (OSU style)")
      .attr("allgatherv_algorithm", algorithm ? algorithm : "library default");
  where.write("calibration/collective", t.collectives).attr("dims", "collective");
  put(where, "calibration/bytes", t.bytes, {t.bytes.size()}, "B", "size", "n: the whole message");
  put(where, "calibration/time_s", t.time_s, {t.collectives.size(), t.bytes.size(), t.repetitions}, "s",
      "collective,size,repetition", "time of one call, slowest rank");
  if (!t.boundaries.empty())
    where.write("calibration/boundary", t.boundaries)
        .attr("dims", "size")
        .attr("description", "layers whose boundary moves exactly this n in the run (\"\" for the 64 B .. 4 MiB grid)");
  if (t.in_pass.empty()) return;
  const std::size_t J = t.in_pass.size();
  std::vector<std::string> layers;
  std::vector<std::uint64_t> bytes, evicted;
  std::vector<double> times;
  for (const CollectiveTimings::InPass& e : t.in_pass) {
    layers.push_back(e.layers);
    bytes.push_back(e.bytes);
    evicted.insert(evicted.end(), e.evicted_bytes.begin(), e.evicted_bytes.end());
    times.insert(times.end(), e.time_s.begin(), e.time_s.end());
  }
  where.create_group("calibration/in_pass")
      .attr("method", "MPI_Allgatherv in place of the boundary's own blocks; before each call, outside its time, every "
                      "rank reads the whole tensor, streams through evicted_bytes of its own (read and written) and "
                      "rewrites its own block; then a barrier, the clock around the call only, slowest rank kept");
  where.write("calibration/in_pass/layers", layers)
      .attr("dims", "boundary")
      .attr("description", "the steps since the previous boundary, joined by '+': the gather follows the last");
  put(where, "calibration/in_pass/bytes", bytes, {J}, "B", "boundary", "n: the whole gathered tensor");
  put(where, "calibration/in_pass/evicted_bytes", evicted, {J, ranks}, "B", "boundary,rank",
      "bytes the rank's kernels since the previous boundary read and write (input read, output written, "
      "parameters held), streamed through before each call");
  put(where, "calibration/in_pass/time_s", times, {J, t.repetitions}, "s", "boundary,repetition",
      "time of one call, slowest rank");
}

void write_compare_file(const std::filesystem::path& path, bool force, const std::vector<RunReport>& runs) {
  h5::write_atomically(path, force, [&](h5::File& f) {
    f.attr("schema", kResultsSchemaName).attr("schema_version", std::int64_t{kResultsSchemaVersion});
    std::vector<std::string> names;
    for (const RunReport& r : runs) {
      names.push_back(r.consolidation + "_" + (r.decomposition.empty() ? r.plan : r.decomposition));
      write_run(f.create_group("compare/" + names.back()), r, nullptr);
    }
    if (runs.front().calibration) write_calibration(f, *runs.front().calibration, runs.front().ranks, runs.front().nodes);
    f.write("compare/combinations", names).attr("description", "the groups under /compare, in the order run");
  });
}

void write_results_file(const std::filesystem::path& path, bool force, const RunReport& report,
                        const TensorDump* tensors) {
  h5::write_atomically(path, force, [&](h5::File& f) {
    f.attr("schema", kResultsSchemaName).attr("schema_version", std::int64_t{kResultsSchemaVersion});
    write_run(f, report, tensors);
    if (report.calibration) write_calibration(f, *report.calibration, report.ranks, report.nodes);
  });
}

}  // namespace cnnpar
