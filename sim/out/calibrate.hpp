// `ipcsim calibrate HOSTBENCH.csv` (docs/calibrate.md): fits a cost preset's primitives to what
// tools/hostbench measured on a host, and writes a preset in which every value names the
// measurements it came from, the fit's residual and the machine.
#pragma once

#include "check_preset.hpp"
#include "params.hpp"

#include <string>

namespace ipcsim {

struct Calibration {
  json preset;         // the preset document, ready to write
  std::string summary; // what was fitted from what, with the residuals and check-preset's verdict
};

// Fits the primitives from `file`, starting from `base` (a built-in preset name or a preset file)
// for every value the file cannot determine. Deterministic: the same file and base give the same
// preset, byte for byte. Throws UserError for a base that does not load or a file that lacks the
// cells every fit rests on (null_syscall, context_switch).
Calibration calibrate(const HostbenchFile& file, const std::string& base);

// The preset as written: two-space indentation and a final newline.
std::string calibration_text(const Calibration& calibration);

} // namespace ipcsim
