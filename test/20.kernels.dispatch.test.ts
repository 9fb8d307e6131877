import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";

import { GgmlType } from "../lib/gguf/types.js";
import { quantize } from "../lib/gguf/quantize.js";
import { kernelIsas, matmul } from "../lib/kernels/testing.js";
import { native } from "../lib/native.js";

const root = join(import.meta.dirname, "..");
const cache = join(root, ".cache");
// The transpiled loader must sit one folder below the package root, as dist/native.js does; errors.js beside it.
const loader = join(cache, "kernels-dispatch-native.js");
const child = join(cache, "kernels-dispatch-child.js");

const [N_ROWS, N, N_COLS] = [13, 4096, 3];

/** Deterministic data both processes build (the child's copy is in CHILD_SOURCE). */
function data(length: number, phase: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + phase) * (1 + (i % 5)));
}

const CHILD_SOURCE = `
import { native } from "./kernels-dispatch-native.js";
const [nRows, n, nCols] = [${N_ROWS}, ${N}, ${N_COLS}];
const data = (length, phase) => Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + phase) * (1 + (i % 5)));
const result = {};
try {
  const addon = native();
  result.isa = addon.cpuInfo().isa;
  const weights = addon.quantizeRows(${GgmlType.Q4_0}, data(nRows * n, 1), n);
  const x = data(nCols * n, 2);
  for (const isa of ["active", "scalar"]) {
    const out = new Float32Array(nRows * nCols);
    addon.kernelTesting.matmul(isa, ${GgmlType.Q4_0}, weights, n, x, nCols, 0, nRows, out, nRows, false);
    result[isa] = Array.from(out);
  }
} catch (error) {
  result.error = { name: error.name, code: error.code, message: error.message };
}
process.stdout.write(JSON.stringify(result));
`;

interface ChildResult {
  isa?: string;
  active?: number[];
  scalar?: number[];
  error?: { name: string; code?: string; message: string };
}

function runChild(isa: string): ChildResult {
  const env = { ...process.env, MIXTRAL_NATIVE_ISA: isa };
  return JSON.parse(execFileSync(process.execPath, [child], { env, encoding: "utf8", timeout: 60_000 })) as ChildResult;
}

describe("20 kernels: ISA dispatch", () => {
  beforeAll(() => {
    mkdirSync(cache, { recursive: true });
    const options = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
    const transpile = (name: string) => ts.transpileModule(readFileSync(join(root, "lib", name), "utf8"), { compilerOptions: options }).outputText;
    writeFileSync(loader, transpile("native.ts"));
    writeFileSync(join(cache, "errors.js"), transpile("errors.ts"));
    writeFileSync(child, CHILD_SOURCE);
  });

  const weights = quantize(GgmlType.Q4_0, data(N_ROWS * N, 1), N);
  const x = data(N_COLS * N, 2);
  const scalar = Array.from(matmul("scalar", GgmlType.Q4_0, weights, N_ROWS, N, x, N_COLS));

  it("kernelIsas() lists scalar and exactly the SIMD levels cpuInfo() reports", () => {
    const cpu = native().cpuInfo();
    const expected = ["scalar", ...(cpu.avx2 ? ["avx2"] : []), ...(cpu.avx512 ? ["avx512"] : [])];
    expect(kernelIsas()).toEqual(expected);
  });

  it("without MIXTRAL_NATIVE_ISA the active kernels are the best ISA's, bit for bit", () => {
    const result = runChild("");
    const best = kernelIsas().at(-1)!;
    expect(result.isa).toBe(best);
    expect(result.active).toEqual(Array.from(matmul(best, GgmlType.Q4_0, weights, N_ROWS, N, x, N_COLS)));
  });

  it("MIXTRAL_NATIVE_ISA=scalar makes cpuInfo().isa 'scalar' and matmul bit-identical to the scalar kernel", () => {
    const result = runChild("scalar");
    expect(result.error).toBeUndefined();
    expect(result.isa).toBe("scalar");
    expect(result.active).toEqual(scalar);
    expect(result.scalar).toEqual(scalar);
  });

  it("MIXTRAL_NATIVE_ISA=avx2 caps an AVX-512 CPU at the AVX2 kernels", () => {
    const result = runChild("avx2");
    const expected = kernelIsas().includes("avx2") ? "avx2" : "scalar";
    expect(result.isa).toBe(expected);
    expect(result.active).toEqual(Array.from(matmul(expected, GgmlType.Q4_0, weights, N_ROWS, N, x, N_COLS)));
  });

  it("an invalid MIXTRAL_NATIVE_ISA (avx9) is a RangeError (ERR_INVALID_ARG_VALUE) naming the variable", () => {
    const result = runChild("avx9");
    expect(result.error?.name).toBe("RangeError");
    expect(result.error?.code).toBe("ERR_INVALID_ARG_VALUE");
    expect(result.error?.message).toMatch(/MIXTRAL_NATIVE_ISA/);
    expect(result.error?.message).toMatch(/"avx9"/);
  });

  it.runIf(process.platform === "linux" && process.arch === "x64")(
    "no ymm/zmm instruction in the addon outside the ISA files' functions (objdump)",
    () => {
      // The binary this process loads: build/ when present, else the prebuild (CI removes build/).
      const addon = (createRequire(import.meta.url)("node-gyp-build") as { resolve(dir: string): string }).resolve(root);
      expect(existsSync(addon), `${addon} must be built`).toBe(true);
      const which = spawnSync("objdump", ["--version"], { encoding: "utf8" });
      expect(which.status, "objdump (binutils) must be installed to run this check").toBe(0);
      const disassembly = execFileSync("objdump", ["-d", "-C", "--no-show-raw-insn", addon], {
        encoding: "utf8",
        maxBuffer: 1 << 30,
      });
      const offenders = new Set<string>();
      const simdFunctions = new Set<string>();
      let current = "";
      for (const line of disassembly.split("\n")) {
        const header = /^[0-9a-f]+ <(.*)>:$/.exec(line);
        if (header) {
          current = header[1];
          continue;
        }
        if (!/%[yz]mm\d/.test(line)) continue;
        if (current.includes("mn::x86::(anonymous namespace)::")) simdFunctions.add(current);
        else offenders.add(current);
      }
      expect([...offenders]).toEqual([]);
      expect(simdFunctions.size).toBeGreaterThan(20);
    },
  );
});
