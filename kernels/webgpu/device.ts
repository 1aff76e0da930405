/**
 * WebGPU adapter and device setup: find an adapter, ask for its real limits (Deno
 * otherwise grants only the WebGPU defaults, e.g. 128 MiB bindings and 8 storage buffers
 * per stage), and turn on `shader-f16` and `subgroups` when they can be had.
 *
 * Deno accepts `subgroups` at `requestDevice` even when `adapter.features` does not list
 * it, so it is simply requested and the request is retried without it on refusal
 * (deno-webgpu-wasm-notes, section 0.2).
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";

/** What the executor needs to know about the device it got. */
export interface GpuInfo {
  /** Adapter description (vendor, device, driver). */
  description: string;
  /** A software or otherwise fallback adapter (llvmpipe, lavapipe, WARP). */
  isFallback: boolean;
  /** `shader-f16` is enabled on the device. */
  f16: boolean;
  /** `subgroups` is enabled on the device. */
  subgroups: boolean;
  /** Largest storage buffer binding, bytes. */
  maxStorageBufferBindingSize: number;
  /** Largest buffer, bytes. */
  maxBufferSize: number;
  /** Workgroup memory, bytes. */
  maxComputeWorkgroupStorageSize: number;
  /** Storage buffers per shader stage. */
  maxStorageBuffersPerShaderStage: number;
  /** Largest dispatch along one dimension. */
  maxComputeWorkgroupsPerDimension: number;
}

/** A device with what it offers. */
export interface Gpu {
  /** The device. */
  device: GPUDevice;
  /** Its capabilities. */
  info: GpuInfo;
  /**
   * Messages of errors the device raised outside any error scope (a rejected command
   * buffer does nothing, silently): checked after each read-back.
   */
  errors: string[];
}

/** Limits worth raising to the adapter's values. */
const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
] as const;

/** The adapter, or undefined when this runtime or machine has none. */
export async function findAdapter(): Promise<GPUAdapter | undefined> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return undefined;
  try {
    return (await gpu.requestAdapter({ powerPreference: "high-performance" })) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Adapter description and whether it is a fallback (software) adapter. */
export function describeAdapter(adapter: GPUAdapter): { description: string; isFallback: boolean } {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const text = [info.vendor, info.architecture, info.device, info.description]
    .filter((s) => s && s !== "0").join(" ");
  const software = /llvmpipe|lavapipe|swiftshader|software|warp/i.test(text);
  return {
    description: text || "unknown adapter",
    isFallback: Boolean(info.isFallbackAdapter ?? legacy) || software,
  };
}

/** Whether a non-fallback adapter exists (the server's default-executor choice). */
export async function hasHardwareAdapter(): Promise<boolean> {
  const adapter = await findAdapter();
  return adapter !== undefined && !describeAdapter(adapter).isFallback;
}

/** Options of {@link openGpu}. */
export interface OpenGpuOptions {
  /** Ask for `shader-f16` (default true). */
  f16?: boolean;
  /** Ask for `subgroups` (default true). */
  subgroups?: boolean;
}

/**
 * Open a device with the adapter's limits and the optional features it grants.
 * Throws a {@link UsageError} when there is no adapter.
 */
export async function openGpu(options: OpenGpuOptions = {}): Promise<Gpu> {
  const adapter = await findAdapter();
  if (!adapter) {
    throw new UsageError(
      "executor webgpu: no WebGPU adapter found (no GPU, or no driver: on Linux install " +
        "mesa-vulkan-drivers for a software adapter); use --executor reference or wasm",
      "executor",
    );
  }
  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, number>;
  for (const name of LIMITS) {
    if (typeof limits[name] === "number") requiredLimits[name] = limits[name];
  }
  const wantF16 = (options.f16 ?? true) && adapter.features.has("shader-f16");
  const wantSubgroups = options.subgroups ?? true;
  const attempts: GPUFeatureName[][] = [];
  const base: GPUFeatureName[] = wantF16 ? ["shader-f16"] : [];
  if (wantSubgroups) attempts.push([...base, "subgroups" as GPUFeatureName]);
  attempts.push(base);
  let device: GPUDevice | undefined;
  let lastError: unknown;
  for (const requiredFeatures of attempts) {
    try {
      device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
      break;
    } catch (e) {
      lastError = e;
    }
  }
  if (!device) {
    throw new UsageError(
      `executor webgpu: the adapter refused a device (${String(lastError)})`,
      "executor",
    );
  }
  const got = device.limits as unknown as Record<string, number>;
  const { description, isFallback } = describeAdapter(adapter);
  const errors: string[] = [];
  device.addEventListener("uncapturederror", (e) => {
    errors.push((e as GPUUncapturedErrorEvent).error.message);
  });
  return {
    device,
    errors,
    info: {
      description,
      isFallback,
      f16: device.features.has("shader-f16"),
      subgroups: device.features.has("subgroups" as GPUFeatureName),
      maxStorageBufferBindingSize: got.maxStorageBufferBindingSize,
      maxBufferSize: got.maxBufferSize,
      maxComputeWorkgroupStorageSize: got.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: got.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupsPerDimension: got.maxComputeWorkgroupsPerDimension,
    },
  };
}
