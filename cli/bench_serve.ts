/**
 * `bench-serve`: a load generator for any OpenAI-compatible server (Baton, vLLM, SGLang)
 * with `vllm bench serve` semantics: the same arrival process, the same timing of TTFT,
 * TPOT, ITL and E2EL, the same table and result JSON.
 *
 * ```
 * deno run -A main.ts bench-serve --url http://127.0.0.1:8000 --workload sharegpt \
 *   --rate 4 --num-prompts 200 --save-result
 * ```
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { flagsHelp, type FlagSpecs, parseFlags } from "./flags.ts";
import { calculateMetrics, type GoodputSlos } from "../server/loadgen/metrics.ts";
import { resultJson, resultTable, type RunInfo } from "../server/loadgen/report.ts";
import { runBenchmark } from "../server/loadgen/run.ts";
import { buildRequests } from "../server/loadgen/workload.ts";

/** Flags of `bench-serve`. */
export const BENCH_SERVE_FLAGS: FlagSpecs = {
  url: { type: "string", description: "base URL of the server", default: "http://127.0.0.1:8000" },
  endpoint: { type: "string", description: "API path", default: "/v1/completions" },
  backend: {
    type: "string",
    description: "API kind (default: from the endpoint)",
    choices: ["openai", "openai-chat"],
  },
  model: { type: "string", description: "model name (default: the server's first model)" },
  workload: {
    type: "string",
    description:
      "random, a workload name (sharegpt, arxiv, ...) or a trace file (.jsonl, .csv, .json)",
    default: "random",
  },
  "num-prompts": {
    type: "int",
    description: "number of requests",
    default: 1000,
    min: 1,
    max: 1e7,
  },
  rate: {
    type: "string",
    description: "requests per second, or inf for all at once",
    default: "inf",
  },
  "request-rate": { type: "string", description: "same as --rate (vLLM's name)" },
  burstiness: {
    type: "number",
    description: "gamma shape of the gaps; 1 is Poisson",
    default: 1,
    min: 0.001,
    max: 1000,
  },
  "max-concurrency": { type: "int", description: "most requests in flight", min: 1 },
  seed: { type: "int", description: "seed of lengths, prompts and send times", default: 0, min: 0 },
  "random-input-len": {
    type: "int",
    description: "random workload: prompt tokens",
    default: 1024,
    min: 1,
  },
  "random-output-len": {
    type: "int",
    description: "random workload: output tokens",
    default: 128,
    min: 1,
  },
  "random-range-ratio": {
    type: "number",
    description: "random workload: spread of lengths",
    default: 0,
    min: 0,
    max: 0.999,
  },
  temperature: {
    type: "number",
    description: "sampling temperature (0 is greedy)",
    default: 0,
    min: 0,
    max: 2,
  },
  "no-ignore-eos": {
    type: "boolean",
    description: "let requests stop at EOS (outputs then vary in length)",
  },
  "api-key": { type: "string", description: "Bearer key (default: $OPENAI_API_KEY)" },
  "percentile-metrics": {
    type: "string",
    description: "metrics with percentiles",
    default: "ttft,tpot,itl",
  },
  "metric-percentiles": { type: "string", description: "percentiles to report", default: "99" },
  goodput: { type: "list", description: "SLOs in ms, e.g. ttft:500,tpot:50" },
  "save-result": { type: "boolean", description: "write the result JSON" },
  "save-detailed": { type: "boolean", description: "keep per-request arrays in the JSON" },
  "result-dir": { type: "string", description: "folder of the result JSON" },
  "result-filename": { type: "string", description: "name of the result JSON" },
  label: { type: "string", description: "label of the result" },
  metadata: { type: "list", description: "KEY=VALUE pairs recorded in the JSON" },
  json: { type: "boolean", description: "print the result JSON instead of the table" },
};

/** Help text of `bench-serve`. */
export function help(): string {
  return ["Usage: deno run -A main.ts bench-serve [flags]", "", ...flagsHelp(BENCH_SERVE_FLAGS)]
    .join("\n");
}

