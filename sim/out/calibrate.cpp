#include "calibrate.hpp"

#include "costs.hpp"
#include "error.hpp"
#include "limits.hpp"
#include "scenario.hpp"
#include "units.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

namespace ipcsim {

namespace {

// The fit's constants (docs/calibrate.md).
// Weight of the prior that pulls each kernel-path primitive toward the base preset's value: moving
// one primitive by its whole base value costs as much as a 10% error in one cell, so the cells decide
// whatever they can tell apart and the prior only what they cannot. (On the project VM's file, 1e-3
// fitted no better, 14.4% RMS against 14.6%, and drove five primitives to zero.)
constexpr double kPriorWeight = 1e-2;
// A kernel-path primitive, a switch piece or a syscall piece stays below 10 us: far above any
// lock, allocation or list operation, far below anything that would not be one.
constexpr double kMaxPathNs = 10'000;
// An idle exit stays below 1 ms (deep package C-states and a halted vCPU take up to hundreds of us).
constexpr double kMaxIdleExitNs = 1'000'000;
// Copy rates between 1e-6 (the loader's floor) and 1024 bytes per cycle (no core copies more).
constexpr double kMinRate = 1e-6, kMaxRate = 1024;
// Linearisation: simulated times are sums of charged cycles, so a finite difference of this many
// cycles is the exact count of a primitive on a cell's timed path (while the schedule stays put).
constexpr double kStep = 1000;
// Sending a wakeup (ipi) stays below 1 ms, as an idle exit does.
constexpr double kMaxIpiNs = 1'000'000;
// The standard normal's 99th percentile: a log-normal's p99 / median is exp(sigma x this).
constexpr double kNormalP99 = 2.326347874;
// Its 90th: the 10th and 90th percentiles are exp(sigma x 2 x this) apart.
constexpr double kNormalP90 = 1.281551566;
// Gauss-Newton steps at most for idle_exit (fit_idle_exit).
constexpr int kIdleExitSteps = 6;
constexpr int kGaussNewtonSteps = 2;
// Streams of this many bytes per message or more do not enter the kernel-path fit (fit_paths).
constexpr std::uint64_t kStreamFitBelow = 4096;
// A primitive whose column the other columns reproduce to within this (relative) is not
// separately determined by the cells.
constexpr double kSeparableBelow = 1e-3;

const std::vector<Primitive> kSyscallPieces = {Primitive::trap_enter, Primitive::trap_exit,
                                               Primitive::syscall_dispatch};
const std::vector<Primitive> kSwitchPieces = {Primitive::context_save, Primitive::context_restore,
                                              Primitive::sched_pick, Primitive::address_space_switch};
const std::vector<Primitive> kRates = {Primitive::copy_bytes_per_cycle, Primitive::copy_bytes_per_cycle_l2,
                                       Primitive::copy_bytes_per_cycle_l3,
                                       Primitive::copy_bytes_per_cycle_uncached};
const std::vector<Primitive> kSizes = {Primitive::cache_l1_bytes, Primitive::cache_l2_bytes,
                                       Primitive::cache_l3_bytes};
// The per-mechanism kernel paths (docs/costs.md) and the wakeup every blocking path shares.
const std::vector<Primitive> kPathPrimitives = {
    Primitive::fd_lookup,       Primitive::ipc_id_lookup,    Primitive::permission_check,
    Primitive::security_hook,   Primitive::lock_acquire,     Primitive::slab_alloc,
    Primitive::slab_free,       Primitive::page_alloc,       Primitive::page_free,
    Primitive::list_op,         Primitive::tree_op,          Primitive::waitqueue_op,
    Primitive::socket_dispatch, Primitive::user_page_lookup, Primitive::hash_lookup,
    Primitive::wakeup};

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string percent(double relative) { return (relative >= 0 ? "+" : "") + fixed(relative * 100, 1) + "%"; }

std::string name(Primitive p) { return primitive_name(p); }

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

bool is_rate(Primitive p) {
  return p == Primitive::copy_bytes_per_cycle_remote ||
         std::find(kRates.begin(), kRates.end(), p) != kRates.end();
}

// Four significant digits: a rate written as 17.51, 0.7634. Monotone, so the order of the rates holds.
double round_rate(double v) {
  v = std::clamp(v, kMinRate, kMaxRate);
  const double scale = std::pow(10.0, 3 - std::floor(std::log10(v)));
  return std::max(kMinRate, std::round(v * scale) / scale);
}

// ---- small dense least squares ------------------------------------------------------------------

using Matrix = std::vector<std::vector<double>>; // rows

// Solves the normal equations of min |A x - b| over the columns in `cols` (Gaussian elimination
// with partial pivoting); false when they are singular.
bool solve_subset(const Matrix& a, const std::vector<double>& b, const std::vector<std::size_t>& cols,
                  std::vector<double>& x) {
  const std::size_t n = cols.size();
  Matrix m(n, std::vector<double>(n + 1, 0));
  for (std::size_t r = 0; r < a.size(); ++r)
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) m[i][j] += a[r][cols[i]] * a[r][cols[j]];
      m[i][n] += a[r][cols[i]] * b[r];
    }
  double scale = 0;
  for (std::size_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(m[i][i]));
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t pivot = k;
    for (std::size_t i = k + 1; i < n; ++i)
      if (std::abs(m[i][k]) > std::abs(m[pivot][k])) pivot = i;
    if (!(std::abs(m[pivot][k]) > 1e-13 * scale)) return false;
    std::swap(m[k], m[pivot]);
    for (std::size_t i = k + 1; i < n; ++i) {
      const double f = m[i][k] / m[k][k];
      for (std::size_t j = k; j <= n; ++j) m[i][j] -= f * m[k][j];
    }
  }
  x.assign(n, 0);
  for (std::size_t k = n; k-- > 0;) {
    double s = m[k][n];
    for (std::size_t j = k + 1; j < n; ++j) s -= m[k][j] * x[j];
    x[k] = s / m[k][k];
  }
  return true;
}

// Lawson and Hanson's active-set method: min |A x - b| subject to x >= 0 (Solving Least Squares
// Problems, 1974, ch. 23). Deterministic: ties go to the lowest column.
std::vector<double> nnls(const Matrix& a, const std::vector<double>& b, std::size_t n) {
  std::vector<double> x(n, 0);
  std::vector<bool> passive(n, false);
  auto gradient = [&] {
    std::vector<double> w(n, 0);
    for (std::size_t r = 0; r < a.size(); ++r) {
      double res = b[r];
      for (std::size_t j = 0; j < n; ++j) res -= a[r][j] * x[j];
      for (std::size_t j = 0; j < n; ++j) w[j] += a[r][j] * res;
    }
    return w;
  };
  double norm = 0;
  for (const auto& row : a)
    for (double v : row) norm = std::max(norm, std::abs(v));
  const double tol = 1e-12 * std::max(1.0, norm * norm) * static_cast<double>(a.size() + 1);
  for (std::size_t outer = 0; outer < 3 * n + 3; ++outer) {
    auto w = gradient();
    std::size_t best = n;
    for (std::size_t j = 0; j < n; ++j)
      if (!passive[j] && w[j] > tol && (best == n || w[j] > w[best])) best = j;
    if (best == n) break;
    passive[best] = true;
    for (std::size_t inner = 0; inner < 3 * n + 3; ++inner) {
      std::vector<std::size_t> cols;
      for (std::size_t j = 0; j < n; ++j)
        if (passive[j]) cols.push_back(j);
      std::vector<double> z;
      if (!solve_subset(a, b, cols, z)) {
        passive[best] = false; // a column the others already reproduce: leave it at zero
        break;
      }
      bool positive = true;
      for (double v : z) positive = positive && v > 0;
      if (positive) {
        for (std::size_t i = 0; i < cols.size(); ++i) x[cols[i]] = z[i];
        break;
      }
      double alpha = 1;
      for (std::size_t i = 0; i < cols.size(); ++i)
        if (z[i] <= 0) alpha = std::min(alpha, x[cols[i]] / (x[cols[i]] - z[i]));
      for (std::size_t i = 0; i < cols.size(); ++i) {
        x[cols[i]] += alpha * (z[i] - x[cols[i]]);
        if (x[cols[i]] <= 1e-12 * std::max(1.0, std::abs(z[i]))) {
          x[cols[i]] = 0;
          passive[cols[i]] = false;
        }
      }
    }
  }
  return x;
}

// min |A x - b| with 0 <= x <= upper: NNLS, then every value past its bound is fixed there and the
// rest fitted again.
std::vector<double> bounded_nnls(const Matrix& a, std::vector<double> b, const std::vector<double>& upper,
                                 std::vector<bool>& at_bound) {
  const std::size_t n = upper.size();
  at_bound.assign(n, false);
  std::vector<double> x(n, 0);
  for (std::size_t round = 0; round <= n; ++round) {
    std::vector<std::size_t> free;
    for (std::size_t j = 0; j < n; ++j)
      if (!at_bound[j]) free.push_back(j);
    Matrix sub(a.size(), std::vector<double>(free.size()));
    std::vector<double> rhs = b;
    for (std::size_t r = 0; r < a.size(); ++r) {
      for (std::size_t i = 0; i < free.size(); ++i) sub[r][i] = a[r][free[i]];
      for (std::size_t j = 0; j < n; ++j)
        if (at_bound[j]) rhs[r] -= a[r][j] * upper[j];
    }
    auto y = nnls(sub, rhs, free.size());
    bool past = false;
    for (std::size_t i = 0; i < free.size(); ++i) {
      x[free[i]] = y[i];
      if (y[i] > upper[free[i]]) {
        at_bound[free[i]] = true;
        past = true;
      }
    }
    for (std::size_t j = 0; j < n; ++j)
      if (at_bound[j]) x[j] = upper[j];
    if (!past) break;
  }
  return x;
}

// ---- the state of the fit ------------------------------------------------------------------------

struct Fit {
  const HostbenchFile& file;
  std::string file_name; // the CSV's file name, without its directory: the preset names it so
  std::string base_name; // as given
  json base_costs;       // what machine.costs takes for the base
  json base_doc;
  double hz = 0;
  std::string machine; // one line
  std::array<double, kPrimitiveCount> value{};
  std::array<std::string, kPrimitiveCount> source{};
  std::vector<std::string> summary;
  json time_slice;               // machine.costs.time_slice: the fitted slice, or null (the base's, if any)
  std::string time_slice_source; // empty: the base's
  json idle_exit_spread;         // machine.costs.idle_exit_spread: fitted, or null (the base's, if any)
  std::string idle_exit_spread_source; // empty: the base's
  json idle_states;                    // machine.costs.idle_states: fitted from the ladder, or null
  std::string idle_states_source;

