import assert from "node:assert/strict";
import { UsageError } from "../../core/errors.ts";
import { Engine } from "../../core/engine.ts";
import { presetModel } from "../../core/model/load.ts";
import { serveEngine } from "../../server/mod.ts";
import { withServer } from "./helpers.ts";

Deno.test("start: binds 127.0.0.1 by default; a port in use is a usage error", async () => {
  await withServer({}, async ({ server }) => {
    assert.equal(server.hostname, "127.0.0.1");
    const engine = await Engine.create({ model: presetModel("tiny"), log: () => {} });
    try {
      await assert.rejects(
        () => serveEngine(engine, { port: server.port, log: () => {} }),
        (e) => e instanceof UsageError && /in use/.test(e.message) && e.param === "--port",
      );
    } finally {
      await engine.close();
    }
  });
});
