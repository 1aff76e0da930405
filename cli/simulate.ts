/**
 * `main.ts simulate`: run a workload through the engine on a simulated GPU and print
 * `vllm bench serve`-style metrics; `--out DIR` writes `result.json` and SVG charts.
 *
 * The workload and deployment flags defined here are shared by `compare` and `capacity`.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { Model } from "../core/model/types.ts";
import { loadModel } from "../core/model/load.ts";
import {
  type LoadSpec,
  type SimRequest,
  simulate,
  type SimulationOptions,
  type SimulationResult,
} from "../core/simulation.ts";
import type { Slo } from "../core/metrics/summary.ts";
import { builtinRegistry } from "../plugins/builtins.ts";
import { flagsHelp, type FlagSpecs } from "./flags.ts";
import { ENGINE_FLAGS, type ParsedCommand, parseEngineCommand } from "./engine_flags.ts";
import { findModelProfile, modelProfileNames, profileFromConfig } from "../kernels/sim/models.ts";
import { simModel } from "../kernels/sim/sim_model.ts";
import { gpuNames, gpuProfile } from "../kernels/sim/hardware.ts";
import { kvCapacityBlocks } from "../kernels/sim/kv_capacity.ts";
import { generateWorkload } from "../bench/workloads/generate.ts";
import { workloadNames, workloadSpec } from "../bench/workloads/catalog.ts";
import { AGENT_WORKLOADS, generateAgentWorkload } from "../bench/workloads/agents.ts";
import type { ArrivalSpec } from "../bench/workloads/arrivals.ts";
import { arrivalTimes } from "../bench/workloads/arrivals.ts";
import { readTrace, toJsonl } from "../bench/workloads/trace.ts";
import { Rng } from "../kernels/sim/rng.ts";
import { progressBar } from "../bench/report/progress.ts";
import { charts, resultJson, summaryText, writeOutputs } from "../bench/report/sim_report.ts";

/** Workload, load, deployment and SLO flags shared by the simulation commands. */
export const SIM_FLAGS: FlagSpecs = {
  model: {
    type: "string",
    description: `model profile (${
      modelProfileNames().join(", ")
    }) or any real-model preset/folder`,
    default: "llama-3-8b",
  },
  workload: {
    type: "string",
    description: `generated workload: ${
      workloadNames().join(", ")
    }; multi-turn agents (--requests counts programs, --rate programs/s): ${
      Object.keys(AGENT_WORKLOADS).join(", ")
    }`,
    default: "sharegpt",
  },
  trace: {
    type: "string",
    description: "read requests from a .jsonl, Vidur .csv or ShareGPT .json file",
  },
  requests: {
    type: "int",
    description: "number of requests",
    default: 1000,
    min: 1,
    max: 10_000_000,
  },
  "system-prompt": {
    type: "int",
    description: "prepend one shared system prompt of this many tokens to every request",
    default: 0,
    min: 0,
    max: 1_000_000,
  },
  rate: {
    type: "number",
    description: "mean arrival rate, requests/s",
    default: 4,
    min: 1e-6,
    max: 1e6,
  },
  arrival: {
    type: "string",
    description: "arrival process (default: the workload's own)",
    choices: ["poisson", "gamma", "burst", "closed"],
  },
  cv: {
    type: "number",
    description: "coefficient of variation of gamma arrivals",
    default: 1,
    min: 1e-3,
    max: 100,
  },
  clients: {
    type: "int",
    description: "closed loop: concurrent clients",
    default: 10,
    min: 1,
    max: 100_000,
  },
  "think-time": {
    type: "number",
    description: "closed loop: seconds between a response and the next request",
    default: 0,
    min: 0,
    max: 3600,
  },
  retries: {
    type: "int",
    description: "closed loop: extra attempts of a request that misses the SLA",
    default: 0,
    min: 0,
    max: 100,
  },
  gpu: {
    type: "string",
    description: `GPU profile: ${gpuNames().join(", ")}, or cpu (fitted)`,
    default: "a100-80g",
  },
  tp: { type: "int", description: "tensor-parallel degree", default: 1, min: 1, max: 64 },
  "cpu-profile": {
    type: "string",
    description: "fitted profile read with --gpu cpu (written by `main.ts profile`)",
    default: "bench/results/cpu-profile.json",
  },
  "kv-tokens": {
    type: "int",
    description: "KV capacity in tokens (default: from GPU memory)",
    min: 16,
  },
  "memory-utilization": {
    type: "number",
    description: "fraction of GPU memory for weights and KV",
    default: 0.9,
    min: 0.05,
    max: 1,
  },
  "slo-ttft": { type: "number", description: "SLO on TTFT, ms (goodput)", min: 0 },
  "slo-tpot": { type: "number", description: "SLO on TPOT, ms (goodput)", min: 0 },
  "slo-e2el": { type: "number", description: "SLO on E2EL, ms (goodput)", min: 0 },
  "slo-max-tpot": {
    type: "number",
    description: "SLO on the largest inter-token gap, ms (goodput, closed-loop SLA)",
    min: 0,
  },
  "fast-forward": {
    type: "boolean",
    description: "compute runs of identical decode steps at once",
    default: true,
  },
  "max-time": { type: "number", description: "stop at this simulated time, seconds", min: 0 },
};

