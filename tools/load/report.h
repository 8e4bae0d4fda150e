// The summary at the end of a run: printed, and written as JSON.
#pragma once

#include <string>

#include "generator.h"

namespace load {

void print_summary(const RunResult &run, const GeneratorOptions &options);
bool write_json(const RunResult &run, const GeneratorOptions &options, const std::string &path, std::string *error);
// Every viewer connected and got media, and no sampled packet failed.
bool run_succeeded(const RunResult &run);

}  // namespace load
