// libFuzzer target: GgufFile::parse (with the NaN scan) and bindModel over arbitrary bytes. libFuzzer hands over
// a heap buffer of exactly `size` bytes, so ASan reports any read past the end; every view the reader and
// bindModel return is touched at both ends. Built and run by `npm run fuzz` (scripts/fuzz.mjs).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "gguf/gguf.h"
#include "model/weights.h"
#include "tests/touch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mn::GgufReadOptions options;
  options.verifyTensorData = true;
  std::unique_ptr<mn::GgufFile> file;
  if (!mn::GgufFile::parse(data, size, options, &file).ok()) return 0;
  mn::testing::touchFile(*file);
  mn::Hparams hparams;
  mn::ModelWeights weights;
  if (mn::bindModel(*file, &hparams, &weights).ok()) mn::testing::touchWeights(hparams, weights);
  return 0;
}
