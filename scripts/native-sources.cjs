// Prints the native source list (native/sources.txt) for binding.gyp; CMakeLists.txt reads the same file.
const fs = require("fs");
const path = require("path");

function nativeSources() {
  const listFile = path.join(__dirname, "..", "native", "sources.txt");
  return fs
    .readFileSync(listFile, "utf8")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

module.exports = { nativeSources };
if (require.main === module) process.stdout.write(nativeSources().join(" "));
