import assert from "node:assert/strict";
import { until, withServer } from "./helpers.ts";

const ADMIN = { Authorization: "Bearer a1" };

function put(url: string, body: unknown, headers: Record<string, string> = ADMIN) {
  return fetch(url, { method: "PUT", headers, body: JSON.stringify(body) });
}

Deno.test("admin: off without --admin-key", async () => {
  await withServer({}, async ({ url }) => {
    const res = await fetch(`${url}/admin/plugins`, { headers: ADMIN });
    assert.equal(res.status, 404);
    await res.body?.cancel();
  });
});

Deno.test("admin: needs the admin key, not the API key", async () => {
  await withServer({ apiKey: "k1", adminKey: "a1" }, async ({ url }) => {
    for (const headers of [{}, { Authorization: "Bearer k1" }] as Record<string, string>[]) {
      const res = await put(`${url}/admin/plugins/scheduler`, {}, headers);
      assert.equal(res.status, 401);
      await res.body?.cancel();
    }
  });
});

Deno.test("admin: lists each slot's plugin and options, swaps with validation", async () => {
  await withServer({ adminKey: "a1" }, async ({ url, engine }) => {
    let res = await fetch(`${url}/admin/plugins`, { headers: ADMIN });
    assert.equal(res.status, 200);
    const list = await res.json();
    assert.equal(list.scheduler.name, "fcfs");
    assert.equal(list.batcher.name, "vllm");
    assert.equal(list.batcher.options.maxNumSeqs, 256);

    res = await put(`${url}/admin/plugins/batcher`, {
      name: "vllm",
      options: { "max-num-seqs": 0 },
    });
    assert.equal(res.status, 400);
    const err = (await res.json()).error;
    assert.match(err.message, /max-num-seqs/);

    res = await put(`${url}/admin/plugins/batcher`, { name: "vllm", options: { nope: 1 } });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /no option "nope"/);

    res = await put(`${url}/admin/plugins/scheduler`, { name: "no-such" });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /fcfs/);

    res = await put(`${url}/admin/plugins/warp-drive`, { name: "x" });
    assert.equal(res.status, 404);
    await res.body?.cancel();

    res = await put(`${url}/admin/plugins/scheduler`, "not json");
    assert.equal(res.status, 400);
    await res.body?.cancel();

    res = await put(`${url}/admin/plugins/batcher`, { name: "vllm", options: { maxNumSeqs: 8 } });
    assert.equal(res.status, 200);
    const swapped = await res.json();
    assert.equal(swapped.options.maxNumSeqs, 8);
    // Applied at the next iteration boundary (the serving loop wakes up for it).
    const batcher = () => engine.plugins().find((p) => p.slot === "batcher")!;
    await until(() => (batcher().options as { maxNumSeqs: number }).maxNumSeqs === 8);
    assert.equal(batcher().name, "vllm");

    res = await fetch(`${url}/admin/plugins/scheduler`, { headers: ADMIN });
    const slot = await res.json();
    assert.equal(slot.active.name, "fcfs");
    assert.ok(slot.available.some((p: { name: string }) => p.name === "priority"));
  });
});