/** Run `bench-serve`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const v = parseFlags(args, BENCH_SERVE_FLAGS).values;
  const base = (v.url as string).replace(/\/+$/, "");
  if (!/^https?:\/\//.test(base)) {
    throw new UsageError(`--url must start with http:// or https://, got ${base}`, "--url");
  }
  const endpoint = v.endpoint as string;
  const backend = (v.backend as "openai" | "openai-chat" | undefined) ??
    (endpoint.includes("chat") ? "openai-chat" : "openai");
  const rate = parseRate((v["request-rate"] ?? v.rate) as string);
  const selected = (v["percentile-metrics"] as string).split(",").map((s) => s.trim()).filter(
    Boolean,
  );
  for (const s of selected) {
    if (!["ttft", "tpot", "itl", "e2el"].includes(s)) {
      throw new UsageError(
        `--percentile-metrics: unknown metric "${s}"; allowed: ttft, tpot, itl, e2el`,
        "--percentile-metrics",
      );
    }
  }
  const percentiles = (v["metric-percentiles"] as string).split(",").map(Number);
  if (percentiles.some((p) => !(p >= 0 && p <= 100))) {
    throw new UsageError(
      "--metric-percentiles: each must be a number from 0 to 100",
      "--metric-percentiles",
    );
  }
  const slos = parseGoodput((v.goodput as string[] | undefined) ?? []);
  const metadata = parseMetadata((v.metadata as string[] | undefined) ?? []);
  const key = (v["api-key"] as string | undefined) ?? Deno.env.get("OPENAI_API_KEY");
  const headers: Record<string, string> = key ? { Authorization: `Bearer ${key}` } : {};

  const card = await modelCard(base, headers, v.model as string | undefined);
  const requests = await buildRequests({
    workload: v.workload as string,
    count: v["num-prompts"] as number,
    seed: v.seed as number,
    randomInputLen: v["random-input-len"] as number,
    randomOutputLen: v["random-output-len"] as number,
    randomRangeRatio: v["random-range-ratio"] as number,
    maxModelLen: card.maxModelLen,
    vocabSize: card.vocabSize,
    tokenIds: backend === "openai",
    templateTokens: backend === "openai-chat" ? 64 : 0,
  });
  const progress = Deno.stderr.isTerminal();
  const { outputs, duration } = await runBenchmark({
    url: base + endpoint,
    backend,
    model: card.id,
    requests,
    rate,
    burstiness: v.burstiness as number,
    maxConcurrency: v["max-concurrency"] as number | undefined,
    seed: v.seed as number,
    extraBody: { temperature: v.temperature, ...(v["no-ignore-eos"] ? {} : { ignore_eos: true }) },
    headers,
    onDone: progress
      ? (done, total) =>
        Deno.stderr.writeSync(new TextEncoder().encode(`\r${done}/${total} requests`))
      : undefined,
  });
  if (progress) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  const m = calculateMetrics(outputs, duration, slos);
  const info: RunInfo = {
    backend,
    label: (v.label as string | undefined) ?? null,
    modelId: card.id,
    numPrompts: requests.length,
    requestRate: rate,
    burstiness: v.burstiness as number,
    maxConcurrency: (v["max-concurrency"] as number | undefined) ?? null,
    workload: v.workload as string,
    metadata,
  };
  const goodput = Object.keys(slos).length > 0;
  const json = resultJson(info, m, outputs, duration, {
    selected,
    percentiles,
    goodput,
    detailed: !!v["save-detailed"],
  });
  if (v.json) console.log(JSON.stringify(json, null, 2));
  else console.log(resultTable(info, m, duration, { selected, percentiles, goodput }));
  const firstError = outputs.find((o) => !o.success)?.error;
  if (firstError) console.error(`first failure: ${firstError}`);
  if (v["save-result"] || v["result-filename"]) {
    const dir = (v["result-dir"] as string | undefined) ?? ".";
    const name = (v["result-filename"] as string | undefined) ??
      `${info.label ?? backend}-${Number.isFinite(rate) ? rate : "inf"}qps${
        info.maxConcurrency !== null ? `-concurrency${info.maxConcurrency}` : ""
      }-${card.id.split("/").at(-1)}-${json.date}.json`;
    await Deno.mkdir(dir, { recursive: true });
    const path = `${dir}/${name}`;
    await Deno.writeTextFile(path, JSON.stringify(json));
    console.error(`result written to ${path}`);
  }
  return m.completed === 0 ? 1 : 0;
}

function parseRate(raw: string): number {
  if (raw === "inf" || raw === "Infinity") return Infinity;
  const r = Number(raw);
  if (!(r > 0 && r <= 1e6)) {
    throw new UsageError(`--rate must be a number in (0, 1e6] or inf, got ${raw}`, "--rate");
  }
  return r;
}

function parseGoodput(pairs: string[]): GoodputSlos {
  const out: GoodputSlos = {};
  for (const pair of pairs) {
    const [k, val] = pair.split(":");
    const n = Number(val);
    if (!["ttft", "tpot", "e2el"].includes(k) || !(n >= 0)) {
      throw new UsageError(`--goodput: "${pair}" must be ttft|tpot|e2el:<ms, >= 0>`, "--goodput");
    }
    out[k as keyof GoodputSlos] = n;
  }
  return out;
}

function parseMetadata(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf("=");
    if (i <= 0) throw new UsageError(`--metadata: "${p}" must be KEY=VALUE`, "--metadata");
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

async function modelCard(
  base: string,
  headers: Record<string, string>,
  wanted: string | undefined,
): Promise<{ id: string; maxModelLen?: number; vocabSize?: number }> {
  let res: Response;
  try {
    res = await fetch(`${base}/v1/models`, { headers });
  } catch (e) {
    throw new UsageError(`cannot reach ${base}: ${(e as Error).message}`, "--url");
  }
  if (res.status !== 200) {
    const text = await res.text();
    throw new UsageError(
      `${base}/v1/models answered ${res.status}: ${text.slice(0, 200)}`,
      "--url",
    );
  }
  const list = (await res.json()).data as {
    id: string;
    max_model_len?: number;
    vocab_size?: number;
  }[];
  const card = wanted === undefined ? list[0] : list.find((m) => m.id === wanted) ?? { id: wanted };
  if (card === undefined) throw new UsageError(`${base} serves no model`, "--model");
  return { id: card.id, maxModelLen: card.max_model_len, vocabSize: card.vocab_size };
}
