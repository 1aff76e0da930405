/**
 * Loads the compiled kernels: decodes the embedded bytes, picks the relaxed-SIMD build
 * where the engine validates it (fused multiply-add) and the plain-SIMD build otherwise,
 * and builds the import object from the module's own import list (so a renamed import
 * module, as a package registry may produce, still links).
 *
 * @module
 */

import { KERNELS_RELAXED_BASE64, KERNELS_SIMD_BASE64 } from "./kernels_wasm.ts";

/** Decode base64 to bytes. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Which build runs. */
export type KernelVariant = "relaxed-simd" | "simd";

/** Bytes of a build. */
export function kernelBytes(variant: KernelVariant): Uint8Array<ArrayBuffer> {
  return fromBase64(variant === "relaxed-simd" ? KERNELS_RELAXED_BASE64 : KERNELS_SIMD_BASE64);
}

/** Compile the best build this engine runs; throws a clear error without WASM SIMD. */
export async function compileKernels(
  prefer: KernelVariant | "auto" = "auto",
): Promise<{ module: WebAssembly.Module; variant: KernelVariant }> {
  const order: KernelVariant[] = prefer === "auto" ? ["relaxed-simd", "simd"] : [prefer];
  for (const variant of order) {
    const bytes = kernelBytes(variant);
    if (WebAssembly.validate(bytes)) {
      return { module: await WebAssembly.compile(bytes), variant };
    }
  }
  throw new Error(
    `this JavaScript engine cannot run the wasm executor's kernels (${order.join(", ")}): ` +
      `it needs WebAssembly SIMD and threads`,
  );
}

/** The import object for `module` over `memory`. */
export function kernelImports(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    const ns = (imports[imp.module] ??= {});
    if (imp.kind === "memory") ns[imp.name] = memory;
    else if (imp.kind === "function" && imp.name === "now") ns[imp.name] = () => performance.now();
    else throw new Error(`unexpected kernel import ${imp.module}.${imp.name}`);
  }
  return imports;
}
