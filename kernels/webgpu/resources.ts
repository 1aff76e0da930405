/**
 * Small helpers over the WebGPU API: explicit bind-group layouts (so one bind group
 * serves several pipelines of the same signature), pipelines from WGSL text, buffers
 * with data, and f16 packing of weights.
 *
 * @module
 */

import { f32ToF16Bits } from "../../core/model/float16.ts";
import { UsageError } from "../../core/errors.ts";
import type { WeightType } from "./wgsl/common.ts";

/** How a binding is used: read-only storage, read-write storage, or uniform. */
export type BindingKind = "ro" | "rw" | "uniform";

/** A bind-group layout with its pipeline layout. */
export interface Signature {
  /** The group-0 layout. */
  group: GPUBindGroupLayout;
  /** The pipeline layout using it. */
  pipeline: GPUPipelineLayout;
}

/** A layout whose binding `i` has kind `kinds[i]`, compute stage only. */
export function signature(device: GPUDevice, kinds: BindingKind[]): Signature {
  const group = device.createBindGroupLayout({
    entries: kinds.map((kind, binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: {
        type: kind === "uniform" ? "uniform" : kind === "ro" ? "read-only-storage" : "storage",
      },
    })),
  });
  return { group, pipeline: device.createPipelineLayout({ bindGroupLayouts: [group] }) };
}

/** Compile `code` into a compute pipeline (entry point `main`). */
export async function pipeline(
  device: GPUDevice,
  sig: Signature,
  code: string,
  label: string,
): Promise<GPUComputePipeline> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label });
  const err = await device.popErrorScope();
  if (err) throw new Error(`WGSL kernel ${label} failed to compile: ${err.message}`);
  return await device.createComputePipelineAsync({
    layout: sig.pipeline,
    compute: { module, entryPoint: "main" },
    label,
  });
}

/** A bind group of `buffers` in binding order. */
export function bind(device: GPUDevice, sig: Signature, buffers: GPUBuffer[]): GPUBindGroup {
  return device.createBindGroup({
    layout: sig.group,
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}

/**
 * Usage of storage buffers that the host writes to or copies from (STORAGE | COPY_DST |
 * COPY_SRC, spelled as numbers so that importing this module needs no WebGPU globals).
 */
export const STORAGE: number = 0x80 | 0x08 | 0x04;

/** An empty buffer of at least `bytes` (rounded up to 16). */
export function buffer(device: GPUDevice, bytes: number, usage: number, label: string): GPUBuffer {
  return device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage, label });
}

/** A storage buffer holding `data`. */
export function upload(device: GPUDevice, data: ArrayBufferView, label: string): GPUBuffer {
  const b = buffer(device, data.byteLength, STORAGE, label);
  device.queue.writeBuffer(b, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  return b;
}

type HalfArrayCtor = new (src: ArrayLike<number>) => ArrayBufferView;

/** f32 values as IEEE half bit patterns, two per 32-bit word. */
export function toF16(src: Float32Array): Uint16Array {
  const Half = (globalThis as { Float16Array?: HalfArrayCtor }).Float16Array;
  if (Half) {
    const h = new Half(src);
    return new Uint16Array(h.buffer, h.byteOffset, src.length);
  }
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}

/**
 * Upload a weight matrix in `type` storage; refuses one larger than a binding may be
 * (with advice), since kernels bind each matrix whole.
 */
export function uploadWeight(
  device: GPUDevice,
  data: Float32Array,
  type: WeightType,
  maxBinding: number,
  label: string,
): GPUBuffer {
  const bytes = data.length * (type === "f16" ? 2 : 4);
  if (bytes > maxBinding) {
    throw new UsageError(
      `executor webgpu: weight ${label} needs ${bytes} bytes but this adapter binds at most ` +
        `${maxBinding}${type === "f32" ? "; try --executor.weights f16" : ""}`,
      "executor",
    );
  }
  return upload(device, type === "f16" ? toF16(data) : data, label);
}