  double cycles(double ns) const { return ns * hz / 1e9; }
  double ns(double cycles) const { return cycles * 1e9 / hz; }
  double& v(Primitive p) { return value[static_cast<std::size_t>(p)]; }
  double base(Primitive p) const { return base_doc.at("primitives").at(name(p)).at("value").get<double>(); }
  const std::string base_source(Primitive p) const {
    return base_doc.at("primitives").at(name(p)).at("source").get<std::string>();
  }
  std::string at_line(const HostbenchRow& r) const {
    return cell_name(r) + " (" + file_name + " line " + std::to_string(r.line) + ")";
  }
  std::string fitted(const std::string& what) const {
    return "Fitted by ipcsim calibrate (docs/calibrate.md) from " + file_name + ", measured on " + machine +
           ". " + what;
  }
  void kept(Primitive p, const std::string& why) {
    std::string previous = base_source(p);
    // Calibrating from a calibrated preset: its sources are not nested again.
    const std::string mark = " Base preset's source: ";
    if (auto at = previous.find(mark); previous.rfind("Not determined by", 0) == 0 && at != std::string::npos)
      previous = previous.substr(at + mark.size());
    source[static_cast<std::size_t>(p)] = "Not determined by " + file_name + " (" + why +
                                          "): the base preset " + base_name + "'s value." + mark + previous;
  }
  // machine.costs for the current values.
  json costs() const {
    json c = json::object();
    c["preset"] = base_costs;
    for (std::size_t i = 0; i < kPrimitiveCount; ++i) {
      auto p = static_cast<Primitive>(i);
      if (is_rate(p))
        c[name(p)] = value[i];
      else
        c[name(p)] = static_cast<std::int64_t>(std::llround(value[i]));
    }
    if (!time_slice.is_null()) c["time_slice"] = time_slice;
    if (!idle_exit_spread.is_null()) c["idle_exit_spread"] = idle_exit_spread;
    if (!idle_states.is_null()) c["idle_states"] = idle_states;
    return c;
  }
  const HostbenchRow* find(const std::string& kind) const {
    for (const auto& r : file.rows)
      if (r.kind == kind) return &r;
    return nullptr;
  }
};

// Splits a whole number of cycles over `pieces` in the base preset's proportions, by largest
// remainder (ties to the earlier piece), so the parts add up exactly.
void split(Fit& fit, const std::vector<Primitive>& pieces, std::int64_t total) {
  std::vector<double> weight;
  double sum = 0;
  for (Primitive p : pieces) {
    weight.push_back(fit.base(p));
    sum += weight.back();
  }
  if (!(sum > 0)) std::fill(weight.begin(), weight.end(), 1.0), sum = static_cast<double>(pieces.size());
  std::vector<std::int64_t> part;
  std::vector<double> remainder;
  std::int64_t given = 0;
  for (double w : weight) {
    const double exact = static_cast<double>(total) * w / sum;
    part.push_back(static_cast<std::int64_t>(std::floor(exact)));
    remainder.push_back(exact - std::floor(exact));
    given += part.back();
  }
  for (std::int64_t left = total - given; left > 0; --left) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < part.size(); ++i)
      if (remainder[i] > remainder[best] + 1e-9) best = i; // a tie (to rounding) goes to the earlier
    ++part[best];
    remainder[best] = -1;
  }
  for (std::size_t i = 0; i < pieces.size(); ++i) fit.v(pieces[i]) = static_cast<double>(part[i]);
}

std::string proportions(const Fit& fit, const std::vector<Primitive>& pieces) {
  std::vector<std::string> names, values;
  for (Primitive p : pieces) {
    names.push_back(name(p));
    values.push_back(format_number(fit.base(p)));
  }
  return join(names, " : ") + " = " + join(values, " : ");
}

std::int64_t bounded_cycles(const Fit& fit, double cycles, double max_ns, std::string& note) {
  const double upper = std::floor(fit.cycles(max_ns));
  if (cycles > upper) {
    note = " Held at the bound of " + format_number(max_ns) + " ns (" + format_number(upper) +
           " cycles): the measurement is beyond any such kernel path.";
    return static_cast<std::int64_t>(upper);
  }
  return std::llround(std::max(0.0, cycles));
}

// ---- 1. the null system call: trap_enter + syscall_dispatch + trap_exit ----------------------------

void fit_syscall(Fit& fit) {
  const HostbenchRow* row = fit.find("null_syscall");
  const double measured = fit.cycles(row->median_ns);
  std::string note;
  const std::int64_t total = bounded_cycles(fit, measured, 3 * kMaxPathNs, note);
  split(fit, kSyscallPieces, total);
  const std::string what =
      "Source: " + fit.at_line(*row) + ", median " + format_number(row->median_ns) +
      " ns per getppid = " + fixed(measured, 1) + " cycles at " +
      fit.base_doc.at("frequency").at("value").get<std::string>() +
      ", which the model charges as trap_enter + syscall_dispatch + trap_exit = " + std::to_string(total) +
      "; no hostbench cell separates the three, so they keep the base preset's proportions (" +
      proportions(fit, kSyscallPieces) + "). Residual: " + fixed(static_cast<double>(total) - measured, 1) +
      " cycles (rounding)." + note;
  for (Primitive p : kSyscallPieces) fit.source[static_cast<std::size_t>(p)] = fit.fitted(what);
  fit.summary.push_back("null system call " + format_number(row->median_ns) + " ns: trap_enter " +
                        format_number(fit.v(Primitive::trap_enter)) + ", syscall_dispatch " +
                        format_number(fit.v(Primitive::syscall_dispatch)) + ", trap_exit " +
                        format_number(fit.v(Primitive::trap_exit)) + " cycles");
}

// ---- 2. the switch: a sched_yield that switches, less the null system call ----------------------

void fit_switch(Fit& fit) {
  const HostbenchRow* row = fit.find("context_switch");
  const double measured = fit.cycles(row->median_ns);
  // What the simulated cell charges besides the four pieces (the sched_yield system call fitted
  // above, a TLB refill where the TLB is not tagged), from the simulator itself: the cell with the
  // pieces at zero.
  json without = fit.costs();
  for (Primitive p : kSwitchPieces) without[name(p)] = 0;
  std::string why;
  auto rest_ns = simulate_cell(*row, without, why);
  if (!rest_ns)
    throw UserError(fit.file.path + ":" + std::to_string(row->line) +
                    ": the context_switch cell cannot be simulated on the base preset: " + why);
  const double rest = fit.cycles(*rest_ns);
  std::string note;
  std::int64_t total = bounded_cycles(fit, measured - rest, 4 * kMaxPathNs, note);
  if (measured - rest < 0)
    note += " The switch measured faster than the rest of its path: the switch pieces are held at 0.";
  split(fit, kSwitchPieces, total);
  const std::string what =
      "Source: " + fit.at_line(*row) + ", median " + format_number(row->median_ns) +
      " ns per switch = " + fixed(measured, 1) +
      " cycles, a sched_yield that switches between two processes on one core; less the rest of that path "
      "as the simulator charges it with the values fitted before (the system call" +
      (fit.base_doc.at("tagged_tlb").at("value").get<bool>() ? std::string()
                                                             : ", the TLB refill of an untagged switch") +
      ": " + fixed(rest, 1) +
      " cycles), that leaves context_save + sched_pick + context_restore + address_space_switch = " +
      std::to_string(total) +
      " cycles. The blocking paths' own steps (waitqueue_op, wakeup) are fitted separately, from the round "
      "trips; the four pieces are only ever charged together in hostbench's cells, so they keep the base "
      "preset's proportions (" +
      proportions(fit, kSwitchPieces) +
      "). Residual: " + fixed(static_cast<double>(total) + rest - measured, 1) + " cycles (rounding)." + note;
  for (Primitive p : kSwitchPieces) fit.source[static_cast<std::size_t>(p)] = fit.fitted(what);
  fit.summary.push_back("context switch " + format_number(row->median_ns) +
                        " ns: switch path (save + pick + restore + address space) " + std::to_string(total) +
                        " cycles");

  // sched_yield alone on its core (lone_yield) is the system call and schedule() picking the caller
  // again: sched_pick by itself, which splits the sum (exact: the cell's time is linear in it).
  const HostbenchRow* alone = fit.find("lone_yield");
  if (!alone) return;
  json no_pick = fit.costs();
  no_pick[name(Primitive::sched_pick)] = 0;
  auto alone_rest_ns = simulate_cell(*alone, no_pick, why);
  if (!alone_rest_ns)
    throw UserError(fit.file.path + ":" + std::to_string(alone->line) +
                    ": the lone_yield cell cannot be simulated on the base preset: " + why);
  const double alone_measured = fit.cycles(alone->median_ns), alone_rest = fit.cycles(*alone_rest_ns);
  const std::int64_t pick = std::clamp<std::int64_t>(std::llround(alone_measured - alone_rest), 0, total);
  const std::string pick_note =
      alone_measured - alone_rest < 0 ? " The yield measured faster than its system call: held at 0."
      : alone_measured - alone_rest > static_cast<double>(total)
          ? " The yield measured slower than the whole switch allows: held at the switch's total."
          : "";
  const std::vector<Primitive> rest_pieces = {Primitive::context_save, Primitive::context_restore,
                                              Primitive::address_space_switch};
  fit.v(Primitive::sched_pick) = static_cast<double>(pick);
  split(fit, rest_pieces, total - pick);
  fit.source[static_cast<std::size_t>(Primitive::sched_pick)] = fit.fitted(
      "Source: " + fit.at_line(*alone) + ", median " + format_number(alone->median_ns) +
      " ns per call = " + fixed(alone_measured, 1) +
      " cycles, a sched_yield with nothing else runnable on its core (the system call and schedule() picking "
      "the caller again); less the system call as the simulator charges it (" +
      fixed(alone_rest, 1) + " cycles), that leaves sched_pick = " + std::to_string(pick) + " cycles." +
      pick_note);
  const std::string rest_what =
      "Source: " + fit.at_line(*row) + ", median " + format_number(row->median_ns) +
      " ns per switch, less its system call: context_save + sched_pick + context_restore + "
      "address_space_switch = " +
      std::to_string(total) + " cycles; less sched_pick (" + std::to_string(pick) + " cycles, from " +
      fit.at_line(*alone) + ") leaves " + std::to_string(total - pick) +
      " cycles, in the base preset's proportions (" + proportions(fit, rest_pieces) +
      "): no hostbench cell charges these three apart.";
  for (Primitive p : rest_pieces) fit.source[static_cast<std::size_t>(p)] = fit.fitted(rest_what);
  fit.summary.push_back("sched_yield alone " + format_number(alone->median_ns) + " ns: sched_pick " +
                        std::to_string(pick) + " of the switch's " + std::to_string(total) + " cycles");
}

