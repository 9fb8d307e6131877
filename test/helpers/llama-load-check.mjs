// Child program of llamaCppLoads() (llama-oracle.ts): loads the GGUF file argv[2] into llama.cpp and prints
// {"loaded": boolean, "message": string}. It exits without disposing, which is the point of running it apart.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const llama = await getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.disabled });
let outcome;
try {
  await llama.loadModel({ modelPath: process.argv[2], gpuLayers: 0 });
  outcome = { loaded: true, message: "" };
} catch (error) {
  outcome = { loaded: false, message: String(error?.message ?? error) };
}
process.stdout.write(JSON.stringify(outcome));
process.exit(0);
