import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Start `main.ts serve` on a free port; resolves with its URL once it listens. */
async function spawnServe(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve", "--model", "tiny", "--port", "0", ...args],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const next = async (pattern: RegExp): Promise<string> => {
    for (;;) {
      const m = lines.find((l) => pattern.test(l));
      if (m) {
        lines.splice(lines.indexOf(m), 1);
        return m;
      }
      const { done, value } = await reader.read();
      if (done) throw new Error(`serve exited; log: ${lines.join("\n")}`);
      buf += value;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      lines.push(...parts);
    }
  };
  const url = /(http:\/\/\S+)/.exec(await next(/serving tiny on/))![1];
  return {
    child,
    url,
    next,
    async end() {
      const status = await child.status;
      await reader.cancel().catch(() => {});
      return status;
    },
  };
}

Deno.test("serve: SIGHUP reloads --config and swaps what changed; SIGTERM stops cleanly", async () => {
  const dir = await Deno.makeTempDir();
  const config = `${dir}/policy.json`;
  await Deno.writeTextFile(config, JSON.stringify({ scheduler: "fcfs" }));
  const s = await spawnServe(["--config", config, "--admin-key", "a1"]);
  try {
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        scheduler: "priority",
        batcher: { name: "vllm", options: { maxNumSeqs: 4 } },
      }),
    );
    s.child.kill("SIGHUP");
    assert.match(await s.next(/SIGHUP/), /swapped scheduler=priority, batcher=vllm/);
    const list =
      await (await fetch(`${s.url}/admin/plugins`, { headers: { Authorization: "Bearer a1" } }))
        .json();
    const shown = list.scheduler.pending?.name ?? list.scheduler.name;
    assert.equal(shown, "priority");
    // A broken file keeps the running plugins.
    await Deno.writeTextFile(config, JSON.stringify({ scheduler: "no-such" }));
    s.child.kill("SIGHUP");
    assert.match(await s.next(/SIGHUP/), /kept the running plugins: .*no-such/);
    const health = await fetch(`${s.url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    s.child.kill("SIGTERM");
    const status = await s.end();
    assert.equal(status.code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: a bad flag is a clean error with exit code 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve", "--model", "tiny", "--port", "70000"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  const err = new TextDecoder().decode(out.stderr);
  assert.match(err, /--port/);
  assert.doesNotMatch(err, /^\s+at /m);
});