// ---- 3. copies by footprint, from memcpy by size ----------------------------------------------

// Time per byte of a copy whose footprint is `footprint`, per unit of each level's extra time
// (docs/costs.md): 1, then the share of each slower level.
std::array<double, 4> level_shares(double footprint, const std::array<double, 3>& sizes) {
  std::array<double, 4> s{1, 0, 0, 0};
  for (std::size_t k = 0; k < 3; ++k)
    s[k + 1] = sizes[k] <= 0 ? 1.0 : std::clamp((footprint - sizes[k]) / sizes[k], 0.0, 1.0);
  return s;
}

void fit_copies(Fit& fit) {
  std::vector<const HostbenchRow*> rows;
  for (const auto& r : fit.file.rows)
    if (r.kind == "memcpy") rows.push_back(&r);
  if (rows.empty()) {
    for (Primitive p : kRates) fit.kept(p, "it has no memcpy cell");
    for (Primitive p : kSizes) fit.kept(p, "it has no memcpy cell");
    fit.summary.push_back("copies: no memcpy cell, the base preset's rates and cache sizes");
    return;
  }
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->bytes < b->bytes; });
  // Measured cycles per byte, and the footprint (source + destination).
  std::vector<double> per_byte, footprint;
  double largest = 0;
  for (const auto* r : rows) {
    per_byte.push_back(fit.cycles(r->median_ns) / static_cast<double>(r->bytes));
    footprint.push_back(2.0 * static_cast<double>(r->bytes));
    largest = std::max(largest, footprint.back());
  }
  // Candidate cache sizes: powers of two and 1.5 times them, from 4 KiB to twice the largest
  // footprint (beyond it every cell sees the same), and the base preset's sizes.
  std::array<double, 3> base_sizes{};
  for (std::size_t k = 0; k < 3; ++k) base_sizes[k] = fit.base(kSizes[k]);
  std::vector<double> candidates(base_sizes.begin(), base_sizes.end());
  for (double c = 4096; c <= 2 * largest; c *= 2) {
    candidates.push_back(c);
    candidates.push_back(1.5 * c);
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  // For each (L1 <= L2 <= L3): the extra time per byte of each level, non-negative (so the rates
  // never increase away from the core), by least squares on the relative error of every cell; a
  // negligible pull toward the base sizes settles sizes the cells cannot tell apart.
  double best_cost = 0;
  std::array<double, 3> best_sizes{};
  std::array<double, 4> best_d{};
  bool have = false;
  for (std::size_t i = 0; i < candidates.size(); ++i)
    for (std::size_t j = i; j < candidates.size(); ++j)
      for (std::size_t k = j; k < candidates.size(); ++k) {
        std::array<double, 3> sizes{candidates[i], candidates[j], candidates[k]};
        Matrix a;
        std::vector<double> b;
        for (std::size_t c = 0; c < rows.size(); ++c) {
          auto s = level_shares(footprint[c], sizes);
          std::vector<double> row(4);
          for (std::size_t l = 0; l < 4; ++l) row[l] = s[l] / per_byte[c];
          a.push_back(row);
          b.push_back(1.0);
        }
        auto d = nnls(a, b, 4);
        double cost = 0;
        for (std::size_t c = 0; c < rows.size(); ++c) {
          double r = -1;
          for (std::size_t l = 0; l < 4; ++l) r += a[c][l] * d[l];
          cost += r * r;
        }
        for (std::size_t l = 0; l < 3; ++l) cost += 1e-12 * std::abs(std::log2(sizes[l] / base_sizes[l]));
        if (!have || cost < best_cost) {
          have = true;
          best_cost = cost;
          best_sizes = sizes;
          best_d = {d[0], d[1], d[2], d[3]};
        }
      }
  // Rates: 1 / (cumulative time per byte). A level no cell reaches (no footprint beyond the cache
  // before it) is not determined: the base preset's rate, no faster than the level before.
  double t = 0;
  std::vector<std::string> residuals;
  double worst = 0, sum_sq = 0;
  std::string worst_cell;
  for (std::size_t c = 0; c < rows.size(); ++c) {
    auto s = level_shares(footprint[c], best_sizes);
    double model = 0;
    for (std::size_t l = 0; l < 4; ++l) model += s[l] * best_d[l];
    // As a throughput error, the way check-preset reports it.
    const double err = per_byte[c] / model - 1;
    sum_sq += err * err;
    if (std::abs(err) > std::abs(worst)) {
      worst = err;
      worst_cell = std::to_string(rows[c]->bytes) + " B";
    }
    residuals.push_back(std::to_string(rows[c]->bytes) + " B " + percent(err));
  }
  const std::string fit_text =
      "Least squares over the " + std::to_string(rows.size()) +
      " memcpy cells (relative error of the time per byte; each level's extra time per byte non-negative; "
      "the "
      "cache sizes searched over powers of two and 1.5 times them). Residuals (simulated against measured "
      "throughput): " +
      join(residuals, ", ") + "; RMS " +
      fixed(std::sqrt(sum_sq / static_cast<double>(rows.size())) * 100, 1) + "%.";
  std::vector<std::string> sources;
  for (const auto* r : rows)
    sources.push_back(std::to_string(r->bytes) + " B line " + std::to_string(r->line));
  const std::string cells = "memcpy,memcpy cells of " + fit.file_name + " (" + join(sources, ", ") + ")";
  double previous_rate = kMaxRate;
  for (std::size_t l = 0; l < 4; ++l) {
    t += best_d[l];
    const Primitive p = kRates[l];
    bool reached = false;
    for (std::size_t c = 0; c < rows.size(); ++c)
      reached = reached || level_shares(footprint[c], best_sizes)[l] > 0;
    if (!reached) {
      fit.v(p) = round_rate(std::min(fit.base(p), previous_rate));
      fit.kept(p, "no memcpy footprint reaches this level");
      if (fit.v(p) != fit.base(p))
        fit.source[static_cast<std::size_t>(p)] +=
            " Lowered to the faster level's rate, which must not be slower.";
    } else {
      const double rate = t > 0 ? 1.0 / t : kMaxRate;
      fit.v(p) = round_rate(std::min(rate, previous_rate));
      fit.source[static_cast<std::size_t>(p)] =
          fit.fitted("Source: " + cells + ". " + name(p) +
                     " = 1 / (the fitted time per byte at this level) = " + format_number(fit.v(p)) +
                     " bytes per cycle = " + fixed(fit.v(p) * fit.hz / 1e9, 2) + " bytes/ns. " + fit_text);
    }
    previous_rate = fit.v(p);
  }
  for (std::size_t l = 0; l < 3; ++l) {
    const Primitive p = kSizes[l];
    fit.v(p) = best_sizes[l];
    bool beyond = false;
    for (double f : footprint) beyond = beyond || f > best_sizes[l];
    if (!beyond) {
      fit.kept(p, "no memcpy footprint is larger than this cache");
      fit.v(p) = std::max(fit.base(p), l > 0 ? fit.v(kSizes[l - 1]) : 0.0);
      if (fit.v(p) != fit.base(p))
        fit.source[static_cast<std::size_t>(p)] +=
            " Raised to the smaller cache's size, which it may not be below.";
    } else {
      fit.source[static_cast<std::size_t>(p)] = fit.fitted(
          "Source: " + cells +
          ". The size at which the copy rate leaves this level's (the footprint, source "
          "plus destination, moves to the next level's rate between the size and twice it), searched over "
          "powers of two and 1.5 times them. " +
          fit_text);
    }
  }
  fit.summary.push_back("copies: " + fixed(fit.v(Primitive::copy_bytes_per_cycle), 3) + " / " +
                        fixed(fit.v(Primitive::copy_bytes_per_cycle_l2), 3) + " / " +
                        fixed(fit.v(Primitive::copy_bytes_per_cycle_l3), 3) + " / " +
                        fixed(fit.v(Primitive::copy_bytes_per_cycle_uncached), 3) +
                        " bytes per cycle (L1 / L2 / L3 / memory), caches " +
                        format_number(fit.v(Primitive::cache_l1_bytes)) + " / " +
                        format_number(fit.v(Primitive::cache_l2_bytes)) + " / " +
                        format_number(fit.v(Primitive::cache_l3_bytes)) + " bytes; RMS error " +
                        fixed(std::sqrt(sum_sq / static_cast<double>(rows.size())) * 100, 1) + "%, worst " +
                        percent(worst) + " at " + worst_cell);
}

// ---- 4. the kernel paths, from the one-core round trips and streams ---------------------------

// A cell's time as the fit compares it: ns per round trip, or ns per message of a stream.
std::optional<double> simulated_ns(const HostbenchRow& row, const json& costs) {
  std::string why;
  auto v = simulate_cell(row, costs, why);
  if (!v || !(*v > 0)) return std::nullopt;
  return row.kind == "stream" ? static_cast<double>(row.bytes) * 1e3 / *v : *v;
}

// The cells simulated with `costs`: "kind mechanism bytes B error" each (a stream's error in
// throughput, as check-preset shows it), and the RMS of the relative errors in time.
struct Residuals {
  std::vector<std::string> text;
  double rms = 0;
};
Residuals residuals_of(const std::vector<const HostbenchRow*>& cells, const json& costs) {
  Residuals out;
  double sum_sq = 0;
  std::size_t counted = 0;
  for (const auto* r : cells)
    if (auto t = simulated_ns(*r, costs)) {
      const double err = *t / r->median_ns - 1;
      sum_sq += err * err;
      ++counted;
      const double shown = r->kind == "stream" ? r->median_ns / *t - 1 : err;
      out.text.push_back(r->kind + " " + r->mechanism + " " + std::to_string(r->bytes) + " B " +
                         percent(shown));
    }
  out.rms = counted ? std::sqrt(sum_sq / static_cast<double>(counted)) : 0;
  return out;
}

