import assert from "node:assert/strict";
import fc from "fast-check";
import { sseData } from "../../../server/loadgen/sse_reader.ts";

function body(text: string, cuts: number[]): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    parts.push(bytes.slice(prev, c));
    prev = c;
  }
  return new ReadableStream({
    start(ctl) {
      for (const p of parts) ctl.enqueue(p);
      ctl.close();
    },
  });
}

Deno.test("loadgen sse: the same events whatever the network chunking", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.string({ unit: "grapheme", maxLength: 10 }).filter((s) => !s.includes("\n")), {
        maxLength: 6,
      }),
      fc.array(fc.nat(), { maxLength: 8 }),
      async (payloads, cuts) => {
        const text = payloads.map((p) => `data: ${p}\n\n`).join("") + ": comment\n\n";
        const got: string[] = [];
        for await (const d of sseData(body(text, cuts))) got.push(d);
        assert.deepEqual(got, payloads);
      },
    ),
    { numRuns: 200 },
  );
});
