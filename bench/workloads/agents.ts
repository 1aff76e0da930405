/**
 * Multi-turn agent programs (Continuum, spec section 3(e)): each program is a chain of
 * LLM requests separated by tool calls. A turn's prompt is the whole context so far (the
 * previous prompt, the previous output, then the tool's output), so each follow-up can
 * reuse the previous turn's KV. Programs arrive as a Poisson process; turns, context
 * growth and tool pauses are drawn from the published trace statistics:
 *
 * | workload    | turns (mean, sd) | tool pause s (mean, sd) | final context tokens (mean, sd) |
 * | ----------- | ---------------- | ----------------------- | ------------------------------- |
 * | `swe-agent` | 10.9, 2.1        | 0.925, 3.55             | 70,126, 19,732                  |
 * | `web-agent` | 6.3, 2.3         | 1.923, 2.133            | 93,256, 68,687 (then x 0.4)     |
 *
 * Pauses are log-normal per tool, the tools' medians spread around one another and the
 * mixture matched to the trace's mean and spread (heavy tails: the slowest tenth of the
 * calls take most of the time).
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { Rng } from "../../kernels/sim/rng.ts";
import type { WorkloadRequest } from "./types.ts";
import { checkArrival } from "./arrivals.ts";

/** Statistics an agent workload is drawn from. */
export interface AgentWorkloadSpec {
  /** Name (`--workload`). */
  readonly name: string;
  /** One line for reports. */
  readonly description: string;
  /** Turns per program: mean and standard deviation (rounded normal, at least 1). */
  readonly turns: readonly [number, number];
  /** Final context per program, tokens: mean and standard deviation (normal, clipped). */
  readonly context: readonly [number, number];
  /** Scale applied to contexts (the web trace was replayed at 0.4 to fit 128k). */
  readonly contextScale: number;
  /** First prompt (system prompt and task), tokens. */
  readonly firstPrompt: number;
  /** Output per turn, tokens: median and log-space sigma (log-normal). */
  readonly output: readonly [number, number];
  /** Tool pauses, seconds: mean and log-space sigma of each tool's log-normal. */
  readonly pause: readonly [number, number];
  /** Tools, with each one's median relative to the others'. */
  readonly tools: readonly (readonly [string, number])[];
}

/** The smallest tool output, tokens. */
const MIN_TOOL_TOKENS = 16;

/** The built-in agent workloads. */
export const AGENT_WORKLOADS: Readonly<Record<string, AgentWorkloadSpec>> = Object.freeze({
  "swe-agent": {
    name: "swe-agent",
    description: "SWE-Bench coding agent (mini-swe-agent): 10.9 turns, bash tools, 70k context",
    turns: [10.9, 2.1],
    context: [70_126, 19_732],
    contextScale: 1,
    firstPrompt: 2_000,
    output: [250, 0.6],
    // sigma 1.66 from mean 0.925 s and sd 3.55 s: ln(1 + sd^2 / mean^2) = 1.66^2.
    pause: [0.925, 1.66],
    tools: [
      ["ls", 0.3],
      ["cat", 0.4],
      ["cd", 0.2],
      ["grep", 0.6],
      ["sed", 0.5],
      [
        "python",
        2,
      ],
      ["pytest", 4],
      ["git", 0.8],
    ],
  },
  "web-agent": {
    name: "web-agent",
    description: "BFCL v4 web-search agent: 6.3 turns, search and fetch tools, 37k context",
    turns: [6.3, 2.3],
    context: [93_256, 68_687],
    contextScale: 0.4,
    firstPrompt: 1_500,
    output: [150, 0.6],
    pause: [1.923, 0.9],
    tools: [["search", 0.7], ["fetch_url", 1.4]],
  },
});

/** Names of the agent workloads. */
export function agentWorkloadNames(): string[] {
  return Object.keys(AGENT_WORKLOADS);
}

/** Options of {@link generateAgentWorkload}. */
export interface AgentWorkloadOptions {
  /** Workload name (`swe-agent`, `web-agent`). */
  workload: string;
  /** Programs to generate. */
  programs: number;
  /** Programs per second (Poisson). */
  rate: number;
  /** Seed of everything drawn. */
  seed: number;
  /** Longest context the model takes: a program's contexts shrink to fit it. */
  maxModelLen?: number;
  /** Multiply contexts by this (beyond the workload's own scale; default 1). */
  contextScale?: number;
  /**
   * What the trace's "tokens per program" counts (the paper leaves it open): the prompt
   * tokens of all its turns together ("sum", the default: contexts grow about 0.9k tokens a
   * turn on `swe-agent`), or its final context ("final": about 6.4k a turn).
   */
  tokensPerProgram?: "sum" | "final";
  /**
   * Repeat each program this many times over, every length divided by it (the paper's
   * turn-scaling experiment: more turns, the same final context). Default 1.
   */
  repeat?: number;
}

