import assert from "node:assert/strict";

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("generate prints the text and a summary, the same for the same seed", async () => {
  const args = [
    "generate",
    "--model",
    "tiny",
    "--prompt",
    "hello",
    "--max-tokens",
    "16",
    "--seed",
    "1",
  ];
  const [a, b, c] = await Promise.all([cli(...args), cli(...args), cli(...args.slice(0, -1), "2")]);
  assert.equal(a.code, 0, a.stderr);
  assert.ok(a.stdout.startsWith("hello"));
  assert.equal(a.stdout, b.stdout);
  assert.notEqual(a.stdout, c.stdout, "another seed, other tokens");
  assert.match(a.stderr, /^16 tokens in [\d.]+ s \([\d.]+ tok\/s/m);
});

Deno.test("bad input: one line on stderr, exit code 2, no stack trace", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["generate", "--model", "tiny", "--prompt", "x", "--scheduler", "no-such-policy"],
      /unknown scheduler plugin "no-such-policy"; allowed: fcfs/,
    ],
    [
      ["generate", "--model", "tiny", "--prompt", "x", "--max-tokens", "-5"],
      /--max-tokens.*"-5".*integer from 1/,
    ],
    [
      ["generate", "--model", "./no/such/folder", "--prompt", "x"],
      /neither a preset nor an existing folder; presets: tiny/,
    ],
    [
      ["generate", "--model", "tiny", "--prompt", "x", "--admission.watermark", "9"],
      /--admission.watermark.*<= 0.5/,
    ],
    [["generate", "--model", "tiny", "--prompt", "x", "--colour", "red"], /unknown flag --colour/],
    [["nonsense"], /unknown command "nonsense"/],
  ];
  const results = await Promise.all(cases.map(([args]) => cli(...args)));
  results.forEach((r, i) => {
    assert.equal(r.code, 2, `${cases[i][0].join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, cases[i][1]);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });
});

Deno.test("--help lists every slot, its plugins and their options with defaults", async () => {
  const r = await cli("--help");
  assert.equal(r.code, 0);
  for (const slot of ["scheduler", "admission", "batcher", "kvcache", "executor"]) {
    assert.match(r.stdout, new RegExp(`^  ${slot}: `, "m"));
  }
  assert.match(r.stdout, /--batcher\.max-num-batched-tokens <an integer >= 1> \(default 2048\)/);
});

Deno.test("a config file and a third-party plugin from a path drive generate", async () => {
  const dir = await Deno.makeTempDir();
  const config = `${dir}/c.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      model: "tiny",
      plugins: ["./examples/my_scheduler.ts"],
      scheduler: { name: "shortest-prompt-first", options: { maxWaitSteps: 3 } },
      batcher: { name: "vllm", options: { maxNumBatchedTokens: 4 } },
    }),
  );
  const a = await cli(
    "generate",
    "--config",
    config,
    "--prompt",
    "hello",
    "--max-tokens",
    "4",
    "--temperature",
    "0",
  );
  assert.equal(a.code, 0, a.stderr);
  const b = await cli(
    "generate",
    "--model",
    "tiny",
    "--prompt",
    "hello",
    "--max-tokens",
    "4",
    "--temperature",
    "0",
  );
  assert.equal(a.stdout, b.stdout, "policies change the schedule, never the greedy tokens");
  await Deno.writeTextFile(
    config,
    JSON.stringify({ scheduler: { name: "shortest-prompt-first" } }),
  );
  const c = await cli("generate", "--config", config, "--model", "tiny", "--prompt", "x");
  assert.equal(c.code, 2);
  assert.match(c.stderr, /unknown scheduler plugin "shortest-prompt-first"/);
  await Deno.remove(dir, { recursive: true });
});