void fit_paths(Fit& fit) {
  std::vector<const HostbenchRow*> rows;
  for (const auto& r : fit.file.rows)
    // Busy polling on one core is two time slices of the host's scheduler, not kernel paths; a
    // stream of page-sized messages or larger is dominated by what the model leaves out (on the
    // host the woken reader runs between the writer's messages; the model switches only when the
    // buffer is full: docs/calibrate.md), so fitting the paths to it would bend them.
    // Each side's call in a one-core stream (send_call, recv_call) splits a message's work between
    // the sender and the receiver, which the others see only summed: an allocation and its free.
    if ((r.kind == "roundtrip" || ((r.kind == "stream" || r.kind == "send_call" || r.kind == "recv_call") &&
                                   r.bytes < kStreamFitBelow)) &&
        r.placement == "same_core" && r.mechanism != "shm_spin")
      rows.push_back(&r);
  const std::size_t n = kPathPrimitives.size();
  std::vector<double> base(n), scale(n), upper(n);
  for (std::size_t j = 0; j < n; ++j) {
    base[j] = fit.base(kPathPrimitives[j]);
    scale[j] = std::max(base[j], fit.cycles(10)); // a base of 0 moves on the scale of 10 ns
    upper[j] = std::floor(fit.cycles(kMaxPathNs));
  }
  // The cells the simulator models.
  std::vector<const HostbenchRow*> used;
  std::vector<double> t0;
  const json start = fit.costs();
  for (const auto* r : rows)
    if (auto t = simulated_ns(*r, start)) {
      used.push_back(r);
      t0.push_back(*t);
    }
  Matrix data; // the cells' rows of the last linearisation, relative
  std::vector<bool> at_bound(n, false);
  for (int step = 0; step < kGaussNewtonSteps && !used.empty(); ++step) {
    const json here = fit.costs();
    if (step > 0)
      for (std::size_t i = 0; i < used.size(); ++i) t0[i] = simulated_ns(*used[i], here).value_or(t0[i]);
    // d(time)/d(primitive), in ns per cycle: the count of the primitive on the cell's timed path.
    Matrix jac(used.size(), std::vector<double>(n, 0));
    for (std::size_t j = 0; j < n; ++j) {
      json moved = here;
      moved[name(kPathPrimitives[j])] =
          static_cast<std::int64_t>(std::llround(fit.v(kPathPrimitives[j]) + kStep));
      for (std::size_t i = 0; i < used.size(); ++i)
        if (auto t = simulated_ns(*used[i], moved)) jac[i][j] = (*t - t0[i]) / kStep;
    }
    // Rows: (t0 + J (y - x) - m) / m for each cell; sqrt(prior) (y - base) / scale per primitive.
    Matrix a;
    std::vector<double> b;
    data.clear();
    for (std::size_t i = 0; i < used.size(); ++i) {
      const double m = used[i]->median_ns;
      std::vector<double> row(n);
      double rhs = (m - t0[i]) / m;
      for (std::size_t j = 0; j < n; ++j) {
        row[j] = jac[i][j] / m;
        rhs += row[j] * fit.v(kPathPrimitives[j]);
      }
      a.push_back(row);
      data.push_back(row);
      b.push_back(rhs);
    }
    for (std::size_t j = 0; j < n; ++j) {
      std::vector<double> row(n, 0);
      row[j] = std::sqrt(kPriorWeight) / scale[j];
      a.push_back(row);
      b.push_back(std::sqrt(kPriorWeight) * base[j] / scale[j]);
    }
    auto y = bounded_nnls(a, b, upper, at_bound);
    for (std::size_t j = 0; j < n; ++j) fit.v(kPathPrimitives[j]) = static_cast<double>(std::llround(y[j]));
  }
  // The residuals of the fitted values, simulated again.
  const auto [residuals, rms] = residuals_of(used, fit.costs());
  // What the cells determine: a column of zeros is on no fitted cell's path; a column the others
  // reproduce is seen only in a fixed combination with them.
  for (std::size_t j = 0; j < n; ++j) {
    const Primitive p = kPathPrimitives[j];
    double norm = 0;
    for (const auto& row : data) norm += row[j] * row[j];
    norm = std::sqrt(norm);
    if (used.empty() || !(norm > 0)) {
      fit.v(p) = fit.base(p);
      fit.kept(p, used.empty() ? "it has no one-core round trip, stream or call the simulator models"
                               : "no fitted cell's path charges it");
      continue;
    }
    // Regress column j on the others (a vanishing ridge keeps it solvable), then compare.
    std::vector<std::size_t> others;
    for (std::size_t k = 0; k < n; ++k)
      if (k != j) others.push_back(k);
    Matrix a = data;
    std::vector<double> b;
    for (const auto& row : data) b.push_back(row[j]);
    for (std::size_t k = 0; k < n; ++k) {
      std::vector<double> row(n, 0);
      row[k] = 1e-6 * norm;
      a.push_back(row);
      b.push_back(0);
    }
    std::vector<double> beta;
    double rel = 1;
    std::vector<std::string> partners;
    if (solve_subset(a, b, others, beta)) {
      double res = 0;
      for (const auto& row : data) {
        double r = row[j];
        for (std::size_t i = 0; i < others.size(); ++i) r -= row[others[i]] * beta[i];
        res += r * r;
      }
      rel = std::sqrt(res) / norm;
      for (std::size_t i = 0; i < others.size(); ++i) {
        double col = 0;
        for (const auto& row : data) col += row[others[i]] * row[others[i]];
        if (std::abs(beta[i]) * std::sqrt(col) > 0.1 * norm)
          partners.push_back(name(kPathPrimitives[others[i]]));
      }
    }
    double share = 0; // of the time of the cells on whose path it is, at the fitted value
    std::size_t on = 0;
    for (std::size_t i = 0; i < data.size(); ++i)
      if (data[i][j] > 0) {
        share += data[i][j] * fit.v(p);
        ++on;
      }
    std::string determined =
        rel < kSeparableBelow
            ? "The cells see it only in a fixed combination with " + join(partners, ", ") +
                  ": that combination is fitted, and its split follows the prior toward the base preset's "
                  "values (" +
                  format_number(base[j]) + " cycles here)."
            : "Determined by the cells (the other primitives' columns leave " + fixed(rel * 100, 1) +
                  "% of its own).";
    fit.source[static_cast<std::size_t>(p)] = fit.fitted(
        "Source: the one-core round-trip, stream and call cells of " + fit.file_name +
        " whose kernel path charges it (" + std::to_string(on) + " of " + std::to_string(used.size()) + "; " +
        fixed(on ? share / on * 100 : 0, 1) +
        "% of their time on average). Non-negative least squares over the relative errors of all " +
        std::to_string(used.size()) +
        " one-core round trips, streams and calls below 4 KiB (busy polling excluded), each simulated as "
        "check-preset simulates "
        "it "
        "and linearised in the kernel-path primitives, with a weak prior toward the base preset's values. " +
        determined + (at_bound[j] ? " Held at the bound of 10 us." : "") +
        " Residual RMS over the cells: " + fixed(rms * 100, 1) + "%.");
  }
  std::vector<std::string> values;
  for (Primitive p : kPathPrimitives) values.push_back(name(p) + " " + format_number(fit.v(p)));
  fit.summary.push_back("kernel paths (" + std::to_string(used.size()) +
                        " one-core cells, RMS error in time " + fixed(rms * 100, 1) +
                        "%): " + join(values, ", "));
  if (!residuals.empty()) fit.summary.push_back("  one-core residuals: " + join(residuals, ", "));
}

// ---- one unknown in whole cycles, by secant steps -------------------------------------------------

// Least squares on the relative errors in time of `rows` in one primitive's value x (whole cycles),
// the other values as fitted so far. A cell's simulated time is piecewise linear in x while its
// schedule stays put, so a few secant steps find the fit; x stays within [lo, hi].
struct OneUnknown {
  double x = 0;
  std::vector<const HostbenchRow*> used; // the rows that simulate
  bool shows = false;                    // some cell's time depends on x
};
OneUnknown fit_one_unknown(const Fit& fit, const std::vector<const HostbenchRow*>& rows, Primitive p,
                           double lo, double hi) {
  OneUnknown out;
  double x = std::clamp(std::round(fit.value[static_cast<std::size_t>(p)]), lo, hi);
  std::vector<double> slope;
  for (int step = 0; step < 8 && !rows.empty(); ++step) {
    json here = fit.costs(), moved = here;
    double dx = std::max(1.0, std::round(0.1 * x));
    if (x + dx > hi) dx = -dx;
    here[name(p)] = static_cast<std::int64_t>(x);
    moved[name(p)] = static_cast<std::int64_t>(x + dx);
    out.used.clear();
    slope.clear();
    double num = 0, den = 0;
    for (const auto* r : rows) {
      auto a = simulated_ns(*r, here), b = simulated_ns(*r, moved);
      if (!a || !b) continue;
      out.used.push_back(r);
      const double k = (*b - *a) / dx, m = r->median_ns;
      slope.push_back(k);
      num += k * (m - *a) / (m * m);
      den += k * k / (m * m);
    }
    if (!(den > 0)) break; // no cell's time depends on x
    const double next = std::clamp(std::round(x + num / den), lo, hi);
    if (next == x) break;
    x = next;
  }
  for (double k : slope) out.shows = out.shows || k > 0;
  out.x = x;
  return out;
}

std::string lines_of(const std::vector<const HostbenchRow*>& rows) {
  std::vector<std::string> lines;
  for (const auto* r : rows) lines.push_back(std::to_string(r->line));
  return join(lines, ", ");
}

// ---- 3a. a cache-line transfer, from the cross-core spinning ring's round trips of one line -------

