// Tokenizes the King James Bible (Debian package bible-kjv) with the project's Mistral v1 vocabulary and splits
// it into training and held-out chapters.
//
//   node tools/train/prepare_data.mjs [--out .cache/kjv] [--fixture test/fixtures/kjv-heldout.json]
//
// A chapter becomes one document: BOS, its verses joined by "\n" (verse numbers dropped), EOS. Every 50th chapter
// (index % 50 == 25, so Genesis 1 stays in training) is held out. Writes:
//   <out>/train.u16, <out>/heldout.u16  concatenated documents as little-endian uint16 token ids
//   <out>/corpus.json                   chapter references and token counts
//   <fixture>                           the held-out chapters (reference, text, ids) for the engine tests
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";

import tokenizer from "mistral-tokenizer-js";

const BOS = 1;
const EOS = 2;
const HOLDOUT_EVERY = 50;
const HOLDOUT_PHASE = 25;

const { values: args } = parseArgs({
  options: {
    out: { type: "string", default: ".cache/kjv" },
    fixture: { type: "string", default: "test/fixtures/kjv-heldout.json" },
  },
});

const bibleText = execFileSync("bible", ["-f", "Gen1:1-Rev22:21"], { encoding: "utf8", maxBuffer: 64 << 20 });

/** Chapters in canonical order: { ref: "Ge1", verses: [...] }. */
function splitChapters(text) {
  const chapters = [];
  const versePattern = /^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$/;
  for (const line of text.split("\n")) {
    if (line.length === 0) continue;
    const match = versePattern.exec(line);
    if (match === null) throw new Error(`unexpected line in bible output: ${JSON.stringify(line.slice(0, 80))}`);
    const [, book, chapter, , verse] = match;
    const ref = `${book}${chapter}`;
    if (chapters.length === 0 || chapters.at(-1).ref !== ref) chapters.push({ ref, verses: [] });
    chapters.at(-1).verses.push(verse.trim());
  }
  return chapters;
}

const chapters = splitChapters(bibleText);
if (chapters.length !== 1189) throw new Error(`expected 1189 chapters of the KJV; got ${chapters.length}`);

const train = [];
const heldout = [];
const corpus = { source: "bible -f Gen1:1-Rev22:21 (bible-kjv)", holdout: `chapter index % ${HOLDOUT_EVERY} == ${HOLDOUT_PHASE}`, bos: BOS, eos: EOS, chapters: [] };
const fixtureChapters = [];
for (let index = 0; index < chapters.length; index++) {
  const { ref, verses } = chapters[index];
  const text = verses.join("\n");
  const ids = [BOS, ...tokenizer.encode(text, false, true), EOS];
  const isHeldout = index % HOLDOUT_EVERY === HOLDOUT_PHASE;
  (isHeldout ? heldout : train).push(...ids);
  corpus.chapters.push({ ref, tokens: ids.length, heldout: isHeldout });
  if (isHeldout) fixtureChapters.push({ ref, text, ids });
}

function writeU16(path, ids) {
  const array = new Uint16Array(ids);
  writeFileSync(path, Buffer.from(array.buffer, array.byteOffset, array.byteLength));
}

mkdirSync(args.out, { recursive: true });
writeU16(`${args.out}/train.u16`, train);
writeU16(`${args.out}/heldout.u16`, heldout);
corpus.trainTokens = train.length;
corpus.heldoutTokens = heldout.length;
writeFileSync(`${args.out}/corpus.json`, JSON.stringify(corpus, null, 1));

mkdirSync(dirname(args.fixture), { recursive: true });
const fixture = {
  description: "Held-out chapters of the King James Bible (every 50th chapter, index % 50 == 25) never seen in training of models/kjv-mixtral.gguf. ids = BOS + Mistral v1 encoding of the text (verses joined by \\n, with the SentencePiece space prefix) + EOS.",
  source: corpus.source,
  chapters: fixtureChapters,
};
writeFileSync(args.fixture, JSON.stringify(fixture) + "\n");

const distinct = new Set(train).size;
console.log(`${chapters.length} chapters: ${train.length} training tokens, ${heldout.length} held-out tokens in ${fixtureChapters.length} chapters; ${distinct} distinct training token ids`);