/** Generate agent programs: every turn is a request; follow-ups carry `toolTime`. */
export function generateAgentWorkload(o: AgentWorkloadOptions): WorkloadRequest[] {
  const spec = AGENT_WORKLOADS[o.workload];
  if (!spec) {
    throw new UsageError(
      `unknown agent workload "${o.workload}"; known: ${agentWorkloadNames().join(", ")}`,
      "workload",
    );
  }
  if (!Number.isInteger(o.programs) || o.programs < 1 || o.programs > 1e6) {
    throw new UsageError(`programs must be an integer in [1, 1000000], got ${o.programs}`);
  }
  checkArrival({ kind: "poisson", rate: o.rate });
  const repeat = o.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100) {
    throw new UsageError(`repeat must be an integer in [1, 100], got ${repeat}`, "repeat");
  }
  const rng = new Rng(o.seed);
  const arrivals = rng.fork(1), shape = rng.fork(2), pauses = rng.fork(3);
  const scale = spec.contextScale * (o.contextScale ?? 1);
  const pauseMu = toolMedians(spec);
  const sum = (o.tokensPerProgram ?? "sum") === "sum";
  const out: WorkloadRequest[] = [];
  let t = 0;
  for (let p = 0; p < o.programs; p++) {
    t += arrivals.exp(1 / o.rate);
    const turns = Math.max(1, Math.round(spec.turns[0] + spec.turns[1] * shape.normal()));
    const outputs = Array.from(
      { length: turns },
      () => Math.max(1, Math.round(spec.output[0] * Math.exp(spec.output[1] * shape.normal()))),
    );
    const tokens = scale *
      Math.max(spec.context[0] / 4, spec.context[0] + spec.context[1] * shape.normal());
    let first = Math.max(MIN_TOOL_TOKENS, Math.round(scale * spec.firstPrompt));
    // Turn j's growth (its output and the tool's output) is a share w_j of the total growth.
    const weights = Array.from({ length: Math.max(0, turns - 1) }, () => shape.exp(1));
    const total = weights.reduce((s, x) => s + x, 0);
    let growth: number;
    if (sum) {
      // Prompts add up to `tokens`: growth j is in the prompts of the turns after j.
      const later = weights.reduce((s, w, j) => s + w * (turns - 1 - j), 0);
      growth = later > 0 ? Math.max(0, tokens - turns * first) * total / later : 0;
    } else growth = Math.max(0, tokens - first);
    // Each turn adds its output and a tool output (at least MIN_TOOL_TOKENS); the tool
    // outputs share the rest of the growth. A program too long for the model keeps a
    // shorter first prompt and tool outputs, and past that is truncated at the context.
    const said = outputs.slice(0, -1).reduce((s, x) => s + x, 0);
    const least = said + MIN_TOOL_TOKENS * (turns - 1);
    const cap = o.maxModelLen === undefined ? Infinity : o.maxModelLen - outputs[turns - 1] - 1;
    const final = Math.min(first + Math.max(growth, least), cap);
    let room = final - first - said;
    if (room < MIN_TOOL_TOKENS * (turns - 1)) {
      room = MIN_TOOL_TOKENS * (turns - 1);
      first = Math.max(MIN_TOOL_TOKENS, final - said - room);
    }
    // The program's turns: tool, output, the pause after it and the tokens it adds.
    const base = outputs.map((output, k) => {
      const [tool] = spec.tools[Math.floor(pauses.next() * spec.tools.length)];
      const more = k < turns - 1 || repeat > 1;
      const pause = more ? Math.exp(pauseMu.get(tool)! + spec.pause[1] * pauses.normal()) : 0;
      const share = room - MIN_TOOL_TOKENS * (turns - 1);
      const toolTokens = k < turns - 1
        ? MIN_TOOL_TOKENS + Math.floor(share * weights[k] / total)
        : MIN_TOOL_TOKENS;
      return { tool, output, pause, toolTokens };
    });
    // Repeated `repeat` times with lengths divided by it: more turns, the same final context.
    const n = turns * repeat;
    let context = first, pause = 0;
    for (let k = 0; k < n; k++) {
      const b = base[k % turns];
      const output = Math.max(1, Math.round(b.output / repeat));
      const req: WorkloadRequest = {
        id: `p${p}.t${k}`,
        arrivalTime: t,
        promptLength: Math.min(context, Math.max(first, Math.floor(final))),
        outputLength: output,
        programId: `p${p}`,
        turn: k === n - 1 ? { last: true } : { tool: b.tool },
      };
      if (k > 0) req.toolTime = pause;
      out.push(req);
      pause = b.pause;
      context += output + Math.max(1, Math.round(b.toolTokens / repeat));
    }
  }
  return out;
}

/** Log-space mean of each tool's pause, so that the mixture has the spec's mean. */
function toolMedians(spec: AgentWorkloadSpec): Map<string, number> {
  const sigma = spec.pause[1];
  const mixMean = spec.tools.reduce((s, [, m]) => s + m, 0) / spec.tools.length *
    Math.exp(sigma * sigma / 2);
  const shift = Math.log(spec.pause[0] / mixMean);
  return new Map(spec.tools.map(([name, m]) => [name, Math.log(m) + shift]));
}
