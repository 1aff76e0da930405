/**
 * One benchmark request against an OpenAI-compatible endpoint, streamed, timed the way
 * `vllm bench serve` times it: TTFT is the first chunk with text, each later chunk with
 * text adds an inter-token latency, the latency ends at the last chunk, and the output
 * token count comes from the server's `usage`.
 *
 * @module
 */

import { sseData } from "./sse_reader.ts";

/** What to send. */
export interface RequestSpec {
  /** Full URL of the endpoint. */
  url: string;
  /** "openai" (completions) or "openai-chat". */
  backend: "openai" | "openai-chat";
  /** Model name. */
  model: string;
  /** Prompt text or token ids (token ids only on completions). */
  prompt: string | number[];
  /** Prompt length in tokens, as the workload counts it. */
  promptLen: number;
  /** Output cap. */
  maxTokens: number;
  /** Extra body fields (temperature, ignore_eos, ...). */
  extraBody: Record<string, unknown>;
  /** Extra headers (Authorization, ...). */
  headers: Record<string, string>;
}

/** What came back, in `vllm bench serve`'s terms (seconds). */
export interface RequestOutput {
  /** Whether the stream completed. */
  success: boolean;
  /** Prompt length (from the workload). */
  promptLen: number;
  /** Generated tokens (server usage; 0 when unknown). */
  outputTokens: number;
  /** Time to first token. */
  ttft: number;
  /** Gaps between chunks after the first. */
  itl: number[];
  /** Time from send to the last chunk. */
  latency: number;
  /** The generated text. */
  generatedText: string;
  /** Error text, "" on success. */
  error: string;
  /** Send time, seconds on the benchmark's clock. */
  startTime: number;
}

/** Send one streamed request and time it. `now()` returns seconds. */
export async function sendRequest(spec: RequestSpec, now: () => number): Promise<RequestOutput> {
  const out: RequestOutput = {
    success: false,
    promptLen: spec.promptLen,
    outputTokens: 0,
    ttft: 0,
    itl: [],
    latency: 0,
    generatedText: "",
    error: "",
    startTime: now(),
  };
  const body: Record<string, unknown> = {
    model: spec.model,
    max_tokens: spec.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
    ...spec.extraBody,
  };
  if (spec.backend === "openai-chat") {
    body.messages = [{ role: "user", content: spec.prompt }];
    body.max_completion_tokens = spec.maxTokens;
    delete body.max_tokens;
  } else body.prompt = spec.prompt;
  const st = out.startTime;
  let last = st;
  try {
    const res = await fetch(spec.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...spec.headers },
      body: JSON.stringify(body),
    });
    if (res.status !== 200 || res.body === null) {
      out.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
      return out;
    }
    const texts: string[] = [];
    let sawDone = false;
    for await (const data of sseData(res.body)) {
      if (data === "[DONE]") {
        sawDone = true;
        break;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) {
        out.error = String(chunk.error.message ?? "stream error");
        continue;
      }
      const t = now();
      const choice = chunk.choices?.[0];
      const text: string | undefined = spec.backend === "openai-chat"
        ? (choice?.delta?.content ?? choice?.delta?.reasoning_content)
        : choice?.text;
      if (text) {
        if (out.ttft === 0) out.ttft = t - st;
        else out.itl.push(t - last);
        last = t;
        texts.push(text);
      }
      if (chunk.usage) out.outputTokens = chunk.usage.completion_tokens ?? 0;
    }
    await res.body.cancel().catch(() => {});
    out.generatedText = texts.join("");
    out.latency = last - st;
    out.success = sawDone && out.error === "";
    if (!sawDone && out.error === "") out.error = "the stream ended without [DONE]";
  } catch (e) {
    out.error = (e as Error).message ?? String(e);
  }
  return out;
}
