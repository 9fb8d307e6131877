/**
 * mixtral-native: Mixtral 8x7B and the dense Mistral family from GGUF files, on the CPU, from Node.js.
 * @module
 */
export * from "./errors.js";
export { GgufWriter, type GgufWriterOptions, type TensorData, type WriteOptions } from "./gguf/writer.js";
export * from "./gguf/types.js";
export { quantize, dequantize, QUANTIZABLE_TYPES } from "./gguf/quantize.js";
export { quantizeModel, QUANTIZE_TYPES, type QuantizeType, type QuantizeOptions, type QuantizeProgress, type QuantizeResult } from "./quantize/quantize-model.js";
export { Tokenizer, TokenizerError, TokenType, StreamingDecoder, type TokenizerVocabulary, type EncodeOptions, type DecodeOptions } from "./tokenizer/tokenizer.js";
export { readGguf, type GgufFileInfo, type GgufMetadataEntry, type GgufTensorDescriptor, type ReadGgufOptions } from "./gguf/reader.js";
export { inspectModel, fileTypeName, type ModelInfo, type InspectModelOptions, type ExpertLayout } from "./gguf/inspect.js";
export * from "./sampling/index.js";
export * from "./grammar/index.js";
export { Mixtral, physicalCoreCount, type LoadOptions } from "./model.js";
export type { WeightMemory } from "./native.js";
export {
  Session, type SessionOptions, type SessionStats, type EvalOptions, type GenerateOptions, type GeneratedToken, type GenerateResult, type StopReason,
  type RoutingStats, type JsonSchemaGenerateOptions, type JsonGrammarGenerateOptions,
} from "./session.js";
export {
  Chat, type ChatOptions, type ChatSendOptions, type ChatResult, type ChatUsage, type ChatStopReason, type ChatStream,
  type ContextShiftStrategy, type JsonSchemaSendOptions, type JsonGrammarSendOptions,
} from "./chat.js";
export {
  ChatTemplateError, MIXTRAL_INSTRUCT_TEMPLATE, MISTRAL_SAFE_PROMPT, type ChatMessage, type ChatRole, type ApplyChatTemplateOptions,
} from "./chat-template.js";
