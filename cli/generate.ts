/**
 * `generate`: run one prompt through the engine and print the text, then a one-line
 * summary on stderr (tokens, time, tok/s).
 *
 * @module
 */

import { createEngine, parseEngineCommand } from "./engine_flags.ts";
import type { FlagSpecs } from "./flags.ts";

/** Flags of `generate`. */
export const GENERATE_FLAGS: FlagSpecs = {
  prompt: { type: "string", description: "the prompt text", required: true },
  chat: { type: "boolean", description: "wrap the prompt in the model's chat template" },
  "max-tokens": {
    type: "int",
    description: "most tokens to generate",
    default: 16,
    min: 1,
    max: 1 << 20,
  },
  temperature: { type: "number", description: "0 is greedy", default: 1, min: 0, max: 100 },
  "top-p": {
    type: "number",
    description: "nucleus sampling mass",
    default: 1,
    min: 0.0001,
    max: 1,
  },
  "top-k": { type: "int", description: "keep the k likeliest tokens (0: all)", default: 0, min: 0 },
  "ignore-eos": { type: "boolean", description: "keep going past the end-of-sequence token" },
  "no-echo": {
    type: "boolean",
    description: "print only the completion, not the prompt before it",
  },
};

/** Make control characters visible so random-weight output cannot upset a terminal. */
function printable(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0b-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** Run `generate`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const cmd = await parseEngineCommand(args, GENERATE_FLAGS);
  const v = cmd.values;
  const { engine, model } = await createEngine(cmd.setup);
  const prompt = v.chat
    ? model.tokenizer.applyChatTemplate([{ role: "user", content: v.prompt as string }], {
      addGenerationPrompt: true,
    })
    : v.prompt as string;
  const t0 = performance.now();
  let firstToken = 0, tokens = 0, text = "", reason = "";
  const stream = engine.submit({
    prompt,
    sampling: {
      maxTokens: v["max-tokens"] as number,
      temperature: v.temperature as number,
      topP: v["top-p"] as number,
      topK: v["top-k"] as number,
      ignoreEos: !!v["ignore-eos"],
      seed: engine.seed,
    },
  });
  const loop = engine.run();
  for await (const ev of stream) {
    if (ev.type === "token") {
      if (tokens++ === 0) firstToken = performance.now();
      text += ev.text;
    } else {
      text += ev.text;
      reason = ev.reason === "error" ? `error: ${ev.error}` : ev.reason;
    }
  }
  const executor = engine.plugins().find((p) => p.slot === "executor")?.name;
  await engine.close();
  await loop;
  const seconds = (performance.now() - t0) / 1000;
  const decodeSeconds = tokens > 1 ? (performance.now() - firstToken) / 1000 : seconds;
  console.log(printable((v["no-echo"] ? "" : prompt) + text));
  console.error(
    `${tokens} tokens in ${seconds.toFixed(3)} s (${(tokens / seconds).toFixed(1)} tok/s; decode ${
      tokens > 1 ? ((tokens - 1) / decodeSeconds).toFixed(1) : "-"
    } tok/s), model ${model.name}, executor ${executor}, finish ${reason}`,
  );
  return reason.startsWith("error") ? 1 : 0;
}
