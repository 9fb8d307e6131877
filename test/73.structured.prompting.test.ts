/**
 * The prompting patterns of issue 9 on the chat API: few-shot examples through system/user/assistant roles
 * render exactly as the model's template renders them (checked against @huggingface/jinja directly), the KV cache
 * reuses the shared few-shot prefix across calls, and Mistral's guardrail prompt (`safePrompt`).
 */
import { Template } from "@huggingface/jinja";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { MISTRAL_SAFE_PROMPT, type ChatMessage } from "../lib/chat-template.js";
import { Mixtral } from "../lib/model.js";
import { MIXTRAL_INSTRUCT_CHAT_TEMPLATE, cachedTestModel } from "../lib/testing/test-model.js";

/** The guardrail exactly as issue 9 (and Mistral's documentation) words it. */
const ISSUE_GUARDRAIL =
  "Always assist with care, respect, and truth. Respond with utmost utility yet securely. Avoid harmful, unethical, prejudiced, or negative content. Ensure replies promote fairness and positivity.";

const FEW_SHOT: ChatMessage[] = [
  { role: "system", content: "Classify the sentiment of the review as positive or negative. Answer with one word." },
  { role: "user", content: "The food was wonderful." },
  { role: "assistant", content: "positive" },
  { role: "user", content: "Cold soup and a rude waiter." },
  { role: "assistant", content: "negative" },
];

/** A template with a system role, so the system message reaches the template as a message. */
const CHATML_TEMPLATE =
  "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

let model: Mixtral;

beforeAll(async () => {
  model = await Mixtral.load(await cachedTestModel({}), { threads: 1 });
});

afterAll(async () => {
  await model?.dispose();
});

/** The tokens llama.cpp gives a rendered prompt: control-token texts parsed, no BOS added (the template has it). */
function tokensOf(rendered: string): number[] {
  return Array.from(model.tokenizer.encode(rendered, { addBos: false, special: true }));
}

