// Error values for code that reads untrusted input. Nothing in native/ aborts on file data: it returns an Error
// with a stable code (the same strings TypeScript sees as `err.code`) and a message naming the field and value.
#pragma once

#include <string>
#include <utility>

namespace mn {

struct Error {
  std::string code;     // e.g. "GGUF_TRUNCATED"; empty means success
  std::string message;  // names the field or tensor and the bad value

  bool ok() const { return code.empty(); }
  static Error none() { return {}; }
};

inline Error makeError(std::string code, std::string message) { return Error{std::move(code), std::move(message)}; }

}  // namespace mn
