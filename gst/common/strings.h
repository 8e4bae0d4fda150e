// Comma-separated lists, as string properties carry them.
#pragma once

#include <string>
#include <vector>

namespace wb {

std::vector<std::string> split_list(const std::string &text);
std::string join_list(const std::vector<std::string> &items);

}  // namespace wb
