// The model in a worker thread: loading, prefill and decoding never touch the main thread's event loop, which
// is what an Electron main process (or a server) needs. The worker owns the model and a chat; the main thread
// sends it messages and receives the reply as it streams.
//
//   node examples/worker-threads.mjs [model.gguf]
//
// Without a model path it builds a small synthetic Mixtral-architecture model into .cache/.
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

if (isMainThread) {
  const { cachedTestModel } = await import("mixtral-native/testing");
  const path = process.argv[2] ?? (await cachedTestModel({}));
  const worker = new Worker(new URL(import.meta.url), { workerData: { path } });

  const pending = new Map(); // request id → { resolve, reject, onText }
  worker.on("message", (message) => {
    const request = pending.get(message.id);
    if (request === undefined) return;
    if (message.type === "chunk") request.onText(message.text);
    else if (message.type === "result") request.resolve(message.result);
    else if (message.type === "error") request.reject(new Error(message.message));
    if (message.type !== "chunk") pending.delete(message.id);
  });
  worker.on("error", (error) => {
    for (const request of pending.values()) request.reject(error);
  });

  let nextId = 0;
  const ask = (text, options, onText) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, onText });
      worker.postMessage({ type: "send", id, text, options });
    });

  // The main thread stays responsive while the worker computes: count its timer ticks.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  for (const question of ["Hello! Who are you?", "What can you do?"]) {
    const result = await ask(question, { maxTokens: 24, seed: 1 }, (text) => process.stdout.write(text));
    process.stdout.write("\n");
    console.log(JSON.stringify({ stopReason: result.stopReason, usage: result.usage }));
  }
  clearInterval(timer);
  console.log(JSON.stringify({ mainThreadTicks: ticks }));
  worker.postMessage({ type: "close" });
} else {
  const { Mixtral } = await import("mixtral-native");
  const model = await Mixtral.load(workerData.path);
  const chat = model.createChat({ systemPrompt: "You are a helpful assistant." });
  parentPort.on("message", async (message) => {
    if (message.type === "close") {
      await model.dispose(); // the worker exits once nothing is left on its event loop
      parentPort.close();
      return;
    }
    try {
      // Sends arriving while a reply streams are queued by the chat, in order.
      const stream = chat.stream(message.text, message.options);
      for await (const { text } of stream) parentPort.postMessage({ type: "chunk", id: message.id, text });
      parentPort.postMessage({ type: "result", id: message.id, result: await stream.result });
    } catch (error) {
      parentPort.postMessage({ type: "error", id: message.id, message: String(error?.message ?? error) });
    }
  });
}
