// Comma-separated lists, as string properties carry them; random tokens.
#pragma once

#include <string>
#include <vector>

namespace wb {

std::vector<std::string> split_list(const std::string &text);
std::string join_list(const std::vector<std::string> &items);

// `bytes` bytes from OpenSSL's CSPRNG as lowercase hex: for anything that
// works as a credential (a WHEP/WHIP session id is all a DELETE needs).
std::string random_hex(size_t bytes);

// Compares two secrets in a time that depends on their lengths only, not
// on where they differ.
bool secrets_equal(const std::string &a, const std::string &b);

}  // namespace wb
