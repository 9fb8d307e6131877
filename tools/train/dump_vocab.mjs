// Writes the project's Mistral v1 vocabulary (tokens, scores, token types exactly as lib/testing/mistral-vocab.ts
// derives them) to JSON for export_gguf.py. Needs the TypeScript build: npx tsc -p tsconfig.json
//
//   node tools/train/dump_vocab.mjs [.cache/kjv/vocab.json]
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

import { loadMistralV1Vocabulary } from "../../dist/testing/mistral-vocab.js";

const outPath = process.argv[2] ?? ".cache/kjv/vocab.json";
const vocab = await loadMistralV1Vocabulary();
mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(outPath, JSON.stringify({
  tokens: vocab.tokens,
  scores: Array.from(vocab.scores),
  tokenTypes: Array.from(vocab.tokenTypes),
  unkId: vocab.unkId,
  bosId: vocab.bosId,
  eosId: vocab.eosId,
}));
console.log(`${vocab.tokens.length} tokens written to ${outPath}`);