// Two cores that spin on a ring in shared memory pass a message of one cache line back and forth:
// each hand-off is the lines the writer dirtied (the message, its sequence word) coming over to the
// reader's cache, which polls them (docs/shm.md), and little else. So these round trips measure
// cache_line_transfer, the cost every kernel object's shared lines pay across cores as well.
void fit_line_transfer(Fit& fit) {
  const Primitive p = Primitive::cache_line_transfer;
  std::vector<const HostbenchRow*> rows;
  for (const auto& r : fit.file.rows)
    if (r.kind == "roundtrip" && r.placement == "cross_core" && r.mechanism == "shm_spin" && r.bytes <= 64)
      rows.push_back(&r);
  const double upper = std::floor(fit.cycles(kMaxPathNs));
  const OneUnknown r = fit_one_unknown(fit, rows, p, 1, upper);
  if (r.used.empty() || !r.shows) {
    fit.kept(p, r.used.empty() ? "it has no cross-core shm_spin round trip of 64 bytes or less"
                               : "no such cell's time depends on it");
    fit.summary.push_back("cache-line transfers: no cell measures them, the base preset's value");
    return;
  }
  fit.v(p) = r.x;
  const auto [residuals, rms] = residuals_of(r.used, fit.costs());
  fit.source[static_cast<std::size_t>(p)] = fit.fitted(
      "Source: the " + std::to_string(r.used.size()) + " cross-core shm_spin round trips of " +
      fit.file_name + " with messages of one cache line (lines " + lines_of(r.used) +
      "): each hand-off moves the lines the writer dirtied to the core that polls them, so their time is "
      "cache-line transfers; each simulated as check-preset simulates it with the values fitted before, "
      "least squares on their relative errors. " +
      format_number(fit.v(p)) + " cycles = " + fixed(fit.ns(fit.v(p)), 1) +
      " ns per line. Residuals: " + join(residuals, ", ") + "; RMS " + fixed(rms * 100, 1) + "%." +
      (r.x == upper ? " Held at the bound of " + format_number(kMaxPathNs) +
                          " ns: the measurement is beyond any cache-line transfer."
                    : std::string()));
  fit.summary.push_back("cache-line transfers (" + std::to_string(r.used.size()) +
                        " cross-core spinning round trips, RMS error " + fixed(rms * 100, 1) +
                        "%): cache_line_transfer " + format_number(fit.v(p)) + " cycles");
}

// ---- 3b. copies of lines another core's cache holds, from the cross-core shared-memory rings -----

// The cross-core round trips and streams of the rings that poll (shm_spin, shm_yield) with messages
// longer than a cache line: their time is cache-line transfers and copies, and each message's copy
// out of the ring reads lines the other core wrote (docs/shm.md). The futex rings are left to the
// wakeup's fit. Least squares on the relative errors in the time per byte of those lines
// (1 / copy_bytes_per_cycle_remote), each cell simulated with the values fitted before and
// linearised by a secant; a few steps, because a copy never runs faster than this core's own rate
// for its footprint, which makes a cell's time piecewise linear in it.
void fit_remote_copies(Fit& fit) {
  const Primitive p = Primitive::copy_bytes_per_cycle_remote;
  std::vector<const HostbenchRow*> rows;
  for (const auto& r : fit.file.rows)
    if ((r.kind == "roundtrip" || r.kind == "stream") && r.placement == "cross_core" &&
        (r.mechanism == "shm_spin" || r.mechanism == "shm_yield") && r.bytes > 64)
      rows.push_back(&r);
  // Physical bounds: no faster than this core's L1 copies, no slower than memory.
  const double fastest = 1.0 / fit.v(Primitive::copy_bytes_per_cycle);
  const double slowest = 1.0 / fit.v(Primitive::copy_bytes_per_cycle_uncached);
  auto rate_of = [&](double per_byte) {
    return std::clamp(1.0 / per_byte, fit.v(Primitive::copy_bytes_per_cycle_uncached),
                      fit.v(Primitive::copy_bytes_per_cycle));
  };
  double x = std::clamp(1.0 / fit.v(p), fastest, slowest); // cycles per byte
  std::vector<const HostbenchRow*> used;
  std::vector<double> s0, slope;
  std::string note;
  for (int step = 0; step < 4 && !rows.empty(); ++step) {
    json here = fit.costs(), moved = here;
    const double dx = x >= slowest ? -0.1 * x : 0.1 * x;
    here[name(p)] = rate_of(x);
    moved[name(p)] = rate_of(x + dx);
    used.clear();
    s0.clear();
    slope.clear();
    for (const auto* r : rows) {
      auto a = simulated_ns(*r, here), b = simulated_ns(*r, moved);
      if (!a || !b) continue;
      used.push_back(r);
      s0.push_back(*a);
      slope.push_back((*b - *a) / dx);
    }
    double num = 0, den = 0;
    for (std::size_t i = 0; i < used.size(); ++i) {
      const double m = used[i]->median_ns;
      num += slope[i] * (m - s0[i]) / (m * m);
      den += slope[i] * slope[i] / (m * m);
    }
    if (!(den > 0)) break; // no cell copies a remote line at a rate that shows
    const double next = std::clamp(x + num / den, fastest, slowest);
    note = next == fastest ? " Held at copy_bytes_per_cycle, the L1 rate, which it may not exceed."
           : next == slowest
               ? " Held at copy_bytes_per_cycle_uncached, the memory rate, which it may not be below."
               : "";
    if (std::abs(next - x) <= 1e-4 * x) {
      x = next;
      break;
    }
    x = next;
  }
  bool shows = false;
  for (double k : slope) shows = shows || k > 0;
  if (used.empty() || !shows) {
    fit.v(p) = round_rate(std::clamp(fit.base(p), fit.v(Primitive::copy_bytes_per_cycle_uncached),
                                     fit.v(Primitive::copy_bytes_per_cycle)));
    fit.kept(p, used.empty() ? "it has no cross-core shm_spin or shm_yield cell longer than a cache line"
                             : "no such cell's time depends on it");
    fit.summary.push_back("remote copies: no cell measures them, the base preset's rate");
    return;
  }
  fit.v(p) = std::clamp(round_rate(1.0 / x), fit.v(Primitive::copy_bytes_per_cycle_uncached),
                        fit.v(Primitive::copy_bytes_per_cycle));
  const auto [residuals, rms] = residuals_of(used, fit.costs());
  fit.source[static_cast<std::size_t>(p)] = fit.fitted(
      "Source: the " + std::to_string(used.size()) +
      " cross-core shm_spin and shm_yield round trips and "
      "streams of " +
      fit.file_name + " with messages longer than a cache line (lines " + lines_of(used) +
      "), each simulated as check-preset simulates it with the values fitted before; least squares on "
      "their relative errors in the time per byte of lines another core's cache holds. " +
      name(p) + " = " + format_number(fit.v(p)) + " bytes per cycle = " + fixed(fit.v(p) * fit.hz / 1e9, 2) +
      " bytes/ns, within the last-level cache (beyond it, the memory rate). Residuals: " +
      join(residuals, ", ") + "; RMS " + fixed(rms * 100, 1) + "%." + note);
  fit.summary.push_back("remote copies (" + std::to_string(used.size()) +
                        " cross-core ring cells, RMS error " + fixed(rms * 100, 1) +
                        "%): " + format_number(fit.v(p)) + " bytes per cycle");
}

// ---- 5a. sending a wakeup and the spread of leaving idle, from the wakeup cells ---------------------

// hostbench's wakeup cells wake a reader that has slept 20 us on the other core. The waker's write()
// (wakeup_call) is the pipe's write path plus the IPI it sends, so ipi = measured - the rest as
// simulated (exact: the call's time is linear in ipi). The woken reader's latency (wakeup) is its
// path plus the idle exit; the exit's spread is the log-normal sigma whose p99 / median the
// measurement's, less that path, shows.
void fit_wakeup(Fit& fit) {
  const HostbenchRow* call = fit.find("wakeup_call");
  if (!call) {
    fit.kept(Primitive::ipi,
             "it has no wakeup_call cell, and the round trips charge it with every idle exit, which they "
             "cannot separate from it");
    fit.summary.push_back("sending a wakeup: no wakeup_call cell, the base preset's ipi");
  } else if (auto simulated = simulated_ns(*call, fit.costs())) {
    const double current = fit.v(Primitive::ipi);
    const double rest = *simulated - fit.ns(current);
    std::string note;
    const std::int64_t ipi = bounded_cycles(fit, fit.cycles(call->median_ns - rest), kMaxIpiNs, note);
    fit.v(Primitive::ipi) = static_cast<double>(ipi);
    const auto check = simulated_ns(*call, fit.costs());
    fit.source[static_cast<std::size_t>(Primitive::ipi)] = fit.fitted(
        "Source: " + fit.at_line(*call) +
        ", the median time of a write() that wakes a reader asleep on the "
        "other core for 20 us: " +
        format_number(call->median_ns) + " ns, less the rest of that write as simulated (" + fixed(rest, 0) +
        " ns). " + format_number(fit.ns(static_cast<double>(ipi))) +
        " ns: on a virtual machine the IPI to a halted vCPU traps to the hypervisor, which makes the waker "
        "wait while it wakes the vCPU. Simulated with it: " +
        (check ? fixed(*check, 0) + " ns (" + percent(*check / call->median_ns - 1) + ")" : "not modelled") +
        "." + note);
    fit.summary.push_back("sending a wakeup (" + cell_name(*call) + "): ipi " +
                          format_number(static_cast<double>(ipi)) +
                          " cycles = " + fixed(fit.ns(static_cast<double>(ipi)) / 1e3, 2) + " us");
  }
  const HostbenchRow* wake = fit.find("wakeup");
  if (!wake) {
    fit.summary.push_back("spread of leaving idle: no wakeup cell, the base preset's");
    return;
  }
  // The reader's path without the exit: the cell simulated with idle_exit 0 and no spread.
  json no_exit = fit.costs();
  no_exit["idle_exit"] = 0;
  no_exit["idle_exit_spread"] = 0;
  const auto path = simulated_ns(*wake, no_exit);
  // The middle 80% of the wakeups (hostbench's note), else the median and the p99: a log-normal's
  // quantiles q_a and q_b of the exit (less the path) are exp(sigma (z_b - z_a)) apart.
  double low = wake->median_ns, high = wake->p99_ns, z_span = kNormalP99;
  std::string used = "median " + format_number(wake->median_ns) + " ns and p99 " +
                     format_number(wake->p99_ns) + " ns (the file has no wakeup_p10_p90_ns note)";
  const std::string* note_text = nullptr;
  std::size_t note_line = 0;
  auto at = [&](std::size_t line) { return fit.file.path + ":" + std::to_string(line) + ": "; };
  for (std::size_t i = 0; i < fit.file.keys.size(); ++i) {
    if (fit.file.keys[i].first != "wakeup_p10_p90_ns") continue;
    if (note_text)
      throw UserError(at(fit.file.key_lines[i]) + "the note '# wakeup_p10_p90_ns' appears more than once " +
                      "(first on line " + std::to_string(note_line) +
                      "); hostbench writes it once, with its wakeup cell");
    note_text = &fit.file.keys[i].second;
    note_line = fit.file.key_lines[i];
  }
  if (note_text) {
    std::istringstream in(*note_text);
    double p10 = 0, p90 = 0;
    std::string extra;
    if (!(in >> p10 >> p90) || (in >> extra) || !std::isfinite(p10) || !std::isfinite(p90) || !(p10 > 0) ||
        p90 < p10)
      throw UserError(at(note_line) + "the note '# wakeup_p10_p90_ns: " + *note_text +
                      "' must give two numbers of nanoseconds, the 10th percentile above 0 and the 90th at "
                      "least as large, such as '# wakeup_p10_p90_ns: 25520.0 35169.0'");
    low = p10, high = p90, z_span = 2 * kNormalP90;
    used = "10th and 90th percentiles " + format_number(p10) + " and " + format_number(p90) +
           " ns (the file's wakeup_p10_p90_ns)";
  }
  // The median exit is where step 5's fit of idle_exit starts: the round trips it selects are those
  // whose time grows with idle_exit there, near the host's, not at the base's (a bare-metal 2 us exit
  // hides under a 13 us ipi and would leave most of them out).
  if (path && wake->median_ns > *path) {
    double start = std::round(fit.cycles(std::min(wake->median_ns - *path, kMaxIdleExitNs)));
    const json& states = fit.idle_states.is_null() && fit.base_doc.contains("idle_states")
                             ? fit.base_doc.at("idle_states").at("value")
                             : json();
    if (states.is_array() && !states.empty()) // no deeper than the base's first deeper state
      start = std::min(start, states[0].at("exit_latency").get<double>());
    fit.v(Primitive::idle_exit) = start;
  }
  const double above = path ? high - *path : 0, below = path ? low - *path : 0;
  double sigma = 0;
  std::string note;
  if (!path || !(below > 0) || !(above > below))
    note = " The cell gives no spread (its lower quantile is not above the path, or its upper not above its "
           "lower): 0.";
  else
    sigma = std::log(above / below) / z_span;
  if (sigma > kMaxIdleExitSpread) {
    sigma = kMaxIdleExitSpread;
    note = " Held at " + format_number(kMaxIdleExitSpread) + ", the largest accepted.";
  }
  sigma = std::round(sigma * 1000) / 1000;
  fit.idle_exit_spread = sigma;
  fit.idle_exit_spread_source = fit.fitted(
      "Source: " + fit.at_line(*wake) +
      ", the time from a write() to the return of the reader it wakes on "
      "the other core after 20 us asleep: its " +
      used + ", less the reader's path without the idle exit as simulated (" +
      (path ? fixed(*path, 0) : "-") + " ns): " + fixed(below, 0) + " and " + fixed(above, 0) +
      " ns of idle exit; a log-normal has them exp(sigma x " + fixed(z_span, 3) +
      ") apart. On a virtual machine a halted vCPU's return varies from one wakeup to the next with what the "
      "host is doing." +
      note);
  fit.summary.push_back("spread of leaving idle (" + cell_name(*wake) + "): idle_exit_spread " +
                        fixed(sigma, 3));
}

