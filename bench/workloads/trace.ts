/**
 * Trace files: JSONL in and out (one request per line), and import of Vidur-style CSV
 * (`num_prefill_tokens,num_decode_tokens[,arrived_at]`) and of vLLM's ShareGPT-format
 * JSON benchmark file. A malformed line is a UsageError naming the line and the reason.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import type { WorkloadRequest } from "./types.ts";
import type { TurnInfo } from "../../core/types.ts";

/** Serialize requests to JSONL (one object per line, stable key order). */
export function toJsonl(requests: readonly WorkloadRequest[]): string {
  let s = "";
  for (const r of requests) {
    const o: Record<string, unknown> = {
      id: r.id,
      arrivalTime: r.arrivalTime,
      promptLength: r.promptLength,
      outputLength: r.outputLength,
    };
    if (r.maxTokens !== undefined) o.maxTokens = r.maxTokens;
    if (r.programId !== undefined) o.programId = r.programId;
    if (r.toolTime !== undefined) o.toolTime = r.toolTime;
    if (r.turn !== undefined) o.turn = r.turn;
    if (r.promptTokens !== undefined) o.promptTokens = r.promptTokens;
    s += JSON.stringify(o) + "\n";
  }
  return s;
}

function turnInfo(v: unknown, where: string): TurnInfo {
  const o = v as Record<string, unknown>;
  if (
    typeof v !== "object" || v === null || Array.isArray(v) ||
    (o.last !== undefined && typeof o.last !== "boolean") ||
    (o.tool !== undefined && (typeof o.tool !== "string" || o.tool === ""))
  ) {
    throw new UsageError(
      `${where}: turn must be an object { "last"?: boolean, "tool"?: string }, got ${
        JSON.stringify(v)
      }`,
    );
  }
  const t: TurnInfo = {};
  if (o.last !== undefined) t.last = o.last as boolean;
  if (o.tool !== undefined) t.tool = o.tool as string;
  return t;
}

