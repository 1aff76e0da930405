/**
 * The safetensors format: an 8-byte little-endian header length `N`, `N` bytes of JSON
 * (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`,
 * offsets relative to the end of the header), then the raw little-endian tensor bytes.
 *
 * Reading widens F32, F16 and BF16 tensors to f32 and reads each tensor on demand, so a
 * file is never held in memory whole. Writing (used by tests and converters) narrows f32
 * data to the chosen dtype. Sharded folders go through `model.safetensors.index.json`.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { bf16ToF32, f16ToF32, f32ToBf16Bits, f32ToF16Bits } from "./float16.ts";

/** Data types this reader widens to f32. */
export const SUPPORTED_DTYPES: readonly string[] = ["F32", "F16", "BF16"];

/** A dtype this reader supports. */
export type SafetensorsDtype = "F32" | "F16" | "BF16";

/** Bytes per element of the dtypes the format defines (to validate offsets of any). */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
};

/** Where one tensor is and what it holds. */
export interface TensorInfo {
  /** Tensor name. */
  name: string;
  /** dtype string as stored ("F32", "BF16", ...). */
  dtype: string;
  /** Shape. */
  shape: number[];
  /** Absolute byte offset of the first byte in the file. */
  begin: number;
  /** Absolute byte offset after the last byte. */
  end: number;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Parse and validate a header. `prefix` holds at least the first `8 + N` bytes of a file
 * of `fileSize` bytes; `path` names the file in errors.
 */
export function parseSafetensorsHeader(
  prefix: Uint8Array,
  fileSize: number,
  path: string,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string>; dataStart: number } {
  if (fileSize < 8) {
    throw new UsageError(
      `${path}: truncated safetensors file (${fileSize} bytes; it must start with an 8-byte header length)`,
    );
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const headerLen = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (headerLen > fileSize - 8) {
    throw new UsageError(
      `${path}: bad safetensors header length ${headerLen}: beyond the file (${fileSize} bytes in all)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(prefix.subarray(8, 8 + headerLen)),
    );
  } catch (e) {
    throw new UsageError(`${path}: corrupt safetensors header (not JSON: ${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new UsageError(`${path}: corrupt safetensors header (expected a JSON object)`);
  }
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const offsets = e?.data_offsets;
    if (
      typeof e?.dtype !== "string" || !Array.isArray(e.shape) ||
      !e.shape.every((d) => Number.isInteger(d) && d >= 0) ||
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw new UsageError(
        `${path}: corrupt safetensors header entry for tensor "${name}" (needs dtype, shape, data_offsets)`,
      );
    }
    const [begin, end] = offsets as number[];
    if (end > dataSize) {
      throw new UsageError(
        `${path}: truncated safetensors file: tensor "${name}" ends at byte ${dataStart + end} ` +
          `but the file has ${fileSize} bytes`,
      );
    }
    const size = DTYPE_BYTES[e.dtype];
    if (size !== undefined && (end - begin) !== numel(e.shape as number[]) * size) {
      throw new UsageError(
        `${path}: corrupt safetensors header: tensor "${name}" has ${end - begin} bytes for ` +
          `shape [${e.shape}] of ${e.dtype}`,
      );
    }
    tensors.set(name, {
      name,
      dtype: e.dtype,
      shape: e.shape as number[],
      begin: dataStart + begin,
      end: dataStart + end,
    });
  }
  return { tensors, metadata, dataStart };
}

/** Widen the little-endian bytes of one tensor to f32. */
export function decodeTensor(
  bytes: Uint8Array,
  dtype: string,
  name: string,
  path: string,
): Float32Array {
  // Copy into a fresh, aligned buffer (offsets in a file need not be aligned).
  const aligned = bytes.slice();
  switch (dtype) {
    case "F32":
      return new Float32Array(aligned.buffer, 0, aligned.byteLength / 4);
    case "F16":
      return f16ToF32(new Uint16Array(aligned.buffer, 0, aligned.byteLength / 2));
    case "BF16":
      return bf16ToF32(new Uint16Array(aligned.buffer, 0, aligned.byteLength / 2));
    default:
      throw unsupportedDtype(path, name, dtype);
  }
}

/** The error for a tensor whose dtype this reader cannot widen. */
export function unsupportedDtype(path: string, name: string, dtype: string): UsageError {
  return new UsageError(
    `${path}: tensor "${name}" has unsupported dtype ${dtype}; supported: ${
      SUPPORTED_DTYPES.join(", ")
    }`,
  );
}

async function readExactly(file: Deno.FsFile, at: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await file.seek(at, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = await file.read(out.subarray(done));
    if (n === null) throw new UsageError(`file ended early while reading ${length} bytes at ${at}`);
    done += n;
  }
  return out;
}

/** One safetensors file, opened for reading; tensors are read on demand. */
export class SafetensorsFile {
  /** The file's path. */
  readonly path: string;
  /** Tensors by name. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The `__metadata__` entry (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  #file: Deno.FsFile;

  private constructor(
    path: string,
    file: Deno.FsFile,
    header: { tensors: Map<string, TensorInfo>; metadata: Record<string, string> },
  ) {
    this.path = path;
    this.#file = file;
    this.tensors = header.tensors;
    this.metadata = header.metadata;
  }

  /** Open `path` and read its header. Throws UsageError for a missing or corrupt file. */
  static async open(path: string): Promise<SafetensorsFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new UsageError(`${path}: no such safetensors file`, path);
      }
      throw e;
    }
    try {
      const size = (await file.stat()).size;
      const lenBytes = size >= 8 ? await readExactly(file, 0, 8) : new Uint8Array(8);
      const lenView = new DataView(lenBytes.buffer);
      const headerLen = lenView.getUint32(0, true) + lenView.getUint32(4, true) * 2 ** 32;
      const prefix = size >= 8 && headerLen <= size - 8
        ? await readExactly(file, 0, 8 + headerLen)
        : lenBytes;
      return new SafetensorsFile(path, file, parseSafetensorsHeader(prefix, size, path));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Read tensor `name` as f32. */
  async read(name: string): Promise<Float32Array> {
    const info = this.tensors.get(name);
    if (!info) throw new UsageError(`${this.path}: missing tensor "${name}"`);
    if (!SUPPORTED_DTYPES.includes(info.dtype)) throw unsupportedDtype(this.path, name, info.dtype);
    const bytes = await readExactly(this.#file, info.begin, info.end - info.begin);
    return decodeTensor(bytes, info.dtype, name, this.path);
  }

  /** Release the file handle. */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}

/** Tensors of a folder: one `model.safetensors`, or shards listed by an index. */
export class SafetensorsFolder {
  /** Which file holds each tensor. */
  readonly #where: Map<string, SafetensorsFile>;
  /** The opened files. */
  readonly files: readonly SafetensorsFile[];
  /** The folder. */
  readonly dir: string;

  private constructor(dir: string, files: SafetensorsFile[], where: Map<string, SafetensorsFile>) {
    this.dir = dir;
    this.files = files;
    this.#where = where;
  }

  /**
   * Open the weights of `dir`: `model.safetensors.index.json` (its `weight_map`) when
   * present, else every `*.safetensors` file in the folder.
   */
  static async open(dir: string): Promise<SafetensorsFolder> {
    const indexPath = `${dir}/model.safetensors.index.json`;
    let names: string[];
    let weightMap: Record<string, string> | undefined;
    try {
      const index = JSON.parse(await Deno.readTextFile(indexPath));
      weightMap = index?.weight_map;
      if (typeof weightMap !== "object" || weightMap === null) {
        throw new UsageError(`${indexPath}: no "weight_map" object`);
      }
      names = [...new Set(Object.values(weightMap))];
    } catch (e) {
      if (e instanceof UsageError) throw e;
      if (e instanceof SyntaxError) {
        throw new UsageError(`${indexPath}: not valid JSON (${e.message})`);
      }
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      names = [];
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isFile && entry.name.endsWith(".safetensors")) names.push(entry.name);
      }
      names.sort();
      if (names.length === 0) {
        throw new UsageError(`${dir}: no *.safetensors weights (nor model.safetensors.index.json)`);
      }
    }
    const files: SafetensorsFile[] = [];
    try {
      for (const name of names) files.push(await SafetensorsFile.open(`${dir}/${name}`));
    } catch (e) {
      for (const f of files) f.close();
      throw e;
    }
    const where = new Map<string, SafetensorsFile>();
    const byName = new Map(names.map((n, i) => [n, files[i]]));
    if (weightMap) {
      for (const [tensor, file] of Object.entries(weightMap)) {
        const f = byName.get(file)!;
        if (!f.tensors.has(tensor)) {
          for (const g of files) g.close();
          throw new UsageError(`${dir}/${file}: missing tensor "${tensor}" (listed in the index)`);
        }
        where.set(tensor, f);
      }
    } else {
      for (const f of files) for (const t of f.tensors.keys()) where.set(t, f);
    }
    return new SafetensorsFolder(dir, files, where);
  }

  /** Whether tensor `name` exists. */
  has(name: string): boolean {
    return this.#where.has(name);
  }

  /** Metadata of tensor `name`, or undefined. */
  info(name: string): TensorInfo | undefined {
    return this.#where.get(name)?.tensors.get(name);
  }

  /** All tensor names. */
  names(): string[] {
    return [...this.#where.keys()];
  }

  /** Read tensor `name` as f32; a UsageError naming it when missing. */
  read(name: string): Promise<Float32Array> {
    const f = this.#where.get(name);
    if (!f) throw new UsageError(`${this.dir}: missing tensor "${name}"`);
    return f.read(name);
  }

  /** Close every file. */
  close(): void {
    for (const f of this.files) f.close();
  }
}

/** A tensor to write: f32 data narrowed to `dtype`, or raw bytes of any dtype. */
export type TensorToWrite =
  | { dtype: SafetensorsDtype; shape: number[]; data: Float32Array | readonly number[] }
  | { dtype: string; shape: number[]; bytes: Uint8Array };

function tensorBytes(name: string, t: TensorToWrite): Uint8Array {
  if ("bytes" in t) return t.bytes;
  const n = numel(t.shape);
  if (t.data.length !== n) {
    throw new RangeError(`tensor "${name}": ${t.data.length} values for shape [${t.shape}]`);
  }
  if (t.dtype === "F32") {
    const out = new Uint8Array(n * 4);
    const view = new DataView(out.buffer);
    for (let i = 0; i < n; i++) view.setFloat32(i * 4, t.data[i], true);
    return out;
  }
  const narrow = t.dtype === "F16" ? f32ToF16Bits : f32ToBf16Bits;
  const out = new Uint8Array(n * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) view.setUint16(i * 2, narrow(t.data[i]), true);
  return out;
}

/** Serialise tensors (in insertion order) into safetensors bytes. */
export function encodeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = tensorBytes(name, t);
    header[name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + bytes.length],
    };
    blobs.push(bytes);
    offset += bytes.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // the data starts 8-byte aligned
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Write tensors to a safetensors file at `path`. */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  await Deno.writeFile(path, encodeSafetensors(tensors, metadata));
}