// ---- 5. the cross-core wakeup: idle_exit ------------------------------------------------------

void fit_idle_exit(Fit& fit) {
  // Cells and their slopes at idle_exit = x (the cells chosen on the first call: those whose
  // simulated time grows with idle_exit, the round trips that leave a core idle).
  std::vector<const HostbenchRow*> used;
  std::vector<double> s0, slope;
  // The base's deeper idle states stay (unless the file's wakeup ladder replaces them, fit.idle_states
  // set): idle_exit may not exceed the first one's latency (the loader refuses it), so the fit stays
  // below it and probes downwards when at it.
  const json& states = fit.idle_states.is_null() && fit.base_doc.contains("idle_states")
                           ? fit.base_doc.at("idle_states").at("value")
                           : json();
  const double ceiling = states.is_array() && !states.empty() ? states[0].at("exit_latency").get<double>()
                                                              : std::numeric_limits<double>::infinity();
  if (ceiling < 1) { // a first deeper state that costs nothing to leave: idle_exit can only be 0
    fit.v(Primitive::idle_exit) = 0;
    fit.source[static_cast<std::size_t>(Primitive::idle_exit)] =
        fit.fitted("Held at 0, the exit latency of the base preset's first deeper idle state (" +
                   states[0].at("name").get<std::string>() + "), which it may not exceed.");
    fit.summary.push_back("cross-core wakeup: idle_exit held at 0 by the base's first deeper idle state");
    return;
  }
  auto linearise = [&](double x) {
    json here = fit.costs(), moved = fit.costs();
    const double step = x + kStep <= ceiling ? kStep : -std::min(kStep, x);
    here["idle_exit"] = static_cast<std::int64_t>(std::llround(x));
    moved["idle_exit"] = static_cast<std::int64_t>(std::llround(x + step));
    const bool choose = used.empty();
    s0.clear();
    slope.clear();
    std::vector<const HostbenchRow*> rows;
    if (choose)
      for (const auto& r : fit.file.rows)
        if ((r.kind == "roundtrip" && r.placement == "cross_core") || r.kind == "wakeup") rows.push_back(&r);
    for (const HostbenchRow* r : choose ? rows : used) {
      auto a = simulated_ns(*r, here), b = simulated_ns(*r, moved);
      if (choose && (!a || !b || !((*b - *a) / step > 0))) continue;
      if (choose) used.push_back(r);
      s0.push_back(a.value_or(r->median_ns));
      slope.push_back(a && b ? (*b - *a) / step : 0.0);
    }
  };
  const double x0 = fit.v(Primitive::idle_exit);
  linearise(x0);
  if (used.empty()) {
    fit.v(Primitive::idle_exit) = fit.base(Primitive::idle_exit); // not fit_wakeup's starting point
    fit.kept(Primitive::idle_exit, "it has no cross-core round trip that leaves a core idle");
    fit.summary.push_back("cross-core wakeup: no cross-core round trip, the base preset's idle_exit");
    return;
  }
  // Gauss-Newton on min sum ((s(x) - m) / m)^2: each step is the closed form of the linearised
  // problem. A cell's time is not quite linear in idle_exit (a longer wakeup can change which side
  // idles, and how often), so the steps go on until one moves x by less than a cycle (at most
  // kIdleExitSteps).
  std::string note;
  std::int64_t x = std::llround(x0);
  double at = x0;
  for (int step = 0; step < kIdleExitSteps; ++step) {
    if (step > 0) linearise(at);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < used.size(); ++i) {
      const double m = used[i]->median_ns;
      num += slope[i] * (m - s0[i]) / (m * m);
      den += slope[i] * slope[i] / (m * m);
    }
    note.clear();
    x = den > 0 ? bounded_cycles(fit, at + num / den, kMaxIdleExitNs, note) : std::llround(at);
    if (static_cast<double>(x) > ceiling) {
      x = std::llround(ceiling);
      note += " Held at the exit latency of the base preset's first deeper idle state (" +
              states[0].at("name").get<std::string>() + "), which it may not exceed.";
    }
    const bool settled = std::abs(static_cast<double>(x) - at) < 1;
    at = static_cast<double>(x);
    if (settled) break;
  }
  fit.v(Primitive::idle_exit) = static_cast<double>(x);
  linearise(static_cast<double>(x)); // the residuals and slopes at the result, simulated
  std::vector<std::string> residuals;
  double sum_sq = 0;
  for (std::size_t i = 0; i < used.size(); ++i) {
    const double err = s0[i] / used[i]->median_ns - 1;
    sum_sq += err * err;
    residuals.push_back((used[i]->kind == "roundtrip" ? "" : used[i]->kind + " ") + used[i]->mechanism + " " +
                        std::to_string(used[i]->bytes) + " B " + percent(err));
  }
  const double rms = std::sqrt(sum_sq / static_cast<double>(used.size()));
  double wakes = 0;
  for (double k : slope) wakes += k * fit.hz / 1e9;
  fit.source[static_cast<std::size_t>(Primitive::idle_exit)] = fit.fitted(
      "Source: the " + std::to_string(used.size()) + " cross-core round trips and wakeups of " +
      fit.file_name + " that leave a core idle (" + fixed(wakes / static_cast<double>(used.size()), 1) +
      " idle exits per round trip on average), simulated with the values fitted before it; least squares on "
      "their relative errors, by Gauss-Newton steps until one moves it by less than a cycle. " +
      format_number(fit.ns(static_cast<double>(x))) +
      " ns per wakeup of an idle core: on a virtual machine, the halted vCPU's return from the hypervisor. "
      "Residuals: " +
      join(residuals, ", ") + "; RMS " + fixed(rms * 100, 1) + "%." + note);
  fit.summary.push_back("cross-core wakeup (" + std::to_string(used.size()) + " round trips, RMS error " +
                        fixed(rms * 100, 1) + "%): idle_exit " + format_number(static_cast<double>(x)) +
                        " cycles = " + fixed(fit.ns(static_cast<double>(x)) / 1e3, 2) + " us");
}

// ---- 5'. the idle states, from the wakeup ladder -----------------------------------------------------

// A new idle state starts where leaving idle costs more than this much (relative) above the
// shallower state's first rung: past the run-to-run noise of a wakeup (a few percent) and past the
// 20% a wakeup is checked to, so one state's rungs stay within the target of its latency.
constexpr double kStateStep = 0.25;

