import { conformance } from "../../plugins/testing.ts";
import { sarathi } from "../../policies/sarathi/mod.ts";
import { orca } from "../../policies/orca/mod.ts";
import { fasterTransformer } from "../../policies/fastertransformer/mod.ts";
import { simpleChunking } from "../../policies/simple_chunking/mod.ts";
import { pastFuture } from "../../policies/past_future/mod.ts";
import { lightllmRouter } from "../../policies/past_future/router.ts";
import { reserveMax } from "../../policies/reserve_max/mod.ts";
import { oracleAdmission } from "../../policies/oracle_admission/mod.ts";
import { ltr } from "../../policies/ltr/mod.ts";
import { mlfq } from "../../policies/mlfq/mod.ts";
import { oracleSjf, oracleSrtf } from "../../policies/oracle_sjf/mod.ts";
import { ttl } from "../../policies/continuum/mod.ts";
import { programFcfs } from "../../policies/continuum/program_fcfs.ts";
import { ngram } from "../../policies/speculation/ngram.ts";
import { draftModel } from "../../policies/speculation/draft_model.ts";
import type { Plugin } from "../../plugins/define.ts";

// Every plugin of this folder keeps the rules of its slot, in a roomy and a tight pool.
const cases: [Plugin, Record<string, unknown>][] = [
  [sarathi, {}],
  [sarathi, { tokenBudget: 64 }],
  [orca, { reserve: "max-tokens" }],
  [fasterTransformer, { reserve: "max-tokens" }],
  [simpleChunking, { chunkSize: 64 }],
  [pastFuture, {}],
  [lightllmRouter, {}],
  [reserveMax, {}],
  [oracleAdmission, {}],
  [ltr, {}],
  [ltr, { predictor: "noisy-oracle", tau: 0.5, starveLimit: 5 }],
  [mlfq, { baseQuantum: 0.02 }],
  [oracleSjf, {}],
  [oracleSrtf, {}],
  [programFcfs, {}],
  [ttl, {}],
  [ttl, { mode: "fixed" }],
  [ngram, {}],
  [ngram, { k: 8, maxNgram: 1 }],
  [draftModel, { model: "tiny", executor: "reference", k: 2 }],
];

for (const [plugin, options] of cases) {
  Deno.test(`conformance: ${plugin.slot} ${plugin.name} ${JSON.stringify(options)}`, async () => {
    const failed = (await conformance(plugin, { options })).filter((r) => !r.ok);
    if (failed.length > 0) {
      throw new Error(failed.map((r) => `${r.rule}: ${r.detail}`).join("\n"));
    }
  });
}
