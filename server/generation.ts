/**
 * One HTTP generation request in the engine: its choices (one engine request each, `n`
 * per prompt), their tokens as they arrive, latency metrics, and abort. The handler
 * decides how to deliver it (a stream of chunks or one JSON body).
 *
 * @module
 */

import type { FinishReason, RequestEvent, RequestInput, TokenLogprob } from "../core/types.ts";
import type { ServedModel, ServingEngine } from "./engine_port.ts";
import type { GenerationRequest } from "./openai_schema.ts";
import type { ServerMetrics } from "./metrics.ts";
import { badRequest } from "./errors.ts";

/** One prompt ready for the engine. */
export interface PreparedPrompt {
  /** Token ids, when the server tokenized it (chat, or token-id prompts). */
  tokens?: number[];
  /** Text for the engine to tokenize. */
  text?: string;
  /** Cap on generated tokens. */
  maxTokens: number;
}

/** One choice: an engine request and what it produced so far. */
export interface Choice {
  /** Index in `choices`. */
  readonly index: number;
  /** The engine's request id. */
  engineId: string;
  /** Output text pieces (kept only when not streaming). */
  readonly pieces: string[];
  /** Token ids produced. */
  readonly tokens: number[];
  /** Log-probabilities per token, when asked for. */
  readonly logprobs: TokenLogprob[];
  /** Performance time of the previous token, ms, or -1. */
  lastAt: number;
  /** Finish reason once ended. */
  finishReason: FinishReason | undefined;
  /** Error message when it failed. */
  error: string | undefined;
  /** Prompt tokens (from the engine's finish event). */
  promptTokens: number;
  /** Prompt tokens served from the prefix cache. */
  cachedTokens: number;
  /** Generated tokens (the engine's count once finished). */
  completionTokens: number;
}

/** Callbacks of a running generation. */
export interface GenerationSink {
  /** A choice produced text (possibly empty while a UTF-8 character is partial). */
  token(choice: Choice, text: string, logprob: TokenLogprob | undefined): void;
  /** A choice ended; `tail` is text released at the end (held for stop strings). */
  finish(choice: Choice, tail: string): void;
  /** Every choice ended. */
  done(): void;
}

/**
 * Turn a validated request into prompts for the engine: render chat templates, check
 * lengths against the context, and fill the default token cap.
 */
export function preparePrompts(req: GenerationRequest, model: ServedModel): PreparedPrompt[] {
  const limit = model.maxModelLen;
  const field = req.kind === "chat" ? "messages" : "prompt";
  const out: PreparedPrompt[] = [];
  if (req.kind === "chat") {
    const text = model.tokenizer.applyChatTemplate(req.messages!, { addGenerationPrompt: true });
    out.push(withCap({ tokens: encodeWithBos(model, text) }));
  } else {
    for (const p of req.prompts) {
      if ("tokens" in p) {
        const bad = p.tokens.findIndex((t) => t >= model.tokenizer.vocabSize);
        if (bad >= 0) {
          throw badRequest(
            `Invalid value for 'prompt': token id ${p.tokens[bad]} is outside the vocabulary ` +
              `(allowed: 0 to ${model.tokenizer.vocabSize - 1}).`,
            "prompt",
          );
        }
        out.push(withCap({ tokens: p.tokens }));
      } else {
        out.push(withCap({ tokens: encodeWithBos(model, p.text) }));
      }
    }
  }
  return out;

  function withCap(p: { tokens: number[] }): PreparedPrompt {
    const promptLen = p.tokens.length;
    if (promptLen === 0) throw badRequest(`The ${field} is empty.`, field);
    if (promptLen >= limit) {
      throw badRequest(
        `This model's maximum context length is ${limit} tokens, but the prompt has ${promptLen} tokens.`,
        field,
      );
    }
    let maxTokens = req.maxTokens;
    if (maxTokens === undefined) maxTokens = limit - promptLen;
    else if (promptLen + maxTokens > limit) {
      throw badRequest(
        `This model's maximum context length is ${limit} tokens. However, you requested ` +
          `${promptLen + maxTokens} tokens (${promptLen} in the ${field}, ${maxTokens} for the ` +
          `completion). Reduce the length of the ${field} or ${req.maxTokensField}.`,
        req.maxTokensField,
      );
    }
    return { ...p, maxTokens };
  }
}

/** Tokenize like the engine does for text prompts: with the BOS token in front. */
function encodeWithBos(model: ServedModel, text: string): number[] {
  const ids = model.tokenizer.encode(text);
  if (model.bosTokenId >= 0 && ids[0] !== model.bosTokenId) ids.unshift(model.bosTokenId);
  return ids;
}

let serial = 0;

/** A request id like OpenAI's (`cmpl-...`, `chatcmpl-...`). */
export function newRequestId(prefix: string): string {
  serial = (serial + 1) % 0x1000000;
  return `${prefix}-${Date.now().toString(36)}${serial.toString(36).padStart(5, "0")}${
    Math.floor(Math.random() * 0x10000).toString(36)
  }`;
}

/** A generation in the engine. */
export class Generation {
  /** OpenAI id of the response. */
  readonly id: string;
  /** Unix seconds at creation. */
  readonly created: number = Math.floor(Date.now() / 1000);
  /** Choices in order: prompt-major, then `n`. */
  readonly choices: Choice[] = [];
  /** Performance time at arrival, ms. */
  readonly arrivedAt: number;
  /** Whether every choice ended. */
  finished = false;
  readonly #engine: ServingEngine;
  readonly #metrics: ServerMetrics;
  readonly #keepText: boolean;
  #sink: GenerationSink | undefined;
  #left = 0;

