#include "cli.hpp"

#include "calibrate.hpp"
#include "check_preset.hpp"
#include "costs.hpp"
#include "error.hpp"
#include "experiment.hpp"
#include "homework.hpp"
#include "ipc.hpp"
#include "limits.hpp"
#include "report.hpp"
#include "report_dir.hpp"
#include "scenario.hpp"
#include "sched.hpp"
#include "script.hpp"
#include "simulation.hpp"
#include "trace.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace ipcsim {

namespace {

void print_table(std::ostream& out, const ParamTable& table, const std::string& indent) {
  for (const auto& p : table.params) {
    out << indent << p.name << " (" << param_type_name(p.type);
    if (!p.unit.empty()) out << ", " << p.unit;
    out << "; " << describe_default(p);
    if (p.type == ParamType::Choice) out << "; one of: " << join_list(p.choices);
    std::optional<double> min = p.min, max = p.max;
    if (p.type == ParamType::Time || p.type == ParamType::TimeList) { // every time, in cycles: units.hpp
      if (!min) min = 0;
      if (!max || *max > static_cast<double>(kMaxTimeCycles)) max = static_cast<double>(kMaxTimeCycles);
    }
    if (p.type == ParamType::Frequency)
      out << "; range " << format_hz(kMinFrequencyHz) << " to " << format_hz(kMaxFrequencyHz);
    if (min || max) {
      out << "; range";
      out << (min ? " " + format_number(*min) : std::string(" ..")) << " to "
          << (max ? format_number(*max) : std::string(".."));
    }
    if (p.takes_variable) out << "; or \"{VAR}\", read when the op runs";
    out << "): " << p.description << "\n";
  }
}

// Ops, mechanisms, scheduler policies: each with its description and its parameters.
template <class Decl> void print_decls(std::ostream& out, const std::vector<Decl>& decls) {
  for (const auto& decl : decls) {
    out << "  " << decl.name << ": " << decl.description << "\n";
    print_table(out, decl.params, "    ");
  }
}

// A seed on the command line: digits only, at most 19 of them (below 2^64).
std::uint64_t parse_seed(const std::string& option, const std::string& text) {
  bool digits = !text.empty() && text.size() <= 19 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) throw UserError(option + ": expected a whole number from 0 to 9999999999999999999");
  return std::stoull(text);
}

} // namespace

