import assert from "node:assert/strict";
import { loadPluginModule } from "../../plugins/loader.ts";
import { builtinRegistry } from "../../plugins/builtins.ts";

Deno.test("a third-party plugin module registers its default export", async () => {
  const r = builtinRegistry();
  const found = await loadPluginModule("./examples/my_scheduler.ts", r);
  assert.deepEqual(found.map((p) => p.name), ["shortest-prompt-first"]);
  assert.ok(r.has("scheduler", "shortest-prompt-first"));
});

Deno.test("a changed plugin file is imported again under a fresh URL", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/p.ts`;
  const write = (v: string) =>
    Deno.writeTextFile(
      file,
      `export default { name: "live", slot: "scheduler", apiVersion: 1, description: "${v}", options: undefined, create: () => ({}) };`,
    );
  await write("one");
  const r = builtinRegistry();
  await loadPluginModule(file, r);
  assert.equal(r.get("scheduler", "live").description, "one");
  await write("two");
  await loadPluginModule(file, r, { fresh: true });
  assert.equal(r.get("scheduler", "live").description, "two");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a module that cannot load or exports no plugin is a clear error", async () => {
  await assert.rejects(
    loadPluginModule("./no/such/plugin.ts", builtinRegistry()),
    /cannot load plugin module \.\/no\/such\/plugin\.ts/,
  );
  await assert.rejects(loadPluginModule("./core/clock.ts", builtinRegistry()), /exports no plugin/);
});
