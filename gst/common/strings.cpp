#include "strings.h"

#include <glib.h>
#include <openssl/rand.h>

#include <sstream>

namespace wb {

std::vector<std::string> split_list(const std::string &text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::string join_list(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

bool secrets_equal(const std::string &a, const std::string &b) {
  unsigned char diff = a.size() != b.size();
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  // RAND_bytes only fails when the CSPRNG cannot be seeded: no id is better
  // than a guessable one.
  if (RAND_bytes(raw.data(), int(raw.size())) != 1) g_error("OpenSSL's random generator failed");
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes * 2);
  for (unsigned char b : raw) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

}  // namespace wb