void print_list(std::ostream& out, const std::string& section) {
  bool all = section.empty();
  if (all || section == "fields") {
    out << "SCENARIO FIELDS\n";
    for (const ParamTable* table :
         {&scenario_table(), &machine_table(), &process_table(), &thread_table(), &channel_table()}) {
      out << "  " << table->title << ": " << table->description << "\n";
      print_table(out, *table, "    ");
    }
    out << "\n";
  }
  if (all || section == "ops") {
    out << "OPS (in a script: {\"op\": NAME, FIELD: value, ...})\n";
    print_decls(out, op_registry());
    out << "\n";
  }
  if (all || section == "mechanisms") {
    out << "MECHANISMS (a channel: {\"name\": NAME, \"mechanism\": MECHANISM, PARAM: value, ...})\n";
    print_decls(out, mechanism_registry());
    out << "\n";
  }
  if (all || section == "errors") {
    out << "ERRORS (what {errno} and conditions such as \"errno == EAGAIN\" name)\n  ";
    const auto& names = errno_names();
    for (std::size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << names[i];
    out << "\n\n";
  }
  if (all || section == "schedulers") {
    out << "SCHEDULER POLICIES (machine.scheduler: {\"policy\": NAME, PARAM: value, ...})\n";
    print_decls(out, scheduler_registry());
    out << "\n";
  }
  if (all || section == "presets") {
    out << "COST PRESETS (machine.costs: {\"preset\": NAME, PRIMITIVE: value, ...})\n";
    for (const auto& p : list_presets())
      out << "  " << p.name << " (" << p.frequency << "): " << p.description << "\n";
    out << "\n";
  }
  if (all || section == "primitives") {
    out << "COST PRIMITIVES (each overridable in machine.costs)\n";
    print_table(out, costs_table(), "  ");
    if (all) out << "\n";
  }
  if (all || section == "limits") {
    out << "LIMITS (each run's bounds; override with --limit NAME=VALUE, see docs/limits.md)\n";
    const Limits defaults;
    for (const auto& limit : limit_infos())
      out << "  " << limit.name << " (" << limit.unit
          << "; default: " << limit_value_text(defaults, limit.name)
          << (limit.option.empty() ? "" : "; also " + limit.option) << "): " << limit.description << "\n";
  }
}

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"ipcsim: a discrete-event simulator of operating-system inter-process communication",
               "ipcsim"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ipcsim ") + ipcsim_version() + " (" + ipcsim_git_revision() +
                                        ", " + engine_version() + ")");
  std::string scenario_file, out_dir, trace_path, section;
  std::vector<std::string> sets;
  std::string seed, max_time, timeout;
  std::vector<std::string> limits;
  bool quiet = false, check_invariants = false;

  auto add_scenario_options = [&](CLI::App* sub) {
    sub->add_option("scenario", scenario_file, "scenario JSON file")->required();
    sub->add_option("--set", sets,
                    "override a scenario field by dotted path, e.g. machine.cores=4 (repeatable)")
        ->take_all()
        ->allow_extra_args(false);
    sub->add_option("--seed", seed,
                    "seed of every random choice, a whole number >= 0 (overrides the scenario's)");
    sub->add_option("--limit", limits,
                    "change a limit, e.g. threads=2000000 (repeatable; `ipcsim list limits` shows them)")
        ->take_all()
        ->allow_extra_args(false);
    sub->add_option("--max-time", max_time,
                    "stop the run at this simulated time, e.g. 1s (default 1d; 0: no limit)");
    sub->add_option("--timeout", timeout,
                    "stop the run after this much wall-clock time, e.g. 30s (default "
                    "10min; 0: no limit)");
  };
  CLI::App* run = app.add_subcommand("run", "simulate a scenario and print a summary");
  add_scenario_options(run);
  run->add_option("--out", out_dir, "also write summary.json, records.csv, breakdown.csv, threads.csv here");
  run->add_option("--trace", trace_path,
                  "also write the run's timeline to this file: Chrome Trace Event Format JSON, for Perfetto "
                  "(ui.perfetto.dev) or chrome://tracing");
  run->add_flag("--quiet,-q", quiet, "print nothing on success (with --out)");
  run->add_flag(
      "--check-invariants", check_invariants,
      "debug: check the simulator's invariants at every dispatch, switch and wakeup (slow); they are "
      "always checked at the end of a run");
  CLI::App* validate = app.add_subcommand("validate", "check a scenario without running it");
  add_scenario_options(validate);
  // Experiments over many runs (docs/compare.md, docs/sweep.md).
  std::string mechanisms;
  CLI::App* compare = app.add_subcommand("compare", "run one workload over each mechanism, side by side");
  add_scenario_options(compare);
  compare->add_option("--mechanisms", mechanisms, "mechanisms to compare, e.g. pipe,sysv_msg,posix_mq")
      ->required();
  compare->add_option("--out", out_dir,
                      "also write compare.json, mechanisms.csv, intervals.csv, primitives.csv, runs/");
  compare->add_flag("--quiet,-q", quiet, "print nothing on success (with --out)");
  SweepOptions sweep_options;
  std::string jobs_text, repeat_text, seed_from_text;
  CLI::App* sweep = app.add_subcommand("sweep", "run a grid of points, each in its own process, in parallel");
  add_scenario_options(sweep);
  sweep->add_option("--vary", sweep_options.vary, "PATH=v1,v2,... or PATH=FROM..TO*FACTOR (repeatable)")
      ->take_all()
      ->allow_extra_args(false)
      ->required();
  sweep->add_option("-j,--jobs", jobs_text, "points run at once (default: the number of cores)");
  sweep->add_option("--repeat", repeat_text,
                    "runs of each point, with seeds --seed-from, +1, ... (default 1)");
  sweep->add_option("--seed-from", seed_from_text, "the first seed of each point's runs");
  sweep->add_option("--out", sweep_options.out_dir, "the sweep's directory (default sweep-out)");
  sweep->add_flag("--emit-jobs", sweep_options.emit_jobs,
                  "write DIR/jobs.txt (one command per point) and DIR/merge.txt, and run nothing");
  std::string point_dir, point_index;
  CLI::App* sweep_point =
      app.add_subcommand("sweep-point", "run one point of a sweep (what sweep and jobs.txt run)");
  sweep_point->add_option("dir", point_dir, "the sweep's directory")->required();
  sweep_point->add_option("point", point_index, "the point's number")->required();
  CLI::App* sweep_merge =
      app.add_subcommand("sweep-merge", "gather a sweep's points into sweep.csv and intervals.csv");
  sweep_merge->add_option("dir", point_dir, "the sweep's directory")->required();
  CLI::App* list = app.add_subcommand(
      "list",
      "show ops, mechanisms, errors, scheduler policies, cost presets, primitives, fields and limits");
  list->add_option("section", section, "only one section")
      ->check(CLI::IsMember(
          {"fields", "ops", "mechanisms", "errors", "schedulers", "presets", "primitives", "limits"}));

  // Homework (sim/out/homework.*): a drawn scenario, its questions, and answers read from its run.
  std::string topic, homework_seed;
  std::size_t homework_count = 1;
  bool answers = false, markdown = false, scenario_only = false;
  CLI::App* homework =
      app.add_subcommand("homework", "generate a problem with questions the simulator answers");
  std::string topic_help = "one of:";
  for (const auto& t : homework_topics()) topic_help += " " + t.name;
  homework->add_option("topic", topic, topic_help)->required();
  homework
      ->add_option("-s,--seed", homework_seed,
                   "which problem: a whole number >= 0; the same seed, the same problem")
      ->required();
  homework->add_flag("-c,--answers", answers, "also print the answers, each explained from the run");
  homework
      ->add_option("--count", homework_count, "this many problems, seeds SEED, SEED+1, ... (a problem set)")
      ->check(CLI::Range(1, 1000));
  homework->add_flag("--markdown", markdown, "print Markdown (a problem set for a teacher)");
  homework->add_flag("--scenario-only", scenario_only, "print only the scenario (to save and run it)");

  // Report (sim/out/report_dir.*): the figures of a run, a comparison or a sweep directory.
  std::string report_dir, report_out;
  CLI::App* report = app.add_subcommand(
      "report", "turn a run, compare or sweep --out directory into an HTML report, SVG figures and Markdown");
  report->add_option("dir", report_dir, "the directory `ipcsim run/compare/sweep --out` wrote")->required();
  report->add_option("--out", report_out,
                     "where to write report.html, report.md and fig-*.svg (default DIR/report)");

  std::string preset, hostbench_file, check_out;
  CLI::App* check = app.add_subcommand(
      "check-preset", "run what tools/hostbench measured in the simulator with a preset, and compare");
  check->add_option("preset", preset, "a built-in cost preset or a preset file")->required();
  check->add_option("hostbench", hostbench_file, "a CSV file written by tools/hostbench")->required();
  check->add_option("--out", check_out, "also write the comparison as CSV to this file");
  std::string check_scenarios;
  check->add_option(
      "--scenarios", check_scenarios,
      "also write each cell's scenario to this directory (KIND-MECHANISM-BYTES-PLACEMENT.json), "
      "to run it with `ipcsim run` and see where its time goes");
  std::string check_scheduler;
  check->add_option("--scheduler", check_scheduler,
                    "simulate every cell under this scheduling policy (its default parameters) instead "
                    "of the machine's default, rr, under which calibrate fits; eevdf is Linux's");
  double check_tie = kOrderTiePct;
  check
      ->add_option("--tie", check_tie,
                   "mechanisms measured within this many percent of each other are a tie in the order "
                   "check (default 5: the run-to-run spread of hostbench, docs/calibrate.md)")
      ->check(CLI::Range(0.0, 1000.0));

  std::string calibrate_file, calibrate_out, calibrate_base = "linux-x86";
  CLI::App* calib = app.add_subcommand(
      "calibrate", "fit a cost preset to what tools/hostbench measured on a host (docs/calibrate.md)");
  calib->add_option("hostbench", calibrate_file, "a CSV file written by tools/hostbench")->required();
  calib->add_option("--out", calibrate_out, "write the preset to this file (default: standard output)");
  calib->add_option("--base", calibrate_base,
                    "the preset (built-in or file) whose values stand where the file determines none "
                    "(default linux-x86)");

  // CLI11 reports an unknown subcommand as a missing one; name it and the accepted ones instead.
  const std::vector<std::string> subcommands{"run",    "validate",     "list",        "compare",
                                             "sweep",  "sweep-point",  "sweep-merge", "homework",
                                             "report", "check-preset", "calibrate"};
  if (!args.empty() && !args[0].empty() && args[0][0] != '-' &&
      std::find(subcommands.begin(), subcommands.end(), args[0]) == subcommands.end()) {
    err << "error: unknown subcommand \"" << args[0] << "\"" << did_you_mean(args[0], subcommands)
        << "; accepted: " << join_list(subcommands) << "\n"
        << "run 'ipcsim --help' for usage\n";
    return kExitBadInput;
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    out << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::Success& e) {
    // --help on a subcommand, --version
    std::ostringstream text, errors;
    app.exit(e, text, errors);
    out << text.str();
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::ostringstream text, errors;
    app.exit(e, text, errors);
    err << "error: " << e.what() << "\n"
        << "run 'ipcsim --help' or 'ipcsim SUBCOMMAND --help' for usage\n";
    return kExitBadInput;
  }
  try {
    if (list->parsed()) {
      print_list(out, section);
      return kExitOk;
    }
    if (check->parsed()) {
      const HostbenchFile measured = read_hostbench(hostbench_file);
      if (check->count("--scheduler") > 0 && check_scheduler.empty())
        throw UserError("check-preset --scheduler: an empty policy; accepted: " +
                        join_list(scheduler_names()));
      CheckReport report = check_preset(preset, measured, check_tie, check_scheduler);
      print_check_report(out, report);
      if (!check_out.empty()) write_check_csv(check_out, report);
      if (!check_scenarios.empty()) {
        int written = write_cell_scenarios(check_scenarios, preset, measured, check_scheduler);
        out << "wrote " << written << " scenarios to " << check_scenarios << "\n";
      }
      return kExitOk;
    }
    if (calib->parsed()) {
      Calibration result = calibrate(read_hostbench(calibrate_file), calibrate_base);
      if (calibrate_out.empty()) {
        out << calibration_text(result);
        err << result.summary;
        return kExitOk;
      }
      std::ofstream file(calibrate_out, std::ios::binary);
      if (file) file << calibration_text(result);
      file.close();
      if (!file) throw UserError("--out " + calibrate_out + ": cannot write: " + std::strerror(errno));
      out << result.summary << "wrote " << calibrate_out << "\n";
      return kExitOk;
    }
    if (sweep_point->parsed()) return run_sweep_point(point_dir, point_index, out, err);
    if (sweep_merge->parsed()) return run_sweep_merge(point_dir, out, err);
    if (report->parsed()) {
      ReportFiles files = write_report(report_dir, report_out);
      out << "wrote " << files.html << ", " << files.markdown << " and " << files.figures.size()
          << " figures (" << files.kind << " report)\n";
      return kExitOk;
    }
    if (homework->parsed()) {
      std::uint64_t first = parse_seed("-s " + homework_seed, homework_seed);
      if (scenario_only && (answers || markdown || homework_count > 1))
        throw UserError("--scenario-only prints one problem's scenario, as JSON: it takes no -c, --markdown "
                        "or --count");
      // Seeds have at most 19 digits: SEED + 999 stays below 2^64.
      for (std::size_t i = 0; i < homework_count; ++i) {
        HomeworkProblem problem = make_homework(topic, first + i);
        if (scenario_only)
          out << compact_json(problem.scenario) << "\n";
        else
          print_homework(out, problem, answers, markdown);
      }
      return kExitOk;
    }
    LoadOptions options;
    options.sets = sets;
    for (const auto& assignment : limits) apply_limit(options.limits, assignment);
    if (!max_time.empty()) set_max_time(options.limits, max_time);
    if (!timeout.empty()) set_timeout(options.limits, timeout);
    options.debug_invariants = check_invariants;
    CLI::App* used = run->parsed() ? run : compare->parsed() ? compare : sweep->parsed() ? sweep : validate;
    if (used->count("--seed")) {
      bool digits = !seed.empty() && seed.size() <= 19 &&
                    std::all_of(seed.begin(), seed.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits)
        throw UserError("--seed " + seed + ": expected a whole number from 0 to 9999999999999999999");
      options.seed = std::stoull(seed);
    }
    if (compare->parsed()) {
      CompareOptions compare_options{scenario_file, {}, options, out_dir, quiet};
      std::stringstream list_text(mechanisms);
      for (std::string m; std::getline(list_text, m, ',');) compare_options.mechanisms.push_back(m);
      return run_compare(compare_options, out, err);
    }
    if (sweep->parsed()) {
      sweep_options.scenario_file = scenario_file;
      sweep_options.sets = sets;
      sweep_options.load = options;
      for (const auto& limit : limits)
        sweep_options.run_flags.insert(sweep_options.run_flags.end(), {"--limit", limit});
      if (!max_time.empty())
        sweep_options.run_flags.insert(sweep_options.run_flags.end(), {"--max-time", max_time});
      if (!timeout.empty())
        sweep_options.run_flags.insert(sweep_options.run_flags.end(), {"--timeout", timeout});
      auto whole = [](const std::string& option, const std::string& text, std::uint64_t min,
                      std::uint64_t max) {
        bool digits = !text.empty() && text.size() <= 19 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits || std::stoull(text) < min || std::stoull(text) > max)
          throw UserError(option + " " + text + ": expected a whole number from " + std::to_string(min) +
                          " to " + std::to_string(max));
        return std::stoull(text);
      };
      if (sweep->count("--jobs")) sweep_options.jobs = static_cast<unsigned>(whole("-j", jobs_text, 1, 1024));
      if (sweep->count("--repeat"))
        sweep_options.repeat = static_cast<unsigned>(whole("--repeat", repeat_text, 1, 100000));
      if (sweep->count("--seed-from"))
        sweep_options.seed_from = whole("--seed-from", seed_from_text, 0, 9999999999999999999ull);
      if (sweep_options.repeat > 1 && !sweep_options.seed_from)
        throw UserError("--repeat " + repeat_text +
                        ": each run of a point needs its own seed: give --seed-from S (seeds S, S+1, ...)");
      if (sweep->count("--seed"))
        throw UserError(
            "--seed: a sweep gives each point its seed: use --seed-from (with --repeat), or vary seed "
            "with --vary seed=1,2,3");
      return run_sweep(sweep_options, out, err);
    }
    auto scenario = load_scenario(scenario_file, options);
    for (const auto& warning : scenario->warnings) err << "warning: " << warning << "\n";
    if (validate->parsed()) {
      std::size_t threads = 0, cores = 0;
      std::size_t declarations = 0;
      for (const auto& machine : scenario->machines) {
        cores += machine.cores;
        declarations += machine.processes.size();
        for (const auto& p : machine.processes)
          for (const auto& t : p->threads) threads += static_cast<std::size_t>(p->count) * t.count;
      }
      out << scenario_file << ": valid (";
      if (scenario->machines.size() > 1) out << scenario->machines.size() << " machines, ";
      out << declarations << " process declarations, " << threads << " threads, " << cores << " cores)\n";
      return kExitOk;
    }
    Simulation simulation(scenario->machines);
    const auto& kernels = simulation.machines();
    // Trace files are opened before the run, so that a path that cannot be written costs no run.
    // With several machines, each machine has its own file: FILE with the machine's name before
    // its extension (run.json: run.a.json, run.b.json).
    using TraceFile = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;
    std::vector<std::string> trace_paths;
    std::vector<TraceFile> trace_files;
    std::vector<std::unique_ptr<TraceRecorder>> traces;
    if (!trace_path.empty()) {
      for (const auto& kernel : kernels) {
        std::string path = trace_path;
        if (kernels.size() > 1) {
          std::filesystem::path p(trace_path);
          path = (p.parent_path() / (p.stem().string() + "." + kernel->model().name + p.extension().string()))
                     .string();
        }
        trace_paths.push_back(path);
        trace_files.emplace_back(open_trace_file(path, scenario_file), std::fclose);
        traces.push_back(std::make_unique<TraceRecorder>(*kernel));
        kernel->subscribe(*traces.back());
      }
    }
    simulation.run();
    for (std::size_t i = 0; i < traces.size();
         ++i) { // however the run ended: a deadlock or an error is worth seeing
      traces[i]->write(trace_files[i].get(), trace_paths[i], *scenario);
      if (std::fclose(trace_files[i].release()) != 0)
        throw UserError("--trace " + trace_paths[i] + ": cannot write: " + std::strerror(errno));
    }
    if (std::string error = simulation.runtime_error(); !error.empty()) {
      err << "error: " << scenario_file << ": " << error << "\n";
      // A broken invariant is ipcsim's bug, not the scenario's.
      return error.find("internal error: the simulator broke an invariant") != std::string::npos
                 ? kExitInternal
                 : kExitBadInput;
    }
    bool print = !quiet || simulation.deadlocked();
    if (print || !out_dir.empty()) {
      std::vector<Summary> summaries = summarize(*scenario, simulation);
      std::vector<const Kernel*> finished;
      for (const auto& kernel : kernels) finished.push_back(kernel.get());
      if (!out_dir.empty()) write_outputs(out_dir, summaries, finished);
      if (print)
        for (const auto& summary : summaries) print_summary(out, summary);
    }
    if (simulation.deadlocked()) {
      err << "error: " << scenario_file << ": the simulated system deadlocked (see the report above)";
      // A call that failed is often why the others wait (a send refused as too large, and its
      // receiver waiting for it): say so here, not only in the failed-calls table.
      std::vector<std::string> failed;
      for (const auto& kernel : kernels)
        for (const auto& f : kernel->failed_calls())
          failed.push_back(kernel->threads()[f.thread].display_name() + " " + activity_names()[f.activity] +
                           " " + errno_name(f.error) + " (x" + std::to_string(f.count) + ")");
      if (!failed.empty()) {
        err << "; calls failed before it, which may be the cause: ";
        for (std::size_t i = 0; i < failed.size() && i < 3; ++i) err << (i ? ", " : "") << failed[i];
        if (failed.size() > 3) err << ", and " << failed.size() - 3 << " more";
      }
      err << "\n";
      return kExitDeadlock;
    }
    return kExitOk;
  } catch (const UserError& e) {
    err << "error: " << e.what() << "\n";
    return kExitBadInput;
  }
}

} // namespace ipcsim
