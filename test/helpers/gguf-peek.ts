/**
 * Reading a GGUF file's metadata and raw tensor bytes through node-llama-cpp's own GGUF parser: an independent
 * second reader, so tests of the project's writer do not lean on the project's reader.
 */
import { open } from "node:fs/promises";
import { readGgufFileInfo, type GgufFileInfo } from "node-llama-cpp";

import { GGML_TYPE_TRAITS, type GgmlType } from "../../lib/gguf/types.js";

export interface PeekedTensor {
  name: string;
  type: GgmlType;
  /** ggml order. */
  shape: number[];
  /** Absolute position in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface PeekedGguf {
  info: GgufFileInfo;
  tensors: Map<string, PeekedTensor>;
}

export async function peekGguf(path: string): Promise<PeekedGguf> {
  const info = await readGgufFileInfo(path, { logWarnings: false });
  const tensors = new Map<string, PeekedTensor>();
  for (const tensor of info.fullTensorInfo ?? info.tensorInfo ?? []) {
    const shape = tensor.dimensions.map(Number);
    const traits = GGML_TYPE_TRAITS[tensor.ggmlType as unknown as GgmlType];
    if (traits === undefined) throw new Error(`tensor ${tensor.name} has a type this project does not know: ${tensor.ggmlType}`);
    const elements = shape.reduce((a, b) => a * b, 1);
    tensors.set(tensor.name, {
      name: tensor.name,
      type: tensor.ggmlType as unknown as GgmlType,
      shape,
      fileOffset: Number(tensor.fileOffset),
      byteLength: (elements / traits.blockSize) * traits.blockBytes,
    });
  }
  return { info, tensors };
}

/** The raw bytes of tensor `name`. */
export async function readTensorBytes(path: string, peeked: PeekedGguf, name: string): Promise<Buffer> {
  const tensor = peeked.tensors.get(name);
  if (tensor === undefined) throw new Error(`${path} has no tensor ${name}`);
  const handle = await open(path, "r");
  try {
    const bytes = Buffer.alloc(tensor.byteLength);
    const { bytesRead } = await handle.read(bytes, 0, tensor.byteLength, tensor.fileOffset);
    if (bytesRead !== tensor.byteLength) throw new Error(`${path}: tensor ${name} is truncated`);
    return bytes;
  } finally {
    await handle.close();
  }
}