const OWN_FLAGS: FlagSpecs = {
  ...SIM_FLAGS,
  out: { type: "string", description: "directory for result.json and SVG charts" },
  "save-trace": { type: "string", description: "write the generated workload as JSONL" },
};

/** Everything a simulation needs, built from the command line. */
export interface SimSetup {
  /** Engine options (model, plugins, KV size). */
  engine: SimulationOptions["engine"];
  /** The workload at the given rate. */
  requests: SimRequest[];
  /** Open or closed loop. */
  load: LoadSpec;
  /** SLOs for goodput. */
  slo: Slo | undefined;
  /** Fast-forward on or off. */
  fastForward: boolean;
  /** Stop time. */
  maxTime: number | undefined;
  /** The settings, for the JSON report. */
  config: Record<string, unknown>;
  /** Regenerate the workload at another Poisson rate (capacity search). */
  atRate(rate: number): SimRequest[];
}

/** A sim-aware parse of a command line (the `sim` executor registered). */
export function parseSimCommand(argv: string[], extra: FlagSpecs = {}): Promise<ParsedCommand> {
  return parseEngineCommand(argv, { ...OWN_FLAGS, ...extra }, builtinRegistry());
}

async function resolveModel(
  spec: string,
  seed: number,
): Promise<{ model: Model; profile: string }> {
  const p = findModelProfile(spec);
  if (p) return { model: simModel(p), profile: p.name };
  try {
    const model = await loadModel(spec, { seed });
    return { model, profile: profileFromConfig(model.name, model.config).name };
  } catch (e) {
    if (e instanceof UsageError) {
      throw new UsageError(
        `unknown model "${spec}": allowed are ${
          modelProfileNames().join(", ")
        } or a real-model preset (${e.message})`,
        "--model",
      );
    }
    throw e;
  }
}

function sloFrom(v: Record<string, unknown>): Slo | undefined {
  const slo: Slo = {
    ttft: v["slo-ttft"] as number | undefined,
    tpot: v["slo-tpot"] as number | undefined,
    e2el: v["slo-e2el"] as number | undefined,
    maxTpot: v["slo-max-tpot"] as number | undefined,
  };
  return Object.values(slo).some((x) => x !== undefined) ? slo : undefined;
}