function positiveInt(v: unknown, what: string, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new UsageError(`${where}: ${what} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function time(v: unknown, what: string, where: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new UsageError(
      `${where}: ${what} must be a number of seconds >= 0, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/**
 * Parse JSONL. Each line is an object with `promptLength` (or `prompt_len`, or a
 * `promptTokens` array), `outputLength` (or `output_len`), and optionally `arrivalTime`
 * (`arrival_time`), `id`, `maxTokens` (`max_tokens`), `programId` (`program_id`), and for
 * multi-turn agents `toolTime` (`tool_time`: seconds after the program's previous request
 * ends that this one is sent) and `turn` (`{ "last": true }`, `{ "tool": "bash" }`).
 */
export function parseJsonl(text: string, file = "trace"): WorkloadRequest[] {
  const out: WorkloadRequest[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const where = `${file} line ${i + 1}`;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch {
      throw new UsageError(`${where}: not valid JSON`);
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      throw new UsageError(`${where}: expected a JSON object`);
    }
    let promptTokens: number[] | undefined;
    const tokens = o.promptTokens ?? o.prompt_tokens;
    if (tokens !== undefined) {
      if (!Array.isArray(tokens) || tokens.some((t) => !Number.isInteger(t) || t < 0)) {
        throw new UsageError(`${where}: promptTokens must be an array of token ids`);
      }
      promptTokens = tokens as number[];
    }
    const pl = o.promptLength ?? o.prompt_len ?? promptTokens?.length;
    const promptLength = positiveInt(pl, "promptLength", where);
    if (promptTokens && promptTokens.length !== promptLength) {
      throw new UsageError(`${where}: promptLength ${promptLength} differs from promptTokens`);
    }
    const outputLength = positiveInt(o.outputLength ?? o.output_len, "outputLength", where);
    const at = o.arrivalTime ?? o.arrival_time;
    const mt = o.maxTokens ?? o.max_tokens;
    const pid = o.programId ?? o.program_id;
    const tool = o.toolTime ?? o.tool_time;
    const turn = o.turn;
    const r: WorkloadRequest = {
      id: o.id === undefined ? `r${out.length}` : String(o.id),
      arrivalTime: at === undefined ? Number.NaN : time(at, "arrivalTime", where),
      promptLength,
      outputLength,
    };
    if (mt !== undefined) r.maxTokens = positiveInt(mt, "maxTokens", where);
    if (pid !== undefined) r.programId = String(pid);
    if (tool !== undefined) r.toolTime = time(tool, "toolTime", where);
    if (turn !== undefined) r.turn = turnInfo(turn, where);
    if (promptTokens) r.promptTokens = promptTokens;
    out.push(r);
  }
  if (out.length === 0) throw new UsageError(`${file}: no requests in the trace`);
  return out;
}

/**
 * Parse a Vidur-style CSV: a header with `num_prefill_tokens` and `num_decode_tokens`
 * (in any order; other columns ignored) and optionally `arrived_at` (seconds).
 */
export function parseCsv(text: string, file = "trace.csv"): WorkloadRequest[] {
  const lines = text.split("\n");
  const header = (lines[0] ?? "").trim().split(",").map((h) => h.trim());
  const ip = header.indexOf("num_prefill_tokens");
  const id = header.indexOf("num_decode_tokens");
  const ia = header.indexOf("arrived_at");
  if (ip < 0 || id < 0) {
    throw new UsageError(
      `${file} line 1: the header must name num_prefill_tokens and num_decode_tokens ` +
        `(and optionally arrived_at), got "${lines[0]?.trim() ?? ""}"`,
    );
  }
  const out: WorkloadRequest[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const where = `${file} line ${i + 1}`;
    const cells = line.split(",");
    if (cells.length < header.length) {
      throw new UsageError(`${where}: expected ${header.length} columns, got ${cells.length}`);
    }
    const num = (j: number) => {
      const s = cells[j].trim();
      const v = Number(s);
      return s === "" ? Number.NaN : v;
    };
    const r: WorkloadRequest = {
      id: `r${out.length}`,
      arrivalTime: ia < 0 ? Number.NaN : time(num(ia), "arrived_at", where),
      promptLength: positiveInt(num(ip), "num_prefill_tokens", where),
      outputLength: positiveInt(num(id), "num_decode_tokens", where),
    };
    out.push(r);
  }
  if (out.length === 0) throw new UsageError(`${file}: no requests in the trace`);
  return out;
}

/** Options of {@link parseShareGptJson}. */
export interface ShareGptOptions {
  /** Token count of a text; about 4 bytes of UTF-8 per token when absent. */
  countTokens?: (text: string) => number;
  /**
   * Apply vLLM's benchmark filter (drop prompts or outputs under 4 tokens, prompts over
   * 1024 and prompt plus output over 2048). On by default.
   */
  vllmFilter?: boolean;
}

const encoder = new TextEncoder();

/** A rough token count: one token per 4 bytes of UTF-8, at least 1. */
export function approxTokens(text: string): number {
  return Math.max(1, Math.ceil(encoder.encode(text).length / 4));
}

/**
 * Import vLLM's ShareGPT-format JSON (an array of `{ id?, conversations: [{ from, value }] }`):
 * the first turn is the prompt, the second the output, as `vllm bench serve` does.
 */
export function parseShareGptJson(
  text: string,
  file = "sharegpt.json",
  options: ShareGptOptions = {},
): WorkloadRequest[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(data)) throw new UsageError(`${file}: expected a JSON array of conversations`);
  const count = options.countTokens ?? approxTokens;
  const filter = options.vllmFilter ?? true;
  const out: WorkloadRequest[] = [];
  for (let i = 0; i < data.length; i++) {
    const e = data[i] as { id?: unknown; conversations?: unknown };
    const conv = e?.conversations;
    if (!Array.isArray(conv)) {
      throw new UsageError(`${file} entry ${i}: "conversations" must be an array of turns`);
    }
    if (conv.length < 2) continue; // vLLM skips single-turn entries
    const [a, b] = conv as { value?: unknown }[];
    if (typeof a?.value !== "string" || typeof b?.value !== "string") {
      throw new UsageError(`${file} entry ${i}: each turn needs a string "value"`);
    }
    const p = count(a.value);
    const d = count(b.value);
    if (filter && (p < 4 || d < 4 || p > 1024 || p + d > 2048)) continue;
    out.push({
      id: e.id === undefined ? `r${out.length}` : String(e.id),
      arrivalTime: Number.NaN,
      promptLength: p,
      outputLength: d,
    });
  }
  if (out.length === 0) throw new UsageError(`${file}: no usable conversations`);
  return out;
}

/** Read a trace file by extension: .jsonl, .csv or .json (ShareGPT format). */
export async function readTrace(
  path: string,
  options: ShareGptOptions = {},
): Promise<WorkloadRequest[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`cannot read trace ${path}: ${(e as Error).message}`, "trace");
  }
  if (path.endsWith(".jsonl")) return parseJsonl(text, path);
  if (path.endsWith(".csv")) return parseCsv(text, path);
  if (path.endsWith(".json")) return parseShareGptJson(text, path, options);
  throw new UsageError(
    `trace ${path}: the extension must be .jsonl, .csv or .json (ShareGPT)`,
    "trace",
  );
}
