/**
 * Run by `permissions_test.ts` under `deno run` with no permission flags: builds a
 * two-thread wasm executor and runs one step, printing the sampled token. With
 * `--leave-open` it does not close the executor (the process must exit all the same).
 *
 * @module
 */

import { presetModel } from "../../../core/model/load.ts";
import { wasmExecutor } from "../../../kernels/wasm/plugin.ts";
import { context, GREEDY } from "./_scenario.ts";

const exec = await wasmExecutor.create(
  wasmExecutor.options.parse({ threads: 2 }),
  context(presetModel("tiny"), 4, 8),
);
const out = await exec.run({
  step: 0,
  numTokens: 3,
  numDecodes: 0,
  sequences: [{
    id: "x",
    tokens: [5, 6, 7],
    startPos: 0,
    blockTable: [0],
    sample: true,
    sampling: GREEDY,
    outputIndex: 0,
  }],
});
if (!Deno.args.includes("--leave-open")) await exec.close?.();
console.log(`token ${out.tokens[0]}`);