/** Build the simulation from a parsed command line. */
export async function buildSimSetup(cmd: ParsedCommand): Promise<SimSetup> {
  const v = cmd.values;
  const seed = (cmd.setup.options.seed ?? 0) as number;
  const { model, profile } = await resolveModel(cmd.setup.modelSpec, seed);
  const gpu = v.gpu as string;
  const tp = v.tp as number;
  if (gpu !== "cpu") gpuProfile(gpu);
  const plugins = { ...cmd.setup.options.plugins };
  const exec = plugins.executor;
  if (exec && exec.name !== "sim") {
    throw new UsageError(`simulation runs the sim executor, not "${exec.name}"`, "--executor");
  }
  plugins.executor = {
    name: "sim",
    options: { gpu, tp, profileFile: v["cpu-profile"], ...(exec?.options ?? {}) },
  };
  const blockSize = cmd.setup.options.blockSize ?? 16;
  let numBlocks = cmd.setup.options.numBlocks;
  if (numBlocks === undefined && v["kv-tokens"] !== undefined) {
    numBlocks = Math.ceil((v["kv-tokens"] as number) / blockSize);
  }
  if (numBlocks === undefined && gpu !== "cpu") {
    const mp = findModelProfile(profile) ?? profileFromConfig(model.name, model.config);
    numBlocks = kvCapacityBlocks({
      hardware: gpuProfile(gpu),
      model: mp,
      tp,
      blockSize,
      memoryUtilization: v["memory-utilization"] as number,
    });
  }
  const maxModelLen = cmd.setup.options.maxModelLen ?? model.config.maxSeqLen;
  const arrivalKind = v.arrival as string | undefined;
  const rate = v.rate as number;
  const arrivalAt = (r: number): ArrivalSpec | undefined =>
    arrivalKind === "gamma"
      ? { kind: "gamma", rate: r, cv: v.cv as number }
      : arrivalKind === "burst"
      ? { kind: "burst" }
      : arrivalKind === "poisson" || arrivalKind === undefined
      ? { kind: "poisson", rate: r }
      : undefined;
  const trace = v.trace as string | undefined;
  const agents = !trace && (v.workload as string) in AGENT_WORKLOADS;
  if (agents && arrivalKind !== undefined && arrivalKind !== "poisson") {
    throw new UsageError(
      `agent workloads arrive as a Poisson process of programs; --arrival ${arrivalKind} is not supported with --workload ${v.workload}`,
      "--arrival",
    );
  }
  const burstDefault = !trace && !agents && arrivalKind === undefined &&
    workloadSpec(v.workload as string).defaultArrival === "burst";
  const base = trace
    ? await readTrace(trace, { countTokens: (t) => model.tokenizer.encode(t).length })
    : undefined;
  const system = v["system-prompt"] as number;
  const withSystem = (reqs: SimRequest[]): SimRequest[] =>
    system > 0
      ? reqs.map((q) => ({ ...q, promptLength: q.promptLength + system, sharedPrefix: system }))
      : reqs;
  const atRate = (r: number): SimRequest[] => withSystem(generateAt(r));
  const generateAt = (r: number): SimRequest[] => {
    if (base) {
      const reqs = base.slice(0, v.requests as number);
      // Arrivals missing from the trace (or overridden by --arrival) come from the process.
      const need = arrivalKind !== undefined || reqs.some((q) => !Number.isFinite(q.arrivalTime));
      if (!need) return reqs;
      const spec = arrivalAt(r) ?? { kind: "burst" as const };
      const times = arrivalTimes(spec, reqs.length, new Rng(seed).fork(2));
      return reqs.map((q, i) => ({ ...q, arrivalTime: times[i] }));
    }
    if (agents) {
      return generateAgentWorkload({
        workload: v.workload as string,
        programs: v.requests as number,
        rate: r,
        seed,
        maxModelLen,
      });
    }
    const spec = arrivalAt(r);
    return generateWorkload({
      workload: v.workload as string,
      requests: v.requests as number,
      seed,
      // A burst workload keeps its arrivals unless --arrival says otherwise.
      arrival: burstDefault ? undefined : spec,
      maxModelLen,
    });
  };
  const requests = atRate(rate);
  const slo = sloFrom(v);
  const load: LoadSpec = arrivalKind === "closed"
    ? {
      kind: "closed",
      clients: v.clients as number,
      thinkTime: v["think-time"] as number,
      retries: v.retries as number,
      sla: slo,
    }
    : { kind: "open" };
  const engine: SimulationOptions["engine"] = {
    ...cmd.setup.options,
    model,
    plugins,
    numBlocks,
  };
  const config: Record<string, unknown> = {
    workload: trace ? `trace:${trace}` : v.workload,
    requests: requests.length,
    arrival: arrivalKind ?? (trace ? "trace" : "default"),
    rate: arrivalKind === "closed" || arrivalKind === "burst" || burstDefault ? null : rate,
    model: model.name,
    gpu,
    tp,
    seed,
    numBlocks: numBlocks ?? null,
    blockSize,
    maxModelLen,
    plugins,
    slo: slo ?? null,
  };
  if (load.kind === "closed") {
    config.clients = load.clients;
    config.thinkTime = load.thinkTime;
    config.retries = load.retries;
  }
  return {
    engine,
    requests,
    load,
    slo,
    fastForward: v["fast-forward"] as boolean,
    maxTime: v["max-time"] as number | undefined,
    config,
    atRate,
  };
}

/** Run one simulation of a setup (with a progress bar on a terminal). */
export async function runSetup(
  s: SimSetup,
  label: string,
  requests: SimRequest[] = s.requests,
  engineOverride: Partial<SimulationOptions["engine"]> = {},
): Promise<SimulationResult> {
  const bar = progressBar(label);
  try {
    return await simulate({
      engine: { ...s.engine, ...engineOverride },
      requests,
      load: s.load,
      slo: s.slo,
      fastForward: s.fastForward,
      maxTime: s.maxTime,
      onProgress: (d, t) => bar.update(d, t),
    });
  } finally {
    bar.end();
  }
}

/** Help text. */
export function help(): string {
  return [
    "Usage: deno run -A main.ts simulate [flags] [--<slot> NAME --<slot>.<option> VALUE ...]",
    "",
    "Runs a workload through the engine on a simulated GPU (virtual clock).",
    "",
    ...flagsHelp(OWN_FLAGS),
    ...flagsHelp(Object.fromEntries(Object.entries(ENGINE_FLAGS).filter(([k]) => k !== "model"))),
  ].join("\n");
}

/** `simulate` command. */
export async function main(args: string[]): Promise<number> {
  const cmd = await parseSimCommand(args);
  const setup = await buildSimSetup(cmd);
  if (cmd.values["save-trace"]) {
    await Deno.writeTextFile(cmd.values["save-trace"] as string, toJsonl(setup.requests));
  }
  const t0 = performance.now();
  const result = await runSetup(setup, "simulate");
  const wall = (performance.now() - t0) / 1000;
  console.log(summaryText(result));
  console.log(
    `wall time ${wall.toFixed(2)} s: ${
      (setup.requests.length / wall).toFixed(0)
    } simulated requests/s, ` +
      `${(result.engine.steps / wall).toFixed(0)} steps/s`,
  );
  const out = cmd.values.out as string | undefined;
  if (out) {
    const files = await writeOutputs(
      out,
      { config: setup.config, ...resultJson(result) },
      charts([{ label: String(setup.config.workload), result }]),
    );
    console.log(`wrote ${files.join(", ")}`);
  }
  return 0;
}
