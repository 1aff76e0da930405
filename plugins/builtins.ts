/**
 * The slots this engine offers and the plugins it ships.
 *
 * @module
 */

import type { Plugin } from "./define.ts";
import { Registry, type SlotSpec } from "./registry.ts";
import { fcfs } from "../policies/fcfs/mod.ts";
import { priority } from "../policies/priority/mod.ts";
import { watermark } from "../policies/watermark/mod.ts";
import { vllmBatcher } from "../policies/vllm/mod.ts";
import { prefillFirst } from "../policies/prefill_first/mod.ts";
import { lruPrefix } from "../policies/lru_prefix/mod.ts";
import { relay } from "../policies/relay/mod.ts";
import { referenceExecutor } from "../kernels/reference/plugin.ts";
import { wasmExecutor } from "../kernels/wasm/plugin.ts";
import { webgpuExecutor } from "../kernels/webgpu/executor.ts";
import { simExecutor } from "../kernels/sim/plugin.ts";
import { sarathi } from "../policies/sarathi/mod.ts";
import { orca } from "../policies/orca/mod.ts";
import { fasterTransformer } from "../policies/fastertransformer/mod.ts";
import { simpleChunking } from "../policies/simple_chunking/mod.ts";
import { pastFuture } from "../policies/past_future/mod.ts";
import { lightllmRouter } from "../policies/past_future/router.ts";
import { reserveMax } from "../policies/reserve_max/mod.ts";
import { oracleAdmission } from "../policies/oracle_admission/mod.ts";
import { ltr } from "../policies/ltr/mod.ts";
import { mlfq } from "../policies/mlfq/mod.ts";
import { oracleSjf, oracleSrtf } from "../policies/oracle_sjf/mod.ts";
import { ttl } from "../policies/continuum/mod.ts";
import { programFcfs } from "../policies/continuum/program_fcfs.ts";
import { noSpeculation } from "../policies/speculation/none.ts";
import { ngram } from "../policies/speculation/ngram.ts";
import { simDraft } from "../policies/speculation/sim_draft.ts";
import { draftModel } from "../policies/speculation/draft_model.ts";
import { smartspec } from "../policies/smartspec/mod.ts";

/** The built-in slots, in the order `--help` lists them. */
export const BUILTIN_SLOTS: readonly SlotSpec[] = [
  {
    name: "scheduler",
    apiVersion: 1,
    defaultPlugin: "fcfs",
    description: "order of candidates and preemption victims",
  },
  {
    name: "admission",
    apiVersion: 1,
    defaultPlugin: "watermark",
    description: "may a waiting request start now, given memory",
  },
  {
    name: "batcher",
    apiVersion: 1,
    defaultPlugin: "vllm",
    description: "tokens per request in this iteration under budgets",
  },
  {
    name: "kvcache",
    apiVersion: 1,
    defaultPlugin: "lru-prefix",
    description: "prefix reuse and eviction order of cached blocks",
  },
  {
    name: "executor",
    apiVersion: 1,
    defaultPlugin: "reference",
    description: "runs one batch (real tensors or a simulated GPU)",
  },
  {
    name: "speculation",
    apiVersion: 1,
    defaultPlugin: "none",
    description: "draft tokens the target verifies in the same pass (speculative decoding)",
  },
];

/** The built-in plugins. */
export const BUILTIN_PLUGINS: readonly Plugin[] = [
  fcfs,
  priority,
  watermark,
  vllmBatcher,
  prefillFirst,
  lruPrefix,
  relay,
  referenceExecutor,
  wasmExecutor,
  webgpuExecutor,
  simExecutor,
  sarathi,
  orca,
  fasterTransformer,
  simpleChunking,
  pastFuture,
  lightllmRouter,
  reserveMax,
  oracleAdmission,
  ltr,
  mlfq,
  oracleSjf,
  oracleSrtf,
  programFcfs,
  ttl,
  noSpeculation,
  ngram,
  simDraft,
  draftModel,
  smartspec,
] as Plugin[];

/** A fresh registry holding the built-in slots and plugins. */
export function builtinRegistry(): Registry {
  const r = new Registry();
  for (const s of BUILTIN_SLOTS) r.defineSlot(s);
  for (const p of BUILTIN_PLUGINS) r.register(p);
  return r;
}
