import assert from "node:assert/strict";
import { main } from "../../cli/train_ranker.ts";
import { loadRanker } from "../../policies/ltr/ranker.ts";
import { UsageError } from "../../core/errors.ts";
import { Engine } from "../../core/engine.ts";
import { presetModel } from "../../core/model/load.ts";

Deno.test("train-ranker: trains on a learnable trace, reports held-out tau, writes a loadable ranker", async () => {
  const dir = await Deno.makeTempDir();
  const trace = `${dir}/t.jsonl`, out = `${dir}/r.json`, out2 = `${dir}/r2.json`;
  const log = console.log;
  const lines: string[] = [];
  console.log = (s: string) => lines.push(s);
  try {
    assert.equal(
      await main(["--learnable", "1500", "--save-trace", trace, "--out", out, "--epochs", "4"]),
      0,
    );
    assert.equal(await main(["--trace", trace, "--out", out2, "--epochs", "4"]), 0);
  } finally {
    console.log = log;
  }
  const tauOf = (line: string) => Number(/Kendall tau (-?[0-9.]+)/.exec(line)![1]);
  assert.ok(tauOf(lines[0]) > 0.4, lines[0]);
  // The same requests, read back from the saved trace, train the same ranker.
  assert.equal(tauOf(lines[1]), tauOf(lines[0]));
  const ranker = await loadRanker(out);
  assert.equal((ranker.training as { heldOut: number }).heldOut, 150);
  const engine = await Engine.create({
    model: presetModel("tiny"),
    plugins: { scheduler: { name: "ltr", options: { ranker: out } } },
    log: () => {},
  });
  await engine.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train-ranker: bad input is a usage error", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/t.jsonl`, '{"promptLength": 5, "outputLength": 3}\n'.repeat(30));
  await assert.rejects(() => main(["--out", `${dir}/r.json`]), UsageError);
  await assert.rejects(
    () => main(["--trace", `${dir}/t.jsonl`, "--out", `${dir}/r.json`]),
    (e) => e instanceof UsageError && /promptTokens/.test(e.message),
  );
  await assert.rejects(
    () => main(["--learnable", "100", "--dim", "1000", "--out", `${dir}/r.json`]),
    UsageError,
  );
  await assert.rejects(
    () =>
      Engine.create({
        model: presetModel("tiny"),
        plugins: { scheduler: { name: "ltr", options: { ranker: `${dir}/none.json` } } },
        log: () => {},
      }),
    UsageError,
  );
  await Deno.remove(dir, { recursive: true });
});