// hostbench's wakeup ladder (wakeup_after_idle_ns notes) measures leaving idle after each idle
// time directly: each rung's median less the reader's path as simulated (idle_exit 0, no states,
// no spread) is its exit. The exits, made non-decreasing in the idle time (isotonic regression:
// a deeper state is never quicker to leave), fall into levels; a new state starts at the first rung
// whose exit is more than kStateStep above the current state's first, its latency the median of
// its rungs' exits and its target residency the geometric mean of the idle times on either side of
// the step (the ladder does not say where between them it is). The shallowest level stays the
// round trips' idle_exit (step 5, fitted before this): the cells the targets count, whose
// wakeups on a virtual machine need not cost what an isolated one does; the source says how far
// apart the two are. Does nothing when the file has no ladder (the base's states stay).
void fit_idle_ladder(Fit& fit) {
  const auto& ladder = fit.file.wakeup_ladder;
  if (ladder.empty()) return;
  json bare = fit.costs();
  bare["idle_exit"] = 0;
  bare["idle_exit_spread"] = 0;
  bare["idle_states"] = json::array();
  std::vector<double> exit, path;
  for (const auto& rung : ladder) {
    auto simulated = simulated_ns(rung_row(rung), bare);
    if (!simulated)
      throw UserError(fit.file.path + ":" + std::to_string(rung.line) +
                      ": the wakeup ladder's rung could not be simulated on the base preset");
    path.push_back(*simulated);
    exit.push_back(std::clamp(rung.median_ns - *simulated, 0.0, kMaxIdleExitNs));
  }
  // Pool adjacent violators: blocks of equal value, each the mean of its rungs, non-decreasing.
  std::vector<double> level = exit, weight(exit.size(), 1.0);
  std::vector<std::size_t> size(exit.size(), 1);
  std::size_t blocks = 0;
  for (std::size_t i = 0; i < exit.size(); ++i) {
    level[blocks] = exit[i], weight[blocks] = 1, size[blocks] = 1;
    ++blocks;
    while (blocks > 1 && level[blocks - 2] > level[blocks - 1]) {
      const double w = weight[blocks - 2] + weight[blocks - 1];
      level[blocks - 2] =
          (level[blocks - 2] * weight[blocks - 2] + level[blocks - 1] * weight[blocks - 1]) / w;
      weight[blocks - 2] = w;
      size[blocks - 2] += size[blocks - 1];
      --blocks;
    }
  }
  std::vector<double> monotone;
  for (std::size_t b = 0; b < blocks; ++b) monotone.insert(monotone.end(), size[b], level[b]);
  // States: [first rung, last rung] each.
  std::vector<std::pair<std::size_t, std::size_t>> states{{0, 0}};
  for (std::size_t i = 1; i < monotone.size(); ++i) {
    // Measured as the rungs are (the wakeup, path and exit), so that an exit near 0 does not make
    // every few nanoseconds of noise a state.
    const std::size_t first = states.back().first;
    if (monotone[i] + path[i] > (monotone[first] + path[first]) * (1 + kStateStep))
      states.push_back({i, i});
    else
      states.back().second = i;
  }
  auto median_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  };
  std::vector<std::int64_t> latency;
  for (const auto& [first, last] : states) {
    std::vector<double> members(exit.begin() + static_cast<std::ptrdiff_t>(first),
                                exit.begin() + static_cast<std::ptrdiff_t>(last) + 1);
    std::int64_t cycles = std::llround(fit.cycles(median_of(members)));
    if (!latency.empty()) cycles = std::max(cycles, latency.back()); // medians of a monotone fit's levels
    latency.push_back(cycles);
  }
  // The deeper states are never quicker to leave than idle_exit as fitted to the round trips.
  const double shallow_level = static_cast<double>(latency[0]);
  latency[0] = std::llround(fit.v(Primitive::idle_exit));
  for (std::size_t k = 1; k < latency.size(); ++k) latency[k] = std::max(latency[k], latency[k - 1]);
  auto rung_name = [&](std::size_t i) {
    return short_duration(static_cast<double>(ladder[i].idle_ns)) + " (line " +
           std::to_string(ladder[i].line) + ")";
  };
  json list = json::array();
  std::vector<std::string> described;
  std::int64_t last_residency = 0;
  std::string dropped;
  for (std::size_t k = 1; k < states.size(); ++k) {
    const double before = static_cast<double>(ladder[states[k - 1].second].idle_ns);
    const double at = static_cast<double>(ladder[states[k].first].idle_ns);
    // Whole cycles, increasing (rungs a few ns apart on a slow clock could round to one cycle).
    const std::int64_t residency = std::max(
        last_residency + 1, static_cast<std::int64_t>(std::llround(fit.cycles(std::sqrt(before * at)))));
    if (residency > static_cast<std::int64_t>(kMaxPrimitiveCycles)) { // past what a preset may hold
      dropped = " The states from " + short_duration(at) +
                " on are left out: their residency is past 2^32 "
                "cycles, the largest a preset holds.";
      states.resize(k);
      latency.resize(k);
      break;
    }
    last_residency = residency;
    const std::string name = "after_" + format_number(std::round(std::sqrt(before * at) / 100) / 10) + "us";
    list.push_back({{"name", name}, {"target_residency", residency}, {"exit_latency", latency[k]}});
    described.push_back(name + ": idle " + short_duration(fit.ns(static_cast<double>(residency))) +
                        " or more (between the rungs of " + short_duration(before) + " and " +
                        short_duration(at) + "), exit " +
                        short_duration(fit.ns(static_cast<double>(latency[k]))) + ", the median of " +
                        std::to_string(states[k].second - states[k].first + 1) + " rungs");
  }
  // The waker's write() on each rung (a sixth field): on a virtual machine the host may wake a
  // descheduled vCPU inside the waker's trap. Each deeper state's ipi is the median over its rungs
  // of the write less the rest of it as simulated (the write with the ipi primitive, less that);
  // the shallowest keeps the ipi primitive (the wakeup_call cell's).
  const bool calls = std::all_of(ladder.begin(), ladder.end(),
                                 [](const WakeupRung& r) { return r.call_median_ns.has_value(); });
  if (calls && states.size() > 1) {
    json flat = fit.costs();
    flat["idle_states"] = json::array();
    flat["idle_exit_spread"] = 0;
    const double ipi_ns = fit.ns(fit.v(Primitive::ipi));
    for (std::size_t k = 1; k < states.size(); ++k) {
      std::vector<double> waker;
      for (std::size_t i = states[k].first; i <= states[k].second; ++i) {
        auto simulated = simulated_ns(rung_row(ladder[i], "wakeup_call"), flat);
        if (simulated) waker.push_back(*ladder[i].call_median_ns - (*simulated - ipi_ns));
      }
      if (waker.empty()) continue;
      std::string note;
      const std::int64_t ipi = bounded_cycles(fit, fit.cycles(median_of(waker)), kMaxIpiNs, note);
      list[k - 1]["ipi"] = ipi;
      described[k - 1] +=
          "; the waker's write() there " + short_duration(median_of(waker) + 0) +
          " of IPI (the median over its rungs of each write less the rest of it as simulated" +
          ", against the ipi primitive's " + short_duration(ipi_ns) + ")" + note;
    }
  }
  fit.idle_states = list;
  // Each rung simulated with the result.
  std::vector<std::string> residuals;
  double sum_sq = 0;
  std::size_t scored = 0;
  for (std::size_t i = 0; i < ladder.size(); ++i) {
    auto simulated = simulated_ns(rung_row(ladder[i]), fit.costs());
    if (!simulated) { // not counted as a perfect fit
      residuals.push_back(short_duration(static_cast<double>(ladder[i].idle_ns)) + " not simulated");
      continue;
    }
    const double err = *simulated / ladder[i].median_ns - 1;
    sum_sq += err * err;
    ++scored;
    residuals.push_back(short_duration(static_cast<double>(ladder[i].idle_ns)) + " " + percent(err));
  }
  const double rms = scored ? std::sqrt(sum_sq / static_cast<double>(scored)) : 0;
  std::vector<std::string> rungs;
  for (std::size_t i = 0; i < ladder.size(); ++i)
    rungs.push_back(short_duration(static_cast<double>(ladder[i].idle_ns)) + " " +
                    fixed(ladder[i].median_ns, 0) + " - " + fixed(path[i], 0) + " = " + fixed(exit[i], 0));
  const std::string method =
      "each rung's median wakeup (from the write to the reader's return) less the reader's path as simulated "
      "without an idle exit, in ns: " +
      join(rungs, "; ") +
      ". Made non-decreasing in the idle time (isotonic regression: a deeper state is never quicker to "
      "leave), a new state where the exit rises more than " +
      format_number(kStateStep * 100) +
      "% above the current state's first rung, each state's latency the median of its rungs, its target "
      "residency the geometric mean of the idle times either side of the step. Residuals (each rung "
      "simulated "
      "with the states): " +
      join(residuals, ", ") + "; RMS " + fixed(rms * 100, 1) + "%.";
  const std::string source = "Source: the wakeup ladder of " + fit.file_name + " (" +
                             std::to_string(ladder.size()) + " idle times from " + rung_name(0) + " to " +
                             rung_name(ladder.size() - 1) + "): ";
  const std::string shallow =
      "The shallowest level, " + short_duration(fit.ns(shallow_level)) + " (the median of " +
      std::to_string(states[0].second + 1) + " rungs, idle up to " +
      short_duration(static_cast<double>(ladder[states[0].second].idle_ns)) +
      "), is idle_exit's state; idle_exit " + "stays as the round trips fit it, " +
      short_duration(fit.ns(static_cast<double>(latency[0]))) +
      (shallow_level >= 1
           ? " (" + percent(static_cast<double>(latency[0]) / shallow_level - 1) + " against the ladder). "
           : ". ") +
      dropped;
  fit.idle_states_source = fit.fitted(
      source +
      (described.empty() ? "no deeper state: leaving idle costs the same after every idle time measured"
                         : join(described, "; ")) +
      ". " + shallow + method +
      " On a virtual machine the host polls a halted vCPU for a while (KVM's halt_poll_ns) before it "
      "deschedules it; a bare-metal host's deeper C-states show the same way.");
  std::string summary = "idle states (wakeup ladder, " + std::to_string(ladder.size()) +
                        " idle times, RMS error " + fixed(rms * 100, 1) + "%): shallowest level " +
                        short_duration(fit.ns(shallow_level)) + " (idle_exit " +
                        short_duration(fit.ns(static_cast<double>(latency[0]))) + ")";
  for (const auto& st : list)
    summary +=
        ", " + st.at("name").get<std::string>() + " " +
        short_duration(fit.ns(st.at("exit_latency").get<double>())) + " from " +
        short_duration(fit.ns(st.at("target_residency").get<double>())) +
        (st.contains("ipi") ? " (the waker's ipi " + short_duration(fit.ns(st.at("ipi").get<double>())) + ")"
                            : std::string());
  fit.summary.push_back(summary);
}

// ---- 6. the time slice, from busy polling on one core ---------------------------------------------

