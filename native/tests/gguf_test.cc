// Sanitizer driver for the GGUF reader (scripts/test-asan.mjs builds it with ASan + UBSan).
//
//   gguf_test <dir>...
//
// For every *.gguf file in each directory it prints one line, `file<TAB>code<TAB>message` (code "OK" when the file
// opens and binds), from GgufFile::open(verifyTensorData) followed by bindModel; opening with copyToMemory must give
// the same code. It also parses a heap copy of
// exactly the file's size through GgufFile::parse, where ASan catches a read even one byte past the end (the mmap
// of open() has page slack), and requires the same code; and it parses every prefix of the first 4 KiB (and every
// 61st beyond) of each file, which must not bind unless the whole file does. Everything the reader and
// bindModel return is touched at both ends (tests/touch.h). Exit status 1 when the paths disagree; sanitizers end the process themselves on any report.
#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/weights.h"
#include "tests/touch.h"

namespace {

// Code of parsing, then binding, `bytes` (a heap buffer of exactly their size).
mn::Error parseAndBind(const std::vector<uint8_t>& bytes) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.size() == 0 ? 1 : bytes.size()]);
  std::copy(bytes.begin(), bytes.end(), exact.get());
  mn::GgufReadOptions options;
  options.verifyTensorData = true;
  std::unique_ptr<mn::GgufFile> file;
  if (mn::Error e = mn::GgufFile::parse(exact.get(), bytes.size(), options, &file); !e.ok()) return e;
  mn::testing::touchFile(*file);
  mn::Hparams hparams;
  mn::ModelWeights weights;
  mn::Error e = mn::bindModel(*file, &hparams, &weights);
  if (e.ok()) mn::testing::touchWeights(hparams, weights);
  return e;
}

mn::Error openAndBind(const std::string& path, bool copyToMemory) {
  mn::GgufReadOptions options;
  options.verifyTensorData = true;
  options.copyToMemory = copyToMemory;
  std::unique_ptr<mn::GgufFile> file;
  if (mn::Error e = mn::GgufFile::open(path, options, &file); !e.ok()) return e;
  mn::Hparams hparams;
  mn::ModelWeights weights;
  return mn::bindModel(*file, &hparams, &weights);
}

std::vector<std::string> ggufFiles(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* handle = opendir(dir.c_str())) {
    while (const dirent* entry = readdir(handle)) {
      const std::string name = entry->d_name;
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0) names.push_back(name);
    }
    closedir(handle);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <dir>...\n", argv[0]);
    return 2;
  }
  int failures = 0;
  size_t files = 0, prefixes = 0;
  for (int a = 1; a < argc; a++) {
    const std::string dir = argv[a];
    for (const std::string& name : ggufFiles(dir)) {
      const std::string path = dir + "/" + name;
      std::ifstream in(path, std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const mn::Error opened = openAndBind(path, false);
      const mn::Error copied = openAndBind(path, true);
      const mn::Error parsed = parseAndBind(bytes);
      std::printf("%s\t%s\t%s\n", name.c_str(), opened.ok() ? "OK" : opened.code.c_str(), opened.message.c_str());
      if (copied.code != opened.code) {
        std::fprintf(stderr, "%s: open() gave %s but open() with copyToMemory gave %s\n", name.c_str(),
                     opened.ok() ? "OK" : opened.code.c_str(), copied.ok() ? "OK" : copied.code.c_str());
        failures++;
      }
      if (parsed.code != opened.code) {
        std::fprintf(stderr, "%s: open() gave %s but parse() of the same bytes gave %s\n", name.c_str(),
                     opened.ok() ? "OK" : opened.code.c_str(), parsed.ok() ? "OK" : parsed.code.c_str());
        failures++;
      }
      for (size_t length = 0; length < bytes.size(); length += length < 4096 ? 1 : 61) {
        const mn::Error prefix = parseAndBind(std::vector<uint8_t>(bytes.begin(), bytes.begin() + length));
        prefixes++;
        if (prefix.ok() && !opened.ok()) {
          std::fprintf(stderr, "%s: its first %zu bytes bind although the whole file gives %s\n", name.c_str(), length,
                       opened.code.c_str());
          failures++;
        }
      }
      files++;
    }
  }
  std::fprintf(stderr, "gguf_test: %zu files, %zu prefixes, %d failures\n", files, prefixes, failures);
  return failures == 0 ? 0 : 1;
}
