import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const require = createRequire(import.meta.url);
const { nativeSources } = require("../scripts/native-sources.cjs") as { nativeSources: () => string[] };

/** Addon sources: every .cc under native/ except the standalone test and fuzz programs. */
function addonSourcesOnDisk(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) {
        if (entry !== "tests" && entry !== "fuzz") walk(path);
      } else if (entry.endsWith(".cc")) found.push(relative(root, path));
    }
  };
  walk(join(root, "native"));
  return found.sort();
}

describe("01 build: one source list for node-gyp and cmake-js", () => {
  it("native/sources.txt lists exactly the addon's .cc files, each existing", () => {
    const listed = nativeSources();
    expect(new Set(listed).size).toBe(listed.length);
    for (const file of listed) expect(existsSync(join(root, file)), file).toBe(true);
    expect([...listed].sort()).toEqual(addonSourcesOnDisk());
  });

  it("binding.gyp takes its sources only from the list", () => {
    const gyp = JSON.parse(readFileSync(join(root, "binding.gyp"), "utf8"));
    const [target] = gyp.targets;
    expect(target.sources).toEqual(["<!@(node scripts/native-sources.cjs)"]);
    expect(readFileSync(join(root, "binding.gyp"), "utf8")).not.toMatch(/\.cc\b/);
  });

  it("CMakeLists.txt takes its sources only from the list", () => {
    const cmake = readFileSync(join(root, "CMakeLists.txt"), "utf8");
    expect(cmake).toMatch(/file\(STRINGS "\$\{CMAKE_SOURCE_DIR\}\/native\/sources\.txt"/);
    expect(cmake).toMatch(/add_library\(\$\{PROJECT_NAME\} SHARED \$\{MIXTRAL_NATIVE_SOURCES\} \$\{CMAKE_JS_SRC\}\)/);
    expect(cmake).not.toMatch(/\.cc\b/);
  });
});