// A thread that busy-polls a ring on a core it shares with its peer keeps the core until the
// scheduler takes it away, so each round trip is two slices and a few microseconds of real work
// (docs/shm.md). Per cell: (measured - what the simulator charges besides the two slices) / 2,
// the rest found by simulating the cell at a probe slice; the median over the cells.
void fit_time_slice(Fit& fit) {
  constexpr double kProbeNs = 10e6, kMinSliceNs = 50e3, kMaxSliceNs = 1e9;
  json probe = fit.costs();
  probe["time_slice"] = "10ms";
  std::vector<double> slices;
  std::vector<std::string> cells;
  for (const auto& r : fit.file.rows) {
    if (r.kind != "roundtrip" || r.mechanism != "shm_spin" || r.placement != "same_core") continue;
    auto simulated = simulated_ns(r, probe);
    if (!simulated) continue;
    const double rest = *simulated - 2 * kProbeNs;
    slices.push_back((r.median_ns - rest) / 2);
    cells.push_back(fit.at_line(r) + " median " + format_number(r.median_ns) + " ns, rest " + fixed(rest, 0) +
                    " ns");
  }
  if (slices.empty()) {
    fit.summary.push_back("time slice: no one-core busy-polling round trip, the base preset's");
    return;
  }
  std::vector<double> sorted = slices;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  double slice = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  std::string note;
  if (slice < kMinSliceNs || slice > kMaxSliceNs) {
    slice = std::clamp(slice, kMinSliceNs, kMaxSliceNs);
    note = " Held at " + format_number(slice / 1e3) + " us, the nearest physical bound (50 us to 1 s).";
  }
  const std::int64_t us = std::llround(slice / 1e3);
  fit.time_slice = std::to_string(us) + "us";
  double worst = 0;
  for (double x : slices) worst = std::max(worst, std::abs(x - slice) / slice);
  fit.time_slice_source = fit.fitted(
      "A thread busy-polling a ring keeps a core it shares with its peer until the scheduler preempts it, so "
      "a "
      "one-core round trip is two time slices and the real work: slice = (round trip - the rest as the "
      "simulator charges it) / 2, the median over " +
      std::to_string(n) + " cells: " + join(cells, "; ") +
      ". Largest deviation of one cell from the median: " + fixed(worst * 100, 2) +
      "%. On Linux this is the tick at which the scheduler finds the slice used up (EEVDF's base slice, "
      "0.75 ms x (1 + log2 CPUs), is checked at each tick of 1/HZ)." +
      note);
  fit.summary.push_back("time slice (" + std::to_string(n) +
                        " one-core busy-polling round trips): " + std::to_string(us) + " us");
}

// The machine, in one line, from the file's description keys.
std::string describe_machine(const HostbenchFile& file) {
  std::map<std::string, std::string> keys;
  for (const auto& [k, v] : file.keys) keys[k] = v;
  std::vector<std::string> parts;
  auto add = [&](const std::string& key, const std::string& label) {
    if (auto it = keys.find(key); it != keys.end() && !it->second.empty())
      parts.push_back(label + it->second);
  };
  add("cpu_model", "");
  add("cpu_mhz", "cpu MHz ");
  add("cpus_online", "CPUs: ");
  add("kernel", "");
  add("hypervisor", "hypervisor ");
  add("virtualisation", "virtualisation ");
  add("clocksource", "clock source ");
  add("cross_core_siblings", "the two CPUs of the cross-core cells beside each other: ");
  add("load_before", "load average before the run ");
  add("date", "hostbench run of ");
  return parts.empty() ? "a machine the file does not describe" : join(parts, "; ");
}

} // namespace

Calibration calibrate(const HostbenchFile& file, const std::string& base) {
  // The base: a built-in preset or a preset file, loaded once to check it.
  json base_costs;
  json base_doc;
  for (const auto& p : list_presets())
    if (p.name == base) {
      base_costs = base;
      base_doc = p.document;
    }
  if (base_doc.is_null()) {
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& p : list_presets()) names.push_back(p.name);
    if (!std::filesystem::is_regular_file(base, ec))
      throw UserError("calibrate: --base '" + base + "' is neither a built-in preset (" + join(names, ", ") +
                      ") nor a preset file");
    base_costs = std::filesystem::absolute(base).string();
  }
  // A preset file that does not load is reported as a scenario's machine.costs would report it.
  load_scenario_text(
      json::object({{"machine", json::object({{"costs", base_costs}})},
                    {"processes", json::array({json::object({{"name", "p"}, {"script", json::array()}})})}})
          .dump(),
      "calibrate --base", {});
  if (base_doc.is_null())
    base_doc =
        json::parse(read_input_file(base_costs.get<std::string>(), "cost preset file", Limits{}.input_bytes));

  for (const char* needed : {"null_syscall", "context_switch"}) {
    bool found = false;
    for (const auto& r : file.rows) found = found || r.kind == needed;
    if (!found)
      throw UserError(file.path + ": no " + needed + " cell (" +
                      (std::string(needed) == "null_syscall" ? "null_syscall,getppid,0,same_core"
                                                             : "context_switch,sched_yield,0,same_core") +
                      "): calibrate fits the system call and the switch from it, and every kernel path above "
                      "them; run tools/hostbench with it (without --only, or --only '" +
                      needed + "|...')");
  }

  Fit fit{file,
          std::filesystem::path(file.path).filename().string(),
          base,
          base_costs,
          base_doc,
          *parse_frequency_hz(base_doc.at("frequency").at("value").get<std::string>()),
          describe_machine(file),
          {},
          {},
          {},
          {},
          {},
          {},
          {},
          {},
          {}};
  for (std::size_t i = 0; i < kPrimitiveCount; ++i) fit.value[i] = fit.base(static_cast<Primitive>(i));
  for (std::size_t i = 0; i < kPrimitiveCount; ++i)
    fit.kept(static_cast<Primitive>(i), "no hostbench cell measures it");

  fit_syscall(fit);
  fit_switch(fit);
  fit_copies(fit);
  fit_line_transfer(fit);
  fit_remote_copies(fit);
  fit_paths(fit);
  // With a wakeup ladder the file's states replace the base's: the round trips fit idle_exit without
  // the base's, which the ladder's then replace.
  if (!file.wakeup_ladder.empty()) fit.idle_states = json::array();
  fit_wakeup(fit);
  fit_idle_exit(fit);
  fit_idle_ladder(fit);
  fit_time_slice(fit);

  // Every cell again with the fitted values: check-preset's verdict, in the preset and the summary.
  CheckReport check = check_costs(fit.costs(), "the calibrated preset", file);
  const std::string verdict = check_verdict(check);

  Calibration out;
  json& doc = out.preset;
  std::map<std::string, std::string> keys;
  for (const auto& [k, v] : file.keys) keys[k] = v;
  doc["description"] = "Calibrated by ipcsim calibrate from " + fit.file_name + " (" +
                       (keys.count("cpu_model") ? keys["cpu_model"] : std::string("machine not described")) +
                       (keys.count("kernel") ? ", " + keys["kernel"] : std::string()) +
                       (keys.count("date") ? ", " + keys["date"] : std::string()) + "), on the base preset " +
                       base + " for what the file does not measure";
  doc["frequency"] = {
      {"value", base_doc.at("frequency").at("value")},
      {"source",
       "The base preset " + base + "'s clock: every measured time was converted to cycles as ns x " +
           format_number(fit.hz / 1e9) +
           ", so simulated times reproduce the host's; cycle counts are cycles of this clock, not the "
           "host's core cycles (machine.frequency_scaling \"time\" keeps these times at another clock)."}};
  doc["tagged_tlb"] = {{"value", base_doc.at("tagged_tlb").at("value")},
                       {"source", "The base preset " + base +
                                      "'s: " + base_doc.at("tagged_tlb").at("source").get<std::string>()}};
  if (!fit.time_slice.is_null())
    doc["time_slice"] = {{"value", fit.time_slice}, {"source", fit.time_slice_source}};
  else if (base_doc.contains("time_slice"))
    doc["time_slice"] = {{"value", base_doc.at("time_slice").at("value")},
                         {"source", "Not determined by " + fit.file_name +
                                        " (it has no one-core busy-polling round trip): the base preset " +
                                        base + "'s. Base preset's source: " +
                                        base_doc.at("time_slice").at("source").get<std::string>()}};
  if (!fit.idle_exit_spread.is_null())
    doc["idle_exit_spread"] = {{"value", fit.idle_exit_spread}, {"source", fit.idle_exit_spread_source}};
  else if (base_doc.contains("idle_exit_spread"))
    doc["idle_exit_spread"] = {
        {"value", base_doc.at("idle_exit_spread").at("value")},
        {"source",
         "Not determined by " + fit.file_name + " (it has no wakeup cell): the base preset " + base +
             "'s. Base preset's source: " + base_doc.at("idle_exit_spread").at("source").get<std::string>()}};
  json primitives = json::object();
  for (std::size_t i = 0; i < kPrimitiveCount; ++i) {
    auto p = static_cast<Primitive>(i);
    json value =
        is_rate(p) ? json(fit.value[i]) : json(static_cast<std::int64_t>(std::llround(fit.value[i])));
    primitives[name(p)] = {{"value", value}, {"source", fit.source[i]}};
  }
  doc["primitives"] = primitives;
  if (!fit.idle_states.is_null())
    doc["idle_states"] = {{"value", fit.idle_states}, {"source", fit.idle_states_source}};
  else if (base_doc.contains("idle_states"))
    doc["idle_states"] = base_doc.at("idle_states");
  json machine = json::object();
  for (const auto& [k, v] : file.keys) // the per-cell notes repeat: they stay in the file
    if (k != "skip" && k != "wakeup_after_idle_ns" && k != "switches_per_message") machine[k] = v;
  json calibration = json::object();
  calibration["tool"] = "ipcsim calibrate (docs/calibrate.md)";
  calibration["hostbench_file"] = fit.file_name;
  calibration["base"] = base;
  calibration["machine"] = machine;
  calibration["fit"] = fit.summary;
  calibration["check"] = verdict;
  doc["calibration"] = calibration;

  std::ostringstream summary;
  summary << "calibrate: " << fit.file_name << " on the base preset " << base << ", measured on "
          << fit.machine << "\n";
  for (const auto& line : fit.summary) summary << "  " << line << "\n";
  summary << "check-preset on the result: " << verdict << "\n";
  out.summary = summary.str();
  return out;
}

std::string calibration_text(const Calibration& calibration) { return calibration.preset.dump(2) + "\n"; }

} // namespace ipcsim
