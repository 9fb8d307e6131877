// Building error messages from file data: concatenation of text and numbers, and safe quoting of strings read
// from a file (which may hold control bytes, invalid UTF-8 or megabytes of text).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>

namespace mn {

inline void appendPart(std::string& out, std::string_view text) { out.append(text.data(), text.size()); }
inline void appendPart(std::string& out, const char* text) { out.append(text); }
inline void appendPart(std::string& out, const std::string& text) { out.append(text); }
inline void appendPart(std::string& out, char c) { out.push_back(c); }
inline void appendPart(std::string& out, double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  out.append(buffer);
}
template <class Integer, class = std::enable_if_t<std::is_integral_v<Integer> && !std::is_same_v<Integer, char> &&
                                                  !std::is_same_v<Integer, bool>>>
void appendPart(std::string& out, Integer value) {
  out.append(std::to_string(value));
}

// cat("tensor ", name, " has ", 3, " dims") -> one string.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (appendPart(out, parts), ...);
  return out;
}

// "[4096, 1024]": a shape in ggml order.
inline std::string dimsText(const uint64_t* dims, size_t count) {
  std::string out = "[";
  for (size_t d = 0; d < count; d++) out += cat(d ? ", " : "", dims[d]);
  return out + "]";
}

// A string from the file as it should appear in a message: double-quoted, non-printable bytes as \xNN, and cut
// after 80 bytes so that a hostile 1 GB key cannot become a 1 GB message.
inline std::string quoted(std::string_view text) {
  constexpr size_t kMaxShown = 80;
  std::string out = "\"";
  const size_t shown = text.size() < kMaxShown ? text.size() : kMaxShown;
  for (size_t i = 0; i < shown; i++) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out.append(escaped);
    } else {
      out.push_back(static_cast<char>(c));  // UTF-8 continuation bytes pass through; JS shows invalid ones as U+FFFD
    }
  }
  out.push_back('"');
  if (shown < text.size()) out.append(cat("... (", text.size(), " bytes)"));
  return out;
}

}  // namespace mn
