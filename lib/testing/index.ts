/**
 * `mixtral-native/testing`: deterministic synthetic Mixtral-architecture GGUF files for tests and demos.
 * @module
 */
export {
  createTestModel, cachedTestModel, resolveTestModelOptions, syntheticValues, synthesizeTensor, testModelCacheName,
  DEFAULT_TEST_MODEL_CACHE_DIR, MIXTRAL_INSTRUCT_CHAT_TEMPLATE, TEST_MODEL_FORMAT_VERSION, TEST_MODEL_RMS_EPS,
  TEST_MODEL_TYPES, TEST_MODEL_VOCAB_SIZE,
  type ResolvedTestModelOptions, type TestModelFile, type TestModelLayout, type TestModelOptions,
} from "./test-model.js";
export { loadMistralV1Vocabulary, TokenType, type Vocabulary } from "./mistral-vocab.js";