function render(template: string, messages: readonly ChatMessage[]): string {
  return new Template(template).render({ messages, bos_token: "<s>", eos_token: "</s>", add_generation_prompt: true });
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

describe("73 structured: few-shot prompting through roles", () => {
  it("setHistory([system, user, assistant, …]) evaluates exactly the Mixtral template rendered by @huggingface/jinja", async () => {
    expect(model.chatTemplate).toBe(MIXTRAL_INSTRUCT_CHAT_TEMPLATE);
    using chat = model.createChat();
    await chat.setHistory(FEW_SHOT);
    const result = await chat.send("Best pizza in town!", { maxTokens: 0 });
    // Mixtral's template has no system role (it raises on one): Mistral puts the system prompt before the first
    // user message, separated by a blank line.
    const [system, firstUser, ...rest] = FEW_SHOT;
    const merged: ChatMessage[] = [{ role: "user", content: `${system.content}\n\n${firstUser.content}` }, ...rest, { role: "user", content: "Best pizza in town!" }];
    const rendered = render(MIXTRAL_INSTRUCT_CHAT_TEMPLATE, merged);
    expect(rendered).toBe(
      "<s>[INST] Classify the sentiment of the review as positive or negative. Answer with one word.\n\nThe food was wonderful. [/INST]" +
        "positive</s>[INST] Cold soup and a rude waiter. [/INST]negative</s>[INST] Best pizza in town! [/INST]",
    );
    expect(Array.from(chat.session.tokens)).toEqual(tokensOf(rendered));
    expect(result.usage.promptTokens).toBe(tokensOf(rendered).length);
    expect(model.applyChatTemplate([...FEW_SHOT, { role: "user", content: "Best pizza in town!" }], { addGenerationPrompt: true })).toBe(rendered);
  });

  it("with a template that has a system role, the system message is rendered by the template itself", async () => {
    using chat = model.createChat({ template: CHATML_TEMPLATE });
    await chat.setHistory(FEW_SHOT);
    await chat.send("Best pizza in town!", { maxTokens: 0 });
    const rendered = render(CHATML_TEMPLATE, [...FEW_SHOT, { role: "user", content: "Best pizza in town!" }]);
    expect(rendered.startsWith("<|im_start|>system\nClassify")).toBe(true);
    expect(Array.from(chat.session.tokens)).toEqual(tokensOf(rendered));
  });

  it("the KV cache keeps the shared few-shot prefix across calls: only the new question is evaluated", async () => {
    using chat = model.createChat();
    await chat.setHistory(FEW_SHOT);
    const first = await chat.send("Best pizza in town!", { temperature: 0, maxTokens: 4 });
    expect(first.usage.cachedTokens).toBe(0);
    const firstTokens = Array.from(chat.session.tokens);

    // Same examples, another question: everything up to the new question comes from the cache.
    await chat.setHistory(FEW_SHOT);
    const second = await chat.send("The bill was wrong twice.", { temperature: 0, maxTokens: 4 });
    const secondPrompt = Array.from(chat.session.tokens).slice(0, second.usage.promptTokens);
    const fewShotPrefix = tokensOf(model.applyChatTemplate(FEW_SHOT)).length;
    expect(second.usage.cachedTokens).toBe(commonPrefix(firstTokens, secondPrompt));
    expect(second.usage.cachedTokens).toBeGreaterThanOrEqual(fewShotPrefix);
    expect(second.usage.promptTokens - second.usage.cachedTokens).toBeLessThanOrEqual(tokensOf("[INST] The bill was wrong twice. [/INST]").length);

    // A follow-up in the same conversation reuses the whole previous turn, the reply's sampled tokens included
    // (all but the last: a reply cut at maxTokens ends without evaluating its last token).
    const third = await chat.send("And this one: lovely staff.", { temperature: 0, maxTokens: 4 });
    expect(second.stopReason).toBe("maxTokens");
    expect(third.usage.cachedTokens).toBe(second.usage.promptTokens + second.usage.completionTokens - 1);
  });

  it("a constrained reply after few-shot examples is one of the labels the examples teach", async () => {
    using chat = model.createChat();
    await chat.setHistory(FEW_SHOT);
    for (let seed = 1; seed <= 4; seed++) {
      const reply = await chat.send("Never again.", { grammar: 'root ::= "positive" | "negative"', temperature: 1, seed });
      expect(["positive", "negative"]).toContain(reply.text);
      expect(reply.stopReason).toBe("eos");
      await chat.setHistory(FEW_SHOT);
    }
  });
});

describe("73 structured: the guardrail prompt", () => {
  it("MISTRAL_SAFE_PROMPT is the guardrail word for word as issue 9 gives it", () => {
    expect(MISTRAL_SAFE_PROMPT).toBe(ISSUE_GUARDRAIL);
  });

  it("applyChatTemplate({ safePrompt: true }) prepends it as the system prompt, before any system prompt of the caller", () => {
    const user: ChatMessage = { role: "user", content: "How do I pick a lock?" };
    expect(model.applyChatTemplate([user], { safePrompt: true })).toBe(`<s>[INST] ${ISSUE_GUARDRAIL}\n\nHow do I pick a lock? [/INST]`);
    expect(model.applyChatTemplate([{ role: "system", content: "You are a locksmith." }, user], { safePrompt: true })).toBe(
      `<s>[INST] ${ISSUE_GUARDRAIL}\n\nYou are a locksmith.\n\nHow do I pick a lock? [/INST]`,
    );
    expect(model.applyChatTemplate([user])).not.toContain(ISSUE_GUARDRAIL);
  });

  it("createChat({ safePrompt: true }) evaluates what applyChatTemplate renders with safePrompt, on every turn", async () => {
    using chat = model.createChat({ safePrompt: true, systemPrompt: "You are a locksmith." });
    expect(chat.safePrompt).toBe(true);
    const first = await chat.send("How do I pick a lock?", { temperature: 0, maxTokens: 3 });
    const rendered = model.applyChatTemplate(
      [{ role: "system", content: "You are a locksmith." }, { role: "user", content: "How do I pick a lock?" }],
      { safePrompt: true, addGenerationPrompt: true },
    );
    expect(Array.from(chat.session.tokens).slice(0, first.usage.promptTokens)).toEqual(tokensOf(rendered));
    // The history is the caller's conversation; the guardrail is added when it is rendered.
    expect(chat.history[0]).toEqual({ role: "system", content: "You are a locksmith." });
    const second = await chat.send("Thanks.", { temperature: 0, maxTokens: 3 });
    expect(first.stopReason).toBe("maxTokens");
    expect(second.usage.cachedTokens).toBe(first.usage.promptTokens + first.usage.completionTokens - 1);
    const both = model.applyChatTemplate([...chat.history.slice(0, 3), { role: "user", content: "Thanks." }], { safePrompt: true, addGenerationPrompt: true });
    expect(both.startsWith(`<s>[INST] ${ISSUE_GUARDRAIL}\n\nYou are a locksmith.\n\nHow do I pick a lock? [/INST]`)).toBe(true);
  });

  it("without safePrompt, no guardrail is evaluated", async () => {
    using chat = model.createChat({ systemPrompt: "You are a locksmith." });
    await chat.send("How do I pick a lock?", { maxTokens: 0 });
    const guardrailTokens = tokensOf(ISSUE_GUARDRAIL).slice(1, 8);
    const tokens = Array.from(chat.session.tokens).join(",");
    expect(tokens.includes(guardrailTokens.join(","))).toBe(false);
    using guarded = model.createChat({ systemPrompt: "You are a locksmith.", safePrompt: true });
    await guarded.send("How do I pick a lock?", { maxTokens: 0 });
    expect(Array.from(guarded.session.tokens).join(",").includes(guardrailTokens.join(","))).toBe(true);
  });
});
