import assert from "node:assert/strict";
import { buildKernels, renderModule } from "../../../kernels/wasm/build.ts";

Deno.test("rebuilding the kernels from source reproduces the committed kernels_wasm.ts", async () => {
  const committed = await Deno.readTextFile(
    new URL("../../../kernels/wasm/kernels_wasm.ts", import.meta.url),
  );
  const rebuilt = renderModule(await buildKernels());
  assert.ok(
    rebuilt === committed,
    "kernels/wasm/kernels_wasm.ts differs from a fresh build of assembly/kernels.ts: " +
      "run `deno task build:wasm` and commit the result",
  );
});

Deno.test("both kernel builds validate and export the same functions", async () => {
  const bins = await buildKernels();
  const relaxed = new WebAssembly.Module(bins.relaxed);
  const simd = new WebAssembly.Module(bins.simd);
  const names = (m: WebAssembly.Module) => WebAssembly.Module.exports(m).map((e) => e.name).sort();
  assert.deepEqual(names(relaxed), ["argmax", "copyProbe", "forward", "readProbe"]);
  assert.deepEqual(names(simd), names(relaxed));
  assert.notDeepEqual(bins.relaxed, bins.simd, "the fallback build differs from the FMA one");
});
