import assert from "node:assert/strict";
import { UsageError } from "../../../core/errors.ts";
import { presetModel } from "../../../core/model/load.ts";
import { describeAdapter, openGpu } from "../../../kernels/webgpu/device.ts";
import { webgpuExecutor } from "../../../kernels/webgpu/executor.ts";
import { context, HAS_GPU } from "./harness.ts";

/** Runs `fn` while `navigator.gpu.requestAdapter` finds nothing. */
async function withoutAdapter(fn: () => Promise<void>): Promise<void> {
  const gpu = navigator.gpu as GPU & { requestAdapter: GPU["requestAdapter"] };
  const original = gpu.requestAdapter;
  Object.defineProperty(gpu, "requestAdapter", {
    value: () => Promise.resolve(null),
    configurable: true,
    writable: true,
  });
  try {
    await fn();
  } finally {
    delete (gpu as unknown as Record<string, unknown>).requestAdapter;
    if (gpu.requestAdapter !== original) {
      Object.defineProperty(gpu, "requestAdapter", { value: original, configurable: true });
    }
  }
}

Deno.test("webgpu device: no adapter is a UsageError naming the alternatives", async () => {
  await withoutAdapter(async () => {
    const err = await openGpu().then(() => undefined, (e) => e);
    assert.ok(err instanceof UsageError);
    assert.match(err.message, /no WebGPU adapter/);
    assert.match(err.message, /--executor reference/);
  });
});

Deno.test("webgpu device: the executor plugin fails cleanly without an adapter", async () => {
  await withoutAdapter(async () => {
    const ctx = context(presetModel("tiny"), {
      numBlocks: 8,
      blockSize: 4,
      maxBatchTokens: 16,
      maxBatchSeqs: 2,
      maxModelLen: 32,
    });
    await assert.rejects(
      async () => {
        await webgpuExecutor.create(webgpuExecutor.options.parse({}), ctx);
      },
      UsageError,
    );
  });
});

Deno.test("webgpu device: options are validated by the schema", () => {
  assert.throws(() => webgpuExecutor.options.parse({ weights: "f8" }));
  assert.throws(() => webgpuExecutor.options.parse({ matvecMaxRows: 0 }));
  const o = webgpuExecutor.options.parse({});
  assert.equal(o.relay, "auto");
  assert.equal(o.weights, "auto");
});

Deno.test({
  name: "webgpu device: opens with the adapter's limits and reports its features",
  ignore: !HAS_GPU,
  async fn() {
    const gpu = await openGpu();
    try {
      // Raised above the WebGPU defaults whenever the adapter offers more.
      const adapter = (await navigator.gpu.requestAdapter())!;
      assert.equal(
        gpu.info.maxStorageBufferBindingSize,
        adapter.limits.maxStorageBufferBindingSize,
      );
      assert.equal(gpu.info.f16, adapter.features.has("shader-f16"));
      assert.equal(typeof gpu.info.subgroups, "boolean");
      assert.equal(describeAdapter(adapter).isFallback, gpu.info.isFallback);
    } finally {
      gpu.device.destroy();
    }
  },
});
