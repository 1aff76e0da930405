import assert from "node:assert/strict";

async function runScript(...extra: string[]): Promise<Deno.CommandOutput> {
  const script = new URL("./_no_permissions.ts", import.meta.url);
  const config = new URL("../../../deno.json", import.meta.url);
  return await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--config", config.pathname, script.pathname, ...extra],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000), // a process kept alive by its threads is killed
  }).output();
}

Deno.test("the wasm executor starts its threads and runs with no permissions at all", async () => {
  const out = await runScript();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /^token \d+\n$/);
});

Deno.test("an executor left open does not keep the process alive", async () => {
  const t = performance.now();
  const out = await runScript("--leave-open");
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /^token \d+\n$/);
  assert.ok(performance.now() - t < 50_000);
});
