import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeSafetensors,
  SafetensorsFile,
  SafetensorsFolder,
  writeSafetensors,
} from "../../../core/model/safetensors.ts";
import { bf16ToF32, f16ToF32, f32ToBf16Bits, f32ToF16Bits } from "../../../core/model/float16.ts";
import { UsageError } from "../../../core/errors.ts";

const values = Float32Array.from([0, -0, 1, -2.5, 0.125, 1024, -0.0009765625, 3.75, 65504]);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "baton_st_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readOne(path: string, name: string): Promise<Float32Array> {
  const f = await SafetensorsFile.open(path);
  try {
    return await f.read(name);
  } finally {
    f.close();
  }
}

async function rejectsUsage(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${e}`);
    for (const part of parts) {
      if (typeof part === "string") assert.ok(e.message.includes(part), e.message);
      else assert.match(e.message, part);
    }
    return true;
  });
}

for (const dtype of ["F32", "F16", "BF16"] as const) {
  Deno.test(`safetensors ${dtype} round trip`, async () => {
    await withDir(async (dir) => {
      const path = `${dir}/m.safetensors`;
      // Exactly representable in all three formats, except 65504 in BF16.
      const exact = dtype === "BF16" ? values.slice(0, -1) : values;
      const random = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) * 3);
      await writeSafetensors(path, {
        a: { dtype, shape: [exact.length], data: exact },
        "b.weight": { dtype, shape: [8, 8], data: random },
      }, { format: "pt" });
      const f = await SafetensorsFile.open(path);
      try {
        assert.deepEqual(f.metadata, { format: "pt" });
        assert.deepEqual(f.tensors.get("b.weight")!.shape, [8, 8]);
        assert.equal(f.tensors.get("a")!.dtype, dtype);
        assert.deepEqual(await f.read("a"), exact);
        const b = await f.read("b.weight");
        const tol = dtype === "F32" ? 0 : dtype === "F16" ? 2 ** -11 : 2 ** -8;
        for (let i = 0; i < b.length; i++) {
          assert.ok(
            Math.abs(b[i] - random[i]) <= tol * Math.abs(random[i]),
            `${b[i]} ${random[i]}`,
          );
        }
      } finally {
        f.close();
      }
    });
  });
}

Deno.test("safetensors data is 8-byte aligned after the header", () => {
  const bytes = encodeSafetensors({ x: { dtype: "F32", shape: [1], data: [1] } });
  const n = new DataView(bytes.buffer).getUint32(0, true);
  assert.equal(n % 8, 0);
  assert.equal(bytes.length, 8 + n + 4);
});

Deno.test("f16 and bf16 conversions round to nearest even and keep special values", () => {
  const h = (x: number) => f16ToF32(Uint16Array.of(f32ToF16Bits(x)))[0];
  const b = (x: number) => bf16ToF32(Uint16Array.of(f32ToBf16Bits(x)))[0];
  assert.equal(h(Infinity), Infinity);
  assert.equal(h(-1e6), -Infinity); // overflow
  assert.ok(Number.isNaN(h(NaN)));
  assert.equal(h(2 ** -24), 2 ** -24); // smallest subnormal
  assert.equal(h(2 ** -26), 0); // underflow
  assert.equal(h(1 + 2 ** -11), 1); // tie to even (down)
  assert.equal(h(1 + 3 * 2 ** -11), 1 + 2 ** -9); // tie to even (up)
  assert.equal(b(1 + 2 ** -8), 1);
  assert.equal(b(1 + 3 * 2 ** -8), 1 + 2 ** -6);
  assert.ok(Number.isNaN(b(NaN)));
  assert.equal(b(-Infinity), -Infinity);
  fc.assert(
    fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
      const y = h(x);
      assert.ok(Math.abs(y - x) <= Math.max(Math.abs(x) * 2 ** -11, 2 ** -25), `${x} -> ${y}`);
      const z = b(x);
      assert.ok(Math.abs(z - x) <= Math.max(Math.abs(x) * 2 ** -8, 2 ** -133), `${x} -> ${z}`);
    }),
  );
});

Deno.test("sharded safetensors load through the index", async () => {
  await withDir(async (dir) => {
    await writeSafetensors(`${dir}/model-00001-of-00002.safetensors`, {
      a: { dtype: "F32", shape: [2], data: [1, 2] },
      b: { dtype: "BF16", shape: [2], data: [3, 4] },
    });
    await writeSafetensors(`${dir}/model-00002-of-00002.safetensors`, {
      c: { dtype: "F16", shape: [1, 3], data: [5, 6, 7] },
      // Present in the file but not in the index: ignored.
      stray: { dtype: "F32", shape: [1], data: [0] },
    });
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({
        metadata: { total_size: 18 },
        weight_map: {
          a: "model-00001-of-00002.safetensors",
          b: "model-00001-of-00002.safetensors",
          c: "model-00002-of-00002.safetensors",
        },
      }),
    );
    const folder = await SafetensorsFolder.open(dir);
    try {
      assert.deepEqual(folder.names().sort(), ["a", "b", "c"]);
      assert.deepEqual(await folder.read("a"), Float32Array.of(1, 2));
      assert.deepEqual(await folder.read("b"), Float32Array.of(3, 4));
      assert.deepEqual(await folder.read("c"), Float32Array.of(5, 6, 7));
      assert.equal(folder.has("stray"), false);
      assert.throws(() => folder.read("nope"), /missing tensor "nope"/);
    } finally {
      folder.close();
    }
  });
});

Deno.test("an index naming a tensor its shard lacks is an error", async () => {
  await withDir(async (dir) => {
    await writeSafetensors(`${dir}/s1.safetensors`, { a: { dtype: "F32", shape: [1], data: [1] } });
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ weight_map: { a: "s1.safetensors", b: "s1.safetensors" } }),
    );
    await rejectsUsage(SafetensorsFolder.open(dir), 'missing tensor "b"', "s1.safetensors");
  });
});

Deno.test("safetensors errors: truncated, bad header length, dtype, missing tensor", async () => {
  await withDir(async (dir) => {
    const good = encodeSafetensors({
      w: { dtype: "F32", shape: [4], data: [1, 2, 3, 4] },
      ids: { dtype: "I64", shape: [2], bytes: new Uint8Array(16) },
    });

    await Deno.writeFile(`${dir}/short.safetensors`, good.slice(0, 5));
    await rejectsUsage(SafetensorsFile.open(`${dir}/short.safetensors`), "truncated", "5 bytes");

    await Deno.writeFile(`${dir}/cut.safetensors`, good.slice(0, good.length - 3));
    await rejectsUsage(SafetensorsFile.open(`${dir}/cut.safetensors`), "truncated", 'tensor "');

    const badLen = good.slice();
    new DataView(badLen.buffer).setUint32(0, 1_000_000, true);
    await Deno.writeFile(`${dir}/badlen.safetensors`, badLen);
    await rejectsUsage(
      SafetensorsFile.open(`${dir}/badlen.safetensors`),
      "header length 1000000",
      "beyond the file",
    );

    const huge = good.slice();
    new DataView(huge.buffer).setUint32(4, 7, true); // high word: > 2^32
    await Deno.writeFile(`${dir}/huge.safetensors`, huge);
    await rejectsUsage(SafetensorsFile.open(`${dir}/huge.safetensors`), "beyond the file");

    const notJson = good.slice();
    notJson[8] = 0x7b + 1; // '|' instead of '{'
    await Deno.writeFile(`${dir}/json.safetensors`, notJson);
    await rejectsUsage(
      SafetensorsFile.open(`${dir}/json.safetensors`),
      "corrupt safetensors header",
    );

    await Deno.writeFile(`${dir}/ok.safetensors`, good);
    assert.deepEqual(await readOne(`${dir}/ok.safetensors`, "w"), Float32Array.of(1, 2, 3, 4));
    await rejectsUsage(
      readOne(`${dir}/ok.safetensors`, "ids"),
      "unsupported dtype I64",
      "F32, F16, BF16",
    );
    await rejectsUsage(readOne(`${dir}/ok.safetensors`, "missing"), 'missing tensor "missing"');
    await rejectsUsage(SafetensorsFile.open(`${dir}/absent.safetensors`), "no such");
    await rejectsUsage(SafetensorsFolder.open(`${dir}/..`), "no *.safetensors");
  });
});