  /** Set up (nothing is queued until {@link start}). */
  constructor(
    id: string,
    engine: ServingEngine,
    metrics: ServerMetrics,
    options: { keepText: boolean; arrivedAt: number },
  ) {
    this.id = id;
    this.#engine = engine;
    this.#metrics = metrics;
    this.#keepText = options.keepText;
    this.arrivedAt = options.arrivedAt;
  }

  /**
   * Queue one engine request per choice. If the engine refuses one (UsageError), those
   * already queued are aborted and the error is thrown.
   */
  start(req: GenerationRequest, prompts: PreparedPrompt[], sink: GenerationSink): void {
    this.#sink = sink;
    const baseSeed = req.seed ?? Math.floor(Math.random() * 2 ** 31);
    for (const p of prompts) {
      for (let k = 0; k < req.n; k++) {
        this.choices.push({
          index: this.choices.length,
          engineId: "",
          pieces: [],
          tokens: [],
          logprobs: [],
          lastAt: -1,
          finishReason: undefined,
          error: undefined,
          promptTokens: p.tokens?.length ?? 0,
          cachedTokens: 0,
          completionTokens: 0,
        });
      }
    }
    this.#left = this.choices.length;
    let i = 0;
    try {
      for (const p of prompts) {
        for (let k = 0; k < req.n; k++, i++) {
          const choice = this.choices[i];
          const input: RequestInput = {
            sampling: {
              temperature: req.temperature,
              topP: req.topP,
              topK: req.topK,
              // Each choice gets its own seed, so n > 1 gives n different samples.
              seed: (baseSeed + k) | 0,
              maxTokens: p.maxTokens,
              stop: req.stop,
              stopTokenIds: req.stopTokenIds,
              ignoreEos: req.ignoreEos,
              logprobs: req.logprobs,
            },
            priority: req.priority,
          };
          if (p.tokens !== undefined) input.promptTokens = p.tokens;
          else input.prompt = p.text;
          if (req.programId !== undefined) input.programId = req.programId;
          if (req.turn !== undefined) input.turn = req.turn;
          choice.engineId = this.#engine.add(input, (ev) => this.#onEvent(choice, ev));
        }
      }
    } catch (e) {
      this.#left = 0;
      this.finished = true;
      for (let j = 0; j < i; j++) this.#engine.abort(this.choices[j].engineId);
      throw e;
    }
  }

  /** Abort every choice still running (client gone, or shutdown). */
  abort(): void {
    for (const c of this.choices) {
      if (c.finishReason === undefined && c.engineId !== "") this.#engine.abort(c.engineId);
    }
  }

  /** End every unfinished choice with an error (the engine loop died). */
  fail(message: string): void {
    for (const c of this.choices) {
      if (c.finishReason === undefined) {
        this.#onEvent(c, {
          type: "finish",
          id: c.engineId,
          reason: "error",
          error: message,
          text: "",
          usage: {
            promptTokens: c.promptTokens,
            completionTokens: c.tokens.length,
            cachedTokens: 0,
          },
          time: 0,
          arrivalTime: 0,
          firstScheduledTime: -1,
          firstTokenTime: -1,
          lastTokenTime: -1,
          maxTokenGap: 0,
          numPreemptions: 0,
        } as RequestEvent);
      }
    }
  }

  /** Sum of prompt tokens over distinct prompts, generated tokens, and cached tokens. */
  usage(n: number): { prompt: number; completion: number; cached: number } {
    let prompt = 0;
    let completion = 0;
    let cached = 0;
    for (const c of this.choices) {
      completion += c.finishReason === undefined ? c.tokens.length : c.completionTokens;
      if (c.index % n === 0) {
        prompt += c.promptTokens;
        cached += c.cachedTokens;
      }
    }
    return { prompt, completion, cached };
  }

  #onEvent(choice: Choice, ev: RequestEvent): void {
    if (choice.finishReason !== undefined) return;
    const now = performance.now();
    if (ev.type === "token") {
      if (choice.lastAt < 0) this.#metrics.ttft.observe((now - this.arrivedAt) / 1000);
      else this.#metrics.itl.observe((now - choice.lastAt) / 1000);
      choice.lastAt = now;
      choice.tokens.push(ev.token);
      if (ev.logprob !== undefined) choice.logprobs.push(ev.logprob);
      if (this.#keepText && ev.text !== "") choice.pieces.push(ev.text);
      this.#sink?.token(choice, ev.text, ev.logprob);
      return;
    }
    choice.finishReason = ev.reason;
    choice.error = ev.error;
    choice.promptTokens = ev.usage.promptTokens;
    choice.cachedTokens = ev.usage.cachedTokens;
    choice.completionTokens = ev.usage.completionTokens;
    const tail = (ev as { text?: string }).text ?? "";
    if (this.#keepText && tail !== "") choice.pieces.push(tail);
    this.#metrics.e2e.observe((now - this.arrivedAt) / 1000);
    this.#metrics.finish(ev.reason);
    this.#sink?.finish(choice, tail);
    if (--this.#left === 0) {
      this.finished = true;
      this.#sink?.done();
    }
  }
}
